package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/convert"
	"github.com/yurtadm/yurtadm/test/e2e/harness"
)

// kubeletFiles are the kubelet files of a kubeadm node that revert must
// give back byte for byte.
var kubeletFiles = []string{
	"/var/lib/kubelet/kubeadm-flags.env",
	"/var/lib/kubelet/config.yaml",
	"/etc/kubernetes/kubelet.conf",
	"/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
}

// kubeadmNode joins this machine with the real `kubeadm join` (the plain
// starting point of TestConvertAndRevert).
func kubeadmNode(t *testing.T) {
	t.Helper()
	if err := h.InstallKubeadmDropIn(); err != nil {
		t.Fatal(err)
	}
	tok, err := h.Token(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.RunUntilReady(context.Background(), 3*time.Minute, "kubeadm", h.KubeadmJoinArgs(tok)...); err != nil {
		t.Fatalf("kubeadm join: %s", harness.Redact(err.Error(), tok))
	}
}

// yurtctl runs yurtctl with the admin kubeconfig and returns the result.
func yurtctl(t *testing.T, args ...string) harness.Result {
	t.Helper()
	r, err := h.Run(context.Background(), h.Yurtctl(), append(args, "--kubeconfig", h.CP.AdminKubeconfig)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: exit %d in %s", strings.Join(args, " "), r.ExitCode, r.Took.Round(100*time.Millisecond))
	return r
}

// noNodeJobs fails t if a convert or revert Job is left.
func noNodeJobs(t *testing.T) {
	t.Helper()
	jobs, err := h.CP.Client.BatchV1().Jobs(constants.DefaultNamespace).List(context.Background(), metav1.ListOptions{LabelSelector: convert.LabelJob})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs.Items {
		t.Errorf("Job %s/%s left behind", j.Namespace, j.Name)
	}
}

func restarts(p *corev1.Pod) int32 {
	var n int32
	for _, c := range p.Status.ContainerStatuses {
		n += c.RestartCount
	}
	return n
}

// Scenario: a kubeadm-joined node through `yurtctl convert` and back with
// `yurtctl revert`; the workload is undisturbed and revert gives kubelet's
// files back byte for byte.
func TestConvertAndRevert(t *testing.T) {
	machine(t)
	ctx := context.Background()
	undo, err := h.InstallHostSystemctl()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(undo)
	t.Cleanup(func() {
		if t.Failed() {
			pods, _ := h.CP.Client.CoreV1().Pods(constants.DefaultNamespace).List(ctx, metav1.ListOptions{LabelSelector: convert.LabelJob})
			for _, p := range pods.Items {
				for _, c := range p.Status.ContainerStatuses {
					if c.State.Terminated != nil {
						t.Logf("job pod %s: %s", p.Name, c.State.Terminated.Message)
					}
				}
			}
		}
	})
	// The control-plane phase installs OpenYurt's charts, whose yurt-manager
	// this single-host harness cannot run (see installYurthubObjects): the
	// scenario skips that phase in convert and revert (the multi-node
	// harness runs it, test/e2e/multinode/convert).
	kubeadmNode(t)
	before, err := harness.Checksums(kubeletFiles...)
	if err != nil {
		t.Fatal(err)
	}
	for p, s := range before {
		if s == "missing" {
			t.Fatalf("%s missing after kubeadm join", p)
		}
	}
	pod := workloadPod(t, "sleeper-convert")
	t.Cleanup(func() { // the next scenarios' node must not find it
		zero := int64(0)
		_ = h.CP.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	})
	ctrs := h.RunningContainers(ctx, workloadName)
	node, err := h.Node(ctx)
	if err != nil {
		t.Fatal(err)
	}
	convertArgs := func(image, timeout string) []string {
		return []string{"convert", "--yes", "--timeout", timeout, "--node-image", h.YurtadmImage(), "--skip-phases", "control-plane",
			"--yurthub-image", image, "--yurthub-extra-arg=--enable-dummy-if=false"}
	}
	// untouched fails t unless the node is as kubeadm left it: kubelet's
	// files byte-identical, talking to kube-apiserver, no OpenYurt file,
	// label or annotation, the workload undisturbed, no Job left.
	untouched := func(t *testing.T) {
		t.Helper()
		after, err := harness.Checksums(kubeletFiles...)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range kubeletFiles {
			if after[f] != before[f] {
				t.Errorf("%s: sha256 %s now, %s before convert", f, after[f], before[f])
			}
		}
		if err := h.WaitNodeReady(ctx, time.Minute); err != nil {
			t.Fatal(err)
		}
		if kc, server, err := h.KubeletKubeconfigServer(); err != nil || !strings.HasPrefix(server, "https://") {
			t.Errorf("kubelet's kubeconfig %s has server %q (%v), want kube-apiserver", kc, server, err)
		} else if kc != "/etc/kubernetes/kubelet.conf" {
			t.Errorf("kubelet runs with %s, want kubeadm's /etc/kubernetes/kubelet.conf", kc)
		}
		for _, p := range []string{constants.YurthubManifest, constants.YurthubDir, constants.YurthubCacheDir, constants.OpenYurtKubeletConfig} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s left", p)
			}
		}
		n, err := h.Node(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{constants.LabelEdgeWorker, constants.LabelNodePool} {
			if v, ok := n.Labels[k]; ok {
				t.Errorf("label %s=%s left", k, v)
			}
		}
		for _, k := range []string{constants.AnnotationAutonomyDur, constants.AnnotationAutonomy} {
			if v, ok := n.Annotations[k]; ok {
				t.Errorf("annotation %s=%s left", k, v)
			}
		}
		p, err := h.CP.Client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.UID != pod.UID || restarts(p) != restarts(pod) {
			t.Errorf("workload pod: uid %s→%s, restarts %d→%d", pod.UID, p.UID, restarts(pod), restarts(p))
		}
		noNodeJobs(t)
	}

	// The seed walkthrough's command line: what maps to something real is
	// accepted (here with --dry-run), the tunnel is refused naming why.
	t.Run("seed command line", func(t *testing.T) {
		r := yurtctl(t, "convert", "--provider", "kubeadm", "--cloud-nodes", node.Name,
			"--yurt-controller-manager-image", "openyurt/yurt-manager:v1.7.0", "--yurtctl-servant-image", h.YurtadmImage(), "--dry-run")
		if r.ExitCode != 0 || !strings.Contains(r.Stdout, node.Name) || !strings.Contains(r.Stdout, "cloud") {
			t.Errorf("the seed's convert, dry run: want exit 0 and %s planned as a cloud node:\n%s", node.Name, r)
		}
		r = yurtctl(t, "convert", "--cloud-nodes", node.Name, "--deploy-yurttunnel", "--yes")
		if r.ExitCode != 2 || !strings.Contains(r.Stderr, "yurt-tunnel") {
			t.Errorf("--deploy-yurttunnel: want exit 2 naming yurt-tunnel's replacement:\n%s", r)
		}
		untouched(t)
	})

	// Fault: yurthub never becomes healthy (its image cannot be pulled:
	// there is no registry). The node step rolls the node back and convert
	// names it and exits non-zero.
	t.Run("yurthub never healthy is rolled back", func(t *testing.T) {
		r := yurtctl(t, convertArgs("yurtadm.invalid/yurthub:broken", "20s")...)
		if r.ExitCode == 0 {
			t.Fatalf("convert with a yurthub that cannot start exited 0:\n%s", r)
		}
		all := r.Stdout + r.Stderr
		if !strings.Contains(all, node.Name) || !strings.Contains(all, "rolled-back") || !strings.Contains(all, "took the OpenYurt labels and annotations back") {
			t.Errorf("want %s named as rolled-back and its labels taken back:\n%s", node.Name, r)
		}
		t.Logf("convert with a broken yurthub image:\n%s", all)
		untouched(t)
	})
	if t.Failed() {
		return
	}

	// Faults: a second convert while one runs is refused by the lock; the
	// running one killed while its node step runs (yurthub's manifest is
	// written); the next run completes it.
	t.Run("second convert refused, first killed midway", func(t *testing.T) {
		kctx, kill := context.WithCancel(ctx)
		defer kill()
		second := make(chan harness.Result, 1)
		go func() {
			defer close(second)
			for kctx.Err() == nil {
				if _, err := os.Stat(constants.YurthubManifest); err == nil {
					// The first convert is in its node step, holding the lock.
					r, err := h.Run(ctx, h.Yurtctl(), append(convertArgs(harness.YurthubImage, "90s"), "--kubeconfig", h.CP.AdminKubeconfig)...)
					if err == nil {
						second <- r
					}
					kill()
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
		r, err := h.Run(kctx, h.Yurtctl(), append(convertArgs(harness.YurthubImage, "90s"), "--kubeconfig", h.CP.AdminKubeconfig)...)
		if err != nil {
			t.Fatal(err)
		}
		if r.ExitCode == 0 {
			t.Fatalf("convert finished before yurthub's manifest was seen:\n%s", r)
		}
		t.Logf("killed after %s", r.Took.Round(100*time.Millisecond))
		r2, ok := <-second
		if !ok {
			t.Fatal("the second convert did not run")
		}
		if r2.ExitCode != 3 || !strings.Contains(r2.Stderr, "another yurtctl convert or revert is running") {
			t.Errorf("a second convert while the first runs: want exit 3 naming the lock:\n%s", r2)
		}
		t.Logf("the second convert, while the first ran: exit %d\n%s", r2.ExitCode, r2.Stderr)
	})

	t.Run("convert", func(t *testing.T) {
		// The killed run's lock is live until it has gone unrenewed for
		// its duration (30 s); then the next run watches it for one more
		// duration, sees nobody renew it, and takes it over.
		err := wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
			l, err := h.CP.Client.CoordinationV1().Leases(constants.DefaultNamespace).Get(ctx, convert.LockName, metav1.GetOptions{})
			if err != nil || l.Spec.RenewTime == nil {
				return true, nil
			}
			return time.Since(l.Spec.RenewTime.Time) > 30*time.Second, nil
		})
		if err != nil {
			t.Fatalf("the killed run's lock did not expire: %v", err)
		}
		r := yurtctl(t, convertArgs(harness.YurthubImage, "90s")...)
		if r.ExitCode != 0 {
			t.Fatalf("yurtctl convert failed:\n%s", r)
		}
		if !strings.Contains(r.Stderr, "looks expired by its timestamps: watching it for 30s") {
			t.Errorf("the re-run did not watch the killed run's lock before taking it over:\n%s", r.Stderr)
		}
		t.Logf("re-run after the kill:\n%s", r.Stderr)
		if !strings.Contains(r.Stderr, "took over the running Job") && !strings.Contains(r.Stderr, "yurthub already runs on this node") {
			t.Errorf("the re-run neither took over the killed run's Job nor found its node converted")
		}
		if err := h.WaitNodeReady(ctx, time.Minute); err != nil {
			t.Fatal(err)
		}
		if kc, server, err := h.KubeletKubeconfigServer(); err != nil || server != constants.YurthubProxyURL {
			t.Errorf("kubelet's kubeconfig %s has server %q (%v), want %s", kc, server, err, constants.YurthubProxyURL)
		}
		if code, _, err := harness.Get(constants.YurthubHealthzURL); err != nil || code != 200 {
			t.Errorf("yurthub healthz: %d %v", code, err)
		}
		n, err := h.Node(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n.Labels[constants.LabelEdgeWorker] != "true" || n.Labels[constants.LabelNodePool] != "edge" || n.Annotations[constants.AnnotationAutonomyDur] != "0" {
			t.Errorf("node labels %v annotations %v", n.Labels, n.Annotations)
		}
		p, err := h.CP.Client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.UID != pod.UID || restarts(p) != restarts(pod) || p.Status.Phase != corev1.PodRunning {
			t.Errorf("workload pod: uid %s→%s, restarts %d→%d, phase %s", pod.UID, p.UID, restarts(pod), restarts(p), p.Status.Phase)
		}
		if got := h.RunningContainers(ctx, workloadName); strings.Join(got, ",") != strings.Join(ctrs, ",") {
			t.Errorf("workload containers %v, before convert %v", got, ctrs)
		}
		noNodeJobs(t)
	})
	if t.Failed() {
		return
	}

	t.Run("revert", func(t *testing.T) {
		r := yurtctl(t, "revert", "--yes", "--timeout", "90s", "--node-image", h.YurtadmImage(), "--skip-phases", "control-plane")
		if r.ExitCode != 0 {
			t.Fatalf("yurtctl revert failed:\n%s", r)
		}
		untouched(t)
	})
}
