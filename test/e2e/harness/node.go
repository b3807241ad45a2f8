package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Yurtadm is the path of the yurtadm binary built from this repository.
func (h *Harness) Yurtadm() string { return filepath.Join(h.Bin, "yurtadm") }

// JoinArgs are the arguments of `yurtadm join` for this machine with token,
// plus extra.
func (h *Harness) JoinArgs(token string, extra ...string) []string {
	args := []string{"join", h.APIServer(), "--token", token, "--discovery-token-ca-cert-hash", h.CP.CACertHash,
		"--yurthub-image", YurthubImage, "--cri-socket", CRISocket, "--timeout", "4m", "--config", h.JoinConfig()}
	return append(args, extra...)
}

// joinConfig is the machine-specific part of the join: this kernel has no
// dummy network device (no modules can be loaded), so yurthub must not
// create its hub-dummy0 interface; it listens on 127.0.0.1 only.
const joinConfig = `apiVersion: yurtadm.openyurt.io/v1alpha1
kind: JoinConfiguration
yurthubExtraArgs:
- --enable-dummy-if=false
`

// JoinConfig writes and returns the JoinConfiguration file for join.
func (h *Harness) JoinConfig() string {
	p := filepath.Join(h.Work, "join-config.yaml")
	_ = os.WriteFile(p, []byte(joinConfig), 0o644)
	return p
}

// Join runs `yurtadm join` with a fresh token.
func (h *Harness) Join(ctx context.Context, extra ...string) (Result, error) {
	tok, err := h.Token(time.Hour)
	if err != nil {
		return Result{}, err
	}
	return h.Run(ctx, h.Yurtadm(), h.JoinArgs(tok, extra...)...)
}

// Node returns this machine's Node, read directly from kube-apiserver.
func (h *Harness) Node(ctx context.Context) (*corev1.Node, error) {
	return h.CP.Client.CoreV1().Nodes().Get(ctx, NodeName(), metav1.GetOptions{})
}

// Ready reports whether n is Ready.
func Ready(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// WaitNodeReady polls kube-apiserver until the Node is Ready.
func (h *Harness) WaitNodeReady(ctx context.Context, timeout time.Duration) error {
	return pollUntil(ctx, timeout, 100*time.Millisecond, func() (bool, string) {
		n, err := h.Node(ctx)
		if err != nil {
			return false, err.Error()
		}
		return Ready(n), fmt.Sprintf("conditions %v", n.Status.Conditions)
	})
}

// pollUntil calls cond every interval until true or timeout; the error
// carries cond's last note.
func pollUntil(ctx context.Context, timeout, interval time.Duration, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, note := cond()
		if ok {
			return nil
		}
		last = note
		if time.Now().After(deadline) {
			return fmt.Errorf("not done after %s (last: %s)", timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// Get fetches a local URL (yurthub's endpoints) and returns status and body.
func Get(url string) (int, string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, string(b), err
}

// Yurthub's local endpoints.
const (
	YurthubHealthz = "http://127.0.0.1:10267/v1/healthz"
	YurthubReadyz  = "http://127.0.0.1:10267/v1/readyz"
	YurthubMetrics = "http://127.0.0.1:10267/metrics"
	YurthubProxy   = "http://127.0.0.1:10261"
	YurthubCache   = "/etc/kubernetes/cache"
)

// KubeletRequestsThroughYurthub returns yurthub's metric series whose
// client is kubelet (its user agent starts with "kubelet"): kubelet's
// requests went through yurthub when there are any.
func KubeletRequestsThroughYurthub() ([]string, error) {
	code, body, err := Get(YurthubMetrics)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("metrics: HTTP %d", code)
	}
	var lines []string
	for _, l := range strings.Split(body, "\n") {
		if !strings.HasPrefix(l, "#") && strings.HasPrefix(l, "node_yurthub_") && strings.Contains(l, `client="kubelet`) {
			lines = append(lines, l)
		}
	}
	return lines, nil
}

// CacheFiles counts the files under yurthub's cache for component (kubelet).
func CacheFiles(component string) int {
	n := 0
	_ = filepath.WalkDir(filepath.Join(YurthubCache, component), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// KubeletKubeconfigServer returns the server of the kubeconfig kubelet runs
// with (the last --kubeconfig= on its command line, as kubelet reads it).
func (h *Harness) KubeletKubeconfigServer() (string, string, error) {
	pids := pidsByExe(filepath.Join(h.ToolsBin, "kubelet"))
	if len(pids) != 1 {
		return "", "", fmt.Errorf("want one kubelet process, have %v", pids)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pids[0]))
	if err != nil {
		return "", "", err
	}
	kc := ""
	for _, a := range strings.Split(string(b), "\x00") {
		if v, ok := strings.CutPrefix(a, "--kubeconfig="); ok {
			kc = v
		}
	}
	if kc == "" {
		return "", "", fmt.Errorf("kubelet runs without --kubeconfig: %q", b)
	}
	data, err := os.ReadFile(kc)
	if err != nil {
		return kc, "", err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "server: "); ok {
			return kc, strings.TrimSpace(v), nil
		}
	}
	return kc, "", fmt.Errorf("%s has no server", kc)
}

// Tail returns the last n lines of a file.
func Tail(path string, n int) string { return tailFile(path, n) }

// Crictl runs crictl against the harness's containerd.
func (h *Harness) Crictl(ctx context.Context, args ...string) (Result, error) {
	return h.Run(ctx, filepath.Join(h.ToolsBin, "crictl"), append([]string{"--runtime-endpoint", CRISocket}, args...)...)
}

// RunningContainers returns the ids of running containers named name.
func (h *Harness) RunningContainers(ctx context.Context, name string) []string {
	r, err := h.Crictl(ctx, "ps", "-q", "--state", "Running", "--name", "^"+name+"$")
	if err != nil || r.ExitCode != 0 {
		return nil
	}
	return strings.Fields(r.Stdout)
}

// YurthubLogs returns the tail of the newest yurt-hub container's log.
func (h *Harness) YurthubLogs(ctx context.Context, n int) string {
	r, err := h.Crictl(ctx, "ps", "-a", "-q", "--name", "yurt-hub")
	if err != nil || r.ExitCode != 0 || strings.TrimSpace(r.Stdout) == "" {
		return "(no yurt-hub container)"
	}
	id := strings.Fields(r.Stdout)[0]
	l, err := h.Crictl(ctx, "logs", "--tail", fmt.Sprint(n), id)
	if err != nil {
		return err.Error()
	}
	return l.Stdout + l.Stderr
}

// kubeadmDropIn is the kubelet drop-in kubeadm's kubelet package ships
// (kubeadm join expects it; it does not write one).
const kubeadmDropIn = `[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=%s $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
`

// InstallKubeadmDropIn writes the drop-in of kubeadm's kubelet package, as
// a plain kubeadm node has it.
func (h *Harness) InstallKubeadmDropIn() error {
	dir := "/etc/systemd/system/kubelet.service.d"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "10-kubeadm.conf"), []byte(fmt.Sprintf(kubeadmDropIn, filepath.Join(h.Bin, "kubelet"))), 0o644)
}

// KubeadmJoinArgs are the arguments of the real `kubeadm join` for this
// machine with token. Its preflight errors are warnings: this machine
// fails some of kubeadm's checks (no kernel modules, no systemd) that
// yurtadm's preflight does not make.
func (h *Harness) KubeadmJoinArgs(token string) []string {
	return []string{"join", h.APIServer(), "--token", token, "--discovery-token-ca-cert-hash", h.CP.CACertHash,
		"--cri-socket", CRISocket, "--node-name", NodeName(), "--ignore-preflight-errors=all"}
}

// Timed is a command timed from its start to the Node being Ready.
type Timed struct {
	Result
	// ToReady is from the command's start until it has returned and
	// kube-apiserver shows the Node Ready (polled every 100ms).
	ToReady time.Duration
}

// RunUntilReady runs a join command and measures the time from its start
// until the Node is Ready, polling kube-apiserver alongside.
func (h *Harness) RunUntilReady(ctx context.Context, timeout time.Duration, name string, args ...string) (Timed, error) {
	start := time.Now()
	readyAt := make(chan time.Duration, 1)
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	go func() {
		for pctx.Err() == nil {
			if n, err := h.Node(pctx); err == nil && Ready(n) {
				readyAt <- time.Since(start)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		readyAt <- 0
	}()
	r, err := h.RunRSS(ctx, name, args...)
	if err != nil {
		return Timed{Result: r}, err
	}
	if r.ExitCode != 0 {
		cancel()
		<-readyAt
		return Timed{Result: r}, fmt.Errorf("%s", r.String())
	}
	// Done when the command has returned and the Node is Ready.
	d := <-readyAt
	if d == 0 {
		return Timed{Result: r}, fmt.Errorf("node not Ready within %s of the start of %s", timeout, filepath.Base(name))
	}
	if d < r.Took {
		d = r.Took
	}
	return Timed{Result: r, ToReady: d}, nil
}
