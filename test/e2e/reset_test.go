package e2e

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/yurtadm/yurtadm/test/e2e/harness"
)

// What a join leaves that reset must remove.
var joinLeftovers = []string{
	"/var/lib/yurthub/pki",
	"/var/lib/yurthub/bootstrap-hub.conf",
	"/var/lib/yurthub",
	"/etc/kubernetes/cache",
	"/etc/kubernetes/manifests/yurthub.yaml",
	"/etc/kubernetes/kubelet.conf",
	"/etc/kubernetes/bootstrap-kubelet.conf",
	"/etc/kubernetes/pki/ca.crt",
	"/var/lib/kubelet/config.yaml",
	"/var/lib/kubelet/kubeadm-flags.env",
	"/var/lib/kubelet/pki",
	"/var/lib/kubelet/pods",
	"/var/lib/openyurt",
	"/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
}

// The phases reset's report must list.
var resetPhases = []string{"stop-kubelet", "remove-containers", "unmount",
	"remove-files/yurthub-manifest", "remove-files/yurthub-pki", "remove-files/yurthub", "remove-files/cache",
	"remove-files/kubelet", "remove-files/kubelet-dropin", "remove-files/join-files", "remove-files/openyurt", "reload-init-system"}

type resetReport struct {
	Failed bool `json:"failed"`
	Steps  []struct {
		Phase  string `json:"phase"`
		Step   string `json:"step"`
		Status string `json:"status"`
		Detail string `json:"detail"`
	} `json:"steps"`
}

// Scenarios 2 and 3: reset removes everything the join made; a rejoin with
// a new token works; a join over stale yurthub PKI is stopped by preflight.
func TestResetAndRejoin(t *testing.T) {
	h := machine(t)
	ctx := context.Background()
	join(t)
	workloadPod(t, "sleeper-reset")
	if have := harness.Exists(joinLeftovers...); len(have) < 10 {
		t.Fatalf("after join only %v exist; the join wrote less than expected", have)
	}

	r, err := h.Run(ctx, h.Yurtadm(), "reset", "--force", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	if r.ExitCode != 0 {
		t.Fatalf("yurtadm reset failed:\n%s", r)
	}
	var rep resetReport
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
	for _, p := range resetPhases {
		if !seen[p] {
			t.Errorf("reset's report does not list phase %s", p)
		}
	}
	if left := harness.Exists(joinLeftovers...); len(left) > 0 {
		t.Errorf("reset left %v", left)
	}
	if mounts := harness.Mounts("/var/lib/kubelet"); len(mounts) > 0 {
		t.Errorf("reset left mounts %v", mounts)
	}
	if out, _ := h.Crictl(ctx, "ps", "-a", "-q"); strings.TrimSpace(out.Stdout) != "" {
		t.Errorf("reset left containers: %s", out.Stdout)
	}
	if out, _ := h.Crictl(ctx, "pods", "-q"); strings.TrimSpace(out.Stdout) != "" {
		t.Errorf("reset left pod sandboxes: %s", out.Stdout)
	}
	if out, _ := h.Run(ctx, "systemctl", "is-active", "kubelet"); out.ExitCode == 0 {
		t.Errorf("kubelet still active after reset")
	}

	t.Run("rejoin with a new token", func(t *testing.T) {
		h.DeleteNode(ctx)
		join(t)
		checkJoinedNode(t, "edge")
	})

	t.Run("stale yurthub PKI stops preflight", func(t *testing.T) {
		if r, err := h.Run(ctx, h.Yurtadm(), "reset", "--force"); err != nil || r.ExitCode != 0 {
			t.Fatalf("reset: %v\n%s", err, r)
		}
		// What an earlier join's yurthub leaves when nobody resets (the
		// FAQ's certificate failure after a rejoin).
		if err := os.MkdirAll("/var/lib/yurthub/pki", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("/var/lib/yurthub/pki/yurthub-current.pem", []byte("-----BEGIN CERTIFICATE-----\nstale\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		before := harness.Snapshot(harness.HostRoots...)
		tok, err := h.Token(time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		r, err := h.Run(ctx, h.Yurtadm(), h.JoinArgs(tok)...)
		if err != nil {
			t.Fatal(err)
		}
		out := harness.Redact(r.String(), tok)
		if r.ExitCode != 3 {
			t.Errorf("join over stale PKI exited %d, want 3 (preflight)\n%s", r.ExitCode, out)
		}
		if !strings.Contains(r.Stderr, "YurthubPKI") || !strings.Contains(r.Stderr, "yurtadm reset") {
			t.Errorf("join over stale PKI does not name the check and the reset hint:\n%s", out)
		}
		if d := harness.SnapshotDiff(before, harness.Snapshot(harness.HostRoots...)); len(d) > 0 {
			t.Errorf("a join stopped by preflight changed the host:\n%s", strings.Join(d, "\n"))
		}
		t.Logf("stopped as expected:\n%s", strings.TrimSpace(r.Stderr))
	})
}
