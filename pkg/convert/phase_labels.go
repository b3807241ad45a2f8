package convert

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/kube"
)

// patchNodes applies each node's label and annotation changes (a merge
// patch; an empty value removes the key), --concurrency at a time.
func patchNodes(d phaseData, phase string, p *Plan, remove, quiet bool) error {
	c, err := d.Clients()
	if err != nil {
		return err
	}
	type job struct{ n NodePlan }
	var todo []NodePlan
	for _, n := range p.Nodes {
		if len(n.Labels)+len(n.Annotations) > 0 {
			todo = append(todo, n)
		}
	}
	if d.Options().DryRun {
		for _, n := range todo {
			d.Report(phase, "would", "patch node %s: %s", n.Name, describeKV(n, remove))
		}
		return nil
	}
	sem := make(chan struct{}, d.Options().Concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []string
	for _, n := range todo {
		n := n
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// yurt-manager's node webhook lets only the node itself (and
			// its conversion controller) change openyurt.io/is-edge-worker:
			// a change of that label goes, with the rest, in one patch made
			// as the node; any other change as the admin.
			meta := map[string]any{}
			if len(n.Labels) > 0 {
				meta["labels"] = nullable(n.Labels, remove)
			}
			if len(n.Annotations) > 0 {
				meta["annotations"] = nullable(n.Annotations, remove)
			}
			body, _ := json.Marshal(map[string]any{"metadata": meta})
			api := c
			var err error
			if _, ok := n.Labels[constants.LabelEdgeWorker]; ok {
				api, err = d.NodeClients(n.Name)
			}
			if err == nil {
				err = patchNode(d.Context(), api.Kube, n.Name, body)
			}
			if apierrors.IsNotFound(err) && remove {
				err = nil
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Sprintf("node %s: %v", n.Name, err))
			}
		}()
	}
	wg.Wait()
	sort.Strings(errs)
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	if !quiet {
		d.Report(phase, "done", "patched %d node(s), %d already as wanted", len(todo), len(p.Nodes)-len(todo))
	}
	return nil
}

// patchNode merge-patches a Node. yurt-manager's Node webhook checks a
// node's pool label against the NodePools it has seen, and right after
// convert made a pool (with yurt-manager just ready) it may not have seen
// it yet: "denied the request: NodePool.apps.openyurt.io "edge" not
// found" (seen on the multi-node harness, in the labels phase right
// after the control-plane phase had made the pool).
// That is retried, every poolRetry for up to poolWait; any other error is
// returned at once.
func patchNode(ctx context.Context, kc kube.Interface, name string, body []byte) error {
	var err error
	_ = wait.PollUntilContextTimeout(ctx, poolRetry, poolWait, true, func(ctx context.Context) (bool, error) {
		_, err = kc.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, body, metav1.PatchOptions{})
		return !poolNotSeen(err), nil
	})
	return err
}

// How often and how long patchNode retries (variables for tests).
var poolRetry, poolWait = time.Second, time.Minute

// poolNotSeen is yurt-manager's Node webhook refusing a pool it has not
// seen (yet).
func poolNotSeen(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "denied the request") && strings.Contains(s, "NodePool.apps.openyurt.io") && strings.Contains(s, "not found")
}

func nullable(m map[string]string, remove bool) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if remove {
			out[k] = nil
		} else {
			out[k] = v
		}
	}
	return out
}

func describeKV(n NodePlan, remove bool) string {
	var kv []string
	for _, m := range []map[string]string{n.Labels, n.Annotations} {
		for k, v := range m {
			if remove {
				kv = append(kv, "remove "+k)
			} else {
				kv = append(kv, k+"="+v)
			}
		}
	}
	sort.Strings(kv)
	return strings.Join(kv, ", ")
}

func runConvertLabels(d phaseData) error {
	p, err := d.Prepare()
	if err != nil {
		return err
	}
	if err := patchNodes(d, PhaseLabels, p, false, false); err != nil {
		return cmdutil.WithHint(err, cmdutil.ExitError, "the phase is safe to run again")
	}
	return nil
}
