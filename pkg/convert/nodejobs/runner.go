package nodejobs

import (
	"context"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/yurtadm/yurtadm/pkg/kube"
)

// Runner runs one node step per node as Jobs: at most Concurrency at a
// time, watching Jobs and their pods (no polling), deleting each Job once
// it is done, and taking over the Jobs an interrupted run left.
type Runner struct {
	Client      kube.Interface
	Namespace   string
	Action      string // the value of LabelJob on the Jobs
	Concurrency int
	// Deadline is the Jobs' active deadline; a Job still running a minute
	// after it is deleted and its node timed out.
	Deadline time.Duration
	// Build makes a node's Job (Spec.Job).
	Build    func(node string) *batchv1.Job
	Progress func(format string, a ...any)
	// MessageGrace is how long a finished Job waits for its pod's result.
	MessageGrace time.Duration
}

func (r *Runner) selector() string { return LabelJob + "=" + r.Action }

// Run works on nodes and returns a result per node, in nodes' order. An
// error means ctx ended: the nodes not finished are "interrupted", and
// their Jobs keep running for the next run to take over.
func (r *Runner) Run(ctx context.Context, nodes []string) ([]Result, error) {
	if len(nodes) == 0 {
		return nil, nil
	}
	list, leftovers, err := r.leftovers(ctx, nodes)
	if err != nil {
		return nil, err
	}
	events := make(chan watch.Event, 256)
	wctx, stopWatches := context.WithCancel(ctx)
	defer stopWatches()
	go r.inform(wctx, events, &batchv1.Job{}, list)
	go r.inform(wctx, events, &corev1.Pod{}, nil)

	w := &wave{r: r, ctx: ctx, nodes: nodes, queue: append([]string(nil), nodes...), leftovers: leftovers,
		byJob: map[string]*tracked{}, byNode: map[string]*tracked{}, messages: map[string]*corev1.Pod{}, pending: map[string]*tracked{}}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for w.finished < len(nodes) {
		w.fill()
		if w.finished >= len(nodes) {
			break
		}
		select {
		case <-ctx.Done():
			w.interrupt()
			return w.results(), ctx.Err()
		case ev := <-events:
			switch o := ev.Object.(type) {
			case *batchv1.Job:
				w.handleJob(o, ev.Type)
			case *corev1.Pod:
				w.handlePod(o, false)
			}
		case now := <-tick.C:
			w.expire(now)
		}
	}
	w.drain(events)
	return w.results(), nil
}

// leftovers lists the Jobs of earlier runs: a running one for a node of
// nodes is taken over, the rest (finished, duplicates, other nodes') are
// deleted. The list is returned for the Jobs' informer to start from.
func (r *Runner) leftovers(ctx context.Context, nodes []string) (*batchv1.JobList, map[string]*batchv1.Job, error) {
	list, err := r.Client.BatchV1().Jobs(r.Namespace).List(ctx, metav1.ListOptions{LabelSelector: r.selector()})
	if err != nil {
		return nil, nil, fmt.Errorf("list earlier node Jobs: %w", err)
	}
	wanted := map[string]bool{}
	for _, n := range nodes {
		wanted[n] = true
	}
	out := map[string]*batchv1.Job{}
	for i := range list.Items {
		j := &list.Items[i]
		node := j.Annotations[AnnotationNode]
		if j.DeletionTimestamp != nil {
			continue
		}
		done, _, _ := jobFinished(j)
		if !wanted[node] || done || out[node] != nil {
			// Finished, or not ours to wait for: clean it.
			r.deleteJob(ctx, j.Name)
			if !done && wanted[node] {
				r.Progress("%s: deleted a duplicate Job %s of an earlier run", node, j.Name)
			}
			continue
		}
		out[node] = j
	}
	return list.DeepCopy(), out, nil
}

// tracked is one node's Job.
type tracked struct {
	node    string
	job     string
	start   time.Time
	adopted bool
	done    bool
	finish  time.Time
	result  Result
}

// wave is one Run's state: the nodes still queued, the Jobs in flight,
// and the finished ones waiting for their pod's result.
type wave struct {
	r         *Runner
	ctx       context.Context
	nodes     []string
	queue     []string
	leftovers map[string]*batchv1.Job
	byJob     map[string]*tracked
	byNode    map[string]*tracked
	messages  map[string]*corev1.Pod // job -> its pod, once it has a result
	pending   map[string]*tracked    // finished Jobs waiting for messages
	inflight  int
	finished  int
}

// fill starts Jobs until Concurrency are in flight or none is queued.
func (w *wave) fill() {
	for w.inflight < w.r.Concurrency && len(w.queue) > 0 {
		node := w.queue[0]
		w.queue = w.queue[1:]
		if err := w.start(node); err != nil {
			t := &tracked{node: node, start: time.Now()}
			w.byNode[node] = t
			w.inflight++
			w.finish(t, OutcomeJobFailed, err.Error())
		}
	}
}

// start takes over node's Job of an earlier run, or creates its Job.
func (w *wave) start(node string) error {
	t := &tracked{node: node, start: time.Now()}
	if j := w.leftovers[node]; j != nil {
		t.job, t.adopted = j.Name, true
		if j.Status.StartTime != nil {
			t.start = j.Status.StartTime.Time
		}
		w.r.Progress("%-24s took over the running Job %s of an earlier run", node, j.Name)
		w.byJob[t.job], w.byNode[node] = t, t
		w.inflight++
		return nil
	}
	created, err := w.r.Client.BatchV1().Jobs(w.r.Namespace).Create(w.ctx, w.r.Build(node), metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create the Job for node %s: %w", node, err)
	}
	t.job = created.Name
	w.byJob[t.job], w.byNode[node] = t, t
	w.inflight++
	w.handleJob(created, watch.Added) // finished already (simulators)
	return nil
}

func (w *wave) finish(t *tracked, outcome, msg string) {
	if t.done {
		return
	}
	t.done, t.finish = true, time.Now()
	t.result = Result{Node: t.node, Outcome: outcome, Message: msg, Job: t.job, Duration: t.finish.Sub(t.start).Round(time.Millisecond), Adopted: t.adopted}
	w.inflight--
	w.finished++
}

// settle fills a finished Job's result from its pod, deletes the Job.
func (w *wave) settle(t *tracked) {
	delete(w.pending, t.job)
	if p := w.messages[t.job]; p != nil {
		if res, other := podResult(p); res != nil {
			t.result.Outcome, t.result.Message = res.Outcome, res.Message
		} else if other != "" && !t.result.OK() {
			t.result.Message = strings.TrimSpace(t.result.Message + "; " + other)
		}
	}
	w.r.deleteJob(w.ctx, t.job)
	delete(w.byJob, t.job)
	w.r.Progress("%-24s %-18s %6s  (%d/%d done) %s", t.node, t.result.Outcome, t.result.Duration.Round(100*time.Millisecond), w.finished, len(w.nodes), t.result.Message)
}

func (w *wave) handleJob(o *batchv1.Job, typ watch.EventType) {
	t := w.byJob[o.Name]
	if t == nil || t.done {
		return
	}
	if typ == watch.Deleted {
		w.finish(t, OutcomeJobFailed, "the Job was deleted by someone else")
		w.settle(t)
		return
	}
	done, ok, reason := jobFinished(o)
	if !done {
		return
	}
	if ok {
		w.finish(t, OutcomeSucceeded, "")
	} else {
		w.finish(t, OutcomeJobFailed, reason)
	}
	if w.messages[t.job] != nil || w.r.MessageGrace <= 0 {
		w.settle(t)
	} else {
		w.pending[t.job] = t
	}
}

// handlePod keeps a pod's result for its Job and settles the Job if it
// waits for it. last: the run is over, any word from the pod will do.
func (w *wave) handlePod(p *corev1.Pod, last bool) {
	job := p.Labels["batch.kubernetes.io/job-name"]
	if job == "" {
		job = p.Labels["job-name"]
	}
	res, other := podResult(p)
	if res != nil || other != "" {
		w.messages[job] = p.DeepCopy()
	}
	if t := w.pending[job]; t != nil && w.messages[job] != nil {
		if res != nil || p.Status.Phase == corev1.PodFailed || (last && other != "") {
			w.settle(t)
		}
	}
}

// expire settles the Jobs whose pod's result did not come within
// MessageGrace, and deletes the ones past their deadline.
func (w *wave) expire(now time.Time) {
	for _, t := range w.pending {
		if now.Sub(t.finish) >= w.r.MessageGrace {
			w.settle(t)
		}
	}
	for _, t := range w.byJob {
		if !t.done && now.Sub(t.start) > w.r.Deadline+time.Minute {
			w.finish(t, OutcomeTimedOut, fmt.Sprintf("the Job did not finish within %s; it was deleted, which stops the node step (it rolls back on SIGTERM)", w.r.Deadline))
			w.settle(t)
		}
	}
}

// interrupt ends every node still running as interrupted.
func (w *wave) interrupt() {
	for _, n := range w.nodes {
		if t := w.byNode[n]; t != nil && !t.done {
			w.finish(t, OutcomeInterrupted, "convert was interrupted; the Job "+t.job+" keeps running on the node and the next run takes it over")
		}
	}
}

// drain gives the results still waiting for their pods a last short wait.
func (w *wave) drain(events <-chan watch.Event) {
	grace := time.After(w.r.MessageGrace)
	for len(w.pending) > 0 {
		select {
		case ev := <-events:
			if p, ok := ev.Object.(*corev1.Pod); ok {
				w.handlePod(p, true)
			}
		case <-grace:
			w.settleAll()
		case <-w.ctx.Done():
			w.settleAll()
		}
	}
}

func (w *wave) settleAll() {
	for _, t := range w.pending {
		w.settle(t)
	}
}

// results are one per node, in the order of nodes.
func (w *wave) results() []Result {
	out := make([]Result, 0, len(w.nodes))
	for _, n := range w.nodes {
		if t := w.byNode[n]; t != nil && t.done {
			out = append(out, t.result)
		} else {
			out = append(out, Result{Node: n, Outcome: OutcomeInterrupted, Message: "not started"})
		}
	}
	return out
}

func (r *Runner) deleteJob(ctx context.Context, name string) {
	bg := metav1.DeletePropagationBackground
	err := r.Client.BatchV1().Jobs(r.Namespace).Delete(context.WithoutCancel(ctx), name, metav1.DeleteOptions{PropagationPolicy: &bg})
	if err != nil && !apierrors.IsNotFound(err) {
		r.Progress("WARNING: could not delete the Job %s: %v (cleanup deletes it)", name, err)
	}
}

// inform feeds the events of the runner's Jobs (obj a Job) or of their pods
// (obj a Pod) into out until ctx ends, through a client-go informer: it
// lists (the items arrive as Added), watches from the list's version, and
// re-watches or re-lists as the watch ends or its version expires. first,
// when set, is a list of the same objects already made: the informer starts
// from it instead of listing again.
func (r *Runner) inform(ctx context.Context, out chan<- watch.Event, obj, first runtime.Object) {
	var lw *cache.ListWatch
	if _, jobs := obj.(*batchv1.Job); jobs {
		lw = listWatch(r.Client.BatchV1().Jobs(r.Namespace), r.selector())
	} else {
		lw = listWatch(r.Client.CoreV1().Pods(r.Namespace), r.selector())
	}
	if first != nil {
		list := lw.ListWithContextFunc
		lw.ListWithContextFunc = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			if l := first; l != nil { // the reflector lists from one goroutine
				first = nil
				return l, nil
			}
			return list(ctx, o)
		}
	}
	send := func(typ watch.EventType, o any) {
		if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
			o = d.Obj
		}
		if ro, ok := o.(runtime.Object); ok {
			select {
			case out <- watch.Event{Type: typ, Object: ro}:
			case <-ctx.Done():
			}
		}
	}
	_, informer := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw,
		ObjectType:    obj,
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { send(watch.Added, o) },
			UpdateFunc: func(_, o any) { send(watch.Modified, o) },
			DeleteFunc: func(o any) { send(watch.Deleted, o) },
		},
	})
	informer.RunWithContext(ctx)
}

// listWatch lists and watches c's objects that match selector.
func listWatch[T, L runtime.Object](c kube.Client[T, L], selector string) *cache.ListWatch {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = selector
			return c.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selector
			return c.Watch(ctx, o)
		},
	}
}
