package join

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/yurthub"
)

// kubeconfig renders a one-cluster kubeconfig. With caData empty the server
// is plain HTTP (yurthub's local proxy).
func kubeconfig(clusterName, server string, caData []byte, user string, auth *clientcmdapi.AuthInfo) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[clusterName] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caData}
	if auth == nil { // cluster-info style: no credentials
		return clientcmd.Write(*cfg)
	}
	cfg.AuthInfos[user] = auth
	ctx := user + "@" + clusterName
	cfg.Contexts[ctx] = &clientcmdapi.Context{Cluster: clusterName, AuthInfo: user}
	cfg.CurrentContext = ctx
	return clientcmd.Write(*cfg)
}

// bootstrapKubeconfig is kubelet's (or yurthub's) TLS-bootstrap kubeconfig.
func bootstrapKubeconfig(clusterName, server string, caData []byte, token string) ([]byte, error) {
	return kubeconfig(clusterName, server, caData, "tls-bootstrap-token-user", &clientcmdapi.AuthInfo{Token: token})
}

// kubeletDirectKubeconfig is /etc/kubernetes/kubelet.conf as kubelet's
// TLS bootstrap leaves it: the API server, the CA, and kubelet's rotating
// client certificate (key in the same file).
func kubeletDirectKubeconfig(server string, caData []byte) ([]byte, error) {
	return kubeconfig("default-cluster", server, caData, "default-auth",
		&clientcmdapi.AuthInfo{ClientCertificate: constants.KubeletClientCert, ClientKey: constants.KubeletClientCert})
}

// yurthubKubeletKubeconfig points kubelet at yurthub's local proxy
// (shared with convert's node step).
func yurthubKubeletKubeconfig() ([]byte, error) { return yurthub.KubeletKubeconfig() }

// kubeletConfig takes the cluster's KubeletConfiguration from the
// kubelet-config ConfigMap and sets the node-specific fields. Unknown fields
// are kept as they are.
func kubeletConfig(clusterConfig []byte, criEndpoint string) ([]byte, error) {
	m := map[string]any{}
	if err := yaml.Unmarshal(clusterConfig, &m); err != nil {
		return nil, fmt.Errorf("parse the cluster's kubelet configuration: %w", err)
	}
	if m["kind"] != "KubeletConfiguration" {
		return nil, fmt.Errorf("the cluster's kubelet-config is a %v, not a KubeletConfiguration", m["kind"])
	}
	m["containerRuntimeEndpoint"] = criEndpoint
	return yaml.Marshal(m)
}

// kubeletFlags renders kubeadm-flags.env. extra are appended last, so they
// win over the drop-in's flags (kubelet keeps the last value of a flag).
func kubeletFlags(nodeName string, labels map[string]string, extra ...string) []byte {
	args := []string{"--hostname-override=" + nodeName}
	var l []string
	for k, v := range labels {
		l = append(l, k+"="+v)
	}
	sort.Strings(l)
	args = append(args, "--node-labels="+strings.Join(l, ","))
	args = append(args, extra...)
	return []byte(fmt.Sprintf("KUBELET_KUBEADM_ARGS=%q\n", strings.Join(args, " ")))
}
