// Package kubetest hands a client-go clientset (the fake one in unit tests,
// a real one in the integration and e2e suites) to code that takes
// kube.Interface. It links client-go's typed clients and their scheme of
// every API group, so only tests import it; yurtadm itself never does
// (TestBinaryDoesNotLinkTypedClients in package kube checks).
package kubetest

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/yurtadm/yurtadm/pkg/kube"
)

// Wrap returns cs as a kube.Interface.
func Wrap(cs kubernetes.Interface) kube.Interface { return clientset{cs} }

type clientset struct{ cs kubernetes.Interface }

func (c clientset) CoreV1() kube.CoreV1Interface                 { return core{c.cs} }
func (c clientset) RbacV1() kube.RbacV1Interface                 { return rbac{c.cs} }
func (c clientset) AppsV1() kube.AppsV1Interface                 { return apps{c.cs} }
func (c clientset) BatchV1() kube.BatchV1Interface               { return batch{c.cs} }
func (c clientset) CoordinationV1() kube.CoordinationV1Interface { return coord{c.cs} }
func (c clientset) CertificatesV1() kube.CertificatesV1Interface { return certs{c.cs} }

type core struct{ cs kubernetes.Interface }

func (c core) Pods(ns string) kube.Client[*corev1.Pod, *corev1.PodList] {
	return c.cs.CoreV1().Pods(ns)
}
func (c core) Nodes() kube.Client[*corev1.Node, *corev1.NodeList] { return c.cs.CoreV1().Nodes() }
func (c core) ConfigMaps(ns string) kube.Client[*corev1.ConfigMap, *corev1.ConfigMapList] {
	return c.cs.CoreV1().ConfigMaps(ns)
}
func (c core) Secrets(ns string) kube.Client[*corev1.Secret, *corev1.SecretList] {
	return c.cs.CoreV1().Secrets(ns)
}
func (c core) Services(ns string) kube.Client[*corev1.Service, *corev1.ServiceList] {
	return c.cs.CoreV1().Services(ns)
}
func (c core) ServiceAccounts(ns string) kube.Client[*corev1.ServiceAccount, *corev1.ServiceAccountList] {
	return c.cs.CoreV1().ServiceAccounts(ns)
}
func (c core) Namespaces() kube.Client[*corev1.Namespace, *corev1.NamespaceList] {
	return c.cs.CoreV1().Namespaces()
}

type rbac struct{ cs kubernetes.Interface }

func (c rbac) ClusterRoles() kube.Client[*rbacv1.ClusterRole, *rbacv1.ClusterRoleList] {
	return c.cs.RbacV1().ClusterRoles()
}
func (c rbac) ClusterRoleBindings() kube.Client[*rbacv1.ClusterRoleBinding, *rbacv1.ClusterRoleBindingList] {
	return c.cs.RbacV1().ClusterRoleBindings()
}
func (c rbac) Roles(ns string) kube.Client[*rbacv1.Role, *rbacv1.RoleList] {
	return c.cs.RbacV1().Roles(ns)
}
func (c rbac) RoleBindings(ns string) kube.Client[*rbacv1.RoleBinding, *rbacv1.RoleBindingList] {
	return c.cs.RbacV1().RoleBindings(ns)
}

type apps struct{ cs kubernetes.Interface }

func (c apps) Deployments(ns string) kube.Client[*appsv1.Deployment, *appsv1.DeploymentList] {
	return c.cs.AppsV1().Deployments(ns)
}
func (c apps) DaemonSets(ns string) kube.Client[*appsv1.DaemonSet, *appsv1.DaemonSetList] {
	return c.cs.AppsV1().DaemonSets(ns)
}

type batch struct{ cs kubernetes.Interface }

func (c batch) Jobs(ns string) kube.CollectionClient[*batchv1.Job, *batchv1.JobList] {
	return c.cs.BatchV1().Jobs(ns)
}

type coord struct{ cs kubernetes.Interface }

func (c coord) Leases(ns string) kube.Client[*coordinationv1.Lease, *coordinationv1.LeaseList] {
	return c.cs.CoordinationV1().Leases(ns)
}

type certs struct{ cs kubernetes.Interface }

func (c certs) CertificateSigningRequests() kube.Client[*certificatesv1.CertificateSigningRequest, *certificatesv1.CertificateSigningRequestList] {
	return c.cs.CertificatesV1().CertificateSigningRequests()
}

// Clientset returns the clientset k wraps, or nil when k is not Wrap's.
func Clientset(k kube.Interface) kubernetes.Interface {
	if c, ok := k.(clientset); ok {
		return c.cs
	}
	return nil
}
