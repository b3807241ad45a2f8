package controlplane

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/yurtadm/yurtadm/pkg/kube/kubetest"
	"sigs.k8s.io/yaml"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/convert/controlplane/cptest"
)

func fakeClients(t *testing.T) Clients {
	t.Helper()
	sleep = func() <-chan time.Time { return time.After(time.Millisecond) }
	return Clients{Kube: kubetest.Wrap(fake.NewSimpleClientset()), Dynamic: cptest.NewDynamic()}
}

func results(actions []Action) string {
	var s []string
	for _, a := range actions {
		s = append(s, a.String())
	}
	return strings.Join(s, "; ")
}

// legacyFixture is what an earlier convert made by hand, plus an object of
// someone else's with a chart's name.
func legacyFixture(t *testing.T, c Clients, ns string) {
	t.Helper()
	ctx := context.Background()
	ours := metav1.ObjectMeta{Labels: map[string]string{constants.LabelManagedBy: constants.ManagedBy}}
	mk := func(name, namespace string) metav1.ObjectMeta {
		m := *ours.DeepCopy()
		m.Name, m.Namespace = name, namespace
		return m
	}
	kc := kubetest.Clientset(c.Kube).(*fake.Clientset)
	for _, err := range []error{
		create(kc.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: mk(yurtManagerName, ""),
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"}}, metav1.CreateOptions{})),
		create(kc.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: mk(CSRApproverClusterRole, "")}, metav1.CreateOptions{})),
		create(kc.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: mk(YurthubClusterRole, "")}, metav1.CreateOptions{})),
		create(kc.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: mk(constants.YurthubConfigMap, ns)}, metav1.CreateOptions{})),
		// Not ours: an operator's binding of the chart's name.
		create(kc.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: YurthubClusterRole},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"}}, metav1.CreateOptions{})),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func create[T any](_ T, err error) error { return err }

// dynamicOver serves the typed fake's objects through a dynamic fake, as
// migrateLegacy reads them.
func dynamicOver(t *testing.T, kc *fake.Clientset) *dynamicfake.FakeDynamicClient {
	t.Helper()
	var objs []runtime.Object
	add := func(kind, apiVersion string, list any) {
		data, _ := json.Marshal(list)
		var l struct {
			Items []map[string]any `json:"items"`
		}
		_ = json.Unmarshal(data, &l)
		for _, it := range l.Items {
			it["kind"], it["apiVersion"] = kind, apiVersion
			objs = append(objs, &unstructured.Unstructured{Object: it})
		}
	}
	ctx := context.Background()
	crbs, _ := kc.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	add("ClusterRoleBinding", "rbac.authorization.k8s.io/v1", crbs)
	crs, _ := kc.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
	add("ClusterRole", "rbac.authorization.k8s.io/v1", crs)
	cms, _ := kc.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
	add("ConfigMap", "v1", cms)
	return dynamicfake.NewSimpleDynamicClient(runtime.NewScheme(), objs...)
}

func TestMigrateLegacyHandsOversAndDeletesOnlyOurs(t *testing.T) {
	c := fakeClients(t)
	legacyFixture(t, c, "kube-system")
	dc := dynamicOver(t, kubetest.Clientset(c.Kube).(*fake.Clientset))
	rendered := map[string][]manifestObject{}
	for release, objs := range map[string][]string{
		ReleaseYurthub:     {"ClusterRole/" + YurthubClusterRole, "ClusterRoleBinding/" + YurthubClusterRole, "ConfigMap/" + constants.YurthubConfigMap},
		ReleaseYurtManager: {"ServiceAccount/" + yurtManagerName, "Deployment/" + yurtManagerName},
	} {
		for _, o := range objs {
			kind, name, _ := strings.Cut(o, "/")
			var m manifestObject
			m.Kind, m.Metadata.Name = kind, name
			rendered[release] = append(rendered[release], m)
		}
	}
	actions, err := migrateLegacy(context.Background(), dc, "kube-system", rendered)
	if err != nil {
		t.Fatal(err)
	}
	got := results(actions)
	for _, want := range []string{
		"ClusterRoleBinding yurt-manager deleted (the chart does not have it)",
		"ClusterRole " + CSRApproverClusterRole + " deleted",
		"ConfigMap kube-system/yurt-hub-cfg handed to Helm release kube-system/yurthub",
		"ClusterRole yurt-hub handed to Helm release kube-system/yurthub",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("migration did not say %q: %s", want, got)
		}
	}
	if strings.Contains(got, "ClusterRoleBinding yurt-hub") {
		t.Errorf("the operator's ClusterRoleBinding yurt-hub was touched: %s", got)
	}
	crbGVR := schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}
	if _, err := dc.Resource(crbGVR).Get(context.Background(), yurtManagerName, metav1.GetOptions{}); err == nil {
		t.Error("the cluster-admin binding of the old yurt-manager is still there")
	}
	op, err := dc.Resource(crbGVR).Get(context.Background(), YurthubClusterRole, metav1.GetOptions{})
	if err != nil || len(op.GetAnnotations()) != 0 || op.GetLabels()[constants.LabelManagedBy] != "" {
		t.Errorf("the operator's binding changed: %v %v %v", err, op.GetLabels(), op.GetAnnotations())
	}
	cm, err := dc.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace("kube-system").Get(context.Background(), constants.YurthubConfigMap, metav1.GetOptions{})
	if err != nil || cm.GetLabels()[constants.LabelManagedBy] != "Helm" || cm.GetAnnotations()["meta.helm.sh/release-name"] != ReleaseYurthub ||
		cm.GetAnnotations()["meta.helm.sh/release-namespace"] != "kube-system" {
		t.Errorf("yurt-hub-cfg not handed to Helm: %v %v %v", err, cm.GetLabels(), cm.GetAnnotations())
	}
	// A second run finds nothing of ours left to migrate.
	again, err := migrateLegacy(context.Background(), dc, "kube-system", rendered)
	if err != nil || len(again) != 0 {
		t.Errorf("second migration: %v %s", err, results(again))
	}
}

func TestEnsureCRDsCreatesUpdatesOursKeepsOthers(t *testing.T) {
	c := fakeClients(t)
	ctx := context.Background()
	api := c.Dynamic.Resource(crdGVR)
	// Ours from an earlier convert: schemaless, with a caBundle yurt-manager wrote.
	old := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": NodePoolCRDName, "labels": map[string]any{constants.LabelManagedBy: constants.ManagedBy}},
		"spec": map[string]any{"group": "apps.openyurt.io", "conversion": map[string]any{"strategy": "Webhook",
			"webhook": map[string]any{"clientConfig": map[string]any{"caBundle": "Q0E="}}}},
		"status": map[string]any{"conditions": []any{map[string]any{"type": "Established", "status": "True"}}},
	}}
	if _, err := api.Create(ctx, old, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Someone else's.
	other := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "gateways.raven.openyurt.io"}, "spec": map[string]any{"group": "raven.openyurt.io"},
	}}
	if _, err := api.Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	actions, err := ensureCRDs(ctx, c.Dynamic, []byte(cptest.ChartCRDs))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := results(actions), "CustomResourceDefinition nodepools.apps.openyurt.io updated; CustomResourceDefinition gateways.raven.openyurt.io kept (not created by yurtctl)"; got != want {
		t.Errorf("first run: %s, want %s", got, want)
	}
	np, _ := api.Get(ctx, NodePoolCRDName, metav1.GetOptions{})
	if ca, _, _ := unstructured.NestedString(np.Object, "spec", "conversion", "webhook", "clientConfig", "caBundle"); ca != "Q0E=" {
		t.Errorf("the conversion webhook's caBundle was lost: %q", ca)
	}
	if v, _, _ := unstructured.NestedSlice(np.Object, "spec", "versions"); len(v) != 1 {
		t.Errorf("the chart's versions were not written: %v", v)
	}
	g, _ := api.Get(ctx, "gateways.raven.openyurt.io", metav1.GetOptions{})
	if _, has, _ := unstructured.NestedSlice(g.Object, "spec", "versions"); has {
		t.Error("someone else's CRD was changed")
	}
	again, err := ensureCRDs(ctx, c.Dynamic, []byte(cptest.ChartCRDs))
	if err != nil || !strings.HasPrefix(results(again), "CustomResourceDefinition nodepools.apps.openyurt.io unchanged") {
		t.Errorf("second run: %v %s", err, results(again))
	}
	// A fresh cluster: both created, labelled ours.
	c2 := fakeClients(t)
	created, err := ensureCRDs(ctx, c2.Dynamic, []byte(cptest.ChartCRDs))
	if err != nil || results(created) != "CustomResourceDefinition nodepools.apps.openyurt.io created; CustomResourceDefinition gateways.raven.openyurt.io created" {
		t.Errorf("fresh cluster: %v %s", err, results(created))
	}
}

func TestDeleteUnusedCRDsKeepsOnesWithObjects(t *testing.T) {
	c := fakeClients(t)
	ctx := context.Background()
	if _, err := ensureCRDs(ctx, c.Dynamic, []byte(cptest.ChartCRDs)); err != nil {
		t.Fatal(err)
	}
	if _, err := ensureNodePool(ctx, c.Dynamic, "hangzhou", "Edge"); err != nil {
		t.Fatal(err)
	}
	// A Gateway owned by a NodePool that is gone: garbage the collector
	// removes a moment later (here after a few ticks); revert waits for it.
	gwGVR := schema.GroupVersionResource{Group: "raven.openyurt.io", Version: "v1beta1", Resource: "gateways"}
	gw := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "raven.openyurt.io/v1beta1", "kind": "Gateway",
		"metadata": map[string]any{"name": "gw", "ownerReferences": []any{map[string]any{"apiVersion": "apps.openyurt.io/v1beta2", "kind": "NodePool", "name": "gone", "uid": "u1"}}}}}
	if _, err := c.Dynamic.Resource(gwGVR).Create(ctx, gw, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ticks := 0
	gcTick = func() <-chan time.Time {
		if ticks++; ticks == 3 {
			_ = c.Dynamic.Resource(gwGVR).Delete(ctx, "gw", metav1.DeleteOptions{})
		}
		return time.After(time.Millisecond)
	}
	defer func() { gcTick = func() <-chan time.Time { return time.After(time.Second) } }()
	actions, err := deleteUnusedCRDs(ctx, c.Dynamic)
	if err != nil {
		t.Fatal(err)
	}
	got := results(actions)
	if !strings.Contains(got, "CustomResourceDefinition nodepools.apps.openyurt.io kept: NodePool hangzhou is left") ||
		!strings.Contains(got, "CustomResourceDefinition gateways.raven.openyurt.io deleted (no object left)") {
		t.Errorf("got %s", got)
	}
	if ticks < 3 {
		t.Errorf("revert did not wait for the orphaned Gateway (%d ticks)", ticks)
	}
}

func TestSplitImage(t *testing.T) {
	for ref, want := range map[string]string{
		"docker.io/openyurt/yurt-manager:v1.7.0": "docker.io/openyurt|yurt-manager|v1.7.0",
		"localhost:5000/ym:dev":                  "localhost:5000|ym|dev",
		"ym":                                     "docker.io/library|ym|latest",
		"reg.example/a/b/yurthub:v1":             "reg.example/a/b|yurthub|v1",
	} {
		im, err := splitImage(ref)
		if err != nil || im.Registry+"|"+im.Repository+"|"+im.Tag != want {
			t.Errorf("%s: %+v %v, want %s", ref, im, err, want)
		}
	}
	if _, err := splitImage("openyurt/yurthub@sha256:" + strings.Repeat("a", 64)); err == nil || !strings.Contains(err.Error(), "digest") {
		t.Errorf("a digest reference: %v", err)
	}
}

// renderedCloudHub is the chart's cloud YurtStaticSet: the chart gives it
// the edge nodes' --nodepool-name.
const renderedCloudHub = `---
apiVersion: apps.openyurt.io/v1alpha1
kind: YurtStaticSet
metadata:
  name: yurt-hub-cloud
spec:
  staticPodManifest: yurthub
  template:
    spec:
      containers:
        - name: yurt-hub
          image: openyurt/yurthub:v1.7.0
          command:
            - yurthub
            - --nodepool-name=edge
            - --working-mode=cloud
`

// The cloud YurtStaticSet's yurthub is in the cloud pool, the edge one's
// keeps the chart's (convert's --nodepool-name): an AdvancedRollingUpdate
// copies each as it is.
func TestPostRenderYurthubPutsCloudNodesInTheCloudPool(t *testing.T) {
	in := cptest.RenderedHub + renderedCloudHub
	in = strings.Replace(in, "            - --v=2\n", "            - --v=2\n            - --nodepool-name=edge\n", 1)
	out, err := PostRenderYurthub([]byte(in), nil, UpgradeAdvancedRollingUpdate, constants.YurthubBootstrapModeKCE)
	if err != nil {
		t.Fatal(err)
	}
	docs := splitDocs(out)
	if len(docs) != 3 {
		t.Fatalf("%d documents, want 3:\n%s", len(docs), out)
	}
	if d := string(docs[1]); !strings.Contains(d, "- --nodepool-name=edge") || strings.Contains(d, "--nodepool-name=cloud") {
		t.Errorf("the edge YurtStaticSet:\n%s", d)
	}
	if d := string(docs[2]); !strings.Contains(d, "- --nodepool-name=cloud") || strings.Contains(d, "--nodepool-name=edge") {
		t.Errorf("the cloud YurtStaticSet:\n%s", d)
	}
}

func TestPostRenderYurthubSetsFlagsOnlyOnTheHub(t *testing.T) {
	out, err := PostRenderYurthub([]byte(cptest.RenderedHub), []string{"--enable-dummy-if=false", "--v=4"}, UpgradeOTA, constants.YurthubBootstrapModeKCE)
	if err != nil {
		t.Fatal(err)
	}
	docs := splitDocs(out)
	if len(docs) != 2 {
		t.Fatalf("%d documents out, want 2:\n%s", len(docs), out)
	}
	if !strings.Contains(string(docs[1]), "upgradeStrategy:\n    type: OTA") {
		t.Errorf("the YurtStaticSet's upgrade strategy was not set:\n%s", docs[1])
	}
	if !strings.Contains(string(docs[0]), "cache_agents: \"\"") {
		t.Errorf("the ConfigMap changed:\n%s", docs[0])
	}
	var yss struct {
		Spec struct {
			Template struct {
				Spec corev1.PodSpec `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(docs[1], &yss); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(yss.Spec.Template.Spec.Containers[0].Command, " ")
	if want := "yurthub --v=4 --server-addr=https://10.0.0.1:6443 --bootstrap-mode=kubeletcertificate --enable-dummy-if=false"; got != want {
		t.Errorf("command %q, want %q", got, want)
	}
	ps := yss.Spec.Template.Spec
	if len(ps.Volumes) != 2 || ps.Volumes[1].HostPath == nil || ps.Volumes[1].HostPath.Path != "/var/lib/kubelet/pki" ||
		len(ps.Containers[0].VolumeMounts) != 2 || !ps.Containers[0].VolumeMounts[1].ReadOnly {
		t.Errorf("kubelet's PKI is not mounted read-only for kubeletcertificate mode: %+v %+v", ps.Volumes, ps.Containers[0].VolumeMounts)
	}
	// Token mode leaves the chart's bootstrap as it is.
	tok, err := PostRenderYurthub([]byte(cptest.RenderedHub), nil, UpgradeAdvancedRollingUpdate, "token")
	if err != nil || !strings.Contains(string(tok), "--bootstrap-file=/var/lib/yurthub/bootstrap-hub.conf") || strings.Contains(string(tok), "kubelet-pki") ||
		!strings.Contains(string(tok), "type: AdvancedRollingUpdate") {
		t.Errorf("token mode: %v\n%s", err, tok)
	}
	if _, err := PostRenderYurthub([]byte(cptest.RenderedHub), []string{"--x=1\n- evil"}, UpgradeOTA, constants.YurthubBootstrapModeKCE); err == nil {
		t.Error("an extra arg with a newline was accepted")
	}
}

func writeChart(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name, "Chart.yaml"), []byte("apiVersion: v2\nname: "+name+"\nversion: 1.7.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestChartSources(t *testing.T) {
	// A checkout or the module: DIR/charts/NAME.
	mod := t.TempDir()
	for _, n := range chartNames {
		writeChart(t, filepath.Join(mod, "charts"), n)
	}
	s, err := OpenSource(mod, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.ref(ReleaseYurthub); len(got) != 1 || got[0] != filepath.Join(mod, "charts", ReleaseYurthub) {
		t.Errorf("local ref %v", got)
	}
	// One chart missing is named.
	half := t.TempDir()
	writeChart(t, half, ReleaseYurtManager)
	if _, err := OpenSource(half, ""); err == nil || !strings.Contains(err.Error(), "no yurthub chart") {
		t.Errorf("a directory without yurthub: %v", err)
	}
	// A repository.
	r, err := OpenSource("https://openyurtio.github.io/openyurt-helm/", "1.7.0")
	if err != nil || strings.Join(r.ref(ReleaseYurtManager), " ") != "yurt-manager --repo https://openyurtio.github.io/openyurt-helm --version 1.7.0" {
		t.Errorf("repo ref %v %v", r.ref(ReleaseYurtManager), err)
	}
	if _, err := OpenSource("https://example", ""); err == nil {
		t.Error("a repository without a version was accepted")
	}
	// A .tar.gz of the charts, and one whose entry leaves the archive.
	tgz := filepath.Join(t.TempDir(), "charts.tgz")
	writeTarGz(t, tgz, map[string]string{
		"openyurt/charts/yurt-manager/Chart.yaml": "apiVersion: v2\nname: yurt-manager\nversion: 1.7.0\n",
		"openyurt/charts/yurthub/Chart.yaml":      "apiVersion: v2\nname: yurthub\nversion: 1.7.0\n",
	})
	a, err := OpenSource(tgz, "")
	if err != nil {
		t.Fatal(err)
	}
	tmp := a.tmp
	if !strings.HasPrefix(a.ref(ReleaseYurthub)[0], tmp) {
		t.Errorf("archive ref %v not under %s", a.ref(ReleaseYurthub), tmp)
	}
	a.Close()
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("the unpacked archive is left: %v", err)
	}
	evil := filepath.Join(t.TempDir(), "evil.tgz")
	writeTarGz(t, evil, map[string]string{"../../escape/Chart.yaml": "x"})
	if _, err := OpenSource(evil, ""); err == nil || !strings.Contains(err.Error(), "leaves the archive") {
		t.Errorf("an archive entry with ../: %v", err)
	}
	// The Go module zip: only the charts are unpacked.
	z := filepath.Join(t.TempDir(), "v1.7.0.zip")
	writeZip(t, z, map[string]string{
		"github.com/openyurtio/openyurt@v1.7.0/charts/yurt-manager/Chart.yaml": "apiVersion: v2\nname: yurt-manager\nversion: 1.7.0\n",
		"github.com/openyurtio/openyurt@v1.7.0/charts/yurthub/Chart.yaml":      "apiVersion: v2\nname: yurthub\nversion: 1.7.0\n",
		"github.com/openyurtio/openyurt@v1.7.0/go.mod":                         "module github.com/openyurtio/openyurt\n",
	})
	zs, err := OpenSource(z, "")
	if err != nil {
		t.Fatal(err)
	}
	defer zs.Close()
	if _, err := os.Stat(filepath.Join(zs.tmp, "github.com/openyurtio/openyurt@v1.7.0/go.mod")); !os.IsNotExist(err) {
		t.Errorf("more than the charts was unpacked: %v", err)
	}
}

func writeTarGz(t *testing.T, p string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(data))
	}
	_ = tw.Close()
	_ = gz.Close()
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeZip(t *testing.T, p string, files map[string]string) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for name, data := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(data))
	}
	_ = zw.Close()
	_ = f.Close()
}

// TestSplitManifests: documents split at "---" and at a second top-level
// apiVersion (helm v3.19's `show crds`); comment-only documents dropped.
func TestSplitManifests(t *testing.T) {
	in := "# Source: a\napiVersion: v1\nkind: A\nmetadata:\n  name: a\n\napiVersion: v1\nkind: B\n---\n# only a comment\n---\napiVersion: v1\nkind: C\n"
	docs := SplitManifests([]byte(in))
	var kinds []string
	for _, d := range docs {
		for _, l := range strings.Split(string(d), "\n") {
			if strings.HasPrefix(l, "kind: ") {
				kinds = append(kinds, strings.TrimPrefix(l, "kind: "))
			}
		}
	}
	if strings.Join(kinds, ",") != "A,B,C" || len(docs) != 3 {
		t.Errorf("%d documents, kinds %v", len(docs), kinds)
	}
}

// The chart's yurt-hub ClusterRole, bound to every node, loses its
// cluster-wide ConfigMap and Lease grants; ConfigMaps are granted in the
// release's namespace only; every other rule is the chart's.
func TestPostRenderYurthubNarrowsTheNodesRole(t *testing.T) {
	in := cptest.RenderedHub[:strings.Index(cptest.RenderedHub, "---\napiVersion: apps.openyurt.io")] + `---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: yurt-hub
rules:
  - apiGroups: [""]
    resources: [events]
    verbs: [get]
  - apiGroups: [apps.openyurt.io]
    resources: [nodepools]
    verbs: [list, watch]
  - apiGroups: [""]
    resources: [configmaps]
    verbs: [get, list, watch]
  - apiGroups: [coordination.k8s.io]
    resources: [leases]
    verbs: [get, update]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: yurt-hub-yurt-static-set-role
rules:
  - apiGroups: [""]
    resources: [configmaps]
    resourceNames: [yurt-static-set-yurt-hub]
    verbs: [get]
`
	in = strings.Replace(in, "  name: yurt-hub-cfg\n", "  name: yurt-hub-cfg\n  namespace: openyurt-system\n", 1)
	out, err := PostRenderYurthub([]byte(in), nil, UpgradeOTA, constants.YurthubBootstrapModeKCE)
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string][]string{}
	var hub rbacv1.ClusterRole
	var role rbacv1.Role
	var binding rbacv1.RoleBinding
	for _, d := range splitDocs(out) {
		var o manifestObject
		if err := yaml.Unmarshal(d, &o); err != nil {
			t.Fatal(err)
		}
		byKind[o.Kind] = append(byKind[o.Kind], o.Metadata.Namespace+"/"+o.Metadata.Name)
		switch {
		case o.Kind == "ClusterRole" && o.Metadata.Name == "yurt-hub":
			err = yaml.Unmarshal(d, &hub)
		case o.Kind == "Role":
			err = yaml.Unmarshal(d, &role)
		case o.Kind == "RoleBinding":
			err = yaml.Unmarshal(d, &binding)
		case o.Kind == "ClusterRole":
			if !strings.Contains(string(d), "yurt-static-set-yurt-hub") {
				t.Errorf("the static-set role changed:\n%s", d)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	var res []string
	for _, r := range hub.Rules {
		res = append(res, strings.Join(r.Resources, ","))
	}
	if got := strings.Join(res, " "); got != "events nodepools endpointslices" {
		t.Errorf("yurt-hub ClusterRole grants %q, want the chart's rules without configmaps and leases", got)
	}
	if role.Namespace != "openyurt-system" || len(role.Rules) != 1 || strings.Join(role.Rules[0].Resources, ",") != "configmaps" ||
		strings.Join(role.Rules[0].Verbs, ",") != "get,list,watch" {
		t.Errorf("Role %+v, want configmaps get/list/watch in the release's namespace", role)
	}
	if binding.Namespace != "openyurt-system" || binding.RoleRef.Name != role.Name || len(binding.Subjects) != 1 || binding.Subjects[0].Name != "system:nodes" {
		t.Errorf("RoleBinding %+v", binding)
	}
	if len(byKind["ClusterRole"]) != 2 || len(byKind["ConfigMap"]) != 1 {
		t.Errorf("documents out: %v", byKind)
	}
}

// retryWebhook tries again while yurt-manager's webhook is not serving,
// and gives any other error back at once.
func TestRetryWebhook(t *testing.T) {
	defer func(d time.Duration) { webhookRetry = d }(webhookRetry)
	webhookRetry = time.Millisecond
	calls := 0
	r, err := retryWebhook(context.Background(), func() (string, error) {
		if calls++; calls < 3 {
			return "", errors.New(`Internal error occurred: failed calling webhook "vnodepool.kb.io": connection refused`)
		}
		return "created", nil
	})
	if r != "created" || err != nil || calls != 3 {
		t.Errorf("while the webhook starts: %q %v after %d calls, want created after 3", r, err, calls)
	}
	calls = 0
	_, err = retryWebhook(context.Background(), func() (string, error) { calls++; return "", errors.New("forbidden") })
	if err == nil || calls != 1 {
		t.Errorf("another error: %v after %d calls, want it back after 1", err, calls)
	}
}

// renderedManager is the part of the yurt-manager chart's output
// PostRenderYurtManager reads (OpenYurt v1.7.0 charts/yurt-manager, the
// probes as the chart has them), with a sidecar and a Service beside it.
const renderedManager = `# Source: yurt-manager/templates/yurt-manager.yaml
apiVersion: v1
kind: Service
metadata:
  name: yurt-manager-webhook-service
  namespace: kube-system
spec:
  ports:
    - port: 443
---
# Source: yurt-manager/templates/yurt-manager.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: yurt-manager
  namespace: kube-system
spec:
  replicas: 1
  template:
    spec:
      containers:
        - name: yurt-manager
          image: docker.io/openyurt/yurt-manager:v1.7.0
          livenessProbe:
            httpGet:
              path: /healthz
              port: 10272
            initialDelaySeconds: 60
            timeoutSeconds: 2
            periodSeconds: 10
            failureThreshold: 3
          readinessProbe:
            httpGet:
              path: /readyz
              port: 10272
            initialDelaySeconds: 60
            timeoutSeconds: 2
            periodSeconds: 10
            failureThreshold: 2
        - name: sidecar
          image: example.com/sidecar:1
          readinessProbe:
            initialDelaySeconds: 60
`

func TestPostRenderYurtManagerProbesReadinessFromTheStart(t *testing.T) {
	out, err := PostRenderYurtManager([]byte(renderedManager))
	if err != nil {
		t.Fatal(err)
	}
	docs := splitDocs(out)
	if len(docs) != 2 {
		t.Fatalf("%d documents, want 2:\n%s", len(docs), out)
	}
	if in := splitDocs([]byte(renderedManager)); string(docs[0]) != string(in[0]) {
		t.Errorf("the Service changed:\n%s", docs[0])
	}
	var d struct {
		Spec struct {
			Template struct {
				Spec corev1.PodSpec `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(docs[1], &d); err != nil {
		t.Fatal(err)
	}
	cs := d.Spec.Template.Spec.Containers
	if len(cs) != 2 {
		t.Fatalf("containers: %+v", cs)
	}
	r, l := cs[0].ReadinessProbe, cs[0].LivenessProbe
	if r == nil || r.InitialDelaySeconds != YurtManagerReadinessDelay || r.PeriodSeconds != YurtManagerReadinessPeriod ||
		r.TimeoutSeconds != 2 || r.FailureThreshold != 2 || r.HTTPGet == nil || r.HTTPGet.Path != "/readyz" {
		t.Errorf("yurt-manager's readiness probe: %+v", r)
	}
	if l == nil || l.InitialDelaySeconds != 60 || l.PeriodSeconds != 10 || l.FailureThreshold != 3 {
		t.Errorf("yurt-manager's liveness probe is not the chart's: %+v", l)
	}
	if p := cs[1].ReadinessProbe; p == nil || p.InitialDelaySeconds != 60 {
		t.Errorf("the sidecar's probe changed: %+v", p)
	}
	// Without the Deployment the stream is what came in.
	svc := splitDocs([]byte(renderedManager))[0]
	if out, err := PostRenderYurtManager(svc); err != nil || string(out) != string(svc) {
		t.Errorf("a stream without yurt-manager's Deployment: %v\n%s", err, out)
	}
}
