package convert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/yurtadm/yurtadm/pkg/convert/nodestep"
	"github.com/yurtadm/yurtadm/pkg/kube"
)

// Labels and annotations of the node Jobs.
const (
	// LabelJob marks convert's and revert's Jobs and their pods; its value
	// is the action (convert or revert).
	LabelJob = "yurtctl.openyurt.io/node-step"
	// AnnotationNode names the node a Job works on.
	AnnotationNode = "yurtctl.openyurt.io/node"
	hostMount      = "/host"
	jobNameMax     = 63
)

// Node outcomes the master reports, beyond the node step's own.
const (
	OutcomeSucceeded   = "succeeded"
	OutcomeJobFailed   = "failed"
	OutcomeTimedOut    = "timed-out"
	OutcomeInterrupted = "interrupted"
	OutcomeSkipped     = "skipped"
)

// NodeResult is one node's line in the final table.
type NodeResult struct {
	Node     string        `json:"node"`
	Outcome  string        `json:"outcome"`
	Message  string        `json:"message,omitempty"`
	Job      string        `json:"job,omitempty"`
	Duration time.Duration `json:"duration"`
	// Adopted is set when a Job of an earlier, interrupted run was taken over.
	Adopted bool `json:"adopted,omitempty"`
}

// OK reports whether the node ended as wanted.
func (r NodeResult) OK() bool {
	switch r.Outcome {
	case OutcomeSucceeded, OutcomeSkipped, nodestep.OutcomeConverted, nodestep.OutcomeAlreadyConverted,
		nodestep.OutcomeReverted, nodestep.OutcomeNothingToRevert:
		return true
	}
	return false
}

// jobDeadline is how long a Job may run: both waits of the node step, and
// time for its rollback.
func jobDeadline(timeout time.Duration) time.Duration { return 2*timeout + 2*time.Minute }

// jobPrefix is the generateName of a node's Job: "yurtctl-<action>-<node>-",
// the node part shortened with a hash when too long.
func jobPrefix(action, node string) string {
	p := "yurtctl-" + action + "-"
	room := jobNameMax - len(p) - 1 - 5 // "-" and generateName's 5 characters
	if len(node) > room {
		h := sha256.Sum256([]byte(node))
		node = strings.TrimRight(node[:room-9], ".-") + "-" + hex.EncodeToString(h[:])[:8]
	}
	return p + strings.ReplaceAll(node, ".", "-") + "-"
}

// NodeJob is the privileged Job that runs the node step of action on node.
// managedBy is empty except under a simulator that plays the Job
// controller (integration tests).
func NodeJob(action, node, pool string, o *Options, serverAddr, managedBy string) *batchv1.Job {
	args := []string{action, nodestep.CommandName,
		"--" + nodestep.FlagHostRoot + "=" + hostMount,
		"--" + nodestep.FlagNodeName + "=" + node,
		"--" + nodestep.FlagNamespace + "=" + o.Namespace,
		"--" + nodestep.FlagTimeout + "=" + o.Timeout.String(),
	}
	if action == nodestep.ActionConvert {
		args = append(args, "--"+nodestep.FlagYurthubImage+"="+o.YurthubImage, "--"+nodestep.FlagNodePool+"="+pool)
		if serverAddr != "" {
			args = append(args, "--"+nodestep.FlagServerAddr+"="+serverAddr)
		}
		for _, a := range o.YurthubExtraArgs {
			args = append(args, "--"+nodestep.FlagYurthubExtraArg+"="+a)
		}
	}
	labels := map[string]string{LabelJob: action, LabelManagedBy: ManagedBy}
	deadline := int64(jobDeadline(o.Timeout) / time.Second)
	hostPathDir := corev1.HostPathDirectory
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: jobPrefix(action, node),
			Namespace:    o.Namespace,
			Labels:       labels,
			Annotations:  map[string]string{AnnotationNode: node},
		},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To[int32](0),
			ActiveDeadlineSeconds:   &deadline,
			TTLSecondsAfterFinished: ptr.To[int32](3600), // if convert itself dies
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{AnnotationNode: node}},
				Spec: corev1.PodSpec{
					NodeName:                      node,
					HostPID:                       true,
					HostNetwork:                   true,
					RestartPolicy:                 corev1.RestartPolicyNever,
					PriorityClassName:             "system-node-critical",
					AutomountServiceAccountToken:  ptr.To(false),
					TerminationGracePeriodSeconds: ptr.To[int64](120), // the node step rolls back on SIGTERM
					Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					Volumes: []corev1.Volume{{Name: "host-root", VolumeSource: corev1.VolumeSource{
						HostPath: &corev1.HostPathVolumeSource{Path: "/", Type: &hostPathDir}}}},
					Containers: []corev1.Container{{
						Name:                     "node-step",
						Image:                    o.NodeImage,
						ImagePullPolicy:          corev1.PullIfNotPresent,
						Command:                  []string{"yurtadm"},
						Args:                     args,
						Env:                      []corev1.EnvVar{{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}},
						SecurityContext:          &corev1.SecurityContext{Privileged: ptr.To(true)},
						TerminationMessagePath:   nodestep.TerminationLog,
						TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
						VolumeMounts:             []corev1.VolumeMount{{Name: "host-root", MountPath: hostMount}},
					}},
				},
			},
		},
	}
	if managedBy != "" {
		job.Spec.ManagedBy = &managedBy
	}
	return job
}

func jobFinished(j *batchv1.Job) (done, ok bool, reason string) {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return true, true, ""
		case batchv1.JobFailed:
			return true, false, strings.TrimSpace(c.Reason + " " + c.Message)
		}
	}
	return false, false, ""
}

// podResult reads the node step's result from a finished pod.
func podResult(p *corev1.Pod) (*nodestep.Result, string) {
	for _, cs := range p.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil {
			if r, err := nodestep.ParseTerminationMessage(t.Message); err == nil {
				return r, ""
			}
			return nil, strings.TrimSpace(fmt.Sprintf("%s (exit %d) %s", t.Reason, t.ExitCode, lastLine(t.Message)))
		}
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" {
			return nil, w.Reason + ": " + w.Message
		}
	}
	return nil, ""
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		return s[i+1:]
	}
	return s
}

// jobRunner runs one node step per node as Jobs: at most concurrency at a
// time, watching Jobs and their pods (no polling), deleting each Job once
// it is done, and taking over the Jobs an interrupted run left.
type jobRunner struct {
	kc          kube.Interface
	ns, action  string
	concurrency int
	deadline    time.Duration
	build       func(node string) *batchv1.Job
	progress    func(format string, a ...any)
	// messageGrace is how long a finished Job waits for its pod's result.
	messageGrace time.Duration
}

type tracked struct {
	node    string
	job     string
	start   time.Time
	adopted bool
	done    bool
	finish  time.Time
	result  NodeResult
}

func (r *jobRunner) selector() string { return LabelJob + "=" + r.action }

// run works on nodes and returns a result per node, in nodes' order.
func (r *jobRunner) run(ctx context.Context, nodes []string) ([]NodeResult, error) {
	if len(nodes) == 0 {
		return nil, nil
	}
	api := r.kc.BatchV1().Jobs(r.ns)
	list, err := api.List(ctx, metav1.ListOptions{LabelSelector: r.selector()})
	if err != nil {
		return nil, fmt.Errorf("list earlier node Jobs: %w", err)
	}
	wanted := map[string]bool{}
	for _, n := range nodes {
		wanted[n] = true
	}
	leftovers := map[string]*batchv1.Job{}
	for i := range list.Items {
		j := &list.Items[i]
		node := j.Annotations[AnnotationNode]
		if j.DeletionTimestamp != nil {
			continue
		}
		done, _, _ := jobFinished(j)
		if !wanted[node] || done || leftovers[node] != nil {
			// Finished, or not ours to wait for: clean it.
			r.deleteJob(ctx, j.Name)
			if !done && wanted[node] {
				r.progress("%s: deleted a duplicate Job %s of an earlier run", node, j.Name)
			}
			continue
		}
		leftovers[node] = j
	}

	events := make(chan watch.Event, 256)
	wctx, stopWatches := context.WithCancel(ctx)
	defer stopWatches()
	go r.inform(wctx, events, &batchv1.Job{}, list.DeepCopy())
	go r.inform(wctx, events, &corev1.Pod{}, nil)

	byJob := map[string]*tracked{}
	byNode := map[string]*tracked{}
	messages := map[string]*corev1.Pod{}
	queue := append([]string(nil), nodes...)
	inflight, finished := 0, 0
	tick := time.NewTicker(time.Second)
	defer tick.Stop()

	pendingSettle := map[string]*tracked{}
	finish := func(t *tracked, outcome, msg string) {
		if t.done {
			return
		}
		t.done, t.finish = true, time.Now()
		t.result = NodeResult{Node: t.node, Outcome: outcome, Message: msg, Job: t.job, Duration: t.finish.Sub(t.start).Round(time.Millisecond), Adopted: t.adopted}
		inflight--
		finished++
	}
	// settle fills a finished Job's result from its pod, deletes the Job.
	settle := func(t *tracked) {
		if p := messages[t.job]; p != nil {
			if res, other := podResult(p); res != nil {
				t.result.Outcome, t.result.Message = res.Outcome, res.Message
			} else if other != "" && !t.result.OK() {
				t.result.Message = strings.TrimSpace(t.result.Message + "; " + other)
			}
		}
		r.deleteJob(ctx, t.job)
		delete(byJob, t.job)
		r.progress("%-24s %-18s %6s  (%d/%d done) %s", t.node, t.result.Outcome, t.result.Duration.Round(100*time.Millisecond), finished, len(nodes), t.result.Message)
	}
	handleJob := func(o *batchv1.Job, typ watch.EventType) {
		t := byJob[o.Name]
		if t == nil || t.done {
			return
		}
		if typ == watch.Deleted {
			finish(t, OutcomeJobFailed, "the Job was deleted by someone else")
			settle(t)
			return
		}
		done, ok, reason := jobFinished(o)
		if !done {
			return
		}
		if ok {
			finish(t, OutcomeSucceeded, "")
		} else {
			finish(t, OutcomeJobFailed, reason)
		}
		if messages[t.job] != nil || r.messageGrace <= 0 {
			settle(t)
		} else {
			pendingSettle[t.job] = t
		}
	}

	start := func(node string) error {
		t := &tracked{node: node, start: time.Now()}
		if j := leftovers[node]; j != nil {
			t.job, t.adopted = j.Name, true
			if j.Status.StartTime != nil {
				t.start = j.Status.StartTime.Time
			}
			r.progress("%-24s took over the running Job %s of an earlier run", node, j.Name)
		} else {
			created, err := api.Create(ctx, r.build(node), metav1.CreateOptions{})
			if err != nil {
				return fmt.Errorf("create the Job for node %s: %w", node, err)
			}
			t.job = created.Name
			byJob[t.job], byNode[node] = t, t
			inflight++
			handleJob(created, watch.Added) // finished already (simulators)
			return nil
		}
		byJob[t.job], byNode[node] = t, t
		inflight++
		return nil
	}

	for finished < len(nodes) {
		for inflight < r.concurrency && len(queue) > 0 {
			node := queue[0]
			queue = queue[1:]
			if err := start(node); err != nil {
				t := &tracked{node: node, start: time.Now()}
				byNode[node] = t
				inflight++
				finish(t, OutcomeJobFailed, err.Error())
			}
		}
		if finished >= len(nodes) {
			break
		}
		select {
		case <-ctx.Done():
			for _, n := range nodes {
				if t := byNode[n]; t != nil && !t.done {
					finish(t, OutcomeInterrupted, "convert was interrupted; the Job "+t.job+" keeps running on the node and the next run takes it over")
				}
			}
			return r.collect(nodes, byNode), ctx.Err()
		case ev := <-events:
			switch o := ev.Object.(type) {
			case *batchv1.Job:
				handleJob(o, ev.Type)
			case *corev1.Pod:
				job := o.Labels["batch.kubernetes.io/job-name"]
				if job == "" {
					job = o.Labels["job-name"]
				}
				if res, other := podResult(o); res != nil || other != "" {
					messages[job] = o.DeepCopy()
				}
				if t := pendingSettle[job]; t != nil && messages[job] != nil {
					if res, _ := podResult(o); res != nil || o.Status.Phase == corev1.PodFailed {
						delete(pendingSettle, job)
						settle(t)
					}
				}
			}
		case now := <-tick.C:
			for job, t := range pendingSettle {
				if now.Sub(t.finish) >= r.messageGrace {
					delete(pendingSettle, job)
					settle(t)
				}
			}
			for _, t := range byJob {
				if !t.done && now.Sub(t.start) > r.deadline+time.Minute {
					finish(t, OutcomeTimedOut, fmt.Sprintf("the Job did not finish within %s; it was deleted, which stops the node step (it rolls back on SIGTERM)", r.deadline))
					settle(t)
				}
			}
		}
	}
	// Results still waiting for their pods: a last short wait.
	grace := time.After(r.messageGrace)
	for len(pendingSettle) > 0 {
		select {
		case ev := <-events:
			if p, ok := ev.Object.(*corev1.Pod); ok {
				job := p.Labels["batch.kubernetes.io/job-name"]
				if t := pendingSettle[job]; t != nil {
					if res, other := podResult(p); res != nil || other != "" {
						messages[job] = p.DeepCopy()
						delete(pendingSettle, job)
						settle(t)
					}
				}
			}
		case <-grace:
			for job, t := range pendingSettle {
				delete(pendingSettle, job)
				settle(t)
			}
		case <-ctx.Done():
			for job, t := range pendingSettle {
				delete(pendingSettle, job)
				settle(t)
			}
		}
	}
	return r.collect(nodes, byNode), nil
}

func (r *jobRunner) collect(nodes []string, byNode map[string]*tracked) []NodeResult {
	out := make([]NodeResult, 0, len(nodes))
	for _, n := range nodes {
		if t := byNode[n]; t != nil && t.done {
			out = append(out, t.result)
		} else {
			out = append(out, NodeResult{Node: n, Outcome: OutcomeInterrupted, Message: "not started"})
		}
	}
	return out
}

func (r *jobRunner) deleteJob(ctx context.Context, name string) {
	bg := metav1.DeletePropagationBackground
	err := r.kc.BatchV1().Jobs(r.ns).Delete(context.WithoutCancel(ctx), name, metav1.DeleteOptions{PropagationPolicy: &bg})
	if err != nil && !apierrors.IsNotFound(err) {
		r.progress("WARNING: could not delete the Job %s: %v (cleanup deletes it)", name, err)
	}
}

// inform feeds the events of the runner's Jobs (obj a Job) or of their pods
// (obj a Pod) into out until ctx ends, through a client-go informer: it
// lists (the items arrive as Added), watches from the list's version, and
// re-watches or re-lists as the watch ends or its version expires. first,
// when set, is a list of the same objects already made: the informer starts
// from it instead of listing again.
func (r *jobRunner) inform(ctx context.Context, out chan<- watch.Event, obj, first runtime.Object) {
	var lw *cache.ListWatch
	if _, jobs := obj.(*batchv1.Job); jobs {
		lw = listWatch(r.kc.BatchV1().Jobs(r.ns), r.selector())
	} else {
		lw = listWatch(r.kc.CoreV1().Pods(r.ns), r.selector())
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

// resultTable renders the per-node table.
func resultTable(results []NodeResult) string {
	rows := append([]NodeResult(nil), results...)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].OK() && !rows[j].OK() })
	var b strings.Builder
	fmt.Fprintf(&b, "%-28s %-18s %8s  %s\n", "NODE", "RESULT", "TIME", "DETAILS")
	for _, r := range rows {
		fmt.Fprintf(&b, "%-28s %-18s %8s  %s\n", r.Node, r.Outcome, r.Duration.Round(100*time.Millisecond), r.Message)
	}
	return b.String()
}
