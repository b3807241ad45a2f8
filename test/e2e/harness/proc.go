package harness

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The PID registry: Work/pids, one "name pid exe" line per daemon the
// harness started, so that Clean stops them from any later process.

func (h *Harness) pidFile() string { return filepath.Join(h.Work, "pids") }

// recordPID notes a daemon and moves it out of the caller's cgroups (a
// daemon left in the cgroup of the shell or job that started it dies with
// it).
func (h *Harness) recordPID(name string, pid int) error {
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	f, err := os.OpenFile(h.pidFile(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "%s %d %s\n", name, pid, exe); err != nil {
		return err
	}
	if h.Detach {
		leaveCgroups(pid)
	}
	return nil
}

// leaveCgroups moves pid into the root cgroup of every v1 hierarchy (and of
// the unified one when mounted).
func leaveCgroups(pid int) {
	entries, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join("/sys/fs/cgroup", e.Name(), "cgroup.procs")
		if _, err := os.Stat(p); err == nil {
			_ = os.WriteFile(p, []byte(strconv.Itoa(pid)), 0o644)
		}
	}
	_ = os.WriteFile("/sys/fs/cgroup/cgroup.procs", []byte(strconv.Itoa(pid)), 0o644)
}

type daemon struct {
	name string
	pid  int
	exe  string
}

func (h *Harness) readPIDs() []daemon {
	f, err := os.Open(h.pidFile())
	if err != nil {
		return nil
	}
	defer f.Close()
	var ds []daemon
	s := bufio.NewScanner(f)
	for s.Scan() {
		fs := strings.Fields(s.Text())
		if len(fs) < 2 {
			continue
		}
		pid, err := strconv.Atoi(fs[1])
		if err != nil {
			continue
		}
		d := daemon{name: fs[0], pid: pid}
		if len(fs) > 2 {
			d.exe = fs[2]
		}
		ds = append(ds, d)
	}
	return ds
}

// alive reports whether d still runs as the same program (a PID can be
// reused by another program after it ended).
func (d daemon) alive() bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", d.pid))
	if err != nil {
		return false
	}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.pid)); err == nil {
		// A zombie has nothing left to stop.
		if i := strings.LastIndexByte(string(st), ')'); i > 0 && strings.HasPrefix(string(st[i+1:]), " Z") {
			return false
		}
	}
	return d.exe == "" || strings.TrimSuffix(exe, " (deleted)") == d.exe
}

// stopPID sends SIGTERM to the process (and its group when it leads one),
// then SIGKILL after grace.
func stopPID(d daemon, grace time.Duration) {
	if !d.alive() {
		return
	}
	sig := func(s syscall.Signal) {
		if pgid, err := syscall.Getpgid(d.pid); err == nil && pgid == d.pid {
			_ = syscall.Kill(-d.pid, s)
		}
		_ = syscall.Kill(d.pid, s)
	}
	sig(syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !d.alive() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	sig(syscall.SIGKILL)
	for i := 0; i < 50 && d.alive(); i++ {
		time.Sleep(100 * time.Millisecond)
	}
}
