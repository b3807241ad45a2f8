package images

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/host"
	"github.com/yurtadm/yurtadm/pkg/host/hosttest"
)

const crictl = "crictl --runtime-endpoint unix:///run/containerd/containerd.sock "

func run(t *testing.T, h *host.Host, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newCommand(cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, func(string) *host.Host { return h })
	cmd.SetArgs(append(args, "--host-root", h.FS.Root))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

func TestListNamesYurthubAndTheRuntimesPauseImage(t *testing.T) {
	h, _, sc := hosttest.New(t)
	// No runtime: the defaults.
	out, _, err := run(t, h, "list")
	if err != nil || out != "docker.io/openyurt/yurthub:v1.7.0\nregistry.k8s.io/pause:3.10\n" {
		t.Errorf("without a runtime: %q %v", out, err)
	}
	hosttest.WriteFile(t, h, "/run/containerd/containerd.sock", "")
	sc.Answers[crictl+"info"] = hosttest.Answer{Out: `{"config":{"sandboxImage":"reg.local/pause:3.9"}}`}
	out, _, err = run(t, h, "list", "--yurthub-image", "reg.local/openyurt/yurthub:v1.7.0", "-o", "json")
	if err != nil || !strings.Contains(out, `"reg.local/openyurt/yurthub:v1.7.0"`) || !strings.Contains(out, `"reg.local/pause:3.9"`) {
		t.Errorf("with a runtime: %q %v", out, err)
	}
	if _, _, err := run(t, h, "list", "--yurthub-image", "a b"); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Errorf("a bad image: %v", err)
	}
}

func TestSavePullsWhatIsMissingAndExports(t *testing.T) {
	h, _, sc := hosttest.New(t)
	hosttest.WriteFile(t, h, "/run/containerd/containerd.sock", "")
	file := filepath.Join(t.TempDir(), "images.tar")
	sc.Answers[crictl+"info"] = hosttest.Answer{Out: `{}`}
	sc.Answers[crictl+"inspecti -q docker.io/openyurt/yurthub:v1.7.0"] = hosttest.Answer{Out: `no such image present`, Err: errors.New("exit status 1")}
	sc.Answers[crictl+"pull docker.io/openyurt/yurthub:v1.7.0"] = hosttest.Answer{Out: "Image is up to date"}
	sc.Answers[crictl+"inspecti -q registry.k8s.io/pause:3.10"] = hosttest.Answer{Out: "{}"}
	export := "ctr --address /run/containerd/containerd.sock -n k8s.io images export " + file + " docker.io/openyurt/yurthub:v1.7.0 registry.k8s.io/pause:3.10"
	sc.Answers[export] = hosttest.Answer{}
	out, errOut, err := run(t, h, "save", file)
	if err != nil || !strings.Contains(out, "Wrote "+file) || !strings.Contains(errOut, "Pulling docker.io/openyurt/yurthub:v1.7.0") {
		t.Fatalf("save: %v\n%s%s", err, out, errOut)
	}
	if sc.Ran[len(sc.Ran)-1] != export {
		t.Errorf("last command %q", sc.Ran[len(sc.Ran)-1])
	}
	// An existing file is never overwritten.
	if err := os.WriteFile(file, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	n := len(sc.Ran)
	if _, _, err := run(t, h, "save", file); cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "exists") {
		t.Errorf("save over an existing file: %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "mine" || len(sc.Ran) != n {
		t.Errorf("the existing file was touched (%q) or commands ran (%v)", b, sc.Ran[n:])
	}
	// A file that cannot be written is refused before anything is pulled.
	n = len(sc.Ran)
	unwritable := "/proc/self/yurtadm-images.tar" // a directory, in which even root creates nothing
	if _, _, err := run(t, h, "save", unwritable); cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "cannot write "+unwritable) {
		t.Errorf("save into an unwritable directory: %v", err)
	}
	if len(sc.Ran) != n {
		t.Errorf("commands ran before the archive was known writable: %v", sc.Ran[n:])
	}
}
