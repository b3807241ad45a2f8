package multinode

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/yurtadm/yurtadm/test/cluster"
)

// TestJoinedNodesRunUnderSystemd: the edge and cloud nodes that yurtadm
// join brought in run kubelet as a systemd service of the node (the
// kubelet package's unit with kubeadm's drop-in), pointed at yurthub, with
// yurthub healthy and the node in its pool; the kubeadm worker talks to
// kube-apiserver directly.
func TestJoinedNodesRunUnderSystemd(t *testing.T) {
	c := need(t)
	ctx := timeout(t, 2*time.Minute)
	for _, n := range c.Nodes()[1:] {
		t.Run(n.Name, func(t *testing.T) {
			if out, err := n.Output(ctx, "systemctl", "is-active", "kubelet.service", "containerd.service"); err != nil {
				t.Fatalf("kubelet and containerd are not active services of the node: %v", err)
			} else if strings.Count(out, "active") != 2 {
				t.Fatalf("systemctl is-active: %q", out)
			}
			pid, err := n.Output(ctx, "systemctl", "show", "-p", "MainPID", "--value", "kubelet.service")
			if err != nil || strings.TrimSpace(pid) == "0" {
				t.Fatalf("kubelet.service has no main process: %q %v", pid, err)
			}
			cmdline, err := n.Output(ctx, "cat", "/proc/"+strings.TrimSpace(pid)+"/cmdline")
			if err != nil {
				t.Fatal(err)
			}
			args := strings.Split(strings.TrimRight(cmdline, "\x00"), "\x00")
			node, err := c.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !cluster.NodeReady(node) {
				t.Fatalf("node %s not Ready: %v", n.Name, node.Status.Conditions)
			}
			if n.Role == cluster.RoleWorker {
				if !contains(args, "--kubeconfig=/etc/kubernetes/kubelet.conf") {
					t.Errorf("kubeadm worker's kubelet: %q", args)
				}
				if _, ok := node.Labels["openyurt.io/is-edge-worker"]; ok {
					t.Errorf("kubeadm worker labelled as an OpenYurt node: %v", node.Labels)
				}
				return
			}
			// The last --kubeconfig wins: kubeadm-flags.env's, after the drop-in's.
			if last := lastFlag(args, "--kubeconfig"); last != "/var/lib/openyurt/kubelet.conf" {
				t.Errorf("kubelet's effective --kubeconfig is %q, want /var/lib/openyurt/kubelet.conf (args %q)", last, args)
			}
			kc, err := n.Output(ctx, "cat", "/var/lib/openyurt/kubelet.conf")
			if err != nil || !strings.Contains(kc, "server: http://127.0.0.1:10261") {
				t.Errorf("kubelet's kubeconfig does not point at yurthub: %v\n%s", err, kc)
			}
			if out, err := n.Output(ctx, "ynode-web", "-get", "http://127.0.0.1:10267/v1/healthz"); err != nil || strings.TrimSpace(out) != "OK" {
				t.Errorf("yurthub healthz: %q %v", out, err)
			}
			if out, err := n.Output(ctx, "ynode-web", "-get", "http://127.0.0.1:10267/v1/readyz"); err != nil {
				t.Errorf("yurthub readyz: %q %v", out, err)
			}
			// kubelet's requests show in yurthub's own metrics: it really
			// goes through yurthub, on both edge and cloud nodes.
			if metrics, err := n.Output(ctx, "ynode-web", "-get", "http://127.0.0.1:10267/metrics"); err != nil {
				t.Errorf("yurthub metrics: %v", err)
			} else if series := kubeletSeries(metrics); len(series) == 0 {
				t.Errorf("yurthub's metrics show no request from kubelet")
			} else {
				t.Logf("yurthub's metrics: %d series of kubelet's requests, e.g. %s", len(series), series[0])
			}
			wantEdge := map[string]string{cluster.RoleEdge: "true", cluster.RoleCloud: "false"}[n.Role]
			if got := node.Labels["openyurt.io/is-edge-worker"]; got != wantEdge {
				t.Errorf("is-edge-worker=%q, want %q", got, wantEdge)
			}
			if got := node.Labels["apps.openyurt.io/nodepool"]; got != n.Pool {
				t.Errorf("nodepool=%q, want %q", got, n.Pool)
			}
			manifest, err := n.Output(ctx, "cat", "/etc/kubernetes/manifests/yurthub.yaml")
			if err != nil || !strings.Contains(manifest, "--working-mode="+n.Role) {
				t.Errorf("yurthub's manifest does not run --working-mode=%s: %v\n%s", n.Role, err, manifest)
			}
			// An edge yurthub serves kubelet from its cache, which holds
			// this node's Node object; a cloud yurthub keeps no cache.
			_, err = n.Output(ctx, "test", "-s", "/etc/kubernetes/cache/kubelet/nodes.v1.core/"+n.Name)
			if cached := err == nil; cached != (n.Role == cluster.RoleEdge) {
				t.Errorf("yurthub's cache holds kubelet's Node: %v, want %v", cached, n.Role == cluster.RoleEdge)
			}
			if n.Role == cluster.RoleEdge {
				// and the pods, services and its lease: more than the Node.
				out, _ := n.Shell(ctx, "find /etc/kubernetes/cache/kubelet -type f | wc -l")
				if files := strings.TrimSpace(out); files == "" || files == "0" || files == "1" {
					t.Errorf("yurthub's cache of kubelet holds %q files, want the Node and more", files)
				}
			}
		})
	}
}

// TestServicesAndDNSOnEveryNode: from a pod on each node, the web Service
// (its pod on the cloud node) answers by its DNS name: CoreDNS, kube-proxy
// on that node and the pod network across nodes all work.
func TestServicesAndDNSOnEveryNode(t *testing.T) {
	c := need(t)
	ctx := timeout(t, 8*time.Minute)
	server := deployWeb(ctx, t, "web-dns", cloudName)
	for _, n := range c.Nodes() {
		if n.Role == cluster.RoleControlPlane {
			continue // tainted NoSchedule, as kubeadm leaves it
		}
		t.Run(n.Name, func(t *testing.T) {
			// A Service reaches each node's kube-proxy a moment after it
			// is made (through yurthub on edge nodes): a client that
			// tries again a few seconds later is what real clients do.
			// A kube-proxy whose watch failed for minutes (the crash-loop
			// scenario before this one restarts edge2's yurthub over and
			// over) is in client-go's reflector backoff, up to 30 s, and
			// sees the new Service and its EndpointSlice up to a minute
			// late: the clients keep trying for 2 minutes.
			var out string
			start := time.Now()
			for attempt := 1; ; attempt++ {
				out = tryPod(ctx, t, fmt.Sprintf("dns-from-%s-%d", n.Name, attempt), n.Name, "-get", "http://web-dns.default.svc.cluster.local:8080/")
				if strings.HasPrefix(out, server.Name+" ") {
					if attempt > 1 {
						t.Logf("from %s the Service answered at attempt %d, %s after the first", n.Name, attempt, time.Since(start).Round(time.Second))
					}
					break
				}
				if time.Since(start) > 2*time.Minute {
					t.Fatalf("from %s the Service answered %q in %d attempts over %s, want the pod %s", n.Name, out, attempt, time.Since(start).Round(time.Second), server.Name)
				}
				t.Logf("attempt %d from %s: %q; trying again in 5 s", attempt, n.Name, out)
				time.Sleep(5 * time.Second)
			}
		})
	}
}

// kubeletSeries are the node_yurthub_* series of yurthub's metrics that
// count kubelet's requests.
func kubeletSeries(metrics string) []string {
	var lines []string
	for _, l := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(l, "node_yurthub_") && strings.Contains(l, `client="kubelet`) {
			lines = append(lines, l)
		}
	}
	return lines
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func lastFlag(args []string, name string) string {
	v := ""
	for _, a := range args {
		if strings.HasPrefix(a, name+"=") {
			v = strings.TrimPrefix(a, name+"=")
		}
	}
	return v
}
