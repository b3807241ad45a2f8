package controlplane

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/kube/kubetest"
)

func mirrorPod(node, hash string, ready bool) *corev1.Pod {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "yurt-hub-" + node, Namespace: "kube-system",
		Annotations: map[string]string{annotationMirror: "x", annotationStaticPodHash: hash}},
		Spec:   corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}}}
}

func failedWorker(node, hash string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: upgradeWorkerPrefix + "yurt-hub-" + node + "-" + hash, Namespace: "kube-system",
		Annotations: map[string]string{annotationStaticPodHash: hash}},
		Spec: corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Message: "I1207 start\nE1207 timeout waiting for static pod yurt-hub-" + node + " to be running"}}}}}}
}

func hubConfigMap(hash string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "yurt-static-set-yurt-hub", Namespace: "kube-system",
		Annotations: map[string]string{annotationStaticPodHash: hash}}}
}

func yss(image string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps.openyurt.io/v1alpha1", "kind": "YurtStaticSet",
		"metadata": map[string]any{"name": "yurt-hub", "namespace": "kube-system"},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"containers": []any{
			map[string]any{"name": "yurt-hub", "image": image}}}}},
	}}
}

func rolloutInstaller(t *testing.T, objs ...runtime.Object) (*Installer, *fake.Clientset, *[]string) {
	t.Helper()
	kc := fake.NewSimpleClientset(objs...)
	var said []string
	in := &Installer{Clients: Clients{Kube: kubetest.Wrap(kc), Dynamic: dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())},
		Namespace: "kube-system", Now: time.Now,
		Report: func(status, f string, a ...any) { said = append(said, status+": "+fmt.Sprintf(f, a...)) }}
	return in, kc, &said
}

// A node whose upgrade worker failed ends the wait with an error naming
// it, its worker, and the two steps back; a node that moved is reported.
func TestRolloutFailureNamesTheNodeAndTheWayBack(t *testing.T) {
	defer func(p time.Duration) { rolloutPoll = p }(rolloutPoll)
	rolloutPoll = time.Millisecond
	in, _, said := rolloutInstaller(t, hubConfigMap("new"), mirrorPod("edge1", "new", true), mirrorPod("edge2", "old", true), failedWorker("edge2", "new"))
	err := in.follow(context.Background(), "yurt-hub", "hub:v1", "hub:broken", "old")
	if cmdutil.ExitCode(err) != cmdutil.ExitError || !strings.Contains(err.Error(), "edge2") || strings.Contains(err.Error(), "edge1") {
		t.Fatalf("error %v (exit %d), want exit 1 naming edge2 alone", err, cmdutil.ExitCode(err))
	}
	var e *cmdutil.Error
	if !errors.As(err, &e) || !strings.Contains(e.Hint, "--yurthub-image hub:v1") || !strings.Contains(e.Hint, "kubectl -n kube-system delete pod yss-upgrade-worker-yurt-hub-edge2-new") {
		t.Errorf("hint %q: want the image to set back and the worker to delete", e.Hint)
	}
	all := strings.Join(*said, "\n")
	if !strings.Contains(all, "done: node edge1 runs yurthub hub:broken") || !strings.Contains(all, "timeout waiting for static pod yurt-hub-edge2") {
		t.Errorf("reported:\n%s", all)
	}
}

// The wait starts once the controller has put the new template's hash on
// its ConfigMap, and ends when every node runs it; a failed worker of an
// earlier roll-out is named with what to do.
func TestRolloutWaitsForTheNewHashAndEveryNode(t *testing.T) {
	defer func(p time.Duration) { rolloutPoll = p }(rolloutPoll)
	rolloutPoll = time.Millisecond
	in, kc, said := rolloutInstaller(t, hubConfigMap("old"), mirrorPod("edge1", "old", true), failedWorker("edge1", "bad"))
	gets, lists := 0, 0
	kc.PrependReactor("get", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		if gets++; gets == 3 {
			_ = kc.Tracker().Update(corev1.SchemeGroupVersion.WithResource("configmaps"), hubConfigMap("new"), "kube-system")
		}
		return false, nil, nil
	})
	kc.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		if lists++; lists == 3 {
			_ = kc.Tracker().Update(corev1.SchemeGroupVersion.WithResource("pods"), mirrorPod("edge1", "new", true), "kube-system")
		}
		return false, nil, nil
	})
	if err := in.follow(context.Background(), "yurt-hub", "hub:v1", "hub:v2", "old"); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(*said, "\n")
	if gets < 3 || lists < 3 || !strings.Contains(all, "template new") || !strings.Contains(all, "node edge1 runs yurthub hub:v2 (1/1") ||
		!strings.Contains(all, "warning: YurtStaticSet kube-system/yurt-hub: failed upgrade worker(s) of an earlier roll-out are left: yss-upgrade-worker-yurt-hub-edge1-bad") {
		t.Errorf("gets %d lists %d; reported:\n%s", gets, lists, all)
	}
}

// Only a changed template of an existing YurtStaticSet is waited for.
func TestWaitRolloutOnlyForAChangedTemplate(t *testing.T) {
	in, _, said := rolloutInstaller(t, hubConfigMap("old"), mirrorPod("edge1", "old", true))
	in.Clients.Dynamic = dynamicfake.NewSimpleDynamicClient(runtime.NewScheme(), yss("hub:v1"))
	ctx := context.Background()
	before, hashes, err := in.templates(ctx)
	if err != nil || before["yurt-hub"] == nil || before["yurt-hub"].image != "hub:v1" || hashes["yurt-hub"] != "old" {
		t.Fatalf("templates: %v %v %v", before, hashes, err)
	}
	if err := in.waitRollout(ctx, before, hashes); err != nil || len(*said) != 0 {
		t.Errorf("unchanged template: %v, %q", err, *said)
	}
	if err := in.waitRollout(ctx, map[string]*yssTemplate{}, hashes); err != nil || len(*said) != 0 {
		t.Errorf("first install: %v, %q", err, *said)
	}
}
