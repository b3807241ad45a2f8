// Package kube builds the Kubernetes API clients yurtadm uses.
//
// Interface is the part of client-go's kubernetes.Interface that yurtadm
// calls, with each resource reduced to the generic Client verbs. The
// clients are client-go's own generic ones (k8s.io/client-go/gentype) over
// a scheme that knows only the six API groups yurtadm reads and writes.
// client-go's typed clients (kubernetes/typed/...) would register every
// API group of k8s.io/api in their shared scheme and link the apply
// configurations and the OpenAPI models with them: measured on
// linux/amd64, a program holding one typed core client is 36.0 MB
// stripped, the same with gentype and a core-only scheme 22.3 MB
// (docs/design.md), which an edge device pays on every run, in disk and in
// the memory the package initialisers take at start-up.
//
// client-go's typed clients satisfy the per-resource interfaces, so tests
// hand in the fake clientset through package kube/kubetest.
package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/gentype"
	"k8s.io/client-go/rest"
)

// Client is what yurtadm does with one resource: the verbs every
// client-go typed client (and gentype.ClientWithList) has, with the same
// signatures.
type Client[T runtime.Object, L runtime.Object] interface {
	Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error)
	Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	List(ctx context.Context, opts metav1.ListOptions) (L, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error)
}

// CollectionClient is a Client that can also delete by selector.
type CollectionClient[T runtime.Object, L runtime.Object] interface {
	Client[T, L]
	DeleteCollection(ctx context.Context, opts metav1.DeleteOptions, listOpts metav1.ListOptions) error
}

// Interface is the subset of kubernetes.Interface that yurtadm uses.
type Interface interface {
	CoreV1() CoreV1Interface
	RbacV1() RbacV1Interface
	// AppsV1 reads and removes the earlier yurtctl's yurt-manager.
	AppsV1() AppsV1Interface
	// BatchV1 runs convert's node steps as Jobs.
	BatchV1() BatchV1Interface
	// CoordinationV1 holds convert's Lease lock.
	CoordinationV1() CoordinationV1Interface
	// CertificatesV1 asks for yurthub's serving certificate at join.
	CertificatesV1() CertificatesV1Interface
}

// CoreV1Interface is the core group's resources yurtadm uses.
type CoreV1Interface interface {
	Pods(namespace string) Client[*corev1.Pod, *corev1.PodList]
	Nodes() Client[*corev1.Node, *corev1.NodeList]
	ConfigMaps(namespace string) Client[*corev1.ConfigMap, *corev1.ConfigMapList]
	Secrets(namespace string) Client[*corev1.Secret, *corev1.SecretList]
	Services(namespace string) Client[*corev1.Service, *corev1.ServiceList]
	ServiceAccounts(namespace string) Client[*corev1.ServiceAccount, *corev1.ServiceAccountList]
	Namespaces() Client[*corev1.Namespace, *corev1.NamespaceList]
}

// RbacV1Interface is the RBAC group's resources yurtadm uses.
type RbacV1Interface interface {
	ClusterRoles() Client[*rbacv1.ClusterRole, *rbacv1.ClusterRoleList]
	ClusterRoleBindings() Client[*rbacv1.ClusterRoleBinding, *rbacv1.ClusterRoleBindingList]
	Roles(namespace string) Client[*rbacv1.Role, *rbacv1.RoleList]
	RoleBindings(namespace string) Client[*rbacv1.RoleBinding, *rbacv1.RoleBindingList]
}

// AppsV1Interface is the apps group's resources yurtadm uses.
type AppsV1Interface interface {
	Deployments(namespace string) Client[*appsv1.Deployment, *appsv1.DeploymentList]
	DaemonSets(namespace string) Client[*appsv1.DaemonSet, *appsv1.DaemonSetList]
}

// BatchV1Interface is the batch group's resources yurtadm uses.
type BatchV1Interface interface {
	Jobs(namespace string) CollectionClient[*batchv1.Job, *batchv1.JobList]
}

// CoordinationV1Interface is the coordination group's resources yurtadm uses.
type CoordinationV1Interface interface {
	Leases(namespace string) Client[*coordinationv1.Lease, *coordinationv1.LeaseList]
}

// CertificatesV1Interface is the certificates group's resources yurtadm uses.
type CertificatesV1Interface interface {
	CertificateSigningRequests() Client[*certificatesv1.CertificateSigningRequest, *certificatesv1.CertificateSigningRequestList]
}

// scheme knows the API groups above and nothing else.
var (
	scheme         = runtime.NewScheme()
	codecs         = serializer.NewCodecFactory(scheme)
	parameterCodec = runtime.NewParameterCodec(scheme)
)

func init() {
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, rbacv1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme,
		coordinationv1.AddToScheme, certificatesv1.AddToScheme,
	} {
		utilruntime.Must(add(scheme))
	}
}

// groupClient is one API group's REST client.
type groupClient struct{ rc rest.Interface }

func newGroupClient(cfg *rest.Config, hc *http.Client, gv schema.GroupVersion) (groupClient, error) {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &gv
	c.APIPath = "/apis"
	if gv.Group == "" {
		c.APIPath = "/api"
	}
	c.NegotiatedSerializer = rest.CodecFactoryForGeneratedClient(scheme, codecs).WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc, err := rest.RESTClientForConfigAndClient(c, hc)
	if err != nil {
		return groupClient{}, fmt.Errorf("build the %s client for %s: %w", gv, cfg.Host, err)
	}
	return groupClient{rc: rc}, nil
}

type object[T any] interface {
	*T
	runtime.Object
	metav1.Object
}

// resource builds the generic client of one resource. Core types prefer
// protobuf on the wire, as client-go's typed clients do.
func resource[T any, L any, PT object[T], PL interface {
	*L
	runtime.Object
}](g groupClient, name, namespace string, protobuf bool) *gentype.ClientWithList[PT, PL] {
	var opts []gentype.Option[PT]
	if protobuf {
		opts = append(opts, gentype.PrefersProtobuf[PT]())
	}
	return gentype.NewClientWithList[PT, PL](name, g.rc, parameterCodec, namespace,
		func() PT { return PT(new(T)) }, func() PL { return PL(new(L)) }, opts...)
}

type coreClient struct{ groupClient }

func (c coreClient) Pods(ns string) Client[*corev1.Pod, *corev1.PodList] {
	return resource[corev1.Pod, corev1.PodList](c.groupClient, "pods", ns, true)
}
func (c coreClient) Nodes() Client[*corev1.Node, *corev1.NodeList] {
	return resource[corev1.Node, corev1.NodeList](c.groupClient, "nodes", "", true)
}
func (c coreClient) ConfigMaps(ns string) Client[*corev1.ConfigMap, *corev1.ConfigMapList] {
	return resource[corev1.ConfigMap, corev1.ConfigMapList](c.groupClient, "configmaps", ns, true)
}
func (c coreClient) Secrets(ns string) Client[*corev1.Secret, *corev1.SecretList] {
	return resource[corev1.Secret, corev1.SecretList](c.groupClient, "secrets", ns, true)
}
func (c coreClient) Services(ns string) Client[*corev1.Service, *corev1.ServiceList] {
	return resource[corev1.Service, corev1.ServiceList](c.groupClient, "services", ns, true)
}
func (c coreClient) ServiceAccounts(ns string) Client[*corev1.ServiceAccount, *corev1.ServiceAccountList] {
	return resource[corev1.ServiceAccount, corev1.ServiceAccountList](c.groupClient, "serviceaccounts", ns, true)
}
func (c coreClient) Namespaces() Client[*corev1.Namespace, *corev1.NamespaceList] {
	return resource[corev1.Namespace, corev1.NamespaceList](c.groupClient, "namespaces", "", true)
}

type rbacClient struct{ groupClient }

func (c rbacClient) ClusterRoles() Client[*rbacv1.ClusterRole, *rbacv1.ClusterRoleList] {
	return resource[rbacv1.ClusterRole, rbacv1.ClusterRoleList](c.groupClient, "clusterroles", "", true)
}
func (c rbacClient) ClusterRoleBindings() Client[*rbacv1.ClusterRoleBinding, *rbacv1.ClusterRoleBindingList] {
	return resource[rbacv1.ClusterRoleBinding, rbacv1.ClusterRoleBindingList](c.groupClient, "clusterrolebindings", "", true)
}
func (c rbacClient) Roles(ns string) Client[*rbacv1.Role, *rbacv1.RoleList] {
	return resource[rbacv1.Role, rbacv1.RoleList](c.groupClient, "roles", ns, true)
}
func (c rbacClient) RoleBindings(ns string) Client[*rbacv1.RoleBinding, *rbacv1.RoleBindingList] {
	return resource[rbacv1.RoleBinding, rbacv1.RoleBindingList](c.groupClient, "rolebindings", ns, true)
}

type appsClient struct{ groupClient }

func (c appsClient) Deployments(ns string) Client[*appsv1.Deployment, *appsv1.DeploymentList] {
	return resource[appsv1.Deployment, appsv1.DeploymentList](c.groupClient, "deployments", ns, true)
}
func (c appsClient) DaemonSets(ns string) Client[*appsv1.DaemonSet, *appsv1.DaemonSetList] {
	return resource[appsv1.DaemonSet, appsv1.DaemonSetList](c.groupClient, "daemonsets", ns, true)
}

type batchClient struct{ groupClient }

func (c batchClient) Jobs(ns string) CollectionClient[*batchv1.Job, *batchv1.JobList] {
	return resource[batchv1.Job, batchv1.JobList](c.groupClient, "jobs", ns, true)
}

type coordinationClient struct{ groupClient }

func (c coordinationClient) Leases(ns string) Client[*coordinationv1.Lease, *coordinationv1.LeaseList] {
	return resource[coordinationv1.Lease, coordinationv1.LeaseList](c.groupClient, "leases", ns, true)
}

type certificatesClient struct{ groupClient }

func (c certificatesClient) CertificateSigningRequests() Client[*certificatesv1.CertificateSigningRequest, *certificatesv1.CertificateSigningRequestList] {
	return resource[certificatesv1.CertificateSigningRequest, certificatesv1.CertificateSigningRequestList](c.groupClient, "certificatesigningrequests", "", true)
}

type clients struct {
	core  coreClient
	rbac  rbacClient
	apps  appsClient
	batch batchClient
	coord coordinationClient
	certs certificatesClient
}

func (c *clients) CoreV1() CoreV1Interface                 { return c.core }
func (c *clients) RbacV1() RbacV1Interface                 { return c.rbac }
func (c *clients) AppsV1() AppsV1Interface                 { return c.apps }
func (c *clients) BatchV1() BatchV1Interface               { return c.batch }
func (c *clients) CoordinationV1() CoordinationV1Interface { return c.coord }
func (c *clients) CertificatesV1() CertificatesV1Interface { return c.certs }

// New returns clients for cfg that share one HTTP client.
func New(cfg *rest.Config) (Interface, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("build the HTTP client for %s: %w", cfg.Host, err)
	}
	c := &clients{}
	for _, g := range []struct {
		gv  schema.GroupVersion
		out *groupClient
	}{
		{corev1.SchemeGroupVersion, &c.core.groupClient},
		{rbacv1.SchemeGroupVersion, &c.rbac.groupClient},
		{appsv1.SchemeGroupVersion, &c.apps.groupClient},
		{batchv1.SchemeGroupVersion, &c.batch.groupClient},
		{coordinationv1.SchemeGroupVersion, &c.coord.groupClient},
		{certificatesv1.SchemeGroupVersion, &c.certs.groupClient},
	} {
		if *g.out, err = newGroupClient(cfg, hc, g.gv); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// CoreREST returns a REST client for the API server behind cfg (core
// group), for raw requests; reuse it, it holds the connection.
func CoreREST(cfg *rest.Config) (rest.Interface, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("build the HTTP client for %s: %w", cfg.Host, err)
	}
	g, err := newGroupClient(cfg, hc, corev1.SchemeGroupVersion)
	if err != nil {
		return nil, err
	}
	return g.rc, nil
}

// ServerVersion asks the API server behind cfg for its version (GET
// /version), as client-go's discovery client does, without linking it.
func ServerVersion(ctx context.Context, cfg *rest.Config) (*version.Info, error) {
	rc, err := CoreREST(cfg)
	if err != nil {
		return nil, err
	}
	return ServerVersionREST(ctx, rc)
}

// ServerVersionREST is ServerVersion through a client from CoreREST.
func ServerVersionREST(ctx context.Context, rc rest.Interface) (*version.Info, error) {
	body, err := rc.Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return nil, err
	}
	var info version.Info
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, fmt.Errorf("unable to parse the server version: %w", err)
	}
	return &info, nil
}

// ObjectMeta is what ListMetadata returns of each object.
type ObjectMeta struct {
	Namespace, Name string
	UID             string
}

// ListMetadata lists through rc (CoreREST) the objects of a resource
// (group "" or "core" is the core group), in namespace or in all namespaces when it is "", as
// metadata only (PartialObjectMetadataList, as client-go's metadata
// client asks for it), page by page. fieldSelector may be "".
func ListMetadata(ctx context.Context, rc rest.Interface, group, version, resource, namespace, fieldSelector string) ([]ObjectMeta, error) {
	parts := []string{"/apis", group, version}
	if group == "" || group == "core" {
		parts = []string{"/api", version}
	}
	if namespace != "" {
		parts = append(parts, "namespaces", namespace)
	}
	abs := strings.Join(append(parts, resource), "/")
	var out []ObjectMeta
	cont := ""
	for {
		req := rc.Get().AbsPath(abs).
			SetHeader("Accept", "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json").
			Param("limit", "500")
		if fieldSelector != "" {
			req = req.Param("fieldSelector", fieldSelector)
		}
		if cont != "" {
			req = req.Param("continue", cont)
		}
		body, err := req.Do(ctx).Raw()
		if err != nil {
			return nil, err
		}
		var list struct {
			Metadata struct {
				Continue string `json:"continue"`
			} `json:"metadata"`
			Items []struct {
				Metadata struct {
					Namespace string `json:"namespace"`
					Name      string `json:"name"`
					UID       string `json:"uid"`
				} `json:"metadata"`
			} `json:"items"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			return nil, fmt.Errorf("parse the list of %s: %w", abs, err)
		}
		for _, it := range list.Items {
			out = append(out, ObjectMeta{Namespace: it.Metadata.Namespace, Name: it.Metadata.Name, UID: it.Metadata.UID})
		}
		if cont = list.Metadata.Continue; cont == "" {
			return out, nil
		}
	}
}
