package harness

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// containerdConfig is containerd 1.6's configuration for this machine:
// cgroupfs (cgroup v1, no systemd), restrict_oom_score_adj (no
// CAP_SYS_RESOURCE: without it every sandbox fails in runc), the locally
// built pause image, and the harness's CNI conflist and root.
const containerdConfig = `version = 2
root = %q
state = "/run/containerd"

[grpc]
  address = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
`

// cniConflist is a bridge network for the pods of this single node.
const cniConflist = `{
  "cniVersion": "0.4.0",
  "name": "yurtadm-e2e",
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": %q
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`

// StartContainerd writes containerd's config and the CNI conflist (before
// containerd starts: 1.6 may miss a conflist that appears later), starts
// containerd as a host process, and imports the images Build made.
func (h *Harness) StartContainerd(ctx context.Context) error {
	dir := filepath.Join(h.Work, "containerd")
	cniDir := filepath.Join(h.Work, "cni", "net.d")
	for _, d := range []string{dir, cniDir, filepath.Join(h.Work, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := h.setIPForward(); err != nil {
		return err
	}
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(containerdConfig, filepath.Join(dir, "root"), containerdSock, PauseImage, cniDir)), 0o644); err != nil {
		return err
	}
	conflist := fmt.Sprintf(cniConflist, BridgeName, PodSubnet, filepath.Join(h.Work, "cni", "ipam"))
	if err := os.WriteFile(filepath.Join(cniDir, "10-yurtadm-e2e.conflist"), []byte(conflist), 0o644); err != nil {
		return err
	}
	logPath := filepath.Join(h.Work, "logs", "containerd.log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command("containerd", "--config", cfg)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = h.Env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start containerd: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if err := h.recordPID("containerd", cmd.Process.Pid); err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-done:
			return fmt.Errorf("containerd exited (%v); see %s\n%s", err, logPath, tailFile(logPath, 30))
		default:
		}
		if c, err := net.DialTimeout("unix", containerdSock, time.Second); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containerd socket %s not up after 60s; see %s", containerdSock, logPath)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, im := range h.images() {
		if _, err := h.must(ctx, "ctr", "--address", containerdSock, "-n", "k8s.io", "images", "import", filepath.Join(h.Work, "images", im.file)); err != nil {
			return fmt.Errorf("import %s: %w", im.file, err)
		}
	}
	// CRI must be up too (the CRI plugin starts after the socket).
	if _, err := h.must(ctx, "crictl", "--runtime-endpoint", CRISocket, "info"); err != nil {
		return fmt.Errorf("containerd's CRI: %w", err)
	}
	h.logf("containerd running (pid %d), images imported", cmd.Process.Pid)
	return nil
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := splitLines(string(b))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := ""
	for _, l := range lines {
		out += l + "\n"
	}
	return out
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

const ipForward = "/proc/sys/net/ipv4/ip_forward"

// setIPForward turns on IPv4 forwarding (pods need it; join's preflight
// checks it), remembering the value before in Work/ip_forward for Clean.
func (h *Harness) setIPForward() error {
	saved := filepath.Join(h.Work, "ip_forward")
	if _, err := os.Stat(saved); os.IsNotExist(err) {
		old, err := os.ReadFile(ipForward)
		if err != nil {
			return err
		}
		if err := os.WriteFile(saved, old, 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(ipForward, []byte("1\n"), 0o644)
}

// restoreIPForward puts back the value setIPForward found.
func (h *Harness) restoreIPForward() error {
	saved := filepath.Join(h.Work, "ip_forward")
	old, err := os.ReadFile(saved)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.WriteFile(ipForward, old, 0o644); err != nil {
		return err
	}
	return os.Remove(saved)
}
