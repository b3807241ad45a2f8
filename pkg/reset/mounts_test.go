package reset

import (
	"slices"
	"testing"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/host/hosttest"
)

func TestParseMountPoints(t *testing.T) {
	tests := []struct {
		name  string
		table string
		want  []string
	}{
		{"plain", "proc /proc proc rw 0 0\n/dev/sda1 / ext4 rw 0 0\n", []string{"/proc", "/"}},
		{"escaped space and tab", `tmpfs /a\040b\011c tmpfs rw 0 0`, []string{"/a b\tc"}},
		{"escaped backslash", `tmpfs /a\134b tmpfs rw 0 0`, []string{`/a\b`}},
		{"not an escape", `tmpfs /a\9 tmpfs rw 0 0`, []string{`/a\9`}},
		{"short and blank lines", "\nnone\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseMountPoints(tc.table); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// kubelet bind-mounts its directory onto itself on hosts whose root is not
// a shared mount (no systemd); seen on the e2e harness, where reset could
// then not remove /var/lib/kubelet (EBUSY). That mount is unmounted last;
// a disk mounted at /var/lib/kubelet is left alone.
func TestKubeletMountsSelfBind(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rootField string
		wantSelf  bool
	}{
		{"kubelet's bind of the directory onto itself", "/var/lib/kubelet", true},
		{"a disk mounted at the directory", "/", false},
		{"another directory bound there", "/data/kubelet", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _, _ := hosttest.New(t)
			dir := h.FS.Path(constants.KubeletDir)
			below := h.FS.Path("/var/lib/kubelet/pods/p/volumes/x")
			hosttest.WriteFile(t, h, constants.KubeletDir+"/pods/p/volumes/x/.keep", "")
			hosttest.WriteFile(t, h, mountsFile, "/dev/vda / ext4 rw 0 0\n/dev/vda "+dir+" ext4 rw 0 0\ntmpfs "+below+" tmpfs rw 0 0\n")
			hosttest.WriteFile(t, h, mountInfoFile,
				"26 1 254:0 / / rw - ext4 /dev/vda rw\n"+
					"41 26 254:0 "+tc.rootField+" "+dir+" rw shared:1 - ext4 /dev/vda rw\n"+
					"50 41 0:50 / "+below+" rw - tmpfs tmpfs rw\n")
			got, err := kubeletMounts(h.FS)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{below}
			if tc.wantSelf {
				want = append(want, dir)
			}
			if !slices.Equal(got, want) {
				t.Errorf("kubeletMounts = %q, want %q", got, want)
			}
		})
	}
}
