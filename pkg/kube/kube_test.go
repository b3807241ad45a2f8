package kube

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// TestClientsSpeakToTheRightPaths: each group's client asks its own API
// path, sends and decodes objects, and /version is read.
func TestClientsSpeakToTheRightPaths(t *testing.T) {
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Method+" "+r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/version":
			_, _ = w.Write([]byte(`{"major":"1","minor":"34","gitVersion":"v1.34.4"}`))
		case r.URL.Path == "/api/v1/nodes/edge-1":
			_ = json.NewEncoder(w).Encode(&corev1.Node{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"},
				ObjectMeta: metav1.ObjectMeta{Name: "edge-1", Labels: map[string]string{"a": "b"}}})
		case r.URL.Path == "/apis/batch/v1/namespaces/kube-system/jobs":
			// Sent as protobuf, as client-go's typed clients send it.
			if ct := r.Header.Get("Content-Type"); ct != "application/vnd.kubernetes.protobuf" {
				t.Errorf("job sent as %q", ct)
			}
			body, _ := io.ReadAll(r.Body)
			obj, _, err := codecs.UniversalDeserializer().Decode(body, nil, nil)
			if err != nil {
				t.Errorf("job body: %v", err)
				return
			}
			j := *obj.(*batchv1.Job)
			j.TypeMeta = metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"}
			j.UID = "u1"
			_ = json.NewEncoder(w).Encode(&j)
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`))
		}
	}))
	defer srv.Close()
	cfg := &rest.Config{Host: srv.URL}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n, err := c.CoreV1().Nodes().Get(ctx, "edge-1", metav1.GetOptions{})
	if err != nil || n.Name != "edge-1" || n.Labels["a"] != "b" {
		t.Fatalf("node %+v, %v", n, err)
	}
	j, err := c.BatchV1().Jobs("kube-system").Create(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "j"}}, metav1.CreateOptions{})
	if err != nil || j.UID != "u1" || j.Name != "j" {
		t.Fatalf("job %+v, %v", j, err)
	}
	if _, err := c.RbacV1().ClusterRoles().Patch(ctx, "r", types.MergePatchType, []byte(`{}`), metav1.PatchOptions{}); err == nil {
		t.Error("a 404 was not an error")
	}
	v, err := ServerVersion(ctx, cfg)
	if err != nil || v.GitVersion != "v1.34.4" {
		t.Fatalf("version %+v, %v", v, err)
	}
	want := "GET /api/v1/nodes/edge-1,POST /apis/batch/v1/namespaces/kube-system/jobs,PATCH /apis/rbac.authorization.k8s.io/v1/clusterroles/r,GET /version"
	if got := strings.Join(seen, ","); got != want {
		t.Errorf("requests\n %s\nwant\n %s", got, want)
	}
}

// TestBinaryDoesNotLinkTypedClients: yurtadm must not link client-go's
// typed clients, their all-groups scheme, its discovery client or
// kubeadm's cmd/util (which links the whole clientset): together 16 MB of
// the stripped binary (docs/design.md).
func TestBinaryDoesNotLinkTypedClients(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH, so the binary's packages cannot be listed")
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/yurtadm/yurtadm/cmd/yurtadm").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 100 {
		t.Fatalf("go list listed only %d packages", len(deps))
	}
	for _, d := range deps {
		if d == "k8s.io/client-go/kubernetes" || strings.HasPrefix(d, "k8s.io/client-go/kubernetes/") ||
			d == "k8s.io/client-go/discovery" || strings.HasPrefix(d, "k8s.io/client-go/applyconfigurations") ||
			strings.HasPrefix(d, "k8s.io/kubernetes/cmd/kubeadm/app/cmd/") ||
			d == "github.com/yurtadm/yurtadm/pkg/kube/kubetest" {
			t.Errorf("yurtadm links %s", d)
		}
	}
}
