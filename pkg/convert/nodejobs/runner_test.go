package nodejobs

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/convert/nodestep"
	"github.com/yurtadm/yurtadm/pkg/kube/kubetest"
)

// The runner's watches end while a Job runs: the first with 410 Gone (its
// version expired), the second closed at once, as an API server or a load
// balancer in front of it does. The runner must re-list and re-watch on its
// own and still see the Job finish and its pod's result.
func TestJobRunnerSurvivesEndedWatches(t *testing.T) {
	kc := fake.NewSimpleClientset()
	var mu sync.Mutex
	watches := map[string]int{}
	live := func(res string) int { mu.Lock(); defer mu.Unlock(); return watches[res] }
	kc.PrependWatchReactor("*", func(a k8stesting.Action) (bool, watch.Interface, error) {
		res := a.GetResource().Resource
		mu.Lock()
		n := watches[res]
		mu.Unlock()
		var w watch.Interface
		switch n {
		case 0:
			fw := watch.NewFakeWithChanSize(1, false)
			fw.Error(&metav1.Status{Status: metav1.StatusFailure, Code: http.StatusGone, Reason: metav1.StatusReasonExpired, Message: "too old resource version"})
			fw.Stop()
			w = fw
		case 1:
			fw := watch.NewFake()
			fw.Stop()
			w = fw
		default:
			// The tracker's own watch, registered before it is counted.
			tw, err := kc.Tracker().Watch(a.GetResource(), a.GetNamespace())
			if err != nil {
				return true, nil, err
			}
			w = tw
		}
		mu.Lock()
		watches[res]++
		mu.Unlock()
		return true, w, nil
	})
	const ns, node, job = "kube-system", "edge-1", "yurtctl-convert-edge-1-abcde"
	labels := map[string]string{LabelJob: nodestep.ActionConvert, constants.LabelManagedBy: constants.ManagedBy}
	r := &Runner{
		Client: kubetest.Wrap(kc), Namespace: ns, Action: nodestep.ActionConvert, Concurrency: 1,
		Deadline: time.Minute, MessageGrace: 10 * time.Second,
		Build: func(n string) *batchv1.Job {
			return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: job, Namespace: ns, Labels: labels, Annotations: map[string]string{AnnotationNode: n}}}
		},
		Progress: t.Logf,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type ret struct {
		res []Result
		err error
	}
	done := make(chan ret, 1)
	go func() {
		res, err := r.Run(ctx, []string{node})
		done <- ret{res, err}
	}()
	for live("jobs") < 3 || live("pods") < 3 {
		select {
		case got := <-done:
			t.Fatalf("the runner returned before its Job finished: %+v, %v", got.res, got.err)
		case <-ctx.Done():
			t.Fatalf("no third watch: jobs %d, pods %d", live("jobs"), live("pods"))
		case <-time.After(50 * time.Millisecond):
		}
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: job + "-p", Namespace: ns, Labels: map[string]string{LabelJob: nodestep.ActionConvert, "batch.kubernetes.io/job-name": job}},
		Status: corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{Name: "node-step", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{Message: string(nodestep.TerminationMessage(&nodestep.Result{Node: node, Action: nodestep.ActionConvert, Outcome: nodestep.OutcomeConverted, Message: "yurthub is ready"}))}}}}}}
	if _, err := kc.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	j, err := kc.BatchV1().Jobs(ns).Get(ctx, job, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
	if _, err := kc.BatchV1().Jobs(ns).UpdateStatus(ctx, j, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := <-done
	if got.err != nil || len(got.res) != 1 || got.res[0].Outcome != nodestep.OutcomeConverted || got.res[0].Message != "yurthub is ready" {
		t.Fatalf("got %+v, %v; want edge-1 converted with its pod's message", got.res, got.err)
	}
	if _, err := kc.BatchV1().Jobs(ns).Get(ctx, job, metav1.GetOptions{}); err == nil {
		t.Error("the finished Job was not deleted")
	}
}
