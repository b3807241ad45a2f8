package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHostPathFollowsTheNodesBinds(t *testing.T) {
	n := &Node{NodeSpec: NodeSpec{Name: "edge1"}, c: &Cluster{Dir: "/c"}}
	for in, want := range map[string]string{
		"/etc/kubernetes/kubelet.conf":       "/c/nodes/edge1/merged/etc/kubernetes/kubelet.conf",
		"/var/lib/kubelet":                   "/c/nodes/edge1/kubelet",
		"/var/lib/kubelet/kubeadm-flags.env": "/c/nodes/edge1/kubelet/kubeadm-flags.env",
		"/var/lib/kubeletx/f":                "/c/nodes/edge1/merged/var/lib/kubeletx/f",
		"/var/lib/containerd/io":             "/c/nodes/edge1/containerd/io",
		"var/lib/../lib/kubelet/pki":         "/c/nodes/edge1/kubelet/pki",
	} {
		if got := n.HostPath(in); got != want {
			t.Errorf("HostPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSnapshotSeesEveryChange(t *testing.T) {
	dir := t.TempDir()
	n := &Node{NodeSpec: NodeSpec{Name: "n"}, c: &Cluster{Dir: dir}}
	write := func(p, data string, mode os.FileMode) {
		t.Helper()
		hp := n.HostPath(p)
		if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(hp, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("/etc/kubernetes/a.conf", "a", 0o600)
	write("/var/lib/kubelet/config.yaml", "k", 0o644)
	if err := os.Symlink("/etc/kubernetes/a.conf", n.HostPath("/etc/kubernetes/link")); err != nil {
		t.Fatal(err)
	}
	roots := []string{"/etc/kubernetes", "/var/lib/kubelet"}
	before := n.Snapshot(roots...)
	if _, ok := before["/var/lib/kubelet/config.yaml"]; !ok {
		t.Fatalf("the bound /var/lib/kubelet is not in the snapshot: %v", before)
	}
	if d := SnapshotDiff(before, n.Snapshot(roots...)); len(d) != 0 {
		t.Fatalf("no change, diff %v", d)
	}
	write("/etc/kubernetes/a.conf", "b", 0o600)                                         // content
	if err := os.Chmod(n.HostPath("/var/lib/kubelet/config.yaml"), 0o600); err != nil { // mode only
		t.Fatal(err)
	}
	write("/var/lib/kubelet/pki/new.pem", "x", 0o600)                     // added
	if err := os.Remove(n.HostPath("/etc/kubernetes/link")); err != nil { // removed
		t.Fatal(err)
	}
	d := strings.Join(SnapshotDiff(before, n.Snapshot(roots...)), "\n")
	for _, want := range []string{"changed /etc/kubernetes/a.conf", "changed /var/lib/kubelet/config.yaml",
		"added /var/lib/kubelet/pki/new.pem", "added /var/lib/kubelet/pki", "removed /etc/kubernetes/link"} {
		if !strings.Contains(d, want) {
			t.Errorf("diff does not say %q:\n%s", want, d)
		}
	}
}
