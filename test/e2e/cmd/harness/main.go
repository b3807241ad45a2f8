// Command harness drives the end-to-end harness (test/e2e/harness) from the
// shell, for `make quickstart` and `make quickstart-down`
// (hack/quickstart.sh). Run it as root from the repository:
//
//	harness up       clean, build, start containerd and the control plane
//	                 (detached: they keep running after it returns), prepare
//	                 the cluster with yurtctl convert phase control-plane
//	harness join     yurtadm join this machine with a fresh token
//	harness status   node, yurthub health, file locations
//	harness down     tear everything down (by recorded PIDs and paths)
//
// YURTADM_TOOLS_BIN must name hack/tools.sh's bin directory.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/yurtadm/yurtadm/test/e2e/harness"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: harness up|join|status|down")
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	h, err := harness.New(os.Stderr)
	if err != nil {
		fail(err)
	}
	h.Detach = true
	switch os.Args[1] {
	case "up":
		if err := h.Up(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "up failed: %v\ncleaning up\n", err)
			_ = h.Clean(context.Background())
			os.Exit(1)
		}
	case "join":
		if err := attach(h); err != nil {
			fail(err)
		}
		start := time.Now()
		tok, err := h.Token(time.Hour)
		if err != nil {
			fail(err)
		}
		args := h.JoinArgs(tok)
		fmt.Fprintf(os.Stderr, "$ yurtadm %s\n", strings.ReplaceAll(strings.Join(args, " "), tok, strings.SplitN(tok, ".", 2)[0]+".<redacted>"))
		r, err := h.Run(ctx, h.Yurtadm(), args...)
		if err != nil {
			fail(err)
		}
		fmt.Fprint(os.Stderr, r.Stderr)
		fmt.Fprint(os.Stdout, r.Stdout)
		if r.ExitCode != 0 {
			fmt.Fprintf(os.Stderr, "yurtadm join exited %d\n", r.ExitCode)
			os.Exit(r.ExitCode)
		}
		fmt.Fprintf(os.Stderr, "joined in %s\n", time.Since(start).Round(100*time.Millisecond))
		// Give yurthub's cache a moment to fill before the status.
		for end := time.Now().Add(15 * time.Second); time.Now().Before(end) && harness.CacheFiles("kubelet") < 5; {
			time.Sleep(500 * time.Millisecond)
		}
	case "status":
		if err := attach(h); err != nil {
			fail(err)
		}
		status(ctx, h)
	case "down":
		if err := h.CleanAll(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "down: %v\n", err)
		}
		if left := h.Leftovers(); len(left) > 0 {
			fail(fmt.Errorf("left on the machine:\n  %s", strings.Join(left, "\n  ")))
		}
		fmt.Println("torn down: nothing of the harness is left on this machine")
	default:
		fail(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}

// attach connects to a control plane an earlier `up` started.
func attach(h *harness.Harness) error {
	cp, err := harness.Attach(h)
	if err != nil {
		return err
	}
	h.CP = cp
	return nil
}

func status(ctx context.Context, h *harness.Harness) {
	n, err := h.Node(ctx)
	if err != nil {
		fmt.Printf("node %s: %v\n", harness.NodeName(), err)
	} else {
		fmt.Printf("node       %s Ready=%v\n", n.Name, harness.Ready(n))
		for _, k := range []string{"openyurt.io/is-edge-worker", "apps.openyurt.io/nodepool"} {
			fmt.Printf("  label    %s=%s\n", k, n.Labels[k])
		}
	}
	for _, u := range []string{harness.YurthubHealthz, harness.YurthubReadyz} {
		code, body, err := harness.Get(u)
		fmt.Printf("yurthub    %s -> %d %s %v\n", u, code, strings.TrimSpace(body), errOrEmpty(err))
	}
	if kc, server, err := h.KubeletKubeconfigServer(); err == nil {
		fmt.Printf("kubelet    kubeconfig %s, server %s\n", kc, server)
	}
	fmt.Printf("cache      %s/kubelet: %d files\n", harness.YurthubCache, harness.CacheFiles("kubelet"))
	fmt.Printf(`files
  /etc/kubernetes/manifests/yurthub.yaml   yurthub static pod
  /var/lib/yurthub                         yurthub's certificates and state
  /etc/kubernetes/cache                    yurthub's cache of the cluster
  /var/lib/openyurt/kubelet.conf           kubelet's kubeconfig (server http://127.0.0.1:10261)
  /var/lib/openyurt/join-state.json        what join wrote (reset reads it)
  %s/cluster                 control plane: PKI, kubeconfig/admin.conf, logs/
  %s/logs/containerd.log
  /var/log/systemctl-standin/kubelet.log   kubelet's log
cluster
  export KUBECONFIG=%s
  export PATH=%s:$PATH    # kubelet, crictl, the systemctl stand-in, yurtadm
undo the join
  yurtadm reset --force   (with the PATH above)
tear everything down
  make quickstart-down
`, h.Work, h.Work, h.CP.AdminKubeconfig, h.Bin)
}

func errOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "error: %v\n", err)
	os.Exit(1)
}
