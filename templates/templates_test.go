package templates

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./templates -update)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from %s:\n%s", name, p, got)
	}
}

func TestYurthubManifest(t *testing.T) {
	tests := []struct {
		name    string
		data    Yurthub
		volumes []string
		args    []string
		notArgs []string
	}{
		{
			name: "edge-kubeletcertificate",
			data: Yurthub{Image: "docker.io/openyurt/yurthub:v1.7.0", Namespace: "kube-system", ServerAddr: "https://10.0.0.1:6443",
				NodePoolName: "edge", WorkingMode: "edge", BootstrapMode: "kubeletcertificate", Verbosity: 2},
			volumes: []string{"hub-dir", "kubernetes", "kubelet-pki"},
			args:    []string{"--working-mode=edge", "--bootstrap-mode=kubeletcertificate", "--nodepool-name=edge", "--node-name=$(NODE_NAME)"},
			notArgs: []string{"--bootstrap-file"},
		},
		{
			name: "cloud-token",
			data: Yurthub{Image: "example.com/yurthub:dev", Namespace: "openyurt", ServerAddr: "https://a:6443,https://b:6443",
				NodePoolName: "hangzhou", WorkingMode: "cloud", BootstrapMode: "token", Verbosity: 4, ExtraArgs: []string{"--enable-dummy-if=false"}},
			volumes: []string{"hub-dir", "kubernetes"},
			args:    []string{"--working-mode=cloud", "--bootstrap-file=/var/lib/yurthub/bootstrap-hub.conf", "--server-addr=https://a:6443,https://b:6443", "--enable-dummy-if=false", "--v=4"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := RenderYurthub(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "yurthub-"+tc.name+".yaml", b)
			var pod corev1.Pod
			if err := yaml.UnmarshalStrict(b, &pod); err != nil {
				t.Fatalf("not a Pod: %v", err)
			}
			if pod.Name != "yurt-hub" || pod.Namespace != tc.data.Namespace || !pod.Spec.HostNetwork || pod.Labels["k8s-app"] != "yurt-hub" {
				t.Errorf("pod meta/spec: %+v", pod.ObjectMeta)
			}
			c := pod.Spec.Containers[0]
			if c.Image != tc.data.Image || c.LivenessProbe.HTTPGet.Port.IntValue() != 10267 || c.LivenessProbe.HTTPGet.Path != "/v1/healthz" {
				t.Errorf("container: %+v", c)
			}
			var vols []string
			for _, v := range pod.Spec.Volumes {
				vols = append(vols, v.Name)
			}
			if strings.Join(vols, ",") != strings.Join(tc.volumes, ",") {
				t.Errorf("volumes %v, want %v", vols, tc.volumes)
			}
			cmd := strings.Join(c.Command, " ")
			for _, a := range tc.args {
				if !strings.Contains(cmd, a) {
					t.Errorf("command lacks %s: %s", a, cmd)
				}
			}
			for _, a := range tc.notArgs {
				if strings.Contains(cmd, a) {
					t.Errorf("command has %s: %s", a, cmd)
				}
			}
		})
	}
}

func TestYurthubManifestRejectsMissingValues(t *testing.T) {
	_, err := RenderYurthub(Yurthub{Image: "x", Namespace: "kube-system", ServerAddr: "https://a:1", WorkingMode: "edge", BootstrapMode: "token"})
	if err == nil || !strings.Contains(err.Error(), "NodePoolName is empty") {
		t.Fatalf("err = %v", err)
	}
}

func TestKubeletDropIn(t *testing.T) {
	b, err := RenderKubeletDropIn(KubeletDropIn{KubeletPath: "/usr/bin/kubelet"})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "10-kubeadm.conf", b)
	s := string(b)
	// systemd needs the empty ExecStart= to replace the unit's command.
	if !strings.Contains(s, "\nExecStart=\nExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS\n") {
		t.Errorf("ExecStart lines wrong:\n%s", s)
	}
	if !strings.Contains(s, "EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env") {
		t.Errorf("flags env file missing")
	}
	if _, err := RenderKubeletDropIn(KubeletDropIn{}); err == nil {
		t.Errorf("empty kubelet path accepted")
	}
}

// No value, whatever it holds, changes the manifest's structure: each is
// the one image or the one argument it was given (issue: a yurthubExtraArgs
// entry with "\r", ": ", "#" or quotes, or an image with "\r", used to
// yield another image and command).
func TestYurthubManifestValuesCannotInject(t *testing.T) {
	hostile := []string{
		"--a=b\r\n    - --evil=1", "--x: y", "--x=1 # comment", `--x="q"`, "--x='q'", "--x=\"\n  image: evil\"",
		"--x=\u2028y", "--x={a: b}", "--x=[1,2]", "--x=&anchor", "--x=*alias", "--x=!!binary", "--x=%TAG", "--x=\t",
	}
	for _, arg := range hostile {
		d := Yurthub{Image: "docker.io/openyurt/yurthub:v1.7.0\r\n    command: [evil]", Namespace: "kube-system",
			ServerAddr: "https://a:6443", NodePoolName: "p", WorkingMode: "edge", BootstrapMode: "token",
			ExtraArgs: []string{arg, "--enable-dummy-if=false"}}
		b, err := RenderYurthub(d)
		if err != nil {
			t.Errorf("%q: %v", arg, err)
			continue
		}
		var pod corev1.Pod
		if err := yaml.UnmarshalStrict(b, &pod); err != nil {
			t.Fatalf("%q: %v", arg, err)
		}
		c := pod.Spec.Containers[0]
		if c.Image != d.Image {
			t.Errorf("image %q became %q", d.Image, c.Image)
		}
		n := len(c.Command)
		if n < 2 || c.Command[n-2] != arg || c.Command[n-1] != "--enable-dummy-if=false" || c.Command[0] != "yurthub" {
			t.Errorf("%q: command %q", arg, c.Command)
		}
	}
}
