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

// readySeq is a fake cluster whose Node says seq[i] at the i-th read
// (Ready after the last), each read taking delay.
type readySeq struct {
	kc    *fake.Clientset
	gets  int
	ready bool      // what the last read said
	first time.Time // when the read that began the current Ready run returned
}

func newReadySeq(seq []corev1.ConditionStatus, delay time.Duration) *readySeq {
	r := &readySeq{kc: fake.NewSimpleClientset()}
	r.kc.PrependReactor("get", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		time.Sleep(delay)
		st := corev1.ConditionTrue
		if r.gets < len(seq) {
			st = seq[r.gets]
		}
		if st == corev1.ConditionTrue && !r.ready {
			r.first = time.Now()
		}
		r.ready = st == corev1.ConditionTrue
		r.gets++
		return true, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "edge-1"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: st, LastTransitionTime: metav1.NewTime(time.Now()), LastHeartbeatTime: metav1.NewTime(time.Now())}}}}, nil
	})
	return r
}

// TestWaitNodeReadyNeedsReadyToHold: a Node that says Ready, then
// NotReady a moment later (a kubelet just restarted), then Ready again is
// Ready only once every check for readyHold since has found it Ready.
func TestWaitNodeReadyNeedsReadyToHold(t *testing.T) {
	since := time.Now().Add(-time.Minute)
	r := newReadySeq([]corev1.ConditionStatus{corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionTrue}, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	interval := 10 * time.Millisecond
	if _, err := WaitNodeReady(ctx, kubetest.Wrap(r.kc), "edge-1", since, interval); err != nil {
		t.Fatal(err)
	}
	if held, hold := time.Since(r.first), readyHoldIntervals*interval; held < hold {
		t.Errorf("Ready after it held %s, want at least %s (the NotReady in between restarts the hold)", held, hold)
	}
	if r.gets < 3+readyHoldIntervals {
		t.Errorf("Ready after %d checks, want at least %d", r.gets, 3+readyHoldIntervals)
	}
}

// TestWaitNodeReadyHoldIsTimeNotChecks: at join's 100 ms interval, over
// a slow link (each read a 300 ms round trip) two Ready reads in a row
// already span the hold.
func TestWaitNodeReadyHoldIsTimeNotChecks(t *testing.T) {
	r := newReadySeq(nil, 300*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := WaitNodeReady(ctx, kubetest.Wrap(r.kc), "edge-1", time.Now().Add(-time.Minute), 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if r.gets != 2 {
		t.Errorf("Ready after %d reads of 300 ms, want 2", r.gets)
	}
}
