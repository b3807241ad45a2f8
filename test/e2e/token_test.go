package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/test/e2e/harness"
)

// renew runs `yurtadm token renew --token-file F` with tok in a 0600 file
// and fails t if the secret shows anywhere in what it printed.
func renew(t *testing.T, tok string) harness.Result {
	t.Helper()
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := h.Run(context.Background(), h.Yurtadm(), "token", "renew", "--token-file", f)
	if err != nil {
		t.Fatal(err)
	}
	if _, secret, _ := strings.Cut(tok, "."); secret != "" && strings.Contains(r.Stdout+r.Stderr, secret) {
		t.Errorf("token renew printed the token's secret:\n%s", harness.Redact(r.String(), tok))
	}
	return r
}

// Scenario: `yurtadm token renew` hands a running yurthub (token bootstrap
// mode) a new bootstrap token through its /v1/token endpoint; a token the
// cluster does not know is refused by yurthub and changes nothing; a
// yurthub that uses kubelet's certificate gets nothing.
func TestTokenRenew(t *testing.T) {
	machine(t)
	join(t, "--yurthub-bootstrap-mode", "token")
	checkJoinedNode(t, "edge")
	first, err := os.ReadFile(constants.YurthubBootstrapFile)
	if err != nil {
		t.Fatalf("token mode: %v", err)
	}

	t.Run("a new token", func(t *testing.T) {
		tok, err := h.Token(time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		id, secret, _ := strings.Cut(tok, ".")
		if strings.Contains(string(first), secret) {
			t.Fatal("the new token is already in the bootstrap file")
		}
		r := renew(t, tok)
		if r.ExitCode != 0 || !strings.Contains(r.Stderr, id) || !strings.Contains(r.Stderr, "now holds it") {
			t.Fatalf("token renew: want exit 0 naming token %s as confirmed:\n%s", id, harness.Redact(r.String(), tok))
		}
		b, err := os.ReadFile(constants.YurthubBootstrapFile)
		if err != nil || !strings.Contains(string(b), tok) {
			t.Errorf("%s does not hold the new token (%v)", constants.YurthubBootstrapFile, err)
		}
		if code, _, err := harness.Get(harness.YurthubHealthz); err != nil || code != 200 {
			t.Errorf("yurthub healthz after renew: %d %v", code, err)
		}
	})

	t.Run("a token the cluster does not know", func(t *testing.T) {
		before, err := os.ReadFile(constants.YurthubBootstrapFile)
		if err != nil {
			t.Fatal(err)
		}
		r := renew(t, "zzzzzz.0123456789abcdef")
		if r.ExitCode != 1 || !strings.Contains(r.Stderr, "does not know a bootstrap token with ID zzzzzz") {
			t.Errorf("unknown token: want exit 1 naming token zzzzzz, nothing sent:\n%s", r)
		}
		after, _ := os.ReadFile(constants.YurthubBootstrapFile)
		if string(after) != string(before) {
			t.Errorf("%s changed after a refused token", constants.YurthubBootstrapFile)
		}
	})

	t.Run("a badly formed token is refused before sending", func(t *testing.T) {
		r := renew(t, "not-a-token")
		if r.ExitCode != 2 {
			t.Errorf("bad token format: want exit 2:\n%s", r)
		}
	})

	t.Run("kubelet certificate mode", func(t *testing.T) {
		machine(t) // cleans the node
		join(t)
		tok, err := h.Token(time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		r := renew(t, tok)
		if r.ExitCode != 1 || !strings.Contains(r.Stderr, "nothing was sent") {
			t.Errorf("kubeletcertificate mode: want exit 1 saying nothing was sent:\n%s", harness.Redact(r.String(), tok))
		}
	})
}
