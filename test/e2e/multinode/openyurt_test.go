package multinode

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/test/cluster"
)

// TestOpenYurtControlPlane: the cluster is an OpenYurt v1.7.0 cluster as
// OpenYurt's charts define it (installed by yurtctl convert phase
// control-plane): two Helm releases that helm itself lists, yurt-manager
// running on the control-plane node with its default controllers, no
// ServiceAccount bound to cluster-admin, each joined node a member of a
// real NodePool (the nodepool controller reports it), and every edge and
// cloud node running yurthub from the cluster's YurtStaticSet template.
func TestOpenYurtControlPlane(t *testing.T) {
	c := need(t)
	ctx := timeout(t, 3*time.Minute)
	cp := node(t, cpName)

	out, err := cp.Output(ctx, "helm", "list", "--namespace", "kube-system", "-o", "json", "--kubeconfig", "/etc/kubernetes/admin.conf")
	if err != nil {
		t.Fatalf("helm list: %v", err)
	}
	var releases []struct{ Name, Status, Chart string }
	if err := json.Unmarshal([]byte(out), &releases); err != nil {
		t.Fatalf("helm list -o json: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, r := range releases {
		got[r.Name] = r.Chart + " " + r.Status
	}
	for _, want := range []string{"yurt-manager", "yurthub"} {
		if got[want] != want+"-1.7.0 deployed" {
			t.Errorf("helm release %s: %q, want chart %s-1.7.0 deployed (all: %v)", want, got[want], want, got)
		}
	}

	pods, err := c.Client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=yurt-manager"})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("yurt-manager pods: %v %d", err, len(pods.Items))
	}
	ym := pods.Items[0]
	if ym.Spec.NodeName != cpName || !cluster.PodReady(&ym) {
		t.Errorf("yurt-manager pod %s on %q, ready %v; want Ready on %s", ym.Name, ym.Spec.NodeName, cluster.PodReady(&ym), cpName)
	}
	args := strings.Join(ym.Spec.Containers[0].Args, " ")
	if !strings.Contains(args, "--controllers=-nodelifecycle,-yurtnodeconversion,*") {
		t.Errorf("yurt-manager's controllers: %s", args)
	}

	crbs, err := c.Client.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range crbs.Items {
		if b.RoleRef.Name != "cluster-admin" {
			continue
		}
		for _, s := range b.Subjects {
			if s.Kind == "ServiceAccount" && strings.HasPrefix(s.Name, "yurt") {
				t.Errorf("ClusterRoleBinding %s binds ServiceAccount %s/%s to cluster-admin", b.Name, s.Namespace, s.Name)
			}
		}
	}

	dc, err := dynamic.NewForConfig(c.RestConfig())
	if err != nil {
		t.Fatal(err)
	}
	pools := dc.Resource(schema.GroupVersionResource{Group: "apps.openyurt.io", Version: "v1beta2", Resource: "nodepools"})
	for _, n := range c.Nodes()[1:] {
		if n.Role != cluster.RoleEdge && n.Role != cluster.RoleCloud {
			continue
		}
		t.Run(n.Name, func(t *testing.T) {
			var last string
			err := cluster.Poll(ctx, 2*time.Minute, func() (bool, string) {
				np, err := pools.Get(ctx, n.Pool, metav1.GetOptions{})
				if err != nil {
					return false, err.Error()
				}
				members, _, _ := unstructured.NestedStringSlice(np.Object, "status", "nodes")
				last = strings.Join(members, ",")
				return contains(members, n.Name), "NodePool " + n.Pool + " status.nodes " + last
			})
			if err != nil {
				t.Errorf("the nodepool controller does not report %s in NodePool %s: %v", n.Name, n.Pool, err)
			}
			manifest, err := n.Output(ctx, "cat", "/etc/kubernetes/manifests/yurthub.yaml")
			if err != nil || !strings.Contains(manifest, "openyurt.io/static-pod-hash") {
				t.Errorf("yurthub's manifest is not the cluster's YurtStaticSet template (no static-pod-hash): %v\n%s", err, manifest)
			}
			if !strings.Contains(manifest, "--bootstrap-mode=kubeletcertificate") || strings.Contains(manifest, "--bootstrap-file") {
				t.Errorf("yurthub's manifest is not in convert's kubeletcertificate mode:\n%s", manifest)
			}
			if !strings.Contains(manifest, "--enable-dummy-if=false") {
				t.Errorf("yurthub's manifest lacks convert's --yurthub-extra-arg (post-rendered into the YurtStaticSet):\n%s", manifest)
			}
		})
	}
}

// TestDoctorSeesOpenYurtsControllers: `yurtadm doctor` on edge1 agrees
// with what yurt-manager does for the node: the nodepool check finds edge1
// in its NodePool's status; the pod-binding check finds its pods' NoExecute
// tolerations as the pod-binding controller sets them for
// autonomy-duration=0 (unset) and for 10m (600 s); with yurt-manager
// scaled to zero, a new pod keeps the cluster's 30 s tolerations and the
// check fails naming it (an "autonomous" node whose pods would be evicted);
// yurt-manager back, the pod is bound and nothing fails.
func TestDoctorSeesOpenYurtsControllers(t *testing.T) {
	c := need(t)
	n := node(t, edge1Name)
	ctx := timeout(t, 10*time.Minute)
	// unreachable is a pod's node.kubernetes.io/unreachable NoExecute
	// tolerationSeconds as text ("unset" for none).
	unreachable := func(name string) string {
		if ps := webPods(ctx, t, name); len(ps) > 0 {
			return unreachableOf(&ps[0])
		}
		return "no pod"
	}
	bound := func(name, want string) {
		t.Helper()
		if !waitFor(t, 2*time.Minute, name+"'s unreachable toleration "+want, func() bool { return unreachable(name) == want }) {
			t.Fatalf("%s tolerates unreachable for %s, want %s", name, unreachable(name), want)
		}
	}
	annotate := func(v string) {
		t.Helper()
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, constants.AnnotationAutonomyDur, v)
		if _, err := c.Client.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	deployWeb(ctx, t, "web-binding", n.Name)
	bound("web-binding", "unset")

	t.Run("bound as autonomy-duration=0 asks", func(t *testing.T) {
		rep, r := doctorOn(ctx, t, n)
		wantFinding(t, rep, r, "nodepool", "ok", []string{"is in NodePool hangzhou"}, nil)
		wantFinding(t, rep, r, "pod-binding", "ok", []string{constants.AnnotationAutonomyDur + "=0", "unset (never evicted)"}, nil)
		wantFails(t, rep, nil)
	})

	t.Run("autonomy for 10m", func(t *testing.T) {
		annotate("10m")
		defer func() { annotate("0"); bound("web-binding", "unset") }()
		bound("web-binding", "600")
		rep, r := doctorOn(ctx, t, n)
		wantFinding(t, rep, r, "pod-binding", "ok", []string{constants.AnnotationAutonomyDur + "=10m", "are 600s"}, nil)
	})

	t.Run("yurt-manager stopped", func(t *testing.T) {
		deps := c.Client.AppsV1().Deployments("kube-system")
		d, err := deps.Get(ctx, "yurt-manager", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		replicas := *d.Spec.Replicas
		scale := func(r int32) {
			t.Helper()
			s, err := deps.GetScale(ctx, "yurt-manager", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			s.Spec.Replicas = r
			if _, err := deps.UpdateScale(ctx, "yurt-manager", s, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		ymPods := func() int {
			l, err := c.Client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=yurt-manager"})
			if err != nil {
				return -1
			}
			return len(l.Items)
		}
		scale(0)
		defer func() {
			scale(replicas)
			if err := c.WaitPods(ctx, "kube-system", "app.kubernetes.io/name=yurt-manager", 3*time.Minute); err != nil {
				t.Errorf("yurt-manager not back: %v", err)
			}
		}()
		if !waitFor(t, 2*time.Minute, "no yurt-manager pod", func() bool { return ymPods() == 0 }) {
			t.Fatal("yurt-manager still runs after scaling it to 0")
		}
		deployWeb(ctx, t, "web-unbound", n.Name)
		time.Sleep(35 * time.Second) // past doctor's grace for a new pod
		if got := unreachable("web-unbound"); got != "30" {
			t.Fatalf("web-unbound tolerates unreachable for %s without yurt-manager, want the cluster's 30", got)
		}
		rep, r := doctorOn(ctx, t, n)
		wantExit(t, rep, r, 6)
		wantFails(t, rep, nil, "pod-binding")
		wantFinding(t, rep, r, "pod-binding", "fail", []string{"2 tolerations", "pod-binding controller has not set them"}, []string{"podbinding"})
		scale(replicas)
		bound("web-unbound", "unset")
		rep, r = doctorOn(ctx, t, n)
		wantFinding(t, rep, r, "pod-binding", "ok", nil, nil)
		wantExit(t, rep, r, 0)
	})
}

// unreachableOf is a pod's node.kubernetes.io/unreachable NoExecute
// tolerationSeconds as text: "unset" when it has none.
func unreachableOf(p *corev1.Pod) string {
	for _, tol := range p.Spec.Tolerations {
		if tol.Key == corev1.TaintNodeUnreachable && tol.Effect == corev1.TaintEffectNoExecute {
			if tol.TolerationSeconds == nil {
				return "unset"
			}
			return fmt.Sprint(*tol.TolerationSeconds)
		}
	}
	return "no unreachable toleration"
}

// TestNodesRBACIsNarrow: what every node may do through the yurthub
// chart's RBAC, post-rendered by convert: ConfigMaps readable in
// kube-system only (where yurthub lists yurt-hub-cfg), no Lease writable but
// the node's own (the Node authorizer's), asked of the real API server
// with SubjectAccessReviews as edge1; and yurthub on every edge and cloud
// node read its ConfigMap under it (yurthub serves nothing until it has:
// "hub is not ready for yurt-hub-cfg configmap is not synced") and was
// never forbidden anything.
func TestNodesRBACIsNarrow(t *testing.T) {
	c := need(t)
	ctx := timeout(t, 2*time.Minute)
	can := func(verb, group, resource, ns, name string) bool {
		t.Helper()
		r, err := c.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{
				User: "system:node:" + edge1Name, Groups: []string{"system:nodes", "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource, Namespace: ns, Name: name},
			}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r.Status.Allowed
	}
	for _, q := range []struct {
		verb, group, resource, ns, name string
		want                            bool
	}{
		{"list", "", "configmaps", "kube-system", "", true},
		{"watch", "", "configmaps", "kube-system", "", true},
		{"list", "", "configmaps", "default", "", false},
		{"get", "", "configmaps", "kube-public", "some-config", false},
		{"update", "coordination.k8s.io", "leases", "kube-system", "kube-controller-manager", false},
		{"update", "coordination.k8s.io", "leases", "kube-node-lease", edge2Name, false},
		{"update", "coordination.k8s.io", "leases", "kube-node-lease", edge1Name, true},
		{"list", "apps.openyurt.io", "nodepools", "", "", true},
		{"list", "discovery.k8s.io", "endpointslices", "", "", true},
	} {
		if got := can(q.verb, q.group, q.resource, q.ns, q.name); got != q.want {
			t.Errorf("node %s may %s %s %s/%s: %v, want %v", edge1Name, q.verb, q.resource, q.ns, q.name, got, q.want)
		}
	}
	for _, n := range c.Nodes()[1:] {
		if n.Role != cluster.RoleEdge && n.Role != cluster.RoleCloud {
			continue
		}
		logs, err := n.Shell(ctx, `for id in $(crictl ps -a -q --name yurt-hub); do crictl logs "$id" 2>&1; done`)
		if err != nil || logs == "" {
			t.Errorf("%s: yurthub's logs: %v", n.Name, err)
			continue
		}
		if !strings.Contains(logs, "namespaces/kube-system/configmaps?labelSelector=openyurt.io%2Fconfigmap-name") || !strings.Contains(logs, `"Caches populated" type="*v1.ConfigMap"`) {
			t.Errorf("%s: yurthub did not list its ConfigMap in kube-system", n.Name)
		}
		for _, l := range strings.Split(logs, "\n") {
			if !strings.Contains(strings.ToLower(l), "forbidden") {
				continue
			}
			// Not RBAC: yurthub v1.7.0's autonomy proxy writes the Node
			// status from a Node it read from its cache or the API
			// server's watch cache; when the taints changed meanwhile
			// (the node lifecycle controller after a scenario kept the
			// node from reporting, CI of 966a433 on edge2; or a join's
			// new Node, seen in yurthub's log of a join on 2026-12-07),
			// the NodeRestriction admission refuses it and yurthub
			// retries from the cloud.
			if strings.Contains(l, "autonomy.go") && strings.Contains(l, "is not allowed to modify taints") {
				t.Logf("%s: yurthub's autonomy proxy refused by NodeRestriction (stale cached taints, not RBAC): %s", n.Name, l)
				continue
			}
			t.Errorf("%s: yurthub was forbidden something: %s", n.Name, l)
		}
	}
}
