package controlplane

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/kube"
	"github.com/yurtadm/yurtadm/pkg/yurthub"
)

// annotationChartHash on a CRD convert made is the hash of the chart's
// definition it last wrote there.
const annotationChartHash = "yurtctl.openyurt.io/chart-crd-hash"

// imageValues is a chart's image: registry/repository:tag, as OpenYurt's
// charts compose it.
type imageValues struct {
	Registry   string `json:"registry"`
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
}

// CheckChartImage says whether a chart can take ref as its image
// (registry/repository:tag).
func CheckChartImage(ref string) error {
	_, err := splitImage(ref)
	return err
}

// splitImage splits ref into the three parts OpenYurt's charts join with
// "/" and ":". A reference by digest cannot be expressed that way.
func splitImage(ref string) (imageValues, error) {
	if err := yurthub.ValidateImage(ref); err != nil {
		return imageValues{}, err
	}
	if strings.Contains(ref, "@") {
		return imageValues{}, fmt.Errorf("image %q is a reference by digest: OpenYurt's charts take registry/repository:tag; name it by tag", ref)
	}
	registry, rest := "docker.io/library", ref
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		registry, rest = ref[:i], ref[i+1:]
	}
	repo, tag, ok := strings.Cut(rest, ":")
	if !ok || tag == "" {
		tag = "latest"
	}
	if repo == "" || registry == "" {
		return imageValues{}, fmt.Errorf("image %q has no repository name", ref)
	}
	return imageValues{Registry: registry, Repository: repo, Tag: tag}, nil
}

// yurtManagerValues pins the yurt-manager chart: its controllers (see
// DefaultYurtManagerControllers), the node-servant image its YurtStaticSet
// controller runs for AdvancedRollingUpdate (the chart's is a floating
// "latest") and, when given, its image.
func yurtManagerValues(in Values) (map[string]any, error) {
	wi, err := splitImage(in.UpgradeWorkerImage)
	if err != nil {
		return nil, fmt.Errorf("the upgrade worker image: %w", err)
	}
	v := map[string]any{"controllers": DefaultYurtManagerControllers, "nodeServant": map[string]any{"image": wi}}
	if in.YurtManagerImage != "" {
		im, err := splitImage(in.YurtManagerImage)
		if err != nil {
			return nil, fmt.Errorf("the yurt-manager image: %w", err)
		}
		v["image"] = im
	}
	return v, nil
}

// yurthubValues pins the yurthub chart: the API server address every
// yurthub talks to, the yurthub image and the edge nodes' NodePool (the
// chart renders one --nodepool-name for every node, empty by default, which
// yurthub v1.7.0 refuses to start with; the post-renderer gives the cloud
// YurtStaticSet the cloud pool).
func yurthubValues(server string, in Values) (map[string]any, error) {
	im, err := splitImage(in.YurthubImage)
	if err != nil {
		return nil, fmt.Errorf("the yurthub image: %w", err)
	}
	return map[string]any{"kubernetesServerAddr": server, "image": im, "nodePoolName": in.EdgePool}, nil
}

// writeValues writes values (JSON is YAML) into dir, 0600.
func writeValues(dir, name string, v map[string]any) (string, error) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, name+"-values.yaml")
	return p, os.WriteFile(p, data, 0o600)
}

// clusterServer is the API server address the cluster gives joining
// nodes: kube-public/cluster-info's kubeconfig, as kubeadm publishes it.
func clusterServer(ctx context.Context, kc kube.Interface) (string, error) {
	cm, err := kc.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, "cluster-info", metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("read kube-public/cluster-info (the address nodes join): %w", err)
	}
	cfg, err := clientcmd.Load([]byte(cm.Data["kubeconfig"]))
	if err != nil {
		return "", fmt.Errorf("kube-public/cluster-info: %w", err)
	}
	for _, c := range cfg.Clusters {
		if c.Server != "" {
			return c.Server, nil
		}
	}
	return "", fmt.Errorf("kube-public/cluster-info names no server")
}

// Upgrade strategies of a YurtStaticSet, as OpenYurt names them.
const (
	UpgradeOTA                   = "OTA"
	UpgradeAdvancedRollingUpdate = "AdvancedRollingUpdate"
)

// PostRenderYurthub is the Helm post-renderer convert gives the yurthub
// chart, which has no value for these: each of args ("--flag=value") is
// set on the yurt-hub container of every YurtStaticSet in the stream,
// their upgrade strategy is set to strategy, and their yurthub to
// bootstrapMode (the chart's is token; kubeletcertificate reuses kubelet's
// client certificate, so a node needs no bootstrap token once kubelet has
// one: yurtadm join's default, and the only mode convert's node step can
// use). Other documents pass through unchanged.
func PostRenderYurthub(in []byte, args []string, strategy, bootstrapMode string) ([]byte, error) {
	if err := yurthub.ValidateExtraArgs(args); err != nil {
		return nil, err
	}
	if strategy != UpgradeOTA && strategy != UpgradeAdvancedRollingUpdate {
		return nil, fmt.Errorf("upgrade strategy %q: want %s or %s", strategy, UpgradeOTA, UpgradeAdvancedRollingUpdate)
	}
	if bootstrapMode != constants.YurthubBootstrapModeKCE && bootstrapMode != BootstrapModeToken {
		return nil, fmt.Errorf("bootstrap mode %q: want %s or %s", bootstrapMode, constants.YurthubBootstrapModeKCE, BootstrapModeToken)
	}
	ns, narrowed := "", false
	rendered, err := editDocs(in, func(o manifestObject, d []byte) ([]byte, error) {
		if o.Kind == "ConfigMap" && o.Metadata.Name == constants.YurthubConfigMap {
			ns = o.Metadata.Namespace
		}
		if o.Kind == "ClusterRole" && o.Metadata.Name == hubClusterRole && strings.HasPrefix(o.APIVersion, "rbac.authorization.k8s.io/") {
			nd, err := narrowHubRole(d)
			if err != nil {
				return nil, fmt.Errorf("ClusterRole %s: %w", hubClusterRole, err)
			}
			narrowed = true
			return nd, nil
		}
		if o.Kind != "YurtStaticSet" || !strings.HasPrefix(o.APIVersion, "apps.openyurt.io/") {
			return nil, nil
		}
		return editObject(d, func(m map[string]any) error {
			if err := setHub(m, args, bootstrapMode); err != nil {
				return fmt.Errorf("YurtStaticSet %s: %w", o.Metadata.Name, err)
			}
			return unstructured.SetNestedField(m, strategy, "spec", "upgradeStrategy", "type")
		})
	})
	if err != nil {
		return nil, err
	}
	out := bytes.NewBuffer(rendered)
	if narrowed {
		if ns == "" {
			ns = "kube-system"
		}
		out.WriteString("---\n")
		out.WriteString(hubConfigMapRole(ns))
	}
	return out.Bytes(), nil
}

// hubClusterRole is the yurthub chart's ClusterRole for every node
// (bound to system:nodes).
const hubClusterRole = "yurt-hub"

// narrowHubRole takes out of the chart's yurt-hub ClusterRole the two
// cluster-wide grants yurthub v1.7.0 does not need: ConfigMaps in every
// namespace (it lists only its own namespace's yurt-hub-cfg and
// leader-hub-<pool>, by label: hubConfigMapRole grants that) and get and
// update on every Lease (it renews only its node's Lease in
// kube-node-lease, which the Node authorizer allows a node, and no
// other node's). Every other rule stays the chart's.
func narrowHubRole(d []byte) ([]byte, error) {
	var m map[string]any
	if err := yaml.Unmarshal(d, &m); err != nil {
		return nil, err
	}
	rules, _, _ := unstructured.NestedSlice(m, "rules")
	var kept []any
	for _, r := range rules {
		rm, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("a rule is not a mapping")
		}
		groups, _, _ := unstructured.NestedStringSlice(rm, "apiGroups")
		res, _, _ := unstructured.NestedStringSlice(rm, "resources")
		if (slices.Equal(groups, []string{""}) && slices.Equal(res, []string{"configmaps"})) ||
			(slices.Equal(groups, []string{"coordination.k8s.io"}) && slices.Equal(res, []string{"leases"})) {
			continue
		}
		kept = append(kept, r)
	}
	m["rules"] = kept
	return yaml.Marshal(m)
}

// hubConfigMapRole is what yurthub v1.7.0 reads of ConfigMaps, in its own
// namespace only: a Role and its binding to every node (Helm owns them
// with the release, so uninstall removes them).
func hubConfigMapRole(ns string) string {
	return fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: %[1]s
  namespace: %[2]s
rules:
  - apiGroups: [""]
    resources: [configmaps]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: %[1]s
  namespace: %[2]s
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: %[1]s
subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: Group
    name: system:nodes
`, hubClusterRole, ns)
}

// BootstrapModeToken is yurthub's token bootstrap (OpenYurt's chart's).
const BootstrapModeToken = constants.YurthubBootstrapModeToken

// kubeletPKI is where yurthub reads kubelet's client certificate in
// kubeletcertificate mode.
const kubeletPKI = "/var/lib/kubelet/pki"

// setHub sets args on the yurt-hub container of a YurtStaticSet (and the
// cloud pool on the cloud one's) and, for
// kubeletcertificate mode, what that mode needs: --bootstrap-mode, no
// --bootstrap-file, and kubelet's PKI directory mounted read-only.
func setHub(yss map[string]any, args []string, mode string) error {
	spec, _, _ := unstructured.NestedMap(yss, "spec", "template", "spec")
	containers, _, _ := unstructured.NestedSlice(spec, "containers")
	for i, c := range containers {
		cm, ok := c.(map[string]any)
		if !ok || cm["name"] != "yurt-hub" {
			continue
		}
		cmd, _, err := unstructured.NestedStringSlice(cm, "command")
		if err != nil || len(cmd) == 0 {
			return fmt.Errorf("the yurt-hub container has no command to add flags to")
		}
		if mode == constants.YurthubBootstrapModeKCE {
			cmd = yurthub.SetArgs(yurthub.RemoveArgs(cmd, "--bootstrap-file"), "--bootstrap-mode="+mode)
			mounts, _, _ := unstructured.NestedSlice(cm, "volumeMounts")
			if !hasNamed(mounts, "kubelet-pki") {
				mounts = append(mounts, map[string]any{"name": "kubelet-pki", "mountPath": kubeletPKI, "readOnly": true})
			}
			cm["volumeMounts"] = mounts
			vols, _, _ := unstructured.NestedSlice(spec, "volumes")
			if !hasNamed(vols, "kubelet-pki") {
				vols = append(vols, map[string]any{"name": "kubelet-pki", "hostPath": map[string]any{"path": kubeletPKI, "type": "Directory"}})
			}
			spec["volumes"] = vols
		}
		if slices.Contains(cmd, "--working-mode=cloud") {
			// The chart gives the cloud YurtStaticSet the edge nodes' pool.
			cmd = yurthub.SetArgs(cmd, "--nodepool-name="+constants.DefaultCloudNodePool)
		}
		cm["command"] = toAny(yurthub.SetArgs(cmd, args...))
		containers[i] = cm
		spec["containers"] = containers
		return unstructured.SetNestedMap(yss, spec, "spec", "template", "spec")
	}
	return fmt.Errorf("no container named yurt-hub")
}

func hasNamed(list []any, name string) bool {
	for _, e := range list {
		if m, ok := e.(map[string]any); ok && m["name"] == name {
			return true
		}
	}
	return false
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// ensureCRDs creates the chart's CRDs convert owns: a missing one is
// created (labelled managed-by=yurtctl, so that revert may remove it once
// no object of it is left), one of ours is updated to the chart's
// definition (an older schemaless NodePool CRD of this project included;
// the caBundle yurt-manager wrote into its conversion webhook is kept),
// one made by someone else is left as it is. Helm installs no CRD
// (--skip-crds): it would never update them.
func ensureCRDs(ctx context.Context, dc dynamic.Interface, stream []byte) ([]Action, error) {
	api := dc.Resource(crdGVR)
	var out []Action
	var wait []string
	for _, d := range SplitManifests(stream) {
		var want unstructured.Unstructured
		if err := yaml.Unmarshal(d, &want.Object); err != nil {
			return out, fmt.Errorf("the chart's CRDs: %w", err)
		}
		if want.GetKind() != "CustomResourceDefinition" {
			continue
		}
		name := want.GetName()
		labels := want.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[constants.LabelManagedBy] = constants.ManagedBy
		want.SetLabels(labels)
		// The API server defaults fields into a stored CRD (a webhook's
		// port, ...): what convert compares is the hash of the chart's
		// definition it last wrote.
		spec, _ := json.Marshal(want.Object["spec"])
		sum := sha256.Sum256(spec)
		hash := hex.EncodeToString(sum[:8])
		ann := want.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[annotationChartHash] = hash
		want.SetAnnotations(ann)
		have, err := api.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			if _, err := api.Create(ctx, &want, metav1.CreateOptions{}); err != nil {
				return out, fmt.Errorf("create CustomResourceDefinition %s: %w", name, err)
			}
			out = append(out, Action{"CustomResourceDefinition", name, "created"})
			wait = append(wait, name)
			continue
		case err != nil:
			return out, fmt.Errorf("read CustomResourceDefinition %s: %w", name, err)
		}
		if have.GetLabels()[constants.LabelManagedBy] != constants.ManagedBy {
			out = append(out, Action{"CustomResourceDefinition", name, "kept (not created by yurtctl)"})
			continue
		}
		if have.GetAnnotations()[annotationChartHash] == hash {
			out = append(out, Action{"CustomResourceDefinition", name, "unchanged"})
			continue
		}
		wantSpec, _, _ := unstructured.NestedMap(want.Object, "spec")
		if ca, ok, _ := unstructured.NestedString(have.Object, "spec", "conversion", "webhook", "clientConfig", "caBundle"); ok {
			if _, has, _ := unstructured.NestedFieldNoCopy(wantSpec, "conversion", "webhook", "clientConfig"); has {
				_ = unstructured.SetNestedField(wantSpec, ca, "conversion", "webhook", "clientConfig", "caBundle")
			}
		}
		have.Object["spec"] = wantSpec
		have.SetLabels(mergeLabels(have.GetLabels(), want.GetLabels()))
		have.SetAnnotations(mergeLabels(have.GetAnnotations(), want.GetAnnotations()))
		if _, err := api.Update(ctx, have, metav1.UpdateOptions{}); err != nil {
			return out, fmt.Errorf("update CustomResourceDefinition %s: %w", name, err)
		}
		out = append(out, Action{"CustomResourceDefinition", name, "updated"})
		wait = append(wait, name)
	}
	for _, name := range wait {
		if err := waitEstablished(ctx, dc, name); err != nil {
			return out, err
		}
	}
	return out, nil
}

// SplitManifests splits a stream of YAML documents such as `helm show
// crds` prints: the chart's CRD files one after the other, with "---"
// between them only if the files have it (helm v3.19 adds none). A
// top-level apiVersion key starts a document too: one document cannot hold
// it twice. Documents of comments only are dropped.
func SplitManifests(stream []byte) [][]byte {
	var out [][]byte
	for _, d := range splitDocs(stream) {
		var cur bytes.Buffer
		for _, line := range bytes.SplitAfter(d, []byte("\n")) {
			if bytes.HasPrefix(line, []byte("apiVersion:")) && len(bytes.TrimSpace(cur.Bytes())) > 0 && !onlyComments(bytes.TrimSpace(cur.Bytes())) {
				out = append(out, append([]byte(nil), cur.Bytes()...))
				cur.Reset()
			}
			cur.Write(line)
		}
		if t := bytes.TrimSpace(cur.Bytes()); len(t) > 0 && !onlyComments(t) {
			out = append(out, append([]byte(nil), cur.Bytes()...))
		}
	}
	return out
}

func mergeLabels(have, add map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range have {
		out[k] = v
	}
	for k, v := range add {
		out[k] = v
	}
	return out
}

// waitEstablished waits until the API server serves the CRD.
func waitEstablished(ctx context.Context, dc dynamic.Interface, name string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		o, err := dc.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
			for _, c := range conds {
				if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CustomResourceDefinition %s not established in 1m", name)
		case <-sleep():
		}
	}
}

// legacyObject is an object an earlier yurtctl convert made by hand for
// what OpenYurt's charts now install.
type legacyObject struct {
	kind, namespace, name string
	gvr                   schema.GroupVersionResource
	// replace: delete it even when the chart has it (a Deployment's
	// selector cannot change, so Helm cannot take it over).
	replace bool
}

func legacyObjects(ns string) []legacyObject {
	v1 := func(r string) schema.GroupVersionResource {
		return schema.GroupVersionResource{Version: "v1", Resource: r}
	}
	rbac := func(r string) schema.GroupVersionResource {
		return schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: r}
	}
	return []legacyObject{
		{kind: "Deployment", namespace: ns, name: yurtManagerName, gvr: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, replace: true},
		{kind: "ClusterRoleBinding", name: yurtManagerName, gvr: rbac("clusterrolebindings")}, // bound to cluster-admin
		{kind: "ClusterRoleBinding", name: CSRApproverClusterRole, gvr: rbac("clusterrolebindings")},
		{kind: "ClusterRole", name: CSRApproverClusterRole, gvr: rbac("clusterroles")},
		{kind: "ServiceAccount", namespace: ns, name: yurtManagerName, gvr: v1("serviceaccounts")},
		{kind: "ConfigMap", namespace: ns, name: constants.YurthubConfigMap, gvr: v1("configmaps")},
		{kind: "ClusterRoleBinding", name: YurthubClusterRole, gvr: rbac("clusterrolebindings")},
		{kind: "ClusterRole", name: YurthubClusterRole, gvr: rbac("clusterroles")},
	}
}

func (o legacyObject) String() string {
	if o.namespace != "" {
		return o.kind + " " + o.namespace + "/" + o.name
	}
	return o.kind + " " + o.name
}

// migrateLegacy hands an earlier convert's objects to the charts'
// releases: one the release renders is adopted (Helm's ownership label
// and annotations, so that the install takes it over instead of failing),
// one it does not (the cluster-admin binding, the CSR approver's role) or
// cannot take over is deleted. Objects not labelled managed-by=yurtctl are
// not touched: Helm reports them as conflicts.
func migrateLegacy(ctx context.Context, dc dynamic.Interface, ns string, rendered map[string][]manifestObject) ([]Action, error) {
	owner := map[string]string{}
	for release, objs := range rendered {
		for _, o := range objs {
			owner[o.Kind+"/"+o.Metadata.Name] = release
		}
	}
	var out []Action
	for _, l := range legacyObjects(ns) {
		api := dc.Resource(l.gvr).Namespace(l.namespace)
		have, err := api.Get(ctx, l.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("read %s: %w", l, err)
		}
		if have.GetLabels()[constants.LabelManagedBy] != constants.ManagedBy {
			continue
		}
		release := owner[l.kind+"/"+l.name]
		if release == "" || l.replace {
			if err := api.Delete(ctx, l.name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return out, fmt.Errorf("delete %s: %w", l, err)
			}
			why := "deleted (the chart does not have it)"
			if release != "" {
				why = "deleted (release " + release + " makes it anew)"
			}
			out = append(out, Action{l.kind, nsName(l.namespace, l.name), why})
			continue
		}
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
			"labels":      map[string]string{constants.LabelManagedBy: "Helm"},
			"annotations": map[string]string{"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": ns},
		}})
		if _, err := api.Patch(ctx, l.name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return out, fmt.Errorf("hand %s to release %s: %w", l, release, err)
		}
		out = append(out, Action{l.kind, nsName(l.namespace, l.name), "handed to Helm release " + ns + "/" + release})
	}
	return out, nil
}

func nsName(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

// deleteUnusedCRDs removes the CRDs convert created once no object of
// theirs is left; a CRD with objects is kept and named with one of them.
// Objects on their way out — being deleted, or owned only by objects that
// are gone (the NodeBuckets of deleted NodePools, which the garbage
// collector removes a moment later) — are waited for, up to gcWait.
func deleteUnusedCRDs(ctx context.Context, dc dynamic.Interface) ([]Action, error) {
	list, err := dc.Resource(crdGVR).List(ctx, metav1.ListOptions{LabelSelector: constants.LabelManagedBy + "=" + constants.ManagedBy})
	if err != nil {
		return nil, err
	}
	storage := func(crd unstructured.Unstructured) schema.GroupVersionResource {
		group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
		plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
		version := ""
		vs, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		for _, v := range vs {
			if m, ok := v.(map[string]any); ok && m["storage"] == true {
				version, _ = m["name"].(string)
			}
		}
		return schema.GroupVersionResource{Group: group, Version: version, Resource: plural}
	}
	byKind := map[string]schema.GroupVersionResource{}
	for _, crd := range list.Items {
		kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
		g := storage(crd)
		byKind[g.Group+"/"+kind] = g
	}
	// going: the object is being deleted, or every owner of it is gone.
	going := func(o unstructured.Unstructured) bool {
		if o.GetDeletionTimestamp() != nil {
			return true
		}
		owners := o.GetOwnerReferences()
		if len(owners) == 0 {
			return false
		}
		for _, ref := range owners {
			gv, _ := schema.ParseGroupVersion(ref.APIVersion)
			g, ok := byKind[gv.Group+"/"+ref.Kind]
			if !ok {
				return false // an owner of another kind: assume it lives
			}
			api := dc.Resource(g).Namespace(o.GetNamespace())
			if owner, err := api.Get(ctx, ref.Name, metav1.GetOptions{}); err == nil && owner.GetUID() == ref.UID {
				return false
			}
		}
		return true
	}
	var out []Action
	for _, crd := range list.Items {
		g := storage(crd)
		deadline := time.Now().Add(gcWait)
		var left *unstructured.Unstructured
		var listErr error
		for {
			objs, err := dc.Resource(g).List(ctx, metav1.ListOptions{Limit: 20})
			if err != nil && !apierrors.IsNotFound(err) {
				listErr = err
				break
			}
			left = nil
			waiting := true
			if err == nil {
				for i := range objs.Items {
					if left == nil {
						left = &objs.Items[i]
					}
					if !going(objs.Items[i]) {
						waiting = false
					}
				}
			}
			if left == nil || !waiting || time.Now().After(deadline) {
				break
			}
			select {
			case <-ctx.Done():
				return out, ctx.Err()
			case <-gcTick():
			}
		}
		switch {
		case listErr != nil:
			out = append(out, Action{"CustomResourceDefinition", crd.GetName(), fmt.Sprintf("kept (could not list its objects: %v)", listErr)})
			continue
		case left != nil:
			out = append(out, Action{"CustomResourceDefinition", crd.GetName(), fmt.Sprintf("kept: %s %s is left (delete the %s yourself, then the CRD)", left.GetKind(), nsName(left.GetNamespace(), left.GetName()), g.Resource)})
			continue
		}
		if err := dc.Resource(crdGVR).Delete(ctx, crd.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return out, fmt.Errorf("delete CustomResourceDefinition %s: %w", crd.GetName(), err)
		}
		out = append(out, Action{"CustomResourceDefinition", crd.GetName(), "deleted (no object left)"})
	}
	return out, nil
}

// gcWait bounds the wait for objects the garbage collector is removing;
// gcTick paces it (tests shorten both).
var (
	gcWait = 30 * time.Second
	gcTick = func() <-chan time.Time { return time.After(time.Second) }
)

// EnsureCRDs is ensureCRDs for callers outside the package (the
// integration tests run it against a real kube-apiserver).
func EnsureCRDs(ctx context.Context, dc dynamic.Interface, stream []byte) ([]Action, error) {
	return ensureCRDs(ctx, dc, stream)
}

// DeleteUnusedCRDs is deleteUnusedCRDs for callers outside the package.
func DeleteUnusedCRDs(ctx context.Context, dc dynamic.Interface) ([]Action, error) {
	return deleteUnusedCRDs(ctx, dc)
}

// yurt-manager's readiness probe as convert renders it. The chart waits
// 60 s before its first /readyz (initialDelaySeconds, with a probe every
// 10 s), so every install and upgrade of the release, and with it convert,
// waited at least a minute for a pod that is ready in a few seconds.
// yurt-manager's /readyz passes only once its webhook server has started
// (with its certificate and webhook configurations in place, OpenYurt
// v1.7.0 cmd/yurt-manager), so probing it from the start marks the pod
// ready no earlier than it is. The liveness probe stays the chart's.
const (
	YurtManagerReadinessDelay  = 1
	YurtManagerReadinessPeriod = 2
)

// yurtManagerDeployment and yurtManagerContainer are the chart's names.
const (
	yurtManagerDeployment = "yurt-manager"
	yurtManagerContainer  = "yurt-manager"
)

// PostRenderYurtManager is the Helm post-renderer convert gives the
// yurt-manager chart: the yurt-manager container's readiness probe
// starts at once (YurtManagerReadinessDelay, YurtManagerReadinessPeriod).
// Everything else, and a stream without that Deployment or probe, passes
// through unchanged.
func PostRenderYurtManager(in []byte) ([]byte, error) {
	return editDocs(in, func(o manifestObject, d []byte) ([]byte, error) {
		if o.Kind != "Deployment" || o.APIVersion != "apps/v1" || o.Metadata.Name != yurtManagerDeployment {
			return nil, nil
		}
		return editObject(d, func(m map[string]any) error {
			if err := setReadiness(m); err != nil {
				return fmt.Errorf("Deployment %s: %w", o.Metadata.Name, err)
			}
			return nil
		})
	})
}

// editDocs writes the documents of a YAML stream, "---" between them, each
// as edit returns it; nil keeps the document as it came.
func editDocs(in []byte, edit func(o manifestObject, d []byte) ([]byte, error)) ([]byte, error) {
	var out bytes.Buffer
	for i, d := range splitDocs(in) {
		if i > 0 {
			out.WriteString("---\n")
		}
		var o manifestObject
		if err := yaml.Unmarshal(d, &o); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		nd, err := edit(o, d)
		if err != nil {
			return nil, err
		}
		if nd == nil {
			nd = d
		}
		out.Write(nd)
		if !bytes.HasSuffix(nd, []byte("\n")) {
			out.WriteByte('\n')
		}
	}
	return out.Bytes(), nil
}

// editObject is document d with set applied to it as an object.
func editObject(d []byte, set func(map[string]any) error) ([]byte, error) {
	var m map[string]any
	if err := yaml.Unmarshal(d, &m); err != nil {
		return nil, err
	}
	if err := set(m); err != nil {
		return nil, err
	}
	return yaml.Marshal(m)
}

// setReadiness sets the yurt-manager container's readiness probe timing.
func setReadiness(m map[string]any) error {
	containers, _, err := unstructured.NestedSlice(m, "spec", "template", "spec", "containers")
	if err != nil {
		return err
	}
	// containers is NestedSlice's deep copy: its maps are edited in place
	// and the slice set back.
	for _, c := range containers {
		cm, ok := c.(map[string]any)
		if !ok || cm["name"] != yurtManagerContainer {
			continue
		}
		probe, ok := cm["readinessProbe"].(map[string]any)
		if !ok {
			return nil
		}
		probe["initialDelaySeconds"] = int64(YurtManagerReadinessDelay)
		probe["periodSeconds"] = int64(YurtManagerReadinessPeriod)
	}
	return unstructured.SetNestedSlice(m, containers, "spec", "template", "spec", "containers")
}
