// Package lock is the cluster-wide lock of yurtctl convert and revert: one
// Lease that a run holds, and renews, for its whole length.
package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/kube"
)

// The lock: one Lease that convert and revert hold for their whole run.
const (
	Name                = "yurtctl-convert-lock"
	AnnotationOperation = "yurtctl.openyurt.io/operation"
	lockDuration        = 30 * time.Second
)

// RenewInterval is how often the holder renews its Lease (tests shorten it).
var RenewInterval = 10 * time.Second

// ErrHeld is returned when another live convert or revert holds the lock.
var ErrHeld = errors.New("another yurtctl convert or revert is running")

// Lock is a held Lease lock. It renews itself until Release.
type Lock struct {
	kc       kube.Interface
	ns, id   string
	uid      types.UID
	stop     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	renewErr error
	lost     chan struct{}
	lostErr  error
	now      func() time.Time
}

// Identity names this process as a lock holder: host/pid/operation.
func Identity(op string) string {
	h, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", h, os.Getpid(), op)
}

// observeTick paces the watch on a Lease that looks expired; tests
// shorten it.
var observeTick = func() <-chan time.Time { return time.After(time.Second) }

// ErrLost is the cause a run stops with when its lock is gone.
var ErrLost = errors.New("this run lost the lock")

// Acquire takes the Lease ns/Name for op, or returns ErrHeld
// (with who holds it) when another live convert or revert has it.
//
// Whether a holder is alive is decided as client-go's leader election
// decides it, by this machine's clock only: a Lease renewed within its
// duration by the holder's own timestamps is live, and refused at once (a
// holder's clock ahead of ours only makes it look live longer); one that
// looks expired is watched for a whole lease duration, and taken over only
// if nobody renewed it meanwhile (a holder whose clock is behind ours keeps
// renewing it, and is refused). Nothing else counts: a process ID means
// nothing across containers or two masters with one hostname.
// logf, when set, hears about a takeover.
func Acquire(ctx context.Context, kc kube.Interface, ns, id string, now func() time.Time, logf func(string, ...any)) (*Lock, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
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
		l.Labels[constants.LabelManagedBy] = constants.ManagedBy
	}
	got, err := api.Get(ctx, Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: Name, Namespace: ns}}
		want(l)
		got, err = api.Create(ctx, l, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil, held(ns, "a convert or revert that started at the same moment", "")
		}
		if err != nil {
			return nil, fmt.Errorf("create the lock Lease %s/%s: %w", ns, Name, err)
		}
	case err != nil:
		return nil, fmt.Errorf("read the lock Lease %s/%s: %w", ns, Name, err)
	default:
		holder := ""
		if got.Spec.HolderIdentity != nil {
			holder = *got.Spec.HolderIdentity
		}
		if holder != "" && holder != id {
			if !expired(got, now()) {
				age := "never renewed"
				if got.Spec.RenewTime != nil {
					age = "renewed " + now().Sub(got.Spec.RenewTime.Time).Round(time.Second).String() + " ago by its clock"
				}
				return nil, held(ns, holder, age)
			}
			logf("the lock %s/%s of %s looks expired by its timestamps: watching it for %s before taking it over", ns, Name, holder, lockDuration)
			rv := got.ResourceVersion
			for i := 0; i < int(lockDuration/time.Second); i++ {
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-observeTick():
				}
				again, err := api.Get(ctx, Name, metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					return Acquire(ctx, kc, ns, id, now, logf)
				}
				if err != nil {
					return nil, fmt.Errorf("read the lock Lease %s/%s: %w", ns, Name, err)
				}
				if again.ResourceVersion != rv {
					h := ""
					if again.Spec.HolderIdentity != nil {
						h = *again.Spec.HolderIdentity
					}
					return nil, held(ns, h, "it renewed the lock while this run watched it: its clock is behind this machine's")
				}
			}
		}
		want(got)
		got, err = api.Update(ctx, got, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			return nil, held(ns, "a convert or revert that took the lock at the same moment", "")
		}
		if err != nil {
			return nil, fmt.Errorf("take over the lock Lease %s/%s: %w", ns, Name, err)
		}
	}
	l := &Lock{kc: kc, ns: ns, id: id, uid: got.UID, stop: make(chan struct{}), done: make(chan struct{}), lost: make(chan struct{}), now: now}
	go l.renew()
	return l, nil
}

// Peek says, without taking it, who holds the lock and whether that
// holder is live by its timestamps; holder is empty when the Lease is
// missing or names nobody.
func Peek(ctx context.Context, kc kube.Interface, ns string, now time.Time) (holder string, live bool, err error) {
	l, err := kc.CoordinationV1().Leases(ns).Get(ctx, Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", false, nil
	}
	if err != nil || l.Spec.HolderIdentity == nil {
		return "", false, err
	}
	return *l.Spec.HolderIdentity, !expired(l, now), nil
}

func expired(l *coordinationv1.Lease, now time.Time) bool {
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return true
	}
	return now.After(l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second))
}

func held(ns, holder, age string) error {
	msg := fmt.Sprintf("%v: the Lease %s/%s is held by %s", ErrHeld, ns, Name, holder)
	if age != "" {
		msg += " (" + age + ")"
	}
	return &cmdutil.Error{Code: cmdutil.ExitPreflight, Err: fmt.Errorf("%w", wrapHeld{msg}),
		Hint: fmt.Sprintf("wait until it finishes; if it was killed, its lock expires %s after its last renewal (or delete it: kubectl -n %s delete lease %s)", lockDuration, ns, Name)}
}

type wrapHeld struct{ msg string }

func (w wrapHeld) Error() string { return w.msg }
func (w wrapHeld) Unwrap() error { return ErrHeld }

func (l *Lock) renew() {
	defer close(l.done)
	t := time.NewTicker(RenewInterval)
	defer t.Stop()
	last := time.Now() // this machine's monotonic clock
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), RenewInterval)
		err := l.renewOnce(ctx)
		cancel()
		l.mu.Lock()
		l.renewErr = err
		l.mu.Unlock()
		switch {
		case err == nil:
			last = time.Now()
		case errors.Is(err, errTakenOver) || time.Since(last) >= lockDuration-RenewInterval:
			// Taken over, or not renewed for so long that another run
			// may take it over before the next try: this run stops.
			l.markLost(err)
			return
		}
	}
}

// errTakenOver: the Lease names another holder.
var errTakenOver = errors.New("the lock was taken over")

func (l *Lock) markLost(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lostErr == nil {
		l.lostErr = fmt.Errorf("%w: %v", ErrLost, err)
		close(l.lost)
	}
}

// Lost is closed once the lock is lost; LostErr says why.
func (l *Lock) Lost() <-chan struct{} { return l.lost }

// LostErr is why the lock was lost (nil while held).
func (l *Lock) LostErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lostErr
}

func (l *Lock) renewOnce(ctx context.Context) error {
	api := l.kc.CoordinationV1().Leases(l.ns)
	got, err := api.Get(ctx, Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w: the Lease was deleted", errTakenOver)
	}
	if err != nil {
		return err
	}
	if got.Spec.HolderIdentity == nil || *got.Spec.HolderIdentity != l.id {
		h := "nobody"
		if got.Spec.HolderIdentity != nil {
			h = *got.Spec.HolderIdentity
		}
		return fmt.Errorf("%w by %s", errTakenOver, h)
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
	got, err := api.Get(ctx, Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("release the lock: %w", err)
	}
	if got.Spec.HolderIdentity == nil || *got.Spec.HolderIdentity != l.id {
		return nil
	}
	err = api.Delete(ctx, Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &got.UID, ResourceVersion: &got.ResourceVersion}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("release the lock: %w", err)
	}
	return nil
}
