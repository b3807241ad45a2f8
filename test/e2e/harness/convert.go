package harness

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// HostSystemctl is where the harness puts the systemctl stand-in for
// convert's node Jobs: they run the host's systemctl chrooted into the host
// root, looking in /usr/local/sbin, /usr/local/bin, ... (the harness's PATH
// does not reach them). /usr/local/bin comes before Debian's own
// /usr/bin/systemctl, which cannot work without systemd.
const HostSystemctl = "/usr/local/bin/systemctl"

// managerPid names the process whose namespaces the stand-in runs units in
// when called from another mount namespace (test/e2e/systemctl).
const managerPid = "/run/systemctl-standin/manager.pid"

// InstallHostSystemctl copies the stand-in to HostSystemctl (a copy, not a
// link: the Job resolves it below /host) and names this process as the
// system manager, so that a `systemctl restart kubelet` from a pod's
// chroot starts kubelet in the host's namespaces, as systemd would. The
// returned function undoes both.
func (h *Harness) InstallHostSystemctl() (func(), error) {
	if _, err := os.Lstat(HostSystemctl); err == nil {
		return nil, fmt.Errorf("%s exists already: the harness will not replace it", HostSystemctl)
	}
	data, err := os.ReadFile(filepath.Join(h.Bin, "systemctl"))
	if err != nil {
		return nil, err
	}
	undo := func() {
		_ = os.Remove(HostSystemctl)
		_ = os.Remove(managerPid)
	}
	if err := os.WriteFile(HostSystemctl, data, 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(managerPid), 0o755); err != nil {
		undo()
		return nil, err
	}
	if err := os.WriteFile(managerPid, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		undo()
		return nil, err
	}
	return undo, nil
}

// Yurtctl is the path of the yurtctl link to the binary under test.
func (h *Harness) Yurtctl() string { return filepath.Join(h.Bin, "yurtctl") }

// YurtadmImage is the project's own image, which convert's node Jobs run.
func (h *Harness) YurtadmImage() string { return h.yurtadmImage }

// Checksums returns the sha256 of each path ("missing" for an absent one).
func Checksums(paths ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			out[p] = "missing"
			continue
		}
		if err != nil {
			return nil, err
		}
		s := sha256.Sum256(b)
		out[p] = hex.EncodeToString(s[:])
	}
	return out, nil
}
