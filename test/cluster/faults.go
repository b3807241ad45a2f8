package cluster

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// partitionChain is the chain inside a node's namespace that cuts it off.
const partitionChain = "YURT-PARTITION"

// Partition cuts the node off from every other machine, as a broken
// uplink does: inside the node's own network namespace, a chain jumped to
// first from INPUT, OUTPUT and FORWARD drops everything through host0 (its
// only link). Traffic inside the node (loopback, its pods on cbr0) still
// flows; the API server, the controllers and the other nodes keep running.
func (n *Node) Partition(ctx context.Context) error {
	script := fmt.Sprintf(`iptables -w -N %[1]s 2>/dev/null || iptables -w -F %[1]s
iptables -w -A %[1]s -i host0 -j DROP
iptables -w -A %[1]s -o host0 -j DROP
for c in INPUT OUTPUT FORWARD; do iptables -w -C $c -j %[1]s 2>/dev/null || iptables -w -I $c 1 -j %[1]s; done
# Established connections (kubelet's watch) would hang until their keepalive
# runs out; a cut link leaves them dead too, so drop their conntrack state.
conntrack -D -s %[2]s >/dev/null 2>&1 || true
conntrack -D -d %[2]s >/dev/null 2>&1 || true`, partitionChain, n.IP)
	if _, err := n.Shell(ctx, script); err != nil {
		return fmt.Errorf("partition %s: %w", n.Name, err)
	}
	return nil
}

// Heal undoes Partition.
func (n *Node) Heal(ctx context.Context) error {
	script := fmt.Sprintf(`for c in INPUT OUTPUT FORWARD; do while iptables -w -D $c -j %[1]s 2>/dev/null; do :; done; done
iptables -w -F %[1]s 2>/dev/null || true
iptables -w -X %[1]s 2>/dev/null || true`, partitionChain)
	if _, err := n.Shell(ctx, script); err != nil {
		return fmt.Errorf("heal %s: %w", n.Name, err)
	}
	return nil
}

// Partitioned reports whether the node's partition chain is in place.
func (n *Node) Partitioned(ctx context.Context) bool {
	r, err := n.Run(ctx, "iptables", "-w", "-C", "OUTPUT", "-j", partitionChain)
	return err == nil && r.ExitCode == 0
}

// LinkProfile shapes a SlowLink.
type LinkProfile struct {
	// RTT is the round-trip time the link adds (half each way).
	RTT time.Duration
	// BytesPerSecond limits each direction (0: no limit).
	BytesPerSecond int
}

// FourG is a slow mobile link: 300 ms round trip, 1 Mbit/s each way.
var FourG = LinkProfile{RTT: 300 * time.Millisecond, BytesPerSecond: 125000}

// SlowLink is a user-space TCP proxy on the host's bridge address in
// front of the API server, shaping every connection (this kernel has no
// netem): a node told to use Addr instead of the API server's address
// talks to the cloud over a 4G-like link. Reset cuts every connection
// open at that moment, as a link that drops does.
type SlowLink struct {
	Addr    string
	profile LinkProfile
	target  string
	ln      net.Listener

	mu    sync.Mutex
	conns map[net.Conn]bool
	// Conns counts the connections accepted so far.
	Conns int
	// Bytes counts the bytes carried, both directions.
	Bytes int64
}

// StartSlowLink listens on the host's bridge address (a free port) and
// forwards to the API server with profile p, until Close.
func (c *Cluster) StartSlowLink(p LinkProfile) (*SlowLink, error) {
	ln, err := net.Listen("tcp", c.Config.BridgeIP()+":0")
	if err != nil {
		return nil, err
	}
	l := &SlowLink{Addr: ln.Addr().String(), profile: p, target: c.APIServer(), ln: ln, conns: map[net.Conn]bool{}}
	go l.serve()
	return l, nil
}

func (l *SlowLink) serve() {
	for {
		in, err := l.ln.Accept()
		if err != nil {
			return
		}
		go l.handle(in)
	}
}

func (l *SlowLink) handle(in net.Conn) {
	// The dial crosses the link too: half a round trip before the far end
	// sees the SYN, half back.
	time.Sleep(l.profile.RTT)
	out, err := net.DialTimeout("tcp", l.target, 10*time.Second)
	if err != nil {
		in.Close()
		return
	}
	l.mu.Lock()
	l.conns[in], l.conns[out] = true, true
	l.Conns++
	l.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.pipe(out, in) }()
	go func() { defer wg.Done(); l.pipe(in, out) }()
	wg.Wait()
	l.mu.Lock()
	delete(l.conns, in)
	delete(l.conns, out)
	l.mu.Unlock()
}

// pipe copies src to dst, each chunk delivered half a round trip after it
// was read and no faster than the profile's bandwidth.
func (l *SlowLink) pipe(dst, src net.Conn) {
	type chunk struct {
		b  []byte
		at time.Time
	}
	q := make(chan chunk, 256)
	go func() {
		defer close(q)
		for {
			b := make([]byte, 16<<10)
			k, err := src.Read(b)
			if k > 0 {
				q <- chunk{b[:k], time.Now().Add(l.profile.RTT / 2)}
			}
			if err != nil {
				return
			}
		}
	}()
	for ch := range q {
		time.Sleep(time.Until(ch.at))
		if bps := l.profile.BytesPerSecond; bps > 0 {
			time.Sleep(time.Duration(len(ch.b)) * time.Second / time.Duration(bps))
		}
		if _, err := dst.Write(ch.b); err != nil {
			src.Close()
			for range q {
			}
			return
		}
		l.mu.Lock()
		l.Bytes += int64(len(ch.b))
		l.mu.Unlock()
	}
	// Half-close as TCP would, so the other direction drains.
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	} else {
		dst.Close()
	}
}

// Reset closes every connection open now.
func (l *SlowLink) Reset() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := 0
	for c := range l.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // an RST, not a FIN
		}
		c.Close()
		k++
	}
	return k / 2
}

// Close stops the proxy and cuts its connections.
func (l *SlowLink) Close() error {
	l.Reset()
	return l.ln.Close()
}

// String describes the link.
func (p LinkProfile) String() string {
	var s []string
	s = append(s, fmt.Sprintf("%s RTT", p.RTT))
	if p.BytesPerSecond > 0 {
		s = append(s, fmt.Sprintf("%.2f Mbit/s", float64(p.BytesPerSecond)*8/1e6))
	}
	return strings.Join(s, ", ")
}
