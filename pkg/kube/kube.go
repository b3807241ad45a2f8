// Package kube builds the Kubernetes API clients yurtadm uses.
//
// Interface is the part of client-go's kubernetes.Interface that yurtadm
// calls. kubernetes.NewForConfig would build, and link, a client for every
// API group: measured on linux/amd64 that costs about 8 MB of binary and
// 5 MB of resident memory at start-up (docs/design.md), which an edge
// device pays on every run. *kubernetes.Clientset and client-go's fake
// clientset both satisfy Interface, so tests hand in the fake.
package kube

import (
	"fmt"

	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	rbacv1client "k8s.io/client-go/kubernetes/typed/rbac/v1"
	"k8s.io/client-go/rest"
)

// Interface is the subset of kubernetes.Interface that yurtadm uses.
type Interface interface {
	CoreV1() corev1client.CoreV1Interface
	RbacV1() rbacv1client.RbacV1Interface
}

type clients struct {
	core *corev1client.CoreV1Client
	rbac *rbacv1client.RbacV1Client
}

func (c *clients) CoreV1() corev1client.CoreV1Interface { return c.core }
func (c *clients) RbacV1() rbacv1client.RbacV1Interface { return c.rbac }

// New returns clients for cfg that share one HTTP client.
func New(cfg *rest.Config) (Interface, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("build the HTTP client for %s: %w", cfg.Host, err)
	}
	core, err := corev1client.NewForConfigAndClient(rest.CopyConfig(cfg), hc)
	if err != nil {
		return nil, err
	}
	rbac, err := rbacv1client.NewForConfigAndClient(rest.CopyConfig(cfg), hc)
	if err != nil {
		return nil, err
	}
	return &clients{core: core, rbac: rbac}, nil
}
