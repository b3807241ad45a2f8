// Package constants names the host paths, ports, labels and defaults that
// join, reset, preflight and convert must agree on. They follow OpenYurt
// v1.7.0 and kubeadm v1.34 (see docs/design.md).
package constants

// Kubernetes paths on a node.
const (
	KubernetesDir          = "/etc/kubernetes"
	ManifestsDir           = "/etc/kubernetes/manifests"
	KubeletKubeconfig      = "/etc/kubernetes/kubelet.conf"
	KubeletBootstrapConfig = "/etc/kubernetes/bootstrap-kubelet.conf"
	CACertPath             = "/etc/kubernetes/pki/ca.crt"
	PKIDir                 = "/etc/kubernetes/pki"
	KubeletDir             = "/var/lib/kubelet"
	KubeletConfigFile      = "/var/lib/kubelet/config.yaml"
	KubeletFlagsEnvFile    = "/var/lib/kubelet/kubeadm-flags.env"
	KubeletPKIDir          = "/var/lib/kubelet/pki"
	KubeletClientCert      = "/var/lib/kubelet/pki/kubelet-client-current.pem"
	KubeletUnitFile        = "/etc/systemd/system/kubelet.service"
	KubeletDropInDir       = "/etc/systemd/system/kubelet.service.d"
	KubeletDropInFile      = "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"
	KubeletDropInFileUsr   = "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"
	KubeletService         = "kubelet"
)

// OpenYurt paths on a node.
const (
	YurthubDir            = "/var/lib/yurthub"
	YurthubPKIDir         = "/var/lib/yurthub/pki"
	YurthubClientCert     = "/var/lib/yurthub/pki/yurthub-current.pem"
	YurthubServerCert     = "/var/lib/yurthub/pki/yurthub-server-current.pem"
	YurthubBootstrapFile  = "/var/lib/yurthub/bootstrap-hub.conf"
	YurthubAutonomyDir    = "/var/lib/yurthub/autonomy"
	YurthubCacheDir       = "/etc/kubernetes/cache"
	YurthubManifest       = "/etc/kubernetes/manifests/yurthub.yaml"
	YurthubManifestName   = "yurthub.yaml"
	OpenYurtDir           = "/var/lib/openyurt"
	OpenYurtKubeletConfig = "/var/lib/openyurt/kubelet.conf"
	// JoinStateFile records what join wrote, so reset and a failed join's
	// rollback know exactly what to remove.
	JoinStateFile = "/var/lib/openyurt/join-state.json"
)

// yurthub ports and addresses.
const (
	YurthubProxyPort       = 10261
	YurthubServePort       = 10267
	YurthubProxySecurePort = 10268
	YurthubMultiplexerPort = 10269
	KubeletPort            = 10250
	YurthubProxyURL        = "http://127.0.0.1:10261"
	YurthubHealthzURL      = "http://127.0.0.1:10267/v1/healthz"
	YurthubReadyzURL       = "http://127.0.0.1:10267/v1/readyz"
	YurthubDummyIP         = "169.254.2.1"
	YurthubDummyIfName     = "hub-dummy0"
	// YurthubServeURL is yurthub's local endpoint for /v1/healthz,
	// /v1/readyz, /metrics and POST /v1/token.
	YurthubServeURL    = "http://127.0.0.1:10267"
	YurthubTokenPath   = "/v1/token"
	YurthubMetricsPath = "/metrics"
)

// More files on a joined node that yurtadm doctor reads.
const (
	AdminKubeconfig   = "/etc/kubernetes/admin.conf"
	YurthubKubeconfig = "/var/lib/yurthub/yurthub.conf" // token bootstrap mode only
	YurthubCACert     = "/var/lib/yurthub/pki/ca.crt"   // token bootstrap mode only
	// YurthubContainerName is the container name in the yurthub static pod.
	YurthubContainerName      = "yurt-hub"
	YurthubBootstrapModeToken = "token"
)

// Labels and annotations.
const (
	LabelEdgeWorker       = "openyurt.io/is-edge-worker"
	LabelNodePool         = "apps.openyurt.io/nodepool"
	AnnotationAutonomy    = "node.beta.openyurt.io/autonomy"
	AnnotationAutonomyOld = "node.beta.alibabacloud.com/autonomy"
	AnnotationAutonomyDur = "node.openyurt.io/autonomy-duration"
	// YurthubStaticSet and YurthubCloudStaticSet are the YurtStaticSets
	// of OpenYurt's yurthub chart; the YurtStaticSet controller keeps each
	// template in the ConfigMap yurt-static-set-<name>.
	YurthubStaticSet        = "yurt-hub"
	YurthubCloudStaticSet   = "yurt-hub-cloud"
	YurthubConfigMap        = "yurt-hub-cfg"
	DefaultNamespace        = "kube-system"
	NodeTypeEdge            = "edge"
	NodeTypeCloud           = "cloud"
	DefaultEdgeNodePool     = "edge"
	DefaultCloudNodePool    = "cloud"
	YurthubBootstrapModeKCE = "kubeletcertificate"
	// LabelManagedBy=ManagedBy marks what yurtctl convert created (its
	// objects, its lock, its node Jobs), so that revert knows them.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "yurtctl"
)
