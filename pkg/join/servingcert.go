package join

import (
	"context"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"path"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/yurthub"
)

// yurthub v1.7.0 checks its certificates right after it starts and then
// only every 5 s (cmd/yurthub/app/config/config.go): a yurthub that has to
// ask for its serving certificate first is healthy 5 s later than one that
// finds it in its certificate store. Join asks for it before kubelet
// starts yurthub, with the bootstrap token (kubeadm lets bootstrap tokens
// create CSRs), in the same shape yurthub asks for it, and puts it where
// yurthub's store (client-go's certificate FileStore, pair name
// "yurthub-server" in /var/lib/yurthub/pki) loads it from. yurthub renews
// it itself later. Best effort: when it cannot be had quickly (yurt-manager
// not running, an old cluster), yurthub asks for its own as before.

// servingCertPrefix is yurthub's pair name for its serving certificate.
const servingCertPrefix = "yurthub-server"

// servingCertIPs are the addresses yurthub v1.7.0 puts in its serving
// certificate (its dummy interface, bind and proxy addresses, the node's
// default IPv4 address).
func servingCertIPs(nodeIP net.IP) []net.IP {
	ips := []net.IP{net.ParseIP(constants.YurthubDummyIP), net.ParseIP("127.0.0.1")}
	if nodeIP != nil && !nodeIP.IsLoopback() {
		ips = append(ips, nodeIP)
	}
	return ips
}

// certCSR returns a PEM request for node's identity (CN system:node:<node>,
// O system:nodes) with the given IP SANs, and its new key.
func certCSR(node string, ips []net.IP) (csrPEM, keyPEM []byte, err error) {
	if keyPEM, err = keyutil.MakeEllipticPrivateKeyPEM(); err != nil {
		return nil, nil, err
	}
	key, err := keyutil.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, nil, err
	}
	csrPEM, err = certutil.MakeCSR(key, &pkix.Name{CommonName: "system:node:" + node, Organization: []string{"system:nodes"}}, nil, ips)
	return csrPEM, keyPEM, err
}

// certRequest is a certificate join asks for with the bootstrap token and
// puts into a client-go certificate store (the FileStore layout kubelet
// and yurthub use: <pair>-<time>.pem with certificate and key, and
// <pair>-current.pem linking to it).
type certRequest struct {
	what    string // "yurthub's serving certificate"
	prefix  string // CSR name prefix
	signer  string
	usages  []certificatesv1.KeyUsage
	ips     []net.IP
	dir     string // the store's directory
	pair    string // the store's pair name
	current string // dir/<pair>-current.pem
	// approver is who approves it, for the error.
	approver string
}

// preseed asks for the certificate (or takes the answer to the request
// an earlier phase sent, Data.IssueCert) and writes it into its store. It
// returns why it did not (nil when it did).
func (r certRequest) preseed(d Data, phase string) error {
	if d.DryRun() {
		fmt.Fprintf(d.IO().Out, "[dryrun] would ask for %s (a CSR for signer %s, with the bootstrap token) and write it to %s\n",
			r.what, r.signer, r.current)
		return nil
	}
	f, err := r.send(d)
	if err != nil {
		return err
	}
	got := f.wait()
	if got.err != nil {
		return got.err
	}
	file := path.Join(r.dir, r.pair+"-"+time.Now().Format("2006-01-02-15-04-05")+".pem")
	w := d.Files()
	if err := w.WriteFile(file, append(append([]byte{}, got.cert...), got.key...), 0o600); err != nil {
		return err
	}
	if err := w.Symlink(file, r.current); err != nil {
		return err
	}
	d.IO().Logf(phase, "Wrote %s %s (CSR %s approved)", r.what, r.current, got.csr)
	return nil
}

// send asks for the certificate (once: Data.IssueCert) unless its store
// has one already.
func (r certRequest) send(d Data) (*certFuture, error) {
	if d.Host().FS.Exists(r.current) {
		return nil, fmt.Errorf("%s exists already", r.current)
	}
	return d.IssueCert(r), nil
}

// issued is the cluster's answer to a certRequest: the certificate, its
// key, and the CSR's name; or why there is none.
type issued struct {
	cert, key []byte
	csr       string
	err       error
}

// certFuture is a certRequest on its way (Data.IssueCert).
type certFuture struct {
	done chan struct{}
	got  issued
}

func (f *certFuture) wait() issued { <-f.done; return f.got }

// issue sends the CSR with the bootstrap token and waits up to
// ServingCertWait for its certificate. It writes nothing.
func (r certRequest) issue(d Data) issued {
	csrPEM, keyPEM, err := certCSR(d.Options().NodeName, r.ips)
	if err != nil {
		return issued{err: err}
	}
	client, err := d.BootstrapClient()
	if err != nil {
		return issued{err: err}
	}
	ctx, cancel := context.WithTimeout(d.Context(), d.ServingCertWait())
	defer cancel()
	api := client.CertificatesV1().CertificateSigningRequests()
	csr, err := api.Create(ctx, &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: r.prefix + "-" + d.Options().NodeName + "-"},
		Spec:       certificatesv1.CertificateSigningRequestSpec{Request: csrPEM, SignerName: r.signer, Usages: r.usages},
	}, metav1.CreateOptions{})
	if err != nil {
		return issued{err: fmt.Errorf("create the CSR: %w", err)}
	}
	var cert []byte
	err = yurthub.Poll(ctx, d.PollInterval(), func(ctx context.Context) (bool, error) {
		c, err := api.Get(ctx, csr.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, cond := range c.Status.Conditions {
			if (cond.Type == certificatesv1.CertificateDenied || cond.Type == certificatesv1.CertificateFailed) && cond.Status == corev1.ConditionTrue {
				return false, fmt.Errorf("CSR %s %s: %s", c.Name, cond.Type, cond.Message)
			}
		}
		cert = c.Status.Certificate
		return len(cert) > 0, nil
	})
	if err != nil {
		return issued{err: fmt.Errorf("CSR %s not issued within %s (%v): is %s running?", csr.Name, d.ServingCertWait(), err, r.approver)}
	}
	if _, err := certutil.ParseCertsPEM(cert); err != nil {
		return issued{err: fmt.Errorf("CSR %s: the issued certificate: %w", csr.Name, err)}
	}
	return issued{cert: cert, key: keyPEM, csr: csr.Name}
}

// preseedServingCert asks for yurthub's serving certificate and writes it
// into yurthub's store. It returns why it did not (nil when it did).
func preseedServingCert(d Data) error { return servingCertRequest(d).preseed(d, "yurthub") }

// servingCertRequest is yurthub's serving certificate.
func servingCertRequest(d Data) certRequest {
	nodeIP, _ := d.NodeIP()
	return certRequest{
		what: "yurthub's serving certificate", prefix: "yurthub-server", signer: certificatesv1.KubeletServingSignerName,
		usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageServerAuth},
		ips:    servingCertIPs(nodeIP), dir: constants.YurthubPKIDir, pair: servingCertPrefix, current: constants.YurthubServerCert,
		approver: "yurt-manager",
	}
}

// requestServingCertEarly sends yurthub's serving certificate's CSR now,
// for the yurthub phase to write: kubelet's and yurthub's CSRs are then
// approved in one wait instead of one after the other (2 round trips,
// 0.6 s, fewer over a 4G link).
func requestServingCertEarly(d Data) {
	if d.ServingCertWait() > 0 && !d.DryRun() {
		// An existing certificate is the yurthub phase's to report.
		_, _ = servingCertRequest(d).send(d)
	}
}

// preseedKubeletClientCert does kubelet's TLS bootstrap for it: the CSR
// kubelet itself would send with the bootstrap token (signer
// kube-apiserver-client-kubelet, approved by kube-controller-manager for
// the token's group, as kubeadm sets up), written into kubelet's own
// certificate store. kubelet then starts once, already pointed at yurthub
// (yurthub's kubeletcertificate mode reads this very certificate), instead
// of bootstrapping directly and being restarted onto yurthub. kubelet
// rotates it itself later, as it rotates its own.
func preseedKubeletClientCert(d Data) error {
	return certRequest{
		what: "kubelet's client certificate", prefix: "node-csr", signer: certificatesv1.KubeAPIServerClientKubeletSignerName,
		usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		dir:    constants.KubeletPKIDir, pair: "kubelet-client", current: constants.KubeletClientCert,
		approver: "kube-controller-manager's CSR approver",
	}.preseed(d, "kubelet-files")
}
