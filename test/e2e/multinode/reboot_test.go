package multinode

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/yurtadm/yurtadm/test/cluster"
)

// TestRebootWhilePartitioned: an edge node joined by yurtadm and a plain
// kubeadm worker, each with a workload pod, are cut off from the cloud and
// rebooted (systemd shuts the node down, boots it again) while still cut
// off. On the edge node kubelet gets its pods from yurthub's cache and the
// workload runs and serves again with the cloud unreachable; on the
// kubeadm node kubelet cannot list its pods and the workload stays down.
// The time from power-on to the workload serving is reported.
func TestRebootWhilePartitioned(t *testing.T) {
	c := need(t)
	ctx := timeout(t, 10*time.Minute)
	edge, plain := node(t, edge2Name), node(t, workerName)
	type subject struct {
		n        *cluster.Node
		app      string
		wantBack bool
	}
	subjects := []subject{{edge, "web-reboot-edge", true}, {plain, "web-reboot-plain", false}}
	for _, s := range subjects {
		p := deployWeb(ctx, t, s.app, s.n.Name)
		t.Logf("%s: pod %s uid %s", s.n.Name, p.Name, p.UID)
	}
	for _, s := range subjects {
		if err := s.n.Partition(ctx); err != nil {
			t.Fatal(err)
		}
		defer func(n *cluster.Node) { _ = n.Heal(context.Background()) }(s.n)
	}
	// Power both off, then on, while cut off.
	for _, s := range subjects {
		if err := s.n.Poweroff(ctx, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	boots := map[string]time.Time{}
	for _, s := range subjects {
		boots[s.n.Name] = time.Now()
		if err := s.n.Boot(ctx); err != nil {
			t.Fatal(err)
		}
		if !s.n.Partitioned(ctx) {
			t.Fatalf("%s booted without its cut link", s.n.Name)
		}
	}
	// Within the window, the edge node's workload must serve from inside;
	// the kubeadm node's must not.
	// Measured 30–43 s on this machine kind since the harness boots nodes
	// with fresh cgroups (44–87 s before); the window leaves room.
	window := 4 * time.Minute
	back := map[string]time.Duration{}
	deadline := time.Now().Add(window)
	for time.Now().Before(deadline) && back[edge.Name] == 0 {
		for _, s := range subjects {
			if back[s.n.Name] != 0 {
				continue
			}
			if id := runningContainer(ctx, s.n, "web"); id != "" {
				if out, err := s.n.Output(ctx, "crictl", "exec", id, "/usr/local/bin/web", "-get", "http://127.0.0.1:8080/"); err == nil && strings.Contains(out, s.app) {
					back[s.n.Name] = time.Since(boots[s.n.Name])
					t.Logf("%s: workload serving %s after power-on (cloud unreachable): %s", s.n.Name, back[s.n.Name].Round(100*time.Millisecond), strings.TrimSpace(out))
				}
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Give the kubeadm node the same time the edge node needed, and more.
	time.Sleep(10 * time.Second)
	if back[plain.Name] == 0 && runningContainer(ctx, plain, "web") != "" {
		back[plain.Name] = time.Since(boots[plain.Name])
	}
	measure(t, "reboot while partitioned: %s (yurtadm edge) workload %s; %s (kubeadm) %s",
		edge.Name, show(back[edge.Name]), plain.Name, show(back[plain.Name]))
	for _, s := range subjects {
		got := back[s.n.Name] != 0
		if got != s.wantBack {
			t.Errorf("%s: workload back while cut off = %v, want %v", s.n.Name, got, s.wantBack)
		}
	}
	for _, s := range subjects {
		if err := s.n.Heal(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range subjects {
		if err := c.WaitNodeReady(ctx, s.n.Name, 2*time.Minute); err != nil {
			t.Errorf("%s not Ready after healing: %v", s.n.Name, err)
		}
		if err := c.WaitPods(ctx, "default", "app="+s.app, 2*time.Minute); err != nil {
			t.Errorf("%s after healing: %v", s.app, err)
		}
	}
}

func show(d time.Duration) string {
	if d == 0 {
		return "not back while cut off"
	}
	return "serving " + d.Round(100*time.Millisecond).String() + " after power-on"
}
