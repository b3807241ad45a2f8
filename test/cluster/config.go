// Package cluster is the project's multi-node harness, in the spirit of
// kind's pkg/cluster over a node provider: every node is a Debian 12 root
// file system booted by systemd-nspawn with systemd as PID 1, in its own
// network namespace on a host bridge, running containerd and the kubelet
// and kubeadm packages' file layout. The control-plane node runs a real
// `kubeadm init` (static pods, external etcd as a unit inside the node);
// kube-proxy and CoreDNS run from images built here; workers join for real,
// edge and cloud nodes with `yurtadm join` run inside the node (systemd
// starts kubelet), plain workers with `kubeadm join`.
//
// Faults are primitives: Partition/Heal cut a node from the cloud with
// iptables inside its own namespace while the API server and controllers
// keep running; Poweroff/Boot and Kill stop a node as a power cut does;
// SlowLink puts a 4G-like user-space proxy between a node and the API
// server.
//
// The node image's base (hack/node-image.sh) is cached by its inputs; the
// layer over it (binaries, units, configuration) and the images are made at
// every Create from the tools (hack/tools.sh) and this repository. All the
// harness's state lives in Dir (/var/lib/yurtadm-cluster); Delete takes
// down what state.json names and what it finds by name, leaving the machine
// as it was.
package cluster

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"
)

// Roles of a node.
const (
	RoleControlPlane = "control-plane"
	RoleCloud        = "cloud"  // a cloud worker joined by yurtadm join --node-type cloud
	RoleEdge         = "edge"   // an edge worker joined by yurtadm join --node-type edge
	RoleWorker       = "worker" // a plain worker joined by kubeadm join
)

// DefaultName is the name of a cluster whose description gives none.
const DefaultName = "yurt"

// Config describes a cluster, like kind's config file.
type Config struct {
	// Name prefixes what the harness creates on the host (the bridge, the
	// FORWARD chain, the cgroups) and names its Dir: clusters of different
	// names, subnets and node names can be up at once.
	Name string `json:"name,omitempty"`
	// Nodes, the control-plane node first.
	Nodes []NodeSpec `json:"nodes"`
	// Subnet is the node network, a /24: the bridge takes .1, nodes .10 on.
	Subnet string `json:"subnet,omitempty"`
	// NodeMonitorGracePeriod is kube-controller-manager's
	// --node-monitor-grace-period (Kubernetes' default is 50s).
	NodeMonitorGracePeriod string `json:"nodeMonitorGracePeriod,omitempty"`
	// TolerationSeconds is kube-apiserver's
	// --default-not-ready-toleration-seconds and
	// --default-unreachable-toleration-seconds (Kubernetes' default 300):
	// how long a pod stays on an unreachable node before eviction.
	TolerationSeconds int `json:"tolerationSeconds,omitempty"`
}

// NodeSpec is one node.
type NodeSpec struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// Pool is the node pool of an edge or cloud node (default: its role).
	Pool string `json:"pool,omitempty"`
	// NoJoin leaves a worker booted but not joined (a scenario joins it).
	NoJoin bool `json:"noJoin,omitempty"`
	// NoDropIn leaves out the kubeadm package's kubelet drop-in
	// (/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf): a device
	// with only the kubelet package.
	NoDropIn bool `json:"noDropIn,omitempty"`

	// IP is set by Normalize.
	IP string `json:"-"`
	// Index is the node's place in Config.Nodes.
	Index int `json:"-"`
}

var clusterName = regexp.MustCompile(`^[a-z][a-z0-9]{0,9}$`)

var nodeName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,10}$`)

// Default is the quickstart's cluster: a control plane, two edge nodes in
// two pools and a cloud node, with Kubernetes' own node lifecycle timing
// (the e2e scenarios shorten it).
func Default() *Config {
	return &Config{
		Nodes: []NodeSpec{
			{Name: "cp", Role: RoleControlPlane},
			{Name: "edge1", Role: RoleEdge, Pool: "hangzhou"},
			{Name: "edge2", Role: RoleEdge, Pool: "shanghai"},
			{Name: "cloud1", Role: RoleCloud, Pool: "cloud"},
		},
	}
}

// Load reads a Config from a YAML file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Config
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.Normalize(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// Normalize fills defaults and checks the description.
func (c *Config) Normalize() error {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if !clusterName.MatchString(c.Name) {
		return fmt.Errorf("cluster name %q: lower-case letters and digits, at most 10 (the host's bridge is <name>br0)", c.Name)
	}
	if c.Subnet == "" {
		c.Subnet = "172.31.250.0/24"
	}
	ip, ipnet, err := net.ParseCIDR(c.Subnet)
	if err != nil || ip.To4() == nil {
		return fmt.Errorf("subnet %q: want an IPv4 /24 such as 172.31.250.0/24", c.Subnet)
	}
	if ones, _ := ipnet.Mask.Size(); ones != 24 {
		return fmt.Errorf("subnet %q: want a /24", c.Subnet)
	}
	if len(c.Nodes) == 0 || c.Nodes[0].Role != RoleControlPlane {
		return fmt.Errorf("the first node must have role %s", RoleControlPlane)
	}
	if len(c.Nodes) > 8 {
		return fmt.Errorf("%d nodes: at most 8 fit this machine (2 cores, 128 inotify instances)", len(c.Nodes))
	}
	seen := map[string]bool{}
	base := ipnet.IP.To4()
	for i := range c.Nodes {
		n := &c.Nodes[i]
		if !nodeName.MatchString(n.Name) {
			return fmt.Errorf("node name %q: lower-case letters, digits and '-', at most 11 characters (the host's veth is ve-<name>)", n.Name)
		}
		if seen[n.Name] {
			return fmt.Errorf("node name %q given twice", n.Name)
		}
		seen[n.Name] = true
		switch n.Role {
		case RoleControlPlane:
			if i != 0 {
				return fmt.Errorf("node %s: only one control-plane node, the first", n.Name)
			}
		case RoleEdge, RoleCloud:
			if n.Pool == "" {
				n.Pool = n.Role
			}
		case RoleWorker:
		default:
			return fmt.Errorf("node %s: role %q: want %s, %s, %s or %s", n.Name, n.Role, RoleControlPlane, RoleCloud, RoleEdge, RoleWorker)
		}
		n.Index = i
		n.IP = fmt.Sprintf("%d.%d.%d.%d", base[0], base[1], base[2], 10+i)
	}
	if c.NodeMonitorGracePeriod == "" {
		c.NodeMonitorGracePeriod = "50s"
	}
	if c.TolerationSeconds == 0 {
		c.TolerationSeconds = 300
	}
	return nil
}

// BridgeIP is the host's address on the node network.
func (c *Config) BridgeIP() string {
	return strings.TrimSuffix(c.Subnet, "0/24") + "1"
}

// Bridge is the host bridge's name.
func (c *Config) Bridge() string { return c.Name + "br0" }

// ControlPlane is the control-plane node.
func (c *Config) ControlPlane() *NodeSpec { return &c.Nodes[0] }

// Node returns the node called name.
func (c *Config) Node(name string) (*NodeSpec, error) {
	for i := range c.Nodes {
		if c.Nodes[i].Name == name {
			return &c.Nodes[i], nil
		}
	}
	var names []string
	for _, n := range c.Nodes {
		names = append(names, n.Name)
	}
	return nil, fmt.Errorf("no node %q (nodes: %s)", name, strings.Join(names, ", "))
}

// PodSubnet is the node's pod subnet, one /24 of the cluster's
// 10.251.0.0/16 per node.
func (n *NodeSpec) PodSubnet() string { return fmt.Sprintf("10.251.%d.0/24", 10+n.Index) }

// Cluster-wide networks.
const (
	ClusterPodSubnet = "10.251.0.0/16"
	ServiceSubnet    = "10.252.0.0/16"
)
