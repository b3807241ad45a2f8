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

	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"
	batchv1client "k8s.io/client-go/kubernetes/typed/batch/v1"
	certificatesv1client "k8s.io/client-go/kubernetes/typed/certificates/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	rbacv1client "k8s.io/client-go/kubernetes/typed/rbac/v1"
	"k8s.io/client-go/rest"
)

// Interface is the subset of kubernetes.Interface that yurtadm uses.
type Interface interface {
	CoreV1() corev1client.CoreV1Interface
	RbacV1() rbacv1client.RbacV1Interface
	// AppsV1 deploys yurt-manager (convert --yurt-manager-image).
	AppsV1() appsv1client.AppsV1Interface
	// BatchV1 runs convert's node steps as Jobs.
	BatchV1() batchv1client.BatchV1Interface
	// CoordinationV1 holds convert's Lease lock.
	CoordinationV1() coordinationv1client.CoordinationV1Interface
	// CertificatesV1 asks for yurthub's serving certificate at join.
	CertificatesV1() certificatesv1client.CertificatesV1Interface
}

type clients struct {
	core  *corev1client.CoreV1Client
	rbac  *rbacv1client.RbacV1Client
	apps  *appsv1client.AppsV1Client
	batch *batchv1client.BatchV1Client
	coord *coordinationv1client.CoordinationV1Client
	certs *certificatesv1client.CertificatesV1Client
}

func (c *clients) CoreV1() corev1client.CoreV1Interface    { return c.core }
func (c *clients) RbacV1() rbacv1client.RbacV1Interface    { return c.rbac }
func (c *clients) AppsV1() appsv1client.AppsV1Interface    { return c.apps }
func (c *clients) BatchV1() batchv1client.BatchV1Interface { return c.batch }
func (c *clients) CoordinationV1() coordinationv1client.CoordinationV1Interface {
	return c.coord
}
func (c *clients) CertificatesV1() certificatesv1client.CertificatesV1Interface { return c.certs }

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
	apps, err := appsv1client.NewForConfigAndClient(rest.CopyConfig(cfg), hc)
	if err != nil {
		return nil, err
	}
	batch, err := batchv1client.NewForConfigAndClient(rest.CopyConfig(cfg), hc)
	if err != nil {
		return nil, err
	}
	coord, err := coordinationv1client.NewForConfigAndClient(rest.CopyConfig(cfg), hc)
	if err != nil {
		return nil, err
	}
	certs, err := certificatesv1client.NewForConfigAndClient(rest.CopyConfig(cfg), hc)
	if err != nil {
		return nil, err
	}
	return &clients{core: core, rbac: rbac, apps: apps, batch: batch, coord: coord, certs: certs}, nil
}
