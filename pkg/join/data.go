package join

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"k8s.io/client-go/rest"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/cri"
	"github.com/yurtadm/yurtadm/pkg/discovery"
	"github.com/yurtadm/yurtadm/pkg/host"
	"github.com/yurtadm/yurtadm/pkg/kube"
	"github.com/yurtadm/yurtadm/pkg/preflight"
	"github.com/yurtadm/yurtadm/pkg/yurthub"
)

// Data is what the join phases ask for. Phases never build clients, hosts
// or writers themselves.
type Data interface {
	Context() context.Context
	Options() *Options
	Host() *host.Host
	IO() cmdutil.IOStreams
	DryRun() bool
	// Discovery finds and verifies the cluster, once.
	Discovery() (*discovery.Result, error)
	// CRIEndpoint is --cri-socket or the detected runtime socket.
	CRIEndpoint() (string, error)
	// Files writes host files with rollback and the state file.
	Files() *writer
	// YurthubClient talks to the API server through yurthub's local proxy.
	YurthubClient() (kube.Interface, error)
	// HTTP is the client for yurthub's health endpoints.
	HTTP() *http.Client
	// Endpoints of yurthub on this node.
	YurthubHealthzURL() string
	// KubeletStarted notes that this run started (or restarted) kubelet.
	KubeletStarted(bool) bool
	// KubeletOnYurthub notes (with true) and tells that kubelet's files
	// point it at yurthub from its first start (kubelet-files got its
	// client certificate), so kubelet-yurthub has nothing to do.
	KubeletOnYurthub(set bool) bool
	// KubeletStartedAt is when this run last started or restarted kubelet
	// (zero: it did not).
	KubeletStartedAt() time.Time
	// PollInterval between checks while waiting.
	PollInterval() time.Duration
	// PreflightEnv is the machine as the preflight checks see it.
	PreflightEnv() preflight.Env
	// BootstrapClient talks to the API server with the bootstrap token.
	BootstrapClient() (kube.Interface, error)
	// ServingCertWait bounds the wait for yurthub's serving certificate
	// (zero: join does not ask for it).
	ServingCertWait() time.Duration
	// NodeIP is the node's default address.
	NodeIP() (net.IP, error)
	// HubManifest is the yurthub static pod this node runs, rendered once
	// (from the cluster's template when it has one).
	HubManifest() ([]byte, error)
	// IssueCert sends r's CSR once (by r.pair) and returns its answer to
	// come: phases ask for their certificates early and write them later.
	IssueCert(r certRequest) *certFuture
	// StaticSetTemplate is the cluster's yurthub template for this node
	// (yurthub.ReadStaticSetTemplate), read once: during discovery,
	// alongside kubeadm's ConfigMaps.
	StaticSetTemplate() (*yurthub.StaticSetTemplate, string, error)
	// Outcome is what the phases report beyond the options: which yurthub
	// template was used, the autonomy set.
	Outcome() *Outcome
}

// Outcome is filled by the phases for the summary.
type Outcome struct {
	YurthubTemplate string
	Autonomy        string
	// Phases is each phase that ran, with its wall time.
	Phases []PhaseTime
}

type joinData struct {
	ctx    context.Context
	opts   *Options
	host   *host.Host
	io     cmdutil.IOStreams // progress and dry-run lines (cmdutil.Narration)
	result cmdutil.IOStreams // where -o json's result goes
	files  *writer
	http   *http.Client
	client func(*rest.Config) (kube.Interface, error)

	healthzURL, proxyURL string
	poll                 time.Duration
	preflightEnv         preflight.Env
	certWait             time.Duration
	nodeIP               func() (net.IP, error)

	once       sync.Once
	discovered *discovery.Result
	discErr    error
	cri        string
	started    bool
	startedAt  time.Time
	onHub      bool
	hubOnce    sync.Once
	hub        []byte
	hubErr     error
	certsMu    sync.Mutex
	certs      map[string]*certFuture
	tmplOnce   sync.Once
	tmpl       *yurthub.StaticSetTemplate
	tmplWhy    string
	tmplErr    error
	outcome    Outcome
}

func (d *joinData) IssueCert(r certRequest) *certFuture {
	d.certsMu.Lock()
	defer d.certsMu.Unlock()
	if f := d.certs[r.pair]; f != nil {
		return f
	}
	if d.certs == nil {
		d.certs = map[string]*certFuture{}
	}
	f := &certFuture{done: make(chan struct{})}
	d.certs[r.pair] = f
	go func() { defer close(f.done); f.got = r.issue(d) }()
	return f
}

// readTemplate reads the cluster's yurthub template with discovery's
// client, once.
func (d *joinData) readTemplate(ctx context.Context, client kube.Interface) {
	d.readTemplateWith(ctx, func() (kube.Interface, error) { return client, nil })
}

// readTemplateWith reads the template once, with the client it builds
// only then.
func (d *joinData) readTemplateWith(ctx context.Context, client func() (kube.Interface, error)) {
	d.tmplOnce.Do(func() {
		c, err := client()
		if err != nil {
			d.tmplWhy = "no client to read the cluster's template: " + err.Error()
			return
		}
		d.tmpl, d.tmplWhy, d.tmplErr = yurthub.ReadStaticSetTemplate(ctx, c, d.opts.Namespace, staticSetName(d.opts))
	})
}

func (d *joinData) StaticSetTemplate() (*yurthub.StaticSetTemplate, string, error) {
	d.readTemplateWith(d.ctx, d.BootstrapClient)
	return d.tmpl, d.tmplWhy, d.tmplErr
}

func (d *joinData) Outcome() *Outcome { return &d.outcome }

func (d *joinData) HubManifest() ([]byte, error) {
	d.hubOnce.Do(func() {
		res, err := d.Discovery()
		if err != nil {
			d.hubErr = err
			return
		}
		d.hub, d.hubErr = renderHub(d, res)
	})
	return d.hub, d.hubErr
}

var _ Data = &joinData{}

func (d *joinData) Context() context.Context    { return d.ctx }
func (d *joinData) Options() *Options           { return d.opts }
func (d *joinData) Host() *host.Host            { return d.host }
func (d *joinData) IO() cmdutil.IOStreams       { return d.io }
func (d *joinData) DryRun() bool                { return d.opts.DryRun }
func (d *joinData) Files() *writer              { return d.files }
func (d *joinData) HTTP() *http.Client          { return d.http }
func (d *joinData) YurthubHealthzURL() string   { return d.healthzURL }
func (d *joinData) PollInterval() time.Duration { return d.poll }
func (d *joinData) PreflightEnv() preflight.Env { return d.preflightEnv }

func (d *joinData) KubeletStarted(set bool) bool {
	if set {
		d.started, d.startedAt = true, time.Now()
	}
	return d.started
}

func (d *joinData) KubeletStartedAt() time.Time { return d.startedAt }

func (d *joinData) KubeletOnYurthub(set bool) bool {
	if set {
		d.onHub = true
	}
	return d.onHub
}

func (d *joinData) Discovery() (*discovery.Result, error) {
	d.once.Do(func() {
		o := d.opts
		if o.UnsafeSkipCAVerification {
			// Before anything is sent: the CA this join will trust is
			// whatever answers at the endpoint.
			d.io.Logf("discovery", "WARNING: --%s: the cluster CA is not pinned; whoever answers at %s can impersonate the API server "+
				"and receive this node's credentials. Pin it with --%s sha256:... (from 'kubeadm token create --print-join-command')",
				flagUnsafeSkipCA, o.APIServerEndpoint, flagCACertHash)
		}
		d.discovered, d.discErr = discovery.Discover(d.ctx, discovery.Options{
			Endpoint:                 o.APIServerEndpoint,
			Token:                    o.Token,
			CACertHashes:             o.CACertHashes,
			UnsafeSkipCAVerification: o.UnsafeSkipCAVerification,
			NewClient:                d.client,
			// The template is read in the same round trip as kubeadm's
			// ConfigMaps: one 300 ms fewer on a 4G link.
			AlsoRead: []func(context.Context, kube.Interface){d.readTemplate},
		})
	})
	return d.discovered, d.discErr
}

func (d *joinData) CRIEndpoint() (string, error) {
	if d.cri != "" {
		return d.cri, nil
	}
	if d.opts.CRISocket != "" {
		d.cri = cri.Endpoint(d.opts.CRISocket)
		return d.cri, nil
	}
	ep, err := cri.Detect(d.host.FS)
	if err != nil {
		return "", err
	}
	d.cri = ep
	return ep, nil
}

func (d *joinData) YurthubClient() (kube.Interface, error) {
	cfg := &rest.Config{Host: d.proxyURL, Timeout: 10 * time.Second, UserAgent: "yurtadm"}
	if d.client != nil {
		return d.client(cfg)
	}
	return kube.New(cfg)
}

func (d *joinData) ServingCertWait() time.Duration { return d.certWait }

func (d *joinData) NodeIP() (net.IP, error) {
	if d.nodeIP == nil {
		return nil, nil
	}
	return d.nodeIP()
}

func (d *joinData) BootstrapClient() (kube.Interface, error) {
	res, err := d.Discovery()
	if err != nil {
		return nil, err
	}
	cfg := res.TokenConfig(d.opts.Token)
	cfg.Timeout, cfg.UserAgent = 10*time.Second, "yurtadm"
	if d.client != nil {
		return d.client(cfg)
	}
	return kube.New(cfg)
}
