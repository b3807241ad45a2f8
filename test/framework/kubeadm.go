package framework

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/template"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// KubernetesVersion is the version the control plane is configured as; it
// matches the binaries hack/tools.sh builds (test/tools/go.mod).
const KubernetesVersion = "v1.34.4"

// kubeadmConfig is what the kubeadm configuration file is rendered from.
type kubeadmConfig struct {
	NodeName         string
	AdvertiseAddress string
	Port             int
	CertificatesDir  string
	EtcdEndpoint     string
	Version          string
	ServiceSubnet    string
	PodSubnet        string
}

// The kubelet settings are the ones this kind of machine needs (cgroup v1
// with the cgroupfs driver, swap tolerated): they land in the kubelet-config
// ConfigMap that a joining node reads. kube-apiserver listens on this
// machine's address only; kube-controller-manager serves no port (several
// control planes may run at once) and does not elect a leader (it is alone).
var kubeadmConfigTemplate = template.Must(template.New("kubeadm").Parse(`apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: {{.AdvertiseAddress}}
  bindPort: {{.Port}}
nodeRegistration:
  name: {{.NodeName}}
  criSocket: unix:///run/containerd/containerd.sock
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: {{.Version}}
controlPlaneEndpoint: {{.AdvertiseAddress}}:{{.Port}}
certificatesDir: {{.CertificatesDir}}
etcd:
  external:
    endpoints:
    - {{.EtcdEndpoint}}
networking:
  serviceSubnet: {{.ServiceSubnet}}
  podSubnet: {{.PodSubnet}}
apiServer:
  extraArgs:
  - name: bind-address
    value: {{.AdvertiseAddress}}
controllerManager:
  extraArgs:
  - name: secure-port
    value: "0"
  - name: leader-elect
    value: "false"
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
`))

func (c kubeadmConfig) render() ([]byte, error) {
	var b bytes.Buffer
	if err := kubeadmConfigTemplate.Execute(&b, c); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// staticPodCommand reads the command line of the single container of a
// static Pod manifest, as kubeadm's dry run writes it.
func staticPodCommand(manifest string) ([]string, error) {
	data, err := os.ReadFile(manifest)
	if err != nil {
		return nil, err
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(data, &pod); err != nil {
		return nil, fmt.Errorf("parse %s: %w", manifest, err)
	}
	if len(pod.Spec.Containers) != 1 || len(pod.Spec.Containers[0].Command) == 0 {
		return nil, fmt.Errorf("%s: want one container with a command", manifest)
	}
	return pod.Spec.Containers[0].Command, nil
}

// hostArgs turns a static Pod's command into arguments for a host process:
// the program name is dropped, kubeconfig paths under /etc/kubernetes (which
// kubeadm hard-codes) point into kubeconfigDir, and overrides replace or add
// flags. Flags keep their order.
func hostArgs(command []string, kubeconfigDir string, overrides map[string]string) []string {
	const kubernetesDir = "/etc/kubernetes/"
	var args []string
	seen := map[string]bool{}
	for _, a := range command[1:] {
		name, value, hasValue := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if v, ok := overrides[name]; ok {
			seen[name] = true
			args = append(args, "--"+name+"="+v)
			continue
		}
		if hasValue && strings.HasPrefix(value, kubernetesDir) && strings.HasSuffix(value, ".conf") {
			value = filepath.Join(kubeconfigDir, strings.TrimPrefix(value, kubernetesDir))
		}
		if hasValue {
			args = append(args, "--"+name+"="+value)
		} else {
			args = append(args, a)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(overrides)) {
		if !seen[name] {
			args = append(args, "--"+name+"="+overrides[name])
		}
	}
	return args
}
