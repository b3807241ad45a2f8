// Package discovery finds and verifies a cluster the way `kubeadm join` does
// with a bootstrap token: it reads kube-public/cluster-info anonymously,
// checks the token's JWS signature over it and pins the cluster CA by the
// hash of its public key, then reads kubeadm's cluster and kubelet
// configuration with the token.
//
// It imports kubeadm's small pubkeypin package and cluster-bootstrap's jws
// verifier rather than kubeadm's discovery/token package, which would add
// about 13 MB to the binary (docs/design.md).
package discovery

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	"k8s.io/cluster-bootstrap/token/jws"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	"k8s.io/kubernetes/cmd/kubeadm/app/util/pubkeypin"
	"sigs.k8s.io/yaml"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/kube"
)

// Names of kubeadm's ConfigMaps in kube-system.
const (
	KubeadmConfigMap        = "kubeadm-config"
	KubeadmConfigKey        = "ClusterConfiguration"
	KubeletConfigMap        = "kubelet-config"
	KubeletConfigKey        = "kubelet"
	createTokenHint         = "create a new token on a control-plane node with 'kubeadm token create --print-join-command'"
	caHashHint              = "get the right hash on a control-plane node with: openssl x509 -pubkey -in /etc/kubernetes/pki/ca.crt | openssl rsa -pubin -outform der 2>/dev/null | openssl dgst -sha256 -hex | sed 's/^.* /sha256:/'"
	defaultDiscoveryTimeout = 30 * time.Second
)

// Options says how to find and trust the cluster.
type Options struct {
	// Endpoint is the API server: host:port or https://host:port.
	Endpoint string
	// Token is the bootstrap token "abcdef.0123456789abcdef".
	Token string
	// CACertHashes pins the cluster CA ("sha256:<hex>"); any one may match.
	CACertHashes []string
	// UnsafeSkipCAVerification trusts whatever CA cluster-info names.
	UnsafeSkipCAVerification bool
	// Timeout bounds each request (default 30s).
	Timeout time.Duration
	// NewClient builds a client for a config; nil means kube.New.
	// Tests hand in fakes here.
	NewClient func(*rest.Config) (kube.Interface, error)
	// AlsoRead are further reads with the token, run once the CA is
	// pinned, alongside kubeadm's ConfigMaps, with discovery's client.
	AlsoRead []func(context.Context, kube.Interface)
}

// Result is what discovery learned about the cluster.
type Result struct {
	// Server is the https URL of the API server, as the user gave it.
	Server string
	// CAData is the PEM of the cluster CA that was pinned.
	CAData []byte
	// CAHash is the "sha256:<hex>" pin of CAData.
	CAHash string
	// ClusterName is the cluster's name in cluster-info's kubeconfig.
	ClusterName string
	// KubernetesVersion is kubeadm-config's kubernetesVersion ("v1.34.4").
	KubernetesVersion string
	// KubeletConfig is the KubeletConfiguration YAML of kubelet-config.
	KubeletConfig []byte

	transport http.RoundTripper // discovery's, CA pinned (pinnedTransport)
}

// TokenConfig is a client of the discovered API server that trusts only
// the pinned CA and authenticates with the bootstrap token. A Result of
// Discover hands on its connection: the clients of its TokenConfigs share
// the one discovery made and pinned.
func (r *Result) TokenConfig(token string) *rest.Config {
	if r.transport != nil {
		return &rest.Config{Host: r.Server, BearerToken: token, Transport: r.transport}
	}
	return &rest.Config{Host: r.Server, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: r.CAData}}
}

// ValidateToken checks a bootstrap token's format without revealing it.
func ValidateToken(token string) error {
	// cluster-bootstrap's check compares in constant time.
	if !bootstraputil.IsValidBootstrapToken(token) {
		return cmdutil.Usagef("a token looks like abcdef.0123456789abcdef: 6 and 16 characters of [a-z0-9] joined by a dot; "+createTokenHint,
			"invalid bootstrap token format (the value is not shown)")
	}
	return nil
}

// ValidateCAHashes checks the pin format and that exactly one of pins and
// unsafe-skip is given.
func ValidateCAHashes(hashes []string, unsafeSkip bool) error {
	if len(hashes) == 0 && !unsafeSkip {
		return cmdutil.Usagef(caHashHint+"; or, knowing the risk, pass --discovery-token-unsafe-skip-ca-verification",
			"--discovery-token-ca-cert-hash is required to trust the cluster CA")
	}
	if len(hashes) > 0 && unsafeSkip {
		return cmdutil.Usagef("pass only one of them",
			"--discovery-token-ca-cert-hash and --discovery-token-unsafe-skip-ca-verification are mutually exclusive")
	}
	for _, h := range hashes {
		if err := pubkeypin.NewSet().Allow(h); err != nil {
			return cmdutil.Usagef("a hash looks like sha256:<64 hex digits>; "+caHashHint,
				"invalid --discovery-token-ca-cert-hash %q: %v", h, err)
		}
	}
	return nil
}

// NormalizeEndpoint validates host:port or https://host:port and returns the
// https URL.
func NormalizeEndpoint(ep string) (string, error) {
	bad := func(why string) error {
		return cmdutil.Usagef("give the API server as host:port, e.g. 192.168.1.10:6443", "invalid API server endpoint %q: %s", ep, why)
	}
	if ep == "" {
		return "", bad("it is empty")
	}
	raw := ep
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", bad(err.Error())
	}
	if u.Scheme != "https" {
		return "", bad("the scheme must be https")
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return "", bad("it must not have a path, query or user")
	}
	h, p, err := net.SplitHostPort(u.Host)
	if err != nil {
		return "", bad("it needs a port")
	}
	if h == "" {
		return "", bad("it needs a host")
	}
	if n, err := net.LookupPort("tcp", p); err != nil || n <= 0 || n > 65535 || fmt.Sprint(n) != p {
		return "", bad("the port must be a number from 1 to 65535")
	}
	return "https://" + u.Host, nil
}

// Validate checks the options without any network access.
func (o *Options) Validate() error {
	if _, err := NormalizeEndpoint(o.Endpoint); err != nil {
		return err
	}
	if err := ValidateToken(o.Token); err != nil {
		return err
	}
	return ValidateCAHashes(o.CACertHashes, o.UnsafeSkipCAVerification)
}

func (o *Options) client(cfg *rest.Config) (kube.Interface, error) {
	if o.NewClient != nil {
		return o.NewClient(cfg)
	}
	return kube.New(cfg)
}

// Error kinds, for tests and exit codes.
var (
	ErrUnreachable = errors.New("API server unreachable")
	ErrToken       = errors.New("bootstrap token rejected")
	ErrCAPin       = errors.New("cluster CA does not match the pinned hash")
)

// Discover finds and verifies the cluster. It writes nothing.
func Discover(ctx context.Context, o Options) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	server, _ := NormalizeEndpoint(o.Endpoint)
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = defaultDiscoveryTimeout
	}
	tokenID, tokenSecret, _ := strings.Cut(o.Token, ".")

	// 1. cluster-info, anonymously and without trusting the server yet,
	// on the connection the token's requests will use once it is trusted.
	u, _ := url.Parse(server)
	pinned := newPinnedTransport(u.Hostname())
	anonymous := &rest.Config{Host: server, Timeout: timeout, Transport: pinned}
	cm, err := getClusterInfo(ctx, o, anonymous)
	if err != nil {
		return nil, err
	}
	kubeconfig := cm.Data[bootstrapapi.KubeConfigKey]
	if kubeconfig == "" {
		return nil, fmt.Errorf("kube-public/%s has no %q key: the cluster was not set up by kubeadm (run 'kubeadm init phase bootstrap-token' on the control plane)",
			bootstrapapi.ConfigMapClusterInfo, bootstrapapi.KubeConfigKey)
	}
	sig, ok := cm.Data[bootstrapapi.JWSSignatureKeyPrefix+tokenID]
	if !ok {
		return nil, cmdutil.WithHint(fmt.Errorf("%w: the cluster has no signature for token ID %q: the token is unknown or has expired", ErrToken, tokenID),
			cmdutil.ExitError, createTokenHint)
	}
	if !jws.DetachedTokenIsValid(sig, kubeconfig, tokenID, tokenSecret) {
		return nil, cmdutil.WithHint(fmt.Errorf("%w: the signature for token ID %q does not match the token's secret", ErrToken, tokenID),
			cmdutil.ExitError, "check the token you copied; "+createTokenHint)
	}

	// 2. the CA named in the signed kubeconfig, pinned by hash.
	cfg, err := clientcmd.Load([]byte(kubeconfig))
	if err != nil {
		return nil, fmt.Errorf("parse the kubeconfig in cluster-info: %w", err)
	}
	clusterName, cluster := FirstCluster(cfg)
	if cluster == nil || len(cluster.CertificateAuthorityData) == 0 {
		return nil, fmt.Errorf("the kubeconfig in cluster-info has no cluster with certificate-authority-data")
	}
	certs, err := certutil.ParseCertsPEM(cluster.CertificateAuthorityData)
	if err != nil {
		return nil, fmt.Errorf("parse the cluster CA in cluster-info: %w", err)
	}
	hash := pubkeypin.Hash(certs[0])
	if !o.UnsafeSkipCAVerification {
		pins := pubkeypin.NewSet()
		if err := pins.Allow(o.CACertHashes...); err != nil {
			return nil, err
		}
		if err := pins.CheckAny(certs); err != nil {
			return nil, cmdutil.WithHint(fmt.Errorf("%w: the cluster CA's hash is %s, which is not among the --discovery-token-ca-cert-hash values", ErrCAPin, hash),
				cmdutil.ExitError, "the API server may not be the cluster you expect; "+caHashHint)
		}
	}

	// 3. from now on trust only that CA, and use the token. The
	// connection cluster-info came on must be one the CA signed.
	if err := pinned.trust(certs); err != nil {
		return nil, cmdutil.WithHint(fmt.Errorf("%w: %v", ErrCAPin, err), cmdutil.ExitError,
			"the API server at "+server+" is not the cluster its signed cluster-info names, or its serving certificate does not list this address")
	}
	res := &Result{Server: server, CAData: cluster.CertificateAuthorityData, CAHash: hash, ClusterName: clusterName, transport: pinned}
	secure := res.TokenConfig(o.Token)
	secure.Timeout = timeout
	client, err := o.client(secure)
	if err != nil {
		return nil, err
	}
	// kubeadm's two ConfigMaps and the caller's reads at once: one round
	// trip instead of one each.
	var kcm, kl *corev1.ConfigMap
	var kcmErr, klErr error
	var wg sync.WaitGroup
	wg.Add(2 + len(o.AlsoRead))
	go func() { defer wg.Done(); kcm, kcmErr = getConfigMap(ctx, client, KubeadmConfigMap) }()
	go func() { defer wg.Done(); kl, klErr = getConfigMap(ctx, client, KubeletConfigMap) }()
	for _, read := range o.AlsoRead {
		go func() { defer wg.Done(); read(ctx, client) }()
	}
	wg.Wait()
	if kcmErr != nil {
		return nil, kcmErr
	}
	if klErr != nil {
		return nil, klErr
	}
	res.KubernetesVersion, err = kubernetesVersion(kcm.Data[KubeadmConfigKey])
	if err != nil {
		return nil, err
	}
	if kl.Data[KubeletConfigKey] == "" {
		return nil, fmt.Errorf("kube-system/%s has no %q key", KubeletConfigMap, KubeletConfigKey)
	}
	res.KubeletConfig = []byte(kl.Data[KubeletConfigKey])
	return res, nil
}

func getClusterInfo(ctx context.Context, o Options, cfg *rest.Config) (*corev1.ConfigMap, error) {
	client, err := o.client(cfg)
	if err != nil {
		return nil, err
	}
	cm, err := client.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
	if err == nil {
		return cm, nil
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("kube-public/%s not found: the cluster was not set up by kubeadm (run 'kubeadm init phase bootstrap-token' on the control plane)", bootstrapapi.ConfigMapClusterInfo)
	case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
		return nil, fmt.Errorf("reading kube-public/%s anonymously was refused: %v (the cluster must allow anonymous access to cluster-info, as kubeadm sets up)", bootstrapapi.ConfigMapClusterInfo, err)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, cmdutil.WithHint(fmt.Errorf("%w: %s: %v", ErrUnreachable, cfg.Host, err), cmdutil.ExitError,
		"check the address and port, that kube-apiserver runs, and that no firewall blocks the port from this node")
}

func getConfigMap(ctx context.Context, client kube.Interface, name string) (*corev1.ConfigMap, error) {
	cm, err := client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return cm, nil
	}
	if apierrors.IsUnauthorized(err) {
		return nil, cmdutil.WithHint(fmt.Errorf("%w: the API server does not accept the token: it is unknown or has expired", ErrToken),
			cmdutil.ExitError, createTokenHint)
	}
	if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("read kube-system/%s: %v (is this a kubeadm cluster? run 'kubeadm init phase upload-config all' on the control plane)", name, err)
	}
	return nil, fmt.Errorf("read kube-system/%s: %w", name, err)
}

// FirstCluster returns the cluster of cfg's current context, else any
// cluster of cfg (a bootstrap kubeconfig has one); nil when it has none.
func FirstCluster(cfg *clientcmdapi.Config) (string, *clientcmdapi.Cluster) {
	if ctx := cfg.Contexts[cfg.CurrentContext]; ctx != nil {
		if c := cfg.Clusters[ctx.Cluster]; c != nil {
			return ctx.Cluster, c
		}
	}
	for name, c := range cfg.Clusters {
		return name, c
	}
	return "", nil
}

func kubernetesVersion(clusterConfiguration string) (string, error) {
	var cc struct {
		KubernetesVersion string `json:"kubernetesVersion"`
	}
	if err := yaml.Unmarshal([]byte(clusterConfiguration), &cc); err != nil {
		return "", fmt.Errorf("parse kubeadm-config: %w", err)
	}
	if cc.KubernetesVersion == "" {
		return "", fmt.Errorf("kubeadm-config has no kubernetesVersion")
	}
	return cc.KubernetesVersion, nil
}

// CertsFromPEM parses the CA certificates in data.
func CertsFromPEM(data []byte) ([]*x509.Certificate, error) { return certutil.ParseCertsPEM(data) }
