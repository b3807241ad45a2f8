package nodestep

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	utilsexec "k8s.io/utils/exec"
)

// HostExec runs commands on the host from inside a privileged pod whose
// host root is mounted at Root: each command is resolved in the host's
// filesystem and run chrooted into it, so `systemctl restart kubelet` is
// the host's systemctl talking to the host's init system (the pod shares
// the host's PID namespace and network). With Root "/" it is plain exec.
//
// This is why the node image needs nothing but this binary: no nsenter,
// no systemctl, no shell.
type HostExec struct {
	Root string
}

var _ utilsexec.Interface = HostExec{}

// searchPath is where commands are looked up below Root.
var searchPath = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// LookPath finds file in the host's usual directories.
func (h HostExec) LookPath(file string) (string, error) {
	if filepath.IsAbs(file) {
		if isExec(filepath.Join(h.root(), file)) {
			return file, nil
		}
		return "", &exec.Error{Name: file, Err: utilsexec.ErrExecutableNotFound}
	}
	for _, d := range searchPath {
		p := filepath.Join(d, file)
		if isExec(filepath.Join(h.root(), p)) {
			return p, nil
		}
	}
	return "", &exec.Error{Name: file, Err: utilsexec.ErrExecutableNotFound}
}

func (h HostExec) root() string {
	if h.Root == "" {
		return "/"
	}
	return h.Root
}

// Command returns cmd to run chrooted in the host root.
func (h HostExec) Command(cmd string, args ...string) utilsexec.Cmd {
	return h.CommandContext(context.Background(), cmd, args...)
}

// CommandContext returns cmd to run chrooted in the host root, killed when
// ctx ends.
func (h HostExec) CommandContext(ctx context.Context, cmd string, args ...string) utilsexec.Cmd {
	p, err := h.LookPath(cmd)
	if err != nil {
		return &failedCmd{err: fmt.Errorf("%s not found below %s: %w", cmd, h.root(), err)}
	}
	c := exec.CommandContext(ctx, p, args...)
	if h.root() != "/" {
		// exec resolves the program's path after the chroot.
		c.Path = p
		c.SysProcAttr = chrootAttr(h.root())
		c.Dir = "/"
	}
	c.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	return &hostCmd{c}
}

// hostCmd adapts exec.Cmd to utilsexec.Cmd.
type hostCmd struct{ *exec.Cmd }

func (c *hostCmd) SetDir(dir string)       { c.Dir = dir }
func (c *hostCmd) SetStdin(in io.Reader)   { c.Stdin = in }
func (c *hostCmd) SetStdout(out io.Writer) { c.Stdout = out }
func (c *hostCmd) SetStderr(out io.Writer) { c.Stderr = out }
func (c *hostCmd) SetEnv(env []string)     { c.Env = env }
func (c *hostCmd) Stop() {
	if c.Process == nil {
		return
	}
	_ = c.Process.Signal(syscall.SIGTERM)
	p := c.Process
	time.AfterFunc(10*time.Second, func() { _ = p.Kill() })
}

// failedCmd is a command that could not be found.
type failedCmd struct{ err error }

func (f *failedCmd) Run() error                         { return f.err }
func (f *failedCmd) CombinedOutput() ([]byte, error)    { return nil, f.err }
func (f *failedCmd) Output() ([]byte, error)            { return nil, f.err }
func (f *failedCmd) SetDir(string)                      {}
func (f *failedCmd) SetStdin(io.Reader)                 {}
func (f *failedCmd) SetStdout(io.Writer)                {}
func (f *failedCmd) SetStderr(io.Writer)                {}
func (f *failedCmd) SetEnv([]string)                    {}
func (f *failedCmd) StdoutPipe() (io.ReadCloser, error) { return nil, f.err }
func (f *failedCmd) StderrPipe() (io.ReadCloser, error) { return nil, f.err }
func (f *failedCmd) Start() error                       { return f.err }
func (f *failedCmd) Wait() error                        { return f.err }
func (f *failedCmd) Stop()                              {}
