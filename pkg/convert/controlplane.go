// Package convert turns a kubeadm cluster into an OpenYurt cluster from
// the master side (yurtctl convert) and back (yurtctl revert): OpenYurt's
// own charts for the control plane (charts.go, openyurt.go), node labels,
// and a Job per node for the node step.
package convert

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/kube"
)

// Names of the objects the control-plane phase owns. They carry
// LabelManagedBy so that revert can find them.
const (
	YurthubClusterRole = "yurt-hub"
	NodePoolCRDName    = "nodepools.apps.openyurt.io"
	LabelManagedBy     = constants.LabelManagedBy
	ManagedBy          = constants.ManagedBy
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

func managedLabels() map[string]string { return map[string]string{LabelManagedBy: ManagedBy} }

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
