package integration

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/yurtadm/yurtadm/pkg/convert/controlplane"
	"github.com/yurtadm/yurtadm/test/cluster"
	"github.com/yurtadm/yurtadm/test/framework"
)

// chartCRDs is what `helm show crds` prints for OpenYurt's yurt-manager
// chart: its crds/ files, concatenated.
func chartCRDs(t *testing.T) []byte {
	t.Helper()
	charts, err := cluster.OpenYurtCharts()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(charts, "yurt-manager", "crds", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("the yurt-manager chart's CRDs: %v %v", files, err)
	}
	sort.Strings(files)
	var out []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(append(out, "---\n"...), b...)
	}
	return out
}

// TestChartCRDsOnARealAPIServer creates OpenYurt's CRDs from its chart the
// way convert does, twice: the second run must find every one unchanged
// (the API server defaults fields into a CRD; a convert that compared
// naively would update them on every run). Revert's cleanup keeps a CRD
// while an object of it is left.
func TestChartCRDsOnARealAPIServer(t *testing.T) {
	cp := framework.StartControlPlane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dc, err := dynamic.NewForConfig(cp.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	crds := chartCRDs(t)
	first, err := controlplane.EnsureCRDs(ctx, dc, crds)
	if err != nil {
		t.Fatalf("first run: %v (%v)", err, first)
	}
	if len(first) < 8 {
		t.Errorf("only %d CRDs from the chart: %v", len(first), first)
	}
	for _, a := range first {
		if a.Result != "created" {
			t.Errorf("first run on a fresh cluster: %s", a)
		}
	}
	second, err := controlplane.EnsureCRDs(ctx, dc, crds)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range second {
		if a.Result != "unchanged" {
			t.Errorf("second run: %s", a)
		}
	}
	pools := dc.Resource(schema.GroupVersionResource{Group: "apps.openyurt.io", Version: "v1beta2", Resource: "nodepools"})
	np := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps.openyurt.io/v1beta2", "kind": "NodePool",
		"metadata": map[string]any{"name": "hangzhou"}, "spec": map[string]any{"type": "Edge"}}}
	if _, err := pools.Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create a NodePool of the chart's CRD: %v", err)
	}
	actions, err := controlplane.DeleteUnusedCRDs(ctx, dc)
	if err != nil {
		t.Fatal(err)
	}
	var kept, deleted int
	for _, a := range actions {
		switch {
		case a.Name == "nodepools.apps.openyurt.io" && strings.HasPrefix(a.Result, "kept: NodePool hangzhou is left"):
			kept++
		case strings.HasPrefix(a.Result, "deleted"):
			deleted++
		default:
			t.Errorf("cleanup: %s", a)
		}
	}
	if kept != 1 || deleted != len(first)-1 {
		t.Errorf("cleanup kept %d, deleted %d of %d: %v", kept, deleted, len(first), actions)
	}
}
