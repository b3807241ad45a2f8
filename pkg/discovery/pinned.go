package discovery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// pinnedTransport is the one HTTP transport of discovery and of the join
// requests after it. It connects before the cluster CA is known, trusting
// no certificate yet, which is all reading cluster-info anonymously needs;
// trust then checks the connections it already holds against the CA just
// pinned, and every later connection is checked in its TLS handshake.
// Until trust it refuses any request that carries credentials.
//
// kube-apiserver closes an HTTP/2 connection after an anonymous request
// (GOAWAY, since Kubernetes 1.29), so the token's requests need a second
// connection: the transport opens it while cluster-info is being read
// (a spare, handed to the next dial) instead of after, which saves its
// TCP and TLS handshakes, 2 round trips (0.6 s over a 300 ms 4G link).
// And it dials one connection at a time, so that requests sent at once
// share one HTTP/2 connection instead of racing to open one each.
type pinnedTransport struct {
	rt   http.RoundTripper
	host string // the API server's host, as certificates name it
	tls  *tls.Config
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu      sync.Mutex
	roots   *x509.CertPool        // nil until trust
	pending [][]*x509.Certificate // peer chains of connections made before trust
	failed  error                 // trust found a connection the CA did not sign
	spared  bool                  // the spare was asked for
	spare   chan dialed           // the spare connection, until taken
}

type dialed struct {
	conn net.Conn
	addr string
	err  error
}

// spareIdle is how long an untaken spare connection is kept.
const spareIdle = 30 * time.Second

// tlsHandshakeTimeout bounds each TLS handshake, dialled here (dialTLS)
// or by the transport (proxied connections): client-go's value.
const tlsHandshakeTimeout = 10 * time.Second

func newPinnedTransport(host string) *pinnedTransport {
	p := &pinnedTransport{host: host}
	p.tls = &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Verified by verifyConnection instead: before trust nothing is,
		// as for kubeadm's anonymous cluster-info read.
		InsecureSkipVerify: true, //nolint:gosec // see verifyConnection
		VerifyConnection:   p.verifyConnection,
	}
	p.dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t := &http.Transport{
		// Proxied connections (HTTPS_PROXY) use TLSClientConfig, direct
		// ones dialTLS; both verify the same way.
		TLSClientConfig:     p.tls,
		DialTLSContext:      p.dialTLS,
		TLSHandshakeTimeout: tlsHandshakeTimeout,
		MaxIdleConnsPerHost: 25,
		MaxConnsPerHost:     1,
		DialContext:         p.dial,
	}
	// client-go's own defaults: proxy from the environment (with CIDRs in
	// NO_PROXY), HTTP/2 with its health check; that adds h2 to p.tls's
	// protocols.
	p.rt = utilnet.SetTransportDefaults(t)
	return p
}

// dialTLS connects and does the TLS handshake. The first call also opens
// the spare; a later one takes it.
func (p *pinnedTransport) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	p.mu.Lock()
	spare, first := p.spare, !p.spared
	p.spare, p.spared = nil, true
	p.mu.Unlock()
	if spare != nil {
		if d := <-spare; d.err == nil && d.addr == addr {
			return d.conn, nil
		} else if d.conn != nil {
			d.conn.Close()
		}
	}
	conn, err := p.handshake(ctx, network, addr)
	if err == nil && first {
		ch := make(chan dialed, 1)
		p.mu.Lock()
		p.spare = ch
		p.mu.Unlock()
		go func() {
			// Not the request's context: the spare outlives the request
			// that started it. The dialer's and the handshake's timeouts
			// bound it.
			c, err := p.handshake(context.Background(), network, addr)
			ch <- dialed{conn: c, addr: addr, err: err}
			time.AfterFunc(spareIdle, func() { p.dropSpare(ch) })
		}()
	}
	return conn, err
}

// dropSpare closes the spare ch if nobody took it.
func (p *pinnedTransport) dropSpare(ch chan dialed) {
	p.mu.Lock()
	mine := p.spare == ch
	if mine {
		p.spare = nil
	}
	p.mu.Unlock()
	if mine {
		if d := <-ch; d.conn != nil {
			d.conn.Close()
		}
	}
}

func (p *pinnedTransport) handshake(ctx context.Context, network, addr string) (net.Conn, error) {
	raw, err := p.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	cfg := p.tls.Clone()
	cfg.ServerName = p.host
	conn := tls.Client(raw, cfg)
	hctx, cancel := context.WithTimeout(ctx, tlsHandshakeTimeout)
	defer cancel()
	if err := conn.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, err
	}
	return conn, nil
}

func (p *pinnedTransport) verifyConnection(cs tls.ConnectionState) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.roots == nil {
		p.pending = append(p.pending, cs.PeerCertificates)
		return nil
	}
	return verifyChain(cs.PeerCertificates, p.roots, p.host)
}

// errNotTrusted is a request with credentials before trust.
var errNotTrusted = errors.New("refusing to send credentials before the cluster CA is pinned")

// RoundTrip implements http.RoundTripper.
func (p *pinnedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	p.mu.Lock()
	trusted, failed := p.roots != nil, p.failed
	p.mu.Unlock()
	switch {
	case failed != nil:
		return nil, failed
	case !trusted && req.Header.Get("Authorization") != "":
		return nil, errNotTrusted
	}
	return p.rt.RoundTrip(req)
}

// trust pins certs (the cluster CA) as the only roots: the connections
// made so far must present a certificate they sign for host, or trust
// fails and the transport refuses every request from then on.
func (p *pinnedTransport) trust(certs []*x509.Certificate) error {
	roots := x509.NewCertPool()
	for _, c := range certs {
		roots.AddCert(c)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.roots = roots
	for _, chain := range p.pending {
		if err := verifyChain(chain, roots, p.host); err != nil {
			p.failed = err
			break
		}
	}
	p.pending = nil
	if p.failed != nil {
		if ci, ok := p.rt.(interface{ CloseIdleConnections() }); ok {
			ci.CloseIdleConnections()
		}
	}
	return p.failed
}

// verifyChain is what a TLS client trusting only roots checks of the
// server's certificates for host (a name or an IP address).
func verifyChain(chain []*x509.Certificate, roots *x509.CertPool, host string) error {
	if len(chain) == 0 {
		return errors.New("the API server presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: host}); err != nil {
		return fmt.Errorf("the API server's certificate is not one the pinned cluster CA signed for %s: %w", host, err)
	}
	return nil
}
