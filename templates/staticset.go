package templates

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/yurtadm/yurtadm/pkg/version"
	"github.com/yurtadm/yurtadm/pkg/yurthub"
)

// FromStaticSet is what join sets on the cluster's yurthub template.
type FromStaticSet struct {
	// Manifest is the static pod OpenYurt's YurtStaticSet controller keeps
	// in the ConfigMap yurt-static-set-<name> (one data entry).
	Manifest []byte
	// Image replaces the template's image when not empty.
	Image string
	// Args are set on yurthub's command line (yurthub.SetArgs): the
	// node's own values (--server-addr, --nodepool-name, --working-mode,
	// --bootstrap-file) and --yurthub-extra-arg.
	Args []string
}

// RenderFromStaticSet builds the yurthub static pod from the cluster's
// YurtStaticSet template: the template parsed as a Pod, the yurt-hub
// container's image and flags set, serialized again (no text is pasted
// into YAML, so no value can change its structure). The template's other
// fields, its static-pod hash annotation included, are kept: the
// YurtStaticSet controller counts the node as up to date.
func RenderFromStaticSet(d FromStaticSet) ([]byte, error) {
	var pod corev1.Pod
	if err := yaml.Unmarshal(d.Manifest, &pod); err != nil {
		return nil, fmt.Errorf("the cluster's yurthub template does not parse as a Pod: %w", err)
	}
	if pod.Kind != "" && pod.Kind != "Pod" {
		return nil, fmt.Errorf("the cluster's yurthub template is a %s, not a Pod", pod.Kind)
	}
	i := -1
	for j, c := range pod.Spec.Containers {
		if c.Name == "yurt-hub" {
			i = j
		}
	}
	if i < 0 {
		return nil, fmt.Errorf("the cluster's yurthub template has no container named yurt-hub")
	}
	ctr := &pod.Spec.Containers[i]
	if len(ctr.Command) == 0 || ctr.Command[0] != "yurthub" {
		return nil, fmt.Errorf("the cluster's yurthub template runs %q, not yurthub", ctr.Command)
	}
	if err := yurthub.ValidateExtraArgs(d.Args); err != nil {
		return nil, err
	}
	if d.Image != "" {
		if err := yurthub.ValidateImage(d.Image); err != nil {
			return nil, err
		}
		ctr.Image = d.Image
	}
	ctr.Command = yurthub.SetArgs(ctr.Command, d.Args...)
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations["openyurt.io/managed-by"] = "yurtadm"
	pod.APIVersion, pod.Kind = "v1", "Pod"
	out, err := yaml.Marshal(&pod)
	if err != nil {
		return nil, err
	}
	// Parsed back, it says what was asked.
	var back corev1.Pod
	if err := yaml.UnmarshalStrict(out, &back); err != nil {
		return nil, fmt.Errorf("the yurthub manifest does not parse back: %w", err)
	}
	got := back.Spec.Containers[i]
	if d.Image != "" && got.Image != d.Image {
		return nil, fmt.Errorf("yurthub manifest: image %q became %q", d.Image, got.Image)
	}
	for _, a := range d.Args {
		name, _, _ := strings.Cut(a, "=")
		if v, ok := yurthub.ArgValue(got.Command, name); !ok || name+"="+v != a {
			return nil, fmt.Errorf("yurthub manifest: %q did not make it into the command %q", a, got.Command)
		}
	}
	return out, nil
}

// NodeArgs are the flags that make the cluster's yurthub template this
// node's (FromStaticSet.Args): the API server address it joined by, its
// working mode, namespace and pool, the bootstrap file (token mode only,
// else ""), then the operator's --yurthub-extra-arg values, which win.
func NodeArgs(server, mode, namespace, pool, bootstrapFile string, extra []string) []string {
	args := []string{"--server-addr=" + server, "--working-mode=" + mode, "--namespace=" + namespace, "--nodepool-name=" + pool}
	if bootstrapFile != "" {
		args = append(args, "--bootstrap-file="+bootstrapFile)
	}
	return append(args, extra...)
}

// TemplateImage is FromStaticSet.Image for a --yurthub-image value: the
// built-in default keeps the cluster's own image; any other replaces it.
func TemplateImage(image string) string {
	if image == version.DefaultYurthubImage {
		return ""
	}
	return image
}
