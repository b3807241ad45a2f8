package templates

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// FuzzRenderYurthub: whatever the image and extra argument hold, the
// manifest either is refused or parses back into a Pod with exactly that
// image and that argument as one list item.
func FuzzRenderYurthub(f *testing.F) {
	f.Add("docker.io/openyurt/yurthub:v1.7.0", "--enable-dummy-if=false")
	f.Add("x\r\n    command: [sh]", "--a=b\n    - --evil")
	f.Add("img", `--x="q' # c: d`)
	f.Fuzz(func(t *testing.T, image, arg string) {
		if image == "" {
			return
		}
		b, err := RenderYurthub(Yurthub{Image: image, Namespace: "kube-system", ServerAddr: "https://a:6443", NodePoolName: "p",
			WorkingMode: "edge", BootstrapMode: "token", ExtraArgs: []string{arg}})
		if err != nil {
			return
		}
		var pod corev1.Pod
		if err := yaml.UnmarshalStrict(b, &pod); err != nil {
			t.Fatalf("rendered manifest does not parse: %v", err)
		}
		c := pod.Spec.Containers[0]
		if c.Image != image || c.Command[len(c.Command)-1] != arg {
			t.Fatalf("image %q -> %q, arg %q -> %q", image, c.Image, arg, c.Command[len(c.Command)-1])
		}
	})
}
