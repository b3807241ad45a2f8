package preflight

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	utilversion "k8s.io/apimachinery/pkg/util/version"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/cri"
	"github.com/yurtadm/yurtadm/pkg/host"
	"github.com/yurtadm/yurtadm/pkg/version"
)

// Names of the checks, as --ignore-preflight-errors takes them (in any case).
// The port checks are named by PortCheckName.
const (
	CheckIsPrivilegedUser     = "IsPrivilegedUser"
	CheckCrictl               = "FileExisting-crictl"
	CheckConntrack            = "FileExisting-conntrack"
	CheckKubelet              = "FileExisting-kubelet"
	CheckKubeletVersion       = "KubeletVersion"
	CheckCRISocket            = "CRISocket"
	CheckOverlayDType         = "OverlayDType"
	CheckSwap                 = "Swap"
	CheckKubeletConf          = "KubeletConf"
	CheckYurthubManifest      = "YurthubManifest"
	CheckYurthubPKI           = "YurthubPKI"
	CheckIPForward            = "IPForward"
	CheckBridgeNFCallIPTables = "BridgeNFCallIPTables"
	CheckHostname             = "Hostname"
	CheckResolvConf           = "ResolvConf"
	CheckPidsCgroup           = "PidsCgroup"
)

// PortCheckName is the name of the check that port is free: "Port-10250".
func PortCheckName(port int) string { return "Port-" + strconv.Itoa(port) }

// Host paths the checks read, besides those in pkg/constants.
const (
	procSwaps           = "/proc/swaps"
	procIPForward       = "/proc/sys/net/ipv4/ip_forward"
	procBridgeNF        = "/proc/sys/net/bridge/bridge-nf-call-iptables"
	procCgroups         = "/proc/cgroups"
	cgroupV2Controllers = "/sys/fs/cgroup/cgroup.controllers"
	resolvConf          = "/etc/resolv.conf"
)

// maxNameservers is how many nameservers the C resolver, and so kubelet when
// it builds a pod's resolv.conf, uses; further ones are dropped.
const maxNameservers = 3

// maxKubeletSkew is how many minor versions kubelet may be older than
// kube-apiserver (Kubernetes version skew policy, since v1.28).
const maxKubeletSkew = 3

// Ports a joined node listens on, and who listens.
var ports = []struct {
	port int
	who  string
}{
	{constants.KubeletPort, "kubelet's API"},
	{constants.YurthubProxyPort, "yurthub's proxy to kube-apiserver"},
	{constants.YurthubServePort, "yurthub's health and metrics endpoint"},
	{constants.YurthubProxySecurePort, "yurthub's TLS proxy for pods"},
}

// Options is what the checks need to know about the join.
type Options struct {
	// NodeName is the node name the user gave (--node-name). Leave it empty
	// when the user gave none: the Hostname check then looks at the real
	// host name, upper case included, so that the user learns that it
	// would not register.
	NodeName string
	// CRISocket is the container runtime endpoint; empty means the one
	// cri.Detect finds.
	CRISocket string
	// ClusterVersion is the control plane's Kubernetes version. When set,
	// KubeletVersion checks the skew policy against it; otherwise only that
	// kubelet is at least v1.<version.MinKubernetesMinor>.
	ClusterVersion string
	// Env stands in for what cannot go through host.FS or the exec
	// interface. A nil field means the real machine (see RealEnv).
	Env Env
}

// Env is the part of the machine the checks reach without host.FS or the
// exec interface. Tests replace its fields.
type Env struct {
	// Geteuid returns the effective user id.
	Geteuid func() int
	// Hostname returns the machine's host name.
	Hostname func() (string, error)
	// PortFree returns nil when a TCP port can be listened on, and an error
	// (syscall.EADDRINUSE when it is taken) otherwise.
	PortFree func(port int) error
	// DType reports whether the filesystem of dir, a real path (already
	// below the host root), fills in d_type in directory entries.
	DType func(dir string) (bool, error)
	// DialUnix connects to the unix socket at path, a real path, and hangs up.
	DialUnix func(path string) error
}

// RealEnv returns the Env of the machine yurtadm runs on.
func RealEnv() Env {
	return Env{
		Geteuid:  os.Geteuid,
		Hostname: os.Hostname,
		PortFree: listenPort,
		DType:    ProbeDType,
		DialUnix: dialUnix,
	}
}

func (e Env) withDefaults() Env {
	r := RealEnv()
	if e.Geteuid == nil {
		e.Geteuid = r.Geteuid
	}
	if e.Hostname == nil {
		e.Hostname = r.Hostname
	}
	if e.PortFree == nil {
		e.PortFree = r.PortFree
	}
	if e.DType == nil {
		e.DType = r.DType
	}
	if e.DialUnix == nil {
		e.DialUnix = r.DialUnix
	}
	return e
}

// listenPort tries to listen on port on every address; a process bound to
// any one address of the port (127.0.0.1:10261, say) makes it fail.
func listenPort(port int) error {
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return err
	}
	return l.Close()
}

func dialUnix(path string) error {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// check is a Checker made of a name and a function.
type check struct {
	name string
	fn   func() (warnings, errorList []error)
}

func (c check) Name() string                         { return c.name }
func (c check) Check() (warnings, errorList []error) { return c.fn() }

// checks holds what every check shares.
type checks struct {
	h   *host.Host
	o   Options
	env Env
}

// JoinChecks returns the checks to run on a host before it joins a cluster,
// in the order they run. Building them touches nothing.
func JoinChecks(h *host.Host, o Options) []Checker {
	c := &checks{h: h, o: o, env: o.Env.withDefaults()}
	list := []Checker{
		check{CheckIsPrivilegedUser, c.privilegedUser},
		check{CheckCrictl, c.inPath("crictl")},
		check{CheckConntrack, c.inPath("conntrack")},
		check{CheckKubelet, c.inPath("kubelet")},
		check{CheckKubeletVersion, c.kubeletVersion},
		check{CheckCRISocket, c.criSocket},
		check{CheckOverlayDType, c.overlayDType},
		check{CheckSwap, c.swap},
	}
	for _, p := range ports {
		list = append(list, check{PortCheckName(p.port), c.portFree(p.port, p.who)})
	}
	return append(list,
		check{CheckKubeletConf, c.kubeletConf},
		check{CheckYurthubManifest, c.yurthubManifest},
		check{CheckYurthubPKI, c.yurthubPKI},
		check{CheckIPForward, c.ipForward},
		check{CheckBridgeNFCallIPTables, c.bridgeNF},
		check{CheckHostname, c.hostname},
		check{CheckResolvConf, c.resolvConf},
		check{CheckPidsCgroup, c.pidsCgroup},
	)
}

// KubeletVersionCheck returns the KubeletVersion check alone. `yurtadm
// join` runs preflight before discovery knows the control plane's version;
// it can run this check again, with Options.ClusterVersion set, once it does.
func KubeletVersionCheck(h *host.Host, o Options) Checker {
	c := &checks{h: h, o: o, env: o.Env.withDefaults()}
	return check{CheckKubeletVersion, c.kubeletVersion}
}

func errs(format string, a ...any) []error { return []error{fmt.Errorf(format, a...)} }

func (c *checks) privilegedUser() (_, errorList []error) {
	if euid := c.env.Geteuid(); euid != 0 {
		return nil, errs("user is not running as root (euid %d): joining writes below /etc/kubernetes and /var/lib and restarts kubelet; run yurtadm with sudo", euid)
	}
	return nil, nil
}

// inPath checks that tool is in PATH. The message is kubeadm's, word for
// word: it is what users search the FAQ for.
func (c *checks) inPath(tool string) func() ([]error, []error) {
	return func() (_, errorList []error) {
		if _, err := c.h.Exec.LookPath(tool); err != nil {
			return nil, errs("%s not found in system path", tool)
		}
		return nil, nil
	}
}

func (c *checks) kubeletVersion() (warnings, errorList []error) {
	if _, err := c.h.Exec.LookPath("kubelet"); err != nil {
		return nil, nil // FileExisting-kubelet reports it
	}
	out, err := c.h.Exec.Command("kubelet", "--version").CombinedOutput()
	if err != nil {
		return nil, errs("kubelet --version: %v: %s", err, strings.TrimSpace(string(out)))
	}
	kv, err := ParseKubeletVersion(string(out))
	if err != nil {
		return nil, []error{err}
	}
	tested := utilversion.MustParseGeneric(version.KubernetesVersion)
	if c.o.ClusterVersion != "" {
		cv, err := utilversion.ParseGeneric(c.o.ClusterVersion)
		if err != nil {
			return nil, errs("control plane version %q: %v", c.o.ClusterVersion, err)
		}
		if kv.Major() != cv.Major() || kv.Minor() > cv.Minor() {
			return nil, errs("kubelet v%s is newer than the control plane (v%s): kubelet must not be newer than kube-apiserver; install kubelet v%d.%d",
				kv, cv, cv.Major(), cv.Minor())
		}
		if kv.Minor()+maxKubeletSkew < cv.Minor() {
			return nil, errs("kubelet v%s is more than %d minor versions older than the control plane (v%s); install kubelet v%d.%d or newer (up to v%d.%d)",
				kv, maxKubeletSkew, cv, cv.Major(), cv.Minor()-maxKubeletSkew, cv.Major(), cv.Minor())
		}
	} else if kv.Major() != 1 || kv.Minor() < version.MinKubernetesMinor {
		return nil, errs("kubelet v%s is older than v1.%d, the oldest version yurtadm supports; install a newer kubelet",
			kv, version.MinKubernetesMinor)
	}
	if kv.Major() == tested.Major() && kv.Minor() > tested.Minor() {
		warnings = append(warnings, fmt.Errorf("kubelet v%s is newer than Kubernetes v%d.%d, the newest version this yurtadm is tested with",
			kv, tested.Major(), tested.Minor()))
	}
	return warnings, nil
}

// ParseKubeletVersion reads the output of `kubelet --version`, such as
// "Kubernetes v1.34.4".
func ParseKubeletVersion(out string) (*utilversion.Version, error) {
	fields := strings.Fields(out)
	if len(fields) == 0 {
		return nil, fmt.Errorf("kubelet --version printed nothing")
	}
	v, err := utilversion.ParseGeneric(fields[len(fields)-1])
	if err != nil {
		return nil, fmt.Errorf("cannot read the version in the output of kubelet --version %q: %v", strings.TrimSpace(out), err)
	}
	return v, nil
}

// criEndpoint is Options.CRISocket or the socket found on the host.
func (c *checks) criEndpoint() (string, error) {
	if c.o.CRISocket != "" {
		if err := cri.Validate(c.o.CRISocket); err != nil {
			return "", err
		}
		return cri.Endpoint(c.o.CRISocket), nil
	}
	return cri.Detect(c.h.FS)
}

// criSocket checks that the runtime answers in two steps: the socket accepts
// a connection (no tool needed), then, when crictl is installed, `crictl
// info` proves that the runtime serves the CRI API and is ready. The second
// step catches containerd installed with Docker, whose config disables the
// CRI plugin although the socket answers.
func (c *checks) criSocket() (_, errorList []error) {
	ep, err := c.criEndpoint()
	if err != nil {
		return nil, []error{err}
	}
	sock := cri.SocketPath(ep)
	if !c.h.FS.Exists(sock) {
		return nil, errs("container runtime socket %s does not exist: start the container runtime (systemctl start containerd), or pass the right --cri-socket", sock)
	}
	if err := c.env.DialUnix(c.h.FS.Path(sock)); err != nil {
		return nil, errs("cannot connect to the container runtime socket %s: %v; start the container runtime (systemctl start containerd)", sock, err)
	}
	if _, err := c.h.Exec.LookPath("crictl"); err != nil {
		return nil, nil // FileExisting-crictl reports it
	}
	out, err := c.h.Exec.Command("crictl", "--runtime-endpoint", ep, "info").CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if strings.Contains(msg, "unknown service runtime.v1") {
			return nil, errs("the container runtime at %s does not serve the CRI API (%s): containerd as installed with Docker disables it; remove \"cri\" from disabled_plugins in /etc/containerd/config.toml and restart containerd", ep, msg)
		}
		return nil, errs("crictl --runtime-endpoint %s info: %v: %s", ep, err, msg)
	}
	if cond, ok := runtimeNotReady(out); ok {
		return nil, errs("the container runtime at %s is not ready: %s", ep, cond)
	}
	return nil, nil
}

// runtimeNotReady reads the RuntimeReady condition from `crictl info`
// output. NetworkReady is not looked at: a node has no CNI before it joins.
func runtimeNotReady(out []byte) (string, bool) {
	i := strings.IndexByte(string(out), '{')
	if i < 0 {
		return "", false
	}
	var info struct {
		Status struct {
			Conditions []struct {
				Type    string `json:"type"`
				Status  bool   `json:"status"`
				Reason  string `json:"reason"`
				Message string `json:"message"`
			} `json:"conditions"`
		} `json:"status"`
	}
	if json.Unmarshal(out[i:], &info) != nil {
		return "", false
	}
	for _, cd := range info.Status.Conditions {
		if cd.Type == "RuntimeReady" && !cd.Status {
			return strings.TrimSpace(cd.Reason + " " + cd.Message), true
		}
	}
	return "", false
}

// RuntimeStorageDir is where the container runtime of endpoint keeps its
// images and containers.
func RuntimeStorageDir(endpoint string) string {
	switch {
	case strings.Contains(endpoint, "crio"):
		return "/var/lib/containers/storage"
	case strings.Contains(endpoint, "docker"):
		return "/var/lib/docker"
	}
	return "/var/lib/containerd"
}

func (c *checks) overlayDType() (warnings, errorList []error) {
	ep, _ := c.criEndpoint() // CRISocket reports a missing runtime; assume containerd
	dir := RuntimeStorageDir(ep)
	probe := dir
	for probe != "/" && !c.h.FS.Exists(probe) {
		probe = filepath.Dir(probe)
	}
	ok, err := c.env.DType(c.h.FS.Path(probe))
	if err != nil {
		return []error{fmt.Errorf("cannot check d_type support of %s: %v", probe, err)}, nil
	}
	if !ok {
		return nil, errs("%s is on a filesystem without d_type support (xfs formatted with ftype=0), which the overlay snapshotter of the container runtime needs: put %s on a filesystem with d_type, e.g. xfs made with `mkfs.xfs -n ftype=1` (`xfs_info` shows ftype=1) or ext4",
			probe, dir)
	}
	return nil, nil
}

func (c *checks) swap() (warnings, _ []error) {
	b, err := c.h.FS.ReadFile(procSwaps)
	if err != nil {
		return []error{fmt.Errorf("cannot tell whether swap is on: %v", err)}, nil
	}
	var devices []string
	for i, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); i > 0 && len(f) > 0 {
			devices = append(devices, f[0])
		}
	}
	if len(devices) > 0 {
		return []error{fmt.Errorf("swap is on (%s): kubelet does not start with swap on unless its configuration sets failSwapOn: false; turn it off with `swapoff -a` and remove it from /etc/fstab, or set failSwapOn: false",
			strings.Join(devices, ", "))}, nil
	}
	return nil, nil
}

func (c *checks) portFree(port int, who string) func() ([]error, []error) {
	return func() (_, errorList []error) {
		err := c.env.PortFree(port)
		switch {
		case err == nil:
			return nil, nil
		case errors.Is(err, syscall.EADDRINUSE):
			return nil, errs("port %d is in use; %s needs it: find the process with `ss -ltnp 'sport = :%d'`; if an earlier join left kubelet or yurthub running, run `yurtadm reset`",
				port, who, port)
		}
		return nil, errs("cannot listen on port %d, which %s needs: %v", port, who, err)
	}
}

func (c *checks) kubeletConf() (_, errorList []error) {
	if c.h.FS.Exists(constants.KubeletKubeconfig) {
		return nil, errs("%s exists: this node has already joined a cluster; run `yurtadm reset` before joining again", constants.KubeletKubeconfig)
	}
	return nil, nil
}

func (c *checks) yurthubManifest() (_, errorList []error) {
	if c.h.FS.Exists(constants.YurthubManifest) {
		return nil, errs("%s exists: yurthub from an earlier join is still set up; run `yurtadm reset` before joining again", constants.YurthubManifest)
	}
	return nil, nil
}

// yurthubPKI fails on anything left in yurthub's PKI dir: yurthub would reuse
// an earlier join's certificates and every request would fail with
// certificate errors.
func (c *checks) yurthubPKI() (_, errorList []error) {
	entries, err := c.h.FS.ReadDir(constants.YurthubPKIDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, errs("read %s: %v", constants.YurthubPKIDir, err)
	}
	if len(entries) == 0 {
		return nil, nil
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		names = append(names, n)
	}
	return nil, errs("stale files in %s from an earlier join (%s): yurthub would reuse them and fail with certificate errors; run `yurtadm reset` before joining again",
		constants.YurthubPKIDir, strings.Join(names, ", "))
}

// readSysctl reads a /proc/sys file and trims it.
func (c *checks) readSysctl(p string) (string, error) {
	b, err := c.h.FS.ReadFile(p)
	return strings.TrimSpace(string(b)), err
}

func sysctlName(p string) string {
	return strings.ReplaceAll(strings.TrimPrefix(p, "/proc/sys/"), "/", ".")
}

func (c *checks) ipForward() (_, errorList []error) {
	v, err := c.readSysctl(procIPForward)
	if err != nil {
		return nil, errs("cannot read %s: %v", procIPForward, err)
	}
	if v != "1" {
		return nil, errs("%s is %q, not 1: pods cannot reach other nodes; run `sysctl -w %s=1` and set it in /etc/sysctl.d/k8s.conf",
			procIPForward, v, sysctlName(procIPForward))
	}
	return nil, nil
}

func (c *checks) bridgeNF() (warnings, errorList []error) {
	v, err := c.readSysctl(procBridgeNF)
	if errors.Is(err, fs.ErrNotExist) {
		return []error{fmt.Errorf("%s does not exist: the br_netfilter module is not loaded; load it with `modprobe br_netfilter` and add it to /etc/modules-load.d/k8s.conf, then set %s=1",
			procBridgeNF, sysctlName(procBridgeNF))}, nil
	}
	if err != nil {
		return nil, errs("cannot read %s: %v", procBridgeNF, err)
	}
	if v != "1" {
		return nil, errs("%s is %q, not 1: traffic to Services from pods on the same bridge bypasses iptables; run `sysctl -w %s=1` and set it in /etc/sysctl.d/k8s.conf",
			procBridgeNF, v, sysctlName(procBridgeNF))
	}
	return nil, nil
}

// ValidateNodeName checks that name can be a Node's name: a lower-case RFC
// 1123 DNS subdomain.
func ValidateNodeName(name string) error {
	if strings.ToLower(name) != name {
		return fmt.Errorf("%q has upper-case letters, which break node registration: a Node name must be lower case", name)
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return fmt.Errorf("%q is not a valid node name (an RFC 1123 DNS subdomain): %s", name, strings.Join(msgs, "; "))
	}
	return nil
}

func (c *checks) hostname() (_, errorList []error) {
	if c.o.NodeName != "" {
		if err := ValidateNodeName(c.o.NodeName); err != nil {
			return nil, errs("node name %v; pass a valid --node-name", err)
		}
		return nil, nil
	}
	name, err := c.env.Hostname()
	if err != nil {
		return nil, errs("cannot read the host name: %v; pass --node-name", err)
	}
	if err := ValidateNodeName(name); err != nil {
		hint := "pass --node-name with a lower-case DNS name"
		if lower := strings.ToLower(name); ValidateNodeName(lower) == nil {
			hint = "pass --node-name " + lower
		}
		return nil, errs("host name %v; %s", err, hint)
	}
	return nil, nil
}

func (c *checks) resolvConf() (warnings, errorList []error) {
	b, err := c.h.FS.ReadFile(resolvConf)
	if err != nil {
		return nil, errs("cannot read %s: %v; kubelet builds the pods' DNS configuration from it", resolvConf, err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "nameserver" {
			n++
		}
	}
	switch {
	case n == 0:
		return nil, errs("%s has no nameserver line: pods that use the node's DNS cannot resolve names; add 1 to %d nameserver lines", resolvConf, maxNameservers)
	case n > maxNameservers:
		return []error{fmt.Errorf("%s has %d nameserver lines: kubelet passes only the first %d to pods and reports the rest as dropped; keep 1 to %d",
			resolvConf, n, maxNameservers, maxNameservers)}, nil
	}
	return nil, nil
}

// pidsCgroup looks for the pids controller in cgroup v2's root
// cgroup.controllers, then in /proc/cgroups (v1, and hybrid hosts).
func (c *checks) pidsCgroup() (_, errorList []error) {
	var read []string
	if b, err := c.h.FS.ReadFile(cgroupV2Controllers); err == nil {
		read = append(read, cgroupV2Controllers)
		for _, f := range strings.Fields(string(b)) {
			if f == "pids" {
				return nil, nil
			}
		}
	}
	if b, err := c.h.FS.ReadFile(procCgroups); err == nil {
		read = append(read, procCgroups)
		// #subsys_name hierarchy num_cgroups enabled
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 4 && f[0] == "pids" && f[3] == "1" {
				return nil, nil
			}
		}
	}
	if len(read) == 0 {
		return nil, errs("cannot read %s or %s to find the pids cgroup controller", cgroupV2Controllers, procCgroups)
	}
	return nil, errs("the pids cgroup controller is not available (looked in %s): kubelet needs it for pod PID limits and QoS; use a kernel with CONFIG_CGROUP_PIDS (Linux 4.3 or newer) and do not disable it with cgroup_disable=pids",
		strings.Join(read, " and "))
}
