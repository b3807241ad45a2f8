// Package controlplane installs OpenYurt's control plane the way yurtctl
// convert does, from OpenYurt's own charts (charts.go: where they come
// from and the helm CLI that installs them; openyurt.go: the values, the
// yurthub chart's post-renderer, the CRDs, and the hand-over of an earlier
// convert's objects), and removes it again for yurtctl revert
// (uninstall.go).
package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

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
	yurtManagerName    = "yurt-manager"
	// CSRApproverClusterRole was the role an earlier convert gave
	// yurt-manager's csr-approver-controller (migrateLegacy removes it).
	CSRApproverClusterRole = "yurtctl:yurt-manager-csr-approver"
)

var (
	crdGVR      = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	nodePoolGVR = schema.GroupVersionResource{Group: "apps.openyurt.io", Version: "v1beta2", Resource: "nodepools"}
)

// Clients are what the installer talks to.
type Clients struct {
	Kube    kube.Interface
	Dynamic dynamic.Interface
}

// Action is one object the phase created, updated or found as wanted.
type Action struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Result string `json:"result"` // created, updated, unchanged
}

func (a Action) String() string { return fmt.Sprintf("%s %s %s", a.Kind, a.Name, a.Result) }

func managedLabels() map[string]string {
	return map[string]string{constants.LabelManagedBy: constants.ManagedBy}
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
		"metadata":   map[string]any{"name": name, "labels": map[string]any{constants.LabelManagedBy: constants.ManagedBy}},
		"spec":       map[string]any{"type": typ},
	}}
	_, err = api.Create(ctx, np, metav1.CreateOptions{})
	return "created", err
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// sleep is the pause between polls; tests shorten it.
var sleep = func() <-chan time.Time { return time.After(100 * time.Millisecond) }
