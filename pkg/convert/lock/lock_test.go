package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/kube/kubetest"
)

func TestLock(t *testing.T) {
	kc := fake.NewSimpleClientset()
	ctx := context.Background()
	now := time.Now()
	clock := func() time.Time { return now }
	first, err := Acquire(ctx, kubetest.Wrap(kc), "kube-system", "hostA/1/convert", clock, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(ctx, kubetest.Wrap(kc), "kube-system", "hostB/2/revert", clock, nil)
	if !errors.Is(err, ErrHeld) || cmdutil.ExitCode(err) != cmdutil.ExitPreflight || !strings.Contains(err.Error(), "hostA/1/convert") {
		t.Fatalf("second holder: %v", err)
	}
	if err := first.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CoordinationV1().Leases("kube-system").Get(ctx, Name, metav1.GetOptions{}); err == nil {
		t.Error("the Lease is still there after Release")
	}

	observeTick = func() <-chan time.Time { return time.After(time.Millisecond) }
	lease := func(holder string, renewed time.Time) {
		t.Helper()
		rt := metav1.NewMicroTime(renewed)
		_ = kc.CoordinationV1().Leases("kube-system").Delete(ctx, Name, metav1.DeleteOptions{})
		if _, err := kc.CoordinationV1().Leases("kube-system").Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: Name, Namespace: "kube-system", ResourceVersion: "1"},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder), LeaseDurationSeconds: ptr.To[int32](30), RenewTime: &rt}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// An expired lock of a killed run: watched for a lease duration,
	// nobody renews it, taken over.
	lease("hostB/2/convert", now.Add(-time.Minute))
	var said []string
	l, err := Acquire(ctx, kubetest.Wrap(kc), "kube-system", "hostA/1/convert", clock, func(f string, a ...any) { said = append(said, fmt.Sprintf(f, a...)) })
	if err != nil {
		t.Fatalf("expired lock: %v", err)
	}
	if len(said) != 1 || !strings.Contains(said[0], "watching it for 30s") {
		t.Errorf("the takeover is not announced: %q", said)
	}
	l.Release(ctx)

	// A lock that looks expired because its holder's clock is behind
	// ours, but is renewed while this run watches: refused.
	lease("hostB/2/convert", now.Add(-time.Minute))
	gets := 0
	kc.PrependReactor("get", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if gets++; gets == 3 {
			l, _ := kc.Tracker().Get(a.GetResource(), "kube-system", Name)
			lc := l.(*coordinationv1.Lease).DeepCopy()
			lc.ResourceVersion = "2"
			_ = kc.Tracker().Update(a.GetResource(), lc, "kube-system")
		}
		return false, nil, nil
	})
	_, err = Acquire(ctx, kubetest.Wrap(kc), "kube-system", "hostA/1/convert", clock, nil)
	if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "clock is behind") {
		t.Errorf("a live holder with a slow clock: %v", err)
	}

	// A fresh lock whose holder has this host's name and a PID not
	// visible here (another container, another master with the same
	// name) is live: refused at once.
	host, _ := os.Hostname()
	lease(host+"/999999999/convert", now)
	if _, err := Acquire(ctx, kubetest.Wrap(kc), "kube-system", Identity("convert"), clock, nil); !errors.Is(err, ErrHeld) {
		t.Errorf("a live holder on a host of the same name was not refused: %v", err)
	}
	// A holder whose clock is ahead of ours looks live: refused.
	lease("hostC/3/revert", now.Add(time.Hour))
	if _, err := Acquire(ctx, kubetest.Wrap(kc), "kube-system", "hostA/1/convert", clock, nil); !errors.Is(err, ErrHeld) {
		t.Errorf("a holder with a clock ahead was not refused: %v", err)
	}
}

// TestLockLostStopsTheRun: a renewal that finds another holder marks the
// lock lost; the run's context ends with that cause.
func TestLockLostStopsTheRun(t *testing.T) {
	kc := fake.NewSimpleClientset()
	ctx := context.Background()
	l, err := Acquire(ctx, kubetest.Wrap(kc), "kube-system", "hostA/1/convert", time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	got, _ := kc.CoordinationV1().Leases("kube-system").Get(ctx, Name, metav1.GetOptions{})
	got.Spec.HolderIdentity = ptr.To("hostB/2/convert")
	if _, err := kc.CoordinationV1().Leases("kube-system").Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := l.renewOnce(ctx); !errors.Is(err, errTakenOver) || !strings.Contains(err.Error(), "hostB/2/convert") {
		t.Fatalf("renewal after a takeover: %v", err)
	}
	l.markLost(errTakenOver)
	select {
	case <-l.Lost():
	default:
		t.Fatal("Lost() not closed")
	}
	if !errors.Is(l.LostErr(), ErrLost) {
		t.Errorf("LostErr = %v", l.LostErr())
	}
	// Release leaves the new holder's Lease alone.
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CoordinationV1().Leases("kube-system").Get(ctx, Name, metav1.GetOptions{}); err != nil {
		t.Errorf("the new holder's Lease was deleted: %v", err)
	}
}

func TestPeek(t *testing.T) {
	kc := fake.NewSimpleClientset()
	ctx := context.Background()
	now := time.Now()
	if h, live, err := Peek(ctx, kubetest.Wrap(kc), "kube-system", now); h != "" || live || err != nil {
		t.Fatalf("no Lease: %q %v %v", h, live, err)
	}
	l, err := Acquire(ctx, kubetest.Wrap(kc), "kube-system", "hostA/1/convert", func() time.Time { return now }, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	if h, live, err := Peek(ctx, kubetest.Wrap(kc), "kube-system", now); h != "hostA/1/convert" || !live || err != nil {
		t.Errorf("held: %q %v %v", h, live, err)
	}
	if h, live, _ := Peek(ctx, kubetest.Wrap(kc), "kube-system", now.Add(time.Hour)); h != "hostA/1/convert" || live {
		t.Errorf("expired: %q %v", h, live)
	}
}
