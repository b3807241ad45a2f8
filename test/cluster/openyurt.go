package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/yurtadm/yurtadm/pkg/convert/controlplane"
)

// EnvCharts overrides where OpenYurt's charts are read from.
const EnvCharts = "YURTADM_OPENYURT_CHARTS"

// ChartsInNode is where the nodes have OpenYurt's charts, as an air-gapped
// master would: yurtctl convert --chart-source takes it.
const ChartsInNode = "/usr/share/openyurt/charts"

// OpenYurtCharts is the charts/ directory of the github.com/openyurtio/openyurt
// module test/tools pins (hack/tools.sh has downloaded it to build
// yurthub), or $YURTADM_OPENYURT_CHARTS.
func OpenYurtCharts() (string, error) {
	if d := os.Getenv(EnvCharts); d != "" {
		return d, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	// go mod download prints the module's directory, downloading it
	// first on a machine that has not built the OpenYurt tools yet (the
	// integration tests run before them in a cold CI run).
	cmd := exec.Command("go", "mod", "download", "-json", "github.com/openyurtio/openyurt")
	cmd.Dir = filepath.Join(root, "test", "tools")
	out, err := cmd.Output()
	var mod struct{ Dir, Error string }
	if err == nil {
		err = json.Unmarshal(out, &mod)
	}
	dir := mod.Dir
	if err != nil || dir == "" {
		return "", fmt.Errorf("find the openyurt module (go mod download in test/tools): %v %s %s (run hack/tools.sh, or set %s)", err, mod.Error, out, EnvCharts)
	}
	charts := filepath.Join(dir, "charts")
	for _, c := range []string{"yurt-manager", "yurthub"} {
		if _, err := os.Stat(filepath.Join(charts, c, "Chart.yaml")); err != nil {
			return "", fmt.Errorf("OpenYurt's %s chart: %w", c, err)
		}
	}
	return charts, nil
}

// copyTree copies the regular files and directories under src to dst
// (the module cache is read-only: modes are made writable).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return copyFile(p, out, 0o644)
	})
}

// Apply creates every object of a YAML stream that does not exist yet
// (a stand-in for 'kubectl create' where there is no kubectl).
func Apply(ctx context.Context, cfg *rest.Config, stream []byte) error {
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	for _, doc := range controlplane.SplitManifests(stream) {
		var u unstructured.Unstructured
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			return err
		}
		if u.GetKind() == "" {
			continue
		}
		groups, err := restmapper.GetAPIGroupResources(disc)
		if err != nil {
			return err
		}
		m, err := restmapper.NewDiscoveryRESTMapper(groups).RESTMapping(u.GroupVersionKind().GroupKind(), u.GroupVersionKind().Version)
		if err != nil {
			return fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
		api := dc.Resource(m.Resource).Namespace(u.GetNamespace())
		if m.Scope.Name() != "namespace" {
			api = dc.Resource(m.Resource)
		}
		if _, err := api.Create(ctx, &u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	return nil
}
