package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/yurtadm/yurtadm/test/e2e/harness"
)

// Scenario 4: bad input is a clear error, a non-zero exit, and leaves the
// host's files exactly as they were.
func TestBadInputLeavesHostUntouched(t *testing.T) {
	h := machine(t)
	ctx := context.Background()
	good, err := h.Token(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := h.Token(-time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	const unknown = "abcdef.0123456789abcdef"
	zeroHash := "sha256:" + strings.Repeat("0", 64)
	args := func(endpoint, token, hash string, extra ...string) []string {
		a := []string{"join", endpoint, "--token", token, "--discovery-token-ca-cert-hash", hash,
			"--yurthub-image", harness.YurthubImage, "--cri-socket", harness.CRISocket, "--timeout", "20s", "--config", h.JoinConfig()}
		return append(a, extra...)
	}
	cases := []struct {
		name string
		args []string
		// the error must say one of these (lower case)
		says []string
	}{
		{"wrong CA hash", args(h.APIServer(), good, zeroHash), []string{"discovery-token-ca-cert-hash", "does not match"}},
		{"unknown token", args(h.APIServer(), unknown, h.CP.CACertHash), []string{"abcdef"}},
		{"expired token", args(h.APIServer(), expired, h.CP.CACertHash), []string{strings.SplitN(expired, ".", 2)[0]}},
		{"unreachable endpoint", args("127.0.0.1:1", good, h.CP.CACertHash), []string{"127.0.0.1:1"}},
		{"wrong node type", args(h.APIServer(), good, h.CP.CACertHash, "--node-type", "fog"), []string{"fog"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := harness.Snapshot(harness.HostRoots...)
			r, err := h.Run(ctx, h.Yurtadm(), c.args...)
			if err != nil {
				t.Fatal(err)
			}
			out := harness.Redact(harness.Redact(r.String(), good), expired)
			if r.ExitCode == 0 {
				t.Fatalf("join succeeded:\n%s", out)
			}
			low := strings.ToLower(r.Stderr)
			for _, s := range c.says {
				if !strings.Contains(low, strings.ToLower(s)) {
					t.Errorf("the error does not mention %q:\n%s", s, out)
				}
			}
			for _, tok := range []string{good, expired, unknown} {
				if _, secret, _ := strings.Cut(tok, "."); strings.Contains(r.Stdout+r.Stderr, secret) {
					t.Errorf("the output shows a token's secret")
				}
			}
			if d := harness.SnapshotDiff(before, harness.Snapshot(harness.HostRoots...)); len(d) > 0 {
				t.Errorf("the host changed:\n%s", strings.Join(d, "\n"))
			}
			if ids := h.RunningContainers(ctx, "yurt-hub"); len(ids) > 0 {
				t.Errorf("yurthub runs after a failed join")
			}
			t.Logf("exit %d in %s: %s", r.ExitCode, r.Took.Round(time.Millisecond), strings.TrimSpace(harness.Redact(r.Stderr, good)))
		})
	}
}
