package token

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/host"
	"github.com/yurtadm/yurtadm/pkg/host/hosttest"
	"github.com/yurtadm/yurtadm/templates"
)

const (
	newToken = "k3q9zp.0a1b2c3d4e5f6g7h"
	oldToken = "oldtkn.9z8y7x6w5v4u3t2s"
	secret   = "0a1b2c3d4e5f6g7h"
)

// fakeHub is yurthub's /v1/token endpoint as v1.7.0 serves it: it reads
// {"jointoken": ...} from the body and, in token mode, rewrites the
// bootstrap kubeconfig with the token.
type fakeHub struct {
	t        *testing.T
	h        *host.Host
	mu       sync.Mutex
	requests int
	status   int    // answer with this status instead of acting
	body     string // and this body
	write    bool   // write the bootstrap file as yurthub does
	delay    time.Duration
}

func (f *fakeHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests++
	f.mu.Unlock()
	if r.URL.Path != constants.YurthubTokenPath || (r.Method != http.MethodPost && r.Method != http.MethodPut) {
		http.NotFound(w, r)
		return
	}
	time.Sleep(f.delay)
	var tokens map[string]string
	if err := json.NewDecoder(r.Body).Decode(&tokens); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "could not decode tokens, %v", err)
		return
	}
	tok := tokens["jointoken"]
	if tok == "" {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, "no join token is set")
		return
	}
	if f.status != 0 {
		w.WriteHeader(f.status)
		fmt.Fprint(w, strings.ReplaceAll(f.body, "TOKEN", tok))
		return
	}
	if f.write {
		hosttest.WriteFile(f.t, f.h, constants.YurthubBootstrapFile, bootstrapConf(f.t, tok))
	}
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "update bootstrap token successfully")
}

func bootstrapConf(t testing.TB, tok string) string {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubernetes"] = &clientcmdapi.Cluster{Server: "https://10.0.0.1:6443"}
	cfg.AuthInfos["token-bootstrap-client"] = &clientcmdapi.AuthInfo{Token: tok}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "kubernetes", AuthInfo: "token-bootstrap-client"}
	cfg.CurrentContext = "c"
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func manifest(t testing.TB, h *host.Host, mode string) {
	b, err := templates.RenderYurthub(templates.Yurthub{Image: "docker.io/openyurt/yurthub:v1.7.0", Namespace: "kube-system",
		ServerAddr: "https://10.0.0.1:6443", NodePoolName: "edge", WorkingMode: "edge", BootstrapMode: mode, Verbosity: 2})
	if err != nil {
		t.Fatal(err)
	}
	hosttest.WriteFile(t, h, constants.YurthubManifest, string(b))
}

type result struct {
	code        int
	out, errOut string
	err         error
}

func run(t *testing.T, h *host.Host, hub *fakeHub, stdin string, readSecret func(string) (string, error), args ...string) result {
	t.Helper()
	return runWith(t, h, hub, nil, stdin, readSecret, args...)
}

// runWith is run with a cluster-info reader (nil: no check).
func runWith(t *testing.T, h *host.Host, hub *fakeHub, clusterInfo func(context.Context, *rest.Config) (map[string]string, error),
	stdin string, readSecret func(string) (string, error), args ...string) result {
	t.Helper()
	url := "http://127.0.0.1:1" // refuses connections
	if hub != nil {
		srv := httptest.NewServer(hub)
		t.Cleanup(srv.Close)
		url = srv.URL
	}
	var out, errOut bytes.Buffer
	s := cmdutil.IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}
	cmd := newCommand(s, deps{newHost: func(string) *host.Host { return h }, serveURL: url, http: &http.Client{}, readSecret: readSecret, clusterInfo: clusterInfo,
		listener: fakeYurthubListener})
	cmd.SetArgs(append([]string{"renew", "--host-root", h.FS.Root}, args...))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	return result{code: cmdutil.ExitCode(err), out: out.String(), errOut: errOut.String(), err: err}
}

// noSecret fails the test when the token's secret shows anywhere.
func (r result) noSecret(t *testing.T) {
	t.Helper()
	all := r.out + r.errOut
	if r.err != nil {
		all += r.err.Error() + cmdutil.Hint(r.err)
	}
	for _, s := range []string{secret, "9z8y7x6w5v4u3t2s", "q1w2e3r4t5y6u7i8", "zz99"} {
		if strings.Contains(all, s) {
			t.Fatalf("a token's secret is in the output: %q", all)
		}
	}
}

func TestRenewTokenMode(t *testing.T) {
	h, _, _ := hosttest.New(t)
	manifest(t, h, constants.YurthubBootstrapModeToken)
	hosttest.WriteFile(t, h, constants.YurthubBootstrapFile, bootstrapConf(t, oldToken))
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(newToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hub := &fakeHub{t: t, h: h, write: true}
	r := run(t, h, hub, "", nil, "--token-file", tokenFile)
	if r.code != 0 || hub.requests != 1 {
		t.Fatalf("exit %d, %d requests: %v\n%s", r.code, hub.requests, r.err, r.errOut)
	}
	r.noSecret(t)
	if !strings.Contains(r.errOut, "ID k3q9zp") || !strings.Contains(r.errOut, "now holds it") {
		t.Fatalf("the result is not confirmed: %q", r.errOut)
	}

	// -o json, token from stdin.
	r = run(t, h, hub, newToken+"\n", nil, "--token-file", "-", "-o", "json")
	var res Result
	if r.code != 0 || json.Unmarshal([]byte(r.out), &res) != nil {
		t.Fatalf("exit %d: %v %q", r.code, r.err, r.out)
	}
	if !res.Updated || !res.Confirmed || res.TokenID != "k3q9zp" || res.BootstrapFile != constants.YurthubBootstrapFile {
		t.Fatalf("%+v", res)
	}
	r.noSecret(t)

	// From the terminal, without echo.
	r = run(t, h, hub, "", func(string) (string, error) { return newToken + "\n", nil })
	if r.code != 0 {
		t.Fatalf("exit %d: %v", r.code, r.err)
	}
}

// TestRenewUnconfirmed: yurthub answers success but its bootstrap file
// holds another token; renew says so and fails.
func TestRenewUnconfirmed(t *testing.T) {
	h, _, _ := hosttest.New(t)
	manifest(t, h, constants.YurthubBootstrapModeToken)
	hosttest.WriteFile(t, h, constants.YurthubBootstrapFile, bootstrapConf(t, oldToken))
	r := run(t, h, &fakeHub{t: t, h: h}, newToken, nil, "--token-file", "-")
	if r.code != cmdutil.ExitError || !strings.Contains(r.err.Error(), "holds another token") {
		t.Fatalf("exit %d: %v", r.code, r.err)
	}
	r.noSecret(t)

	// Without the file (not root, say) the success is reported unconfirmed.
	h2, _, _ := hosttest.New(t)
	manifest(t, h2, constants.YurthubBootstrapModeToken)
	r = run(t, h2, &fakeHub{t: t, h: h2}, newToken, nil, "--token-file", "-", "-o", "json")
	var res Result
	if r.code != 0 || json.Unmarshal([]byte(r.out), &res) != nil || !res.Updated || res.Confirmed || res.Detail == "" {
		t.Fatalf("exit %d: %v %q", r.code, r.err, r.out)
	}
}

// TestRenewRefusedBeforeSending: bad input and a node in kubeletcertificate
// mode are refused before any request reaches yurthub.
func TestRenewRefusedBeforeSending(t *testing.T) {
	tests := []struct {
		name     string
		mode     string
		stdin    string
		args     []string
		code     int
		contains string
	}{
		{"bad format", constants.YurthubBootstrapModeToken, "", []string{"--token", "ABCDEF.q1w2e3r4t5y6u7i8"}, cmdutil.ExitUsage, "invalid bootstrap token format"},
		{"short secret", constants.YurthubBootstrapModeToken, "q1w2e3.zz99\n", []string{"--token-file", "-"}, cmdutil.ExitUsage, "invalid bootstrap token format"},
		{"empty stdin", constants.YurthubBootstrapModeToken, "", []string{"--token-file", "-"}, cmdutil.ExitUsage, "invalid bootstrap token format"},
		{"no token, no terminal", constants.YurthubBootstrapModeToken, "", nil, cmdutil.ExitUsage, "no token given"},
		{"two sources", constants.YurthubBootstrapModeToken, "", []string{"--token", newToken, "--token-file", "-"}, cmdutil.ExitUsage, "mutually exclusive"},
		{"missing file", constants.YurthubBootstrapModeToken, "", []string{"--token-file", "/nonexistent/token"}, cmdutil.ExitUsage, "--token-file"},
		{"file is a directory", constants.YurthubBootstrapModeToken, "", []string{"--token-file", os.TempDir()}, cmdutil.ExitUsage, "is a directory"},
		{"bad output", constants.YurthubBootstrapModeToken, "", []string{"--token", newToken, "-o", "yaml"}, cmdutil.ExitUsage, "unknown output format"},
		{"bad timeout", constants.YurthubBootstrapModeToken, "", []string{"--token", newToken, "--timeout", "-1s"}, cmdutil.ExitUsage, "not positive"},
		{"kubeletcertificate mode", constants.YurthubBootstrapModeKCE, "", []string{"--token", newToken}, cmdutil.ExitError, "ignores bootstrap tokens"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, _, _ := hosttest.New(t)
			manifest(t, h, tc.mode)
			hub := &fakeHub{t: t, h: h, write: true}
			r := run(t, h, hub, tc.stdin, nil, tc.args...)
			if r.code != tc.code || r.err == nil || !strings.Contains(r.err.Error(), tc.contains) {
				t.Fatalf("exit %d: %v; want exit %d with %q", r.code, r.err, tc.code, tc.contains)
			}
			if hub.requests != 0 {
				t.Fatalf("%d requests reached yurthub", hub.requests)
			}
			r.noSecret(t)
		})
	}
}

// TestRenewYurthubErrors: each answer of yurthub gives a clear error, and
// the token it may echo is not shown.
func TestRenewYurthubErrors(t *testing.T) {
	tests := []struct {
		name     string
		hub      *fakeHub
		code     int
		contains string
		hint     string
	}{
		{"yurthub not running", nil, cmdutil.ExitError, "does not answer", "yurtadm doctor"},
		{"token refused by the cluster", &fakeHub{status: 500, body: "could not update bootstrap token, couldn't retrieve bootstrap config info: token TOKEN is invalid"},
			cmdutil.ExitError, "could not use the token", "kubeadm token list"},
		{"bad request", &fakeHub{status: 400, body: "no join token is set"}, cmdutil.ExitError, "HTTP 400", "crictl logs"},
		{"no endpoint", &fakeHub{status: 404, body: "404 page not found"}, cmdutil.ExitError, "no token endpoint", "restart it"},
		{"timeout", &fakeHub{delay: 300 * time.Millisecond}, cmdutil.ExitTimeout, "did not answer", "--timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, _, _ := hosttest.New(t)
			manifest(t, h, constants.YurthubBootstrapModeToken)
			if tc.hub != nil {
				tc.hub.t, tc.hub.h = t, h
			}
			r := run(t, h, tc.hub, newToken, nil, "--token-file", "-", "--timeout", "100ms")
			if r.code != tc.code || r.err == nil || !strings.Contains(r.err.Error(), tc.contains) || !strings.Contains(cmdutil.Hint(r.err), tc.hint) {
				t.Fatalf("exit %d: %v (hint %q); want exit %d with %q, hint with %q", r.code, r.err, cmdutil.Hint(r.err), tc.code, tc.contains, tc.hint)
			}
			r.noSecret(t)
		})
	}
}

// TestRenewBody pins the request yurthub v1.7.0 reads: a POST to /v1/token
// with the token in the JSON body's "jointoken".
func TestRenewBody(t *testing.T) {
	h, _, _ := hosttest.New(t)
	manifest(t, h, constants.YurthubBootstrapModeToken)
	var got map[string]string
	var method, ctype string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method, ctype = r.Method, r.Header.Get("Content-Type")
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &got)
		if r.Header.Get("jointoken") != "" {
			t.Errorf("the token must not travel in a header")
		}
		fmt.Fprint(w, "update bootstrap token successfully")
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	cmd := newCommand(cmdutil.IOStreams{In: strings.NewReader(newToken), Out: &out, ErrOut: &errOut},
		deps{newHost: func(string) *host.Host { return h }, serveURL: srv.URL, http: &http.Client{}, listener: fakeYurthubListener})
	cmd.SetArgs([]string{"renew", "--token-file", "-"})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if method != http.MethodPost || ctype != "application/json" || got["jointoken"] != newToken || len(got) != 1 {
		t.Fatalf("%s %s %v", method, ctype, got)
	}
}

// TestRenewChecksTheTokenWithTheCluster: a token cluster-info is not signed
// for is named before anything reaches yurthub (which would wait minutes
// for the signature); a cluster that cannot be asked does not stop renew.
func TestRenewChecksTheTokenWithTheCluster(t *testing.T) {
	conf := func(t *testing.T, withCA bool) string {
		cfg, err := clientcmd.Load([]byte(bootstrapConf(t, oldToken)))
		if err != nil {
			t.Fatal(err)
		}
		if withCA {
			cfg.Clusters["kubernetes"].CertificateAuthorityData = []byte("ca")
		}
		b, err := clientcmd.Write(*cfg)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	signed := map[string]string{"kubeconfig": "...", "jws-kubeconfig-k3q9zp": "sig"}
	other := map[string]string{"kubeconfig": "...", "jws-kubeconfig-abcdef": "sig"}
	tests := []struct {
		name     string
		withCA   bool
		data     map[string]string
		err      error
		code     int
		requests int
		says     string
	}{
		{"signed for the token", true, signed, nil, 0, 1, "now holds it"},
		{"unknown token", true, other, nil, cmdutil.ExitError, 0, "does not know a bootstrap token with ID k3q9zp"},
		{"cluster unreachable", true, nil, errors.New("dial tcp 10.0.0.1:6443: i/o timeout"), 0, 1, "Could not check the token with the cluster first"},
		{"no CA in the bootstrap file", false, signed, nil, 0, 1, "names no API server with its CA"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, _, _ := hosttest.New(t)
			manifest(t, h, constants.YurthubBootstrapModeToken)
			hosttest.WriteFile(t, h, constants.YurthubBootstrapFile, conf(t, tc.withCA))
			hub := &fakeHub{t: t, h: h, write: true}
			var asked *rest.Config
			ci := func(_ context.Context, cfg *rest.Config) (map[string]string, error) {
				asked = cfg
				return tc.data, tc.err
			}
			r := runWith(t, h, hub, ci, newToken+"\n", nil, "--token-file", "-")
			if r.code != tc.code || hub.requests != tc.requests {
				t.Fatalf("exit %d, %d requests to yurthub (%v); want exit %d, %d requests", r.code, hub.requests, r.err, tc.code, tc.requests)
			}
			if all := r.errOut + fmt.Sprint(r.err); !strings.Contains(all, tc.says) {
				t.Errorf("want %q in:\n%s", tc.says, all)
			}
			if tc.withCA && (asked == nil || asked.Host != "https://10.0.0.1:6443" || string(asked.CAData) != "ca" || asked.BearerToken != "") {
				t.Errorf("cluster-info asked with %+v, want the bootstrap file's server and CA, anonymously", asked)
			}
			r.noSecret(t)
		})
	}
}

// fakeYurthubListener says yurthub listens (the fake hubs are this test).
func fakeYurthubListener(int) (int, string, error) { return 4242, yurthubComm, nil }

// TestRenewSendsOnlyToYurthub: with the real look-up of who listens, the
// fake hub is this test binary, not yurthub: renew refuses and the hub
// never sees a request.
func TestRenewSendsOnlyToYurthub(t *testing.T) {
	h, _, _ := hosttest.New(t)
	manifest(t, h, constants.YurthubBootstrapModeToken)
	hosttest.WriteFile(t, h, constants.YurthubBootstrapFile, bootstrapConf(t, oldToken))
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer srv.Close()
	var out, errOut bytes.Buffer
	cmd := newCommand(cmdutil.IOStreams{In: strings.NewReader(newToken), Out: &out, ErrOut: &errOut},
		deps{newHost: func(string) *host.Host { return h }, serveURL: srv.URL, http: &http.Client{},
			listener: func(port int) (int, string, error) { return listenerOf("/proc", port) }})
	cmd.SetArgs([]string{"renew", "--token-file", "-"})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	if cmdutil.ExitCode(err) != cmdutil.ExitError || err == nil || !strings.Contains(err.Error(), "not yurthub: nothing was sent") {
		t.Fatalf("err %v (exit %d)", err, cmdutil.ExitCode(err))
	}
	if hits != 0 {
		t.Errorf("the token reached a process that is not yurthub (%d requests)", hits)
	}
	if strings.Contains(err.Error()+errOut.String(), strings.SplitN(newToken, ".", 2)[1]) {
		t.Errorf("the secret was printed")
	}
}
