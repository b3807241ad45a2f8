package preflight

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/host"
)

// runCmd runs `yurtadm preflight args...` against the fixture.
func (f *fixture) runCmd(args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	s := cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	cmd := newCommand(s, deps{newHost: func(string) *host.Host { return f.h }, env: f.env})
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

func TestCommandText(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		setup    func(f *fixture)
		wantCode int
		// wantErr and wantStderr are parts of the error and of stderr.
		wantErr    string
		wantStderr []string
	}{
		{name: "healthy host", wantCode: cmdutil.ExitOK,
			wantStderr: []string{"[preflight] Running pre-flight checks\n", "[preflight] 20 checks: 20 ok, 0 with warnings, 0 failed and ignored\n"}},
		{name: "warning only", wantCode: cmdutil.ExitOK,
			setup:      func(f *fixture) { f.write(procSwaps, "Filename Type Size Used Priority\n/swapfile file 1 0 -2\n") },
			wantStderr: []string{"\t[WARNING Swap]: swap is on (/swapfile)", "20 checks: 19 ok, 1 with warnings, 0 failed and ignored"}},
		{name: "conntrack missing", wantCode: cmdutil.ExitPreflight,
			setup:   func(f *fixture) { f.without("conntrack") },
			wantErr: "\t[ERROR FileExisting-conntrack]: conntrack not found in system path"},
		{name: "conntrack missing, ignored", args: []string{"--ignore-preflight-errors", "FILEEXISTING-CONNTRACK"}, wantCode: cmdutil.ExitOK,
			setup:      func(f *fixture) { f.without("conntrack") },
			wantStderr: []string{"\t[WARNING FileExisting-conntrack]: conntrack not found in system path\n"}},
		{name: "everything ignored", args: []string{"--ignore-preflight-errors=all"}, wantCode: cmdutil.ExitOK,
			setup: func(f *fixture) { f.without("conntrack", "crictl") }},
		{name: "upper-case hostname without --node-name", wantCode: cmdutil.ExitPreflight,
			setup:   func(f *fixture) { f.env.Hostname = func() (string, error) { return "Edge-1", nil } },
			wantErr: `[ERROR Hostname]: host name "Edge-1" has upper-case letters, which break node registration: a Node name must be lower case; pass --node-name edge-1`},
		{name: "upper-case hostname with --node-name", args: []string{"--node-name", "edge-1"}, wantCode: cmdutil.ExitOK,
			setup: func(f *fixture) { f.env.Hostname = func() (string, error) { return "Edge-1", nil } }},
		{name: "kubelet skew against --kubernetes-version", args: []string{"--kubernetes-version", "v1.33.0"}, wantCode: cmdutil.ExitPreflight,
			wantErr: "[ERROR KubeletVersion]: kubelet v1.34.4 is newer than the control plane (v1.33.0)"},
		{name: "--cri-socket used", args: []string{"--cri-socket", "/run/crio/crio.sock"}, wantCode: cmdutil.ExitPreflight,
			wantErr: "[ERROR CRISocket]: container runtime socket /run/crio/crio.sock does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			stdout, stderr, err := f.runCmd(tc.args...)
			if code := cmdutil.ExitCode(err); code != tc.wantCode {
				t.Fatalf("exit code %d (%v), want %d; stderr:\n%s", code, err, tc.wantCode, stderr)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v lacks %q", err, tc.wantErr)
			}
			for _, w := range tc.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stderr, "[ERROR") {
				t.Errorf("errors are printed by the caller from the returned error, not on stderr:\n%s", stderr)
			}
			if stdout != "" {
				t.Errorf("text mode wrote to stdout: %q", stdout)
			}
		})
	}
}

func TestCommandJSON(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		setup      func(f *fixture)
		wantCode   int
		wantPassed bool
		want       map[string]string // check -> status
	}{
		{name: "healthy host", wantCode: cmdutil.ExitOK, wantPassed: true,
			want: map[string]string{CheckConntrack: StatusOK, "Port-10268": StatusOK}},
		{name: "failure", wantCode: cmdutil.ExitPreflight, wantPassed: false,
			setup: func(f *fixture) { f.without("conntrack") },
			want:  map[string]string{CheckConntrack: StatusError, CheckCrictl: StatusOK}},
		{name: "failure ignored", args: []string{"--ignore-preflight-errors", "fileexisting-conntrack"}, wantCode: cmdutil.ExitOK, wantPassed: true,
			setup: func(f *fixture) { f.without("conntrack") },
			want:  map[string]string{CheckConntrack: StatusIgnored}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			stdout, stderr, err := f.runCmd(append([]string{"-o", "json"}, tc.args...)...)
			if code := cmdutil.ExitCode(err); code != tc.wantCode {
				t.Fatalf("exit code %d (%v), want %d", code, err, tc.wantCode)
			}
			if stderr != "" {
				t.Errorf("json mode wrote to stderr: %q", stderr)
			}
			// The shape: exactly these keys, each check with name, status and maybe messages.
			var raw map[string]json.RawMessage
			if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
			}
			var keys []string
			for k := range raw {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if !slices.Equal(keys, []string{"checks", "passed"}) {
				t.Errorf("keys %q, want checks and passed", keys)
			}
			var rep struct {
				Checks []map[string]any `json:"checks"`
				Passed bool             `json:"passed"`
			}
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Passed != tc.wantPassed {
				t.Errorf("passed %v, want %v", rep.Passed, tc.wantPassed)
			}
			if len(rep.Checks) != 20 {
				t.Errorf("%d checks, want 20", len(rep.Checks))
			}
			got := map[string]string{}
			for _, c := range rep.Checks {
				for k := range c {
					if k != "name" && k != "status" && k != "messages" {
						t.Errorf("unexpected key %q in %v", k, c)
					}
				}
				name, _ := c["name"].(string)
				got[name], _ = c["status"].(string)
				if got[name] != StatusOK && c["messages"] == nil {
					t.Errorf("%s is %s without messages", name, got[name])
				}
			}
			for name, st := range tc.want {
				if got[name] != st {
					t.Errorf("%s: %q, want %q", name, got[name], st)
				}
			}
		})
	}
}

// Bad flags are usage errors before any check runs: no command, no probe.
func TestCommandUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
		hint string
	}{
		{name: "unknown check to ignore", args: []string{"--ignore-preflight-errors", "Swap,NumCPU"}, want: `unknown preflight check "numcpu"`},
		{name: "all mixed with names", args: []string{"--ignore-preflight-errors", "all,Swap"}, want: "'all' cannot be mixed"},
		{name: "unknown check: the hint names the checks", args: []string{"--ignore-preflight-errors", "bogus"}, want: "bogus",
			hint: "FileExisting-conntrack, FileExisting-kubelet, KubeletVersion, CRISocket"},
		{name: "bad output", args: []string{"-o", "yaml"}, want: `unknown output format "yaml"`},
		{name: "bad CRI socket", args: []string{"--cri-socket", "tcp://10.0.0.1:1234"}, want: "only unix sockets"},
		{name: "relative CRI socket", args: []string{"--cri-socket", "run/containerd/containerd.sock"}, want: "must be absolute"},
		{name: "bad kubernetes version", args: []string{"--kubernetes-version", "latest"}, want: `--kubernetes-version "latest"`},
		{name: "upper-case node name", args: []string{"--node-name", "Edge-1"}, want: "upper-case"},
		{name: "invalid node name", args: []string{"--node-name", "edge_1"}, want: "RFC 1123"},
		{name: "relative host root", args: []string{"--host-root", "host"}, want: "not absolute"},
		{name: "missing host root", args: []string{"--host-root", "/nonexistent/yurtadm"}, want: "not a directory"},
		{name: "an argument", args: []string{"extra"}, want: `unexpected argument "extra"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			stdout, stderr, err := f.runCmd(tc.args...)
			if code := cmdutil.ExitCode(err); code != cmdutil.ExitUsage {
				t.Fatalf("exit code %d (%v), want %d", code, err, cmdutil.ExitUsage)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
			if h := cmdutil.Hint(err); h == "" || !strings.Contains(h, tc.hint) {
				t.Errorf("usage error %q: hint %q lacks %q", err, h, tc.hint)
			}
			if f.envCalls != 0 || len(f.sc.Ran) != 0 {
				t.Errorf("checks ran before the usage error: %d probes, commands %q", f.envCalls, f.sc.Ran)
			}
			if stdout != "" || stderr != "" {
				t.Errorf("output before the usage error: %q %q", stdout, stderr)
			}
		})
	}
}

func TestPrint(t *testing.T) {
	results := []Result{
		{Name: "IsPrivilegedUser", Status: StatusOK},
		{Name: "Swap", Status: StatusWarning, Messages: []string{"swap is on"}},
		{Name: "FileExisting-conntrack", Status: StatusIgnored, Messages: []string{"conntrack not found in system path"}},
	}
	var errOut bytes.Buffer
	Print(cmdutil.IOStreams{ErrOut: &errOut}, results)
	want := "[preflight] Running pre-flight checks\n" +
		"\t[WARNING Swap]: swap is on\n" +
		"\t[WARNING FileExisting-conntrack]: conntrack not found in system path\n" +
		"[preflight] 3 checks: 1 ok, 1 with warnings, 1 failed and ignored\n"
	if errOut.String() != want {
		t.Errorf("Print:\n got %q\nwant %q", errOut.String(), want)
	}

	errOut.Reset()
	Print(cmdutil.IOStreams{ErrOut: &errOut}, append(results, Result{Name: "Port-10250", Status: StatusError, Messages: []string{"in use"}}))
	if strings.Contains(errOut.String(), " ok, ") || strings.Contains(errOut.String(), "in use") {
		t.Errorf("Print with a failure:\n%s", errOut.String())
	}
}
