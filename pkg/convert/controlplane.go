// Package convert prepares a kubeadm cluster for OpenYurt from the master
// side (yurtctl convert). Today it holds the control-plane phase: the
// cluster objects yurthub needs before any edge node can join.
package convert

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/kube"
)

// Names of the objects the control-plane phase owns. They carry
// LabelManagedBy so that revert can find them.
const (
	YurthubClusterRole = "yurt-hub"
	NodePoolCRDName    = "nodepools.apps.openyurt.io"
	LabelManagedBy     = "app.kubernetes.io/managed-by"
	ManagedBy          = "yurtctl"
)

var (
	crdGVR      = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	nodePoolGVR = schema.GroupVersionResource{Group: "apps.openyurt.io", Version: "v1beta2", Resource: "nodepools"}
)

// Clients are what the control-plane phase talks to.
type Clients struct {
	Kube    kube.Interface
	Dynamic dynamic.Interface
}

// ControlPlaneOptions say where OpenYurt's objects go.
type ControlPlaneOptions struct {
	Namespace string
	// NodePools are created if missing: name -> Edge or Cloud.
	NodePools map[string]string
}

// Action is one object the phase created, updated or found as wanted.
type Action struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Result string `json:"result"` // created, updated, unchanged
}

func (a Action) String() string { return fmt.Sprintf("%s %s %s", a.Kind, a.Name, a.Result) }

// EnsureControlPlane creates or updates, idempotently, what yurthub v1.7.0
// needs from the cluster: the NodePool CRD and default pools, RBAC that
// lets nodes read configmaps, nodepools, endpoints and endpointslices and
// update leases, and the yurt-hub-cfg ConfigMap. Until yurt-hub-cfg exists
// yurthub's proxy answers 503.
func EnsureControlPlane(ctx context.Context, c Clients, o ControlPlaneOptions) ([]Action, error) {
	var actions []Action
	add := func(kind, name, result string, err error) error {
		if err != nil {
			return fmt.Errorf("%s %s: %w", kind, name, err)
		}
		actions = append(actions, Action{kind, name, result})
		return nil
	}
	r, err := ensureNodePoolCRD(ctx, c.Dynamic)
	if err := add("CustomResourceDefinition", NodePoolCRDName, r, err); err != nil {
		return actions, err
	}
	r, err = ensureClusterRole(ctx, c.Kube, YurthubClusterRole, yurthubRules())
	if err := add("ClusterRole", YurthubClusterRole, r, err); err != nil {
		return actions, err
	}
	r, err = ensureClusterRoleBinding(ctx, c.Kube, YurthubClusterRole, YurthubClusterRole,
		rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: "system:nodes"})
	if err := add("ClusterRoleBinding", YurthubClusterRole, r, err); err != nil {
		return actions, err
	}
	r, err = ensureHubConfigMap(ctx, c.Kube, o.Namespace)
	if err := add("ConfigMap", o.Namespace+"/"+constants.YurthubConfigMap, r, err); err != nil {
		return actions, err
	}
	for name, typ := range o.NodePools {
		r, err = ensureNodePool(ctx, c.Dynamic, name, typ)
		if err := add("NodePool", name, r, err); err != nil {
			return actions, err
		}
	}
	return actions, nil
}

func managedLabels() map[string]string { return map[string]string{LabelManagedBy: ManagedBy} }

func yurthubRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"endpoints"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{"apps.openyurt.io"}, Resources: []string{"nodepools"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "update"}},
	}
}

// ensureClusterRole creates the ClusterRole name with rules, or puts its
// rules back.
func ensureClusterRole(ctx context.Context, kc kube.Interface, name string, rules []rbacv1.PolicyRule) (string, error) {
	want := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: managedLabels()}, Rules: rules}
	api := kc.RbacV1().ClusterRoles()
	got, err := api.Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = api.Create(ctx, want, metav1.CreateOptions{})
		return "created", err
	}
	if err != nil {
		return "", err
	}
	if equalJSON(got.Rules, want.Rules) {
		return "unchanged", nil
	}
	if err := notOurs("ClusterRole", name, got.Labels); err != nil {
		return "", err
	}
	got.Rules = want.Rules
	_, err = api.Update(ctx, got, metav1.UpdateOptions{})
	return "updated", err
}

// notOurs refuses to change an object this project did not create (it
// lacks our managed-by label): someone else's binding could otherwise be
// turned into another role. The error names the object and the fix.
func notOurs(kind, name string, labels map[string]string) error {
	if labels[LabelManagedBy] == ManagedBy {
		return nil
	}
	return cmdutil.WithHint(fmt.Errorf("%s %s exists and was not created by yurtctl (no label %s=%s), and it differs from what convert needs: it was left as it is",
		kind, name, LabelManagedBy, ManagedBy), cmdutil.ExitError,
		fmt.Sprintf("look at it ('kubectl get %s %s -o yaml'); if it is a leftover, delete it and run convert again, otherwise keep it and grant what convert needs under another name",
			strings.ToLower(kind), name))
}

// ensureClusterRoleBinding creates the ClusterRoleBinding name of the
// ClusterRole role to subject, or puts its role and subject back.
func ensureClusterRoleBinding(ctx context.Context, kc kube.Interface, name, role string, subject rbacv1.Subject) (string, error) {
	want := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: managedLabels()},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{subject},
	}
	api := kc.RbacV1().ClusterRoleBindings()
	got, err := api.Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = api.Create(ctx, want, metav1.CreateOptions{})
		return "created", err
	}
	if err != nil {
		return "", err
	}
	if equalJSON(got.Subjects, want.Subjects) && got.RoleRef == want.RoleRef {
		return "unchanged", nil
	}
	if err := notOurs("ClusterRoleBinding", name, got.Labels); err != nil {
		return "", err
	}
	if got.RoleRef != want.RoleRef { // roleRef is immutable
		if err := api.Delete(ctx, want.Name, metav1.DeleteOptions{}); err != nil {
			return "", err
		}
		_, err = api.Create(ctx, want, metav1.CreateOptions{})
		return "updated", err
	}
	got.Subjects = want.Subjects
	_, err = api.Update(ctx, got, metav1.UpdateOptions{})
	return "updated", err
}

// ensureHubConfigMap creates yurt-hub-cfg. An existing one is left as it
// is: operators tune cache_agents there.
func ensureHubConfigMap(ctx context.Context, kc kube.Interface, ns string) (string, error) {
	api := kc.CoreV1().ConfigMaps(ns)
	_, err := api.Get(ctx, constants.YurthubConfigMap, metav1.GetOptions{})
	if err == nil {
		return "unchanged", nil
	}
	if !apierrors.IsNotFound(err) {
		return "", err
	}
	labels := managedLabels()
	labels["openyurt.io/configmap-name"] = constants.YurthubConfigMap
	_, err = api.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: constants.YurthubConfigMap, Namespace: ns, Labels: labels},
		// Empty values keep yurthub's defaults: cache the default agents
		// (kubelet, kube-proxy, flannel, coredns, ...), no extra filters.
		Data: map[string]string{"cache_agents": "", "servicetopology": "", "discardcloudservice": "", "masterservice": ""},
	}, metav1.CreateOptions{})
	return "created", err
}

// nodePoolCRD is OpenYurt's NodePool type as a CustomResourceDefinition of
// our own: the versions yurthub and yurt-manager v1.7.0 use, with a schema
// that keeps every field (validation is yurt-manager's webhook's job).
func nodePoolCRD() *unstructured.Unstructured {
	version := func(name string, storage bool) map[string]any {
		return map[string]any{
			"name": name, "served": true, "storage": storage,
			"schema": map[string]any{"openAPIV3Schema": map[string]any{
				"type": "object", "x-kubernetes-preserve-unknown-fields": true,
			}},
			"subresources": map[string]any{"status": map[string]any{}},
			"additionalPrinterColumns": []any{
				map[string]any{"name": "Type", "type": "string", "jsonPath": ".spec.type"},
				map[string]any{"name": "ReadyNodes", "type": "integer", "jsonPath": ".status.readyNodeNum"},
				map[string]any{"name": "NotReadyNodes", "type": "integer", "jsonPath": ".status.unreadyNodeNum"},
				map[string]any{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
			},
		}
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": NodePoolCRDName, "labels": map[string]any{LabelManagedBy: ManagedBy}},
		"spec": map[string]any{
			"group": "apps.openyurt.io",
			"scope": "Cluster",
			"names": map[string]any{"plural": "nodepools", "singular": "nodepool", "kind": "NodePool",
				"listKind": "NodePoolList", "shortNames": []any{"np"}, "categories": []any{"yurt"}},
			"versions": []any{version("v1alpha1", false), version("v1beta1", false), version("v1beta2", true)},
		},
	}}
}

func ensureNodePoolCRD(ctx context.Context, dc dynamic.Interface) (string, error) {
	api := dc.Resource(crdGVR)
	want := nodePoolCRD()
	_, err := api.Get(ctx, NodePoolCRDName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err = api.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return "", err
		}
		return "created", waitCRDEstablished(ctx, dc)
	}
	if err != nil {
		return "", err
	}
	// A CRD installed by OpenYurt's chart is kept: it is the richer one.
	return "unchanged", nil
}

func waitCRDEstablished(ctx context.Context, dc dynamic.Interface) error {
	for i := 0; i < 100; i++ {
		got, err := dc.Resource(crdGVR).Get(ctx, NodePoolCRDName, metav1.GetOptions{})
		if err == nil {
			conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sleep():
		}
	}
	return fmt.Errorf("the NodePool CRD was not established in time")
}

func ensureNodePool(ctx context.Context, dc dynamic.Interface, name, typ string) (string, error) {
	api := dc.Resource(nodePoolGVR)
	_, err := api.Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return "unchanged", nil
	}
	if !apierrors.IsNotFound(err) {
		return "", err
	}
	np := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps.openyurt.io/v1beta2",
		"kind":       "NodePool",
		"metadata":   map[string]any{"name": name, "labels": map[string]any{LabelManagedBy: ManagedBy}},
		"spec":       map[string]any{"type": typ},
	}}
	_, err = api.Create(ctx, np, metav1.CreateOptions{})
	return "created", err
}
