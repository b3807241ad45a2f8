package join

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/yurtadm/yurtadm/pkg/kube/kubetest"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/cluster-bootstrap/token/jws"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/kubernetes/cmd/kubeadm/app/util/pubkeypin"
	"sigs.k8s.io/yaml"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/discovery"
	"github.com/yurtadm/yurtadm/pkg/host"
	"github.com/yurtadm/yurtadm/pkg/host/hosttest"
	"github.com/yurtadm/yurtadm/pkg/joinstate"
	"github.com/yurtadm/yurtadm/pkg/kube"
	"github.com/yurtadm/yurtadm/pkg/preflight"
)

const (
	testToken  = "abcdef.0123456789abcdef"
	testSecret = "0123456789abcdef"
	testServer = "10.0.0.1:6443"
)

// cluster is a fake kubeadm cluster as discovery and wait-ready see it.
type cluster struct {
	caPEM   []byte
	caHash  string
	objects []runtime.Object
	clients atomic.Int32 // how many clients were built (phases build them concurrently)
}

func newCluster(t *testing.T, signWith string, nodeReady bool) *cluster {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: "kubernetes"}, crypto.Signer(key))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := certutil.EncodeCertificates(ca)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kubeconfig("kubernetes", "https://"+testServer, caPEM, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	data := map[string]string{"kubeconfig": string(kc)}
	if signWith != "" {
		id, secret, _ := strings.Cut(signWith, ".")
		sig, err := jws.ComputeDetachedSignature(string(kc), id, secret)
		if err != nil {
			t.Fatal(err)
		}
		data["jws-kubeconfig-"+id] = sig
	}
	status := corev1.ConditionFalse
	if nodeReady {
		status = corev1.ConditionTrue
	}
	return &cluster{
		caPEM:  caPEM,
		caHash: pubkeypin.Hash(ca),
		objects: []runtime.Object{
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cluster-info", Namespace: "kube-public"}, Data: data},
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kubeadm-config", Namespace: "kube-system"},
				Data: map[string]string{"ClusterConfiguration": "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.34.4\n"}},
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kubelet-config", Namespace: "kube-system"},
				Data: map[string]string{"kubelet": "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: cgroupfs\nclusterDNS:\n- 10.96.0.10\nrotateCertificates: true\n"}},
			// kubelet reports after join restarted it (a fixed future time).
			&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "edge-1"},
				Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status,
					LastHeartbeatTime: metav1.NewTime(time.Now().Add(time.Hour))}}}},
		},
	}
}

// criCmd starts the crictl command lines join runs.
const criCmd = "crictl --runtime-endpoint unix:///run/containerd/containerd.sock "

type harness struct {
	t       *testing.T
	h       *host.Host
	init    *hosttest.Init
	exec    *hosttest.Script
	cluster *cluster
	env     Env
	healthy bool
	signer  *signer // signs the CSRs join sends, when set
	stdout  bytes.Buffer
	stderr  bytes.Buffer
}

func newHarness(t *testing.T, c *cluster) *harness {
	hh := &harness{t: t, cluster: c, healthy: true}
	hh.h, hh.init, hh.exec = hosttest.New(t)
	hosttest.WriteFile(t, hh.h, "/run/containerd/containerd.sock", "")
	hh.exec.Path = map[string]bool{"kubelet": true}
	hh.exec.Answers["kubelet --version"] = hosttest.Answer{Out: "Kubernetes v1.34.4\n"}
	// The container runtime has every image (the images phase asks).
	hh.exec.Answers[criCmd+"info"] = hosttest.Answer{Out: `{"config":{"sandboxImage":"registry.k8s.io/pause:3.10"}}`}
	hh.exec.Prefixes = map[string]hosttest.Answer{criCmd + "inspecti -q ": {Out: "{}"}}
	// A started kubelet bootstraps its client certificate.
	hh.init.OnStart = func(string) {
		hosttest.WriteFile(t, hh.h, constants.KubeletClientCert, "cert")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hh.healthy {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("OK"))
	}))
	t.Cleanup(srv.Close)
	hh.env = Env{
		Host:     func(string) *host.Host { return hh.h },
		Hostname: func() (string, error) { return "Edge-1", nil },
		NewClient: func(*rest.Config) (kube.Interface, error) {
			if c == nil {
				t.Fatal("join built an API client although it should have stopped before any network access")
			}
			c.clients.Add(1)
			cs := fake.NewSimpleClientset(c.objects...)
			if hh.signer != nil {
				hh.signer.react(cs)
			}
			return kubetest.Wrap(cs), nil
		},
		HTTP:       srv.Client(),
		HealthzURL: srv.URL + "/v1/healthz",
		ProxyURL:   "http://127.0.0.1:1",
		Poll:       time.Millisecond,
	}
	return hh
}

func (hh *harness) run(args ...string) error {
	hh.stdout.Reset()
	hh.stderr.Reset()
	cmd := NewCommandWithEnv(cmdutil.IOStreams{In: strings.NewReader(""), Out: &hh.stdout, ErrOut: &hh.stderr}, hh.env)
	cmd.SetArgs(args)
	cmd.SetOut(&hh.stdout)
	cmd.SetErr(&hh.stderr)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	return cmd.Execute()
}

func (hh *harness) read(p string) []byte {
	hh.t.Helper()
	b, err := hh.h.FS.ReadFile(p)
	if err != nil {
		hh.t.Fatalf("read %s: %v", p, err)
	}
	return b
}

func (hh *harness) mode(p string) os.FileMode {
	hh.t.Helper()
	st, err := hh.h.FS.Stat(p)
	if err != nil {
		hh.t.Fatal(err)
	}
	return st.Mode().Perm()
}

func baseArgs(c *cluster) []string {
	return []string{testServer, "--token", testToken, "--discovery-token-ca-cert-hash", c.caHash,
		"--skip-phases", "preflight", "--node-name", "edge-1", "--timeout", "2s"}
}

func TestJoinWritesEverythingAndWaitsThroughYurthub(t *testing.T) {
	c := newCluster(t, testToken, true)
	hh := newHarness(t, c)
	if err := hh.run(baseArgs(c)...); err != nil {
		t.Fatalf("join: %v\n%s", err, hh.stderr.String())
	}

	// Files and modes: credentials 0600.
	for p, want := range map[string]os.FileMode{
		constants.CACertPath:            0o644,
		constants.KubeletConfigFile:     0o644,
		constants.KubeletFlagsEnvFile:   0o644,
		constants.KubeletDropInFile:     0o644,
		constants.YurthubManifest:       0o644,
		constants.OpenYurtKubeletConfig: 0o600,
		constants.JoinStateFile:         0o600,
	} {
		if got := hh.mode(p); got != want {
			t.Errorf("%s: mode %04o, want %04o", p, got, want)
		}
	}
	if !bytes.Equal(hh.read(constants.CACertPath), c.caPEM) {
		t.Errorf("ca.crt is not the discovered CA")
	}
	// Once the Node is Ready the bootstrap token leaves the disk, as with
	// kubeadm; until then kubelet's bootstrap kubeconfig holds it, 0600.
	if hh.h.FS.Exists(constants.KubeletBootstrapConfig) {
		t.Errorf("%s (the bootstrap token) is still there after a successful join", constants.KubeletBootstrapConfig)
	}
	if !strings.Contains(hh.stderr.String(), "Removed "+constants.KubeletBootstrapConfig) {
		t.Errorf("join does not say it removed the bootstrap kubeconfig")
	}
	early := newHarness(t, c)
	if err := early.run(replaceFlag(baseArgs(c), "--skip-phases", "preflight,wait-ready")...); err != nil {
		t.Fatalf("join without wait-ready: %v", err)
	}
	if got := early.mode(constants.KubeletBootstrapConfig); got != 0o600 {
		t.Errorf("%s: mode %04o, want 0600", constants.KubeletBootstrapConfig, got)
	}
	boot, err := clientcmd.Load(early.read(constants.KubeletBootstrapConfig))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range boot.AuthInfos {
		if a.Token != testToken {
			t.Errorf("bootstrap kubeconfig token = %q", a.Token)
		}
	}
	for _, cl := range boot.Clusters {
		if cl.Server != "https://"+testServer || !bytes.Equal(cl.CertificateAuthorityData, c.caPEM) {
			t.Errorf("bootstrap kubeconfig cluster = %s", cl.Server)
		}
	}
	var kc kubeletv1beta1.KubeletConfiguration
	if err := yaml.UnmarshalStrict(hh.read(constants.KubeletConfigFile), &kc); err != nil {
		t.Fatalf("config.yaml is not a KubeletConfiguration: %v", err)
	}
	if kc.ContainerRuntimeEndpoint != "unix:///run/containerd/containerd.sock" || kc.CgroupDriver != "cgroupfs" {
		t.Errorf("config.yaml: runtime %q cgroupDriver %q", kc.ContainerRuntimeEndpoint, kc.CgroupDriver)
	}
	flags := string(hh.read(constants.KubeletFlagsEnvFile))
	for _, want := range []string{"--hostname-override=edge-1", "apps.openyurt.io/nodepool=edge", "openyurt.io/is-edge-worker=true", "--kubeconfig=/var/lib/openyurt/kubelet.conf"} {
		if !strings.Contains(flags, want) {
			t.Errorf("kubeadm-flags.env lacks %q: %s", want, flags)
		}
	}
	// Without the empty bootstrap kubeconfig last, kubelet bootstraps again
	// and rewrites its kubeconfig to the API server (seen in the e2e).
	if !strings.HasSuffix(strings.TrimSpace(flags), `--kubeconfig=/var/lib/openyurt/kubelet.conf --bootstrap-kubeconfig="`) {
		t.Errorf("kubeadm-flags.env must end with --kubeconfig=/var/lib/openyurt/kubelet.conf --bootstrap-kubeconfig=: %s", flags)
	}
	yk, err := clientcmd.Load(hh.read(constants.OpenYurtKubeletConfig))
	if err != nil {
		t.Fatal(err)
	}
	for _, cl := range yk.Clusters {
		if cl.Server != "http://127.0.0.1:10261" {
			t.Errorf("kubelet's kubeconfig server = %q, want yurthub's proxy", cl.Server)
		}
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(hh.read(constants.YurthubManifest), &pod); err != nil {
		t.Fatalf("yurthub.yaml is not a Pod: %v", err)
	}
	cmdline := strings.Join(pod.Spec.Containers[0].Command, " ")
	for _, want := range []string{"--server-addr=https://" + testServer, "--working-mode=edge", "--nodepool-name=edge", "--bootstrap-mode=kubeletcertificate"} {
		if !strings.Contains(cmdline, want) {
			t.Errorf("yurthub command lacks %q: %s", want, cmdline)
		}
	}
	if hh.h.FS.Exists(constants.YurthubBootstrapFile) {
		t.Errorf("kubeletcertificate mode must not write %s", constants.YurthubBootstrapFile)
	}

	// Services: kubelet started, then restarted onto yurthub.
	calls := strings.Join(hh.init.CallLog(), ",")
	if calls != "start kubelet,enable kubelet,restart kubelet" {
		t.Errorf("init calls = %s", calls)
	}

	// The state file lists what was written, for reset.
	st, err := joinstate.Read(hh.h.FS)
	if err != nil || st == nil {
		t.Fatalf("state: %v", err)
	}
	if !st.DropIn || !contains(st.Files, constants.YurthubManifest) || !contains(st.Files, constants.OpenYurtKubeletConfig) {
		t.Errorf("state = %+v", st)
	}

	// The token's secret is never shown.
	out := hh.stdout.String() + hh.stderr.String() + string(hh.read(constants.JoinStateFile))
	if strings.Contains(out, testSecret) {
		t.Errorf("the token secret leaked into the output or state file")
	}
	if !strings.Contains(hh.stdout.String(), `Node "edge-1" is Ready`) {
		t.Errorf("summary missing: %s", hh.stdout.String())
	}
}

func TestJoinBadInputTouchesNothing(t *testing.T) {
	c := newCluster(t, testToken, true)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no endpoint", []string{"--token", testToken, "--discovery-token-ca-cert-hash", c.caHash}, "endpoint is missing"},
		{"endpoint without port", []string{"10.0.0.1", "--token", testToken, "--discovery-token-ca-cert-hash", c.caHash}, "needs a port"},
		{"endpoint with http scheme", []string{"http://10.0.0.1:6443", "--token", testToken, "--discovery-token-ca-cert-hash", c.caHash}, "scheme must be https"},
		{"no token", []string{testServer, "--discovery-token-ca-cert-hash", c.caHash}, "--token is required"},
		{"bad token format", []string{testServer, "--token", "ABCDEF.0123456789abcdef", "--discovery-token-ca-cert-hash", c.caHash}, "invalid bootstrap token format"},
		{"short token", []string{testServer, "--token", "abc.def", "--discovery-token-ca-cert-hash", c.caHash}, "invalid bootstrap token format"},
		{"no hash", []string{testServer, "--token", testToken}, "ca-cert-hash is required"},
		{"bad hash format", []string{testServer, "--token", testToken, "--discovery-token-ca-cert-hash", "sha256:xyz"}, "invalid --discovery-token-ca-cert-hash"},
		{"md5 hash", []string{testServer, "--token", testToken, "--discovery-token-ca-cert-hash", "md5:0123"}, "invalid --discovery-token-ca-cert-hash"},
		{"hash and unsafe", []string{testServer, "--token", testToken, "--discovery-token-ca-cert-hash", c.caHash, "--discovery-token-unsafe-skip-ca-verification"}, "mutually exclusive"},
		{"unknown node type", []string{testServer, "--token", testToken, "--discovery-token-ca-cert-hash", c.caHash, "--node-type", "fog"}, `unknown node type "fog"`},
		{"upper-case node name", []string{testServer, "--token", testToken, "--discovery-token-ca-cert-hash", c.caHash, "--node-name", "Edge-1"}, "upper-case"},
		{"invalid node name", []string{testServer, "--token", testToken, "--discovery-token-ca-cert-hash", c.caHash, "--node-name", "edge_1"}, "invalid node name"},
		{"invalid nodepool", []string{testServer, "--token", testToken, "--discovery-token-ca-cert-hash", c.caHash, "--nodepool-name", "Pool!"}, "invalid nodepool name"},
		{"label overriding edge-worker", []string{testServer, "--token", testToken, "--discovery-token-ca-cert-hash", c.caHash, "--node-labels", "openyurt.io/is-edge-worker=false"}, "must not set"},
		{"bad label", []string{testServer, "--token", testToken, "--discovery-token-ca-cert-hash", c.caHash, "--node-labels", "a=b=c"}, "invalid --node-labels value"},
		{"dockershim socket", []string{testServer, "--token", testToken, "--discovery-token-ca-cert-hash", c.caHash, "--cri-socket", "unix:///var/run/dockershim.sock"}, "dockershim was removed"},
		{"relative socket", []string{testServer, "--token", testToken, "--discovery-token-ca-cert-hash", c.caHash, "--cri-socket", "containerd.sock"}, "must be absolute"},
		{"bad bootstrap mode", []string{testServer, "--token", testToken, "--discovery-token-ca-cert-hash", c.caHash, "--yurthub-bootstrap-mode", "magic"}, "unknown --yurthub-bootstrap-mode"},
		{"zero timeout", []string{testServer, "--token", testToken, "--discovery-token-ca-cert-hash", c.caHash, "--timeout", "0s"}, "--timeout 0s is out of range"},
		{"bad output", []string{testServer, "--token", testToken, "--discovery-token-ca-cert-hash", c.caHash, "-o", "xml"}, "unknown output format"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hh := newHarness(t, nil) // any API client built fails the test
			before := hosttest.Tree(t, hh.h)
			err := hh.run(tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if code := cmdutil.ExitCode(err); code != cmdutil.ExitUsage {
				t.Errorf("exit code %d, want %d", code, cmdutil.ExitUsage)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error shows the token secret: %v", err)
			}
			if after := hosttest.Tree(t, hh.h); strings.Join(after, "\n") != strings.Join(before, "\n") {
				t.Errorf("host changed:\n%v", after)
			}
			if len(hh.init.CallLog()) != 0 || len(hh.exec.Ran) != 0 {
				t.Errorf("services or commands touched: %v %v", hh.init.CallLog(), hh.exec.Ran)
			}
		})
	}
}

func TestJoinDiscoveryFailuresTouchNothing(t *testing.T) {
	tests := []struct {
		name    string
		signer  string // token that signed cluster-info; "" = none (unknown/expired token)
		hash    func(c *cluster) string
		wantErr error
		want    string
	}{
		{"wrong CA hash", testToken, func(*cluster) string { return "sha256:" + strings.Repeat("ab", 32) }, discovery.ErrCAPin, "not among"},
		{"unknown or expired token", "", func(c *cluster) string { return c.caHash }, discovery.ErrToken, "unknown or has expired"},
		{"token secret does not match", "abcdef.ffffffffffffffff", func(c *cluster) string { return c.caHash }, discovery.ErrToken, "does not match"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, tc.signer, true)
			hh := newHarness(t, c)
			before := hosttest.Tree(t, hh.h)
			args := baseArgs(c)
			args[4] = tc.hash(c)
			err := hh.run(args...)
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.wantErr, tc.want)
			}
			if cmdutil.ExitCode(err) != cmdutil.ExitError || cmdutil.Hint(err) == "" {
				t.Errorf("exit code %d hint %q", cmdutil.ExitCode(err), cmdutil.Hint(err))
			}
			if after := hosttest.Tree(t, hh.h); strings.Join(after, "\n") != strings.Join(before, "\n") {
				t.Errorf("host changed:\n%v", after)
			}
			if len(hh.init.CallLog()) != 0 {
				t.Errorf("services touched: %v", hh.init.CallLog())
			}
		})
	}
}

func TestJoinFailureAfterWritesRollsBack(t *testing.T) {
	c := newCluster(t, testToken, true)
	hh := newHarness(t, c)
	hh.healthy = false // yurthub never becomes healthy
	// A file that existed before join must come back byte for byte.
	hosttest.WriteFile(t, hh.h, constants.CACertPath, "old CA")
	before := hosttest.Tree(t, hh.h)
	err := hh.run(baseArgs(c)...)
	if err == nil || !strings.Contains(err.Error(), "yurthub did not become healthy") {
		t.Fatalf("err = %v", err)
	}
	if cmdutil.ExitCode(err) != cmdutil.ExitTimeout {
		t.Errorf("exit code %d, want %d", cmdutil.ExitCode(err), cmdutil.ExitTimeout)
	}
	if !strings.Contains(cmdutil.Hint(err), "yurtadm reset") {
		t.Errorf("hint should name yurtadm reset: %q", cmdutil.Hint(err))
	}
	if after := hosttest.Tree(t, hh.h); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("rollback left the host changed:\nbefore %v\nafter  %v", before, after)
	}
	calls := hh.init.CallLog()
	if calls[len(calls)-1] != "stop kubelet" {
		t.Errorf("kubelet not stopped on rollback: %v", calls)
	}
}

func TestJoinDryRunChangesNothing(t *testing.T) {
	c := newCluster(t, testToken, true)
	hh := newHarness(t, c)
	before := hosttest.Tree(t, hh.h)
	if err := hh.run(append(baseArgs(c), "--dry-run")...); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if after := hosttest.Tree(t, hh.h); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("dry run changed the host: %v", after)
	}
	if len(hh.init.CallLog()) != 0 {
		t.Errorf("dry run touched services: %v", hh.init.CallLog())
	}
	out := hh.stdout.String()
	for _, want := range []string{"would write /etc/kubernetes/manifests/yurthub.yaml", "would write /etc/kubernetes/bootstrap-kubelet.conf (mode 0600)",
		"abcdef.<redacted>", "would reload the init system and start (or restart) kubelet", "would restart kubelet", "Dry run: nothing was changed"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run output lacks %q", want)
		}
	}
	if strings.Contains(out+hh.stderr.String(), testSecret) {
		t.Errorf("dry run printed the token secret")
	}
}

func TestJoinConfigFileAndFlagPrecedence(t *testing.T) {
	c := newCluster(t, testToken, true)
	hh := newHarness(t, c)
	cfg := filepath.Join(t.TempDir(), "join.yaml")
	os.WriteFile(cfg, []byte(`apiVersion: yurtadm.openyurt.io/v1alpha1
kind: JoinConfiguration
apiServerEndpoint: `+testServer+`
token: `+testToken+`
discoveryTokenCACertHashes: [`+c.caHash+`]
nodeType: cloud
nodePoolName: from-file
nodeName: edge-1
timeout: 3s
`), 0o600)
	if err := hh.run("--config", cfg, "--nodepool-name", "from-flag", "--skip-phases", "preflight", "--dry-run"); err != nil {
		t.Fatal(err)
	}
	out := hh.stdout.String()
	if !strings.Contains(out, "--working-mode=cloud") || !strings.Contains(out, "--nodepool-name=from-flag") || !strings.Contains(out, "openyurt.io/is-edge-worker=false") {
		t.Errorf("config/flag precedence wrong:\n%s", out)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: yurtadm.openyurt.io/v1alpha1\nkind: JoinConfiguration\nnodeTyp: cloud\n"), 0o600)
	err := hh.run("--config", bad)
	if err == nil || !strings.Contains(err.Error(), "nodeTyp") || cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Errorf("unknown field: err = %v", err)
	}
	wrongKind := filepath.Join(t.TempDir(), "kind.yaml")
	os.WriteFile(wrongKind, []byte("apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n"), 0o600)
	if err := hh.run("--config", wrongKind); err == nil || !strings.Contains(err.Error(), "unsupported apiVersion") {
		t.Errorf("wrong apiVersion: err = %v", err)
	}
}

func TestJoinTokenModeWritesHubBootstrapFile(t *testing.T) {
	c := newCluster(t, testToken, true)
	hh := newHarness(t, c)
	if err := hh.run(append(baseArgs(c), "--yurthub-bootstrap-mode", "token", "--node-type", "cloud")...); err != nil {
		t.Fatal(err)
	}
	if m := hh.mode(constants.YurthubBootstrapFile); m != 0o600 {
		t.Errorf("bootstrap-hub.conf mode %04o", m)
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(hh.read(constants.YurthubManifest), &pod); err != nil {
		t.Fatal(err)
	}
	cmdline := strings.Join(pod.Spec.Containers[0].Command, " ")
	if !strings.Contains(cmdline, "--bootstrap-file=/var/lib/yurthub/bootstrap-hub.conf") || !strings.Contains(cmdline, "--working-mode=cloud") {
		t.Errorf("yurthub command: %s", cmdline)
	}
}

func TestJoinPhaseRunsAlone(t *testing.T) {
	c := newCluster(t, testToken, true)
	hh := newHarness(t, c)
	args := append([]string{"phase", "yurthub"}, baseArgs(c)...)
	// --skip-phases belongs to the whole join only.
	args = append(args[:len(args)-6], args[len(args)-4:]...)
	if err := hh.run(args...); err != nil {
		t.Fatalf("phase yurthub: %v", err)
	}
	if !hh.h.FS.Exists(constants.YurthubManifest) || hh.h.FS.Exists(constants.KubeletConfigFile) {
		t.Errorf("phase yurthub should write only the yurthub manifest")
	}
	if len(hh.init.CallLog()) != 0 {
		t.Errorf("phase yurthub touched services")
	}
}

func TestJoinWaitReadyTimesOut(t *testing.T) {
	c := newCluster(t, testToken, false) // the Node never becomes Ready
	hh := newHarness(t, c)
	err := hh.run(baseArgs(c)...)
	if err == nil || !strings.Contains(err.Error(), `node "edge-1" was not Ready`) || cmdutil.ExitCode(err) != cmdutil.ExitTimeout {
		t.Fatalf("err = %v", err)
	}
	if hh.h.FS.Exists(constants.YurthubManifest) {
		t.Errorf("a failed join must roll back its files")
	}
}

// A Node an earlier join left says Ready=True from before this join's
// kubelet restart: join waits for a report after it, and times out here.
func TestJoinWaitReadyIgnoresAStaleReady(t *testing.T) {
	c := newCluster(t, testToken, true)
	for _, o := range c.objects {
		if n, ok := o.(*corev1.Node); ok {
			n.Status.Conditions[0].LastHeartbeatTime = metav1.NewTime(time.Now().Add(-time.Hour))
		}
	}
	hh := newHarness(t, c)
	err := hh.run(baseArgs(c)...)
	if err == nil || !strings.Contains(err.Error(), "before kubelet's restart") || cmdutil.ExitCode(err) != cmdutil.ExitTimeout {
		t.Fatalf("err = %v", err)
	}
}

func TestJoinRefusesKubeletNewerThanCluster(t *testing.T) {
	c := newCluster(t, testToken, true)
	hh := newHarness(t, c)
	hh.exec.Answers["kubelet --version"] = hosttest.Answer{Out: "Kubernetes v1.35.0\n"}
	before := hosttest.Tree(t, hh.h)
	args := []string{"phase", "discovery", testServer, "--token", testToken, "--discovery-token-ca-cert-hash", c.caHash, "--node-name", "edge-1"}
	err := hh.run(args...)
	if err == nil || cmdutil.ExitCode(err) != cmdutil.ExitPreflight || !strings.Contains(err.Error(), "KubeletVersion") {
		t.Fatalf("err = %v (exit %d), want the KubeletVersion check to fail", err, cmdutil.ExitCode(err))
	}
	if after := hosttest.Tree(t, hh.h); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("host changed")
	}
	if err := hh.run(append(args, "--ignore-preflight-errors", "KubeletVersion")...); err != nil {
		t.Fatalf("ignored by name, the skew must only warn: %v", err)
	}
	if !strings.Contains(hh.stderr.String(), "KubeletVersion") {
		t.Errorf("the ignored skew is not reported: %s", hh.stderr.String())
	}
}

// preflightEnv is a machine where every check that does not read files passes.
func preflightEnv() preflight.Env {
	return preflight.Env{
		Geteuid:  func() int { return 0 },
		Hostname: func() (string, error) { return "edge-1", nil },
		PortFree: func(int) error { return nil },
		DType:    func(string) (bool, error) { return true, nil },
		DialUnix: func(string) error { return nil },
	}
}

func TestJoinOnAJoinedNodeStopsInPreflight(t *testing.T) {
	c := newCluster(t, testToken, true)
	hh := newHarness(t, c)
	hh.env.Preflight = preflightEnv()
	hh.exec.Answers["crictl --runtime-endpoint unix:///run/containerd/containerd.sock info"] = hosttest.Answer{Out: "{}"}
	hosttest.WriteFile(t, hh.h, constants.YurthubServerCert, "stale")
	hosttest.WriteFile(t, hh.h, constants.KubeletKubeconfig, "joined")
	before := hosttest.Tree(t, hh.h)
	args := baseArgs(c)
	args = append(args[:5], args[7:]...) // no --skip-phases: preflight runs
	err := hh.run(args...)
	if err == nil || cmdutil.ExitCode(err) != cmdutil.ExitPreflight {
		t.Fatalf("err = %v (exit %d), want a preflight failure", err, cmdutil.ExitCode(err))
	}
	for _, want := range []string{"YurthubPKI", "KubeletConf", "yurtadm reset"} {
		if !strings.Contains(err.Error()+cmdutil.Hint(err), want) {
			t.Errorf("error lacks %q: %v / %s", want, err, cmdutil.Hint(err))
		}
	}
	if after := hosttest.Tree(t, hh.h); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("preflight failure changed the host")
	}
	if c.clients.Load() != 0 {
		t.Errorf("join went to the network after preflight failed")
	}
}

func TestJoinRejectsUnknownIgnoreName(t *testing.T) {
	hh := newHarness(t, nil)
	err := hh.run(testServer, "--token", testToken, "--discovery-token-unsafe-skip-ca-verification", "--ignore-preflight-errors", "NoSuchCheck")
	if err == nil || cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "nosuchcheck") {
		t.Fatalf("err = %v", err)
	}
}

// Bad arguments are usage errors (exit 2) naming the value and what to do,
// and nothing is written.
func TestJoinRefusesBadArgumentsWithUsageErrors(t *testing.T) {
	c := newCluster(t, testToken, true)
	all := strings.Join(phaseNames(), ",")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"two endpoints", append([]string{testServer, "10.0.0.2:6443"}, baseArgs(c)[1:]...), []string{"2 arguments given (" + testServer + " 10.0.0.2:6443)", "join takes one API server endpoint"}},
		{"unknown phase", replaceFlag(baseArgs(c), "--skip-phases", "bogus"), []string{`unknown phase "bogus"`, "wait-ready"}},
		{"every phase skipped", replaceFlag(baseArgs(c), "--skip-phases", all), []string{"skips every phase"}},
		{"timeout too short", replaceFlag(baseArgs(c), "--timeout", "1ns"), []string{"--timeout 1ns is out of range", "between 1s and 24h0m0s"}},
		{"timeout too long", replaceFlag(baseArgs(c), "--timeout", "1000000h"), []string{"--timeout 1000000h0m0s is out of range"}},
		{"relative host root", append(baseArgs(c), "--host-root", "node/root"), []string{`--host-root "node/root" is not absolute`}},
		{"missing host root", append(baseArgs(c), "--host-root", "/nonexistent/root"), []string{`--host-root "/nonexistent/root" is not a directory`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hh := newHarness(t, c)
			err := hh.run(tc.args...)
			if cmdutil.ExitCode(err) != cmdutil.ExitUsage {
				t.Fatalf("exit %d (%v), want %d", cmdutil.ExitCode(err), err, cmdutil.ExitUsage)
			}
			msg := err.Error() + " " + cmdutil.Hint(err)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if hh.h.FS.Exists(constants.KubeletConfigFile) || hh.h.FS.Exists(constants.YurthubManifest) {
				t.Errorf("a refused join wrote files")
			}
		})
	}
}

// replaceFlag returns args with flag's value set to v.
func replaceFlag(args []string, flag, v string) []string {
	out := append([]string(nil), args...)
	for i := range out {
		if out[i] == flag && i+1 < len(out) {
			out[i+1] = v
			return out
		}
	}
	return append(out, flag, v)
}

// A hostile image is refused before anything is written; extra args that
// look like YAML end up as exactly one argument each in the manifest.
func TestJoinManifestCannotBeInjected(t *testing.T) {
	c := newCluster(t, testToken, true)
	hh := newHarness(t, c)
	err := hh.run(append(baseArgs(c), "--yurthub-image", "docker.io/openyurt/yurthub:v1.7.0\r\n    command: [sh]")...)
	if cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "not an image reference") {
		t.Fatalf("hostile image: %v", err)
	}
	if hh.h.FS.Exists(constants.YurthubManifest) {
		t.Fatal("a refused join wrote the manifest")
	}
	args := []string{"--x=a: b", "--y=1 # not a comment", `--z="q'`}
	cfg := filepath.Join(t.TempDir(), "join.yaml")
	body := "apiVersion: yurtadm.openyurt.io/v1alpha1\nkind: JoinConfiguration\nyurthubExtraArgs:\n"
	for _, a := range args {
		b, _ := json.Marshal(a)
		body += "- " + string(b) + "\n"
	}
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	hh = newHarness(t, c)
	if err := hh.run(append(baseArgs(c), "--config", cfg)...); err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(hh.read(constants.YurthubManifest), &pod); err != nil {
		t.Fatal(err)
	}
	cmd := pod.Spec.Containers[0].Command
	if got := cmd[len(cmd)-len(args):]; strings.Join(got, "\x00") != strings.Join(args, "\x00") || pod.Spec.Containers[0].Image != "docker.io/openyurt/yurthub:v1.7.0" {
		t.Errorf("command ends %q, want %q; image %q", got, args, pod.Spec.Containers[0].Image)
	}
}

// With -o json, stdout is the JSON alone: the dry run's lines go to stderr.
func TestJoinJSONStdoutIsJSONAlone(t *testing.T) {
	c := newCluster(t, testToken, true)
	hh := newHarness(t, c)
	if err := hh.run(append(baseArgs(c), "--dry-run", "-o", "json")...); err != nil {
		t.Fatal(err)
	}
	var sum Summary
	dec := json.NewDecoder(bytes.NewReader(hh.stdout.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sum); err != nil || dec.More() || !sum.DryRun {
		t.Errorf("stdout is not the summary alone: %v\n%s", err, hh.stdout.String())
	}
	if !strings.Contains(hh.stderr.String(), "[dryrun] would write") {
		t.Errorf("the dry run's lines are not on stderr")
	}
	// Every phase that ran, in order, with its time (preflight skipped).
	var names []string
	for _, p := range sum.Phases {
		names = append(names, p.Name)
		if p.Millis < 0 {
			t.Errorf("phase %s took %d ms", p.Name, p.Millis)
		}
	}
	if got, want := strings.Join(names, ","), "discovery,images,kubelet-files,yurthub,kubelet-start,wait-yurthub,kubelet-yurthub,wait-ready"; got != want {
		t.Errorf("phases %s, want %s", got, want)
	}
}

// --discovery-token-unsafe-skip-ca-verification is loud before anything is sent.
func TestJoinWarnsWhenTheCAIsNotPinned(t *testing.T) {
	c := newCluster(t, testToken, true)
	hh := newHarness(t, c)
	args := []string{testServer, "--token", testToken, "--discovery-token-unsafe-skip-ca-verification",
		"--skip-phases", "preflight", "--node-name", "edge-1", "--timeout", "2s", "--dry-run"}
	if err := hh.run(args...); err != nil {
		t.Fatal(err)
	}
	errOut := hh.stderr.String()
	w := strings.Index(errOut, "WARNING: --discovery-token-unsafe-skip-ca-verification")
	d := strings.Index(errOut, "token signature valid")
	if w < 0 || d < 0 || w > d {
		t.Errorf("no warning before discovery's first line:\n%s", errOut)
	}
	if strings.Contains(errOut+hh.stdout.String(), strings.SplitN(testToken, ".", 2)[1]) {
		t.Errorf("the token secret was printed")
	}
}

// An interrupt (the command's context ends, as on SIGINT) while kubelet
// starts: no later phase runs, what the join wrote is rolled back, and the
// error says interrupted (the CLI maps it to exit 130), not a time-out.
// runInterrupted runs join with args; when kubelet starts, onStart gets the
// cancel of the command's context (a signal, as cli.Run turns it into one).
func (hh *harness) runInterrupted(args []string, onStart func(cancel func())) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prev := hh.init.OnStart
	hh.init.OnStart = func(s string) {
		if prev != nil {
			prev(s)
		}
		onStart(cancel)
	}
	cmd := NewCommandWithEnv(cmdutil.IOStreams{In: strings.NewReader(""), Out: &hh.stdout, ErrOut: &hh.stderr}, hh.env)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	return cmd.ExecuteContext(ctx)
}

func TestJoinInterruptedRollsBack(t *testing.T) {
	c := newCluster(t, testToken, true)
	hh := newHarness(t, c)
	err := hh.runInterrupted(baseArgs(c), func(cancel func()) { cancel() })
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted before phase wait-yurthub") {
		t.Fatalf("err %v, want an interruption before wait-yurthub", err)
	}
	if cmdutil.ExitCode(err) == cmdutil.ExitTimeout {
		t.Errorf("an interrupt reported as a time-out")
	}
	for _, p := range []string{constants.KubeletConfigFile, constants.YurthubManifest, constants.KubeletBootstrapConfig} {
		if hh.h.FS.Exists(p) {
			t.Errorf("%s left after the interrupted join", p)
		}
	}
	if !strings.Contains(strings.Join(hh.init.CallLog(), ","), "stop") {
		t.Errorf("kubelet was not stopped by the rollback: %v", hh.init.CallLog())
	}
}

// A signal while join waits for a yurthub that never gets healthy: the
// wait says interrupted (not a time-out) and join rolls back.
func TestJoinInterruptedInAWaitRollsBack(t *testing.T) {
	c := newCluster(t, testToken, true)
	hh := newHarness(t, c)
	hh.healthy = false
	start := time.Now()
	err := hh.runInterrupted(baseArgs(c), func(cancel func()) {
		time.AfterFunc(100*time.Millisecond, cancel) // well inside the wait
	})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted while waiting for yurthub") || !strings.Contains(err.Error(), "not ready") {
		t.Fatalf("err %v, want an interruption inside the wait for yurthub naming its last answer", err)
	}
	if cmdutil.ExitCode(err) == cmdutil.ExitTimeout || time.Since(start) > 30*time.Second {
		t.Errorf("an interrupt reported as a time-out (exit %d after %s)", cmdutil.ExitCode(err), time.Since(start))
	}
	for _, p := range []string{constants.KubeletConfigFile, constants.YurthubManifest, constants.KubeletBootstrapConfig} {
		if hh.h.FS.Exists(p) {
			t.Errorf("%s left after the interrupted join", p)
		}
	}
}

func TestJoinPhaseUnknownNamesThePhases(t *testing.T) {
	c := newCluster(t, testToken, true)
	for _, args := range [][]string{{"phase", "bogus", "--token", testToken}, {"phase", "bogus"}, {"phase"}} {
		hh := newHarness(t, c)
		err := hh.run(args...)
		if cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(cmdutil.Hint(err), "kubelet-files, yurthub") || strings.Contains(err.Error(), "unknown flag") {
			t.Errorf("%q: %v (hint %q, exit %d)", args, err, cmdutil.Hint(err), cmdutil.ExitCode(err))
		}
	}
}

// chartTemplate is a yurt-static-set-yurt-hub ConfigMap as OpenYurt's
// YurtStaticSet controller writes it from the yurthub chart (token mode).
func chartTemplate() *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "yurt-static-set-yurt-hub", Namespace: constants.DefaultNamespace},
		Data: map[string]string{"yurthub": `apiVersion: v1
kind: Pod
metadata:
  name: yurt-hub
  namespace: kube-system
  annotations:
    openyurt.io/static-pod-hash: 5d9f7c
  labels:
    k8s-app: yurt-hub
spec:
  hostNetwork: true
  containers:
  - name: yurt-hub
    image: docker.io/openyurt/yurthub:v1.7.1
    command:
    - yurthub
    - --v=2
    - --bind-address=127.0.0.1
    - --server-addr=https://10.9.9.9:6443
    - --node-name=$(NODE_NAME)
    - --nodepool-name=
    - --bootstrap-file=/var/lib/yurthub/bootstrap-hub.conf
    - --working-mode=edge
    - --namespace=kube-system
    - --enable-dummy-if=false
`}}
}

func TestJoinUsesTheClustersYurthubTemplate(t *testing.T) {
	c := newCluster(t, testToken, true)
	c.objects = append(c.objects, chartTemplate())
	hh := newHarness(t, c)
	if err := hh.run(baseArgs(c)...); err != nil {
		t.Fatalf("join: %v\n%s", err, hh.stderr.String())
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(hh.read(constants.YurthubManifest), &pod); err != nil {
		t.Fatalf("yurthub.yaml is not a Pod: %v", err)
	}
	ctr := pod.Spec.Containers[0]
	cmdline := strings.Join(ctr.Command, " ")
	for _, want := range []string{"--server-addr=https://" + testServer, "--nodepool-name=edge", "--bootstrap-file=" + constants.YurthubBootstrapFile,
		"--enable-dummy-if=false", "--v=2"} {
		if !strings.Contains(cmdline, want) {
			t.Errorf("yurthub command lacks %q: %s", want, cmdline)
		}
	}
	if strings.Contains(cmdline, "10.9.9.9") || strings.Contains(cmdline, "--bootstrap-mode=kubeletcertificate") {
		t.Errorf("yurthub command kept a value join sets: %s", cmdline)
	}
	if ctr.Image != "docker.io/openyurt/yurthub:v1.7.1" || pod.Annotations["openyurt.io/static-pod-hash"] != "5d9f7c" {
		t.Errorf("the cluster's image or hash was not kept: %s %v", ctr.Image, pod.Annotations)
	}
	// The template is in token mode, so join bootstraps yurthub that way.
	if !hh.h.FS.Exists(constants.YurthubBootstrapFile) || hh.mode(constants.YurthubBootstrapFile) != 0o600 {
		t.Errorf("token mode from the cluster's template, but no 0600 %s", constants.YurthubBootstrapFile)
	}
	if out := hh.stdout.String(); !strings.Contains(out, "the cluster's YurtStaticSet kube-system/yurt-hub") ||
		!strings.Contains(out, "node.openyurt.io/autonomy-duration=0") {
		t.Errorf("the summary does not say which template and autonomy:\n%s", out)
	}

	// A join that chose the other bootstrap mode keeps the built-in
	// template, and says why.
	kce := newHarness(t, c)
	if err := kce.run(append(baseArgs(c), "--yurthub-bootstrap-mode=kubeletcertificate", "--autonomy-duration=none")...); err != nil {
		t.Fatalf("join: %v\n%s", err, kce.stderr.String())
	}
	if out := kce.stdout.String(); !strings.Contains(out, "the built-in template (--yurthub-bootstrap-mode=kubeletcertificate, the cluster's template is for token mode)") ||
		!strings.Contains(out, "autonomy: not set") {
		t.Errorf("summary:\n%s", out)
	}
}

func TestJoinAutonomyDurationIsValidated(t *testing.T) {
	for _, v := range []string{"0", "none", "6h", "90s"} {
		if err := validAutonomy(v); err != nil {
			t.Errorf("%q refused: %v", v, err)
		}
	}
	for _, v := range []string{"", "-1h", "forever", "500ms", "0s\n"} {
		if err := validAutonomy(v); err == nil || cmdutil.ExitCode(err) != cmdutil.ExitUsage {
			t.Errorf("%q accepted (%v)", v, err)
		}
	}
}

// TestJoinStartsKubeletOnceThroughYurthub: when kubelet's client
// certificate is issued to join's CSR, kubelet's files point it at yurthub
// from the start, no bootstrap token is written to disk, and kubelet is
// started once, never restarted.
func TestJoinStartsKubeletOnceThroughYurthub(t *testing.T) {
	c := newCluster(t, testToken, true)
	hh := newHarness(t, c)
	hh.signer = &signer{t: t, together: 2}
	hh.env.ServingCertWait = 5 * time.Second
	hh.init.OnStart = nil // kubelet finds its certificate; it bootstraps nothing
	if err := hh.run(baseArgs(c)...); err != nil {
		t.Fatalf("join: %v\n%s", err, hh.stderr.String())
	}
	sort.Strings(hh.signer.signed)
	if got := strings.Join(hh.signer.signed, ","); got != "kubernetes.io/kube-apiserver-client-kubelet,kubernetes.io/kubelet-serving" {
		t.Errorf("signed %s", got)
	}
	// Both asked for at once: one wait for the approvals, not two.
	if !hh.signer.overlapped {
		t.Error("kubelet's and yurthub's CSRs were sent one after the other")
	}
	req := hh.signer.asked // either's: both are the node's subject
	if req.Subject.CommonName != "system:node:edge-1" {
		t.Errorf("CSR subject %v", req.Subject)
	}
	flags := string(hh.read(constants.KubeletFlagsEnvFile))
	if !strings.Contains(flags, "--kubeconfig="+constants.OpenYurtKubeletConfig+` --bootstrap-kubeconfig="`) {
		t.Errorf("kubeadm-flags.env does not point kubelet at yurthub: %s", flags)
	}
	if hh.h.FS.Exists(constants.KubeletBootstrapConfig) {
		t.Errorf("%s was written", constants.KubeletBootstrapConfig)
	}
	// kubelet.conf as kubelet's TLS bootstrap writes it (yurthub's
	// kubeletcertificate mode needs it): the API server, kubelet's cert.
	direct := string(hh.read(constants.KubeletKubeconfig))
	if !strings.Contains(direct, "server: https://"+testServer) || !strings.Contains(direct, "client-certificate: "+constants.KubeletClientCert) ||
		hh.mode(constants.KubeletKubeconfig) != 0o600 {
		t.Errorf("%s (mode %o):\n%s", constants.KubeletKubeconfig, hh.mode(constants.KubeletKubeconfig), direct)
	}
	// kubelet's certificate store layout: the link is the node's own path.
	target, err := os.Readlink(hh.h.FS.Path(constants.KubeletClientCert))
	if err != nil || !strings.HasPrefix(target, constants.KubeletPKIDir+"/kubelet-client-") {
		t.Fatalf("%s links to %q (%v), want kubelet's store layout", constants.KubeletClientCert, target, err)
	}
	if m := hh.mode(target); m != 0o600 {
		t.Errorf("kubelet's key is %o", m)
	}
	if pem := string(hh.read(target)); !strings.Contains(pem, "CERTIFICATE") || !strings.Contains(pem, "PRIVATE KEY") {
		t.Errorf("%s holds no certificate and key", target)
	}
	if got := strings.Join(hh.init.Calls, ","); strings.Contains(got, "restart") || strings.Count(got, "start kubelet") != 1 {
		t.Errorf("init calls %s, want kubelet started once", got)
	}
	if !strings.Contains(hh.stderr.String(), `since it started; Node "edge-1" is registered`) {
		t.Errorf("kubelet-yurthub did not say kubelet registered through yurthub:\n%s", hh.stderr.String())
	}
}

// TestJoinRestartsAKubeletThatHasNotRegistered: kubelet, started on
// yurthub, backs off its node registration while yurthub is not ready; a
// Node still unregistered once yurthub is ready gets kubelet restarted,
// once.
func TestJoinRestartsAKubeletThatHasNotRegistered(t *testing.T) {
	c := newCluster(t, testToken, true)
	node := c.objects[len(c.objects)-1]
	c.objects = c.objects[:len(c.objects)-1]
	hh := newHarness(t, c)
	hh.signer = &signer{t: t}
	hh.env.ServingCertWait = 2 * time.Second
	starts := 0
	hh.init.OnStart = func(string) {
		if starts++; starts == 2 { // the restart registers the Node
			c.objects = append(c.objects, node)
		}
	}
	if err := hh.run(baseArgs(c)...); err != nil {
		t.Fatalf("join: %v\n%s", err, hh.stderr.String())
	}
	if got := strings.Join(hh.init.Calls, ","); strings.Count(got, "restart kubelet") != 1 {
		t.Errorf("init calls %s, want one restart", got)
	}
	if !strings.Contains(hh.stderr.String(), "restarted it so that it registers") {
		t.Errorf("join did not say why it restarted kubelet:\n%s", hh.stderr.String())
	}
}
