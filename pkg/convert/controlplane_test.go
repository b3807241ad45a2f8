package convert

import (
	"context"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/yurtadm/yurtadm/pkg/constants"
)

func fakeClients(t *testing.T) Clients {
	t.Helper()
	sleep = func() <-chan time.Time { return time.After(time.Millisecond) }
	dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		crdGVR: "CustomResourceDefinitionList", nodePoolGVR: "NodePoolList",
	})
	// The API server marks a new CRD Established; the fake must do it.
	dc.PrependReactor("create", "customresourcedefinitions", func(a k8stesting.Action) (bool, runtime.Object, error) {
		u := a.(k8stesting.CreateAction).GetObject().(*unstructured.Unstructured)
		unstructured.SetNestedSlice(u.Object, []any{map[string]any{"type": "Established", "status": "True"}}, "status", "conditions")
		return false, nil, nil
	})
	return Clients{Kube: fake.NewSimpleClientset(), Dynamic: dc}
}

func results(actions []Action) string {
	var s []string
	for _, a := range actions {
		s = append(s, a.String())
	}
	return strings.Join(s, "; ")
}

func TestEnsureControlPlaneIsIdempotent(t *testing.T) {
	c := fakeClients(t)
	ctx := context.Background()
	opts := ControlPlaneOptions{Namespace: "kube-system", NodePools: map[string]string{"edge": "Edge"}}

	first, err := EnsureControlPlane(ctx, c, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := "CustomResourceDefinition nodepools.apps.openyurt.io created; ClusterRole yurt-hub created; ClusterRoleBinding yurt-hub created; ConfigMap kube-system/yurt-hub-cfg created; NodePool edge created"
	if got := results(first); got != want {
		t.Errorf("first run:\n got %s\nwant %s", got, want)
	}
	second, err := EnsureControlPlane(ctx, c, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := results(second); strings.Contains(got, "created") || strings.Contains(got, "updated") {
		t.Errorf("second run changed something: %s", got)
	}

	// Someone trimmed the role: the next run puts the rules back.
	cr, _ := c.Kube.RbacV1().ClusterRoles().Get(ctx, YurthubClusterRole, metav1.GetOptions{})
	cr.Rules = cr.Rules[:1]
	c.Kube.RbacV1().ClusterRoles().Update(ctx, cr, metav1.UpdateOptions{})
	third, err := EnsureControlPlane(ctx, c, opts)
	if err != nil || !strings.Contains(results(third), "ClusterRole yurt-hub updated") {
		t.Errorf("third run: %s %v", results(third), err)
	}

	crb, _ := c.Kube.RbacV1().ClusterRoleBindings().Get(ctx, YurthubClusterRole, metav1.GetOptions{})
	if len(crb.Subjects) != 1 || crb.Subjects[0].Kind != rbacv1.GroupKind || crb.Subjects[0].Name != "system:nodes" {
		t.Errorf("binding subjects: %+v", crb.Subjects)
	}
	cm, err := c.Kube.CoreV1().ConfigMaps("kube-system").Get(ctx, constants.YurthubConfigMap, metav1.GetOptions{})
	if err != nil || cm.Labels[LabelManagedBy] != ManagedBy {
		t.Errorf("yurt-hub-cfg: %v %v", cm, err)
	}
	np, err := c.Dynamic.Resource(nodePoolGVR).Get(ctx, "edge", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if typ, _, _ := unstructured.NestedString(np.Object, "spec", "type"); typ != "Edge" {
		t.Errorf("nodepool type %q", typ)
	}
}

func TestEnsureControlPlaneKeepsOperatorsConfigMap(t *testing.T) {
	c := fakeClients(t)
	ctx := context.Background()
	if _, err := EnsureControlPlane(ctx, c, ControlPlaneOptions{Namespace: "kube-system"}); err != nil {
		t.Fatal(err)
	}
	cm, _ := c.Kube.CoreV1().ConfigMaps("kube-system").Get(ctx, constants.YurthubConfigMap, metav1.GetOptions{})
	cm.Data["cache_agents"] = "*"
	c.Kube.CoreV1().ConfigMaps("kube-system").Update(ctx, cm, metav1.UpdateOptions{})
	if _, err := EnsureControlPlane(ctx, c, ControlPlaneOptions{Namespace: "kube-system"}); err != nil {
		t.Fatal(err)
	}
	cm, _ = c.Kube.CoreV1().ConfigMaps("kube-system").Get(ctx, constants.YurthubConfigMap, metav1.GetOptions{})
	if cm.Data["cache_agents"] != "*" {
		t.Errorf("the operator's cache_agents was overwritten")
	}
}
