package workflow

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
)

// fixture is a command "demo" with phases a, b (with b/x, b/y and the
// "all" entry) and c; every phase records its path in ran.
type fixture struct {
	cmd  *cobra.Command
	r    *Runner
	ran  []string
	flag string
	data []RunData
	out  bytes.Buffer
}

func newFixture(t *testing.T, fail string) *fixture {
	t.Helper()
	f := &fixture{r: NewRunner()}
	rec := func(path string) func(RunData) error {
		return func(d RunData) error {
			f.ran = append(f.ran, path)
			f.data = append(f.data, d)
			if path == fail {
				return errors.New("boom")
			}
			return nil
		}
	}
	f.cmd = &cobra.Command{Use: "demo", Short: "A demo", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return f.r.Run(nil) }}
	f.cmd.Flags().StringVar(&f.flag, "name", "", "a flag the phases inherit")
	f.cmd.Flags().Bool("other", false, "a flag no phase inherits")
	inherit := []string{"name"}
	f.r.AppendPhase(Phase{Name: "a", Short: "Phase a", Run: rec("a"), InheritFlags: inherit})
	f.r.AppendPhase(Phase{Name: "b", Short: "Phase b", Run: rec("b"), InheritFlags: inherit, Phases: []Phase{
		{Name: "all", Short: "All of b", RunAllSiblings: true, InheritFlags: inherit},
		{Name: "x", Short: "Sub x", Run: rec("b/x"), InheritFlags: inherit},
		{Name: "y", Short: "Sub y", Run: rec("b/y"), InheritFlags: inherit},
	}})
	f.r.AppendPhase(Phase{Name: "c", Short: "Phase c", Run: rec("c")})
	calls := 0
	f.r.SetDataInitializer(func(c *cobra.Command, _ []string) (RunData, error) {
		calls++
		if calls > 1 {
			t.Error("the data was built twice")
		}
		return c.Name(), nil
	})
	f.r.BindToCommand(f.cmd)
	f.cmd.SetOut(&f.out)
	f.cmd.SetErr(&f.out)
	f.cmd.SilenceErrors, f.cmd.SilenceUsage = true, true
	return f
}

func (f *fixture) run(args ...string) error {
	f.cmd.SetArgs(args)
	return f.cmd.Execute()
}

func TestRunsEveryPhaseInOrder(t *testing.T) {
	f := newFixture(t, "")
	if err := f.run(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.ran, " "); got != "a b b/x b/y c" {
		t.Errorf("ran %q", got)
	}
	if f.data[0] != "demo" {
		t.Errorf("data built from %v, want the command itself", f.data[0])
	}
}

func TestSkipPhasesLeavesOutSubphasesToo(t *testing.T) {
	f := newFixture(t, "")
	if err := f.run("--skip-phases", "b,c"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.ran, " "); got != "a" {
		t.Errorf("ran %q", got)
	}
	f = newFixture(t, "")
	if err := f.run("--skip-phases", "b/x"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.ran, " "); got != "a b b/y c" {
		t.Errorf("ran %q", got)
	}
}

func TestUnknownSkipPhaseIsAUsageErrorNamingThePhases(t *testing.T) {
	f := newFixture(t, "")
	err := f.run("--skip-phases", "bogus")
	if cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), `"bogus"`) {
		t.Fatalf("err %v (exit %d)", err, cmdutil.ExitCode(err))
	}
	if h := cmdutil.Hint(err); h != "the phases are: a, b, b/x, b/y, c" {
		t.Errorf("hint %q", h)
	}
	if len(f.ran) != 0 {
		t.Errorf("ran %v before refusing", f.ran)
	}
}

func TestPhaseSubcommandRunsOnePhase(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"phase", "a"}, "a"},
		{[]string{"phase", "b", "x"}, "b/x"},
		{[]string{"phase", "b", "all"}, "b b/x b/y"},
		{[]string{"phase", "c"}, "c"},
	} {
		f := newFixture(t, "")
		if err := f.run(tc.args...); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got := strings.Join(f.ran, " "); got != tc.want {
			t.Errorf("%v ran %q, want %q", tc.args, got, tc.want)
		}
		if last := f.data[len(f.data)-1]; last == "demo" {
			t.Errorf("%v: data built from the whole command, want the phase's", tc.args)
		}
	}
}

func TestPhaseWithSubphasesOrNoneNeedsASubcommand(t *testing.T) {
	for _, args := range [][]string{{"phase"}, {"phase", "b"}} {
		f := newFixture(t, "")
		err := f.run(args...)
		if cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "subcommand is required") {
			t.Errorf("%v: err %v (exit %d)", args, err, cmdutil.ExitCode(err))
		}
		if len(f.ran) != 0 {
			t.Errorf("%v ran %v", args, f.ran)
		}
		if !strings.Contains(f.out.String(), "Usage:") {
			t.Errorf("%v printed no help: %q", args, f.out.String())
		}
	}
}

// TestUnknownPhaseSubcommandIsAUsageErrorNamingIt: `demo phase bogus`
// and `demo phase b bogus`, with flags or not, name the phase and the
// phases there are (cobra.NoArgs said `unknown command`, exit 1, or
// named the flag).
func TestUnknownPhaseSubcommandIsAUsageErrorNamingIt(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
		hint string
	}{
		{[]string{"phase", "bogus"}, `unknown phase "bogus" for 'demo phase'`, "the phases are: a, b, c"},
		{[]string{"phase", "bogus", "--name", "x", "--frob"}, `unknown phase "bogus" for 'demo phase'`, "the phases are: a, b, c"},
		{[]string{"phase", "b", "bogus", "--name", "x"}, `unknown phase "bogus" for 'demo phase b'`, "the phases are: all, x, y"},
	} {
		f := newFixture(t, "")
		err := f.run(tc.args...)
		if cmdutil.ExitCode(err) != cmdutil.ExitUsage || err == nil || err.Error() != tc.err || cmdutil.Hint(err) != tc.hint {
			t.Errorf("%v: err %v (exit %d, hint %q), want %q, hint %q", tc.args, err, cmdutil.ExitCode(err), cmdutil.Hint(err), tc.err, tc.hint)
		}
		if len(f.ran) != 0 {
			t.Errorf("%v ran %v", tc.args, f.ran)
		}
	}
	f := newFixture(t, "")
	if err := f.run("phase", "a", "--frob"); err == nil || !strings.Contains(err.Error(), "unknown flag: --frob") {
		t.Errorf("a phase must still refuse an unknown flag: %v", err)
	}
}

func TestPhaseInheritsOnlyTheFlagsItNames(t *testing.T) {
	f := newFixture(t, "")
	if err := f.run("phase", "a", "--name", "edge-1"); err != nil {
		t.Fatal(err)
	}
	if f.flag != "edge-1" {
		t.Errorf("--name on the phase set %q on the command", f.flag)
	}
	f = newFixture(t, "")
	if err := f.run("phase", "a", "--other"); err == nil {
		t.Error("phase a took --other, which it does not inherit")
	}
	f = newFixture(t, "")
	if err := f.run("phase", "c", "--name", "x"); err == nil {
		t.Error("phase c took --name, which it does not inherit")
	}
}

func TestErrorStopsTheRunAndNamesThePhase(t *testing.T) {
	f := newFixture(t, "b/x")
	err := f.run()
	if err == nil || err.Error() != "error execution phase b/x: boom" {
		t.Fatalf("err %v", err)
	}
	if got := strings.Join(f.ran, " "); got != "a b b/x" {
		t.Errorf("ran %q after the failure", got)
	}
}

func TestHelpListsThePhases(t *testing.T) {
	f := newFixture(t, "")
	want := "A demo\n\nThe \"demo\" command executes the following phases:\n```\n" +
		"a     Phase a\n" +
		"b     Phase b\n" +
		"  /x  Sub x\n" +
		"  /y  Sub y\n" +
		"c     Phase c\n```\n"
	if f.cmd.Long != want {
		t.Errorf("long help\n%s\nwant\n%s", f.cmd.Long, want)
	}
	if names := strings.Join(f.r.Names(), ","); names != "a,b,b/x,b/y,c" {
		t.Errorf("names %q", names)
	}
}
