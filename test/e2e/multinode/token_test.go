package multinode

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/test/cluster"
)

// renew runs `yurtadm token renew --token-file F` on n with tok in a 0600
// file and fails t if the secret shows anywhere in what it printed.
func renew(ctx context.Context, t *testing.T, n *cluster.Node, tok string) cluster.Result {
	t.Helper()
	const f = "/root/renew-token"
	if err := os.WriteFile(n.HostPath(f), []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = n.Run(context.Background(), "rm", "-f", f) }()
	r, err := n.Run(ctx, "yurtadm", "token", "renew", "--token-file", f)
	if err != nil {
		t.Fatal(err)
	}
	if _, secret, _ := strings.Cut(tok, "."); secret != "" && strings.Contains(r.Stdout+r.Stderr, secret) {
		t.Errorf("token renew printed the token's secret:\n%s", strings.ReplaceAll(r.String(), tok, "<token>"))
	}
	return r
}

// TestTokenRenew: on an edge node joined with yurthub in token bootstrap
// mode, `yurtadm token renew` hands the running yurthub a new bootstrap
// token through its /v1/token endpoint; a token the cluster does not know
// is refused and changes nothing; a badly formed one is refused before
// anything is sent; a yurthub that uses kubelet's certificate gets nothing.
func TestTokenRenew(t *testing.T) {
	c, n, ctx := cleanEdge2(t, 8*time.Minute)
	if _, err := c.JoinNode(ctx, n, "--yurthub-bootstrap-mode", "token"); err != nil {
		t.Fatal(err)
	}
	first, err := n.Output(ctx, "cat", constants.YurthubBootstrapFile)
	if err != nil {
		t.Fatalf("token mode: %v", err)
	}
	if mode, err := n.Output(ctx, "stat", "-c", "%a", constants.YurthubBootstrapFile); err != nil || strings.TrimSpace(mode) != "600" {
		t.Errorf("%s has mode %q (%v), want 600", constants.YurthubBootstrapFile, mode, err)
	}

	t.Run("a new token", func(t *testing.T) {
		tok, _, err := c.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		id, secret, _ := strings.Cut(tok, ".")
		if strings.Contains(first, secret) {
			t.Fatal("the new token is already in the bootstrap file")
		}
		r := renew(ctx, t, n, tok)
		if r.ExitCode != 0 || !strings.Contains(r.Stderr, id) || !strings.Contains(r.Stderr, "now holds it") {
			t.Fatalf("token renew: want exit 0 naming token %s as confirmed:\n%s", id, strings.ReplaceAll(r.String(), tok, "<token>"))
		}
		measure(t, "yurtadm token renew on a token-mode edge node: %s", r.Took.Round(time.Millisecond))
		if b, err := n.Output(ctx, "cat", constants.YurthubBootstrapFile); err != nil || !strings.Contains(b, tok) {
			t.Errorf("%s does not hold the new token (%v)", constants.YurthubBootstrapFile, err)
		}
		if out, err := n.Output(ctx, "ynode-web", "-get", constants.YurthubHealthzURL); err != nil || strings.TrimSpace(out) != "OK" {
			t.Errorf("yurthub healthz after renew: %q %v", out, err)
		}
	})

	t.Run("a token the cluster does not know", func(t *testing.T) {
		before, err := n.Output(ctx, "cat", constants.YurthubBootstrapFile)
		if err != nil {
			t.Fatal(err)
		}
		r := renew(ctx, t, n, "zzzzzz.0123456789abcdef")
		if r.ExitCode != 1 || !strings.Contains(r.Stderr, "does not know a bootstrap token with ID zzzzzz") {
			t.Errorf("unknown token: want exit 1 naming token zzzzzz, nothing sent:\n%s", r)
		}
		if after, _ := n.Output(ctx, "cat", constants.YurthubBootstrapFile); after != before {
			t.Errorf("%s changed after a refused token", constants.YurthubBootstrapFile)
		}
	})

	t.Run("a badly formed token is refused before sending", func(t *testing.T) {
		if r := renew(ctx, t, n, "not-a-token"); r.ExitCode != 2 {
			t.Errorf("bad token format: want exit 2:\n%s", r)
		}
	})

	t.Run("kubelet certificate mode", func(t *testing.T) {
		faultNode(ctx, t, c, n, "the token-mode join")
		if _, err := c.JoinNode(ctx, n); err != nil {
			t.Fatal(err)
		}
		tok, _, err := c.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if r := renew(ctx, t, n, tok); r.ExitCode != 1 || !strings.Contains(r.Stderr, "nothing was sent") {
			t.Errorf("kubeletcertificate mode: want exit 1 saying nothing was sent:\n%s", strings.ReplaceAll(r.String(), tok, "<token>"))
		}
	})
}
