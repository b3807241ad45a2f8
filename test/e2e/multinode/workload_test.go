package multinode

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/yurtadm/yurtadm/test/cluster"
	"github.com/yurtadm/yurtadm/test/cluster/clustertest"
)

// runPod runs a one-shot pod of the web image with args on node and
// returns its log; it fails t unless the pod succeeds.
func runPod(ctx context.Context, t *testing.T, name, node string, args ...string) string {
	t.Helper()
	out, err := onePod(ctx, t, name, node, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tryPod is runPod that returns a failed pod's error and log as its
// result instead of failing t.
func tryPod(ctx context.Context, t *testing.T, name, node string, args ...string) string {
	t.Helper()
	out, err := onePod(ctx, t, name, node, args...)
	if err != nil {
		return err.Error()
	}
	return out
}

func onePod(ctx context.Context, t *testing.T, name, node string, args ...string) (string, error) {
	t.Helper()
	spec := cluster.WebPodSpec(node, args...)
	spec.RestartPolicy = corev1.RestartPolicyNever
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: spec}
	if _, err := clustertest.C.Client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	defer func() {
		_ = clustertest.C.Client.CoreV1().Pods("default").Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	}()
	var phase corev1.PodPhase
	err := cluster.Poll(ctx, time.Minute, func() (bool, string) {
		got, err := clustertest.C.Client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		phase = got.Status.Phase
		return phase == corev1.PodSucceeded || phase == corev1.PodFailed, string(phase)
	})
	logs, _ := clustertest.C.Client.CoreV1().Pods("default").GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil || phase != corev1.PodSucceeded {
		return "", fmt.Errorf("pod %s on %s (%s): %v %s\nlog: %s", name, node, strings.Join(args, " "), err, phase, logs)
	}
	return string(logs), nil
}

// servesInside asks the web workload at ip:8080 from inside node n.
func servesInside(ctx context.Context, n *cluster.Node, ip string) (string, error) {
	out, err := n.Output(ctx, "ynode-web", "-get", fmt.Sprintf("http://%s:8080/", ip))
	return strings.TrimSpace(out), err
}

// runningContainer is the ID of the Running container called name on n, "" if none.
func runningContainer(ctx context.Context, n *cluster.Node, name string) string {
	out, err := n.Output(ctx, "crictl", "ps", "--name", "^"+name+"$", "--state", "Running", "-q")
	if err != nil {
		return ""
	}
	f := strings.Fields(out)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// nodeReadyStatus is the Node's Ready condition status.
func nodeReadyStatus(ctx context.Context, name string) corev1.ConditionStatus {
	n, err := clustertest.C.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "error: " + corev1.ConditionStatus(err.Error())
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status
		}
	}
	return ""
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
