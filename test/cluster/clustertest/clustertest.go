// Package clustertest runs a test package's scenarios on one multi-node
// cluster (test/cluster): Main brings it up before the tests and takes it
// down after, failing the run if anything is left; the helpers deploy the
// web workload and report figures. Every package of scenarios calls Main
// from its TestMain with its own description; hack/e2e-multinode.sh runs
// the packages at once, so each description has its own cluster name,
// subnet and node names (the harness keeps the rest apart).
package clustertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/yurtadm/yurtadm/test/cluster"
)

// C is the cluster the scenarios run on; nil when the suite is skipped.
var C *cluster.Cluster

var skipReason string

// Main brings up cfg, runs m and takes the cluster down. Without
// YURTADM_E2E=1 the tests skip (and say why); with it under CI=true a
// machine that cannot run the harness fails the run.
func Main(m *testing.M, cfg *cluster.Config) int {
	if os.Getenv("YURTADM_E2E") != "1" {
		skipReason = "the multi-node scenarios boot nodes and change the host's network: set YURTADM_E2E=1 as root, or run hack/e2e-multinode.sh"
		return m.Run()
	}
	c, err := cluster.New(cfg, os.Stderr)
	if err == nil {
		err = buildYurtadm(c)
	}
	if err == nil {
		if missing := c.Prerequisites(); len(missing) > 0 {
			err = fmt.Errorf("missing: %s", strings.Join(missing, "; "))
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "FAIL: YURTADM_E2E=1 under CI=true but the multi-node harness cannot run: %v\n", err)
			return 1
		}
		skipReason = "multi-node harness unavailable: " + err.Error()
		return m.Run()
	}
	ctx := context.Background()
	// YURTADM_E2E_KEEP=1 (development): reuse a cluster an earlier run
	// kept with the same nodes, and keep this one.
	keep := os.Getenv("YURTADM_E2E_KEEP") == "1"
	if kept, err := cluster.AttachNamed(c.Config.Name, os.Stderr); keep && err == nil && kept.Client != nil && sameNodes(kept.Config, c.Config) {
		fmt.Fprintln(os.Stderr, "reusing the kept cluster (YURTADM_E2E_KEEP=1)")
		C = kept
		return m.Run()
	}
	if err := c.Create(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: bring the cluster up: %v\n", err)
		_ = c.Delete(ctx)
		return 1
	}
	C = c
	code := m.Run()
	if keep {
		fmt.Fprintln(os.Stderr, "cluster kept (YURTADM_E2E_KEEP=1): take it down with hack/cluster.sh down")
		return code
	}
	if err := c.Delete(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: take the cluster down: %v\n", err)
		code = 1
	}
	if left := c.Leftovers(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: left behind: %s\n", strings.Join(left, "; "))
		code = 1
	}
	return code
}

func sameNodes(a, b *cluster.Config) bool {
	if len(a.Nodes) != len(b.Nodes) {
		return false
	}
	for i := range a.Nodes {
		if a.Nodes[i].Name != b.Nodes[i].Name || a.Nodes[i].Role != b.Nodes[i].Role {
			return false
		}
	}
	return true
}

// buildYurtadm builds this repository's yurtadm (as `make build` does)
// into the harness's build directory, unless YURTADM_E2E_YURTADM names one.
func buildYurtadm(c *cluster.Cluster) error {
	bin := os.Getenv("YURTADM_E2E_YURTADM")
	if bin == "" {
		root, err := cluster.RepoRoot()
		if err != nil {
			return err
		}
		out := filepath.Join(c.Build, "bin")
		unlock, err := c.LockBuild()
		if err != nil {
			return err
		}
		cmd := exec.Command("make", "-s", "build", "BIN="+out)
		cmd.Dir = root
		b, err := cmd.CombinedOutput()
		unlock()
		if err != nil {
			return fmt.Errorf("make build: %v\n%s", err, b)
		}
		bin = filepath.Join(out, "yurtadm")
	}
	return c.SetYurtadm(bin)
}

// Need skips t when the suite does not run and returns the cluster.
func Need(t *testing.T) *cluster.Cluster {
	t.Helper()
	if C == nil {
		t.Skip(skipReason)
	}
	return C
}

// Node is the node called name.
func Node(t *testing.T, name string) *cluster.Node {
	t.Helper()
	n, err := Need(t).Node(name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Timeout is a context ended after d or with t.
func Timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Measure logs a figure and appends it to the file YURTADM_E2E_MEASURE_OUT
// names.
func Measure(t *testing.T, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log("figure: " + line)
	if p := os.Getenv("YURTADM_E2E_MEASURE_OUT"); p != "" {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err == nil {
			fmt.Fprintf(f, "%s %s: %s\n", time.Now().UTC().Format(time.RFC3339), t.Name(), line)
			f.Close()
		}
	}
}

// DeployWeb deploys the web workload on node (cluster.DeployWeb), removes
// it when t ends, and returns its Ready pod.
func DeployWeb(ctx context.Context, t *testing.T, name, node string) *corev1.Pod {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		C.DeleteWeb(ctx, name)
	})
	if err := C.DeployWeb(ctx, name, node); err != nil {
		t.Fatal(err)
	}
	return OnlyPod(ctx, t, name)
}

// OnlyPod is the one pod of app=name that is not being deleted.
func OnlyPod(ctx context.Context, t *testing.T, name string) *corev1.Pod {
	t.Helper()
	var live []corev1.Pod
	for _, p := range WebPods(ctx, t, name) {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	if len(live) != 1 {
		t.Fatalf("want one pod of %s, have %d", name, len(live))
	}
	return &live[0]
}

// WebPods are the pods of app=name.
func WebPods(ctx context.Context, t *testing.T, name string) []corev1.Pod {
	t.Helper()
	l, err := C.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

// Restarts adds up the pod's container restarts.
func Restarts(p *corev1.Pod) int32 {
	var n int32
	for _, c := range p.Status.ContainerStatuses {
		n += c.RestartCount
	}
	return n
}
