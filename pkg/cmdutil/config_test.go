package cmdutil

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadConfigFileRefusesWhatIsNotOneSmallDocument(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := write("big.yaml", "kind: JoinConfiguration\n# "+strings.Repeat("x", MaxConfigBytes)+"\n")
	for _, tc := range []struct{ path, want string }{
		{"/dev/zero", "not a regular file"},
		{fifo, "not a regular file"},
		{dir, "not a regular file"},
		{big, "larger than 1048576 bytes"},
		{write("two.yaml", "kind: JoinConfiguration\n---\nkind: JoinConfiguration\nnodeName: x\n"), "holds 2 YAML documents"},
		{write("empty.yaml", "# nothing\n---\n"), "holds no YAML document"},
		{filepath.Join(dir, "missing.yaml"), "no such file"},
	} {
		_, err := ReadConfigFile(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || ExitCode(err) != ExitUsage {
			t.Errorf("%s: err %v (exit %d), want a usage error saying %q", tc.path, err, ExitCode(err), tc.want)
		}
	}
	one := write("one.yaml", "# a comment\n---\napiVersion: v1\nkind: JoinConfiguration\n")
	b, err := ReadConfigFile(one)
	if err != nil || !strings.Contains(string(b), "kind: JoinConfiguration") {
		t.Errorf("one document: %q %v", b, err)
	}
}
