package controlplane

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
)

// What OpenYurt v1.7.0's YurtStaticSet controller names: the hash of a
// template, on its ConfigMap and on each static pod that runs it, and its
// AdvancedRollingUpdate worker pods ("yss-upgrade-worker-<yss>-<node>-<hash>",
// no labels).
const (
	annotationStaticPodHash = "openyurt.io/static-pod-hash"
	upgradeWorkerPrefix     = "yss-upgrade-worker-"
	annotationMirror        = "kubernetes.io/config.mirror"
)

var yssGVR = schema.GroupVersionResource{Group: "apps.openyurt.io", Version: "v1alpha1", Resource: "yurtstaticsets"}

// yssNames are the yurthub chart's YurtStaticSets.
var yssNames = []string{constants.YurthubStaticSet, constants.YurthubCloudStaticSet}

// Rollout timing: how often the roll-out is looked at, and how long it may
// go without a node moving before convert stops waiting (node-servant
// checks a node's new yurthub for 2 minutes). Variables for tests.
var (
	rolloutPoll       = 2 * time.Second
	rolloutNoProgress = 5 * time.Minute
)

// yssTemplate is a YurtStaticSet's pod template and its yurt-hub image,
// nil when it does not exist.
type yssTemplate struct {
	template any
	image    string
}

// templates reads the yurthub chart's YurtStaticSets' templates and the
// hashes on their ConfigMaps (the template the controller last rolled).
func (in *Installer) templates(ctx context.Context) (map[string]*yssTemplate, map[string]string, error) {
	out, hashes := map[string]*yssTemplate{}, map[string]string{}
	for _, name := range yssNames {
		u, err := in.Clients.Dynamic.Resource(yssGVR).Namespace(in.Namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read YurtStaticSet %s/%s: %w", in.Namespace, name, err)
		}
		t, _, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "template")
		cs, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		img := ""
		for _, c := range cs {
			if m, ok := c.(map[string]any); ok && m["name"] == constants.YurthubContainerName {
				img, _ = m["image"].(string)
			}
		}
		out[name] = &yssTemplate{template: t, image: img}
		cm, err := in.Clients.Kube.CoreV1().ConfigMaps(in.Namespace).Get(ctx, "yurt-static-set-"+name, metav1.GetOptions{})
		if err == nil {
			hashes[name] = cm.Annotations[annotationStaticPodHash]
		} else if !apierrors.IsNotFound(err) {
			return nil, nil, err
		}
	}
	return out, hashes, nil
}

// nodeState is where one node of a YurtStaticSet is in a roll-out.
type nodeState struct {
	node     string
	upgraded bool
	failed   string // the failed upgrade worker of the target hash
	message  string // what it said
}

// observe reads where the nodes of YurtStaticSet yss are with target (a
// template hash), and the failed upgrade workers of other hashes.
func (in *Installer) observe(ctx context.Context, yss, target string) ([]nodeState, []string, error) {
	pods, err := in.Clients.Kube.CoreV1().Pods(in.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("list the pods in %s: %w", in.Namespace, err)
	}
	byNode := map[string]*nodeState{}
	var stale []string
	for i := range pods.Items {
		p := &pods.Items[i]
		node := p.Spec.NodeName
		switch {
		case p.Annotations[annotationMirror] != "" && p.Name == yss+"-"+node:
			s := byNode[node]
			if s == nil {
				s = &nodeState{node: node}
				byNode[node] = s
			}
			s.upgraded = p.Annotations[annotationStaticPodHash] == target && podReady(p)
		case strings.HasPrefix(p.Name, upgradeWorkerPrefix+yss+"-") && p.Status.Phase == corev1.PodFailed:
			if p.Annotations[annotationStaticPodHash] != target {
				stale = append(stale, p.Name)
				continue
			}
			s := byNode[node]
			if s == nil {
				s = &nodeState{node: node}
				byNode[node] = s
			}
			s.failed, s.message = p.Name, workerMessage(p)
		}
	}
	var out []nodeState
	for _, s := range byNode {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].node < out[j].node })
	sort.Strings(stale)
	return out, stale, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// workerMessage is the end of what a failed upgrade worker said.
func workerMessage(p *corev1.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil {
			msg := strings.TrimSpace(t.Message)
			if i := strings.LastIndex(msg, "\n"); i >= 0 {
				msg = msg[i+1:]
			}
			return strings.TrimSpace(fmt.Sprintf("exit %d %s", t.ExitCode, msg))
		}
	}
	return strings.TrimSpace(p.Status.Reason + " " + p.Status.Message)
}

// waitRollout follows, under AdvancedRollingUpdate, yurt-manager rolling
// the changed YurtStaticSets out to their nodes: each node is reported as
// it moves. A node whose upgrade worker failed (node-servant put its old
// manifest back) ends it with an error that names the node and how to go
// back; a roll-out that stalls is left running with a warning.
func (in *Installer) waitRollout(ctx context.Context, before map[string]*yssTemplate, hashBefore map[string]string) error {
	after, _, err := in.templates(ctx)
	if err != nil {
		return err
	}
	for _, name := range yssNames {
		old, cur := before[name], after[name]
		if old == nil || cur == nil {
			continue // a first install: no node runs it yet
		}
		if equalJSON(old.template, cur.template) {
			if err := in.staleWorkers(ctx, name, hashBefore[name]); err != nil {
				return err
			}
			continue
		}
		if err := in.follow(ctx, name, old.image, cur.image, hashBefore[name]); err != nil {
			return err
		}
	}
	return nil
}

// staleWorkers warns of failed upgrade workers left from an earlier
// roll-out of an unchanged template.
func (in *Installer) staleWorkers(ctx context.Context, yss, hash string) error {
	if hash == "" {
		return nil
	}
	_, stale, err := in.observe(ctx, yss, hash)
	if err != nil {
		return err
	}
	in.warnStale(yss, stale)
	return nil
}

func (in *Installer) warnStale(yss string, stale []string) {
	if len(stale) == 0 {
		return
	}
	in.Report("warning", "YurtStaticSet %s/%s: failed upgrade worker(s) of an earlier roll-out are left: %s. yurt-manager neither updates its status nor rolls another template out while one is there: delete them ('kubectl -n %s delete pod %s')",
		in.Namespace, yss, strings.Join(stale, ", "), in.Namespace, strings.Join(stale, " "))
}

// follow waits for one YurtStaticSet's new template to reach its nodes.
func (in *Installer) follow(ctx context.Context, yss, oldImage, newImage, hashBefore string) error {
	start := in.Now()
	// The controller writes the new template's hash on the ConfigMap first.
	var target string
	for target == "" || target == hashBefore {
		cm, err := in.Clients.Kube.CoreV1().ConfigMaps(in.Namespace).Get(ctx, "yurt-static-set-"+yss, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		if err == nil {
			target = cm.Annotations[annotationStaticPodHash]
		}
		if target != "" && target != hashBefore {
			break
		}
		if in.Now().Sub(start) > time.Minute {
			in.Report("warning", "YurtStaticSet %s/%s: yurt-manager has not taken the new template within 1m ('kubectl -n %s logs deploy/yurt-manager'); not waiting for the roll-out", in.Namespace, yss, in.Namespace)
			return nil
		}
		if err := pause(ctx); err != nil {
			return err
		}
	}
	in.Report("done", "YurtStaticSet %s/%s: template %s (yurthub %s), rolled out by yurt-manager (AdvancedRollingUpdate); waiting for its nodes", in.Namespace, yss, target, newImage)
	reported := map[string]bool{}
	progress := in.Now()
	for {
		nodes, stale, err := in.observe(ctx, yss, target)
		if err != nil {
			return err
		}
		done := 0
		var failed []nodeState
		for _, n := range nodes {
			switch {
			case n.upgraded:
				done++
				if !reported[n.node] {
					reported[n.node] = true
					progress = in.Now()
					in.Report("done", "node %s runs yurthub %s (%d/%d, %s)", n.node, newImage, done, len(nodes), in.Now().Sub(start).Round(time.Second))
				}
			case n.failed != "":
				failed = append(failed, n)
			}
		}
		if len(failed) > 0 {
			return in.rolloutFailed(yss, oldImage, newImage, failed, stale)
		}
		if done == len(nodes) {
			in.warnStale(yss, stale)
			return nil
		}
		if in.Now().Sub(progress) > rolloutNoProgress {
			in.Report("warning", "YurtStaticSet %s/%s: %d of %d node(s) run the new template and none moved in %s; not waiting longer ('kubectl -n %s get yss %s' follows it)",
				in.Namespace, yss, done, len(nodes), rolloutNoProgress, in.Namespace, yss)
			return nil
		}
		if err := pause(ctx); err != nil {
			return err
		}
	}
}

func pause(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(rolloutPoll):
		return nil
	}
}

// rolloutFailed is the error for nodes whose upgrade worker failed.
func (in *Installer) rolloutFailed(yss, oldImage, newImage string, failed []nodeState, stale []string) error {
	var names, pods, what []string
	for _, n := range failed {
		names = append(names, n.node)
		pods = append(pods, n.failed)
		what = append(what, fmt.Sprintf("%s: %s (%s)", n.node, n.failed, n.message))
	}
	pods = append(pods, stale...)
	in.Report("failed", "YurtStaticSet %s/%s: yurthub %s did not run on %s; OpenYurt's node-servant put each one's previous yurthub manifest back", in.Namespace, yss, newImage, strings.Join(what, "; "))
	return &cmdutil.Error{Code: cmdutil.ExitError,
		Err: fmt.Errorf("the AdvancedRollingUpdate of yurthub %s failed on node(s) %s (they run their previous yurthub again)", newImage, strings.Join(names, ", ")),
		Hint: fmt.Sprintf("yurt-manager stops this roll-out at a failed upgrade worker until it is deleted. Roll back: run this phase again with --yurthub-image %s (and the other flags you converted with), then delete the failed worker pod(s): 'kubectl -n %s delete pod %s'. Their logs ('kubectl -n %s logs %s') say why the new yurthub did not run",
			oldImage, in.Namespace, strings.Join(pods, " "), in.Namespace, failed[0].failed)}
}
