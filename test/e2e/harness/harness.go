// Package harness runs a real single-machine OpenYurt cluster for the
// end-to-end scenarios and the quickstart: containerd as a host process with
// locally built images (no registry), the control plane of test/framework
// (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, set up by
// kubeadm's phases), yurt-manager as a host process to approve yurthub's
// serving-certificate requests, the cluster prepared for edge nodes by this
// project's own `yurtctl convert phase control-plane`, and a kubelet unit
// for the systemctl stand-in (test/e2e/systemctl), which is put first in
// PATH for the commands the harness runs. The node is this machine.
//
// Everything the harness writes outside the well-known node paths lives in
// WorkDir (/var/lib/yurtadm-e2e): binaries, images, containerd's root and
// config, the CNI conflist and IPAM state, the control plane, logs and the
// PIDs of what it started. Clean tears everything down by PID and path, so
// it also cleans after a crashed run; Up calls it first.
//
// It must run as root on a disposable machine of the kind described in
// docs/e2e.md: no systemd, cgroup v1, no registry.
package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/yurtadm/yurtadm/test/framework"
)

// Environment variables.
const (
	// EnvE2E=1 enables the end-to-end tests (they change the machine).
	EnvE2E = "YURTADM_E2E"
	// EnvYurtadm names a prebuilt yurtadm binary to test instead of
	// building ./cmd/yurtadm.
	EnvYurtadm = "YURTADM_E2E_YURTADM"
	// EnvWorkDir overrides DefaultWorkDir.
	EnvWorkDir = "YURTADM_E2E_DIR"
)

// Well-known names.
const (
	DefaultWorkDir = "/var/lib/yurtadm-e2e"
	PauseImage     = "registry.k8s.io/pause:3.10"
	YurthubImage   = "docker.io/openyurt/yurthub:v1.7.0"
	// YurtManagerImage is what `yurtctl convert --yurt-manager-image` runs
	// in the yurt-manager scenario (convert's Deployment runs
	// /usr/local/bin/yurt-manager).
	YurtManagerImage = "docker.io/openyurt/yurt-manager:v1.7.0"
	SleeperImage     = "yurtadm.e2e/sleeper:v1"
	CRISocket        = "unix:///run/containerd/containerd.sock"
	containerdSock   = "/run/containerd/containerd.sock"
	KubeletUnit      = "/etc/systemd/system/kubelet.service"
	PodSubnet        = "10.244.0.0/24"
	BridgeName       = "cni0"
)

// Harness is one run of the machine-level harness.
type Harness struct {
	// Root is the repository root.
	Root string
	// Work is the harness's own directory (DefaultWorkDir).
	Work string
	// Bin holds yurtadm, yurtctl, systemctl (the stand-in), kubelet,
	// kubeadm, crictl: first in PATH of every command the harness runs.
	Bin string
	// ToolsBin is hack/tools.sh's bin directory.
	ToolsBin string
	// Detach starts the daemons so that they outlive this process
	// (quickstart); they are stopped by PID with Clean.
	Detach bool
	// Log receives progress lines.
	Log io.Writer

	// CP is the running control plane after Up.
	CP *framework.ControlPlane

	yurtadmImage string
}

// New finds the repository and the tools. It does not change the machine.
func New(logw io.Writer) (*Harness, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	work := os.Getenv(EnvWorkDir)
	if work == "" {
		work = DefaultWorkDir
	}
	tb := os.Getenv(framework.EnvToolsBin)
	if tb == "" {
		return nil, fmt.Errorf("%s is not set: run hack/e2e.sh, or export %s=$(bash hack/tools.sh | tail -1)", framework.EnvToolsBin, framework.EnvToolsBin)
	}
	if logw == nil {
		logw = io.Discard
	}
	return &Harness{Root: root, Work: work, Bin: filepath.Join(work, "bin"), ToolsBin: tb, Log: logw}, nil
}

// Prerequisites reports what this machine lacks for the harness, empty
// when nothing: root, the Debian packages, the tools.
func (h *Harness) Prerequisites() []string {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (the harness runs containerd and kubelet)")
	}
	for _, b := range []string{"containerd", "ctr", "runc", "iptables", "iptables-save", "iptables-restore", "conntrack", "ip", "go", "etcd", "/usr/bin/time"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b+" in PATH (hack/install-deps.sh)")
		}
	}
	for _, p := range []string{"/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback"} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p+" (containernetworking-plugins, hack/install-deps.sh)")
		}
	}
	for _, b := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubeadm", "crictl", "yurthub", "yurt-manager"} {
		if fi, err := os.Stat(filepath.Join(h.ToolsBin, b)); err != nil || fi.Mode()&0o111 == 0 {
			missing = append(missing, filepath.Join(h.ToolsBin, b)+" (bash hack/tools.sh)")
		}
	}
	return missing
}

func (h *Harness) logf(format string, args ...any) {
	fmt.Fprintf(h.Log, "[harness %s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// Env is the environment of the commands the harness runs: Bin first in
// PATH (the systemctl stand-in, kubelet, crictl, kubeadm, yurtadm).
func (h *Harness) Env() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "PATH=") {
			env = append(env, e)
		}
	}
	path := h.Bin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	return append(env, "PATH="+path)
}

// Result is a finished command.
type Result struct {
	Cmd      string
	Stdout   string
	Stderr   string
	ExitCode int
	Took     time.Duration
	// Lines are the lines of stderr with the time since the start at which
	// each arrived (the phases of a join).
	Lines []Line
	// MaxRSSKB is the command's peak resident set size, measured by GNU
	// time (RunRSS only). Go's own wait4 rusage is no use here: the kernel
	// carries the parent's peak across the exec of a vfork'd child.
	MaxRSSKB int64
}

// Line is a line of output and when it came.
type Line struct {
	At   time.Duration
	Text string
}

func (r Result) String() string {
	return fmt.Sprintf("$ %s\nexit %d after %s\n--- stdout ---\n%s\n--- stderr ---\n%s", r.Cmd, r.ExitCode, r.Took.Round(time.Millisecond), r.Stdout, r.Stderr)
}

// lineClock timestamps the lines written to it.
type lineClock struct {
	start time.Time
	buf   bytes.Buffer
	part  []byte
	lines []Line
}

func (c *lineClock) Write(p []byte) (int, error) {
	c.buf.Write(p)
	c.part = append(c.part, p...)
	for {
		i := bytes.IndexByte(c.part, '\n')
		if i < 0 {
			break
		}
		c.lines = append(c.lines, Line{At: time.Since(c.start), Text: string(c.part[:i])})
		c.part = c.part[i+1:]
	}
	return len(p), nil
}

// Run runs a command with Env(); a non-zero exit is not an error (look at
// ExitCode), a failure to start is.
func (h *Harness) Run(ctx context.Context, name string, args ...string) (Result, error) {
	if !strings.Contains(name, "/") {
		// Resolve in Env's PATH, not this process's.
		if p := filepath.Join(h.Bin, name); isExec(p) {
			name = p
		}
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = h.Env()
	start := time.Now()
	var out bytes.Buffer
	errb := &lineClock{start: start}
	cmd.Stdout, cmd.Stderr = &out, errb
	err := cmd.Run()
	r := Result{Cmd: name + " " + strings.Join(args, " "), Stdout: out.String(), Stderr: errb.buf.String(), Took: time.Since(start), Lines: errb.lines}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.ExitCode = ee.ExitCode()
	default:
		return r, err
	}
	return r, nil
}

// RunRSS is Run under GNU time (/usr/bin/time), which forks the command
// from its own small process and reports its peak RSS in MaxRSSKB.
func (h *Harness) RunRSS(ctx context.Context, name string, args ...string) (Result, error) {
	if !strings.Contains(name, "/") {
		if p := filepath.Join(h.Bin, name); isExec(p) {
			name = p
		}
	}
	f, err := os.CreateTemp("", "rss-*")
	if err != nil {
		return Result{}, err
	}
	f.Close()
	defer os.Remove(f.Name())
	r, err := h.Run(ctx, "/usr/bin/time", append([]string{"-f", "%M", "-o", f.Name(), name}, args...)...)
	r.Cmd = strings.TrimPrefix(r.Cmd, "/usr/bin/time -f %M -o "+f.Name()+" ")
	if err != nil {
		return r, err
	}
	b, _ := os.ReadFile(f.Name())
	fields := strings.Fields(string(b))
	if len(fields) > 0 {
		fmt.Sscan(fields[len(fields)-1], &r.MaxRSSKB)
	}
	return r, nil
}

// must runs a command and fails on a non-zero exit.
func (h *Harness) must(ctx context.Context, name string, args ...string) (string, error) {
	r, err := h.Run(ctx, name, args...)
	if err != nil {
		return "", err
	}
	if r.ExitCode != 0 {
		return "", fmt.Errorf("%s", r.String())
	}
	return r.Stdout, nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && bytes.HasPrefix(firstLine(b), []byte("module github.com/yurtadm/yurtadm")) && !bytes.Contains(firstLine(b), []byte("/test/")) {
			return d, nil
		}
		if d == "/" {
			return "", fmt.Errorf("not inside the yurtadm repository (from %s)", dir)
		}
	}
}

func firstLine(b []byte) []byte {
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		l := bytes.TrimSpace(s.Bytes())
		if len(l) > 0 && !bytes.HasPrefix(l, []byte("//")) {
			return l
		}
	}
	return nil
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}
