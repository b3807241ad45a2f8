package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/discovery"
	"github.com/yurtadm/yurtadm/pkg/host"
	"github.com/yurtadm/yurtadm/pkg/host/hosttest"
	"github.com/yurtadm/yurtadm/pkg/join"
	"github.com/yurtadm/yurtadm/test/framework"
)

// unusedLoopbackEndpoint is a loopback port nobody listens on.
func unusedLoopbackEndpoint(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestDiscoveryAgainstARealAPIServer runs yurtadm's bootstrap-token
// discovery, and `yurtadm join` up to discovery, against a real
// kube-apiserver set up by kubeadm.
func TestDiscoveryAgainstARealAPIServer(t *testing.T) {
	cp := framework.StartControlPlane(t)
	token := cp.CreateToken(t, time.Hour)
	cp.WaitForTokenSigned(t, token, time.Minute)
	expired := cp.CreateToken(t, -time.Hour)
	endpoint := strings.TrimPrefix(cp.Endpoint, "https://")
	unknown := "zzzzzz.0123456789abcdef"
	wrongSecret := strings.SplitN(token, ".", 2)[0] + ".ffffffffffffffff"
	wrongHash := "sha256:" + strings.Repeat("0", 64)
	unreachable := unusedLoopbackEndpoint(t)

	t.Run("valid token and CA hash", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res, err := discovery.Discover(ctx, discovery.Options{Endpoint: endpoint, Token: token, CACertHashes: []string{cp.CACertHash}})
		if err != nil {
			t.Fatalf("discover: %v", err)
		}
		if res.Server != cp.Endpoint || !bytes.Equal(res.CAData, cp.CACertPEM) || res.CAHash != cp.CACertHash {
			t.Errorf("result server %s hash %s", res.Server, res.CAHash)
		}
		if res.KubernetesVersion != "v1.34.4" {
			t.Errorf("cluster version %q, want v1.34.4", res.KubernetesVersion)
		}
		if !bytes.Contains(res.KubeletConfig, []byte("kind: KubeletConfiguration")) {
			t.Errorf("kubelet-config: %s", res.KubeletConfig)
		}
	})

	failures := []struct {
		name     string
		endpoint string
		token    string
		hash     string
		want     error
		contains string
	}{
		{"wrong CA hash", endpoint, token, wrongHash, discovery.ErrCAPin, "not among"},
		{"unknown token", endpoint, unknown, cp.CACertHash, discovery.ErrToken, "unknown or has expired"},
		{"expired token", endpoint, expired, cp.CACertHash, discovery.ErrToken, "unknown or has expired"},
		{"token with the wrong secret", endpoint, wrongSecret, cp.CACertHash, discovery.ErrToken, "does not match"},
		{"unreachable endpoint", unreachable, token, cp.CACertHash, discovery.ErrUnreachable, "connection refused"},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := discovery.Discover(ctx, discovery.Options{Endpoint: tc.endpoint, Token: tc.token, CACertHashes: []string{tc.hash}, Timeout: 10 * time.Second})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.want, tc.contains)
			}
			if strings.Contains(err.Error(), strings.SplitN(tc.token, ".", 2)[1]) {
				t.Errorf("the error shows the token secret")
			}

			// The whole join stops there and writes nothing.
			h, init, _ := hosttest.New(t)
			before := hosttest.Tree(t, h)
			var out, errOut bytes.Buffer
			env := join.DefaultEnv()
			env.Host = func(string) *host.Host { return h }
			cmd := join.NewCommandWithEnv(cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, env)
			cmd.SetArgs([]string{tc.endpoint, "--token", tc.token, "--discovery-token-ca-cert-hash", tc.hash,
				"--node-name", "edge-it", "--skip-phases", "preflight"})
			cmd.SetOut(&out)
			cmd.SetErr(&errOut)
			cmd.SilenceErrors, cmd.SilenceUsage = true, true
			err = cmd.ExecuteContext(ctx)
			if !errors.Is(err, tc.want) || cmdutil.ExitCode(err) != cmdutil.ExitError || cmdutil.Hint(err) == "" {
				t.Fatalf("join: err = %v (exit %d, hint %q)", err, cmdutil.ExitCode(err), cmdutil.Hint(err))
			}
			if after := hosttest.Tree(t, h); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("join wrote to the host: %v", after)
			}
			if len(init.CallLog()) != 0 {
				t.Errorf("join touched services: %v", init.CallLog())
			}
			if strings.Contains(out.String()+errOut.String(), strings.SplitN(tc.token, ".", 2)[1]) {
				t.Errorf("join printed the token secret")
			}
		})
	}

	t.Run("dry-run join renders real files and changes nothing", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		h, init, sc := hosttest.New(t)
		hosttest.WriteFile(t, h, "/run/containerd/containerd.sock", "")
		sc.Answers["kubelet --version"] = hosttest.Answer{Out: "Kubernetes v1.34.4"}
		// The images phase reads the runtime: every image is there.
		cri := "crictl --runtime-endpoint unix:///run/containerd/containerd.sock "
		sc.Answers[cri+"info"] = hosttest.Answer{Out: "{}"}
		sc.Prefixes = map[string]hosttest.Answer{cri + "inspecti -q ": {Out: "{}"}}
		before := hosttest.Tree(t, h)
		var out, errOut bytes.Buffer
		env := join.DefaultEnv()
		env.Host = func(string) *host.Host { return h }
		cmd := join.NewCommandWithEnv(cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, env)
		cmd.SetArgs([]string{endpoint, "--token", token, "--discovery-token-ca-cert-hash", cp.CACertHash,
			"--node-name", "edge-it", "--skip-phases", "preflight", "--dry-run"})
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		if err := cmd.ExecuteContext(ctx); err != nil {
			t.Fatalf("dry run: %v\n%s", err, errOut.String())
		}
		for _, want := range []string{"would write /etc/kubernetes/manifests/yurthub.yaml", "--server-addr=" + cp.Endpoint, "containerRuntimeEndpoint: unix:///run/containerd/containerd.sock"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("dry-run output lacks %q", want)
			}
		}
		if strings.Contains(out.String()+errOut.String(), strings.SplitN(token, ".", 2)[1]) {
			t.Errorf("dry run printed the token secret")
		}
		if after := hosttest.Tree(t, h); fmt.Sprint(after) != fmt.Sprint(before) || len(init.CallLog()) != 0 {
			t.Errorf("dry run changed the host or services")
		}
	})
}
