package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/yurtadm/yurtadm/test/e2e/harness"
)

// outageResult is what a cut from the cloud did to the workload.
type outageResult struct {
	// backAfter is how long after kubelet's restart the workload ran
	// again while kube-apiserver was down; 0 if it did not within the wait.
	backAfter time.Duration
	sameUID   bool
	uidAfter  types.UID
}

// cloudOutage is the Raspberry Pi blog's experiment: with pod running on
// the node, stop kube-apiserver (the cloud is gone), then restart kubelet
// and remove every pod container as a reboot would, and watch whether the
// workload runs again while the cloud is away (for up to wait). Then the
// cloud returns: the Node must be Ready again and the pod must be the same
// pod (same UID), Running.
func cloudOutage(t *testing.T, pod *corev1.Pod, waitFor time.Duration) outageResult {
	t.Helper()
	ctx := context.Background()
	var res outageResult
	if err := h.CP.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			if err := h.CP.StartAPIServer(); err != nil {
				t.Errorf("restart kube-apiserver: %v", err)
			}
		}
	}()
	t.Logf("kube-apiserver stopped")
	if r, err := h.Run(ctx, "systemctl", "stop", "kubelet"); err != nil || r.ExitCode != 0 {
		t.Fatalf("stop kubelet: %v %s", err, r)
	}
	if r, err := h.Crictl(ctx, "rmp", "-a", "-f"); err != nil || r.ExitCode != 0 {
		t.Fatalf("remove the pods: %v %s", err, r)
	}
	if ids := h.RunningContainers(ctx, workloadName); len(ids) > 0 {
		t.Fatalf("workload still running after its pods were removed")
	}
	if r, err := h.Run(ctx, "systemctl", "start", "kubelet"); err != nil || r.ExitCode != 0 {
		t.Fatalf("start kubelet: %v %s", err, r)
	}
	start := time.Now()
	t.Logf("kubelet restarted, pod containers gone; waiting up to %s for the workload with the cloud away", waitFor)
	for time.Since(start) < waitFor {
		if ids := h.RunningContainers(ctx, workloadName); len(ids) > 0 {
			res.backAfter = time.Since(start)
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if res.backAfter > 0 {
		t.Logf("workload running again %s after kubelet's restart, kube-apiserver still down", res.backAfter.Round(100*time.Millisecond))
	} else {
		t.Logf("workload not running %s after kubelet's restart with kube-apiserver down", waitFor)
	}

	restarted = true
	if err := h.CP.StartAPIServer(); err != nil {
		t.Fatalf("restart kube-apiserver: %v", err)
	}
	t.Logf("kube-apiserver back")
	if err := h.WaitNodeReady(ctx, 3*time.Minute); err != nil {
		t.Errorf("node not Ready after the cloud came back: %v", err)
	}
	var last *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := h.CP.Client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = p
		return p.Status.Phase == corev1.PodRunning && len(h.RunningContainers(ctx, workloadName)) > 0, nil
	})
	if err != nil {
		t.Errorf("pod %s not Running after the cloud came back: %v (%v)", pod.Name, err, last)
	}
	if last != nil {
		res.uidAfter = last.UID
		res.sameUID = last.UID == pod.UID
	}
	return res
}

// markAutonomous sets OpenYurt's autonomy annotations on the node.
func markAutonomous(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	patch := []byte(`{"metadata":{"annotations":{"node.openyurt.io/autonomy-duration":"0","node.beta.openyurt.io/autonomy":"true"}}}`)
	if _, err := h.CP.Client.CoreV1().Nodes().Patch(ctx, harness.NodeName(), types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("annotate node: %v", err)
	}
}

// waitCached waits until yurthub's cache holds the pod for kubelet.
func waitCached(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return hasCachedObject("pods.v1.core", pod.Namespace, pod.Name), nil
	})
	if err != nil {
		t.Fatalf("yurthub's cache has no pod %s/%s for kubelet", pod.Namespace, pod.Name)
	}
}

// Scenario 5: an autonomous edge node keeps its workload through a cloud
// outage and a kubelet restart; a plain kubeadm node does not. (This file
// sorts last so that the other scenarios do not wait for the control
// plane's controllers to recover from the kube-apiserver restart.)
func TestAutonomy(t *testing.T) {
	t.Run("yurtadm edge node", func(t *testing.T) {
		machine(t)
		join(t)
		if err := h.WaitNodeReady(context.Background(), time.Minute); err != nil {
			t.Fatal(err)
		}
		markAutonomous(t)
		pod := workloadPod(t, "sleeper-autonomy")
		waitCached(t, pod)
		res := cloudOutage(t, pod, 2*time.Minute)
		if res.backAfter == 0 {
			t.Errorf("the workload did not come back from yurthub's cache while the cloud was away")
		}
		if !res.sameUID {
			t.Errorf("after the cloud came back the pod is %s, not the same pod %s", res.uidAfter, pod.UID)
		}
		autonomyReport = append(autonomyReport, fmt.Sprintf("yurtadm edge node: workload back after %s with kube-apiserver down; same pod after: %v",
			res.backAfter.Round(100*time.Millisecond), res.sameUID))
	})
	t.Run("kubeadm node", func(t *testing.T) {
		machine(t)
		kubeadmNode(t)
		pod := workloadPod(t, "sleeper-autonomy")
		res := cloudOutage(t, pod, time.Minute)
		if res.backAfter != 0 {
			t.Errorf("on a plain kubeadm node the workload came back without the cloud (after %s): the experiment shows no difference", res.backAfter)
		}
		if !res.sameUID {
			t.Errorf("after the cloud came back the pod is %s, not the same pod %s", res.uidAfter, pod.UID)
		}
		autonomyReport = append(autonomyReport, fmt.Sprintf("kubeadm node: workload not running for 1m with kube-apiserver down; running again, same pod, once it returned: %v", res.sameUID))
	})
	for _, l := range autonomyReport {
		t.Log(l)
	}
}

var autonomyReport []string
