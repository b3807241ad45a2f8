package multinode

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/yurtadm/yurtadm/test/cluster"
	"github.com/yurtadm/yurtadm/test/framework"
)

// resetLeftovers are what a join writes (with a pod running) and `yurtadm
// reset` must remove: joinLeftovers and what kubelet made for the pod.
var resetLeftovers = append([]string{"/var/lib/yurthub/pki", "/var/lib/yurthub/bootstrap-hub.conf",
	"/var/lib/kubelet/kubeadm-flags.env", "/var/lib/kubelet/pods"}, joinLeftovers...)

// The phases reset's report must list.
var resetPhases = []string{"stop-kubelet", "remove-containers", "unmount",
	"remove-files/yurthub-manifest", "remove-files/yurthub-pki", "remove-files/yurthub", "remove-files/cache", "remove-files/yurthub-logs",
	"remove-files/kubelet", "remove-files/kubelet-dropin", "remove-files/join-files", "remove-files/openyurt", "reload-init-system"}

// TestResetLeavesACleanNode: on a joined edge node under real systemd,
// with a workload pod running (its volumes mounted), `yurtadm reset -o
// json` reports every phase, none failed, and leaves no join file, mount,
// container, pod sandbox or active kubelet; a join over the stale yurthub
// PKI an earlier join leaves (the FAQ's certificate failure after a
// rejoin) is stopped by preflight, naming the check and the reset, with
// the node untouched.
func TestResetLeavesACleanNode(t *testing.T) {
	c := need(t)
	n := node(t, edge2Name)
	ctx := timeout(t, 6*time.Minute)
	defer rejoinAtEnd(t, c, n)
	deployWeb(ctx, t, "web-reset", n.Name)
	if left := existing(ctx, n, resetLeftovers); len(left) < len(resetLeftovers)-3 {
		t.Fatalf("after join and a pod only %v exist; the join wrote less than expected", left)
	}

	r, err := n.Run(ctx, "yurtadm", "reset", "--force", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	if r.ExitCode != 0 {
		t.Fatalf("yurtadm reset failed:\n%s", r)
	}
	measure(t, "yurtadm reset of an edge node with a pod: %s", r.Took.Round(100*time.Millisecond))
	var rep struct {
		Failed bool `json:"failed"`
		Steps  []struct{ Phase, Step, Status, Detail string }
	}
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatalf("reset -o json: %v\n%s", err, r)
	}
	seen := map[string]bool{}
	for _, s := range rep.Steps {
		seen[s.Phase] = true
		t.Logf("reset step %-32s %-13s %s", s.Phase, s.Status, s.Detail)
		if s.Status == "failed" {
			t.Errorf("reset step %s failed: %s", s.Phase, s.Detail)
		}
	}
	if rep.Failed {
		t.Errorf("reset's report says failed")
	}
	for _, p := range resetPhases {
		if !seen[p] {
			t.Errorf("reset's report does not list phase %s", p)
		}
	}
	if left := existing(ctx, n, resetLeftovers); len(left) > 0 {
		t.Errorf("reset left %v", left)
	}
	if mi, err := n.Output(ctx, "cat", "/proc/self/mountinfo"); err != nil {
		t.Error(err)
	} else {
		for _, l := range strings.Split(mi, "\n") {
			if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], "/var/lib/kubelet/") {
				// (/var/lib/kubelet itself is the harness's bind mount:
				// the device's disk, not kubelet's.)
				t.Errorf("reset left a mount: %s", f[4])
			}
		}
	}
	for _, what := range [][]string{{"ps", "-a", "-q"}, {"pods", "-q"}} {
		if out, _ := n.Output(ctx, append([]string{"crictl"}, what...)...); strings.TrimSpace(out) != "" {
			t.Errorf("reset left crictl %s: %s", what[0], out)
		}
	}
	if r, _ := n.Run(ctx, "systemctl", "is-active", "--quiet", "kubelet"); r.ExitCode == 0 {
		t.Errorf("kubelet still active after reset")
	}
	// yurthub's static pod has the same UID at the next join (a hash of
	// its manifest): kubelet would count the logs left as its restarts.
	if out, _ := n.Shell(ctx, "ls -d /var/log/pods/kube-system_yurt-hub-* 2>/dev/null || true"); strings.TrimSpace(out) != "" {
		t.Errorf("reset left yurthub's pod logs: %s", out)
	}
	if err := c.Client.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{}); err != nil && !isNotFound(err) {
		t.Fatal(err)
	}

	t.Run("stale yurthub PKI stops preflight", func(t *testing.T) {
		if _, err := n.Shell(ctx, "mkdir -p /var/lib/yurthub/pki && printf -- '-----BEGIN CERTIFICATE-----\\nstale\\n-----END CERTIFICATE-----\\n' > /var/lib/yurthub/pki/yurthub-current.pem && chmod 600 /var/lib/yurthub/pki/yurthub-current.pem"); err != nil {
			t.Fatal(err)
		}
		tok, hash, err := c.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		before := n.Snapshot(cluster.JoinRoots...)
		r, err := n.Run(ctx, c.JoinArgs(n, c.APIServer(), tok, hash, "--timeout", "30s")...)
		if err != nil {
			t.Fatal(err)
		}
		out := strings.ReplaceAll(r.String(), tok, "<token>")
		if r.ExitCode != 3 {
			t.Errorf("join over stale PKI exited %d, want 3 (preflight)\n%s", r.ExitCode, out)
		}
		if !strings.Contains(r.Stderr, "YurthubPKI") || !strings.Contains(r.Stderr, "yurtadm reset") {
			t.Errorf("join over stale PKI does not name the check and the reset hint:\n%s", out)
		}
		if d := cluster.SnapshotDiff(before, n.Snapshot(cluster.JoinRoots...)); len(d) > 0 {
			t.Errorf("a join stopped by preflight changed the node:\n%s", strings.Join(d, "\n"))
		}
		t.Logf("stopped as expected in %s:\n%s", r.Took.Round(time.Millisecond), strings.TrimSpace(r.Stderr))
		if r, err := n.Run(ctx, "yurtadm", "reset", "--force"); err != nil || r.ExitCode != 0 {
			t.Fatalf("reset: %v\n%s", err, r)
		}
		if left := existing(ctx, n, []string{"/var/lib/yurthub"}); len(left) > 0 {
			t.Errorf("reset left the stale PKI: %v", left)
		}
	})
}

// TestBadInputLeavesTheNodeUntouched: on a reset node, joins with a wrong
// CA hash, a token the cluster does not know, an expired token, an
// endpoint nobody listens on and a node type that does not exist each
// fail with an error naming the bad value, never print a token's secret,
// start no yurthub, and leave the node's files exactly as they were.
func TestBadInputLeavesTheNodeUntouched(t *testing.T) {
	c, n, ctx := cleanEdge2(t, 6*time.Minute)
	good, hash, err := c.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := (&framework.ControlPlane{Client: c.Client}).CreateTokenErr(-time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	const unknown = "abcdef.0123456789abcdef"
	zeroHash := "sha256:" + strings.Repeat("0", 64)
	args := func(endpoint, token, hash string, extra ...string) []string {
		return c.JoinArgs(n, endpoint, token, hash, append([]string{"--timeout", "20s"}, extra...)...)
	}
	cases := []struct {
		name string
		args []string
		says []string // the error must say each of these (any case)
	}{
		{"wrong CA hash", args(c.APIServer(), good, zeroHash), []string{"discovery-token-ca-cert-hash", "does not match"}},
		{"unknown token", args(c.APIServer(), unknown, hash), []string{"abcdef"}},
		{"expired token", args(c.APIServer(), expired, hash), []string{strings.SplitN(expired, ".", 2)[0]}},
		{"unreachable endpoint", args("127.0.0.1:1", good, hash), []string{"127.0.0.1:1"}},
		{"wrong node type", args(c.APIServer(), good, hash, "--node-type", "fog"), []string{"fog"}},
	}
	redact := func(s string) string {
		for _, tok := range []string{good, expired} {
			s = strings.ReplaceAll(s, tok, "<token>")
		}
		return s
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := n.Snapshot(cluster.JoinRoots...)
			r, err := n.Run(ctx, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			out := redact(r.String())
			if r.ExitCode == 0 {
				t.Fatalf("join succeeded:\n%s", out)
			}
			low := strings.ToLower(r.Stderr)
			for _, s := range tc.says {
				if !strings.Contains(low, strings.ToLower(s)) {
					t.Errorf("the error does not mention %q:\n%s", s, out)
				}
			}
			for _, tok := range []string{good, expired, unknown} {
				if _, secret, _ := strings.Cut(tok, "."); strings.Contains(r.Stdout+r.Stderr, secret) {
					t.Errorf("the output shows a token's secret")
				}
			}
			if d := cluster.SnapshotDiff(before, n.Snapshot(cluster.JoinRoots...)); len(d) > 0 {
				t.Errorf("the node changed:\n%s", strings.Join(d, "\n"))
			}
			if id := runningContainer(ctx, n, "yurt-hub"); id != "" {
				t.Errorf("yurthub runs after a failed join: %s", id)
			}
			t.Logf("exit %d in %s: %s", r.ExitCode, r.Took.Round(time.Millisecond), strings.TrimSpace(redact(r.Stderr)))
		})
	}
}

// existing lists which of paths exist on n (never following a symlink).
func existing(ctx context.Context, n *cluster.Node, paths []string) []string {
	var have []string
	for _, p := range paths {
		if _, err := n.Output(ctx, "test", "!", "-e", p, "-a", "!", "-L", p); err != nil {
			have = append(have, p)
		}
	}
	return have
}
