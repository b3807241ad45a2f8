package yurthub

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/yurtadm/yurtadm/pkg/kube"
)

// StaticSetTemplate is the cluster's yurthub template: the static pod
// OpenYurt's YurtStaticSet controller keeps in the ConfigMap
// yurt-static-set-<name> of the YurtStaticSet's namespace.
type StaticSetTemplate struct {
	Manifest []byte
	// BootstrapMode is the yurt-hub container's --bootstrap-mode
	// (yurthub v1.7.0's default, token, when it has none).
	BootstrapMode string
	// Where names the ConfigMap, namespace/name.
	Where string
}

// ReadStaticSetTemplate reads the template of the YurtStaticSet ns/name.
// Without one it returns nil and why (a cluster without OpenYurt's
// yurthub chart); err is set, with why, when the template is there but
// cannot be read or is not one yurthub Pod: worth a warning.
func ReadStaticSetTemplate(ctx context.Context, client kube.Interface, ns, name string) (t *StaticSetTemplate, why string, err error) {
	where := ns + "/yurt-static-set-" + name
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	cm, err := client.CoreV1().ConfigMaps(ns).Get(ctx, "yurt-static-set-"+name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, "the cluster has no YurtStaticSet " + name + ": ConfigMap " + where + " not found", nil
	case apierrors.IsForbidden(err):
		return nil, "this identity may not read ConfigMap " + where, fmt.Errorf("read ConfigMap %s: %w (OpenYurt's yurthub chart grants that read; 'yurtctl convert' installs it)", where, err)
	case err != nil:
		return nil, "could not read ConfigMap " + where, fmt.Errorf("read ConfigMap %s: %w", where, err)
	case len(cm.Data) != 1:
		return nil, "ConfigMap " + where + " is not one manifest", fmt.Errorf("ConfigMap %s holds %d entries, want the one static pod manifest", where, len(cm.Data))
	}
	var manifest string
	for _, v := range cm.Data {
		manifest = v
	}
	var pod corev1.Pod
	if err := yaml.Unmarshal([]byte(manifest), &pod); err != nil {
		return nil, "ConfigMap " + where + " is not a Pod manifest", fmt.Errorf("ConfigMap %s is not a Pod manifest: %w", where, err)
	}
	mode := "token"
	for _, c := range pod.Spec.Containers {
		if c.Name == "yurt-hub" {
			if v, ok := ArgValue(c.Command, "--bootstrap-mode"); ok {
				mode = v
			}
		}
	}
	return &StaticSetTemplate{Manifest: []byte(manifest), BootstrapMode: mode, Where: where}, "", nil
}
