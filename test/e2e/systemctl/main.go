// Command systemctl is a stand-in for systemd's systemctl, for the project's
// end-to-end test harness ONLY. The machines the harness runs on have no
// systemd (PID 1 is not an init system), yet yurtadm, like kubeadm, drives
// kubelet with `systemctl daemon-reload/start/stop/restart/is-active/...`.
// The harness builds this program and puts it first in PATH as `systemctl`;
// yurtadm itself never uses it and it must never ship.
//
// It is meant to be faithful where it matters for the tests: a service is
// started from its unit file as systemd would load it (fragment looked up in
// /etc, /run, /usr/local/lib, /usr/lib, /lib systemd/system; drop-ins from
// NAME.service.d/*.conf merged by file name; Environment=, EnvironmentFile=
// with '-', the empty ExecStart= reset, $VAR and ${VAR} expansion, Restart=,
// RestartSec=, KillMode=, TimeoutStopSec=, WorkingDirectory=), so that the
// files the CLI writes are what starts kubelet, and a mistake in them (say, a
// second ExecStart= without the reset) fails here as it would under systemd.
//
// `start` forks a supervisor that leaves the caller's session (setsid) and
// cgroups (it moves itself to the root cgroup of every hierarchy), so that
// the service outlives the shell or pod that started it. The supervisor
// runs ExecStart in its own process group, is a child subreaper for
// everything the service forks, restarts it per Restart=, and on stop
// signals it per KillMode= (default: everything the service forked, the
// closest thing to systemd's cgroup kill), escalating to SIGKILL after
// TimeoutStopSec= (default 10s here).
//
// Files (all under $SYSTEMCTL_ROOT, default /):
//
//	/run/systemctl-standin/NAME.pid     supervisor pid
//	/run/systemctl-standin/NAME.main    main (ExecStart) pid while it runs
//	/run/systemctl-standin/NAME.state   sub-state: running, auto-restart, stop-sigterm
//	/run/systemctl-standin/NAME.failed  result of a run that ended in failure
//	/var/log/systemctl-standin/NAME.log supervisor and service output, appended
//
// SYSTEMCTL_ROOT also relocates unit files, drop-ins, EnvironmentFile= paths
// and enable links; the service itself runs in the real file system.
// SYSTEMCTL_CGROUP_ROOT (default /sys/fs/cgroup; "none" to skip) is where
// the supervisor finds the cgroup hierarchies to leave; tests point it at a
// fake tree.
//
// Verbs: daemon-reload, daemon-reexec, start, stop, restart, try-restart,
// reload-or-restart, is-active, is-failed, is-enabled, enable [--now],
// disable [--now], status [-n N], show [-p P] [--value], cat, reset-failed.
// Flags callers add (--no-pager, -q, ...) are accepted; -q/--quiet is honoured.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	stateDirRel   = "/run/systemctl-standin"
	logDirRel     = "/var/log/systemctl-standin"
	superviseVerb = "__supervise"
	minRestartGap = 100 * time.Millisecond
	stopPoll      = 50 * time.Millisecond
)

func init() {
	// The supervisor sets PR_SET_PDEATHSIG on the service; that signal fires
	// when the forking *thread* exits, so keep main on one thread for good.
	runtime.LockOSThread()
}

// opts are the flags callers pass.
type opts struct {
	quiet  bool
	now    bool
	value  bool
	lines  int
	props  []string
	root   string
	stdout io.Writer
	stderr io.Writer
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if code, handed := toManager(args, stdout, stderr); handed {
		return code
	}
	o := &opts{lines: 10, stdout: stdout, stderr: stderr, root: os.Getenv("SYSTEMCTL_ROOT")}
	if len(args) > 0 && args[0] == superviseVerb {
		// __supervise --root ROOT NAME
		if len(args) != 4 || args[1] != "--root" {
			fmt.Fprintln(stderr, "usage: systemctl __supervise --root ROOT NAME")
			return 2
		}
		return supervise(args[2], args[3])
	}
	var verb string
	var names []string
	takesValue := map[string]bool{"-n": true, "--lines": true, "-p": true, "--property": true,
		"-t": true, "--type": true, "-s": true, "--signal": true, "-H": true, "--host": true,
		"-M": true, "--machine": true, "-o": true, "--output": true, "--state": true,
		"--kill-whom": true, "--kill-value": true, "--job-mode": true, "--root": true, "--what": true,
		"--timestamp": true, "--preset-mode": true, "--message": true}
	flagsDone := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !flagsDone && a == "--" {
			flagsDone = true
			continue
		}
		if !flagsDone && strings.HasPrefix(a, "-") && a != "-" {
			name, val, hasVal := strings.Cut(a, "=")
			if !hasVal && takesValue[name] {
				if i+1 >= len(args) {
					fmt.Fprintf(stderr, "option %s requires an argument\n", name)
					return 1
				}
				i++
				val, hasVal = args[i], true
			}
			switch name {
			case "-q", "--quiet":
				o.quiet = true
			case "--now":
				o.now = true
			case "--value":
				o.value = true
			case "-n", "--lines":
				n, err := strconv.Atoi(val)
				if err != nil || n < 0 {
					fmt.Fprintf(stderr, "Failed to parse lines '%s'\n", val)
					return 1
				}
				o.lines = n
			case "-p", "--property":
				for _, p := range strings.Split(val, ",") {
					if p != "" {
						o.props = append(o.props, p)
					}
				}
			case "--root":
				o.root = val
			}
			continue // every other flag is accepted and ignored
		}
		if verb == "" {
			verb = a
		} else {
			names = append(names, a)
		}
	}
	if o.root == "" {
		o.root = "/"
	}
	if abs, err := filepath.Abs(o.root); err == nil {
		o.root = abs
	}
	var full []string
	for _, n := range names {
		f, err := normalizeName(n)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		full = append(full, f)
	}
	needNames := func() bool {
		if len(full) == 0 {
			fmt.Fprintf(stderr, "Too few arguments.\n")
			return false
		}
		return true
	}
	switch verb {
	case "":
		fmt.Fprintln(stderr, "systemctl (test stand-in): a verb is required")
		return 1
	case "daemon-reload", "daemon-reexec":
		// Nothing is cached: every start (and every automatic restart) reads
		// the unit, its drop-ins and its environment files afresh, so there is
		// nothing to reload. (Unlike systemd, a change made without
		// daemon-reload is therefore seen at the next start too.)
		return 0
	case "start", "stop", "restart", "try-restart", "reload-or-restart", "condrestart", "force-reload":
		if !needNames() {
			return 1
		}
		rc := 0
		for _, n := range full {
			var r int
			switch verb {
			case "start":
				r = cmdStart(o, n, "start")
			case "stop":
				r = cmdStop(o, n, "stop")
			case "restart", "reload-or-restart", "force-reload":
				r = cmdRestart(o, n, "restart")
			default: // try-restart, condrestart: only if running
				if s := activeState(o.root, n); s == "active" || s == "activating" {
					r = cmdRestart(o, n, "try-restart")
				}
			}
			if r != 0 && rc == 0 {
				rc = r
			}
		}
		return rc
	case "is-active", "is-failed":
		if !needNames() {
			return 1
		}
		rc := 3
		if verb == "is-failed" {
			rc = 1
		}
		for _, n := range full {
			s := activeState(o.root, n)
			if !o.quiet {
				fmt.Fprintln(stdout, s)
			}
			if (verb == "is-active" && (s == "active" || s == "reloading")) || (verb == "is-failed" && s == "failed") {
				rc = 0
			}
		}
		return rc
	case "is-enabled":
		if !needNames() {
			return 1
		}
		return cmdIsEnabled(o, full)
	case "enable", "disable", "reenable":
		if !needNames() {
			return 1
		}
		rc := 0
		for _, n := range full {
			var r int
			if verb != "enable" {
				r = cmdDisable(o, n)
			}
			if verb != "disable" && r == 0 {
				r = cmdEnable(o, n)
			}
			if r == 0 && o.now {
				if verb == "disable" {
					r = cmdStop(o, n, "stop")
				} else {
					r = cmdStart(o, n, "start")
				}
			}
			if r != 0 && rc == 0 {
				rc = r
			}
		}
		return rc
	case "status":
		if !needNames() {
			return 1
		}
		rc := 0
		for i, n := range full {
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			if r := cmdStatus(o, n); r > rc {
				rc = r
			}
		}
		return rc
	case "show":
		if !needNames() {
			return 1
		}
		for i, n := range full {
			if i > 0 && !o.value {
				fmt.Fprintln(stdout)
			}
			cmdShow(o, n)
		}
		return 0
	case "cat":
		if !needNames() {
			return 1
		}
		rc := 0
		for i, n := range full {
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			if r := cmdCat(o, n); r != 0 {
				rc = r
			}
		}
		return rc
	case "reset-failed":
		if len(full) == 0 {
			m, _ := filepath.Glob(filepath.Join(stateDir(o.root), "*.failed"))
			for _, f := range m {
				os.Remove(f)
			}
			return 0
		}
		for _, n := range full {
			os.Remove(statePath(o.root, n, "failed"))
		}
		return 0
	default:
		fmt.Fprintf(stderr, "Unknown command verb '%s' (this is the test harness's systemctl stand-in).\n", verb)
		return 1
	}
}

// ---- state files ----

func stateDir(root string) string { return filepath.Join(root, stateDirRel) }
func logDir(root string) string   { return filepath.Join(root, logDirRel) }

func statePath(root, name, ext string) string {
	return filepath.Join(stateDir(root), shortName(name)+"."+ext)
}

func logPath(root, name string) string {
	return filepath.Join(logDir(root), shortName(name)+".log")
}

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// writeFileAtomic writes data to path through a rename.
func writeFileAtomic(path, data string) error {
	tmp := path + ".tmp" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// procStat returns state, ppid and pgrp of pid from /proc/PID/stat.
func procStat(pid int) (state byte, ppid, pgrp int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, 0, 0, false
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 3 {
		return 0, 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	pgrp, _ = strconv.Atoi(f[2])
	return f[0][0], ppid, pgrp, true
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	st, _, _, ok := procStat(pid)
	return ok && st != 'Z' && st != 'X'
}

// supervisorAlive reports whether pid is a live supervisor for name in root
// (checked on its command line, so a stale pid file cannot fool it).
func supervisorAlive(pid int, root, name string) bool {
	if !processAlive(pid) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	a := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	return len(a) == 5 && a[1] == superviseVerb && a[2] == "--root" && a[3] == root && a[4] == name
}

// activeState is what is-active prints.
func activeState(root, name string) string {
	if supervisorAlive(readPid(statePath(root, name, "pid")), root, name) {
		b, _ := os.ReadFile(statePath(root, name, "state"))
		switch strings.TrimSpace(string(b)) {
		case "auto-restart", "start":
			return "activating"
		case "stop-sigterm", "stop-sigkill", "stop":
			return "deactivating"
		default:
			return "active"
		}
	}
	if _, err := os.Stat(statePath(root, name, "failed")); err == nil {
		return "failed"
	}
	return "inactive"
}

// lock takes an exclusive lock for start/stop of name.
func lock(root, name string) (func(), error) {
	if err := os.MkdirAll(stateDir(root), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(statePath(root, name, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// ---- start / stop ----

func cmdRestart(o *opts, name, verb string) int {
	if rc := cmdStop(o, name, verb); rc != 0 && rc != 5 {
		return rc
	}
	return cmdStart(o, name, verb)
}

func cmdStart(o *opts, name, verb string) int {
	unlock, err := lock(o.root, name)
	if err != nil {
		fmt.Fprintf(o.stderr, "Failed to %s %s: %v\n", verb, name, err)
		return 1
	}
	defer unlock()
	if supervisorAlive(readPid(statePath(o.root, name, "pid")), o.root, name) {
		return 0
	}
	u, err := loadUnit(o.root, name)
	if errors.Is(err, errNotFound) {
		fmt.Fprintf(o.stderr, "Failed to %s %s: Unit %s not found.\n", verb, name, name)
		return 5
	}
	if err == nil {
		_, err = u.Command(o.root) // the supervisor does it again; this gives a clear error here
	}
	if err != nil {
		fmt.Fprintf(o.stderr, "Job for %s failed: %v\n", name, err)
		return 1
	}
	for _, w := range u.Warnings {
		fmt.Fprintf(o.stderr, "Warning: %s\n", w)
	}
	if err := os.MkdirAll(logDir(o.root), 0o755); err != nil {
		fmt.Fprintf(o.stderr, "Failed to %s %s: %v\n", verb, name, err)
		return 1
	}
	logf, err := os.OpenFile(logPath(o.root, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintf(o.stderr, "Failed to %s %s: %v\n", verb, name, err)
		return 1
	}
	defer logf.Close()
	os.Remove(statePath(o.root, name, "failed"))
	pr, pw, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(o.stderr, "Failed to %s %s: %v\n", verb, name, err)
		return 1
	}
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{"systemctl", superviseVerb, "--root", o.root, name},
		Env:        os.Environ(),
		Dir:        "/",
		Stdout:     logf,
		Stderr:     logf,
		ExtraFiles: []*os.File{pw},
		SysProcAttr: &syscall.SysProcAttr{
			Setsid: true, // leave the caller's session
		},
	}
	if err := cmd.Start(); err != nil {
		pw.Close()
		pr.Close()
		fmt.Fprintf(o.stderr, "Failed to %s %s: %v\n", verb, name, err)
		return 1
	}
	pw.Close()
	supPid := cmd.Process.Pid
	cmd.Process.Release() // it outlives us; whoever reaps orphans reaps it

	type reply struct {
		line string
		err  error
	}
	ch := make(chan reply, 1)
	go func() {
		line, err := bufio.NewReader(pr).ReadString('\n')
		ch <- reply{strings.TrimSpace(line), err}
	}()
	var r reply
	select {
	case r = <-ch:
	case <-time.After(30 * time.Second):
		r = reply{"", fmt.Errorf("timed out waiting for the supervisor (pid %d)", supPid)}
	}
	pr.Close()
	switch {
	case strings.HasPrefix(r.line, "ok "):
		return 0
	case strings.HasPrefix(r.line, "err "):
		fmt.Fprintf(o.stderr, "Job for %s failed: %s\nSee %s for details.\n", name, strings.TrimPrefix(r.line, "err "), filepath.Join(logDirRel, shortName(name)+".log"))
	default:
		msg := "the supervisor exited before starting the service"
		if r.err != nil && r.err != io.EOF {
			msg = r.err.Error()
		}
		fmt.Fprintf(o.stderr, "Job for %s failed: %s\n%s", name, msg, tail(logPath(o.root, name), 10))
	}
	return 1
}

func cmdStop(o *opts, name, verb string) int {
	unlock, err := lock(o.root, name)
	if err != nil {
		fmt.Fprintf(o.stderr, "Failed to %s %s: %v\n", verb, name, err)
		return 1
	}
	defer unlock()
	defer func() {
		for _, ext := range []string{"pid", "main", "state"} {
			os.Remove(statePath(o.root, name, ext))
		}
	}()
	u, uerr := loadUnit(o.root, name)
	timeout := defaultTimeoutStopSec
	if uerr == nil {
		timeout = u.TimeoutStopSec
	}
	// Like systemd, a failed unit stays failed through stop (start or
	// reset-failed clears it).
	sup := readPid(statePath(o.root, name, "pid"))
	if !supervisorAlive(sup, o.root, name) {
		// A supervisor killed from outside may leave its service behind.
		if m := readPid(statePath(o.root, name, "main")); processAlive(m) {
			if _, _, pg, ok := procStat(m); ok && pg == m {
				unix.Kill(-m, unix.SIGKILL)
			}
		}
		if errors.Is(uerr, errNotFound) {
			fmt.Fprintf(o.stderr, "Failed to %s %s: Unit %s not loaded.\n", verb, name, name)
			return 5
		}
		return 0
	}
	unix.Kill(sup, unix.SIGTERM)
	deadline := time.Now().Add(timeout + 5*time.Second)
	for time.Now().Before(deadline) {
		if !supervisorAlive(sup, o.root, name) {
			return 0
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Fprintf(o.stderr, "Warning: supervisor of %s (pid %d) did not stop; killing it\n", name, sup)
	if m := readPid(statePath(o.root, name, "main")); m > 0 {
		unix.Kill(-m, unix.SIGKILL)
	}
	unix.Kill(sup, unix.SIGKILL)
	return 0
}

// ---- the supervisor ----

type supervisor struct {
	root, name string
	sigs       chan os.Signal
	mainPid    int
	mainStatus *unix.WaitStatus
	stopReq    bool
}

func (s *supervisor) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s systemctl-standin[%d]: %s: %s\n",
		time.Now().Format("2006-01-02T15:04:05.000"), os.Getpid(), s.name, fmt.Sprintf(format, args...))
}

func (s *supervisor) setState(st string) {
	writeFileAtomic(statePath(s.root, s.name, "state"), st+"\n")
}

// moveToRootCgroups moves this process into the root cgroup of every
// hierarchy mounted under base: base itself on a pure cgroup v2 system,
// else each base/<controller> (v1) and base/unified (v2 in hybrid mode).
// Errors are ignored: a hierarchy it cannot write is left as it is.
func moveToRootCgroups(base string) []string {
	if base == "none" {
		return nil
	}
	pid := []byte(strconv.Itoa(os.Getpid()))
	write := func(p string) bool {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return false
		}
		_, err = f.Write(pid)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err == nil
	}
	var moved []string
	_, err := os.Stat(filepath.Join(base, "cgroup.procs"))
	unifiedRoot := err == nil
	if unifiedRoot {
		if write(filepath.Join(base, "cgroup.procs")) {
			moved = append(moved, base)
		}
		if os.Getenv("SYSTEMCTL_IN_MANAGER") == "" {
			return moved
		}
	}
	// cgroup v1 hierarchies, also beside a unified root (hybrid): a caller
	// in a pod (convert's node Job) sits in the pod's cgroup of each, and
	// the runtime kills what is left there when the pod's container ends.
	var baseDev uint64
	var st unix.Stat_t
	if unix.Stat(base, &st) == nil {
		baseDev = st.Dev
	}
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		// Only hierarchies mounted there, not child cgroups of a unified root.
		if unifiedRoot && (unix.Stat(filepath.Join(base, e.Name()), &st) != nil || st.Dev == baseDev) {
			continue
		}
		p := filepath.Join(base, e.Name(), "cgroup.procs")
		if _, err := os.Stat(p); err == nil && write(p) {
			moved = append(moved, e.Name())
		}
	}
	return moved
}

// descendants returns the live (non-zombie) processes below this one.
func descendants() []int {
	self := os.Getpid()
	children := map[int][]int{}
	live := map[int]bool{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, ppid, _, ok := procStat(pid)
		if !ok {
			continue
		}
		children[ppid] = append(children[ppid], pid)
		live[pid] = st != 'Z' && st != 'X'
	}
	var out []int
	queue := []int{self}
	seen := map[int]bool{self: true}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if seen[c] {
				continue
			}
			seen[c] = true
			queue = append(queue, c)
			if live[c] {
				out = append(out, c)
			}
		}
	}
	return out
}

// reap collects every exited child; it records the main process's status.
func (s *supervisor) reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		if pid == s.mainPid && s.mainStatus == nil {
			w := ws
			s.mainStatus = &w
		}
	}
}

// wait reaps and handles signals until cond is true or the time is up. It
// wakes on every signal (SIGCHLD included) and also polls every poll, for
// conditions no signal announces (a grandchild reaped by its own parent).
func (s *supervisor) wait(d, poll time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		s.reap()
		if cond() {
			return true
		}
		select {
		case sig := <-s.sigs:
			if sig == unix.SIGTERM || sig == unix.SIGINT {
				s.stopReq = true
			}
		case <-tick.C:
		case <-deadline.C:
			s.reap()
			return cond()
		}
	}
}

func (s *supervisor) mainGone() bool { return s.mainPid == 0 || s.mainStatus != nil }

// kill stops the service's processes per KillMode: SIGTERM (and SIGCONT),
// up to timeout for them to go, then SIGKILL.
func (s *supervisor) kill(u *Unit) {
	signalAll := func(sig unix.Signal) {
		if s.mainPid > 0 && !s.mainGone() {
			unix.Kill(-s.mainPid, sig)
		}
		for _, p := range descendants() {
			unix.Kill(p, sig)
		}
	}
	signalMain := func(sig unix.Signal) {
		if s.mainPid > 0 && !s.mainGone() {
			unix.Kill(s.mainPid, sig)
		}
	}
	allGone := func() bool { return s.mainGone() && len(descendants()) == 0 }
	switch u.KillMode {
	case "none":
		return
	case "process":
		signalMain(unix.SIGTERM)
		signalMain(unix.SIGCONT)
		if !s.wait(u.TimeoutStopSec, stopPoll, s.mainGone) {
			s.logf("State 'stop-sigterm' timed out. Killing.")
			s.setState("stop-sigkill")
			signalMain(unix.SIGKILL)
			s.wait(5*time.Second, stopPoll, s.mainGone)
		}
		return
	case "mixed":
		signalMain(unix.SIGTERM)
		signalMain(unix.SIGCONT)
	default: // control-group
		signalAll(unix.SIGTERM)
		signalAll(unix.SIGCONT)
	}
	if !s.wait(u.TimeoutStopSec, stopPoll, allGone) {
		s.logf("State 'stop-sigterm' timed out. Killing.")
		s.setState("stop-sigkill")
		signalAll(unix.SIGKILL)
		s.wait(5*time.Second, stopPoll, allGone)
	}
}

// startMain forks and execs the service.
func (s *supervisor) startMain(c *Command) (int, error) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	attr := &syscall.ProcAttr{
		Dir:   c.Dir,
		Env:   c.Env,
		Files: []uintptr{devnull.Fd(), os.Stdout.Fd(), os.Stderr.Fd()},
		Sys: &syscall.SysProcAttr{
			Setpgid:   true,            // its own process group, for stop
			Pdeathsig: syscall.SIGTERM, // if the supervisor is killed, so is the service
		},
	}
	return syscall.ForkExec(c.Path, c.Argv, attr)
}

// shouldRestart applies Restart= to how the main process ended.
func shouldRestart(policy string, clean, signaled bool) bool {
	switch policy {
	case "always":
		return true
	case "on-success":
		return clean
	case "on-failure":
		return !clean
	case "on-abnormal", "on-abort":
		return !clean && signaled
	}
	return false
}

func supervise(root, name string) int {
	s := &supervisor{root: root, name: name, sigs: make(chan os.Signal, 32)}
	signal.Notify(s.sigs, unix.SIGTERM, unix.SIGINT, unix.SIGCHLD, unix.SIGHUP, unix.SIGPIPE)
	ready := os.NewFile(3, "ready")
	report := func(msg string) {
		if ready != nil {
			fmt.Fprintln(ready, msg)
			ready.Close()
			ready = nil
		}
	}
	cgroupRoot := os.Getenv("SYSTEMCTL_CGROUP_ROOT")
	if cgroupRoot == "" {
		cgroupRoot = "/sys/fs/cgroup"
	}
	moved := moveToRootCgroups(cgroupRoot)
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		s.logf("cannot become a child subreaper: %v", err)
	}
	pidFile := statePath(root, name, "pid")
	cleanup := func() {
		os.Remove(statePath(root, name, "main"))
		os.Remove(statePath(root, name, "state"))
		if readPid(pidFile) == os.Getpid() {
			os.Remove(pidFile)
		}
	}
	s.setState("start")
	if err := writeFileAtomic(pidFile, strconv.Itoa(os.Getpid())+"\n"); err != nil {
		report("err " + err.Error())
		return 1
	}
	s.logf("supervisor started (session %d, root cgroup in: %s)", os.Getpid(), strings.Join(moved, ","))

	var starts []time.Time
	first := true
	for {
		u, err := loadUnit(root, name)
		var c *Command
		if err == nil {
			c, err = u.Command(root)
		}
		if err == nil {
			for _, w := range u.Warnings {
				s.logf("warning: %s", w)
			}
		}
		now := time.Now()
		if u.StartLimitIval > 0 && u.StartLimitBurst > 0 {
			kept := starts[:0]
			for _, t := range starts {
				if now.Sub(t) < u.StartLimitIval {
					kept = append(kept, t)
				}
			}
			starts = kept
			if len(starts) >= u.StartLimitBurst {
				s.logf("Start request repeated too quickly.")
				s.logf("Failed with result 'start-limit-hit'.")
				writeFileAtomic(statePath(root, name, "failed"), "start-limit-hit\n")
				cleanup()
				return 1
			}
		}
		s.mainPid, s.mainStatus = 0, nil
		starts = append(starts, now)
		if err == nil {
			s.mainPid, err = s.startMain(c)
		}
		clean, signaled := false, false
		if err != nil {
			s.logf("failed to start: %v", err)
			if first {
				report("err " + err.Error())
				cleanup()
				return 1
			}
		} else {
			writeFileAtomic(statePath(root, name, "main"), strconv.Itoa(s.mainPid)+"\n")
			s.setState("running")
			s.logf("Started: main PID %d: %s", s.mainPid, strings.Join(c.Argv, " "))
			report("ok " + strconv.Itoa(s.mainPid))
			first = false

			s.wait(1<<62, time.Second, func() bool { return s.mainGone() || s.stopReq })
			if s.stopReq {
				s.setState("stop-sigterm")
				s.logf("Stopping.")
				s.kill(u)
				s.logf("Stopped.")
				cleanup()
				return 0
			}
			ws := *s.mainStatus
			os.Remove(statePath(root, name, "main"))
			switch {
			case ws.Exited():
				clean = ws.ExitStatus() == 0 || c.IgnoreFailure
				s.logf("Main process exited, code=exited, status=%d", ws.ExitStatus())
			case ws.Signaled():
				signaled = true
				switch ws.Signal() {
				case unix.SIGHUP, unix.SIGINT, unix.SIGTERM, unix.SIGPIPE:
					clean = true
				}
				s.logf("Main process exited, code=killed, status=%d/%s", int(ws.Signal()), unix.SignalName(ws.Signal()))
			}
			// As systemd does when the main process is gone: stop the rest.
			s.setState("stop-sigterm")
			s.kill(u)
		}
		if s.stopReq {
			cleanup()
			return 0
		}
		if !shouldRestart(u.Restart, clean, signaled) {
			if !clean {
				result := "exit-code"
				if signaled {
					result = "signal"
				}
				if err != nil {
					result = "resources"
				}
				s.logf("Failed with result '%s'.", result)
				writeFileAtomic(statePath(root, name, "failed"), result+"\n")
			} else {
				s.logf("Deactivated successfully.")
			}
			cleanup()
			if clean {
				return 0
			}
			return 1
		}
		delay := u.RestartSec
		if delay < minRestartGap {
			delay = minRestartGap
		}
		s.setState("auto-restart")
		s.logf("Scheduled restart in %v.", delay)
		if s.wait(delay, time.Second, func() bool { return s.stopReq }) {
			s.logf("Stopped (was waiting to restart).")
			cleanup()
			return 0
		}
	}
}

// ---- enable / disable / is-enabled ----

// enableLinks returns the existing enable links for name (paths inside root).
func enableLinks(root, name string) []string {
	var out []string
	for _, pat := range []string{"*.wants", "*.requires"} {
		m, _ := filepath.Glob(filepath.Join(root, "/etc/systemd/system", pat, name))
		for _, p := range m {
			if _, err := os.Lstat(p); err == nil {
				rel, _ := filepath.Rel(root, p)
				out = append(out, "/"+rel)
			}
		}
	}
	sort.Strings(out)
	return out
}

func cmdEnable(o *opts, name string) int {
	u, err := loadUnit(o.root, name)
	if errors.Is(err, errNotFound) {
		fmt.Fprintf(o.stderr, "Failed to enable unit: Unit file %s does not exist.\n", name)
		return 1
	}
	if err != nil {
		fmt.Fprintf(o.stderr, "Failed to enable unit: %v\n", err)
		return 1
	}
	if u.Masked {
		fmt.Fprintf(o.stderr, "Failed to enable unit: Unit file %s is masked.\n", u.Path)
		return 1
	}
	if len(u.WantedBy) == 0 && len(u.RequiredBy) == 0 {
		fmt.Fprintf(o.stderr, "The unit files have no installation config (WantedBy=, RequiredBy=, Also=,\n"+
			"Alias= settings in the [Install] section, and DefaultInstance= for template\n"+
			"units). This means they are not meant to be enabled or disabled using systemctl.\n")
		return 0
	}
	var targets []string
	for _, t := range u.WantedBy {
		targets = append(targets, t+".wants")
	}
	for _, t := range u.RequiredBy {
		targets = append(targets, t+".requires")
	}
	for _, t := range targets {
		link := filepath.Join("/etc/systemd/system", t, name)
		abs := filepath.Join(o.root, link)
		if _, err := os.Lstat(abs); err == nil {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
			fmt.Fprintf(o.stderr, "Failed to enable unit: %v\n", err)
			return 1
		}
		if err := os.Symlink(u.Path, abs); err != nil {
			fmt.Fprintf(o.stderr, "Failed to enable unit: %v\n", err)
			return 1
		}
		fmt.Fprintf(o.stderr, "Created symlink %s → %s.\n", link, u.Path)
	}
	return 0
}

func cmdDisable(o *opts, name string) int {
	for _, l := range enableLinks(o.root, name) {
		if err := os.Remove(filepath.Join(o.root, l)); err != nil {
			fmt.Fprintf(o.stderr, "Failed to disable unit: %v\n", err)
			return 1
		}
		fmt.Fprintf(o.stderr, "Removed \"%s\".\n", l)
	}
	return 0
}

// unitFileState is what is-enabled prints for a loaded unit.
func unitFileState(root string, u *Unit) string {
	switch {
	case u.Masked:
		return "masked"
	case len(enableLinks(root, u.Name)) > 0:
		return "enabled"
	case len(u.WantedBy) == 0 && len(u.RequiredBy) == 0:
		return "static"
	}
	return "disabled"
}

func cmdIsEnabled(o *opts, names []string) int {
	rc := 1
	for _, n := range names {
		u, err := loadUnit(o.root, n)
		if err != nil {
			fmt.Fprintf(o.stderr, "Failed to get unit file state for %s: No such file or directory\n", n)
			continue
		}
		s := unitFileState(o.root, u)
		if !o.quiet {
			fmt.Fprintln(o.stdout, s)
		}
		if s == "enabled" || s == "static" {
			rc = 0
		}
	}
	return rc
}

// ---- status / show / cat ----

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	if n <= 0 {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const chunk = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > chunk {
		f.Seek(st.Size()-chunk, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

func cmdStatus(o *opts, name string) int {
	u, err := loadUnit(o.root, name)
	state := activeState(o.root, name)
	found := err == nil
	if !found && state == "inactive" {
		fmt.Fprintf(o.stderr, "Unit %s could not be found.\n", name)
		return 4
	}
	w := o.stdout
	bullet := map[string]string{"active": "●", "failed": "×"}[state]
	if bullet == "" {
		bullet = "○"
	}
	desc := ""
	if found && u.Description != "" {
		desc = " - " + u.Description
	}
	fmt.Fprintf(w, "%s %s%s\n", bullet, name, desc)
	switch {
	case !found:
		fmt.Fprintf(w, "     Loaded: not-found (Reason: Unit %s not found.)\n", name)
	case u.Masked:
		fmt.Fprintf(w, "     Loaded: masked (Reason: Unit %s is masked.)\n", name)
	default:
		fmt.Fprintf(w, "     Loaded: loaded (%s; %s; preset: enabled)\n", u.Path, unitFileState(o.root, u))
		lastDir := ""
		label := "    Drop-In: "
		for _, d := range u.DropIns {
			dir, file := filepath.Dir(d), filepath.Base(d)
			if dir != lastDir {
				fmt.Fprintf(w, "%s%s\n", label, dir)
				label = "             "
				lastDir = dir
			}
			fmt.Fprintf(w, "             └─%s\n", file)
		}
	}
	since := ""
	if st, err := os.Stat(statePath(o.root, name, "state")); err == nil && state != "inactive" && state != "failed" {
		since = " since " + st.ModTime().Format("Mon 2006-01-02 15:04:05 MST")
	}
	sub := map[string]string{"active": "running", "activating": "auto-restart", "deactivating": "stop-sigterm", "inactive": "dead", "failed": "failed"}[state]
	if state == "failed" {
		b, _ := os.ReadFile(statePath(o.root, name, "failed"))
		sub = "Result: " + strings.TrimSpace(string(b))
	}
	fmt.Fprintf(w, "     Active: %s (%s)%s\n", state, sub, since)
	if m := readPid(statePath(o.root, name, "main")); m > 0 && state != "inactive" && state != "failed" {
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(m) + "/comm")
		fmt.Fprintf(w, "   Main PID: %d (%s)\n", m, strings.TrimSpace(string(comm)))
	}
	if sup := readPid(statePath(o.root, name, "pid")); sup > 0 && state != "inactive" && state != "failed" {
		fmt.Fprintf(w, " Supervisor: %d (systemctl stand-in)\n", sup)
	}
	fmt.Fprintf(w, "        Log: %s\n", filepath.Join(logDirRel, shortName(name)+".log"))
	if t := tail(logPath(o.root, name), o.lines); t != "" {
		fmt.Fprintf(w, "\n%s", t)
	}
	if state == "active" {
		return 0
	}
	return 3
}

func cmdShow(o *opts, name string) {
	u, err := loadUnit(o.root, name)
	state := activeState(o.root, name)
	load := "loaded"
	if err != nil {
		load = "not-found"
	} else if u.Masked {
		load = "masked"
	}
	sub := map[string]string{"active": "running", "activating": "auto-restart", "deactivating": "stop-sigterm", "inactive": "dead", "failed": "failed"}[state]
	mainPid := 0
	if state == "active" || state == "deactivating" {
		mainPid = readPid(statePath(o.root, name, "main"))
	}
	result := "success"
	if b, err := os.ReadFile(statePath(o.root, name, "failed")); err == nil {
		result = strings.TrimSpace(string(b))
	}
	props := [][2]string{
		{"Id", name},
		{"Names", name},
		{"Description", u.Description},
		{"LoadState", load},
		{"ActiveState", state},
		{"SubState", sub},
		{"Result", result},
		{"MainPID", strconv.Itoa(mainPid)},
		{"ExecMainPID", strconv.Itoa(mainPid)},
		{"FragmentPath", u.Path},
		{"DropInPaths", strings.Join(u.DropIns, " ")},
		{"Restart", u.Restart},
		{"RestartUSec", strconv.FormatInt(u.RestartSec.Microseconds(), 10) + "us"},
		{"KillMode", u.KillMode},
		{"Environment", strings.Join(u.Env, " ")},
	}
	if load == "loaded" {
		props = append(props, [2]string{"UnitFileState", unitFileState(o.root, u)})
		var files []string
		for _, f := range u.EnvFiles {
			files = append(files, fmt.Sprintf("%s (ignore_errors=%s)", f.Path, map[bool]string{true: "yes", false: "no"}[f.Optional]))
		}
		props = append(props, [2]string{"EnvironmentFiles", strings.Join(files, " ")})
		for _, c := range u.ExecStart {
			props = append(props, [2]string{"ExecStart", fmt.Sprintf("{ path=%s ; argv[]=%s ; ignore_errors=%s }",
				c.Path, strings.Join(c.Argv, " "), map[bool]string{true: "yes", false: "no"}[c.IgnoreFailure])})
		}
	}
	want := map[string]bool{}
	for _, p := range o.props {
		want[p] = true
	}
	for _, p := range props {
		if len(want) > 0 && !want[p[0]] {
			continue
		}
		if o.value {
			fmt.Fprintln(o.stdout, p[1])
		} else {
			fmt.Fprintf(o.stdout, "%s=%s\n", p[0], p[1])
		}
	}
}

func cmdCat(o *opts, name string) int {
	u, err := loadUnit(o.root, name)
	if err != nil && u.Path == "" {
		fmt.Fprintf(o.stderr, "No files found for %s.\n", name)
		return 1
	}
	files := append([]string{u.Path}, u.DropIns...)
	for i, f := range files {
		if i > 0 {
			fmt.Fprintln(o.stdout)
		}
		fmt.Fprintf(o.stdout, "# %s\n", f)
		b, _ := os.ReadFile(filepath.Join(o.root, f))
		o.stdout.Write(b)
		if len(b) > 0 && b[len(b)-1] != '\n' {
			fmt.Fprintln(o.stdout)
		}
	}
	return 0
}

// managerPidRel names the process whose namespaces stand for the system
// manager's (systemd is PID 1 and runs every unit in the host's mount,
// network, IPC, UTS, PID and cgroup namespaces, whoever calls systemctl).
// The harness writes its own pid there when a caller may live in other
// namespaces: convert's node Job runs the host's systemctl chrooted into the
// host root but in the pod's mount namespace, where a kubelet started
// directly would mount pod volumes that containerd never sees.
const managerPidRel = "/run/systemctl-standin/manager.pid"

// toManager re-runs this command in the manager's namespaces (with
// nsenter, from this root) when it runs in another mount namespace, as
// real systemctl hands every request to PID 1. handed is false when the
// command should run here.
func toManager(args []string, stdout, stderr io.Writer) (code int, handed bool) {
	if os.Getenv("SYSTEMCTL_ROOT") != "" || os.Getenv("SYSTEMCTL_IN_MANAGER") != "" {
		return 0, false
	}
	b, err := os.ReadFile(managerPidRel)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	theirs, err1 := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid))
	ours, err2 := os.Readlink("/proc/self/ns/mnt")
	if err1 != nil || err2 != nil || theirs == ours {
		return 0, false
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "systemctl stand-in: %v\n", err)
		return 1, true
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		fmt.Fprintf(stderr, "systemctl stand-in: called outside the manager's mount namespace and %v\n", err)
		return 1, true
	}
	// The binary is at the same path in the manager's root (we run chrooted
	// into the host root, or in it).
	cmd := exec.Command(nsenter, append([]string{"-t", strconv.Itoa(pid), "-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w", "--", self}, args...)...)
	cmd.Env = append(os.Environ(), "SYSTEMCTL_IN_MANAGER=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), true
		}
		fmt.Fprintf(stderr, "systemctl stand-in: enter the manager's namespaces: %v\n", err)
		return 1, true
	}
	return 0, true
}
