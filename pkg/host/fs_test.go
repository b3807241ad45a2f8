package host

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// RemoveAll never removes through a symlink into a system directory: with
// /var/lib/kubelet a link to /etc, removing /var/lib/kubelet/pki would
// remove /etc/pki.
func TestRemoveAllRefusesALinkIntoASystemDir(t *testing.T) {
	f := FS{Root: t.TempDir()}
	for _, p := range []string{"/etc/pki/tls/cert.pem", "/srv/kubelet/pki/kubelet.crt"} {
		if err := f.WriteFileAtomic(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.MkdirAll("/var/lib", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../etc", f.Path("/var/lib/kubelet")); err != nil {
		t.Fatal(err)
	}
	removed, err := f.RemoveAll("/var/lib/kubelet/pki")
	var le *SystemDirLinkError
	if removed || !errors.As(err, &le) || le.Link != "/var/lib/kubelet" || le.Target != "/etc" {
		t.Fatalf("RemoveAll through a link to /etc: removed %v, err %v", removed, err)
	}
	if !f.Exists("/etc/pki/tls/cert.pem") {
		t.Fatal("/etc/pki was removed through the link")
	}
	// A link to a directory of its own is followed as before.
	if err := os.Remove(f.Path("/var/lib/kubelet")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..", "..", "srv", "kubelet"), f.Path("/var/lib/kubelet")); err != nil {
		t.Fatal(err)
	}
	if removed, err := f.RemoveAll("/var/lib/kubelet/pki"); !removed || err != nil || f.Exists("/srv/kubelet/pki") {
		t.Fatalf("RemoveAll through a link to a directory of its own: removed %v, err %v", removed, err)
	}
}

// Readlink tells a symlink from a file.
func TestReadlink(t *testing.T) {
	f := FS{Root: t.TempDir()}
	if err := f.WriteFileAtomic("/a", []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.SymlinkAtomic("a", "/b"); err != nil {
		t.Fatal(err)
	}
	if tg, ok := f.Readlink("/b"); !ok || tg != "a" {
		t.Errorf("Readlink(/b) = %q, %v", tg, ok)
	}
	for _, p := range []string{"/a", "/missing"} {
		if _, ok := f.Readlink(p); ok {
			t.Errorf("Readlink(%s) says it is a link", p)
		}
	}
}
