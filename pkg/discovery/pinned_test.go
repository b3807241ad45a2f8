package discovery

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCA signs serving certificates for 127.0.0.1.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// issue makes a certificate of tmpl with a new key, signed by parent
// (self-signed when parent is nil).
func issue(t *testing.T, tmpl *x509.Certificate, parent *testCA) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func newTestCA(t *testing.T) *testCA {
	cert, key := issue(t, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubernetes"},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil)
	return &testCA{cert: cert, key: key}
}

func (ca *testCA) serving(t *testing.T) tls.Certificate {
	cert, key := issue(t, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}, ca)
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key}
}

// apiServer is a TLS server that counts connections and records the
// Authorization headers it was sent and the connection of each. Like
// kube-apiserver (1.29 and later), it closes a connection after an
// anonymous request.
type apiServer struct {
	*httptest.Server
	mu    sync.Mutex
	conns int
	auth  []string
	from  []string // the client address of each request
}

func newAPIServer(t *testing.T, cert tls.Certificate) *apiServer {
	t.Helper()
	s := &apiServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.auth = append(s.auth, r.Header.Get("Authorization"))
		s.from = append(s.from, r.RemoteAddr)
		s.mu.Unlock()
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("Connection", "close") // HTTP/2: GOAWAY
		}
		_, _ = w.Write([]byte("ok " + r.Proto))
	}))
	s.EnableHTTP2 = true
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
		}
	}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *apiServer) seen() (int, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns, append([]string(nil), s.auth...)
}

func get(t *testing.T, rt http.RoundTripper, url, token string) (string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	buf := make([]byte, 64)
	n, _ := resp.Body.Read(buf)
	return string(buf[:n]), nil
}

func (s *apiServer) requestsFrom() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.from...)
}

// waitConns waits up to 2 s for the server to have seen n connections.
func (s *apiServer) waitConns(n int) int {
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if c, _ := s.seen(); c >= n || time.Now().After(deadline) {
			return c
		}
	}
}

func TestPinnedTransportOpensTheTokensConnectionBeforeTrust(t *testing.T) {
	ca := newTestCA(t)
	srv := newAPIServer(t, ca.serving(t))
	p := newPinnedTransport("127.0.0.1")
	if body, err := get(t, p, srv.URL+"/cluster-info", ""); err != nil || !strings.Contains(body, "HTTP/2") {
		t.Fatalf("anonymous read before trust: %q, %v (want it served, over HTTP/2)", body, err)
	}
	// The spare: connected while cluster-info was read, without any
	// request asking for it.
	if n := srv.waitConns(2); n != 2 {
		t.Fatalf("the server saw %d connections after the anonymous read, want 2 (it and the spare)", n)
	}
	if _, err := get(t, p, srv.URL+"/kubeadm-config", "secret-token"); err == nil {
		t.Fatal("a request with credentials was sent before the CA was pinned")
	}
	if err := p.trust([]*x509.Certificate{ca.cert}); err != nil {
		t.Fatalf("trust of the CA that signed the server's certificate: %v", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs { // at once: they must share the one connection
		wg.Add(1)
		go func() { defer wg.Done(); _, errs[i] = get(t, p, srv.URL+"/kubeadm-config", "secret-token") }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("read with the token after trust: %v", err)
		}
	}
	if _, err := get(t, p, srv.URL+"/kubelet-config", "secret-token"); err != nil {
		t.Fatal(err)
	}
	conns, auth := srv.seen()
	if conns != 2 {
		t.Errorf("the server saw %d connections, want 2: the anonymous one, closed by the server, and the spare for all of the token's reads", conns)
	}
	if want := []string{"", "Bearer secret-token", "Bearer secret-token", "Bearer secret-token", "Bearer secret-token"}; strings.Join(auth, "|") != strings.Join(want, "|") {
		t.Errorf("Authorization headers the server saw: %q, want %q (none before trust)", auth, want)
	}
	from := srv.requestsFrom()
	for _, f := range from[2:] {
		if f != from[1] || f == from[0] {
			t.Errorf("the token's reads came from %q, want all on one connection, not the anonymous one (%s)", from[1:], from[0])
			break
		}
	}
}

func TestPinnedTransportRefusesAServerTheCADidNotSign(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	for _, tc := range []struct {
		name  string
		host  string
		roots *x509.Certificate
		want  string
	}{
		{name: "another CA", host: "127.0.0.1", roots: other.cert, want: "unknown authority"},
		{name: "certificate not for this address", host: "192.0.2.7", roots: ca.cert, want: "192.0.2.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newAPIServer(t, ca.serving(t))
			p := newPinnedTransport(tc.host)
			if _, err := get(t, p, srv.URL+"/cluster-info", ""); err != nil {
				t.Fatal(err)
			}
			err := p.trust([]*x509.Certificate{tc.roots})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("trust = %v, want an error naming %q", err, tc.want)
			}
			if _, err := get(t, p, srv.URL+"/kubeadm-config", "secret-token"); err == nil {
				t.Error("a request went out after trust failed")
			}
			if _, err := get(t, p, srv.URL+"/cluster-info", ""); err == nil {
				t.Error("an anonymous request went out after trust failed")
			}
			srv.waitConns(2) // the spare, verified by trust as well
			if _, auth := srv.seen(); len(auth) != 1 {
				t.Errorf("the server was sent %d requests, want only the first, anonymous one: %q", len(auth), auth)
			}
		})
	}
}

func TestPinnedTransportVerifiesNewConnectionsAfterTrust(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	good, impostor := newAPIServer(t, ca.serving(t)), newAPIServer(t, other.serving(t))
	p := newPinnedTransport("127.0.0.1")
	if _, err := get(t, p, good.URL+"/cluster-info", ""); err != nil {
		t.Fatal(err)
	}
	if err := p.trust([]*x509.Certificate{ca.cert}); err != nil {
		t.Fatal(err)
	}
	// Same address as far as the certificate goes, another CA's certificate.
	if _, err := get(t, p, impostor.URL+"/kubeadm-config", "secret-token"); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("a new connection to a server another CA signed: %v, want refused in the handshake", err)
	}
	if _, auth := impostor.seen(); len(auth) != 0 {
		t.Errorf("the impostor was sent %q", auth)
	}
}
