package nodestep

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/host"
)

// FuzzDirectClientConfig: for any kubelet kubeconfig, building the node's
// direct client never panics, and a config it builds names no file (every
// certificate, key and CA is read from below the host root, relative paths
// from the kubeconfig's directory), and never holds what lies outside it.
func FuzzDirectClientConfig(f *testing.F) {
	const kc = "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster:\n    server: https://10.0.0.1:6443\n    certificate-authority: %s\ncontexts:\n- name: k\n  context: {cluster: k, user: u}\ncurrent-context: k\nusers:\n- name: u\n  user:\n    client-certificate: %s\n    client-key: %s\n"
	for _, paths := range [][3]string{
		{"pki/ca.crt", "../../var/lib/kubelet/pki/kubelet-client-current.pem", "../../var/lib/kubelet/pki/link.pem"},
		{"/etc/kubernetes/pki/ca.crt", "/var/lib/kubelet/pki/kubelet-client-current.pem", "/var/lib/kubelet/pki/kubelet-client-current.pem"},
		{"pki/ca.crt", "../../var/lib/kubelet/pki/kubelet-client-current.pem", "../../../../outside/secret"},
		{"/../outside/secret", "../../../outside/secret", "/var/lib/kubelet/pki/link.pem"},
	} {
		f.Add([]byte(fmt.Sprintf(kc, paths[0], paths[1], paths[2])))
	}
	f.Add([]byte("apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user: {client-certificate-data: Zm9v}\n"))
	f.Add([]byte("{"))
	fsys, secret := fuzzRoot(f)
	f.Fuzz(func(t *testing.T, kubeconfig []byte) {
		if err := os.WriteFile(fsys.Path(constants.KubeletKubeconfig), kubeconfig, 0o600); err != nil {
			t.Fatal(err)
		}
		_, _ = kubeletServer(fsys)
		rc, err := DirectClientConfig(fsys)
		if err != nil {
			return
		}
		if rc.CertFile != "" || rc.KeyFile != "" || rc.CAFile != "" || rc.BearerTokenFile != "" {
			t.Fatalf("the client names files (%q %q %q %q), read outside the host root", rc.CertFile, rc.KeyFile, rc.CAFile, rc.BearerTokenFile)
		}
		if bytes.Contains([]byte(rc.BearerToken), secret) {
			t.Fatalf("the client holds a token from outside the host root")
		}
		for _, b := range [][]byte{rc.CertData, rc.KeyData, rc.CAData} {
			if bytes.Contains(b, secret) {
				t.Fatalf("the client holds a file from outside the host root")
			}
		}
	})
}

// fuzzRoot is a host root holding kubelet's CA and client certificate (and
// a symlink to it), next to a secret file outside it.
func fuzzRoot(tb testing.TB) (host.FS, []byte) {
	dir := tb.TempDir()
	root := filepath.Join(dir, "root")
	secret := []byte("SECRET outside the root")
	if err := os.WriteFile(filepath.Join(dir, "secret"), secret, 0o600); err != nil {
		tb.Fatal(err)
	}
	fsys := host.FS{Root: root}
	for p, data := range map[string]string{"/etc/kubernetes/pki/ca.crt": "CA", "/var/lib/kubelet/pki/kubelet-client-current.pem": "CERT"} {
		if err := fsys.WriteFileAtomic(p, []byte(data), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	if err := os.Symlink("/var/lib/kubelet/pki/kubelet-client-current.pem", fsys.Path("/var/lib/kubelet/pki/link.pem")); err != nil {
		tb.Fatal(err)
	}
	return fsys, secret
}

// A kubeconfig naming its files relative to its own directory, as kubelet
// reads them, works (they were looked up from the working directory).
func TestDirectClientConfigReadsRelativePathsFromTheKubeconfigsDir(t *testing.T) {
	fsys, _ := fuzzRoot(t)
	kc := "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster:\n    server: https://10.0.0.1:6443\n    certificate-authority: pki/ca.crt\n" +
		"contexts:\n- name: k\n  context: {cluster: k, user: u}\ncurrent-context: k\nusers:\n- name: u\n  user:\n" +
		"    client-certificate: ../../var/lib/kubelet/pki/link.pem\n    client-key: ../../var/lib/kubelet/pki/kubelet-client-current.pem\n"
	if err := fsys.WriteFileAtomic(constants.KubeletKubeconfig, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	rc, err := DirectClientConfig(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if string(rc.CAData) != "CA" || string(rc.CertData) != "CERT" || string(rc.KeyData) != "CERT" {
		t.Errorf("CA %q cert %q key %q, want the files below /etc/kubernetes's paths", rc.CAData, rc.CertData, rc.KeyData)
	}
}
