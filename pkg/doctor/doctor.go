package doctor

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	certutil "k8s.io/client-go/util/cert"
	utilsexec "k8s.io/utils/exec"
	"sigs.k8s.io/yaml"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/cri"
	"github.com/yurtadm/yurtadm/pkg/host"
)

// doctor holds what the checks share. Facts several checks need (the
// manifest, the containers, the metrics, ...) are read once, on first use.
type doctor struct {
	ctx context.Context
	o   *options
	dp  deps
	h   *host.Host

	once     map[string]*sync.Once
	manifest *hubManifest
	manErr   error
	node     string
	// nodeGuessed is set when the node name is only the host name.
	nodeGuessed bool
	ctrs        []criContainer
	ctrsErr     error
	health      probe
	mfs         metricFamilies
	mfsErr      error
	cloudCl     CloudClient
	cloudVia    string
	cloudErr    error
}

func newDoctor(ctx context.Context, o *options, dp deps) *doctor {
	return &doctor{ctx: ctx, o: o, dp: dp, h: dp.newHost(o.hostRoot), once: map[string]*sync.Once{}}
}

// do runs f once per key.
func (d *doctor) do(key string, f func()) {
	o, found := d.once[key]
	if !found {
		o = &sync.Once{}
		d.once[key] = o
	}
	o.Do(f)
}

// timeout returns a context for one probe.
func (d *doctor) timeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(d.ctx, d.o.timeout)
}

// hubManifest is the parsed yurthub static pod.
type hubManifest struct {
	pod       *corev1.Pod
	container *corev1.Container
	// args are the container's --flag=value arguments; a flag given
	// without a value maps to "true".
	args map[string]string
}

// arg returns the value of a yurthub flag, or def when it is not set.
func (m *hubManifest) arg(name, def string) string {
	if m == nil {
		return def
	}
	if v, found := m.args[name]; found {
		return v
	}
	return def
}

// bootstrapMode is yurthub's --bootstrap-mode (yurthub's default: token).
func (m *hubManifest) bootstrapMode() string {
	return m.arg("bootstrap-mode", constants.YurthubBootstrapModeToken)
}

// serviceAddress is where yurthub's masterservice and serviceenvupdater
// filters point pods: the dummy interface's address (or the proxy bind
// address without it) and the secure proxy port.
func (m *hubManifest) serviceAddress() (string, string) {
	ip := m.arg("dummy-if-ip", constants.YurthubDummyIP)
	if m.arg("enable-dummy-if", "true") == "false" {
		ip = m.arg("bind-proxy-address", "127.0.0.1") // yurthub's --bind-proxy-address default
	}
	return ip, m.arg("proxy-secure-port", fmt.Sprint(constants.YurthubProxySecurePort))
}

// parseManifest reads the yurthub static pod.
func parseManifest(b []byte) (*hubManifest, error) {
	var pod corev1.Pod
	if err := yaml.Unmarshal(b, &pod); err != nil {
		return nil, fmt.Errorf("parse %s: %w", constants.YurthubManifest, err)
	}
	if pod.Kind != "Pod" {
		return nil, fmt.Errorf("%s holds a %q, not a Pod", constants.YurthubManifest, pod.Kind)
	}
	m := &hubManifest{pod: &pod, args: map[string]string{}}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		if c.Name == constants.YurthubContainerName || m.container == nil && strings.Contains(strings.Join(c.Command, " "), "yurthub") {
			m.container = c
		}
	}
	if m.container == nil {
		return nil, fmt.Errorf("%s has no %s container", constants.YurthubManifest, constants.YurthubContainerName)
	}
	for _, a := range append(append([]string{}, m.container.Command...), m.container.Args...) {
		if !strings.HasPrefix(a, "--") {
			continue
		}
		k, v, found := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !found {
			v = "true"
		}
		m.args[k] = v
	}
	return m, nil
}

// yurthubManifest returns the parsed manifest; (nil, nil) when there is none.
func (d *doctor) yurthubManifest() (*hubManifest, error) {
	d.do("manifest", func() {
		b, err := d.h.FS.ReadFile(constants.YurthubManifest)
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if err != nil {
			d.manErr = fmt.Errorf("read %s: %w", constants.YurthubManifest, err)
			return
		}
		d.manifest, d.manErr = parseManifest(b)
	})
	return d.manifest, d.manErr
}

// kubeletArgs returns kubelet's flags from kubeadm-flags.env (the last
// value of a flag wins, as in kubelet); nil when the file is missing.
func (d *doctor) kubeletArgs() (map[string]string, error) {
	b, err := d.h.FS.ReadFile(constants.KubeletFlagsEnvFile)
	if err != nil {
		return nil, err
	}
	return parseFlagsEnv(string(b)), nil
}

// parseFlagsEnv reads the flags of every VAR="--a=b --c=d" line.
func parseFlagsEnv(content string) map[string]string {
	args := map[string]string{}
	for _, line := range strings.Split(content, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		_, val, found := strings.Cut(line, "=")
		if !found {
			continue
		}
		val = strings.Trim(strings.TrimSpace(val), `"'`)
		for _, f := range strings.Fields(val) {
			if !strings.HasPrefix(f, "--") {
				continue
			}
			k, v, found := strings.Cut(strings.TrimPrefix(f, "--"), "=")
			if !found {
				v = "true"
			}
			args[k] = v
		}
	}
	return args
}

// nodeName is --node-name, kubelet's --hostname-override, the node in
// kubelet's client certificate, or the lower-cased host name.
func (d *doctor) nodeName() string {
	d.do("node", func() {
		if d.o.nodeName != "" {
			d.node = d.o.nodeName
			return
		}
		if args, err := d.kubeletArgs(); err == nil && args["hostname-override"] != "" {
			d.node = args["hostname-override"]
			return
		}
		if b, err := d.h.FS.ReadFile(constants.KubeletClientCert); err == nil {
			if certs := parseCerts(b); len(certs) > 0 {
				if n, found := strings.CutPrefix(certs[0].Subject.CommonName, "system:node:"); found {
					d.node = n
					return
				}
			}
		}
		if h, err := d.dp.hostname(); err == nil {
			d.node, d.nodeGuessed = strings.ToLower(h), true
		}
	})
	return d.node
}

// probe is the answer of one HTTP GET.
type probe struct {
	url    string
	status int
	body   string
	err    error
}

func (p probe) String() string {
	if p.err != nil {
		return fmt.Sprintf("GET %s: %v", p.url, p.err)
	}
	return fmt.Sprintf("GET %s: HTTP %d %s", p.url, p.status, strings.TrimSpace(p.body))
}

// get requests url with the probe timeout and reads up to limit bytes.
func (d *doctor) get(url string, limit int64) probe {
	ctx, cancel := d.timeout()
	defer cancel()
	p := probe{url: url}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		p.err = err
		return p
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := d.dp.http.Do(req)
	if err != nil {
		p.err = unwrapURLError(err)
		return p
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	p.status, p.body, p.err = resp.StatusCode, string(b), err
	return p
}

// unwrapURLError drops net/http's "Get \"url\": " prefix: the probe
// prints the URL itself.
func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && strings.HasPrefix(err.Error(), "Get ") {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// healthz is yurthub's /v1/healthz answer.
func (d *doctor) healthz() probe {
	d.do("healthz", func() { d.health = d.get(d.dp.serveURL+"/v1/healthz", 1024) })
	return d.health
}

// hubHealthy reports whether yurthub answered its healthz with OK.
func (d *doctor) hubHealthy() bool {
	p := d.healthz()
	return p.err == nil && p.status == http.StatusOK
}

// criEndpoint is --cri-socket or the runtime found below the root.
func (d *doctor) criEndpoint() (string, error) {
	if d.o.criSocket != "" {
		return cri.Endpoint(d.o.criSocket), nil
	}
	return cri.Detect(d.h.FS)
}

// runtimeEndpoint is the runtime's endpoint as this process reaches it:
// its socket below the root.
func (d *doctor) runtimeEndpoint() (string, error) {
	ep, err := d.criEndpoint()
	if err != nil {
		return "", err
	}
	return cri.Endpoint(d.h.FS.Path(cri.SocketPath(ep))), nil
}

// crictl runs crictl against the runtime (its socket as this process sees
// it, below the root) and returns stdout.
func (d *doctor) crictl(args ...string) ([]byte, error) {
	if _, err := d.h.Exec.LookPath("crictl"); err != nil {
		return nil, errCrictlMissing
	}
	real, err := d.runtimeEndpoint()
	if err != nil {
		return nil, err
	}
	ctx, cancel := d.timeout()
	defer cancel()
	out, err := d.h.Exec.CommandContext(ctx, "crictl", append([]string{"--runtime-endpoint", real}, args...)...).Output()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("crictl %s: no answer within %s", strings.Join(args, " "), d.o.timeout)
		}
		msg := ""
		var ee *utilsexec.ExitErrorWrapper
		if errors.As(err, &ee) && ee.ExitError != nil {
			msg = strings.TrimSpace(string(ee.ExitError.Stderr))
		}
		if msg != "" {
			return nil, fmt.Errorf("crictl %s: %v: %s", strings.Join(args, " "), err, msg)
		}
		return nil, fmt.Errorf("crictl %s: %v", strings.Join(args, " "), err)
	}
	return out, nil
}

var errCrictlMissing = errors.New("crictl not found in system path: install cri-tools to let doctor read the container runtime")

// parseCerts parses every certificate in PEM data, ignoring keys (client-go's
// certutil); none when one of them does not parse.
func parseCerts(data []byte) []*x509.Certificate {
	certs, err := certutil.ParseCertsPEM(data)
	if err != nil {
		return nil
	}
	return certs
}
