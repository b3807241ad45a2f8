package reset

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/host"
	"github.com/yurtadm/yurtadm/pkg/host/hosttest"
	"github.com/yurtadm/yurtadm/pkg/workflow"
)

// env is one host under test: a temp root, a fake init system, scripted
// commands and a fake unmounter.
type env struct {
	t    *testing.T
	h    *host.Host
	init *hosttest.Init
	sc   *hosttest.Script
	um   *fakeUnmounter
	euid int
	// confirm answers the prompt; nil uses cmdutil.Confirm, which refuses
	// without a terminal.
	confirm func() error
	asked   int
	// args are added to a test's command line by its setup.
	args   []string
	out    bytes.Buffer
	errOut bytes.Buffer
	// ctx is the command's context (nil: context.Background()).
	ctx context.Context
}

func newEnv(t *testing.T) *env {
	t.Helper()
	removeRetryPause = time.Millisecond
	h, in, sc := hosttest.New(t)
	e := &env{t: t, h: h, init: in, sc: sc}
	e.um = &fakeUnmounter{h: h, fail: map[string]error{}}
	return e
}

func (e *env) run(args ...string) error {
	e.t.Helper()
	e.out.Reset()
	e.errOut.Reset()
	s := cmdutil.IOStreams{In: strings.NewReader(""), Out: &e.out, ErrOut: &e.errOut}
	cmd := newCommand(s, deps{
		newHost:   func(string) *host.Host { return e.h },
		unmounter: e.um,
		confirm: func(ctx context.Context, s cmdutil.IOStreams, q, flag string) error {
			e.asked++
			if e.confirm != nil {
				return e.confirm()
			}
			return cmdutil.Confirm(ctx, s, q, flag)
		},
		geteuid: func() int { return e.euid },
	})
	cmd.SetArgs(args)
	cmd.SetOut(&e.out)
	cmd.SetErr(&e.errOut)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	ctx := e.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	return cmd.ExecuteContext(ctx)
}

// report parses -o json output.
func (e *env) report() jsonReport {
	e.t.Helper()
	var r jsonReport
	if err := json.Unmarshal(e.out.Bytes(), &r); err != nil {
		e.t.Fatalf("stdout is not the JSON report: %v\n%s", err, e.out.String())
	}
	return r
}

func (e *env) exists(p string) bool { return e.h.FS.Exists(p) }

// fakeUnmounter records unmounts and, like the kernel, drops the mount
// from <root>/proc/mounts.
type fakeUnmounter struct {
	h     *host.Host
	calls []string // host paths, in order
	fail  map[string]error
}

func (f *fakeUnmounter) Unmount(target string) error {
	hp := hostPath(f.h.FS, target)
	f.calls = append(f.calls, hp)
	if err := f.fail[hp]; err != nil {
		return err
	}
	b, err := f.h.FS.ReadFile(mountsFile)
	if err != nil {
		return err
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if fs := strings.Fields(l); len(fs) > 1 && unescapeMountPath(fs[1]) == target {
			lines = append(lines[:i], lines[i+1:]...)
			break
		}
	}
	return f.h.FS.WriteFileAtomic(mountsFile, []byte(strings.Join(lines, "\n")), 0o444)
}

const containerdSock = "/run/containerd/containerd.sock"

// crictl returns the command line reset runs against the planted socket.
func crictl(h *host.Host, args ...string) string {
	return "crictl --runtime-endpoint unix://" + h.FS.Path(containerdSock) + " " + strings.Join(args, " ")
}

// mountLine is a /proc/mounts line for a host path below the test root.
func mountLine(h *host.Host, p string) string {
	return "tmpfs " + strings.ReplaceAll(h.FS.Path(p), " ", `\040`) + " tmpfs rw,relatime 0 0"
}

// removedPaths are what a full reset of a joined node must leave absent.
var removedPaths = []string{
	constants.YurthubManifest,
	"/etc/kubernetes/manifests/yurt-extra.yaml",
	constants.YurthubClientCert,
	constants.YurthubServerCert,
	constants.YurthubPKIDir,
	constants.YurthubBootstrapFile,
	constants.YurthubAutonomyDir,
	constants.YurthubDir,
	constants.YurthubCacheDir,
	constants.OpenYurtKubeletConfig,
	constants.JoinStateFile,
	constants.OpenYurtDir,
	constants.KubeletKubeconfig,
	constants.KubeletBootstrapConfig,
	constants.CACertPath,
	constants.KubeletConfigFile,
	constants.KubeletFlagsEnvFile,
	constants.KubeletClientCert,
	constants.KubeletPKIDir,
	"/var/lib/kubelet/pods",
	"/var/lib/kubelet/cpu_manager_state",
	"/etc/yurtadm-extra.conf",
	"/opt/yurt-made/sub",
	"/opt/yurt-made",
}

// keptPaths are unrelated to join and must survive any reset.
var keptPaths = []string{
	"/etc/kubernetes/manifests/kube-apiserver.yaml",
	"/etc/kubernetes/admin.conf",
	"/etc/kubernetes/pki/front-proxy-ca.crt",
	"/etc/cni/net.d/10-flannel.conflist",
	"/etc/systemd/system/kubelet.service.d/20-local.conf",
	"/opt/shared/theirs.txt",
	constants.KubeletDir, // emptied, not removed
}

type plant struct {
	state  string // join state JSON; "" plants none
	noSock bool
}

func stateJSON(dropIn bool) string {
	return fmt.Sprintf(`{"version":1,"files":[%q,%q,%q,%q,%q,%q],"createdDirs":[%q,%q,%q,%q],"dropIn":%v}`,
		constants.YurthubManifest, "/etc/kubernetes/manifests/yurt-extra.yaml", constants.KubeletKubeconfig,
		constants.KubeletDropInFile, "/etc/yurtadm-extra.conf", constants.YurthubBootstrapFile,
		"/opt/yurt-made", "/opt/yurt-made/sub", "/opt/shared", constants.OpenYurtDir, dropIn)
}

// plantJoined writes the tree a joined edge node has, plus unrelated files.
func plantJoined(t *testing.T, e *env, p plant) {
	t.Helper()
	for _, f := range []string{
		constants.YurthubManifest, "/etc/kubernetes/manifests/yurt-extra.yaml",
		constants.YurthubClientCert, constants.YurthubServerCert, "/var/lib/yurthub/pki/ca.crt",
		constants.YurthubBootstrapFile, constants.YurthubAutonomyDir + "/node.json",
		constants.YurthubCacheDir + "/kubelet/pods/kube-system/coredns-1",
		constants.OpenYurtKubeletConfig,
		constants.KubeletKubeconfig, constants.KubeletBootstrapConfig, constants.CACertPath,
		constants.KubeletConfigFile, constants.KubeletFlagsEnvFile, constants.KubeletClientCert,
		"/var/lib/kubelet/pods/p1/volumes/kubernetes.io~secret/token/data",
		"/var/lib/kubelet/cpu_manager_state",
		constants.KubeletDropInFile,
		"/etc/yurtadm-extra.conf",
	} {
		hosttest.WriteFile(t, e.h, f, "joined "+f)
	}
	for _, f := range keptPaths {
		if f != constants.KubeletDir {
			hosttest.WriteFile(t, e.h, f, "unrelated "+f)
		}
	}
	for _, d := range []string{"/opt/yurt-made/sub"} {
		if err := e.h.FS.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if p.state != "" {
		hosttest.WriteFile(t, e.h, constants.JoinStateFile, p.state)
	}
	mounts := []string{
		"/dev/sda1 / ext4 rw 0 0",
		mountLine(e.h, "/var/lib/kubelet/pods/p1/volumes/kubernetes.io~secret/token"),
		mountLine(e.h, "/var/lib/kubelet/pods/p1/volumes/kubernetes.io~projected/kube-api-access"),
		"tmpfs /var/lib/kubelet/pods/outside-the-root tmpfs rw 0 0",
	}
	hosttest.WriteFile(t, e.h, mountsFile, strings.Join(mounts, "\n")+"\n")
	if !p.noSock {
		hosttest.WriteFile(t, e.h, containerdSock, "")
		e.sc.Answers[crictl(e.h, "pods", "-q")] = hosttest.Answer{Out: "aaa\nbbb\n"}
		e.sc.Answers[crictl(e.h, "--timeout", "1m", "rmp", "-a", "-f")] = hosttest.Answer{}
	}
	e.init.Active = map[string]bool{constants.KubeletService: true}
}

func findStep(t *testing.T, r jsonReport, phase, name string) step {
	t.Helper()
	for _, s := range r.Steps {
		if s.Phase == phase && s.Name == name {
			return s
		}
	}
	t.Fatalf("no step %q in phase %q; steps: %+v", name, phase, r.Steps)
	return step{}
}

func TestResetJoinedNode(t *testing.T) {
	dropIn := constants.KubeletDropInFile
	tests := []struct {
		name        string
		state       string
		wantCalls   []string
		dropInKept  bool
		dropInStep  status
		dropInWords string
	}{
		{
			name:       "join state says join wrote the drop-in: it goes and units are reloaded",
			state:      stateJSON(true),
			wantCalls:  []string{"stop kubelet", "daemon-reload"},
			dropInStep: statusDone, dropInWords: "removed " + dropIn,
		},
		{
			name:       "join state says join did not write the drop-in: it stays",
			state:      stateJSON(false),
			wantCalls:  []string{"stop kubelet"},
			dropInKept: true, dropInStep: statusSkipped, dropInWords: "yurtadm join did not write it",
		},
		{
			name:       "no join state: well-known paths go, the drop-in stays",
			wantCalls:  []string{"stop kubelet"},
			dropInKept: true, dropInStep: statusSkipped, dropInWords: "there is no join state",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			plantJoined(t, e, plant{state: tc.state})
			if err := e.run("--force", "-o", "json"); err != nil {
				t.Fatalf("reset failed: %v\nstderr:\n%s", err, e.errOut.String())
			}
			want := removedPaths
			if tc.state == "" {
				// Without a state, reset cannot know of these.
				want = slices.DeleteFunc(slices.Clone(removedPaths), func(p string) bool {
					return p == "/etc/kubernetes/manifests/yurt-extra.yaml" || p == "/etc/yurtadm-extra.conf" ||
						strings.HasPrefix(p, "/opt/yurt-made")
				})
			}
			for _, p := range want {
				if e.exists(p) {
					t.Errorf("%s survived the reset", p)
				}
			}
			for _, p := range keptPaths {
				if !e.exists(p) {
					t.Errorf("%s was removed, but it is not join's", p)
				}
			}
			if entries, _ := e.h.FS.ReadDir(constants.KubeletDir); len(entries) != 0 {
				t.Errorf("%s still holds %d entries", constants.KubeletDir, len(entries))
			}
			if got := e.exists(dropIn); got != tc.dropInKept {
				t.Errorf("drop-in exists = %v, want %v", got, tc.dropInKept)
			}
			if got := e.init.CallLog(); !slices.Equal(got, tc.wantCalls) {
				t.Errorf("init system calls = %q, want %q", got, tc.wantCalls)
			}
			if want := []string{crictl(e.h, "pods", "-q"), crictl(e.h, "--timeout", "1m", "rmp", "-a", "-f")}; !slices.Equal(e.sc.Ran, want) {
				t.Errorf("commands = %q, want %q", e.sc.Ran, want)
			}
			r := e.report()
			st := findStep(t, r, PhaseRemoveFiles+"/"+SubphaseKubeletDropIn, "remove "+dropIn)
			if st.Status != tc.dropInStep || !strings.Contains(st.Detail, tc.dropInWords) {
				t.Errorf("drop-in step = %+v, want %s with %q", st, tc.dropInStep, tc.dropInWords)
			}
			if tc.state == "" {
				if st.Manual == "" {
					t.Error("a kept drop-in without state must come with the command to remove it")
				}
				js := findStep(t, r, PhaseRemoveFiles+"/"+SubphaseJoinFiles, "read join state")
				if js.Status != statusSkipped || !strings.Contains(js.Detail, "only the well-known paths") {
					t.Errorf("join-files step = %+v, want it to say only well-known paths were removed", js)
				}
			}
			if r.Failed || r.Summary[statusFailed] != 0 {
				t.Errorf("report has failures: %+v", r.Steps)
			}
		})
	}
}

func TestResetKeepsCACertOfControlPlane(t *testing.T) {
	e := newEnv(t)
	plantJoined(t, e, plant{state: stateJSON(true)})
	hosttest.WriteFile(t, e.h, "/etc/kubernetes/pki/ca.key", "key")
	if err := e.run("-f"); err != nil {
		t.Fatal(err)
	}
	if !e.exists(constants.CACertPath) {
		t.Errorf("%s was removed on a node that holds the CA key", constants.CACertPath)
	}
	if !strings.Contains(e.errOut.String(), "kept "+constants.CACertPath) {
		t.Errorf("progress does not say the CA was kept:\n%s", e.errOut.String())
	}
}

func TestResetKeepsThePackagesDropIn(t *testing.T) {
	for _, state := range []string{"", stateJSON(false)} {
		e := newEnv(t)
		hosttest.WriteFile(t, e.h, constants.KubeletDropInFileUsr, "from the kubelet package")
		if state != "" {
			hosttest.WriteFile(t, e.h, constants.JoinStateFile, state)
		}
		if err := e.run("-f", "-o", "json"); err != nil {
			t.Fatal(err)
		}
		if !e.exists(constants.KubeletDropInFileUsr) {
			t.Fatal("the kubelet package's drop-in was removed")
		}
		st := findStep(t, e.report(), PhaseRemoveFiles+"/"+SubphaseKubeletDropIn, "remove "+constants.KubeletDropInFileUsr)
		if st.Status != statusSkipped || st.Manual != "" {
			t.Errorf("step = %+v, want kept with no command to remove the package's file", st)
		}
	}
}

func TestResetNothingJoined(t *testing.T) {
	e := newEnv(t)
	if err := e.run("--force", "-o", "json"); err != nil {
		t.Fatalf("reset of an empty root failed: %v", err)
	}
	r := e.report()
	if len(r.Steps) == 0 {
		t.Fatal("no steps reported")
	}
	for _, s := range r.Steps {
		if s.Status != statusSkipped {
			t.Errorf("step %s/%s is %s (%s), want nothing to do", s.Phase, s.Name, s.Status, s.Detail)
		}
	}
	if len(e.init.CallLog()) != 0 || len(e.sc.Ran) != 0 || len(e.um.calls) != 0 {
		t.Errorf("empty root touched the system: init %q, commands %q, unmounts %q", e.init.CallLog(), e.sc.Ran, e.um.calls)
	}
	if got := hosttest.Tree(t, e.h); len(got) != 1 {
		t.Errorf("empty root changed: %q", got)
	}
}

func TestResetFailedStepDoesNotStopTheOthers(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(e *env)
		phase      string
		step       string
		hintWords  string
		stillGone  []string
		stillThere []string
	}{
		{
			name: "crictl fails",
			setup: func(e *env) {
				e.sc.Answers[crictl(e.h, "--timeout", "1m", "rmp", "-a", "-f")] = hosttest.Answer{Out: "rpc error", Err: errors.New("exit status 1")}
			},
			phase: PhaseRemoveContainers, step: "remove pods", hintWords: "rmp -a -f",
			stillGone: []string{constants.YurthubPKIDir, constants.KubeletKubeconfig, constants.OpenYurtDir},
		},
		{
			name:  "stop kubelet fails",
			setup: func(e *env) { e.init.Fail = map[string]error{"stop kubelet": errors.New("unit busy")} },
			phase: PhaseStopKubelet, step: "stop kubelet", hintWords: "systemctl stop kubelet",
			stillGone: []string{constants.YurthubPKIDir, constants.YurthubManifest, constants.OpenYurtDir},
		},
		{
			name: "an unmount fails: the rest of kubelet's dir stays, everything else goes",
			setup: func(e *env) {
				e.um.fail["/var/lib/kubelet/pods/p1/volumes/kubernetes.io~secret/token"] = errors.New("device busy")
			},
			phase: PhaseUnmount, step: "unmount", hintWords: "umount /var/lib/kubelet/pods/p1/volumes/kubernetes.io~secret/token",
			stillGone:  []string{constants.YurthubPKIDir, constants.KubeletConfigFile, constants.OpenYurtDir},
			stillThere: []string{"/var/lib/kubelet/pods/p1/volumes/kubernetes.io~secret/token/data"},
		},
		{
			name:  "the --cri-socket given does not exist",
			setup: func(e *env) { e.args = []string{"--cri-socket", "unix:///run/crio/crio.sock"} },
			phase: PhaseRemoveContainers, step: "remove pods", hintWords: "crictl --runtime-endpoint unix:///run/crio/crio.sock rmp -a -f",
			stillGone: []string{constants.YurthubPKIDir, constants.KubeletKubeconfig, constants.OpenYurtDir},
		},
		{
			name:  "daemon-reload fails",
			setup: func(e *env) { e.init.Fail = map[string]error{"daemon-reload": errors.New("bus down")} },
			phase: PhaseReloadInitSystem, step: "daemon-reload", hintWords: "systemctl daemon-reload",
			stillGone: []string{constants.KubeletDropInFile, constants.YurthubDir},
		},
		{
			name:  "corrupt join state: the drop-in is kept and reset says so",
			setup: func(e *env) { hosttest.WriteFile(e.t, e.h, constants.JoinStateFile, "{not json") },
			phase: PhaseRemoveFiles + "/" + SubphaseKubeletDropIn, step: "remove " + constants.KubeletDropInFile,
			hintWords:  "rm -f " + constants.KubeletDropInFile,
			stillGone:  []string{constants.YurthubDir, constants.KubeletPKIDir, constants.OpenYurtDir},
			stillThere: []string{constants.KubeletDropInFile},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			plantJoined(t, e, plant{state: stateJSON(true)})
			tc.setup(e)
			err := e.run(append([]string{"--force", "-o", "json"}, e.args...)...)
			if code := cmdutil.ExitCode(err); code != cmdutil.ExitError {
				t.Fatalf("exit code = %d (%v), want %d", code, err, cmdutil.ExitError)
			}
			if h := cmdutil.Hint(err); !strings.Contains(h, tc.hintWords) {
				t.Errorf("hint %q does not say %q", h, tc.hintWords)
			}
			r := e.report()
			if st := findStep(t, r, tc.phase, tc.step); st.Status != statusFailed {
				t.Errorf("step %s = %+v, want failed", tc.step, st)
			}
			if !r.Failed {
				t.Error("report does not say it failed")
			}
			// Every phase still ran: the last one reported.
			if r.Steps[len(r.Steps)-1].Phase != PhaseReloadInitSystem {
				t.Errorf("last step is %+v, want the reload-init-system phase", r.Steps[len(r.Steps)-1])
			}
			for _, p := range tc.stillGone {
				if e.exists(p) {
					t.Errorf("%s survived: a failed step stopped the others", p)
				}
			}
			for _, p := range tc.stillThere {
				if !e.exists(p) {
					t.Errorf("%s was removed", p)
				}
			}
		})
	}
}

// A pod kubelet was starting when it stopped refuses removal for a moment
// (seen in CI right after a rejoin): reset retries and succeeds; a
// runtime that keeps refusing fails the step after removeAttempts tries.
func TestResetRetriesPodRemoval(t *testing.T) {
	starting := hosttest.Answer{
		Out: `removing the pod sandbox "72f8": rpc error: code = Unknown desc = failed to remove container "0fdc": container is in starting state, can't be removed`,
		Err: errors.New("exit status 1"),
	}
	for _, tc := range []struct {
		name     string
		rmp      []hosttest.Answer
		pods     []hosttest.Answer
		wantRmp  int
		wantFail bool
	}{
		{name: "second try removes them", rmp: []hosttest.Answer{starting, {}}, wantRmp: 2},
		{name: "the pods went meanwhile", rmp: []hosttest.Answer{starting}, pods: []hosttest.Answer{{Out: "aaa\n"}, {}}, wantRmp: 1},
		{name: "the runtime keeps refusing", rmp: []hosttest.Answer{starting}, wantRmp: removeAttempts, wantFail: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			plantJoined(t, e, plant{state: stateJSON(true)})
			rmp := crictl(e.h, "--timeout", "1m", "rmp", "-a", "-f")
			e.sc.Sequences = map[string][]hosttest.Answer{rmp: tc.rmp}
			if tc.pods != nil {
				e.sc.Sequences[crictl(e.h, "pods", "-q")] = tc.pods
			}
			err := e.run("--force", "-o", "json")
			if got := slices.Index(e.sc.Ran, rmp); got < 0 {
				t.Fatalf("rmp never ran: %q", e.sc.Ran)
			}
			n := 0
			for _, l := range e.sc.Ran {
				if l == rmp {
					n++
				}
			}
			if n != tc.wantRmp {
				t.Errorf("rmp ran %d times, want %d: %q", n, tc.wantRmp, e.sc.Ran)
			}
			st := findStep(t, e.report(), PhaseRemoveContainers, "remove pods")
			if tc.wantFail {
				if cmdutil.ExitCode(err) != cmdutil.ExitError || st.Status != statusFailed || !strings.Contains(st.Detail, "starting state") {
					t.Errorf("exit %d, step %+v: want a failed step naming the runtime's answer", cmdutil.ExitCode(err), st)
				}
				return
			}
			if err != nil || st.Status != statusDone {
				t.Errorf("reset = %v, step %+v: want the pods removed", err, st)
			}
		})
	}
}

func TestResetDryRunChangesNothing(t *testing.T) {
	e := newEnv(t)
	plantJoined(t, e, plant{state: stateJSON(true)})
	before := hosttest.Tree(t, e.h)
	// No --force and no terminal: a dry run needs no confirmation.
	if err := e.run("--dry-run"); err != nil {
		t.Fatalf("dry run failed: %v\n%s", err, e.errOut.String())
	}
	if after := hosttest.Tree(t, e.h); !slices.Equal(before, after) {
		t.Errorf("dry run changed the tree:\nbefore %q\nafter  %q", before, after)
	}
	if len(e.init.CallLog()) != 0 || len(e.um.calls) != 0 || e.asked != 0 {
		t.Errorf("dry run acted: init %q, unmounts %q, prompts %d", e.init.CallLog(), e.um.calls, e.asked)
	}
	if want := []string{crictl(e.h, "pods", "-q")}; !slices.Equal(e.sc.Ran, want) {
		t.Errorf("commands = %q, want only the read-only %q", e.sc.Ran, want)
	}
	for _, line := range []string{
		"[stop-kubelet] would stop kubelet",
		"[remove-containers] would remove 2 pods through unix://" + containerdSock,
		"[unmount] would unmount 2 mounts below /var/lib/kubelet",
		"[remove-files] would remove /var/lib/yurthub/pki (3 files)",
		"[remove-files] would remove " + constants.YurthubManifest,
		"[remove-files] would remove " + constants.KubeletDropInFile,
		"[reload-init-system] would make the init system re-read unit files",
	} {
		if !strings.Contains(e.errOut.String(), line) {
			t.Errorf("dry run output lacks %q:\n%s", line, e.errOut.String())
		}
	}
	if !strings.Contains(e.out.String(), "dry run, nothing was changed") {
		t.Errorf("summary does not say it was a dry run:\n%s", e.out.String())
	}
}

func TestResetAsksFirst(t *testing.T) {
	aborted := &cmdutil.Error{Code: cmdutil.ExitAborted, Err: errors.New("aborted by the user")}
	tests := []struct {
		name     string
		args     []string
		confirm  func() error
		euid     int
		wantCode int
		wantAsk  int
	}{
		{name: "no terminal and no --force", wantCode: cmdutil.ExitUsage, wantAsk: 1},
		{name: "no terminal, one phase", args: []string{"phase", "stop-kubelet"}, wantCode: cmdutil.ExitUsage, wantAsk: 1},
		{name: "no terminal, one file subphase", args: []string{"phase", "remove-files", "yurthub-pki"}, wantCode: cmdutil.ExitUsage, wantAsk: 1},
		{name: "no terminal, preflight skipped", args: []string{"--skip-phases", "preflight"}, wantCode: cmdutil.ExitUsage, wantAsk: 1},
		{name: "the user says no", confirm: func() error { return aborted }, wantCode: cmdutil.ExitAborted, wantAsk: 1},
		{name: "not root", args: []string{"--force"}, euid: 1000, wantCode: cmdutil.ExitPreflight},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.confirm, e.euid = tc.confirm, tc.euid
			plantJoined(t, e, plant{state: stateJSON(true)})
			before := hosttest.Tree(t, e.h)
			err := e.run(tc.args...)
			if code := cmdutil.ExitCode(err); code != tc.wantCode {
				t.Fatalf("exit code = %d (%v), want %d", code, err, tc.wantCode)
			}
			if e.asked != tc.wantAsk {
				t.Errorf("asked %d times, want %d", e.asked, tc.wantAsk)
			}
			if after := hosttest.Tree(t, e.h); !slices.Equal(before, after) {
				t.Error("the host changed without confirmation")
			}
			if len(e.init.CallLog()) != 0 || len(e.sc.Ran) != 0 || len(e.um.calls) != 0 {
				t.Errorf("acted without confirmation: init %q, commands %q, unmounts %q", e.init.CallLog(), e.sc.Ran, e.um.calls)
			}
			if e.out.Len() != 0 {
				t.Errorf("printed a report although nothing ran:\n%s", e.out.String())
			}
		})
	}

	t.Run("the user says yes once for the whole run", func(t *testing.T) {
		e := newEnv(t)
		e.confirm = func() error { return nil }
		plantJoined(t, e, plant{state: stateJSON(true)})
		if err := e.run(); err != nil {
			t.Fatal(err)
		}
		if e.asked != 1 {
			t.Errorf("asked %d times, want 1", e.asked)
		}
		if e.exists(constants.YurthubPKIDir) {
			t.Error("nothing was removed after yes")
		}
	})
}

func TestResetBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"unknown output format", []string{"-o", "yaml"}},
		{"CRI socket over TCP", []string{"--cri-socket", "tcp://10.0.0.1:2376"}},
		{"relative CRI socket", []string{"--cri-socket", "run/containerd/containerd.sock"}},
		{"dockershim", []string{"--cri-socket", "unix:///var/run/dockershim.sock"}},
		{"unknown phase to skip", []string{"--skip-phases", "remove-everything"}},
		{"relative host root", []string{"--host-root", "host"}},
		{"missing host root", []string{"--host-root", "/does/not/exist"}},
		{"bad output on a phase", []string{"phase", "unmount", "-o", "yaml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			plantJoined(t, e, plant{state: stateJSON(true)})
			before := hosttest.Tree(t, e.h)
			// --force: the flag check, not the prompt, must stop it.
			err := e.run(append(tc.args, "--force")...)
			if code := cmdutil.ExitCode(err); code != cmdutil.ExitUsage {
				t.Fatalf("exit code = %d (%v), want %d", code, err, cmdutil.ExitUsage)
			}
			if cmdutil.Hint(err) == "" {
				t.Error("usage error without a hint")
			}
			if after := hosttest.Tree(t, e.h); !slices.Equal(before, after) {
				t.Error("a bad flag changed the host")
			}
			if len(e.init.CallLog()) != 0 || len(e.sc.Ran) != 0 || len(e.um.calls) != 0 {
				t.Errorf("a bad flag acted: init %q, commands %q", e.init.CallLog(), e.sc.Ran)
			}
		})
	}
}

func TestResetUnmountsDeepestFirst(t *testing.T) {
	e := newEnv(t)
	table := []string{
		"/dev/sda1 / ext4 rw 0 0",
		mountLine(e.h, "/var/lib/kubelet"), // kubelet's own directory is not unmounted
		mountLine(e.h, "/var/lib/kubelet/pods/a"),
		mountLine(e.h, "/var/lib/kubelet/pods/a/volumes/kubernetes.io~secret/tok"),
		"tmpfs /var/lib/kubelet/pods/on-the-real-machine tmpfs rw 0 0", // outside the root
		mountLine(e.h, "/var/lib/kubelet/plugins/x"),
		mountLine(e.h, "/var/lib/kubelet/pods/a/volumes/kubernetes.io~csi/v/mount"),
		mountLine(e.h, "/var/lib/kubeletx/other"),
		mountLine(e.h, "/var/lib/kubelet/pods/b c"), // space, escaped as \040
	}
	hosttest.WriteFile(t, e.h, mountsFile, strings.Join(table, "\n")+"\n")
	if err := e.run("phase", "unmount", "--force"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/var/lib/kubelet/pods/a/volumes/kubernetes.io~csi/v/mount",
		"/var/lib/kubelet/pods/a/volumes/kubernetes.io~secret/tok",
		"/var/lib/kubelet/pods/b c",
		"/var/lib/kubelet/plugins/x",
		"/var/lib/kubelet/pods/a",
	}
	if !slices.Equal(e.um.calls, want) {
		t.Errorf("unmounted\n %q\nwant\n %q", e.um.calls, want)
	}
	if !strings.Contains(e.out.String(), "unmounted 5 mounts") {
		t.Errorf("report lacks the unmount step:\n%s", e.out.String())
	}
}

func TestResetPhaseSubcommandsAndSkip(t *testing.T) {
	t.Run("one subphase removes only its files and reports", func(t *testing.T) {
		e := newEnv(t)
		plantJoined(t, e, plant{state: stateJSON(true)})
		if err := e.run("phase", "remove-files", "yurthub-pki", "-f", "-o", "json"); err != nil {
			t.Fatal(err)
		}
		if e.exists(constants.YurthubPKIDir) || !e.exists(constants.YurthubBootstrapFile) || !e.exists(constants.KubeletKubeconfig) {
			t.Error("the yurthub-pki phase removed too little or too much")
		}
		r := e.report()
		if len(r.Steps) != 1 || r.Steps[0].Status != statusDone {
			t.Errorf("report = %+v, want the one pki step done", r.Steps)
		}
	})
	t.Run("a failed step in one phase sets the exit code", func(t *testing.T) {
		e := newEnv(t)
		plantJoined(t, e, plant{state: stateJSON(true)})
		e.init.Fail = map[string]error{"stop kubelet": errors.New("nope")}
		err := e.run("phase", "stop-kubelet", "-f")
		if code := cmdutil.ExitCode(err); code != cmdutil.ExitError {
			t.Errorf("exit code = %d (%v), want %d", code, err, cmdutil.ExitError)
		}
	})
	t.Run("skipped phases do not run", func(t *testing.T) {
		e := newEnv(t)
		plantJoined(t, e, plant{state: stateJSON(true)})
		if err := e.run("-f", "--skip-phases", "remove-containers,remove-files/cache", "-o", "json"); err != nil {
			t.Fatal(err)
		}
		if len(e.sc.Ran) != 0 {
			t.Errorf("crictl ran although remove-containers was skipped: %q", e.sc.Ran)
		}
		if !e.exists(constants.YurthubCacheDir) || e.exists(constants.YurthubDir) {
			t.Error("--skip-phases remove-files/cache did not keep just the cache")
		}
		for _, s := range e.report().Steps {
			if s.Phase == PhaseRemoveContainers || s.Phase == PhaseRemoveFiles+"/"+SubphaseCache {
				t.Errorf("skipped phase reported a step: %+v", s)
			}
		}
	})
}

func TestResetWithoutCrictl(t *testing.T) {
	e := newEnv(t)
	plantJoined(t, e, plant{state: stateJSON(true)})
	e.sc.Path = map[string]bool{} // nothing in PATH
	if err := e.run("-f", "-o", "json"); err != nil {
		t.Fatalf("a missing crictl must not fail the reset: %v", err)
	}
	st := findStep(t, e.report(), PhaseRemoveContainers, "remove pods")
	if st.Status != statusSkipped || !strings.Contains(st.Manual, "rmp -a -f") {
		t.Errorf("step = %+v, want skipped with the manual crictl command", st)
	}
	if len(e.sc.Ran) != 0 {
		t.Errorf("commands ran: %q", e.sc.Ran)
	}
}

func TestResetJSONShape(t *testing.T) {
	e := newEnv(t)
	plantJoined(t, e, plant{state: stateJSON(true)})
	if err := e.run("-f", "-o", "json"); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(e.out.Bytes(), &doc); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, e.out.String())
	}
	for _, k := range []string{"dryRun", "failed", "summary", "steps", "manual", "notCleaned"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("JSON report lacks %q", k)
		}
	}
	sum, _ := doc["summary"].(map[string]any)
	for _, k := range []string{"done", "failed", "skipped", "planned"} {
		if _, ok := sum[k].(float64); !ok {
			t.Errorf("summary lacks the count %q: %v", k, sum)
		}
	}
	steps, _ := doc["steps"].([]any)
	if len(steps) == 0 {
		t.Fatal("no steps")
	}
	for _, s := range steps {
		m := s.(map[string]any)
		for _, k := range []string{"phase", "step", "status", "detail"} {
			if v, _ := m[k].(string); v == "" {
				t.Errorf("step %v lacks %q", m, k)
			}
		}
		switch m["status"] {
		case "done", "failed", "skipped", "planned":
		default:
			t.Errorf("step %v has an unknown status", m)
		}
	}
	var cmds []string
	for _, l := range doc["notCleaned"].([]any) {
		cmds = append(cmds, l.(map[string]any)["command"].(string))
	}
	all := strings.Join(cmds, "\n")
	for _, want := range []string{"/etc/cni/net.d", "iptables -F && iptables -t nat -F && iptables -t mangle -F && iptables -X",
		"ipvsadm --clear", "$HOME/.kube/config"} {
		if !strings.Contains(all, want) {
			t.Errorf("notCleaned lacks %q: %q", want, cmds)
		}
	}
	if strings.Contains(e.out.String(), "[remove-files]") {
		t.Error("progress lines leaked into stdout")
	}
}

func TestResetTextSummary(t *testing.T) {
	e := newEnv(t)
	plantJoined(t, e, plant{})
	if err := e.run("-f"); err != nil {
		t.Fatal(err)
	}
	out := e.out.String()
	for _, want := range []string{
		"reset: ", "STATUS", "removed /var/lib/yurthub/pki (3 files)",
		"Left to do by hand:", "rm -f " + constants.KubeletDropInFile,
		"does not clean", "ipvsadm --clear", "rm -rf /etc/cni/net.d",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text summary lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(e.errOut.String(), "[preflight] no join state") {
		t.Errorf("progress does not say there is no join state:\n%s", e.errOut.String())
	}
}

func TestPhaseNames(t *testing.T) {
	r := workflow.NewRunner()
	for _, p := range phases() {
		r.AppendPhase(p)
	}
	got := r.Names()
	for _, want := range []string{
		"preflight", "stop-kubelet", "remove-containers", "unmount", "remove-files",
		"remove-files/yurthub-manifest", "remove-files/yurthub-pki", "remove-files/yurthub",
		"remove-files/cache", "remove-files/yurthub-logs", "remove-files/kubelet", "remove-files/kubelet-dropin",
		"remove-files/join-files", "remove-files/openyurt", "reload-init-system",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("phase %q missing from %q", want, got)
		}
	}
	// remove-files must run after unmount: removing first would reach into volumes.
	if slices.Index(got, "unmount") > slices.Index(got, "remove-files") {
		t.Error("unmount runs after remove-files")
	}
}

func TestHostPath(t *testing.T) {
	root := t.TempDir()
	fs := host.FS{Root: root}
	if got := hostPath(fs, filepath.Join(root, "var/lib/kubelet/x")); got != "/var/lib/kubelet/x" {
		t.Errorf("hostPath = %q", got)
	}
	if got := hostPath(host.FS{Root: "/"}, "/var/lib/kubelet/x"); got != "/var/lib/kubelet/x" {
		t.Errorf("hostPath with / = %q", got)
	}
}

// reset follows /var/lib/kubelet through a symlink only to remove kubelet's
// own entries: everything else in the target stays and is named; a link
// into a system directory is not cleared at all, nor is anything of ours
// reached through one.
func TestResetDoesNotDeleteThroughSymlinksWhatIsNotOurs(t *testing.T) {
	t.Run("kubelet dir on another disk", func(t *testing.T) {
		e := newEnv(t)
		plantJoined(t, e, plant{state: stateJSON(true)})
		real := e.h.FS.Path("/data/kubelet")
		if err := os.MkdirAll(real, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"pods/p1/x", "cpu_manager_state", "notes.txt", "backup/db.tar"} {
			hosttest.WriteFile(t, e.h, "/data/kubelet/"+f, "x")
		}
		if err := os.RemoveAll(e.h.FS.Path(constants.KubeletDir)); err != nil {
			t.Fatal(err)
		}
		// Relative, so that it resolves below the test's host root.
		if err := os.Symlink("../../data/kubelet", e.h.FS.Path(constants.KubeletDir)); err != nil {
			t.Fatal(err)
		}
		if err := e.run("-f", "-o", "json"); err != nil && cmdutil.ExitCode(err) != cmdutil.ExitError {
			t.Fatal(err)
		}
		for _, f := range []string{"notes.txt", "backup/db.tar"} {
			if !e.exists("/data/kubelet/" + f) {
				t.Errorf("/data/kubelet/%s (not kubelet's) was removed", f)
			}
		}
		for _, f := range []string{"pods", "cpu_manager_state"} {
			if e.exists("/data/kubelet/" + f) {
				t.Errorf("kubelet's /data/kubelet/%s was kept", f)
			}
		}
		st := findStep(t, e.report(), PhaseRemoveFiles+"/"+SubphaseKubelet, "remove the rest of "+constants.KubeletDir)
		if !strings.Contains(st.Detail, "/var/lib/kubelet/notes.txt") || !strings.Contains(st.Detail, "/var/lib/kubelet/backup") {
			t.Errorf("the report does not name the entries it kept: %+v", st)
		}
	})
	t.Run("kubelet dir linked to /etc", func(t *testing.T) {
		e := newEnv(t)
		hosttest.WriteFile(t, e.h, "/etc/passwd", "root:x:0:0")
		hosttest.WriteFile(t, e.h, "/etc/pods/keep", "x")
		if err := os.MkdirAll(filepath.Dir(e.h.FS.Path(constants.KubeletDir)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../../etc", e.h.FS.Path(constants.KubeletDir)); err != nil {
			t.Fatal(err)
		}
		err := e.run("-f", "-o", "json")
		if cmdutil.ExitCode(err) != cmdutil.ExitError {
			t.Errorf("exit %d, want %d (a step could not be done)", cmdutil.ExitCode(err), cmdutil.ExitError)
		}
		for _, f := range []string{"/etc/passwd", "/etc/pods/keep"} {
			if !e.exists(f) {
				t.Errorf("%s removed through /var/lib/kubelet -> /etc", f)
			}
		}
		st := findStep(t, e.report(), PhaseRemoveFiles+"/"+SubphaseKubelet, "remove the rest of "+constants.KubeletDir)
		if st.Status != statusFailed || !strings.Contains(st.Detail, "symlink to the system directory /etc") {
			t.Errorf("step %+v", st)
		}
	})
	t.Run("yurthub dir linked to /etc", func(t *testing.T) {
		e := newEnv(t)
		hosttest.WriteFile(t, e.h, "/etc/pki/ca.crt", "system CA")
		if err := os.MkdirAll(filepath.Dir(e.h.FS.Path(constants.YurthubDir)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../../etc", e.h.FS.Path(constants.YurthubDir)); err != nil {
			t.Fatal(err)
		}
		_ = e.run("-f")
		if !e.exists("/etc/pki/ca.crt") {
			t.Error("/etc/pki/ca.crt removed through /var/lib/yurthub -> /etc")
		}
	})
}

func TestResetRemovesOnlyYurthubsPodLogs(t *testing.T) {
	const uid = "e592e53c40e9cb5eba9ce889bbc61c8d"
	hub := "/var/log/pods/kube-system_yurt-hub-edge-1_" + uid
	hubCloud := "/var/log/pods/kube-system_yurt-hub-cloud-edge-1_0123456789abcdef0123456789abcdef"
	kept := []string{
		"/var/log/pods/kube-system_kube-proxy-x7k2p_054fedf1-5813-419a-a8cc-38188e4ca080/kube-proxy/0.log",
		"/var/log/pods/kube-system_yurt-hub-edge-1-lookalike_054fedf1-5813-419a-a8cc-38188e4ca080/web/0.log", // an API pod: dashed UID
		"/var/log/pods/default_yurt-hub-edge-1_" + uid + "/yurt-hub/0.log",                                   // not kube-system
		"/opt/elsewhere/yurt-hub/0.log",
	}
	for _, dryRun := range []bool{false, true} {
		t.Run(fmt.Sprintf("dry-run=%v", dryRun), func(t *testing.T) {
			e := newEnv(t)
			plantJoined(t, e, plant{state: stateJSON(false)})
			for _, f := range append([]string{hub + "/yurt-hub/1.log", hub + "/yurt-hub/7.log", hubCloud + "/yurt-hub/0.log"}, kept...) {
				hosttest.WriteFile(t, e.h, f, "log")
			}
			link := func(target, name string) {
				if err := os.Symlink(target, e.h.FS.Path(name)); err != nil {
					t.Fatal(err)
				}
			}
			if err := e.h.FS.MkdirAll("/var/log/containers", 0o755); err != nil {
				t.Fatal(err)
			}
			link(hub+"/yurt-hub/7.log", "/var/log/containers/yurt-hub-edge-1_kube-system_yurt-hub-8f6c.log")
			link(kept[0], "/var/log/containers/kube-proxy-x7k2p_kube-system_kube-proxy-1a2b.log")
			// A link named like a yurthub log directory, into what is not ours.
			link("/opt/elsewhere", "/var/log/pods/kube-system_yurt-hub-edge-2_"+uid)
			args := []string{"--force", "-o", "json"}
			if dryRun {
				args = append(args, "--dry-run")
			}
			if err := e.run(args...); err != nil {
				t.Fatalf("reset: %v\n%s", err, e.errOut.String())
			}
			gone := []string{hub, hubCloud, "/var/log/containers/yurt-hub-edge-1_kube-system_yurt-hub-8f6c.log"}
			for _, p := range gone {
				if e.exists(p) == !dryRun {
					t.Errorf("%s exists = %v after reset (dry run %v)", p, e.exists(p), dryRun)
				}
			}
			for _, p := range append(kept, "/var/log/containers/kube-proxy-x7k2p_kube-system_kube-proxy-1a2b.log",
				"/var/log/pods/kube-system_yurt-hub-edge-2_"+uid, "/opt/elsewhere/yurt-hub/0.log") {
				if !e.exists(p) {
					t.Errorf("%s was removed: not yurthub's pod log", p)
				}
			}
			st := findStep(t, e.report(), PhaseRemoveFiles+"/"+SubphaseYurthubLogs, "remove "+hub)
			if want := map[bool]status{false: statusDone, true: statusPlanned}[dryRun]; st.Status != want {
				t.Errorf("step %+v, want %s", st, want)
			}
		})
	}
}

func TestResetWithoutPodLogs(t *testing.T) {
	e := newEnv(t)
	plantJoined(t, e, plant{state: stateJSON(false)})
	if err := e.run("--force", "-o", "json"); err != nil {
		t.Fatal(err)
	}
	st := findStep(t, e.report(), PhaseRemoveFiles+"/"+SubphaseYurthubLogs, "remove yurthub's pod logs")
	if st.Status != statusSkipped || !strings.Contains(st.Detail, "does not exist") {
		t.Errorf("step %+v, want skipped: /var/log/pods does not exist", st)
	}
}

// A signal after the prompt was answered: no further phase starts, the
// report names each as interrupted, and reset exits 130 (not 0).
func TestResetInterruptedStartsNoFurtherPhase(t *testing.T) {
	e := newEnv(t)
	plantJoined(t, e, plant{state: stateJSON(true)})
	before := hosttest.Tree(t, e.h)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.ctx = ctx
	e.confirm = func() error { cancel(); return nil } // SIGINT right after "y"
	err := e.run("-o", "json")
	if got := cmdutil.ExitCode(err); got != cmdutil.ExitInterrupted {
		t.Fatalf("exit %d (%v), want %d", got, err, cmdutil.ExitInterrupted)
	}
	if got := e.init.CallLog(); len(got) != 0 {
		t.Errorf("kubelet was touched after the interrupt: %v", got)
	}
	if after := hosttest.Tree(t, e.h); strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Error("files were removed after the interrupt")
	}
	r := e.report()
	for _, ph := range []string{PhaseStopKubelet, PhaseRemoveContainers, PhaseUnmount, PhaseRemoveFiles + "/" + SubphaseYurthub} {
		if s := findStep(t, r, ph, ph); !strings.Contains(s.Detail, "interrupted") {
			t.Errorf("phase %s: %+v, want it reported as interrupted", ph, s)
		}
	}
}
