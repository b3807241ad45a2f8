package templates

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

const chartPod = `apiVersion: v1
kind: Pod
metadata:
  name: yurt-hub
  namespace: kube-system
  annotations: {openyurt.io/static-pod-hash: abc}
spec:
  containers:
  - name: yurt-hub
    image: openyurt/yurthub:v1.7.0
    command: [yurthub, --v=2, --server-addr=https://x:6443, --nodepool-name=]
`

func TestRenderFromStaticSet(t *testing.T) {
	out, err := RenderFromStaticSet(FromStaticSet{Manifest: []byte(chartPod), Image: "reg/yurthub:v2",
		Args: []string{"--server-addr=https://10.0.0.1:6443", "--nodepool-name=hz", "--enable-dummy-if=false"}})
	if err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(out, &pod); err != nil {
		t.Fatal(err)
	}
	c := pod.Spec.Containers[0]
	if got := strings.Join(c.Command, " "); got != "yurthub --v=2 --server-addr=https://10.0.0.1:6443 --nodepool-name=hz --enable-dummy-if=false" {
		t.Errorf("command %q", got)
	}
	if c.Image != "reg/yurthub:v2" || pod.Annotations["openyurt.io/static-pod-hash"] != "abc" || pod.Annotations["openyurt.io/managed-by"] != "yurtadm" {
		t.Errorf("image %q annotations %v", c.Image, pod.Annotations)
	}
	// A value cannot add a line to the command or change the image.
	for _, bad := range []FromStaticSet{
		{Manifest: []byte(chartPod), Args: []string{"--v=2\n    - --evil"}},
		{Manifest: []byte(chartPod), Image: "a\r\nimage: evil"},
		{Manifest: []byte("kind: Deployment\n")},
		{Manifest: []byte(strings.Replace(chartPod, "name: yurt-hub\n    image", "name: other\n    image", 1))},
		{Manifest: []byte(strings.Replace(chartPod, "[yurthub,", "[sh,", 1))},
	} {
		if out, err := RenderFromStaticSet(bad); err == nil {
			t.Errorf("accepted %+v:\n%s", bad, out)
		}
	}
}
