package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/convert"
	"github.com/yurtadm/yurtadm/test/framework"
)

// TestConvertControlPlaneOnARealAPIServer installs what yurthub needs, twice,
// and checks, as a node would, that a node identity can read it.
func TestConvertControlPlaneOnARealAPIServer(t *testing.T) {
	cp := framework.StartControlPlane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	clients, err := convert.RealClients(cp.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	opts := convert.ControlPlaneOptions{Namespace: "kube-system", NodePools: map[string]string{"edge": "Edge", "cloud": "Cloud"}}
	first, err := convert.EnsureControlPlane(ctx, clients, opts)
	if err != nil {
		t.Fatalf("first run: %v (%v)", err, first)
	}
	for _, a := range first {
		if a.Result != "created" {
			t.Errorf("first run on a fresh cluster: %s", a)
		}
	}
	second, err := convert.EnsureControlPlane(ctx, clients, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range second {
		if a.Result != "unchanged" {
			t.Errorf("second run changed %s", a)
		}
	}

	// A node's identity (what yurthub uses in kubeletcertificate mode).
	node := rest.CopyConfig(cp.AdminConfig)
	node.Impersonate = rest.ImpersonationConfig{UserName: "system:node:edge-1", Groups: []string{"system:nodes", "system:authenticated"}}
	nc, err := kubernetes.NewForConfig(node)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.CoreV1().ConfigMaps("kube-system").Get(ctx, constants.YurthubConfigMap, metav1.GetOptions{}); err != nil {
		t.Errorf("a node cannot read yurt-hub-cfg: %v", err)
	}
	if _, err := nc.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("a node cannot list endpointslices: %v", err)
	}
	dc, err := dynamic.NewForConfig(node)
	if err != nil {
		t.Fatal(err)
	}
	pools, err := dc.Resource(schema.GroupVersionResource{Group: "apps.openyurt.io", Version: "v1beta2", Resource: "nodepools"}).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("a node cannot list nodepools: %v", err)
	}
	var names []string
	for _, p := range pools.Items {
		names = append(names, p.GetName())
	}
	if strings.Join(names, ",") != "cloud,edge" {
		t.Errorf("nodepools = %v", names)
	}
	// ...but may not write them.
	if err := dc.Resource(schema.GroupVersionResource{Group: "apps.openyurt.io", Version: "v1beta2", Resource: "nodepools"}).Delete(ctx, "edge", metav1.DeleteOptions{}); err == nil {
		t.Errorf("a node could delete a nodepool")
	}
}
