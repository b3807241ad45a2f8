package nodestep

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
)

// TestCommandRefusesBadFlags: a bad --host-root or --namespace is a usage
// error before the node is looked at (a revert of a root that does not
// exist said "nothing to revert" and exited 0).
func TestCommandRefusesBadFlags(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct {
		action string
		args   []string
		want   string
	}{
		{ActionConvert, []string{"--host-root", "relative/root"}, `--host-root "relative/root" is not absolute`},
		{ActionRevert, []string{"--host-root", "relative/root"}, `--host-root "relative/root" is not absolute`},
		{ActionRevert, []string{"--host-root", missing}, "is not a directory"},
		{ActionConvert, []string{"--host-root", t.TempDir(), "--namespace", "Kube_System"}, `invalid namespace "Kube_System"`},
	} {
		var out bytes.Buffer
		cmd := NewCommand(tc.action, cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out},
			func(string, func(string, ...any)) Env {
				t.Errorf("%s %v: the node was looked at", tc.action, tc.args)
				return Env{}
			})
		cmd.SetArgs(append([]string{"--node-name", "edge-1", "--termination-log", ""}, tc.args...))
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		err := cmd.Execute()
		if cmdutil.ExitCode(err) != cmdutil.ExitUsage || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: err %v (exit %d), want exit %d with %q", tc.action, tc.args, err, cmdutil.ExitCode(err), cmdutil.ExitUsage, tc.want)
		}
	}
}
