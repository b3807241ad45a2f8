package convert

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/test/cluster"
	"github.com/yurtadm/yurtadm/test/cluster/clustertest"
)

// TestYurthubUpgradeAdvancedRollingUpdate: a cluster converted with
// `--yurthub-upgrade-strategy AdvancedRollingUpdate` gets a new yurthub
// image on the control plane (`convert phase control-plane
// --yurthub-image`), and yurt-manager's YurtStaticSet controller rolls it
// out by itself: its node-servant worker pod (OpenYurt's, built from its
// module) copies the YurtStaticSet's manifest to each edge node and checks
// the new yurthub runs. Every edge node ends on the new image, Ready, with
// its workload pod the one it had; revert then gives the kubelet files
// back byte for byte.
func TestYurthubUpgradeAdvancedRollingUpdate(t *testing.T) {
	c, ctx, cp, workers, before, pods := start(t)
	aru := []string{"--yurthub-upgrade-strategy", "AdvancedRollingUpdate", "--yurthub-upgrade-worker-image", cluster.NodeServantImage}
	reverted := false
	defer func() {
		if reverted {
			return
		}
		if r := yurtctlOn(context.Background(), t, cp, "revert", "--yes", "--timeout", "60s", "--node-image", c.YurtadmImage); r.ExitCode != 0 {
			t.Errorf("revert:\n%s", r)
		}
	}()
	if r := yurtctlOn(ctx, t, cp, append(convertArgs(c, cp, "60s"), aru...)...); r.ExitCode != 0 {
		t.Fatalf("convert with AdvancedRollingUpdate:\n%s", r)
	}
	for _, w := range workers {
		checkConverted(ctx, t, c, w, pods[w.Name])
	}
	if t.Failed() {
		return
	}

	// The new image, on the control plane only.
	args := append(append([]string{"convert", "phase", "control-plane"}, convertArgs(c, cp, "60s")[1:]...), aru...)
	for i, a := range args {
		if a == "--yurthub-image" {
			args[i+1] = cluster.YurthubNextImage
		}
	}
	r := yurtctlOn(ctx, t, cp, args...)
	if r.ExitCode != 0 {
		t.Fatalf("convert phase control-plane --yurthub-image %s:\n%s", cluster.YurthubNextImage, r)
	}
	start := time.Now()
	for _, w := range workers {
		err := cluster.Poll(ctx, 5*time.Minute, func() (bool, string) {
			p, err := c.Client.CoreV1().Pods("kube-system").Get(ctx, "yurt-hub-"+w.Name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			img := ""
			if len(p.Spec.Containers) > 0 {
				img = p.Spec.Containers[0].Image
			}
			return img == cluster.YurthubNextImage && cluster.PodReady(p), fmt.Sprintf("yurt-hub-%s runs %s, ready %v", w.Name, img, cluster.PodReady(p))
		})
		if err != nil {
			t.Logf("upgrade worker pods: %s", upgradeWorkers(ctx, c))
			t.Fatalf("%s: %v", w.Name, err)
		}
		clustertest.Measure(t, "AdvancedRollingUpdate of yurthub: %s runs %s, ready, %s after the Helm upgrade", w.Name, cluster.YurthubNextImage, time.Since(start).Round(time.Second))
	}
	for _, w := range workers {
		if m, _ := w.Output(ctx, "cat", constants.YurthubManifest); !strings.Contains(m, cluster.YurthubNextImage) || !strings.Contains(m, "--nodepool-name=edge") {
			t.Errorf("%s: the manifest after the roll-out:\n%s", w.Name, m)
		}
		checkConverted(ctx, t, c, w, pods[w.Name])
	}
	t.Logf("upgrade worker pods: %s", upgradeWorkers(ctx, c))
	if t.Failed() {
		return
	}

	reverted = true
	r = yurtctlOn(ctx, t, cp, "revert", "--yes", "--timeout", "60s", "--node-image", c.YurtadmImage)
	if r.ExitCode != 0 {
		t.Fatalf("revert:\n%s", r)
	}
	revertLeftNothing(ctx, t, c, cp, r)
	for _, w := range workers {
		if got := checksums(ctx, t, w); got != before[w.Name] {
			t.Errorf("%s's kubelet files after revert differ:\nbefore %s\nafter %s", w.Name, before[w.Name], got)
		}
		if err := c.WaitNodeReady(ctx, w.Name, time.Minute); err != nil {
			t.Error(err)
		}
	}
}

// upgradeWorkers lists yurt-manager's upgrade worker pods and how they ended.
func upgradeWorkers(ctx context.Context, c *cluster.Cluster) string {
	list, err := c.Client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, p := range list.Items {
		if !strings.HasPrefix(p.Name, "yss-upgrade-worker-") {
			continue
		}
		s := fmt.Sprintf("%s on %s: %s", p.Name, p.Spec.NodeName, p.Status.Phase)
		for _, cs := range p.Status.ContainerStatuses {
			if t := cs.State.Terminated; t != nil {
				s += fmt.Sprintf(" (exit %d %s)", t.ExitCode, strings.TrimSpace(t.Message))
			}
		}
		if p.Status.Phase == corev1.PodPending {
			s += " " + p.Status.Message
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "; ")
}
