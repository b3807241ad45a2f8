package multinode

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/yurtadm/yurtadm/test/cluster"
	"github.com/yurtadm/yurtadm/test/framework"
)

// TestMeasureRebootRecovery is the offline-recovery benchmark of
// docs/benchmarks.md: an edge node joined by yurtadm (edge2) with 10 web
// pods is rebooted while cut off from the cloud, and a plain kubeadm worker
// (worker1) with 10 web pods is rebooted with the cloud reachable, one after
// the other, YURTADM_REBOOT_ROUNDS rounds (default 3); for each, the time
// from power-on until 10 web containers run on the node (crictl inside it,
// the same count for both), and the medians. It reports, it does not gate:
// it runs only with YURTADM_E2E_MEASURE=1.
func TestMeasureRebootRecovery(t *testing.T) {
	c := needMeasure(t)
	const pods = 10
	rounds := 3
	if v, err := strconv.Atoi(os.Getenv("YURTADM_REBOOT_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	ctx := timeout(t, 5*time.Minute+time.Duration(rounds)*5*time.Minute)
	edge, plain := node(t, edge2Name), node(t, workerName)
	for _, n := range []*cluster.Node{edge, plain} {
		name := "web-recovery-" + n.Name
		labels := map[string]string{"app": name}
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](pods), Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: cluster.WebPodSpec(n.Name)}}}
		if _, err := c.Client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		defer c.DeleteWeb(context.Background(), name)
		if err := c.WaitPods(ctx, "default", "app="+name, 3*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	running := func(n *cluster.Node) int {
		out, _ := n.Output(ctx, "crictl", "ps", "--name", "^web$", "--state", "Running", "-q")
		return len(strings.Fields(out))
	}
	reboot := func(n *cluster.Node, cut bool) time.Duration {
		t.Helper()
		if cut {
			if err := n.Partition(ctx); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = n.Heal(context.Background()) }()
		}
		if err := n.Poweroff(ctx, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		on := time.Now()
		if err := n.Boot(ctx); err != nil {
			t.Fatal(err)
		}
		var took time.Duration
		last := 0
		for time.Since(on) < 5*time.Minute {
			if last = running(n); last >= pods {
				took = time.Since(on)
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if took == 0 {
			t.Errorf("%s: %d of %d web containers running 5 min after power-on", n.Name, last, pods)
		}
		if cut {
			if err := n.Heal(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.WaitNodeReady(ctx, n.Name, 3*time.Minute); err != nil {
			t.Error(err)
		}
		return took
	}
	var es, ps []time.Duration
	for i := 0; i < rounds; i++ {
		e := reboot(edge, true)
		p := reboot(plain, false)
		es, ps = append(es, e), append(ps, p)
		measure(t, "round %d: power-on to %d web containers running: %s (yurtadm edge, cut off) %s; %s (kubeadm, cloud reachable) %s",
			i+1, pods, edge.Name, e.Round(100*time.Millisecond), plain.Name, p.Round(100*time.Millisecond))
	}
	e, p := framework.Median(es), framework.Median(ps)
	ratio := "-"
	if e > 0 && p > 0 {
		ratio = fmt.Sprintf("%.2f", e.Seconds()/p.Seconds())
	}
	measure(t, "power-on to %d web containers running, median of %d rounds: %s (yurtadm edge, cut off) %s; %s (kubeadm, cloud reachable) %s; ratio %s",
		pods, rounds, edge.Name, e.Round(100*time.Millisecond), plain.Name, p.Round(100*time.Millisecond), ratio)
}
