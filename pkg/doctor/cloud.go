package doctor

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiversion "k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/kube"
	"github.com/yurtadm/yurtadm/pkg/version"
)

// CloudClient is the part of the Kubernetes API doctor reads: the server
// version (to tell that the cloud answers), CSRs, and objects' metadata
// to compare yurthub's cache with.
type CloudClient interface {
	ServerVersion(ctx context.Context) (*apiversion.Info, error)
	CertificatesV1() kube.CertificatesV1Interface
	CoreV1() kube.CoreV1Interface
	ListMeta(ctx context.Context, group, version, resource, namespace, fieldSelector string) ([]kube.ObjectMeta, error)
	// RawGet GETs absPath with the query parameters and returns the body
	// (OpenYurt's own resources, which the typed clients do not know).
	RawGet(ctx context.Context, absPath string, query map[string]string) ([]byte, error)
}

type cloudClients struct {
	rest rest.Interface
	kube.Interface
}

func (c *cloudClients) ServerVersion(ctx context.Context) (*apiversion.Info, error) {
	return kube.ServerVersionREST(ctx, c.rest)
}

func (c *cloudClients) RawGet(ctx context.Context, absPath string, query map[string]string) ([]byte, error) {
	req := c.rest.Get().AbsPath(absPath)
	for k, v := range query {
		req = req.Param(k, v)
	}
	return req.DoRaw(ctx)
}

func newCloudClient(cfg *rest.Config) (CloudClient, error) {
	kc, err := kube.New(cfg)
	if err != nil {
		return nil, err
	}
	rc, err := kube.CoreREST(cfg)
	if err != nil {
		return nil, err
	}
	return &cloudClients{rest: rc, Interface: kc}, nil
}

// cloudConfigs lists the ways to the API server, best first: --kubeconfig
// alone when given; otherwise yurthub's proxy (as kubelet goes; yurthub
// adds the node's credentials), kubelet's direct kubeconfig and the admin
// kubeconfig, when they exist.
func (d *doctor) cloudConfigs() (cfgs []*rest.Config, via []string, errs []string) {
	load := func(path, real string) {
		cfg, err := clientcmd.BuildConfigFromFlags("", real)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", path, err))
			return
		}
		cfgs, via = append(cfgs, cfg), append(via, path)
	}
	if d.o.kubeconfig != "" {
		load(d.o.kubeconfig, d.o.kubeconfig)
		return
	}
	if d.hubHealthy() {
		cfgs, via = append(cfgs, &rest.Config{Host: d.dp.proxyURL}), append(via, "yurthub's proxy "+d.dp.proxyURL)
	}
	if server, err := d.kubeconfigServer(constants.KubeletKubeconfig); err == nil && strings.TrimSuffix(server, "/") != constants.YurthubProxyURL {
		load(constants.KubeletKubeconfig, d.h.FS.Path(constants.KubeletKubeconfig))
	}
	if d.h.FS.Exists(constants.AdminKubeconfig) {
		load(constants.AdminKubeconfig, d.h.FS.Path(constants.AdminKubeconfig))
	}
	return
}

// cloud returns a client that reached the API server, and by which way.
// Through yurthub a request the cloud cannot answer fails (yurthub's local
// proxy refuses non-resource requests such as /version), so an answer to
// /version means the cloud answered.
func (d *doctor) cloud() (CloudClient, string, error) {
	d.do("cloud", func() {
		cfgs, via, errs := d.cloudConfigs()
		for i, cfg := range cfgs {
			cfg.Timeout = d.o.timeout
			cfg.UserAgent = "yurtadm-doctor/" + version.Get().GitVersion
			cl, err := d.dp.newCloud(cfg)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", via[i], err))
				continue
			}
			if _, err := cl.ServerVersion(context.Background()); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", via[i], err))
				continue
			}
			d.cloudCl, d.cloudVia = cl, via[i]
			return
		}
		if len(errs) == 0 {
			errs = append(errs, "no way to the API server: yurthub does not answer, and there is no /etc/kubernetes/kubelet.conf or admin.conf (pass --kubeconfig)")
		}
		d.cloudErr = errors.New(strings.Join(errs, "; "))
	})
	return d.cloudCl, d.cloudVia, d.cloudErr
}

func (d *doctor) checkCloud() Finding {
	const name = CheckCloud
	var ev []string
	// yurthub's own view of the API servers, when its metrics answer.
	if mfs, err := d.metrics(); err == nil {
		for _, s := range mfs.samples(metricServerHealthy) {
			state := "unhealthy"
			if s.value == 1 {
				state = "healthy"
			}
			ev = append(ev, fmt.Sprintf("yurthub sees %s as %s", s.labels["server"], state))
		}
	}
	_, via, err := d.cloud()
	if err != nil {
		return warn(name, "the API server cannot be reached: the checks that ask it are skipped; pods keep running from yurthub's cache",
			"check the network to the control plane; pass --kubeconfig to use another way", append(ev, err.Error())...)
	}
	return ok(name, "the API server answers through "+via, ev...)
}

// csrFor tells whether csr is yurthub's (client or serving) for node.
func csrFor(csr *certificatesv1.CertificateSigningRequest, node string) (kind string, found bool) {
	block, _ := pem.Decode(csr.Spec.Request)
	if block == nil {
		return "", false
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || req.Subject.CommonName != "system:node:"+node {
		return "", false
	}
	switch csr.Spec.SignerName {
	case certificatesv1.KubeAPIServerClientSignerName:
		for _, o := range req.Subject.Organization {
			if o == "openyurt:yurthub" {
				return "client", true
			}
		}
	case certificatesv1.KubeletServingSignerName:
		// yurthub's serving certificate names its own addresses; kubelet's
		// does not name the loopback or the dummy interface.
		for _, ip := range req.IPAddresses {
			if ip.Equal(net.ParseIP(constants.YurthubDummyIP)) || ip.IsLoopback() {
				return "serving", true
			}
		}
	}
	return "", false
}

func csrState(csr *certificatesv1.CertificateSigningRequest) string {
	for _, c := range csr.Status.Conditions {
		switch c.Type {
		case certificatesv1.CertificateDenied:
			return "Denied"
		case certificatesv1.CertificateFailed:
			return "Failed"
		}
	}
	for _, c := range csr.Status.Conditions {
		if c.Type == certificatesv1.CertificateApproved {
			if len(csr.Status.Certificate) == 0 {
				return "Approved"
			}
			return "Issued"
		}
	}
	return "Pending"
}

// hubHasCerts tells whether yurthub holds the certificates it waits for
// at start-up, so that no CSR is needed.
func (d *doctor) hubHasCerts() bool {
	m, _ := d.yurthubManifest()
	mode := m.bootstrapMode()
	if m == nil {
		mode = constants.YurthubBootstrapModeKCE
	}
	for _, cf := range yurthubCertFiles(mode) {
		b, err := d.readHostFile(cf.path)
		if err != nil {
			return false
		}
		certs := parseCerts(b)
		if len(certs) == 0 || d.dp.now().After(certs[0].NotAfter) {
			return false
		}
	}
	return true
}

func (d *doctor) checkCSR() Finding {
	const name = CheckYurthubCSR
	if d.hubHasCerts() {
		return ok(name, "yurthub holds valid certificates: no certificate request is needed")
	}
	node := d.nodeName()
	if node == "" {
		return skip(name, "this node's name is not known: pass --node-name")
	}
	cl, via, err := d.cloud()
	if err != nil {
		return warn(name, "yurthub has no certificate, and the API server cannot be reached to see its certificate requests",
			"check the network to the control plane, or pass --kubeconfig (an admin kubeconfig) and run doctor again", err.Error())
	}
	ctx, cancel := d.timeout()
	defer cancel()
	list, err := cl.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		return warn(name, "cannot list certificate signing requests through "+via,
			"pass --kubeconfig with an admin kubeconfig", err.Error())
	}
	var mine []certificatesv1.CertificateSigningRequest
	kinds := map[string]string{}
	for _, c := range list.Items {
		if kind, found := csrFor(&c, node); found {
			mine = append(mine, c)
			kinds[c.Name] = kind
		}
	}
	m, _ := d.yurthubManifest()
	if len(mine) == 0 {
		if m.bootstrapMode() == constants.YurthubBootstrapModeToken {
			return fail(name, "yurthub has no certificate and never created a certificate signing request: its bootstrap token is invalid or expired",
				"create a token on the control plane ('kubeadm token create') and give it to yurthub with 'yurtadm token renew'",
				fmt.Sprintf("no CSR for system:node:%s with organization openyurt:yurthub among %d CSRs (read through %s)", node, len(list.Items), via))
		}
		return fail(name, "yurthub has no serving certificate and no certificate signing request for it",
			"yurthub requests it once kubelet's client certificate exists: check kubelet's TLS bootstrap and yurthub's log ('crictl logs $(crictl ps -q --name yurt-hub)')",
			fmt.Sprintf("no yurthub CSR for system:node:%s among %d CSRs (read through %s)", node, len(list.Items), via))
	}
	sort.Slice(mine, func(i, j int) bool {
		return mine[i].CreationTimestamp.After(mine[j].CreationTimestamp.Time)
	})
	var ev []string
	var pending, denied []string
	for _, c := range mine {
		st := csrState(&c)
		ev = append(ev, fmt.Sprintf("%s: %s certificate, signer %s, %s, created %s ago", c.Name, kinds[c.Name], c.Spec.SignerName, st,
			d.dp.now().Sub(c.CreationTimestamp.Time).Round(time.Second)))
		switch st {
		case "Pending":
			pending = append(pending, c.Name)
		case "Denied", "Failed":
			denied = append(denied, c.Name)
		}
	}
	switch {
	case len(pending) > 0:
		return fail(name, "yurthub's certificate signing request is Pending: nothing approves yurthub's CSRs",
			"deploy yurt-manager in the cluster (its CSR approver approves yurthub's requests), or approve by hand: 'kubectl certificate approve "+strings.Join(pending, " ")+"'", ev...)
	case len(denied) == len(mine):
		return fail(name, "yurthub's certificate signing requests were denied",
			"find out who denied them ('kubectl describe csr "+denied[0]+"'); after fixing that, restart yurthub to request again", ev...)
	}
	return warn(name, "yurthub's certificate was issued but is not on this node yet",
		"yurthub picks it up within seconds; if it does not, read yurthub's log ('crictl logs $(crictl ps -q --name yurt-hub)')", ev...)
}
