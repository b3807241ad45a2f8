package yurthub

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/yurtadm/yurtadm/pkg/kube/kubetest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/yurtadm/yurtadm/pkg/constants"
)

func TestSetKubeconfigFlag(t *testing.T) {
	const y = "/var/lib/openyurt/kubelet.conf"
	for _, tc := range []struct {
		name, in, path, want string
		changed              bool
	}{
		{"kubeadm file", "KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.10\"\n", y,
			"KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.10 --kubeconfig=/var/lib/openyurt/kubelet.conf --bootstrap-kubeconfig=\"\n", true},
		{"already set", "KUBELET_KUBEADM_ARGS=\"--a=b --kubeconfig=/var/lib/openyurt/kubelet.conf --bootstrap-kubeconfig=\"\n", y,
			"KUBELET_KUBEADM_ARGS=\"--a=b --kubeconfig=/var/lib/openyurt/kubelet.conf --bootstrap-kubeconfig=\"\n", false},
		{"set without the bootstrap switch", "KUBELET_KUBEADM_ARGS=\"--a=b --kubeconfig=/var/lib/openyurt/kubelet.conf\"\n", y,
			"KUBELET_KUBEADM_ARGS=\"--a=b --kubeconfig=/var/lib/openyurt/kubelet.conf --bootstrap-kubeconfig=\"\n", true},
		{"replace other value and split form", "# comment\nKUBELET_KUBEADM_ARGS=\"--kubeconfig /x --a=b --kubeconfig=/y\"\nOTHER=1\n", y,
			"# comment\nKUBELET_KUBEADM_ARGS=\"--a=b --kubeconfig=/var/lib/openyurt/kubelet.conf --bootstrap-kubeconfig=\"\nOTHER=1\n", true},
		{"remove", "KUBELET_KUBEADM_ARGS=\"--a=b --kubeconfig=/var/lib/openyurt/kubelet.conf --bootstrap-kubeconfig=\"\n", "",
			"KUBELET_KUBEADM_ARGS=\"--a=b\"\n", true},
		{"remove absent", "OTHER=1", "", "OTHER=1", false},
		{"append variable", "OTHER=1", y, "OTHER=1\nKUBELET_KUBEADM_ARGS=\"--kubeconfig=/var/lib/openyurt/kubelet.conf --bootstrap-kubeconfig=\"\n", true},
		{"empty file", "", y, "KUBELET_KUBEADM_ARGS=\"--kubeconfig=/var/lib/openyurt/kubelet.conf --bootstrap-kubeconfig=\"\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, changed, err := SetKubeconfigFlag([]byte(tc.in), tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want || changed != tc.changed {
				t.Errorf("got %q changed=%v, want %q changed=%v", got, changed, tc.want, tc.changed)
			}
			args, _, err := KubeadmFlagsArgs(got)
			if err != nil {
				t.Fatal(err)
			}
			if k := KubeconfigFlag(args); k != tc.path && !(tc.path == "" && k == "") {
				t.Errorf("--kubeconfig after the edit = %q, want %q", k, tc.path)
			}
		})
	}
}

func TestKubeletKubeconfigPointsAtTheProxy(t *testing.T) {
	b, err := KubeletKubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster].Server; s != constants.YurthubProxyURL {
		t.Errorf("server %q", s)
	}
}

func TestWaitHealthyAndNodeReady(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls < 3 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("OK"))
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if last, err := WaitHealthy(ctx, srv.Client(), srv.URL, time.Millisecond); err != nil || last != "HTTP 200 OK" {
		t.Fatalf("WaitHealthy: %q %v", last, err)
	}

	restart := time.Now()
	old := metav1.NewTime(restart.Add(-time.Minute))
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: old}}}}
	c := fake.NewSimpleClientset(n)
	short, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if _, err := WaitNodeReady(short, kubetest.Wrap(c), "n", restart, time.Millisecond); err == nil {
		t.Error("a heartbeat from before the restart counted")
	}
	if _, err := WaitNodeReady(ctx, kubetest.Wrap(c), "n", time.Time{}, time.Millisecond); err != nil {
		t.Errorf("without since: %v", err)
	}
}

// Answers is about anything answering, Healthy about a 200.
func TestAnswersAndHealthy(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "waiting for certificate", http.StatusServiceUnavailable)
	}))
	ctx := context.Background()
	if !Answers(ctx, srv.Client(), srv.URL) {
		t.Error("a 503 is an answer")
	}
	if ok, state := Healthy(ctx, srv.Client(), srv.URL); ok || state != "HTTP 503 waiting for certificate" {
		t.Errorf("Healthy: %v %q", ok, state)
	}
	srv.Close()
	if Answers(ctx, srv.Client(), srv.URL) {
		t.Error("a closed port answered")
	}
	if ok, state := Healthy(ctx, srv.Client(), srv.URL); ok || !strings.Contains(state, "connect") {
		t.Errorf("Healthy on a closed port: %v %q", ok, state)
	}
}

// A Ready heartbeat in the second of the restart that the old kubelet
// sent does not count at once; the restarted kubelet's NotReady -> Ready
// does, a Ready heartbeat from a later second does, and an ambiguous Ready
// does once readySettle has passed (kubelet does not re-report an
// unchanged status for minutes).
func TestNodeReadyAfterRestartHolds(t *testing.T) {
	restart := time.Date(2026, 12, 1, 10, 0, 0, 600e6, time.UTC)
	at := func(d time.Duration) metav1.Time { return metav1.NewTime(restart.Truncate(time.Second).Add(d)) }
	node := func(status corev1.ConditionStatus, heartbeat, transition metav1.Time) *corev1.Node {
		return &corev1.Node{Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: status, LastHeartbeatTime: heartbeat, LastTransitionTime: transition}}}}
	}
	soon, later := restart.Add(500*time.Millisecond), restart.Add(readySettle+time.Second)
	for _, tc := range []struct {
		name string
		n    *corev1.Node
		now  time.Time
		want bool
	}{
		{"old kubelet's heartbeat in the restart's second, just after", node(corev1.ConditionTrue, at(0), at(-time.Minute)), soon, false},
		{"the same, once settled", node(corev1.ConditionTrue, at(0), at(-time.Minute)), later, true},
		{"heartbeat before the restart", node(corev1.ConditionTrue, at(-2*time.Second), at(-time.Minute)), later, false},
		{"restarted kubelet's NotReady", node(corev1.ConditionFalse, at(time.Second), at(time.Second)), later, false},
		{"Ready again after the restart's NotReady", node(corev1.ConditionTrue, at(2*time.Second), at(2*time.Second)), soon, true},
		{"restarted kubelet's Ready from a later second", node(corev1.ConditionTrue, at(time.Second), at(-time.Minute)), soon, true},
	} {
		if got, state := NodeReadyAt(tc.n, restart, tc.now); got != tc.want {
			t.Errorf("%s: %v (%s), want %v", tc.name, got, state, tc.want)
		}
	}
	if ok, _ := NodeReady(node(corev1.ConditionTrue, at(-time.Hour), at(-time.Hour)), time.Time{}); !ok {
		t.Error("without a restart time any Ready counts")
	}
}
