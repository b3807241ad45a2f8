package discovery

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/yurtadm/yurtadm/pkg/kube/kubetest"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/cluster-bootstrap/token/jws"
	"k8s.io/kubernetes/cmd/kubeadm/app/util/pubkeypin"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/kube"
)

const (
	token  = "abcdef.0123456789abcdef"
	secret = "0123456789abcdef"
)

func TestValidateToken(t *testing.T) {
	for _, tc := range []struct {
		token string
		ok    bool
	}{
		{token, true},
		{"012345.abcdefghijklmnop", true},
		{"", false},
		{"abcdef0123456789abcdef", false},   // no dot
		{"ABCDEF.0123456789abcdef", false},  // upper case
		{"abcde.0123456789abcdef", false},   // short ID
		{"abcdef.0123456789abcde", false},   // short secret
		{"abcdef.0123456789abcdef0", false}, // long secret
		{"abcdef.0123456789abcd_f", false},  // bad character
		{" abcdef.0123456789abcdef", false}, // stray space
	} {
		err := ValidateToken(tc.token)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateToken(%q) = %v, want ok=%v", tc.token, err, tc.ok)
		}
		if err != nil {
			if tc.token != "" && strings.Contains(err.Error(), tc.token) {
				t.Errorf("ValidateToken(%q): the error shows the token: %v", tc.token, err)
			}
			if code := cmdutil.ExitCode(err); code != cmdutil.ExitUsage {
				t.Errorf("ValidateToken(%q): exit code %d, want %d (usage)", tc.token, code, cmdutil.ExitUsage)
			}
		}
	}
}

func TestValidateCAHashes(t *testing.T) {
	good := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name   string
		hashes []string
		skip   bool
		want   string // substring of the error; "" = ok
	}{
		{"one pin", []string{good}, false, ""},
		{"two pins", []string{good, "sha256:" + strings.Repeat("01", 32)}, false, ""},
		{"unsafe skip alone", nil, true, ""},
		{"neither", nil, false, "is required"},
		{"both", []string{good}, true, "mutually exclusive"},
		{"no algorithm", []string{strings.Repeat("ab", 32)}, false, "invalid --discovery-token-ca-cert-hash"},
		{"wrong algorithm", []string{"md5:" + strings.Repeat("ab", 16)}, false, "invalid --discovery-token-ca-cert-hash"},
		{"short", []string{"sha256:abcd"}, false, "sha256:abcd"},
		{"not hex", []string{"sha256:" + strings.Repeat("zz", 32)}, false, "invalid --discovery-token-ca-cert-hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateCAHashes(tc.hashes, tc.skip)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
			if code := cmdutil.ExitCode(err); code != cmdutil.ExitUsage {
				t.Errorf("exit code %d, want %d (usage)", code, cmdutil.ExitUsage)
			}
		})
	}
}

func TestNormalizeEndpoint(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"10.0.0.1:6443", "https://10.0.0.1:6443", ""},
		{"https://10.0.0.1:6443", "https://10.0.0.1:6443", ""},
		{"https://10.0.0.1:6443/", "https://10.0.0.1:6443", ""},
		{"[fd00::1]:6443", "https://[fd00::1]:6443", ""},
		{"api.example.com:443", "https://api.example.com:443", ""},
		{"", "", "empty"},
		{"10.0.0.1", "", "needs a port"},
		{"http://10.0.0.1:6443", "", "scheme must be https"},
		{"10.0.0.1:6443/api", "", "path"},
		{"10.0.0.1:0", "", "port must be a number"},
		{"10.0.0.1:70000", "", "port must be a number"},
		{"10.0.0.1:https", "", "port"},
		{":6443", "", "needs a host"},
		{"user@10.0.0.1:6443", "", "user"},
	} {
		got, err := NormalizeEndpoint(tc.in)
		if tc.err == "" {
			if err != nil || got != tc.want {
				t.Errorf("NormalizeEndpoint(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("NormalizeEndpoint(%q) error = %v, want it to contain %q", tc.in, err, tc.err)
		}
	}
}

// fakeCluster is a kubeadm cluster as discovery sees it, on client-go's fake.
type fakeCluster struct {
	caHash  string
	objects []runtime.Object
	configs []*rest.Config // what each client was built for
}

func newFakeCluster(t *testing.T, signID, signSecret string) *fakeCluster {
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
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubernetes"] = &clientcmdapi.Cluster{Server: "https://10.0.0.1:6443", CertificateAuthorityData: caPEM}
	cfg.Contexts["ctx"] = &clientcmdapi.Context{Cluster: "kubernetes"}
	cfg.CurrentContext = "ctx"
	kc, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	data := map[string]string{"kubeconfig": string(kc)}
	if signID != "" {
		sig, err := jws.ComputeDetachedSignature(string(kc), signID, signSecret)
		if err != nil {
			t.Fatal(err)
		}
		data["jws-kubeconfig-"+signID] = sig
	}
	return &fakeCluster{
		caHash: pubkeypin.Hash(ca),
		objects: []runtime.Object{
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cluster-info", Namespace: "kube-public"}, Data: data},
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: KubeadmConfigMap, Namespace: "kube-system"},
				Data: map[string]string{KubeadmConfigKey: "kind: ClusterConfiguration\nkubernetesVersion: v1.34.4\n"}},
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: KubeletConfigMap, Namespace: "kube-system"},
				Data: map[string]string{KubeletConfigKey: "kind: KubeletConfiguration\ncgroupDriver: cgroupfs\n"}},
		},
	}
}

func (c *fakeCluster) options(hashes ...string) Options {
	return Options{
		Endpoint:     "10.0.0.1:6443",
		Token:        token,
		CACertHashes: hashes,
		NewClient: func(cfg *rest.Config) (kube.Interface, error) {
			c.configs = append(c.configs, cfg)
			return kubetest.Wrap(fake.NewSimpleClientset(c.objects...)), nil
		},
	}
}

func TestDiscover(t *testing.T) {
	c := newFakeCluster(t, "abcdef", secret)
	res, err := Discover(context.Background(), c.options(c.caHash))
	if err != nil {
		t.Fatal(err)
	}
	if res.Server != "https://10.0.0.1:6443" || res.CAHash != c.caHash || res.ClusterName != "kubernetes" ||
		res.KubernetesVersion != "v1.34.4" || !strings.Contains(string(res.KubeletConfig), "cgroupfs") {
		t.Errorf("result = %+v", res)
	}
	if len(c.configs) != 2 {
		t.Fatalf("built %d clients, want 2 (anonymous, then with the token)", len(c.configs))
	}
	// cluster-info is read without credentials, the rest with the token,
	// both on discovery's transport, which trusts only the pinned CA once
	// it is pinned (pinned_test.go); later clients share it.
	anon, sec := c.configs[0], c.configs[1]
	pinned, ok := anon.Transport.(*pinnedTransport)
	if !ok || anon.BearerToken != "" {
		t.Fatalf("first client: transport %T, token set %v; want anonymous on discovery's pinned transport", anon.Transport, anon.BearerToken != "")
	}
	if sec.BearerToken != token || sec.Transport != pinned {
		t.Errorf("second client: want the token on the same transport")
	}
	if pinned.roots == nil {
		t.Error("the transport was not pinned to the cluster CA")
	}
	if later := res.TokenConfig(token); later.Transport != pinned || later.BearerToken != token {
		t.Errorf("TokenConfig: transport %T, want discovery's, with the token", later.Transport)
	}
}

func TestDiscoverRunsAlsoReadWithTheToken(t *testing.T) {
	c := newFakeCluster(t, "abcdef", secret)
	o := c.options(c.caHash)
	var got *corev1.ConfigMap
	o.AlsoRead = append(o.AlsoRead, func(ctx context.Context, cl kube.Interface) {
		got, _ = cl.CoreV1().ConfigMaps("kube-system").Get(ctx, KubeletConfigMap, metav1.GetOptions{})
	})
	if _, err := Discover(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Name != KubeletConfigMap {
		t.Fatalf("AlsoRead did not run with the token's client (read %v)", got)
	}
	if n := len(c.configs); n != 2 {
		t.Errorf("built %d clients, want 2: AlsoRead shares the token's", n)
	}
}

func TestDiscoverFailures(t *testing.T) {
	other := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name    string
		cluster func(t *testing.T) *fakeCluster
		hashes  func(c *fakeCluster) []string
		edit    func(c *fakeCluster)
		is      error
		want    string
	}{
		{name: "unknown or expired token (no signature)", is: ErrToken, want: "unknown or has expired",
			cluster: func(t *testing.T) *fakeCluster { return newFakeCluster(t, "", "") }},
		{name: "signed with another secret", is: ErrToken, want: "does not match",
			cluster: func(t *testing.T) *fakeCluster { return newFakeCluster(t, "abcdef", "ffffffffffffffff") }},
		{name: "CA pin mismatch", is: ErrCAPin, want: "not among",
			hashes: func(*fakeCluster) []string { return []string{other} }},
		{name: "no kubeadm-config", want: "kubeadm-config",
			edit: func(c *fakeCluster) { c.objects = c.objects[:1:1] }},
		{name: "no cluster-info", want: "not set up by kubeadm",
			edit: func(c *fakeCluster) { c.objects = c.objects[1:] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mk := tc.cluster
			if mk == nil {
				mk = func(t *testing.T) *fakeCluster { return newFakeCluster(t, "abcdef", secret) }
			}
			c := mk(t)
			if tc.edit != nil {
				tc.edit(c)
			}
			hashes := []string{c.caHash}
			if tc.hashes != nil {
				hashes = tc.hashes(c)
			}
			_, err := Discover(context.Background(), c.options(hashes...))
			if err == nil {
				t.Fatal("discovery succeeded")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(cmdutil.Hint(err), secret) {
				t.Errorf("the token's secret appears in the error: %v", err)
			}
		})
	}
}

func TestDiscoverUnsafeSkipTrustsAnyCA(t *testing.T) {
	c := newFakeCluster(t, "abcdef", secret)
	o := c.options()
	o.UnsafeSkipCAVerification = true
	res, err := Discover(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.CAHash != c.caHash {
		t.Errorf("CAHash = %s, want %s (the pin to print for next time)", res.CAHash, c.caHash)
	}
}

func TestDiscoverValidatesBeforeTheNetwork(t *testing.T) {
	c := newFakeCluster(t, "abcdef", secret)
	o := c.options(c.caHash)
	o.Token = "not-a-token"
	if _, err := Discover(context.Background(), o); err == nil {
		t.Fatal("a malformed token was accepted")
	}
	if len(c.configs) != 0 {
		t.Errorf("built %d clients before validating the input", len(c.configs))
	}
}
