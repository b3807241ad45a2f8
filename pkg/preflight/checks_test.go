package preflight

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/cri"
	"github.com/yurtadm/yurtadm/pkg/host"
	"github.com/yurtadm/yurtadm/pkg/host/hosttest"
)

const (
	containerdEndpoint = "unix:///run/containerd/containerd.sock"
	crictlInfo         = "crictl --runtime-endpoint " + containerdEndpoint + " info"
	kubeletVersion     = "kubelet --version"
	readyInfo          = `{
  "status": {
    "conditions": [
      {"type": "RuntimeReady", "status": true, "reason": "", "message": ""},
      {"type": "NetworkReady", "status": false, "reason": "NetworkPluginNotReady", "message": "cni plugin not initialized"}
    ]
  }
}`
)

// fixture is a host that passes every check: files below a temp root,
// scripted commands, and an Env that counts its calls.
type fixture struct {
	t        *testing.T
	h        *host.Host
	sc       *hosttest.Script
	env      Env
	opts     Options
	envCalls int
	// dtypeDirs records the real dirs the d_type probe was asked about.
	dtypeDirs []string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	h, _, sc := hosttest.New(t)
	f := &fixture{t: t, h: h, sc: sc}
	f.write(procSwaps, "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")
	f.write(procIPForward, "1\n")
	f.write(procBridgeNF, "1\n")
	f.write(resolvConf, "# generated\nsearch example.com\nnameserver 10.0.0.2\n")
	f.write(cgroupV2Controllers, "cpuset cpu io memory hugetlb pids rdma misc\n")
	f.write("/run/containerd/containerd.sock", "")
	f.mkdir("/var/lib/containerd")
	sc.Answers[kubeletVersion] = hosttest.Answer{Out: "Kubernetes v1.34.4\n"}
	sc.Answers[crictlInfo] = hosttest.Answer{Out: readyInfo}
	f.env = Env{
		Geteuid:  func() int { f.envCalls++; return 0 },
		Hostname: func() (string, error) { f.envCalls++; return "edge-1", nil },
		PortFree: func(int) error { f.envCalls++; return nil },
		DType: func(dir string) (bool, error) {
			f.envCalls++
			f.dtypeDirs = append(f.dtypeDirs, dir)
			return true, nil
		},
		DialUnix: func(string) error { f.envCalls++; return nil },
	}
	return f
}

// write plants a host file. Unlike hosttest.WriteFile it does not fsync:
// the table below builds a few hundred fixtures.
func (f *fixture) write(p, content string) {
	real := f.h.FS.Path(p)
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(real, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) mkdir(p string) {
	if err := f.h.FS.MkdirAll(p, 0o755); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) remove(p string) {
	if _, err := f.h.FS.RemoveAll(p); err != nil {
		f.t.Fatal(err)
	}
}

// without makes LookPath fail for the tools.
func (f *fixture) without(tools ...string) {
	f.sc.Path = map[string]bool{"crictl": true, "conntrack": true, "kubelet": true}
	for _, tool := range tools {
		f.sc.Path[tool] = false
	}
}

func (f *fixture) checks() []Checker {
	o := f.opts
	o.Env = f.env
	return JoinChecks(f.h, o)
}

func (f *fixture) check(name string) Checker {
	f.t.Helper()
	for _, c := range f.checks() {
		if c.Name() == name {
			return c
		}
	}
	f.t.Fatalf("no check named %q", name)
	return nil
}

// outcome runs c and returns its status and messages the way Run would.
func outcome(c Checker) (string, []string) {
	warnings, errs := c.Check()
	status := StatusOK
	var msgs []string
	for _, w := range warnings {
		status = StatusWarning
		msgs = append(msgs, w.Error())
	}
	for _, e := range errs {
		status = StatusError
		msgs = append(msgs, e.Error())
	}
	return status, msgs
}

func inUse(port int) func(int) error {
	return func(p int) error {
		if p == port {
			return &os.SyscallError{Syscall: "bind", Err: syscall.EADDRINUSE}
		}
		return nil
	}
}

func TestJoinChecksNames(t *testing.T) {
	f := newFixture(t)
	var got []string
	for _, c := range f.checks() {
		got = append(got, c.Name())
	}
	want := []string{
		"IsPrivilegedUser", "FileExisting-crictl", "FileExisting-conntrack", "FileExisting-kubelet",
		"KubeletVersion", "CRISocket", "OverlayDType", "Swap",
		"Port-10250", "Port-10261", "Port-10267", "Port-10268",
		"KubeletConf", "YurthubManifest", "YurthubPKI", "IPForward", "BridgeNFCallIPTables",
		"Hostname", "ResolvConf", "PidsCgroup",
	}
	if !slices.Equal(got, want) {
		t.Errorf("check names:\n got %q\nwant %q", got, want)
	}
	if f.envCalls != 0 || len(f.sc.Ran) != 0 {
		t.Errorf("building the checks touched the machine: %d env calls, commands %q", f.envCalls, f.sc.Ran)
	}
}

func TestChecks(t *testing.T) {
	tests := []struct {
		name  string
		check string
		setup func(f *fixture)
		want  string
		// msg is a part of the messages; exact, when set, is all of them.
		msg   string
		exact string
		// ran, when not nil, is every command the check must run.
		ran []string
	}{
		{name: "root", check: CheckIsPrivilegedUser, want: StatusOK},
		{name: "not root", check: CheckIsPrivilegedUser, want: StatusError, msg: "not running as root (euid 1000)",
			setup: func(f *fixture) { f.env.Geteuid = func() int { return 1000 } }},

		{name: "crictl in PATH", check: CheckCrictl, want: StatusOK},
		{name: "crictl missing", check: CheckCrictl, want: StatusError, exact: "crictl not found in system path",
			setup: func(f *fixture) { f.without("crictl") }},
		{name: "conntrack in PATH", check: CheckConntrack, want: StatusOK},
		{name: "conntrack missing", check: CheckConntrack, want: StatusError, exact: "conntrack not found in system path",
			setup: func(f *fixture) { f.without("conntrack") }},
		{name: "kubelet in PATH", check: CheckKubelet, want: StatusOK},
		{name: "kubelet missing", check: CheckKubelet, want: StatusError, exact: "kubelet not found in system path",
			setup: func(f *fixture) { f.without("kubelet") }},

		{name: "kubelet recent enough", check: CheckKubeletVersion, want: StatusOK, ran: []string{kubeletVersion}},
		{name: "kubelet at the minimum", check: CheckKubeletVersion, want: StatusOK,
			setup: func(f *fixture) { f.sc.Answers[kubeletVersion] = hosttest.Answer{Out: "Kubernetes v1.32.0"} }},
		{name: "kubelet too old", check: CheckKubeletVersion, want: StatusError, msg: "kubelet v1.31.9 is older than v1.32",
			setup: func(f *fixture) { f.sc.Answers[kubeletVersion] = hosttest.Answer{Out: "Kubernetes v1.31.9\n"} }},
		{name: "kubelet newer than tested", check: CheckKubeletVersion, want: StatusWarning, msg: "newer than Kubernetes v1.34",
			setup: func(f *fixture) { f.sc.Answers[kubeletVersion] = hosttest.Answer{Out: "Kubernetes v1.36.0\n"} }},
		{name: "kubelet 3 minors older than the control plane", check: CheckKubeletVersion, want: StatusOK,
			setup: func(f *fixture) {
				f.opts.ClusterVersion = "v1.34.4"
				f.sc.Answers[kubeletVersion] = hosttest.Answer{Out: "Kubernetes v1.31.9\n"}
			}},
		{name: "kubelet 4 minors older than the control plane", check: CheckKubeletVersion, want: StatusError,
			msg: "kubelet v1.30.1 is more than 3 minor versions older than the control plane (v1.34.4)",
			setup: func(f *fixture) {
				f.opts.ClusterVersion = "v1.34.4"
				f.sc.Answers[kubeletVersion] = hosttest.Answer{Out: "Kubernetes v1.30.1\n"}
			}},
		{name: "kubelet newer minor than the control plane", check: CheckKubeletVersion, want: StatusError,
			msg:   "kubelet v1.34.4 is newer than the control plane (v1.33.2)",
			setup: func(f *fixture) { f.opts.ClusterVersion = "1.33.2" }},
		{name: "kubelet newer patch than the control plane", check: CheckKubeletVersion, want: StatusOK,
			setup: func(f *fixture) { f.opts.ClusterVersion = "v1.34.1" }},
		{name: "kubelet version unreadable", check: CheckKubeletVersion, want: StatusError, msg: "cannot read the version",
			setup: func(f *fixture) { f.sc.Answers[kubeletVersion] = hosttest.Answer{Out: "Kubernetes banana\n"} }},
		{name: "kubelet --version fails", check: CheckKubeletVersion, want: StatusError, msg: "kubelet --version: exit status 1",
			setup: func(f *fixture) {
				f.sc.Answers[kubeletVersion] = hosttest.Answer{Out: "segfault", Err: errors.New("exit status 1")}
			}},
		{name: "kubelet missing: left to FileExisting-kubelet", check: CheckKubeletVersion, want: StatusOK, ran: []string{},
			setup: func(f *fixture) { f.without("kubelet") }},

		{name: "runtime answers", check: CheckCRISocket, want: StatusOK, ran: []string{crictlInfo}},
		{name: "no runtime socket", check: CheckCRISocket, want: StatusError, msg: "no container runtime socket found",
			setup: func(f *fixture) { f.remove("/run/containerd") }},
		{name: "given socket missing", check: CheckCRISocket, want: StatusError,
			msg:   "container runtime socket /run/crio/crio.sock does not exist",
			setup: func(f *fixture) { f.opts.CRISocket = "unix:///run/crio/crio.sock" }},
		{name: "socket refuses connections", check: CheckCRISocket, want: StatusError,
			msg:   "cannot connect to the container runtime socket /run/containerd/containerd.sock: connection refused",
			setup: func(f *fixture) { f.env.DialUnix = func(string) error { return errors.New("connection refused") } }},
		{name: "CRI plugin disabled", check: CheckCRISocket, want: StatusError, msg: `remove "cri" from disabled_plugins`,
			setup: func(f *fixture) {
				f.sc.Answers[crictlInfo] = hosttest.Answer{Err: errors.New("exit status 1"),
					Out: `FATA[0000] getting status of runtime: rpc error: code = Unimplemented desc = unknown service runtime.v1.RuntimeService`}
			}},
		{name: "runtime not ready", check: CheckCRISocket, want: StatusError, msg: "is not ready: ContainerdNotReady still starting",
			setup: func(f *fixture) {
				f.sc.Answers[crictlInfo] = hosttest.Answer{Out: `{"status":{"conditions":[{"type":"RuntimeReady","status":false,"reason":"ContainerdNotReady","message":"still starting"}]}}`}
			}},
		{name: "crictl missing: socket dialled only", check: CheckCRISocket, want: StatusOK, ran: []string{},
			setup: func(f *fixture) { f.without("crictl") }},

		{name: "d_type supported", check: CheckOverlayDType, want: StatusOK},
		{name: "no d_type", check: CheckOverlayDType, want: StatusError, msg: "mkfs.xfs -n ftype=1",
			setup: func(f *fixture) { f.env.DType = func(string) (bool, error) { return false, nil } }},
		{name: "d_type probe fails", check: CheckOverlayDType, want: StatusWarning, msg: "cannot check d_type support of /var/lib/containerd: permission denied",
			setup: func(f *fixture) {
				f.env.DType = func(string) (bool, error) { return false, errors.New("permission denied") }
			}},

		{name: "no swap", check: CheckSwap, want: StatusOK},
		{name: "swap on", check: CheckSwap, want: StatusWarning, msg: "swap is on (/dev/vda2, /swapfile): kubelet does not start with swap on unless its configuration sets failSwapOn: false",
			setup: func(f *fixture) {
				f.write(procSwaps, "Filename\tType\tSize\tUsed\tPriority\n/dev/vda2 partition 1048572 0 -2\n/swapfile file 1024 0 -3\n")
			}},
		{name: "swaps unreadable", check: CheckSwap, want: StatusWarning, msg: "cannot tell whether swap is on",
			setup: func(f *fixture) { f.remove(procSwaps) }},

		{name: "port 10250 free", check: "Port-10250", want: StatusOK},
		{name: "port 10250 taken", check: "Port-10250", want: StatusError, msg: "port 10250 is in use; kubelet's API needs it",
			setup: func(f *fixture) { f.env.PortFree = inUse(10250) }},
		{name: "port 10261 taken", check: "Port-10261", want: StatusError, msg: "port 10261 is in use; yurthub's proxy",
			setup: func(f *fixture) { f.env.PortFree = inUse(10261) }},
		{name: "port 10267 taken", check: "Port-10267", want: StatusError, msg: "port 10267 is in use",
			setup: func(f *fixture) { f.env.PortFree = inUse(10267) }},
		{name: "port 10268 taken", check: "Port-10268", want: StatusError, msg: "port 10268 is in use",
			setup: func(f *fixture) { f.env.PortFree = inUse(10268) }},
		{name: "port 10261 free", check: "Port-10261", want: StatusOK},
		{name: "port 10267 free", check: "Port-10267", want: StatusOK},
		{name: "another port taken", check: "Port-10268", want: StatusOK,
			setup: func(f *fixture) { f.env.PortFree = inUse(10267) }},
		{name: "port cannot be listened on", check: "Port-10261", want: StatusError, msg: "cannot listen on port 10261",
			setup: func(f *fixture) { f.env.PortFree = func(int) error { return syscall.EACCES } }},

		{name: "not joined", check: CheckKubeletConf, want: StatusOK},
		{name: "already joined", check: CheckKubeletConf, want: StatusError,
			msg:   "/etc/kubernetes/kubelet.conf exists: this node has already joined a cluster; run `yurtadm reset`",
			setup: func(f *fixture) { f.write(constants.KubeletKubeconfig, "apiVersion: v1\n") }},
		{name: "no yurthub manifest", check: CheckYurthubManifest, want: StatusOK},
		{name: "yurthub manifest left", check: CheckYurthubManifest, want: StatusError,
			msg:   "/etc/kubernetes/manifests/yurthub.yaml exists",
			setup: func(f *fixture) { f.write(constants.YurthubManifest, "kind: Pod\n") }},
		{name: "no yurthub pki", check: CheckYurthubPKI, want: StatusOK},
		{name: "empty yurthub pki", check: CheckYurthubPKI, want: StatusOK,
			setup: func(f *fixture) { f.mkdir(constants.YurthubPKIDir) }},
		{name: "stale yurthub pki", check: CheckYurthubPKI, want: StatusError,
			msg: "stale files in /var/lib/yurthub/pki from an earlier join (yurthub-current.pem, yurthub-server-current.pem): yurthub would reuse them and fail with certificate errors; run `yurtadm reset`",
			setup: func(f *fixture) {
				f.write(constants.YurthubServerCert, "cert")
				f.write(constants.YurthubClientCert, "cert")
			}},

		{name: "ip forwarding on", check: CheckIPForward, want: StatusOK},
		{name: "ip forwarding off", check: CheckIPForward, want: StatusError,
			msg:   `/proc/sys/net/ipv4/ip_forward is "0", not 1`,
			setup: func(f *fixture) { f.write(procIPForward, "0\n") }},
		{name: "ip forwarding unreadable", check: CheckIPForward, want: StatusError, msg: "cannot read /proc/sys/net/ipv4/ip_forward",
			setup: func(f *fixture) { f.remove(procIPForward) }},
		{name: "bridge netfilter on", check: CheckBridgeNFCallIPTables, want: StatusOK},
		{name: "bridge netfilter off", check: CheckBridgeNFCallIPTables, want: StatusError,
			msg:   "sysctl -w net.bridge.bridge-nf-call-iptables=1",
			setup: func(f *fixture) { f.write(procBridgeNF, "0\n") }},
		{name: "br_netfilter not loaded", check: CheckBridgeNFCallIPTables, want: StatusWarning, msg: "modprobe br_netfilter",
			setup: func(f *fixture) { f.remove(procBridgeNF) }},

		{name: "lower-case hostname", check: CheckHostname, want: StatusOK},
		{name: "upper-case hostname", check: CheckHostname, want: StatusError,
			exact: `host name "Edge-1" has upper-case letters, which break node registration: a Node name must be lower case; pass --node-name edge-1`,
			setup: func(f *fixture) { f.env.Hostname = func() (string, error) { return "Edge-1", nil } }},
		{name: "upper-case hostname, node name given", check: CheckHostname, want: StatusOK,
			setup: func(f *fixture) {
				f.env.Hostname = func() (string, error) { return "Edge-1", nil }
				f.opts.NodeName = "edge-1"
			}},
		{name: "invalid hostname", check: CheckHostname, want: StatusError, msg: `host name "edge_1" is not a valid node name (an RFC 1123 DNS subdomain)`,
			setup: func(f *fixture) { f.env.Hostname = func() (string, error) { return "edge_1", nil } }},
		{name: "invalid node name", check: CheckHostname, want: StatusError, msg: `node name "Edge_1" has upper-case letters`,
			setup: func(f *fixture) { f.opts.NodeName = "Edge_1" }},
		{name: "hostname unreadable", check: CheckHostname, want: StatusError, msg: "cannot read the host name",
			setup: func(f *fixture) { f.env.Hostname = func() (string, error) { return "", errors.New("uname failed") } }},

		{name: "one nameserver", check: CheckResolvConf, want: StatusOK},
		{name: "three nameservers", check: CheckResolvConf, want: StatusOK,
			setup: func(f *fixture) {
				f.write(resolvConf, "nameserver 1.1.1.1\nnameserver 8.8.8.8\n# nameserver 9.9.9.9\nnameserver 10.0.0.2\n")
			}},
		{name: "no nameserver", check: CheckResolvConf, want: StatusError, msg: "/etc/resolv.conf has no nameserver line",
			setup: func(f *fixture) { f.write(resolvConf, "# nameserver 10.0.0.2\nsearch example.com\n") }},
		{name: "four nameservers", check: CheckResolvConf, want: StatusWarning, msg: "/etc/resolv.conf has 4 nameserver lines",
			setup: func(f *fixture) {
				f.write(resolvConf, "nameserver 1.1.1.1\nnameserver 8.8.8.8\nnameserver 9.9.9.9\nnameserver 10.0.0.2\n")
			}},
		{name: "no resolv.conf", check: CheckResolvConf, want: StatusError, msg: "cannot read /etc/resolv.conf",
			setup: func(f *fixture) { f.remove(resolvConf) }},

		{name: "cgroup v2 with pids", check: CheckPidsCgroup, want: StatusOK},
		{name: "cgroup v1 with pids", check: CheckPidsCgroup, want: StatusOK,
			setup: func(f *fixture) {
				f.remove(cgroupV2Controllers)
				f.write(procCgroups, "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t3\t80\t1\npids\t5\t90\t1\n")
			}},
		{name: "cgroup v1 with pids disabled", check: CheckPidsCgroup, want: StatusError,
			msg: "the pids cgroup controller is not available (looked in /proc/cgroups)",
			setup: func(f *fixture) {
				f.remove(cgroupV2Controllers)
				f.write(procCgroups, "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t3\t80\t1\npids\t0\t1\t0\n")
			}},
		{name: "cgroup v2 without pids", check: CheckPidsCgroup, want: StatusError,
			msg:   "looked in /sys/fs/cgroup/cgroup.controllers)",
			setup: func(f *fixture) { f.write(cgroupV2Controllers, "cpuset cpu io memory\n") }},
		{name: "no cgroup information", check: CheckPidsCgroup, want: StatusError, msg: "cannot read",
			setup: func(f *fixture) { f.remove(cgroupV2Controllers) }},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		t.Run(tc.check+"/"+tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			status, msgs := outcome(f.check(tc.check))
			all := strings.Join(msgs, "\n")
			if status != tc.want {
				t.Fatalf("status %s, want %s; messages: %q", status, tc.want, msgs)
			}
			if tc.want == StatusOK && len(msgs) > 0 {
				t.Errorf("passing check has messages %q", msgs)
			}
			if tc.exact != "" && all != tc.exact {
				t.Errorf("messages\n got %q\nwant %q", all, tc.exact)
			}
			if !strings.Contains(all, tc.msg) {
				t.Errorf("messages %q do not contain %q", all, tc.msg)
			}
			if tc.ran != nil && !slices.Equal(f.sc.Ran, tc.ran) {
				t.Errorf("ran %q, want %q", f.sc.Ran, tc.ran)
			}
		})
		seen[tc.check+"/"+tc.want] = true
	}
	// Every check has a passing and a failing case above.
	for _, c := range newFixture(t).checks() {
		if !seen[c.Name()+"/"+StatusOK] || !(seen[c.Name()+"/"+StatusError] || seen[c.Name()+"/"+StatusWarning]) {
			t.Errorf("check %s lacks a passing or a failing test case", c.Name())
		}
	}
}

func TestOverlayDTypeDir(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(f *fixture)
		wantIn string // the host path the probe must look at
	}{
		{name: "containerd dir exists", wantIn: "/var/lib/containerd"},
		{name: "containerd dir missing: nearest parent", wantIn: "/var/lib",
			setup: func(f *fixture) {
				f.remove("/var/lib/containerd")
				f.mkdir("/var/lib")
			}},
		{name: "nothing exists: the root", wantIn: "/",
			setup: func(f *fixture) { f.remove("/var") }},
		{name: "CRI-O", wantIn: "/var/lib/containers/storage",
			setup: func(f *fixture) {
				f.opts.CRISocket = "unix:///run/crio/crio.sock"
				f.mkdir("/var/lib/containers/storage")
			}},
		{name: "cri-dockerd", wantIn: "/var/lib/docker",
			setup: func(f *fixture) {
				f.remove("/run/containerd")
				f.write("/run/cri-dockerd.sock", "")
				f.mkdir("/var/lib/docker")
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			if status, msgs := outcome(f.check(CheckOverlayDType)); status != StatusOK {
				t.Fatalf("status %s: %q", status, msgs)
			}
			want := []string{f.h.FS.Path(tc.wantIn)}
			if !slices.Equal(f.dtypeDirs, want) {
				t.Errorf("probed %q, want %q", f.dtypeDirs, want)
			}
		})
	}
}

func TestKubeletVersionCheck(t *testing.T) {
	f := newFixture(t)
	c := KubeletVersionCheck(f.h, Options{ClusterVersion: "v1.30.0", Env: f.env})
	if c.Name() != CheckKubeletVersion {
		t.Errorf("name %q", c.Name())
	}
	if status, msgs := outcome(c); status != StatusError || !strings.Contains(strings.Join(msgs, ""), "newer than the control plane (v1.30.0)") {
		t.Errorf("kubelet v1.34.4 against v1.30.0: %s %q", status, msgs)
	}
}

func TestHealthyHostPasses(t *testing.T) {
	f := newFixture(t)
	results, err := Run(f.checks(), nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, r := range results {
		if r.Status != StatusOK {
			t.Errorf("%s: %s %q", r.Name, r.Status, r.Messages)
		}
	}
	if len(results) != len(f.checks()) {
		t.Errorf("%d results for %d checks", len(results), len(f.checks()))
	}
}

// The two messages users search the OpenYurt FAQ for.
func TestFAQMessages(t *testing.T) {
	tests := []struct {
		name    string
		missing string
		want    string
	}{
		{name: "crictl", missing: "crictl", want: "\t[ERROR FileExisting-crictl]: crictl not found in system path\n"},
		{name: "conntrack", missing: "conntrack", want: "\t[ERROR FileExisting-conntrack]: conntrack not found in system path\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.without(tc.missing)
			_, err := Run(f.checks(), nil)
			if err == nil {
				t.Fatal("Run passed")
			}
			if !strings.Contains(err.Error()+"\n", tc.want) {
				t.Errorf("error %q lacks the line %q", err, tc.want)
			}
		})
	}
}

func TestRunIgnore(t *testing.T) {
	tests := []struct {
		name     string
		ignore   []string
		wantCode int
		want     map[string]string // check name -> status
	}{
		{name: "nothing ignored", wantCode: cmdutil.ExitPreflight,
			want: map[string]string{CheckConntrack: StatusError, CheckSwap: StatusWarning, "Port-10250": StatusError}},
		{name: "one ignored by name", ignore: []string{"FileExisting-conntrack"}, wantCode: cmdutil.ExitPreflight,
			want: map[string]string{CheckConntrack: StatusIgnored, "Port-10250": StatusError}},
		{name: "names are case-insensitive", ignore: []string{"fileexisting-CONNTRACK,port-10250"}, wantCode: cmdutil.ExitOK,
			want: map[string]string{CheckConntrack: StatusIgnored, "Port-10250": StatusIgnored, CheckSwap: StatusWarning}},
		{name: "repeated flag", ignore: []string{"FileExisting-conntrack", "Port-10250"}, wantCode: cmdutil.ExitOK,
			want: map[string]string{CheckConntrack: StatusIgnored, "Port-10250": StatusIgnored}},
		{name: "all", ignore: []string{"ALL"}, wantCode: cmdutil.ExitOK,
			want: map[string]string{CheckConntrack: StatusIgnored, "Port-10250": StatusIgnored, CheckIPForward: StatusOK}},
		{name: "unknown name", ignore: []string{"Swap,NumCPU"}, wantCode: cmdutil.ExitUsage},
		{name: "all mixed with names", ignore: []string{"all,Swap"}, wantCode: cmdutil.ExitUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.without("conntrack")
			f.env.PortFree = inUse(10250)
			f.write(procSwaps, "Filename Type Size Used Priority\n/swapfile file 1 0 -2\n")
			checks := f.checks()
			ignore, err := ParseIgnore(tc.ignore, checks)
			if tc.wantCode == cmdutil.ExitUsage {
				if code := cmdutil.ExitCode(err); code != cmdutil.ExitUsage {
					t.Fatalf("ParseIgnore: exit code %d (%v), want %d", code, err, cmdutil.ExitUsage)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			results, err := Run(checks, ignore)
			if code := cmdutil.ExitCode(err); code != tc.wantCode {
				t.Fatalf("exit code %d (%v), want %d", code, err, tc.wantCode)
			}
			got := map[string]string{}
			for _, r := range results {
				got[r.Name] = r.Status
			}
			for name, st := range tc.want {
				if got[name] != st {
					t.Errorf("%s: %s, want %s", name, got[name], st)
				}
			}
		})
	}
}

func TestRunErrorNamesTheFailures(t *testing.T) {
	f := newFixture(t)
	f.without("conntrack")
	f.env.Geteuid = func() int { return 1000 }
	_, err := Run(f.checks(), nil)
	var e *cmdutil.Error
	if !errors.As(err, &e) || e.Code != cmdutil.ExitPreflight {
		t.Fatalf("error %v (%T), want a *cmdutil.Error with exit code %d", err, err, cmdutil.ExitPreflight)
	}
	want := "--ignore-preflight-errors=FileExisting-conntrack,IsPrivilegedUser"
	if !strings.Contains(e.Hint, want) {
		t.Errorf("hint %q lacks %q", e.Hint, want)
	}
}

func TestParseKubeletVersion(t *testing.T) {
	tests := []struct {
		out     string
		want    string
		wantErr bool
	}{
		{out: "Kubernetes v1.34.4\n", want: "1.34.4"},
		{out: "Kubernetes v1.33.0-rc.1", want: "1.33.0"},
		{out: "v1.32.2+k3s1", want: "1.32.2"},
		{out: "", wantErr: true},
		{out: "Kubernetes", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.out), func(t *testing.T) {
			v, err := ParseKubeletVersion(tc.out)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %v, want an error", v)
				}
				return
			}
			if err != nil || v.String() != tc.want {
				t.Fatalf("got %v, %v; want %s", v, err, tc.want)
			}
		})
	}
}

func TestImagePullCheck(t *testing.T) {
	h, _, sc := hosttest.New(t)
	imgs := cri.Images{Exec: h.Exec, Endpoint: containerdEndpoint}
	inspect := "crictl --runtime-endpoint " + containerdEndpoint + " inspecti -q "
	sc.Answers[inspect+"here:1"] = hosttest.Answer{Out: "{}"}
	sc.Answers[inspect+"pullable:1"] = hosttest.Answer{Out: `no such image "pullable:1" present`, Err: errors.New("exit status 1")}
	sc.Answers["crictl --runtime-endpoint "+containerdEndpoint+" pull pullable:1"] = hosttest.Answer{Out: "Image is up to date"}
	sc.Answers[inspect+"offline:1"] = hosttest.Answer{Out: `no such image "offline:1" present`, Err: errors.New("exit status 1")}
	sc.Answers["crictl --runtime-endpoint "+containerdEndpoint+" pull offline:1"] = hosttest.Answer{Out: "dial tcp: lookup registry: no such host", Err: errors.New("exit status 1")}
	if _, errs := ImagePullCheck(imgs, []string{"here:1", "pullable:1"}, true).Check(); len(errs) != 0 {
		t.Errorf("present and pullable images: %v", errs)
	}
	_, errs := ImagePullCheck(imgs, []string{"here:1", "offline:1"}, true).Check()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "offline:1") || !strings.Contains(errs[0].Error(), "--image-archive") {
		t.Errorf("an image that cannot be pulled: %v", errs)
	}
	if _, err := ParseIgnore([]string{"imagepull"}, JoinChecks(h, Options{})); err != nil {
		t.Errorf("--ignore-preflight-errors=ImagePull refused: %v", err)
	}
}
