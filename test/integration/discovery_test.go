package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/discovery"
	"github.com/yurtadm/yurtadm/pkg/host"
	"github.com/yurtadm/yurtadm/pkg/host/hosttest"
	"github.com/yurtadm/yurtadm/pkg/join"
	"github.com/yurtadm/yurtadm/pkg/kube"
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

	// All of discovery on two connections, and the token's requests
	// after it on the second: each further one costs a TCP and a TLS
	// handshake, 0.6 s over a 4G link (docs/benchmarks.md). The first,
	// anonymous one is closed by kube-apiserver after cluster-info (an
	// HTTP/2 GOAWAY for unauthenticated requests).
	t.Run("two connections for discovery and the token's requests", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		proxy := newCountingProxy(t, endpoint)
		var extra error
		res, err := discovery.Discover(ctx, discovery.Options{Endpoint: proxy.addr, Token: token, CACertHashes: []string{cp.CACertHash},
			AlsoRead: []func(context.Context, kube.Interface){func(ctx context.Context, c kube.Interface) {
				_, extra = c.CoreV1().ConfigMaps("kube-system").Get(ctx, discovery.KubeletConfigMap, metav1.GetOptions{})
			}}})
		if err != nil || extra != nil {
			t.Fatalf("discover through the proxy: %v, also-read: %v", err, extra)
		}
		client, err := kube.New(res.TokenConfig(token))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if _, err := client.CoreV1().ConfigMaps("kube-system").Get(ctx, discovery.KubeadmConfigMap, metav1.GetOptions{}); err != nil {
				t.Fatalf("read with the token after discovery: %v", err)
			}
		}
		if n := proxy.count(); n != 2 {
			t.Errorf("discovery (3 reads at once with the token) and 3 later reads opened %d connections to the API server, want 2", n)
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

// countingProxy forwards TCP connections to an API server and counts them.
type countingProxy struct {
	addr string
	mu   sync.Mutex
	n    int
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		t.Fatal(err)
	}
	// The same address as the API server's (its certificate names it).
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &countingProxy{addr: ln.Addr().String()}
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.n++
			p.mu.Unlock()
			go func() {
				defer in.Close()
				out, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer out.Close()
				go func() { _, _ = io.Copy(out, in) }()
				_, _ = io.Copy(in, out)
			}()
		}
	}()
	return p
}

func (p *countingProxy) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}
