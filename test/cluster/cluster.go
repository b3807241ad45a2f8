package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Environment.
const (
	// EnvDir overrides DefaultDir.
	EnvDir = "YURTADM_CLUSTER_DIR"
	// EnvToolsBin is hack/tools.sh's bin directory.
	EnvToolsBin = "YURTADM_TOOLS_BIN"
	// EnvRootfs is hack/node-image.sh's rootfs directory.
	EnvRootfs = "YURTADM_NODE_ROOTFS"
	// EnvCache is hack/node-image.sh's cache directory.
	EnvCache     = "YURTADM_NODE_CACHE"
	DefaultDir   = "/var/lib/yurtadm-cluster"
	DefaultCache = "/var/cache/yurtadm-nodes"
)

// Cluster is a multi-node cluster on this machine.
type Cluster struct {
	Config *Config
	// Dir holds the running cluster's state (DefaultDir); Delete removes it.
	Dir string
	// Build holds what is built for the nodes and kept between clusters:
	// the harness's binaries and the image tarballs
	// (DefaultBuild, or $YURTADM_NODE_CACHE/build).
	Build string
	// Rootfs is the node image's base (hack/node-image.sh).
	Rootfs string
	// ToolsBin holds kubelet, kubeadm, crictl, the control-plane binaries,
	// yurthub and yurt-manager (hack/tools.sh).
	ToolsBin string
	// Yurtadm is the yurtadm binary the nodes get (/usr/local/bin/yurtadm).
	Yurtadm string
	// YurtadmImage is the tag of the image holding Yurtadm.
	YurtadmImage string
	// Log receives progress lines.
	Log io.Writer

	// Client talks to kube-apiserver as cluster-admin (after Create or Attach).
	Client     kubernetes.Interface
	restConfig *rest.Config

	nodes []*Node
	mu    sync.Mutex
}

// New returns the cluster described by cfg; it changes nothing.
func New(cfg *Config, logw io.Writer) (*Cluster, error) {
	if err := cfg.Normalize(); err != nil {
		return nil, err
	}
	dir := dirFor(cfg.Name)
	if logw == nil {
		logw = io.Discard
	}
	cache := os.Getenv(EnvCache)
	if cache == "" {
		cache = DefaultCache
	}
	c := &Cluster{Config: cfg, Dir: dir, Build: filepath.Join(cache, "build"), ToolsBin: os.Getenv(EnvToolsBin), Rootfs: os.Getenv(EnvRootfs), Log: logw}
	for _, s := range cfg.Nodes {
		c.nodes = append(c.nodes, &Node{NodeSpec: s, c: c})
	}
	return c, nil
}

func (c *Cluster) logf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.Log, "[cluster %s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// Nodes are the cluster's nodes in the order of the description.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// Node returns the node called name.
func (c *Cluster) Node(name string) (*Node, error) {
	if _, err := c.Config.Node(name); err != nil {
		return nil, err
	}
	for _, n := range c.nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("no node %q", name)
}

// ControlPlane is the control-plane node.
func (c *Cluster) ControlPlane() *Node { return c.nodes[0] }

// APIServer is kube-apiserver's address as nodes dial it.
func (c *Cluster) APIServer() string { return c.ControlPlane().IP + ":6443" }

// Kubeconfig is the cluster-admin kubeconfig on the host.
func (c *Cluster) Kubeconfig() string { return filepath.Join(c.Dir, "admin.conf") }

// Prerequisites says what this machine lacks, empty when nothing.
func (c *Cluster) Prerequisites() []string {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, b := range []string{"systemd-nspawn", "nsenter", "ip", "iptables", "chroot", "sysctl"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b+" in PATH (hack/node-image.sh installs systemd-container)")
		}
	}
	if c.Rootfs == "" {
		missing = append(missing, EnvRootfs+" (bash hack/node-image.sh | tail -1)")
	} else if _, err := os.Stat(filepath.Join(c.Rootfs, "usr/lib/systemd/systemd")); err != nil {
		missing = append(missing, c.Rootfs+" is not a node rootfs (bash hack/node-image.sh)")
	}
	if c.ToolsBin == "" {
		missing = append(missing, EnvToolsBin+" (bash hack/tools.sh | tail -1)")
	}
	for _, b := range []string{"kubelet", "kubeadm", "crictl", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "coredns", "yurthub", "yurt-manager", "yurt-node-servant", "helm"} {
		if _, err := os.Stat(filepath.Join(c.ToolsBin, b)); c.ToolsBin != "" && err != nil {
			missing = append(missing, filepath.Join(c.ToolsBin, b)+" (bash hack/tools.sh)")
		}
	}
	if c.Yurtadm == "" {
		missing = append(missing, "the yurtadm binary to install on the nodes")
	}
	if _, err := OpenYurtCharts(); err != nil {
		missing = append(missing, err.Error())
	}
	return missing
}

// SetYurtadm names the yurtadm binary the nodes get and tags its image
// as convert names it by default: docker.io/openyurt/yurtadm:<version>.
func (c *Cluster) SetYurtadm(bin string) error {
	if bin == "" {
		return fmt.Errorf("no yurtadm binary given")
	}
	out, err := exec.Command(bin, "version", "-o", "json").Output()
	if err != nil {
		return fmt.Errorf("%s version: %v", bin, err)
	}
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := json.Unmarshal(out, &v); err != nil || v.GitVersion == "" {
		return fmt.Errorf("%s version -o json: %q", bin, out)
	}
	c.Yurtadm, c.YurtadmImage = bin, "docker.io/openyurt/yurtadm:"+v.GitVersion
	return nil
}

// state is what Delete needs to undo Create, kept in Dir/state.json.
type state struct {
	Config  *Config           `json:"config"`
	Sysctls map[string]string `json:"sysctls"`
}

func (c *Cluster) statePath() string { return filepath.Join(c.Dir, "state.json") }

// dirFor is the Dir of the cluster called name: DefaultDir (or
// $YURTADM_CLUSTER_DIR) for the default name, with "-<name>" appended for
// any other, so that clusters of different names can be up at once.
func dirFor(name string) string {
	dir := os.Getenv(EnvDir)
	if dir == "" {
		dir = DefaultDir
	}
	if name != "" && name != DefaultName {
		dir += "-" + name
	}
	return dir
}

// Attach loads a running cluster's description and client from Dir (the
// CLI's status, exec and fault commands): the cluster of the default name.
func Attach(logw io.Writer) (*Cluster, error) { return AttachNamed(DefaultName, logw) }

// AttachNamed is Attach for the cluster called name.
func AttachNamed(name string, logw io.Writer) (*Cluster, error) {
	dir := dirFor(name)
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return nil, fmt.Errorf("no cluster here (%v): bring one up first", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, err
	}
	c, err := New(st.Config, logw)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(c.Kubeconfig()); err == nil {
		if err := c.connect(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Cluster) connect() error {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig())
	if err != nil {
		return err
	}
	cfg.Timeout = 15 * time.Second
	cl, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	c.Client, c.restConfig = cl, cfg
	return nil
}

// RestConfig is the admin client configuration (after Create or Attach).
func (c *Cluster) RestConfig() *rest.Config { return rest.CopyConfig(c.restConfig) }

// hostSysctls are the host settings Create changes and Delete restores.
var hostSysctls = map[string]string{
	// Bridged traffic passes the host's FORWARD chain (and the rule below).
	"net.bridge.bridge-nf-call-iptables": "1",
	// One inotify instance budget for the whole host: kubelets and
	// control-plane components each take some.
	"fs.inotify.max_user_instances": "1024",
}

// Create brings the cluster up: the host network, the layers and images,
// every node booted, `kubeadm init` on the control plane, kube-proxy and
// CoreDNS running, then every worker joined. It removes whatever an earlier
// run left first.
func (c *Cluster) Create(ctx context.Context) error {
	if missing := c.Prerequisites(); len(missing) > 0 {
		return fmt.Errorf("missing: %s", strings.Join(missing, "; "))
	}
	if err := c.Delete(ctx); err != nil {
		return fmt.Errorf("clean what an earlier run left: %w", err)
	}
	start := time.Now()
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return err
	}
	st := state{Config: c.Config, Sysctls: map[string]string{}}
	for k := range hostSysctls {
		st.Sysctls[k] = readSysctl(k)
	}
	if err := c.writeState(&st); err != nil {
		return err
	}
	if err := c.claimHost(); err != nil {
		return err
	}
	if err := c.hostNetwork(); err != nil {
		return err
	}
	if err := c.build(ctx); err != nil {
		return err
	}
	c.logf("layers and images ready (%s)", time.Since(start).Round(time.Millisecond))
	if err := c.bootAll(ctx, c.nodes); err != nil {
		return err
	}
	c.logf("%d nodes booted (%s)", len(c.nodes), time.Since(start).Round(time.Millisecond))
	if err := c.initControlPlane(ctx); err != nil {
		return err
	}
	c.logf("control plane up (%s)", time.Since(start).Round(time.Millisecond))
	// A cluster of kubeadm workers only stays a plain kubeadm cluster: the
	// starting point of yurtctl convert.
	for _, n := range c.Config.Nodes {
		if n.Role == RoleEdge || n.Role == RoleCloud {
			if err := c.prepareForEdge(ctx); err != nil {
				return err
			}
			break
		}
	}
	for _, n := range c.nodes[1:] {
		if n.NoJoin {
			continue
		}
		if _, err := c.JoinNode(ctx, n); err != nil {
			return err
		}
	}
	c.logf("cluster %s up in %s", c.Config.Name, time.Since(start).Round(time.Millisecond))
	return nil
}

// build makes the harness's binaries, the layer and the images, holding
// the build directory meanwhile.
func (c *Cluster) build(ctx context.Context) error {
	unlock, err := c.LockBuild()
	if err != nil {
		return err
	}
	defer unlock()
	if err := c.buildProjectBinaries(ctx); err != nil {
		return err
	}
	if err := c.buildLayers(); err != nil {
		return err
	}
	return c.buildImages(ctx)
}

func (c *Cluster) writeState(st *state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(c.statePath(), b, 0o644)
}

// bootAll boots nodes in parallel.
func (c *Cluster) bootAll(ctx context.Context, nodes []*Node) error {
	errs := make(chan error, len(nodes))
	for _, n := range nodes {
		go func(n *Node) {
			err := n.Boot(ctx)
			var ee *bootExitError
			if errors.As(err, &ee) {
				// Seen once in CI among hundreds of boots, with nothing
				// logged: boot it again, once, and say so.
				c.logf("node %s: systemd-nspawn exited during boot; booting it again. Its log:\n%s", n.Name, ee.log)
				n.killLeftovers()
				err = n.Boot(ctx)
			}
			errs <- err
		}(n)
	}
	var all []error
	for range nodes {
		if err := <-errs; err != nil {
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}

// hostNetwork creates the bridge with the host's address and accepts the
// bridge's traffic in FORWARD (a chain of ours); claimHost set the sysctls.
func (c *Cluster) hostNetwork() error {
	br := c.Config.Bridge()
	steps := [][]string{
		{"ip", "link", "add", br, "type", "bridge"},
		{"ip", "addr", "add", c.Config.BridgeIP() + "/24", "dev", br},
		{"ip", "link", "set", br, "up"},
		{"iptables", "-w", "-N", c.fwdChain()},
		{"iptables", "-w", "-A", c.fwdChain(), "-i", br, "-j", "ACCEPT"},
		{"iptables", "-w", "-A", c.fwdChain(), "-o", br, "-j", "ACCEPT"},
		{"iptables", "-w", "-I", "FORWARD", "-j", c.fwdChain()},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	return nil
}

func (c *Cluster) fwdChain() string { return "YURT-" + strings.ToUpper(c.Config.Name) + "-FWD" }

func readSysctl(k string) string {
	b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(k, ".", "/"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// buildProjectBinaries builds the harness's own binaries into Dir/bin:
// the pause image's binary, the web workload and mkimage.
func (c *Cluster) buildProjectBinaries(ctx context.Context) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	bin := filepath.Join(c.Build, "bin")
	builds := []struct{ dir, pkg, out string }{
		{root, "./test/cluster/images/pause", "pause"},
		{root, "./test/cluster/images/web", "web"},
		{filepath.Join(root, "test", "tools"), "./cmd/mkimage", "mkimage"},
	}
	for _, b := range builds {
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(bin, b.out), b.pkg)
		cmd.Dir = b.dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return nil
}

// RepoRoot is the yurtadm repository this process runs in (go test runs
// in a package directory).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.HasPrefix(string(b), "module github.com/yurtadm/yurtadm\n") {
			return d, nil
		}
		if d == "/" {
			return "", fmt.Errorf("not inside the yurtadm repository (from %s)", dir)
		}
	}
}

// kubeadmConfig is the control plane's kubeadm configuration: external
// etcd (a unit in the node), the pod and service networks, the API
// server's certificate valid for the host's bridge address too (the slow
// link's proxy listens there), node lifecycle timeouts from the
// description, the kubelet settings this machine kind needs (in the
// cluster's kubelet-config, which every join copies) and kube-proxy told
// not to change the host-wide conntrack table size.
func (c *Cluster) kubeadmConfig() string {
	cp := c.ControlPlane()
	return fmt.Sprintf(`apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint: {advertiseAddress: %[1]s, bindPort: 6443}
nodeRegistration:
  name: %[2]s
  criSocket: %[3]s
  imagePullPolicy: Never
  ignorePreflightErrors: [SystemVerification, Swap, ExternalEtcdVersion]
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: %[4]s
clusterName: %[5]s
controlPlaneEndpoint: %[1]s:6443
networking: {podSubnet: %[6]s, serviceSubnet: %[7]s}
etcd:
  external:
    endpoints: [http://127.0.0.1:2379]
apiServer:
  certSANs: [%[1]s, %[8]s]
  extraArgs:
  - {name: default-not-ready-toleration-seconds, value: "%[9]d"}
  - {name: default-unreachable-toleration-seconds, value: "%[9]d"}
controllerManager:
  extraArgs:
  - {name: node-monitor-grace-period, value: "%[10]s"}
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
failSwapOn: false
failCgroupV1: false
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
conntrack: {maxPerCore: 0}
`, cp.IP, cp.Name, CRISocket, KubernetesVersion, c.Config.Name, ClusterPodSubnet, ServiceSubnet,
		c.Config.BridgeIP(), c.Config.TolerationSeconds, c.Config.NodeMonitorGracePeriod)
}

// initControlPlane runs `kubeadm init` on the control-plane node, copies
// admin.conf out and waits for the node, kube-proxy and CoreDNS.
func (c *Cluster) initControlPlane(ctx context.Context) error {
	cp := c.ControlPlane()
	if err := writeFile(filepath.Join(cp.Merged(), "root/kubeadm.yaml"), []byte(c.kubeadmConfig()), 0o600); err != nil {
		return err
	}
	if _, err := cp.Shell(ctx, "for i in $(seq 100); do systemctl is-active -q ynode-images && break; sleep 0.2; done; systemctl is-active ynode-images ynode-etcd containerd"); err != nil {
		return fmt.Errorf("control-plane node's services: %w", err)
	}
	r, err := cp.Run(ctx, "kubeadm", "init", "--config", "/root/kubeadm.yaml", "--skip-token-print")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.Dir, "nodes", cp.Name, "log", "kubeadm-init.log"), []byte(r.String()), 0o644); err != nil {
		return err
	}
	if r.ExitCode != 0 {
		return fmt.Errorf("kubeadm init on %s failed:\n%s", cp.Name, lastLines(r.String(), 40))
	}
	admin, err := os.ReadFile(filepath.Join(cp.Merged(), "etc/kubernetes/admin.conf"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(c.Kubeconfig(), admin, 0o600); err != nil {
		return err
	}
	if err := c.connect(); err != nil {
		return err
	}
	// cloud node: yurt-manager's Deployment selects is-edge-worker=false.
	if err := c.label(ctx, cp.Name, map[string]string{"openyurt.io/is-edge-worker": "false"}); err != nil {
		return err
	}
	if err := c.WaitNodeReady(ctx, cp.Name, 3*time.Minute); err != nil {
		return err
	}
	return c.WaitPods(ctx, "kube-system", "k8s-app in (kube-proxy,kube-dns)", 3*time.Minute)
}

// prepareForEdge makes the cluster an OpenYurt cluster before any edge
// node joins: `yurtctl convert phase control-plane` on the control-plane
// node with admin.conf installs OpenYurt's own charts (yurt-manager, with
// pod-binding, nodepool and the CSR approver, and yurthub's YurtStaticSets)
// from the charts the node keeps, and the node pools.
func (c *Cluster) prepareForEdge(ctx context.Context) error {
	if _, err := c.ConvertControlPlane(ctx, YurthubImage); err != nil {
		return fmt.Errorf("prepare the cluster for edge nodes: %w", err)
	}
	if err := c.WaitPods(ctx, "kube-system", "app.kubernetes.io/name=yurt-manager", 3*time.Minute); err != nil {
		return err
	}
	// The pools the nodes join, made beforehand as an operator does (a
	// bootstrap token cannot create them).
	var pools []string
	seen := map[string]bool{}
	for _, n := range c.Config.Nodes {
		if n.Pool != "" && !seen[n.Pool] && (n.Role == RoleEdge || n.Role == RoleCloud) {
			seen[n.Pool] = true
			typ := "Edge"
			if n.Role == RoleCloud {
				typ = "Cloud"
			}
			pools = append(pools, fmt.Sprintf("apiVersion: apps.openyurt.io/v1beta2\nkind: NodePool\nmetadata:\n  name: %s\nspec:\n  type: %s\n", n.Pool, typ))
		}
	}
	return Apply(ctx, c.RestConfig(), []byte(strings.Join(pools, "\n---\n")))
}

// ConvertControlPlane runs `yurtctl convert phase control-plane` on the
// control-plane node with the harness's images and yurthubImage for the
// YurtStaticSets: the first run installs OpenYurt's charts, a later one
// upgrades them in place (how an operator changes yurthub's image).
func (c *Cluster) ConvertControlPlane(ctx context.Context, yurthubImage string) (Result, error) {
	args := []string{"yurtctl", "convert", "phase", "control-plane", "--kubeconfig", "/etc/kubernetes/admin.conf", "--yes",
		"--yurt-manager-image", YurtManagerImage, "--yurthub-image", yurthubImage, "--chart-source", ChartsInNode,
		// No dummy network device can be created on this kernel.
		"--yurthub-extra-arg=--enable-dummy-if=false"}
	r, err := c.ControlPlane().Run(ctx, args...)
	if err == nil && r.ExitCode != 0 {
		err = fmt.Errorf("yurtctl convert phase control-plane:\n%s", r.String())
	}
	return r, err
}

// Token makes a bootstrap token on the control-plane node and returns it
// with the CA certificate hash, as `kubeadm token create --print-join-command`.
func (c *Cluster) Token(ctx context.Context) (token, caHash string, err error) {
	out, err := c.ControlPlane().Output(ctx, "kubeadm", "token", "create", "--ttl", "2h", "--print-join-command")
	if err != nil {
		return "", "", err
	}
	m := regexp.MustCompile(`--token (\S+) --discovery-token-ca-cert-hash (\S+)`).FindStringSubmatch(out)
	if m == nil {
		return "", "", fmt.Errorf("kubeadm token create printed %q", out)
	}
	return m[1], m[2], nil
}

// JoinArgs are the arguments of the join command for node n: yurtadm join
// for edge and cloud nodes, kubeadm join for plain workers.
func (c *Cluster) JoinArgs(n *Node, endpoint, token, caHash string, extra ...string) []string {
	if n.Role == RoleWorker {
		return KubeadmJoinArgs(endpoint, token, caHash, extra...)
	}
	return append([]string{"yurtadm", "join", endpoint, "--token", token, "--discovery-token-ca-cert-hash", caHash,
		"--node-type", n.Role, "--nodepool-name", n.Pool, "--yurthub-image", YurthubImage, "--cri-socket", CRISocket,
		"--config", "/etc/yurtadm/join-config.yaml", "--timeout", "4m"}, extra...)
}

// KubeadmJoinArgs are the arguments of `kubeadm join` as a plain worker.
func KubeadmJoinArgs(endpoint, token, caHash string, extra ...string) []string {
	return append([]string{"kubeadm", "join", endpoint, "--token", token, "--discovery-token-ca-cert-hash", caHash,
		"--cri-socket", CRISocket, "--ignore-preflight-errors=SystemVerification,Swap"}, extra...)
}

// JoinNode joins n with a fresh token and waits until it is Ready.
func (c *Cluster) JoinNode(ctx context.Context, n *Node, extra ...string) (Result, error) {
	tok, hash, err := c.Token(ctx)
	if err != nil {
		return Result{}, err
	}
	r, err := n.Run(ctx, c.JoinArgs(n, c.APIServer(), tok, hash, extra...)...)
	if err != nil {
		return r, err
	}
	_ = os.WriteFile(n.dir("log", "join.log"), []byte(strings.ReplaceAll(r.String(), tok, "<token>")), 0o644)
	if r.ExitCode != 0 {
		return r, fmt.Errorf("join %s failed:\n%s", n.Name, lastLines(strings.ReplaceAll(r.String(), tok, "<token>"), 40))
	}
	c.logf("node %s joined (%s) in %s", n.Name, n.Role, r.Took.Round(time.Millisecond))
	return r, c.WaitNodeReady(ctx, n.Name, 2*time.Minute)
}

func (c *Cluster) label(ctx context.Context, node string, labels map[string]string) error {
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}})
	_, err := c.Client.CoreV1().Nodes().Patch(ctx, node, "application/merge-patch+json", b, metav1.PatchOptions{})
	return err
}

// NodeReady reports whether the Node is Ready.
func NodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// WaitNodeReady waits until the Node called name is Ready.
func (c *Cluster) WaitNodeReady(ctx context.Context, name string, timeout time.Duration) error {
	return Poll(ctx, timeout, func() (bool, string) {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return NodeReady(n), fmt.Sprintf("conditions %v", n.Status.Conditions)
	})
}

// WaitPods waits until at least one pod matches selector and all that do
// are Running and Ready.
func (c *Cluster) WaitPods(ctx context.Context, ns, selector string, timeout time.Duration) error {
	return Poll(ctx, timeout, func() (bool, string) {
		l, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err.Error()
		}
		if len(l.Items) == 0 {
			return false, "no pod matches " + selector
		}
		for _, p := range l.Items {
			if !PodReady(&p) {
				return false, fmt.Sprintf("pod %s/%s on %q is %s", p.Namespace, p.Name, p.Spec.NodeName, p.Status.Phase)
			}
		}
		return true, ""
	})
}

// PodReady reports whether p is Running with condition Ready.
func PodReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Poll calls cond every 250 ms until it returns true or timeout passes;
// the error carries cond's last note.
func Poll(ctx context.Context, timeout time.Duration, cond func() (bool, string)) error {
	last := ""
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		ok, note := cond()
		last = note
		return ok, nil
	})
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return fmt.Errorf("not done after %s (last: %s)", timeout, last)
}

// Delete takes the cluster down and leaves the machine as it was: every
// node powered off (PID 1 killed after a grace period), overlays
// unmounted, cgroups removed, the bridge, its veths and the FORWARD chain
// gone, the host sysctls restored, Dir removed. What Build holds (the
// harness's binaries and images) stays for the next Create, which rebuilds
// what is stale.
func (c *Cluster) Delete(ctx context.Context) error {
	var st state
	if b, err := os.ReadFile(c.statePath()); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	// Nodes of an earlier description too.
	nodes := map[string]*Node{}
	for _, n := range c.nodes {
		nodes[n.Name] = n
	}
	if ents, err := os.ReadDir(filepath.Join(c.Dir, "nodes")); err == nil {
		for _, e := range ents {
			if _, ok := nodes[e.Name()]; !ok {
				nodes[e.Name()] = &Node{NodeSpec: NodeSpec{Name: e.Name()}, c: c}
			}
		}
	}
	var errs []error
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func(n *Node) {
			defer wg.Done()
			if err := n.Poweroff(ctx, 20*time.Second); err != nil {
				c.mu.Lock()
				errs = append(errs, err)
				c.mu.Unlock()
			}
		}(n)
	}
	wg.Wait()
	for _, n := range nodes {
		if mounted(n.Merged()) {
			if err := unix.Unmount(n.Merged(), 0); err != nil {
				errs = append(errs, fmt.Errorf("unmount %s: %w", n.Merged(), err))
			}
		}
		n.removeCgroups()
	}
	// A node's host-side veth goes with its network namespace; one whose
	// namespace outlived a killed run would make the next boot fail.
	for _, n := range nodes {
		if err := n.removeVeth(); err != nil {
			errs = append(errs, err)
		}
	}
	br := c.Config.Bridge()
	if _, err := os.Stat("/sys/class/net/" + br); err == nil {
		if out, err := exec.Command("ip", "link", "del", br).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip link del %s: %v: %s", br, err, out))
		}
	}
	if exec.Command("iptables", "-w", "-n", "-L", c.fwdChain()).Run() == nil {
		for exec.Command("iptables", "-w", "-D", "FORWARD", "-j", c.fwdChain()).Run() == nil {
		}
		_ = exec.Command("iptables", "-w", "-F", c.fwdChain()).Run()
		if out, err := exec.Command("iptables", "-w", "-X", c.fwdChain()).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("iptables -X %s: %v: %s", c.fwdChain(), err, out))
		}
	}
	if err := c.releaseHost(st.Sysctls); err != nil {
		errs = append(errs, fmt.Errorf("host settings: %w", err))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return os.RemoveAll(c.Dir)
}

// Leftovers lists what Delete should have removed and did not.
func (c *Cluster) Leftovers() []string {
	var left []string
	if _, err := os.Stat("/sys/class/net/" + c.Config.Bridge()); err == nil {
		left = append(left, "bridge "+c.Config.Bridge())
	}
	if exec.Command("iptables", "-w", "-n", "-L", c.fwdChain()).Run() == nil {
		left = append(left, "iptables chain "+c.fwdChain())
	}
	b, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(b), " "+filepath.Join(c.Dir, "nodes")) {
		left = append(left, "mounts below "+filepath.Join(c.Dir, "nodes"))
	}
	for _, n := range c.nodes {
		if n.nspawnPID() != 0 {
			left = append(left, "node "+n.Name+" running")
		}
		if exists("/sys/class/net/vb-" + n.Name) {
			left = append(left, "veth vb-"+n.Name)
		}
		if dirs, err := n.cgroupDirs(); err == nil {
			for _, d := range dirs {
				if _, err := os.Stat(d); err == nil {
					left = append(left, "cgroup "+d)
				}
			}
		}
	}
	if _, err := os.Stat(c.Dir); err == nil {
		left = append(left, c.Dir)
	}
	if c.registered() {
		left = append(left, "cluster "+c.Config.Name+" still registered in "+HostShare)
	}
	return left
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
