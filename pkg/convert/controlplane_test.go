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

// yurt-manager: what convert deploys runs only the CSR approver (the other
// controllers need CRDs convert does not install), its per-controller
// ServiceAccount may approve yurthub's CSRs, a second run changes nothing,
// and revert's object list removes all of it.
func TestEnsureYurtManagerAndRevertIt(t *testing.T) {
	c := fakeClients(t)
	ctx := context.Background()
	first, err := EnsureYurtManager(ctx, c, "kube-system", "openyurt/yurt-manager:v1.7.0")
	if err != nil {
		t.Fatal(err)
	}
	want := "ServiceAccount kube-system/yurt-manager created; ClusterRoleBinding yurt-manager created; ClusterRole yurtctl:yurt-manager-csr-approver created; ClusterRoleBinding yurtctl:yurt-manager-csr-approver created; Deployment kube-system/yurt-manager created"
	if got := results(first); got != want {
		t.Errorf("first run:\n got %s\nwant %s", got, want)
	}
	second, err := EnsureYurtManager(ctx, c, "kube-system", "openyurt/yurt-manager:v1.7.0")
	if err != nil || strings.Contains(results(second), "created") || strings.Contains(results(second), "updated") {
		t.Errorf("second run: %s %v", results(second), err)
	}
	// Someone trimmed the approver's role: the next run puts it back.
	trimmed, _ := c.Kube.RbacV1().ClusterRoles().Get(ctx, CSRApproverClusterRole, metav1.GetOptions{})
	trimmed.Rules = trimmed.Rules[:1]
	c.Kube.RbacV1().ClusterRoles().Update(ctx, trimmed, metav1.UpdateOptions{})
	third, err := EnsureYurtManager(ctx, c, "kube-system", "openyurt/yurt-manager:v1.7.0")
	if err != nil || !strings.Contains(results(third), "ClusterRole yurtctl:yurt-manager-csr-approver updated") {
		t.Errorf("third run: %s %v", results(third), err)
	}
	dep, err := c.Kube.AppsV1().Deployments("kube-system").Get(ctx, yurtManagerName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctr := dep.Spec.Template.Spec.Containers[0]
	args := strings.Join(ctr.Args, " ")
	for _, w := range []string{"--controllers=csr-approver-controller", "--disable-independent-webhooks=*", "--working-namespace=kube-system", "--health-probe-addr=:10272"} {
		if !strings.Contains(args, w) {
			t.Errorf("yurt-manager args %q lack %s", args, w)
		}
	}
	if ctr.ReadinessProbe == nil || ctr.ReadinessProbe.HTTPGet.Port.IntValue() != yurtManagerHealthPort {
		t.Errorf("readiness probe %+v", ctr.ReadinessProbe)
	}
	crb, err := c.Kube.RbacV1().ClusterRoleBindings().Get(ctx, CSRApproverClusterRole, metav1.GetOptions{})
	if err != nil || len(crb.Subjects) != 1 || crb.Subjects[0].Name != "yurt-manager-csr-approver-controller" || crb.Subjects[0].Namespace != "kube-system" {
		t.Fatalf("csr approver binding %+v %v", crb, err)
	}
	cr, _ := c.Kube.RbacV1().ClusterRoles().Get(ctx, CSRApproverClusterRole, metav1.GetOptions{})
	var signers []string
	for _, r := range cr.Rules {
		if len(r.Resources) == 1 && r.Resources[0] == "signers" {
			signers = r.ResourceNames
		}
	}
	if strings.Join(signers, ",") != "kubernetes.io/kube-apiserver-client,kubernetes.io/kubelet-serving" {
		t.Errorf("the approver may approve for signers %v", signers)
	}

	for _, o := range controlPlaneObjects("kube-system") {
		if _, err := o.delete(ctx, c); err != nil {
			t.Errorf("revert %s %s: %v", o.kind, o.name, err)
		}
	}
	if l, _ := c.Kube.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{}); len(l.Items) != 0 {
		t.Errorf("%d ClusterRoleBindings left after revert", len(l.Items))
	}
	if l, _ := c.Kube.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{}); len(l.Items) != 0 {
		t.Errorf("%d ClusterRoles left after revert", len(l.Items))
	}
	if l, _ := c.Kube.AppsV1().Deployments("kube-system").List(ctx, metav1.ListOptions{}); len(l.Items) != 0 {
		t.Errorf("%d Deployments left after revert", len(l.Items))
	}
}

// An RBAC object of the same name that yurtctl did not create is never
// changed: convert names it and the fix; the object stays as it was.
func TestEnsureRBACLeavesOthersObjectsAlone(t *testing.T) {
	c := fakeClients(t)
	ctx := context.Background()
	theirs := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: YurthubClusterRole, Labels: map[string]string{"app.kubernetes.io/managed-by": "Helm"}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{Kind: "Group", Name: "someone"}},
	}
	if _, err := c.Kube.RbacV1().ClusterRoleBindings().Create(ctx, theirs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "other-role"}, Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}}}
	if _, err := c.Kube.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := EnsureControlPlane(ctx, c, ControlPlaneOptions{Namespace: "kube-system", NodePools: map[string]string{"edge": "Edge"}})
	if err == nil || !strings.Contains(err.Error(), "ClusterRoleBinding yurt-hub exists and was not created by yurtctl") {
		t.Fatalf("err %v", err)
	}
	got, err := c.Kube.RbacV1().ClusterRoleBindings().Get(ctx, YurthubClusterRole, metav1.GetOptions{})
	if err != nil || got.RoleRef.Name != "view" || len(got.Subjects) != 1 || got.Subjects[0].Name != "someone" {
		t.Errorf("their binding was changed: %+v %v", got, err)
	}
	if _, err := ensureClusterRole(ctx, c.Kube, "other-role", CSRApproverRules()); err == nil {
		t.Error("a ClusterRole yurtctl did not create was rewritten")
	}
	r, _ := c.Kube.RbacV1().ClusterRoles().Get(ctx, "other-role", metav1.GetOptions{})
	if len(r.Rules) != 1 || r.Rules[0].Resources[0] != "pods" {
		t.Errorf("their role's rules changed: %+v", r.Rules)
	}
}
