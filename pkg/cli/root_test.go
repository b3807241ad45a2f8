package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
)

func run(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := Run(args, cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	return code, out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := run("yurtadm", "version")
	if code != 0 || !strings.HasPrefix(out, "yurtadm ") || !strings.Contains(out, "Kubernetes v1.34.4") || !strings.Contains(out, "OpenYurt v1.7.0") {
		t.Fatalf("code %d out %q", code, out)
	}
	code, out, _ = run("yurtadm", "version", "-o", "json")
	var info map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &info) != nil || info["kubernetesVersion"] != "v1.34.4" || info["gitVersion"] == "" {
		t.Fatalf("json: code %d out %q", code, out)
	}
	code, _, errOut := run("yurtadm", "version", "-o", "yaml")
	if code != cmdutil.ExitUsage || !strings.Contains(errOut, `unknown output format "yaml"`) {
		t.Fatalf("bad -o: code %d err %q", code, errOut)
	}
}

func TestNamesAndErrors(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"yurtctl name", []string{"/usr/local/bin/yurtctl", "--help"}, 0, "yurtctl"},
		{"yurtadm name", []string{"yurtadm", "--help"}, 0, "yurtadm [command]"},
		{"unknown command", []string{"yurtadm", "frobnicate"}, cmdutil.ExitUsage, "unknown command"},
		{"unknown flag", []string{"yurtadm", "version", "--frob"}, cmdutil.ExitUsage, "unknown flag: --frob"},
		{"join without endpoint", []string{"yurtadm", "join", "--token", "abcdef.0123456789abcdef", "--discovery-token-unsafe-skip-ca-verification", "--skip-phases", "preflight"}, cmdutil.ExitUsage, "endpoint is missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(tc.args...)
			if code != tc.code || !strings.Contains(out+errOut, tc.contains) {
				t.Fatalf("code %d (want %d), output %q %q", code, tc.code, out, errOut)
			}
			if code != 0 && strings.Count(errOut, "error: ") != 1 {
				t.Errorf("the error must be printed exactly once: %q", errOut)
			}
		})
	}
}

// TestArgumentsAreUsageErrors: a command that takes no arguments (or a
// phase that does not exist) refuses one with exit 2 and a hint, like
// every other bad input; cobra.NoArgs alone exited 1 without a hint.
func TestArgumentsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"yurtadm", "version", "extra"},
		{"yurtadm", "docs", "extra"},
		{"yurtadm", "reset", "extra"},
		{"yurtadm", "reset", "phase", "remove-files", "extra"},
		{"yurtadm", "token", "renew", "extra"},
		{"yurtadm", "images", "list", "extra"},
		{"yurtadm", "cache", "extra"},
		{"yurtadm", "upgrade", "extra"},
		{"yurtctl", "convert", "extra"},
		{"yurtctl", "revert", "extra"},
		{"yurtctl", "convert", "node", "extra"},
	} {
		code, out, errOut := run(args...)
		if code != cmdutil.ExitUsage || !strings.Contains(errOut, `"extra"`) || !strings.Contains(errOut, "\nhint: ") {
			t.Errorf("%q: exit %d (want %d), output %q %q", args, code, cmdutil.ExitUsage, out, errOut)
		}
	}
}

// TestDocsAreCurrent regenerates the CLI reference and compares it with
// docs/cli: a changed flag or command without `make docs` fails here.
func TestDocsAreCurrent(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := run("yurtadm", "docs", "--dir", dir); code != 0 {
		t.Fatalf("yurtadm docs: exit %d: %s", code, errOut)
	}
	want, err := filepath.Glob(filepath.Join("..", "..", "docs", "cli", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := filepath.Glob(filepath.Join(dir, "*.md"))
	if len(got) != len(want) {
		t.Errorf("generated %d pages, docs/cli has %d: run `make docs`", len(got), len(want))
	}
	for _, p := range got {
		gen, _ := os.ReadFile(p)
		have, err := os.ReadFile(filepath.Join("..", "..", "docs", "cli", filepath.Base(p)))
		if err != nil || !bytes.Equal(gen, have) {
			t.Errorf("docs/cli/%s is out of date: run `make docs`", filepath.Base(p))
		}
	}
	join, _ := os.ReadFile(filepath.Join(dir, "yurtadm_join.md"))
	for _, s := range []string{"## yurtadm join", "--discovery-token-ca-cert-hash", "[yurtadm join phase](yurtadm_join_phase.md)"} {
		if !bytes.Contains(join, []byte(s)) {
			t.Errorf("yurtadm_join.md lacks %q", s)
		}
	}
}
