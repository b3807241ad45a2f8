package join

import (
	"context"
	"crypto/x509/pkix"
	"errors"
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

// servingCSR returns the PEM request and its key for node.
func servingCSR(node string, ips []net.IP) (csrPEM, keyPEM []byte, err error) {
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

// preseedServingCert asks for yurthub's serving certificate and writes it
// into yurthub's store. It returns why it did not (nil when it did).
func preseedServingCert(d Data) error {
	o := d.Options()
	if d.DryRun() {
		fmt.Fprintf(d.IO().Out, "[dryrun] would ask for yurthub's serving certificate (a CSR for signer %s, with the bootstrap token) and write it to %s\n",
			certificatesv1.KubeletServingSignerName, constants.YurthubServerCert)
		return nil
	}
	if d.Host().FS.Exists(constants.YurthubServerCert) {
		return errors.New("yurthub has a serving certificate already")
	}
	nodeIP, _ := d.NodeIP()
	csrPEM, keyPEM, err := servingCSR(o.NodeName, servingCertIPs(nodeIP))
	if err != nil {
		return err
	}
	client, err := d.BootstrapClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(d.Context(), d.ServingCertWait())
	defer cancel()
	api := client.CertificatesV1().CertificateSigningRequests()
	csr, err := api.Create(ctx, &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "yurthub-server-" + o.NodeName + "-"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    csrPEM,
			SignerName: certificatesv1.KubeletServingSignerName,
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageServerAuth},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create the CSR: %w", err)
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
		return fmt.Errorf("CSR %s not issued within %s (%v): is yurt-manager running?", csr.Name, d.ServingCertWait(), err)
	}
	if _, err := certutil.ParseCertsPEM(cert); err != nil {
		return fmt.Errorf("CSR %s: the issued certificate: %w", csr.Name, err)
	}
	// The store's layout: <pair>-<time>.pem holding the certificate and
	// the key, and <pair>-current.pem linking to it.
	file := path.Join(constants.YurthubPKIDir, servingCertPrefix+"-"+time.Now().Format("2006-01-02-15-04-05")+".pem")
	w := d.Files()
	if err := w.WriteFile(file, append(append([]byte{}, cert...), keyPEM...), 0o600); err != nil {
		return err
	}
	if err := w.Symlink(file, constants.YurthubServerCert); err != nil {
		return err
	}
	d.IO().Logf("yurthub", "Wrote yurthub's serving certificate %s (CSR %s approved)", constants.YurthubServerCert, csr.Name)
	return nil
}
