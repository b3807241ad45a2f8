package join

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/discovery"
	"github.com/yurtadm/yurtadm/pkg/host/hosttest"
	"github.com/yurtadm/yurtadm/pkg/kube"
	"github.com/yurtadm/yurtadm/pkg/kube/kubetest"
)

// signer plays yurt-manager and kube-controller-manager: it signs (or
// denies) each CSR as it is created and keeps what it was asked.
type signer struct {
	t      *testing.T
	deny   bool
	asked  *x509.CertificateRequest
	csr    *certificatesv1.CertificateSigningRequest
	config *rest.Config
	signed []string // the signer names of the CSRs signed
	// together, when set, holds each CSR's creation until that many are
	// being created at once (at most 2 s); overlapped says they were.
	together   int
	overlapped bool
	mu         sync.Mutex
	created    int
	allIn      chan struct{}
}

// meet holds a CSR's creation until s.together of them are in.
func (s *signer) meet() {
	s.mu.Lock()
	if s.together == 0 {
		s.mu.Unlock()
		return
	}
	if s.allIn == nil {
		s.allIn = make(chan struct{})
	}
	s.created++
	if s.created == s.together {
		close(s.allIn)
		s.mu.Unlock()
		return
	}
	all := s.allIn
	s.mu.Unlock()
	// Overlapped only when another CSR came while this one waited.
	select {
	case <-all:
		s.mu.Lock()
		s.overlapped = true
		s.mu.Unlock()
	case <-time.After(2 * time.Second):
	}
}

func (s *signer) client(cfg *rest.Config) (kube.Interface, error) {
	s.config = cfg
	c := fake.NewSimpleClientset()
	s.react(c)
	return kubetest.Wrap(c), nil
}

// react makes c sign (or deny) the CSRs created through it.
func (s *signer) react(c *fake.Clientset) {
	c.PrependReactor("create", "certificatesigningrequests", func(a k8stesting.Action) (bool, runtime.Object, error) {
		s.meet()
		s.mu.Lock()
		defer s.mu.Unlock()
		csr := a.(k8stesting.CreateAction).GetObject().(*certificatesv1.CertificateSigningRequest)
		csr.Name = csr.GenerateName + "x1"
		s.csr = csr
		blk, _ := pem.Decode(csr.Spec.Request)
		req, err := x509.ParseCertificateRequest(blk.Bytes)
		if err != nil {
			s.t.Fatal(err)
		}
		s.asked = req
		if s.deny {
			csr.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateDenied, Status: corev1.ConditionTrue, Message: "not ours"}}
			return false, nil, nil
		}
		ca, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: req.Subject, IPAddresses: req.IPAddresses,
			NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, &x509.Certificate{Subject: pkix.Name{CommonName: "ca"}}, req.PublicKey, ca)
		if err != nil {
			s.t.Fatal(err)
		}
		csr.Status.Certificate = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		s.signed = append(s.signed, csr.Spec.SignerName)
		return false, nil, nil
	})
}

func certData(t *testing.T, s *signer) (*joinData, *bytes.Buffer) {
	h, _, _ := hosttest.New(t)
	var log bytes.Buffer
	io := cmdutil.IOStreams{Out: &log, ErrOut: &log}
	d := &joinData{ctx: context.Background(), opts: &Options{NodeName: "edge-1", Token: "abcdef.0123456789abcdef"}, host: h, io: io,
		files: newWriter(h.FS, io, false, func(s string) string { return s }), client: s.client, poll: time.Millisecond,
		certWait: time.Second, nodeIP: func() (net.IP, error) { return net.ParseIP("192.0.2.7"), nil }}
	d.once.Do(func() {})
	d.discovered = &discovery.Result{Server: "https://192.0.2.1:6443", CAData: []byte("ca")}
	return d, &log
}

func TestPreseedServingCert(t *testing.T) {
	s := &signer{t: t}
	d, log := certData(t, s)
	if err := preseedServingCert(d); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	// Asked as yurthub asks, with the bootstrap token, trusting the CA.
	if s.config.BearerToken != "abcdef.0123456789abcdef" || s.config.Host != "https://192.0.2.1:6443" || string(s.config.CAData) != "ca" {
		t.Errorf("client config %+v", s.config)
	}
	if s.csr.Spec.SignerName != certificatesv1.KubeletServingSignerName || len(s.csr.Spec.Usages) != 3 {
		t.Errorf("CSR spec %+v", s.csr.Spec)
	}
	if s.asked.Subject.CommonName != "system:node:edge-1" || strings.Join(s.asked.Subject.Organization, ",") != "system:nodes" {
		t.Errorf("subject %v", s.asked.Subject)
	}
	var ips []string
	for _, ip := range s.asked.IPAddresses {
		ips = append(ips, ip.String())
	}
	if strings.Join(ips, ",") != "169.254.2.1,127.0.0.1,192.0.2.7" {
		t.Errorf("IP SANs %v", ips)
	}
	// Written as client-go's FileStore keeps a pair: current links to a
	// dated file with the certificate and the key, 0600.
	link := d.host.FS.Path(constants.YurthubServerCert)
	target, err := os.Readlink(link)
	if err != nil || !strings.HasPrefix(target, constants.YurthubPKIDir+"/yurthub-server-2") {
		t.Fatalf("%s links to %q (%v)", constants.YurthubServerCert, target, err)
	}
	st, err := os.Stat(d.host.FS.Path(target))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v", target, st, err)
	}
	b, _ := d.host.FS.ReadFile(target)
	if _, err := tls.X509KeyPair(b, b); err != nil {
		t.Errorf("the pair does not load: %v", err)
	}
	if got := d.files.Written(); len(got) < 2 {
		t.Errorf("not recorded for rollback: %v", got)
	}
	// A second run finds it there.
	if err := preseedServingCert(d); err == nil || !strings.Contains(err.Error(), "already") {
		t.Errorf("second run: %v", err)
	}
	// Rollback takes both away.
	d.files.Rollback()
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Errorf("rollback left %s", constants.YurthubServerCert)
	}
}

func TestPreseedServingCertDenied(t *testing.T) {
	s := &signer{t: t, deny: true}
	d, _ := certData(t, s)
	err := preseedServingCert(d)
	if err == nil || !strings.Contains(err.Error(), "Denied") {
		t.Fatalf("got %v", err)
	}
	if d.host.FS.Exists(constants.YurthubPKIDir) {
		t.Errorf("%s written for a denied CSR", constants.YurthubPKIDir)
	}
}
