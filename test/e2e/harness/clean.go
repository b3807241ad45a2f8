package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// NodePaths are what a join (yurtadm's or kubeadm's) and the node's
// components leave on this machine; CleanNode removes them.
var NodePaths = []string{
	"/etc/kubernetes",
	"/var/lib/kubelet",
	"/var/lib/yurthub",
	"/var/lib/openyurt",
	"/etc/systemd/system/kubelet.service.d",
	"/var/lib/cni",
	"/run/systemctl-standin",
	"/var/log/systemctl-standin",
	"/var/log/pods",
	"/var/log/containers",
}

// CleanNode undoes everything a node did, whatever state it is in, and
// keeps containerd and the control plane running: kubelet stopped through
// the stand-in (and any stray kubelet killed), every pod removed through
// the CRI, kubelet's mounts unmounted, the node's files and yurthub's dummy
// interface removed. It does not touch the Node object.
func (h *Harness) CleanNode(ctx context.Context) error {
	var errs []error
	start := time.Now()
	defer func() { h.logf("node cleaned in %s", time.Since(start).Round(10*time.Millisecond)) }()
	if _, err := os.Stat(filepath.Join(h.Bin, "systemctl")); err == nil {
		_, _ = h.Run(ctx, filepath.Join(h.Bin, "systemctl"), "stop", "kubelet")
	}
	h.logf("kubelet stopped after %s", time.Since(start).Round(10*time.Millisecond))
	killByExe(filepath.Join(h.ToolsBin, "kubelet"))
	if c, err := net.DialTimeout("unix", containerdSock, time.Second); err == nil {
		c.Close()
		// A container kubelet was starting when it was killed is in
		// containerd's "starting" state for a moment and cannot be
		// removed yet ("container is in starting state, can't be
		// removed"): try again a few times.
		var last error
		for attempt := 1; attempt <= 5; attempt++ {
			r, err := h.Run(ctx, filepath.Join(h.ToolsBin, "crictl"), "--runtime-endpoint", CRISocket, "--timeout", "60s", "rmp", "-a", "-f")
			if err == nil && r.ExitCode == 0 {
				last = nil
				break
			}
			last = fmt.Errorf("crictl rmp -a -f (attempt %d): %v %s", attempt, err, r.Stderr)
			h.logf("%v", last)
			time.Sleep(2 * time.Second)
		}
		if last != nil {
			errs = append(errs, last)
		}
		h.logf("pods removed after %s", time.Since(start).Round(10*time.Millisecond))
	}
	if err := unmountBelow("/var/lib/kubelet"); err != nil {
		errs = append(errs, err)
	}
	for _, p := range NodePaths {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	_ = exec.Command("ip", "link", "delete", "hub-dummy0").Run()
	return errors.Join(errs...)
}

// Clean tears the whole harness down, from any state, and leaves the
// machine as it was: the node (CleanNode), containerd and its shims, the
// control plane and yurt-manager (by the PIDs recorded in Work/pids), mounts
// below Work and /run/containerd, the kubepods cgroups, cni0, the KUBE-* and
// CNI-* iptables chains, the kubelet unit and Work but for the built
// binaries and images (Work/bin, Work/images; CleanAll removes them too).
func (h *Harness) Clean(ctx context.Context) error {
	var errs []error
	if h.CP != nil {
		// Our own children: stop and reap them.
		h.CP.Stop()
	}
	if err := h.CleanNode(ctx); err != nil {
		errs = append(errs, err)
	}
	ds := h.readPIDs()
	// Last started first: yurt-manager, kube-scheduler, ..., etcd, containerd.
	for i := len(ds) - 1; i >= 0; i-- {
		stopPID(ds[i], 10*time.Second)
	}
	// Shims outlive containerd; their containers are gone after rmp, but a
	// crashed run may have left some.
	killByExe("/usr/bin/containerd-shim-runc-v2")
	killByExe("/usr/bin/containerd")
	for _, d := range []string{"/run/containerd", filepath.Join(h.Work, "containerd")} {
		if err := unmountBelow(d); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removeCgroups(); err != nil {
		errs = append(errs, err)
	}
	_ = exec.Command("ip", "link", "delete", BridgeName).Run()
	if err := cleanIptables(); err != nil {
		errs = append(errs, err)
	}
	if err := h.restoreIPForward(); err != nil {
		errs = append(errs, err)
	}
	for _, p := range []string{KubeletUnit, "/run/containerd", h.pidFile(), h.ClusterEnvFile(),
		filepath.Join(h.Work, "containerd"), filepath.Join(h.Work, "cni"), filepath.Join(h.Work, "cluster")} {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	h.CP = nil
	return errors.Join(errs...)
}

// CleanAll is Clean and also removes Work entirely.
func (h *Harness) CleanAll(ctx context.Context) error {
	err := h.Clean(ctx)
	return errors.Join(err, os.RemoveAll(h.Work))
}

// killByExe SIGKILLs every process whose executable is exe.
func killByExe(exe string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		p, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil {
			continue
		}
		if strings.TrimSuffix(p, " (deleted)") == exe {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// Mounts returns the mount points at or below dir, deepest first.
func Mounts(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var mps []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fs := strings.Fields(s.Text())
		if len(fs) < 5 {
			continue
		}
		mp := unescapeMount(fs[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mps = append(mps, mp)
		}
	}
	sort.Slice(mps, func(i, j int) bool { return len(mps[i]) > len(mps[j]) })
	return mps
}

func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

func unmountBelow(dir string) error {
	var errs []error
	for i := 0; i < 3; i++ {
		mps := Mounts(dir)
		if len(mps) == 0 {
			return nil
		}
		errs = nil
		for _, mp := range mps {
			if err := syscall.Unmount(mp, 0); err != nil {
				if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
					errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// removeCgroups removes the kubepods cgroups kubelet made in every
// hierarchy, deepest first (a cgroup with processes cannot go: those were
// killed before).
func removeCgroups() error {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods*")
	if more, _ := filepath.Glob("/sys/fs/cgroup/kubepods*"); len(more) > 0 {
		roots = append(roots, more...)
	}
	var errs []error
	for _, root := range roots {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			var err error
			for try := 0; try < 20; try++ {
				if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("rmdir %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// cleanIptables removes every KUBE-* and CNI-* chain and every rule that
// names one, in all tables, for IPv4 and IPv6: the saved rule set without
// those lines is restored.
func cleanIptables() error {
	var errs []error
	for _, fam := range [][2]string{{"iptables-save", "iptables-restore"}, {"ip6tables-save", "ip6tables-restore"}} {
		if _, err := exec.LookPath(fam[0]); err != nil {
			continue
		}
		out, err := exec.Command(fam[0]).Output()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", fam[0], err))
			continue
		}
		if !bytes.Contains(out, []byte("KUBE-")) && !bytes.Contains(out, []byte("CNI-")) {
			continue
		}
		var kept bytes.Buffer
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "KUBE-") || strings.Contains(l, "CNI-") {
				continue
			}
			kept.WriteString(l + "\n")
		}
		cmd := exec.Command(fam[1])
		cmd.Stdin = &kept
		if o, err := cmd.CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w: %s", fam[1], err, o))
		}
	}
	return errors.Join(errs...)
}

// Leftovers lists what of the harness is still on the machine (empty when
// clean): processes, mounts, cgroups, links, iptables chains and paths.
func (h *Harness) Leftovers() []string {
	var left []string
	// Other programs may run the same control-plane binaries (integration
	// tests): only the recorded PIDs are ours. containerd and kubelet run
	// only under this harness.
	for _, d := range h.readPIDs() {
		if d.alive() {
			left = append(left, fmt.Sprintf("process %s %d", d.name, d.pid))
		}
	}
	for _, exe := range []string{"/usr/bin/containerd", "/usr/bin/containerd-shim-runc-v2", filepath.Join(h.ToolsBin, "kubelet")} {
		if pids := pidsByExe(exe); len(pids) > 0 {
			left = append(left, fmt.Sprintf("process %s %v", exe, pids))
		}
	}
	for _, d := range []string{"/var/lib/kubelet", "/run/containerd", h.Work} {
		for _, m := range Mounts(d) {
			left = append(left, "mount "+m)
		}
	}
	if cg, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods*"); len(cg) > 0 {
		left = append(left, "cgroups "+strings.Join(cg, " "))
	}
	for _, l := range []string{BridgeName, "hub-dummy0"} {
		if _, err := net.InterfaceByName(l); err == nil {
			left = append(left, "link "+l)
		}
	}
	if out, err := exec.Command("iptables-save").Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, ":KUBE-") || strings.HasPrefix(l, ":CNI-") {
				left = append(left, "iptables chain "+strings.Fields(l[1:])[0])
			}
		}
	}
	for _, p := range append(append([]string{}, NodePaths...), KubeletUnit, "/run/containerd", h.Work) {
		if _, err := os.Lstat(p); err == nil {
			left = append(left, "path "+p)
		}
	}
	return left
}

func pidsByExe(exe string) []int {
	// A process's exe is the file it runs, links resolved (hack/tools.sh's
	// bin directory holds links into its cache).
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		p, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && strings.TrimSuffix(p, " (deleted)") == exe {
			if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
				if i := strings.LastIndexByte(string(st), ')'); i > 0 && strings.HasPrefix(string(st[i+1:]), " Z") {
					continue
				}
			}
			pids = append(pids, pid)
		}
	}
	return pids
}
