package cluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Node is one nspawn node of a cluster.
type Node struct {
	NodeSpec
	c *Cluster
}

// dir is the node's own directory on the host.
func (n *Node) dir(parts ...string) string {
	return filepath.Join(append([]string{n.c.Dir, "nodes", n.Name}, parts...)...)
}

// Merged is the node's root file system as mounted on the host.
func (n *Node) Merged() string { return n.dir("merged") }

// HostPath is where the node's path p (absolute, inside the node) is on
// the host: below a directory bound into the node (/var/lib/kubelet,
// /var/lib/containerd) it is in that directory, elsewhere in Merged. A
// symlink in p resolves against the host's root, not the node's: read
// links with os.Readlink, never follow them.
func (n *Node) HostPath(p string) string {
	p = filepath.Clean("/" + p)
	for _, b := range []string{"/var/lib/kubelet", "/var/lib/containerd"} {
		if p == b || strings.HasPrefix(p, b+"/") {
			return filepath.Join(n.dir(filepath.Base(b)), strings.TrimPrefix(p, b))
		}
	}
	return filepath.Join(n.Merged(), p)
}

// mount lays the overlay: the node's upper dir over the layers and the base.
func (n *Node) mount() error {
	for _, d := range []string{"upper", "work", "merged", "containerd", "kubelet", "log"} {
		if err := os.MkdirAll(n.dir(d), 0o755); err != nil {
			return err
		}
	}
	if mounted(n.Merged()) {
		return nil
	}
	lower := []string{filepath.Join(n.c.Dir, "layer"), n.c.Rootfs}
	if !n.NoDropIn {
		lower = append([]string{filepath.Join(n.c.Dir, "layer-dropin")}, lower...)
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(lower, ":"), n.dir("upper"), n.dir("work"))
	if err := unix.Mount("overlay", n.Merged(), "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount the overlay of node %s: %w", n.Name, err)
	}
	return nil
}

// configure writes the node's own files into its root: name, address and
// routes to every other node's pod subnet, its CNI bridge, and on the
// control-plane node the etcd unit enabled.
func (n *Node) configure() error {
	root := n.Merged()
	files := map[string]string{
		"etc/hostname": n.Name + "\n",
		"etc/hosts":    fmt.Sprintf("127.0.0.1 localhost\n%s %s\n", n.IP, n.Name),
	}
	var net strings.Builder
	fmt.Fprintf(&net, "[Match]\nName=host0\n\n[Network]\nAddress=%s/24\nGateway=%s\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n", n.IP, n.c.Config.BridgeIP())
	for _, o := range n.c.Config.Nodes {
		if o.Name != n.Name {
			fmt.Fprintf(&net, "\n[Route]\nDestination=%s\nGateway=%s\n", o.PodSubnet(), o.IP)
		}
	}
	files["etc/systemd/network/10-host0.network"] = net.String()
	files["etc/cni/net.d/10-ynode.conflist"] = fmt.Sprintf(`{"cniVersion":"0.4.0","name":"ynode","plugins":[`+
		`{"type":"bridge","bridge":"cbr0","isGateway":true,"ipMasq":true,"hairpinMode":true,`+
		`"ipam":{"type":"host-local","ranges":[[{"subnet":"%s"}]],"routes":[{"dst":"0.0.0.0/0"}]}},`+
		`{"type":"portmap","capabilities":{"portMappings":true}}]}`+"\n", n.PodSubnet())
	for p, data := range files {
		if err := writeFile(filepath.Join(root, p), []byte(data), 0o644); err != nil {
			return err
		}
	}
	if n.Role == RoleControlPlane {
		link := filepath.Join(root, "etc/systemd/system/multi-user.target.wants/ynode-etcd.service")
		_ = os.Remove(link)
		if err := os.Symlink("/etc/systemd/system/ynode-etcd.service", link); err != nil {
			return err
		}
	}
	return nil
}

// cgroupDirs are the node's cgroup in every v1 hierarchy (and the unified
// one), nested under this process's own: without a host systemd, nspawn
// would put every node at the root of each hierarchy, where they collide
// with each other and with a host kubelet's /kubepods.
func (n *Node) cgroupDirs() ([]string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var dirs []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		ctl, path := parts[1], parts[2]
		base := "/sys/fs/cgroup/unified"
		if ctl != "" {
			base = "/sys/fs/cgroup/" + strings.TrimPrefix(ctl, "name=")
		}
		if _, err := os.Stat(base); err != nil {
			continue
		}
		// Our own harness's nodes live below the cgroup this process
		// started in, never below a node's.
		path = strings.SplitN(path, "/yurtadm-nodes/", 2)[0]
		dirs = append(dirs, filepath.Join(base, path, "yurtadm-nodes", n.c.Config.Name+"-"+n.Name))
	}
	return dirs, s.Err()
}

// makeCgroups creates the node's cgroups (cpuset's cpus and mems copied
// down, as a new cpuset is empty).
func (n *Node) makeCgroups() ([]string, error) {
	dirs, err := n.cgroupDirs()
	if err != nil {
		return nil, err
	}
	for _, d := range dirs {
		if strings.Contains(d, "/cpuset/") {
			parent := filepath.Dir(d)
			for _, p := range []string{filepath.Dir(parent), parent, d} {
				if err := os.MkdirAll(p, 0o755); err != nil {
					return nil, err
				}
				for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
					cur, _ := os.ReadFile(filepath.Join(p, f))
					if len(bytes.TrimSpace(cur)) > 0 {
						continue
					}
					v, _ := os.ReadFile(filepath.Join(filepath.Dir(p), f))
					_ = os.WriteFile(filepath.Join(p, f), v, 0o644)
				}
			}
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	return dirs, nil
}

// Boot starts the node's systemd (mounting its overlay first) and waits
// until systemd reports the system running (or degraded).
func (n *Node) Boot(ctx context.Context) error {
	if n.PID1() > 0 {
		return fmt.Errorf("node %s is already running", n.Name)
	}
	if err := n.mount(); err != nil {
		return err
	}
	if err := n.configure(); err != nil {
		return err
	}
	// A power cycle starts from empty cgroups, as a real machine's
	// cgroupfs does: what the last boot left (a container's empty scope in
	// the hierarchies the node's systemd does not clean, pids, cpuset,
	// blkio, devices, freezer) would otherwise greet the next kubelet as
	// "existing containers", and cAdvisor spends 3.1 s on each before
	// kubelet syncs a pod. rmdir never removes a cgroup with a process.
	n.removeCgroups()
	cg, err := n.makeCgroups()
	if err != nil {
		return err
	}
	images := filepath.Join(n.c.Build, "images")
	args := []string{"--boot", "-D", n.Merged(), "--machine=" + n.Name, "--register=no", "--keep-unit",
		"--private-users=no", "--capability=all", "--network-veth", "--network-bridge=" + n.c.Config.Bridge(),
		"--bind=" + n.dir("containerd") + ":/var/lib/containerd", "--bind=" + n.dir("kubelet") + ":/var/lib/kubelet",
		"--bind=/dev/kmsg", "--bind-ro=" + filepath.Join(images, "common") + ":/usr/local/share/ynode-images/common",
		"--console=read-only"}
	if n.Role == RoleControlPlane {
		args = append(args, "--bind-ro="+filepath.Join(images, "control-plane")+":/usr/local/share/ynode-images/control-plane")
	}
	for _, s := range []string{"vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops", "vm/panic_on_oom"} {
		// nspawn resolves the source of a bind onto /proc inside the
		// node's root: it is a path of the layer.
		args = append(args, "--bind-ro=/usr/local/share/ynode-sysctl/"+filepath.Base(s)+":/proc/sys/"+s)
	}
	// The launcher moves itself into the node's cgroups, then becomes nspawn.
	script := `for d in "$@"; do case $d in --) break;; esac; echo $$ > "$d/cgroup.procs"; shift; done; shift; exec systemd-nspawn "$@"`
	shArgs := append([]string{"-c", script, "sh"}, cg...)
	shArgs = append(append(shArgs, "--"), args...)
	logf, err := os.OpenFile(n.dir("log", "nspawn.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== boot %s\n", time.Now().Format(time.RFC3339))
	cmd := exec.Command("/bin/sh", shArgs...)
	cmd.Env = append(os.Environ(), "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=0", "SYSTEMD_SECCOMP=0")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start systemd-nspawn for node %s: %w", n.Name, err)
	}
	logPath := n.dir("log", "nspawn.log")
	go func() { // reaped here when this process started it; how it ended is logged
		err := cmd.Wait()
		if f, ferr := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0o644); ferr == nil {
			fmt.Fprintf(f, "=== systemd-nspawn (PID %d) ended %s: %v\n", cmd.Process.Pid, time.Now().Format(time.RFC3339), exitOf(cmd.ProcessState, err))
			f.Close()
		}
	}()
	if err := os.WriteFile(n.dir("nspawn.pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		return err
	}
	return n.WaitBooted(ctx, 2*time.Minute)
}

// WaitBooted waits until the node's systemd says running or degraded.
func (n *Node) WaitBooted(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := "no systemd yet"
	for time.Now().Before(deadline) {
		if n.nspawnPID() == 0 {
			// How it ended is logged as soon as it is reaped.
			var tail []byte
			for i := 0; i < 20; i++ {
				tail, _ = os.ReadFile(n.dir("log", "nspawn.log"))
				if bytes.Contains(tail[max(0, bytes.LastIndex(tail, []byte("=== boot"))):], []byte("=== systemd-nspawn")) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			return &bootExitError{node: n.Name, log: lastLines(string(tail), 20)}
		}
		if n.PID1() > 0 {
			out, _ := n.Output(ctx, "systemctl", "is-system-running")
			last = strings.TrimSpace(out)
			if last == "running" || last == "degraded" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("node %s did not boot within %s (systemd: %s)", n.Name, timeout, last)
}

// bootExitError is systemd-nspawn exiting before the node's systemd said
// it was up.
type bootExitError struct{ node, log string }

func (e *bootExitError) Error() string {
	return fmt.Sprintf("node %s: systemd-nspawn exited during boot:\n%s", e.node, e.log)
}

// exitOf says how a process ended: its exit code or the signal that killed it.
func exitOf(st *os.ProcessState, err error) string {
	if st == nil {
		return fmt.Sprint(err)
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by signal " + ws.Signal().String()
	}
	return fmt.Sprintf("exit status %d", st.ExitCode())
}

// nspawnPID is the PID of the node's running systemd-nspawn, 0 if none.
func (n *Node) nspawnPID() int {
	b, err := os.ReadFile(n.dir("nspawn.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 || !alive(pid) {
		return 0
	}
	if comm(pid) != "systemd-nspawn" && comm(pid) != "sh" {
		return 0 // the PID was reused
	}
	return pid
}

// PID1 is the host PID of the node's systemd, 0 when it is not running.
func (n *Node) PID1() int {
	np := n.nspawnPID()
	if np == 0 {
		return 0
	}
	// nspawn forks the container's init as its child (or grandchild).
	for _, c := range children(np) {
		if comm(c) == "systemd" {
			return c
		}
		for _, g := range children(c) {
			if comm(g) == "systemd" {
				return g
			}
		}
	}
	return 0
}

// Command is a command to run inside the node (in all its namespaces).
func (n *Node) Command(ctx context.Context, args ...string) (*exec.Cmd, error) {
	pid := n.PID1()
	if pid == 0 {
		return nil, fmt.Errorf("node %s is not running", n.Name)
	}
	full := append([]string{"-t", strconv.Itoa(pid), "-a", "--", "/usr/bin/env", "-i",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"}, args...)
	return exec.CommandContext(ctx, "nsenter", full...), nil
}

// Result is a finished command inside a node.
type Result struct {
	Cmd            string
	Stdout, Stderr string
	ExitCode       int
	Took           time.Duration
}

func (r Result) String() string {
	return fmt.Sprintf("$ %s\nexit %d after %s\n--- stdout ---\n%s\n--- stderr ---\n%s", r.Cmd, r.ExitCode, r.Took.Round(time.Millisecond), r.Stdout, r.Stderr)
}

// Run runs args inside the node; a non-zero exit is in ExitCode, not err.
func (n *Node) Run(ctx context.Context, args ...string) (Result, error) {
	cmd, err := n.Command(ctx, args...)
	if err != nil {
		return Result{}, err
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err = cmd.Run()
	r := Result{Cmd: n.Name + "# " + strings.Join(args, " "), Stdout: out.String(), Stderr: errb.String(), Took: time.Since(start)}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.ExitCode = ee.ExitCode()
		return r, nil
	}
	return r, err
}

// Output runs args inside the node and fails on a non-zero exit.
func (n *Node) Output(ctx context.Context, args ...string) (string, error) {
	r, err := n.Run(ctx, args...)
	if err != nil {
		return "", err
	}
	if r.ExitCode != 0 {
		return r.Stdout, fmt.Errorf("%s", r.String())
	}
	return r.Stdout, nil
}

// Shell runs a shell script inside the node.
func (n *Node) Shell(ctx context.Context, script string) (string, error) {
	return n.Output(ctx, "/bin/sh", "-ec", script)
}

// Poweroff shuts the node down: systemd stops its units (kubelet, the
// containers) and exits; after grace the node's PID 1 is killed.
func (n *Node) Poweroff(ctx context.Context, grace time.Duration) error {
	pid := n.PID1()
	if pid == 0 {
		return nil
	}
	if cmd, err := n.Command(ctx, "systemctl", "poweroff", "--no-block"); err == nil {
		_ = cmd.Run()
	}
	if n.waitGone(grace) {
		return nil
	}
	return n.PowerCut()
}

// PowerCut kills the node's PID 1, as pulling the plug does: every
// process of the node dies with its PID namespace at once.
func (n *Node) PowerCut() error {
	if pid := n.PID1(); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if np := n.nspawnPID(); np > 0 && !n.waitGone(10*time.Second) {
		_ = syscall.Kill(np, syscall.SIGKILL)
	}
	if !n.waitGone(10 * time.Second) {
		return fmt.Errorf("node %s: systemd-nspawn still running after its PID 1 was killed", n.Name)
	}
	return nil
}

func (n *Node) waitGone(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if n.nspawnPID() == 0 {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return n.nspawnPID() == 0
}

// Kill sends SIGKILL to every process of the node named comm (say
// kubelet or yurthub), as a crash does; it returns how many it killed.
func (n *Node) Kill(ctx context.Context, comm string) (int, error) {
	out, err := n.Output(ctx, "pkill", "-9", "-c", "-x", comm)
	if err != nil && strings.TrimSpace(out) == "0" {
		return 0, nil
	}
	k, _ := strconv.Atoi(strings.TrimSpace(out))
	return k, err
}

// killLeftovers kills what a dead systemd-nspawn left running in the
// node's cgroups (its container's processes live on when nspawn alone
// dies) and removes its host-side veth, so that the node can boot again.
func (n *Node) killLeftovers() {
	dirs, _ := n.cgroupDirs()
	for i := 0; i < 50; i++ {
		left := 0
		for _, d := range dirs {
			_ = filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
				if err != nil || e.IsDir() || e.Name() != "cgroup.procs" {
					return nil
				}
				b, _ := os.ReadFile(p)
				for _, f := range strings.Fields(string(b)) {
					if pid, _ := strconv.Atoi(f); pid > 0 && pid != os.Getpid() {
						left++
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
				return nil
			})
		}
		if left == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = n.removeVeth()
}

// removeVeth removes the node's host-side veth if it outlived the node's
// network namespace (the next boot fails on it: "Failed to add new veth
// interfaces (vb-<node>:host0): File exists").
func (n *Node) removeVeth() error {
	veth := "vb-" + n.Name
	if !exists("/sys/class/net/" + veth) {
		return nil
	}
	if out, err := exec.Command("ip", "link", "del", veth).CombinedOutput(); err != nil {
		return fmt.Errorf("ip link del %s: %v: %s", veth, err, out)
	}
	return nil
}

// removeCgroups removes the node's cgroups, deepest first (the node must be
// off).
func (n *Node) removeCgroups() {
	dirs, err := n.cgroupDirs()
	if err != nil {
		return
	}
	for _, d := range dirs {
		var all []string
		_ = filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				all = append(all, p)
			}
			return nil
		})
		for i := len(all) - 1; i >= 0; i-- {
			_ = unix.Rmdir(all[i])
		}
	}
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie is not alive: its state follows the command in parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// children are the PIDs whose parent is pid.
func children(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, c)
		}
	}
	return out
}

func mounted(p string) bool {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && f[4] == p {
			return true
		}
	}
	return false
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
