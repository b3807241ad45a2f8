package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/yurtadm/yurtadm/test/e2e/harness"
	"github.com/yurtadm/yurtadm/test/framework"
)

// h is the machine every scenario runs on; nil when the suite is skipped.
var h *harness.Harness

// skipReason says why the scenarios do not run (empty when they do).
var skipReason string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv(harness.EnvE2E) != "1" {
		skipReason = "end-to-end scenarios change this machine (containerd, kubelet, iptables): set " + harness.EnvE2E + "=1 as root, or run `make e2e`"
		return m.Run()
	}
	var err error
	h, err = harness.New(os.Stderr)
	if err == nil {
		if missing := h.Prerequisites(); len(missing) > 0 {
			err = fmt.Errorf("missing: %s", strings.Join(missing, "; "))
		}
	}
	if err != nil {
		if framework.InCI() {
			fmt.Fprintf(os.Stderr, "FAIL: %s=1 under CI=true but the harness cannot run: %v\n", harness.EnvE2E, err)
			return 1
		}
		skipReason = "harness unavailable: " + err.Error()
		h = nil
		return m.Run()
	}
	ctx := context.Background()
	if err := h.Up(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: bring the machine up: %v\n", err)
		if h.CP != nil {
			fmt.Fprintln(os.Stderr, h.CP.LogTails(40))
		}
		_ = h.Clean(ctx)
		return 1
	}
	code := m.Run()
	if code != 0 && h.CP != nil {
		fmt.Fprintf(os.Stderr, "control plane logs:\n%s\n", h.CP.LogTails(30))
	}
	if err := h.CleanAll(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: tear down: %v\n", err)
		code = 1
	}
	if left := h.Leftovers(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: left on the machine after tear-down:\n  %s\n", strings.Join(left, "\n  "))
		code = 1
	} else {
		fmt.Fprintln(os.Stderr, "tear-down: nothing of the harness is left on this machine")
	}
	return code
}

// machine returns the harness with a fresh node (nothing joined, no Node
// object), or skips t with the reason.
func machine(t *testing.T) *harness.Harness {
	t.Helper()
	if h == nil {
		t.Skip(skipReason)
	}
	ctx := context.Background()
	if err := h.CleanNode(ctx); err != nil {
		t.Fatalf("clean the node: %v", err)
	}
	h.DeleteNode(ctx)
	if err := h.InstallKubeletUnit(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kubelet log (tail):\n%s", harness.Tail("/var/log/systemctl-standin/kubelet.log", 40))
			t.Logf("yurthub: %s", h.YurthubLogs(ctx, 40))
		}
	})
	return h
}

// join runs yurtadm join and fails t unless it exits 0.
func join(t *testing.T, extra ...string) harness.Result {
	t.Helper()
	tok, err := h.Token(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r, err := h.Run(context.Background(), h.Yurtadm(), h.JoinArgs(tok, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	if r.ExitCode != 0 {
		t.Fatalf("yurtadm join failed:\n%s", harness.Redact(r.String(), tok))
	}
	return r
}

const workloadName = "sleeper"

// workloadPod creates the test workload and waits until it runs.
func workloadPod(t *testing.T, name string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	zero := int64(0)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			NodeSelector:                  map[string]string{"kubernetes.io/hostname": harness.NodeName()},
			TerminationGracePeriodSeconds: &zero,
			Containers: []corev1.Container{{
				Name: workloadName, Image: harness.SleeperImage, ImagePullPolicy: corev1.PullNever,
			}},
		},
	}
	_ = h.CP.Client.CoreV1().Pods("default").Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	_ = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := h.CP.Client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		return err != nil, nil
	})
	if _, err := h.CP.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s: %v", name, err)
	}
	var got *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := h.CP.Client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		got = p
		return p.Status.Phase == corev1.PodRunning, nil
	})
	if err != nil {
		t.Fatalf("pod %s not Running: %v (status %+v)", name, err, got.Status)
	}
	return got
}
