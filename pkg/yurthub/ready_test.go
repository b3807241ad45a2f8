package yurthub

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/yurtadm/yurtadm/pkg/kube/kubetest"
	k8stesting "k8s.io/client-go/testing"
)

// TestWaitNodeReadyNeedsReadyToHold: a Node that says Ready, then
// NotReady a moment later (a kubelet just restarted), then Ready again is
// Ready only once it has said so readyHolds checks in a row.
func TestWaitNodeReadyNeedsReadyToHold(t *testing.T) {
	since := time.Now().Add(-time.Minute)
	node := func(st corev1.ConditionStatus) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "edge-1"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: st, LastTransitionTime: metav1.NewTime(time.Now()), LastHeartbeatTime: metav1.NewTime(time.Now())}}}}
	}
	seq := []corev1.ConditionStatus{corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionTrue, corev1.ConditionTrue, corev1.ConditionTrue, corev1.ConditionTrue}
	kc := fake.NewSimpleClientset()
	gets := 0
	kc.PrependReactor("get", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		st := corev1.ConditionTrue
		if gets < len(seq) {
			st = seq[gets]
		}
		gets++
		return true, node(st), nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := WaitNodeReady(ctx, kubetest.Wrap(kc), "edge-1", since, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if gets != 2+readyHolds {
		t.Errorf("Ready after %d checks, want %d (the NotReady in between restarts the count)", gets, 2+readyHolds)
	}
}
