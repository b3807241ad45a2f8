package join

import (
	"bytes"
	"testing"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/host"
)

// A file join writes that was a symlink is put back as that symlink on
// rollback; the file it points at is never written.
func TestRollbackPutsASymlinkBack(t *testing.T) {
	fsys := host.FS{Root: t.TempDir()}
	if err := fsys.WriteFileAtomic("/srv/device/kubelet", []byte("KUBELET_EXTRA_ARGS=\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fsys.SymlinkAtomic("../../srv/device/kubelet", "/etc/default/kubelet"); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	w := newWriter(fsys, cmdutil.IOStreams{Out: &log, ErrOut: &log}, false, func(s string) string { return s })
	if err := w.WriteFile("/etc/default/kubelet", []byte("KUBELET_EXTRA_ARGS=--v=2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if errs := w.Rollback(); len(errs) > 0 {
		t.Fatal(errs)
	}
	if tg, ok := fsys.Readlink("/etc/default/kubelet"); !ok || tg != "../../srv/device/kubelet" {
		t.Errorf("after rollback /etc/default/kubelet is not the symlink it was (link %v, target %q)", ok, tg)
	}
	if b, _ := fsys.ReadFile("/srv/device/kubelet"); string(b) != "KUBELET_EXTRA_ARGS=\n" {
		t.Errorf("the file the link points at was written: %q", b)
	}
}
