package convert

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/kube"
)

// The lock: one Lease that convert and revert hold for their whole run.
const (
	LockName            = "yurtctl-convert-lock"
	AnnotationOperation = "yurtctl.openyurt.io/operation"
	lockDuration        = 30 * time.Second
	lockRenew           = 10 * time.Second
)

// ErrLockHeld is returned when another live convert or revert holds the lock.
var ErrLockHeld = errors.New("another yurtctl convert or revert is running")

// Lock is a held Lease lock. It renews itself until Release.
type Lock struct {
	kc       kube.Interface
	ns, id   string
	uid      types.UID
	stop     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	renewErr error
	now      func() time.Time
}

// Identity names this process as a lock holder: host/pid/operation.
func Identity(op string) string {
	h, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", h, os.Getpid(), op)
}

// holderAlive reports whether holder may still be running: a holder on
// this host whose process is gone is dead; elsewhere only the Lease's
// expiry tells.
func holderAlive(holder string) bool {
	parts := strings.Split(holder, "/")
	if len(parts) < 2 {
		return true
	}
	if h, _ := os.Hostname(); h != parts[0] {
		return true
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 {
		return true
	}
	if pid == os.Getpid() {
		return true
	}
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// AcquireLock takes the Lease ns/LockName for op, or returns ErrLockHeld
// (with who holds it) when another live convert or revert has it. An
// expired Lease, or one whose holder on this host has died, is taken over.
func AcquireLock(ctx context.Context, kc kube.Interface, ns, id string, now func() time.Time) (*Lock, error) {
	api := kc.CoordinationV1().Leases(ns)
	t := metav1.NewMicroTime(now())
	secs := int32(lockDuration / time.Second)
	op := id[strings.LastIndex(id, "/")+1:]
	want := func(l *coordinationv1.Lease) {
		l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds = &id, &secs
		l.Spec.AcquireTime, l.Spec.RenewTime = &t, &t
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		l.Annotations[AnnotationOperation] = op
		if l.Labels == nil {
			l.Labels = map[string]string{}
		}
		l.Labels[LabelManagedBy] = ManagedBy
	}
	got, err := api.Get(ctx, LockName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: LockName, Namespace: ns}}
		want(l)
		got, err = api.Create(ctx, l, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil, held(ns, "a convert or revert that started at the same moment", "")
		}
		if err != nil {
			return nil, fmt.Errorf("create the lock Lease %s/%s: %w", ns, LockName, err)
		}
	case err != nil:
		return nil, fmt.Errorf("read the lock Lease %s/%s: %w", ns, LockName, err)
	default:
		holder := ""
		if got.Spec.HolderIdentity != nil {
			holder = *got.Spec.HolderIdentity
		}
		if holder != "" && holder != id && !expired(got, now()) && holderAlive(holder) {
			age := "never renewed"
			if got.Spec.RenewTime != nil {
				age = "renewed " + now().Sub(got.Spec.RenewTime.Time).Round(time.Second).String() + " ago"
			}
			return nil, held(ns, holder, age)
		}
		want(got)
		got, err = api.Update(ctx, got, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			return nil, held(ns, "a convert or revert that took the lock at the same moment", "")
		}
		if err != nil {
			return nil, fmt.Errorf("take over the lock Lease %s/%s: %w", ns, LockName, err)
		}
	}
	l := &Lock{kc: kc, ns: ns, id: id, uid: got.UID, stop: make(chan struct{}), done: make(chan struct{}), now: now}
	go l.renew()
	return l, nil
}

func expired(l *coordinationv1.Lease, now time.Time) bool {
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return true
	}
	return now.After(l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second))
}

func held(ns, holder, age string) error {
	msg := fmt.Sprintf("%v: the Lease %s/%s is held by %s", ErrLockHeld, ns, LockName, holder)
	if age != "" {
		msg += " (" + age + ")"
	}
	return &cmdutil.Error{Code: cmdutil.ExitPreflight, Err: fmt.Errorf("%w", wrapHeld{msg}),
		Hint: fmt.Sprintf("wait until it finishes; if it was killed, its lock expires %s after its last renewal (or delete it: kubectl -n %s delete lease %s)", lockDuration, ns, LockName)}
}

type wrapHeld struct{ msg string }

func (w wrapHeld) Error() string { return w.msg }
func (w wrapHeld) Unwrap() error { return ErrLockHeld }

func (l *Lock) renew() {
	defer close(l.done)
	t := time.NewTicker(lockRenew)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), lockRenew)
		err := l.renewOnce(ctx)
		cancel()
		l.mu.Lock()
		l.renewErr = err
		l.mu.Unlock()
	}
}

func (l *Lock) renewOnce(ctx context.Context) error {
	api := l.kc.CoordinationV1().Leases(l.ns)
	got, err := api.Get(ctx, LockName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if got.Spec.HolderIdentity == nil || *got.Spec.HolderIdentity != l.id {
		return fmt.Errorf("the lock was taken over by %v", got.Spec.HolderIdentity)
	}
	t := metav1.NewMicroTime(l.now())
	got.Spec.RenewTime = &t
	_, err = api.Update(ctx, got, metav1.UpdateOptions{})
	return err
}

// Err is the last renewal error, nil while the lock is held.
func (l *Lock) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.renewErr
}

// Release stops renewing and deletes the Lease if it is still this
// process's.
func (l *Lock) Release(ctx context.Context) error {
	if l == nil {
		return nil
	}
	select {
	case <-l.stop:
		return nil
	default:
		close(l.stop)
	}
	<-l.done
	api := l.kc.CoordinationV1().Leases(l.ns)
	got, err := api.Get(ctx, LockName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("release the lock: %w", err)
	}
	if got.Spec.HolderIdentity == nil || *got.Spec.HolderIdentity != l.id {
		return nil
	}
	err = api.Delete(ctx, LockName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &got.UID, ResourceVersion: &got.ResourceVersion}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("release the lock: %w", err)
	}
	return nil
}
