package multinode

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/yurtadm/yurtadm/test/cluster"
)

// TestYurthubUpgradeOTA: the operator changes yurthub's image on the
// control plane (`yurtctl convert phase control-plane --yurthub-image`,
// the Helm release and its YurtStaticSets upgraded in place); yurt-manager
// marks every node's yurt-hub pod PodNeedUpgrade (OTA); `yurtadm upgrade
// yurthub` on each node moves it, with a workload serving throughout and
// the node Ready. A bad image is caught: one that is not there is refused
// before anything changes, one that never gets healthy is rolled back.
// The cluster is left on the first image.
func TestYurthubUpgradeOTA(t *testing.T) {
	c := need(t)
	ctx := timeout(t, 15*time.Minute)
	var nodes []*cluster.Node
	for _, name := range []string{edge1Name, edge2Name, cloudName} {
		nodes = append(nodes, node(t, name))
	}
	p := deployWeb(ctx, t, "web-upgrade", edge1Name)
	defer func() {
		ctx := context.Background()
		if _, err := c.ConvertControlPlane(ctx, cluster.YurthubImage); err != nil {
			t.Errorf("set yurthub's image back: %v", err)
		}
		// yurt-manager marks every node at once; the nodes move side by side.
		for _, n := range nodes {
			waitPending(ctx, t, c, n, cluster.YurthubImage)
		}
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Add(1)
			go func(n *cluster.Node) {
				defer wg.Done()
				if r, err := n.Run(ctx, "yurtadm", "upgrade", "yurthub", "--wait", "2m"); err != nil || r.ExitCode != 0 {
					t.Errorf("%s: set yurthub back to %s: %v\n%s", n.Name, cluster.YurthubImage, err, r)
				}
			}(n)
		}
		wg.Wait()
	}()

	upgrade := func(n *cluster.Node, image string, extra ...string) (upgradeOut, cluster.Result) {
		t.Helper()
		r, err := n.Run(ctx, append([]string{"yurtadm", "upgrade", "yurthub", "-o", "json"}, extra...)...)
		if err != nil {
			t.Fatal(err)
		}
		var out upgradeOut
		if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
			t.Fatalf("%s: yurtadm upgrade yurthub -o json: %v\n%s", n.Name, err, r)
		}
		return out, r
	}

	r, err := c.ConvertControlPlane(ctx, cluster.YurthubNextImage)
	if err != nil {
		t.Fatal(err)
	}
	measure(t, "yurtctl convert phase control-plane --yurthub-image %s (Helm upgrade in place): %s", cluster.YurthubNextImage, r.Took.Round(time.Second))
	for i, n := range nodes {
		pending := waitPending(ctx, t, c, n, cluster.YurthubNextImage)
		if i == 0 {
			if got := doctorFindings(ctx, n)["yurthub-upgrade"]; !strings.HasPrefix(got, "warn") || !strings.Contains(got, cluster.YurthubNextImage) {
				t.Errorf("%s: doctor's yurthub-upgrade with an upgrade pending: %q", n.Name, got)
			}
		}
		out, r := upgrade(n, cluster.YurthubNextImage, "--dry-run")
		if r.ExitCode != 0 || !out.Pending || out.To != cluster.YurthubNextImage {
			t.Fatalf("%s: dry run: exit %d, %+v\n%s", n.Name, r.ExitCode, out, r)
		}
		out, r = upgrade(n, cluster.YurthubNextImage)
		if r.ExitCode != 0 || !out.Upgraded {
			t.Fatalf("%s: yurtadm upgrade yurthub: exit %d, %+v\n%s", n.Name, r.ExitCode, out, r)
		}
		if m, _ := n.Output(ctx, "cat", "/etc/kubernetes/manifests/yurthub.yaml"); !strings.Contains(m, cluster.YurthubNextImage) {
			t.Errorf("%s: the manifest does not run %s", n.Name, cluster.YurthubNextImage)
		}
		if err := c.WaitNodeReady(ctx, n.Name, 2*time.Minute); err != nil {
			t.Errorf("%s after the upgrade: %v", n.Name, err)
		}
		measure(t, "OTA upgrade of yurthub on %s: marked PodNeedUpgrade %s after the convert; yurtadm upgrade yurthub %s to a new yurthub healthy and ready",
			n.Name, pending.Round(time.Second), time.Duration(out.TookMillis)*time.Millisecond)
	}
	if np := onlyLivePod(ctx, t, "web-upgrade"); np.UID != p.UID {
		t.Errorf("the workload on %s was replaced during the upgrade (%s -> %s)", edge1Name, p.UID, np.UID)
	}
	for _, n := range nodes {
		if out, r := upgrade(n, cluster.YurthubNextImage); r.ExitCode != 0 || out.Pending {
			t.Errorf("%s: a second upgrade: exit %d, %+v", n.Name, r.ExitCode, out)
		}
		if got := doctorFindings(ctx, n)["yurthub-upgrade"]; !strings.HasPrefix(got, "ok") {
			t.Errorf("%s: doctor's yurthub-upgrade after the upgrade: %q", n.Name, got)
		}
	}

	// A yurthub that starts and never answers: rolled back on the node.
	n := nodes[0]
	if _, err := c.ConvertControlPlane(ctx, cluster.YurthubBrokenImage); err != nil {
		t.Fatal(err)
	}
	waitPending(ctx, t, c, n, cluster.YurthubBrokenImage)
	out, r2 := upgrade(n, cluster.YurthubBrokenImage, "--wait", "20s")
	measure(t, "upgrade of %s to a yurthub that never gets healthy: exit %d after %s, rolled back = %v", n.Name, r2.ExitCode, r2.Took.Round(time.Second), out.RolledBack)
	if r2.ExitCode != 4 || !out.RolledBack || !strings.Contains(r2.Stderr, "--yurthub-image "+cluster.YurthubNextImage) {
		t.Errorf("broken image: exit %d, %+v; want 4, rolled back, naming the image to set back\n%s", r2.ExitCode, out, r2)
	}
	if m, _ := n.Output(ctx, "cat", "/etc/kubernetes/manifests/yurthub.yaml"); !strings.Contains(m, cluster.YurthubNextImage) {
		t.Errorf("%s: after the rollback the manifest does not run %s", n.Name, cluster.YurthubNextImage)
	}
	if err := c.WaitNodeReady(ctx, n.Name, 2*time.Minute); err != nil {
		t.Errorf("%s after the rollback: %v", n.Name, err)
	}

	// An image the node does not have and cannot pull: refused.
	const missing = "docker.io/openyurt/yurthub:v0.0.0-missing"
	if _, err := c.ConvertControlPlane(ctx, missing); err != nil {
		t.Fatal(err)
	}
	waitPending(ctx, t, c, n, missing)
	before, _ := n.Output(ctx, "cat", "/etc/kubernetes/manifests/yurthub.yaml")
	_, r3 := upgrade(n, missing)
	if r3.ExitCode != 3 || !strings.Contains(r3.Stderr, missing) {
		t.Errorf("missing image: exit %d; want 3 naming it\n%s", r3.ExitCode, r3)
	}
	if after, _ := n.Output(ctx, "cat", "/etc/kubernetes/manifests/yurthub.yaml"); after != before {
		t.Error("the refused upgrade changed the manifest")
	}
}

// upgradeOut is yurtadm upgrade yurthub's JSON.
type upgradeOut struct {
	Pending, Upgraded, RolledBack bool
	From, To                      string
	TookMillis                    int64
}

// waitPending waits until n's yurt-hub mirror pod is marked for an OTA
// upgrade and the YurtStaticSet asks for image, and returns how long that
// took.
func waitPending(ctx context.Context, t *testing.T, c *cluster.Cluster, n *cluster.Node, image string) time.Duration {
	t.Helper()
	start := time.Now()
	ok := waitFor(t, 3*time.Minute, n.Name+": yurt-hub marked PodNeedUpgrade for "+image, func() bool {
		r, err := n.Run(ctx, "yurtadm", "upgrade", "yurthub", "--dry-run", "-o", "json")
		if err != nil {
			return false
		}
		var out upgradeOut
		if json.Unmarshal([]byte(r.Stdout), &out) != nil {
			return false
		}
		return out.To == image && (out.Pending || out.From == image)
	})
	if !ok {
		pod, err := c.Client.CoreV1().Pods("kube-system").Get(ctx, "yurt-hub-"+n.Name, metav1.GetOptions{})
		if err == nil {
			t.Logf("%s: yurt-hub conditions %+v", n.Name, pod.Status.Conditions)
		}
		t.Fatalf("%s: no upgrade to %s pending", n.Name, image)
	}
	return time.Since(start)
}

// onlyLivePod is the one running pod of app=name.
func onlyLivePod(ctx context.Context, t *testing.T, name string) corev1.Pod {
	t.Helper()
	for _, p := range webPods(ctx, t, name) {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			return p
		}
	}
	t.Fatalf("no running pod of %s", name)
	return corev1.Pod{}
}
