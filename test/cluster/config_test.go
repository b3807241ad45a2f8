package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNormalizeAssignsAddressesAndPools(t *testing.T) {
	c := Default()
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ ip, pool, pods string }{
		"cp":     {"172.31.250.10", "", "10.251.10.0/24"},
		"edge1":  {"172.31.250.11", "hangzhou", "10.251.11.0/24"},
		"edge2":  {"172.31.250.12", "shanghai", "10.251.12.0/24"},
		"cloud1": {"172.31.250.13", "cloud", "10.251.13.0/24"},
	}
	for _, n := range c.Nodes {
		w := want[n.Name]
		if n.IP != w.ip || n.Pool != w.pool || n.PodSubnet() != w.pods {
			t.Errorf("%s: ip %s pool %q pods %s, want %+v", n.Name, n.IP, n.Pool, n.PodSubnet(), w)
		}
	}
	if c.NodeMonitorGracePeriod != "50s" || c.TolerationSeconds != 300 {
		t.Errorf("lifecycle %s %d, want Kubernetes' 50s and 300", c.NodeMonitorGracePeriod, c.TolerationSeconds)
	}
	if c.BridgeIP() != "172.31.250.1" || c.Bridge() != "yurtbr0" {
		t.Errorf("bridge %s %s", c.Bridge(), c.BridgeIP())
	}
}

func TestLoadRefusesBadDescriptions(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"nodes: [{name: e1, role: edge}]", "first node must have role control-plane"},
		{"nodes: [{name: cp, role: control-plane}, {name: cp, role: edge}]", `"cp" given twice`},
		{"nodes: [{name: cp, role: control-plane}, {name: Edge, role: edge}]", `node name "Edge"`},
		{"nodes: [{name: cp, role: control-plane}, {name: e1, role: fog}]", `role "fog"`},
		{"nodes: [{name: cp, role: control-plane}, {name: c2, role: control-plane}]", "only one control-plane node"},
		{"subnet: 10.0.0.0/16\nnodes: [{name: cp, role: control-plane}]", "want a /24"},
		{"nodes: [{name: cp, role: control-plane, colour: red}]", "unknown field"},
		{"name: my-cluster\nnodes: [{name: cp, role: control-plane}]", `cluster name "my-cluster"`},
	} {
		p := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(p, []byte(tc.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to say %q", tc.yaml, err, tc.want)
		}
	}
}

func TestKubeadmConfigCarriesTheDescription(t *testing.T) {
	d := Default()
	d.NodeMonitorGracePeriod, d.TolerationSeconds = "20s", 30
	c, err := New(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.kubeadmConfig()
	for _, want := range []string{"advertiseAddress: 172.31.250.10", "certSANs: [172.31.250.10, 172.31.250.1]",
		`{name: default-unreachable-toleration-seconds, value: "30"}`, `{name: node-monitor-grace-period, value: "20s"}`,
		"cgroupDriver: systemd", "conntrack: {maxPerCore: 0}", "podSubnet: 10.251.0.0/16"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("kubeadm config lacks %q:\n%s", want, cfg)
		}
	}
}

func TestPollReportsTheLastNote(t *testing.T) {
	n := 0
	err := Poll(context.Background(), 600*time.Millisecond, func() (bool, string) { n++; return false, fmt.Sprintf("try %d", n) })
	if err == nil || !strings.Contains(err.Error(), "not done after 600ms (last: try ") || n < 2 {
		t.Errorf("%v after %d tries", err, n)
	}
	if err := Poll(context.Background(), time.Second, func() (bool, string) { return true, "" }); err != nil {
		t.Error(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Poll(ctx, time.Second, func() (bool, string) { return false, "" }); err != context.Canceled {
		t.Errorf("canceled: %v", err)
	}
}
