package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yurtadm/yurtadm/test/e2e/harness"
)

// Scenario 1: yurtadm join this machine as an edge node.
func TestJoinEdgeNode(t *testing.T) {
	h := machine(t)
	ctx := context.Background()
	r := join(t)
	t.Logf("yurtadm join took %s", r.Took.Round(time.Millisecond))
	checkJoinedNode(t, "edge")
	pod := workloadPod(t, "sleeper-join")
	if pod.Spec.NodeName != harness.NodeName() {
		t.Errorf("workload ran on %q, want %q", pod.Spec.NodeName, harness.NodeName())
	}
	if ids := h.RunningContainers(ctx, workloadName); len(ids) == 0 {
		t.Errorf("no running %s container on the node", workloadName)
	}
}

// checkJoinedNode proves a join: Node Ready with OpenYurt's labels, kubelet
// talking through yurthub, yurthub healthy and caching.
func checkJoinedNode(t *testing.T, nodeType string) {
	t.Helper()
	ctx := context.Background()
	n, err := h.Node(ctx)
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	if !harness.Ready(n) {
		t.Errorf("node %s is not Ready: %v", n.Name, n.Status.Conditions)
	}
	wantEdge := map[string]string{"edge": "true", "cloud": "false"}[nodeType]
	if got := n.Labels["openyurt.io/is-edge-worker"]; got != wantEdge {
		t.Errorf("label openyurt.io/is-edge-worker=%q, want %q", got, wantEdge)
	}
	if got := n.Labels["apps.openyurt.io/nodepool"]; got != nodeType {
		t.Errorf("label apps.openyurt.io/nodepool=%q, want %q", got, nodeType)
	}
	kc, server, err := h.KubeletKubeconfigServer()
	if err != nil {
		t.Errorf("kubelet's kubeconfig: %v", err)
	} else if server != harness.YurthubProxy {
		t.Errorf("kubelet's kubeconfig %s has server %q, want %s", kc, server, harness.YurthubProxy)
	}
	for _, u := range []string{harness.YurthubHealthz, harness.YurthubReadyz} {
		code, body, err := harness.Get(u)
		if err != nil || code != 200 {
			t.Errorf("GET %s: %d %q %v", u, code, body, err)
		}
	}
	if nodeType != "edge" {
		// A cloud-mode yurthub only proxies; it keeps no cache.
		var series []string
		var err error
		for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
			if series, err = harness.KubeletRequestsThroughYurthub(); len(series) > 0 {
				break
			}
		}
		if err != nil || len(series) == 0 {
			t.Errorf("yurthub's metrics show no request from kubelet (%v)", err)
		}
		return
	}
	// kubelet's requests show in yurthub's metrics, and its cache fills.
	var series []string
	var cached int
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		series, _ = harness.KubeletRequestsThroughYurthub()
		cached = harness.CacheFiles("kubelet")
		if len(series) > 0 && cached >= 3 && hasCached("nodes.v1.core") {
			break
		}
		time.Sleep(time.Second)
	}
	if len(series) == 0 {
		t.Errorf("yurthub's metrics show no request from kubelet")
	} else {
		t.Logf("yurthub metrics, kubelet's series (%d), e.g. %s", len(series), series[0])
	}
	if !hasCached("nodes.v1.core") {
		t.Errorf("yurthub's cache %s/kubelet has no nodes.v1.core (%d files)", harness.YurthubCache, cached)
	}
	t.Logf("yurthub cache %s/kubelet: %d files", harness.YurthubCache, cached)
	if nodeType == "edge" {
		if b, err := os.ReadFile("/etc/kubernetes/manifests/yurthub.yaml"); err != nil || !strings.Contains(string(b), "--working-mode=edge") {
			t.Errorf("yurthub manifest: %v (want --working-mode=edge)", err)
		}
	}
}

func hasCached(resource string) bool {
	entries, err := os.ReadDir(filepath.Join(harness.YurthubCache, "kubelet", resource))
	return err == nil && len(entries) > 0
}

// Scenario 6: a cloud node.
func TestJoinCloudNode(t *testing.T) {
	machine(t)
	join(t, "--node-type", "cloud")
	checkJoinedNode(t, "cloud")
	b, err := os.ReadFile("/etc/kubernetes/manifests/yurthub.yaml")
	if err != nil || !strings.Contains(string(b), "--working-mode=cloud") {
		t.Errorf("yurthub manifest: %v (want --working-mode=cloud)", err)
	}
	workloadPod(t, "sleeper-cloud")
}

func hasCachedObject(resource, ns, name string) bool {
	_, err := os.Stat(filepath.Join(harness.YurthubCache, "kubelet", resource, ns, name))
	return err == nil
}
