package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
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
// The cut outlives a reboot of the node (a unit of the harness applies it
// before the network comes up) until Heal.
func (n *Node) Partition(ctx context.Context) error {
	root := n.Merged()
	if err := writeFile(filepath.Join(root, partitionScript), []byte(fmt.Sprintf(partitionSh, partitionChain)), 0o755); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(root, partitionUnit), []byte(partitionUnitText), 0o644); err != nil {
		return err
	}
	link := filepath.Join(root, "etc/systemd/system/sysinit.target.wants", filepath.Base(partitionUnit))
	_ = os.Remove(link)
	if err := os.Symlink("/"+partitionUnit, link); err != nil {
		return err
	}
	// Established connections (kubelet's watch) would hang until their
	// keepalive runs out; a cut link leaves them dead too.
	if _, err := n.Shell(ctx, "/"+partitionScript+"; conntrack -D -s "+n.IP+" >/dev/null 2>&1 || true; conntrack -D -d "+n.IP+" >/dev/null 2>&1 || true"); err != nil {
		return fmt.Errorf("partition %s: %w", n.Name, err)
	}
	return nil
}

const (
	partitionScript = "usr/local/sbin/ynode-partition"
	partitionUnit   = "etc/systemd/system/ynode-partition.service"
	partitionSh     = `#!/bin/sh
# Written by the harness's Partition, removed by Heal.
set -e
iptables -w -N %[1]s 2>/dev/null || iptables -w -F %[1]s
iptables -w -A %[1]s -i host0 -j DROP
iptables -w -A %[1]s -o host0 -j DROP
for c in INPUT OUTPUT FORWARD; do iptables -w -C $c -j %[1]s 2>/dev/null || iptables -w -I $c 1 -j %[1]s; done
`
	partitionUnitText = `[Unit]
Description=The harness's cut link (test/cluster Partition; Heal removes it)
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/ynode-partition

[Install]
WantedBy=sysinit.target
`
)

// Heal undoes Partition.
func (n *Node) Heal(ctx context.Context) error {
	root := n.Merged()
	for _, p := range []string{filepath.Join("etc/systemd/system/sysinit.target.wants", filepath.Base(partitionUnit)), partitionUnit, partitionScript} {
		if err := os.Remove(filepath.Join(root, p)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
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

// Counts are Conns and Bytes so far, read under the link's lock (the
// link may be carrying traffic).
func (l *SlowLink) Counts() (conns int, bytes int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.Conns, l.Bytes
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

// linkChain is the nat chain inside a node that sends its API traffic
// through a SlowLink.
const linkChain = "YURT-LINK"

// Route sends every connection the node (its own processes: kubelet,
// yurthub, yurtadm) opens to the API server through l, by DNAT inside the
// node's namespace: the node still dials the API server's address, so TLS
// names and kubeconfigs are what they would be on a real slow link.
func (n *Node) Route(ctx context.Context, l *SlowLink) error {
	host, port, err := net.SplitHostPort(l.Addr)
	if err != nil {
		return err
	}
	cpHost, cpPort, _ := net.SplitHostPort(n.c.APIServer())
	script := fmt.Sprintf(`iptables -w -t nat -N %[1]s 2>/dev/null || iptables -w -t nat -F %[1]s
iptables -w -t nat -A %[1]s -d %[2]s -p tcp --dport %[3]s -j DNAT --to-destination %[4]s:%[5]s
iptables -w -t nat -C OUTPUT -j %[1]s 2>/dev/null || iptables -w -t nat -I OUTPUT 1 -j %[1]s
conntrack -D -d %[2]s >/dev/null 2>&1 || true`, linkChain, cpHost, cpPort, host, port)
	if _, err := n.Shell(ctx, script); err != nil {
		return fmt.Errorf("route %s through the slow link: %w", n.Name, err)
	}
	return nil
}

// Unroute undoes Route.
func (n *Node) Unroute(ctx context.Context) error {
	script := fmt.Sprintf(`while iptables -w -t nat -D OUTPUT -j %[1]s 2>/dev/null; do :; done
iptables -w -t nat -F %[1]s 2>/dev/null || true
iptables -w -t nat -X %[1]s 2>/dev/null || true
conntrack -D -d %[2]s >/dev/null 2>&1 || true`, linkChain, n.c.ControlPlane().IP)
	_, err := n.Shell(ctx, script)
	return err
}
