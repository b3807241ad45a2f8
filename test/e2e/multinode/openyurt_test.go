package multinode

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

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
