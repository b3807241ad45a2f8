package framework

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestHostArgs(t *testing.T) {
	command := []string{
		"kube-controller-manager",
		"--authentication-kubeconfig=/etc/kubernetes/controller-manager.conf",
		"--client-ca-file=/tmp/x/pki/ca.crt",
		"--leader-elect=true",
		"--use-service-account-credentials=true",
		"--profiling",
	}
	tests := []struct {
		name      string
		overrides map[string]string
		want      []string
	}{{
		name: "kubeconfig paths move, the rest stays",
		want: []string{
			"--authentication-kubeconfig=/kc/controller-manager.conf",
			"--client-ca-file=/tmp/x/pki/ca.crt",
			"--leader-elect=true",
			"--use-service-account-credentials=true",
			"--profiling",
		},
	}, {
		name:      "overrides replace in place and append the new ones sorted",
		overrides: map[string]string{"leader-elect": "false", "v": "2", "secure-port": "0"},
		want: []string{
			"--authentication-kubeconfig=/kc/controller-manager.conf",
			"--client-ca-file=/tmp/x/pki/ca.crt",
			"--leader-elect=false",
			"--use-service-account-credentials=true",
			"--profiling",
			"--secure-port=0",
			"--v=2",
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := hostArgs(command, "/kc", tc.overrides)
			if !slices.Equal(got, tc.want) {
				t.Errorf("hostArgs:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestRouteSource(t *testing.T) {
	tests := []struct {
		name, out, want string
	}{
		{"default route", "1.1.1.1 via 192.0.2.1 dev eth0 src 192.0.2.2 uid 0 \\    cache ", "192.0.2.2"},
		{"no src", "1.1.1.1 via 192.0.2.1 dev eth0", "<nil>"},
		{"loopback src is no answer", "1.1.1.1 dev lo src 127.0.0.1", "<nil>"},
		{"unreachable", "", "<nil>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := routeSource(tc.out).String(); got != tc.want {
				t.Errorf("routeSource(%q) = %s, want %s", tc.out, got, tc.want)
			}
		})
	}
}

func TestKubeadmConfigRender(t *testing.T) {
	out, err := kubeadmConfig{
		NodeName: "node-a", AdvertiseAddress: "192.0.2.2", Port: 34567,
		CertificatesDir: "/tmp/cp/pki", EtcdEndpoint: "http://127.0.0.1:2379",
		Version: KubernetesVersion, ServiceSubnet: "10.96.0.0/12", PodSubnet: "10.244.0.0/16",
	}.render()
	if err != nil {
		t.Fatal(err)
	}
	docs := bytes.Split(out, []byte("\n---\n"))
	kinds := map[string]map[string]any{}
	for _, d := range docs {
		var m map[string]any
		if err := yaml.Unmarshal(d, &m); err != nil {
			t.Fatalf("document does not parse: %v\n%s", err, d)
		}
		kinds[m["kind"].(string)] = m
	}
	cluster := kinds["ClusterConfiguration"]
	if cluster == nil || kinds["InitConfiguration"] == nil || kinds["KubeletConfiguration"] == nil {
		t.Fatalf("want Init-, Cluster- and KubeletConfiguration, got %v", slices.Collect(maps.Keys(kinds)))
	}
	if got := cluster["controlPlaneEndpoint"]; got != "192.0.2.2:34567" {
		t.Errorf("controlPlaneEndpoint = %v", got)
	}
	if got := cluster["etcd"].(map[string]any)["external"].(map[string]any)["endpoints"].([]any)[0]; got != "http://127.0.0.1:2379" {
		t.Errorf("etcd endpoint = %v", got)
	}
}

func TestStaticPodCommand(t *testing.T) {
	manifest := filepath.Join(t.TempDir(), "kube-apiserver.yaml")
	pod := `apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver
  namespace: kube-system
spec:
  containers:
  - name: kube-apiserver
    image: registry.k8s.io/kube-apiserver:v1.34.4
    command:
    - kube-apiserver
    - --secure-port=6443
`
	if err := os.WriteFile(manifest, []byte(pod), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := staticPodCommand(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"kube-apiserver", "--secure-port=6443"}; !slices.Equal(got, want) {
		t.Errorf("command = %q, want %q", got, want)
	}
}

// recordingTB notes how a helper ended the test; Skipf and Fatalf end the
// goroutine as the real ones do.
type recordingTB struct {
	testing.TB
	skipped, fatal string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Skipf(format string, args ...any) {
	r.skipped = format
	runtime.Goexit()
}
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.fatal = format
	runtime.Goexit()
}

func TestRequireToolsSkipsOnlyOutsideCI(t *testing.T) {
	tests := []struct {
		ci       string
		wantFail bool
	}{{"", false}, {"false", false}, {"true", true}}
	for _, tc := range tests {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv(EnvToolsBin, "")
			t.Setenv("CI", tc.ci)
			r := &recordingTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				RequireTools(r)
			}()
			<-done
			switch {
			case tc.wantFail && r.fatal == "":
				t.Errorf("want t.Fatal under CI=%s, got skip %q", tc.ci, r.skipped)
			case !tc.wantFail && r.skipped == "":
				t.Errorf("want t.Skip under CI=%q, got fatal %q", tc.ci, r.fatal)
			case !strings.Contains(r.fatal+r.skipped, "control plane") && !strings.Contains(r.fatal+r.skipped, "real-cluster"):
				t.Errorf("reason does not say what is skipped: %q", r.fatal+r.skipped)
			}
		})
	}
}
