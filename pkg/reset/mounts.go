package reset

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/host"
)

// Unmounter unmounts one mount point, given as a real path. Production uses
// umount(2); tests use a fake that records the order.
type Unmounter interface {
	Unmount(target string) error
}

// mountsFile is where the mount table is read, below the host root.
const mountsFile = "/proc/mounts"

// kubeletMounts lists the mount points strictly below the kubelet directory
// of fsys's root, as real paths, deepest first, and last the directory
// itself when kubelet bind-mounted it onto itself. With a root other than "/"
// only mounts below <root>/var/lib/kubelet count, never the machine's own
// /var/lib/kubelet. A stacked mount point appears once per mount.
func kubeletMounts(fsys host.FS) ([]string, error) {
	b, err := fsys.ReadFile(mountsFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the mount table %s: %w", mountsFile, err)
	}
	dirs := []string{fsys.Path(constants.KubeletDir)}
	// kubelet's directory may be a link to another disk; follow it only
	// while it stays inside the root.
	if real, err := filepath.EvalSymlinks(dirs[0]); err == nil && real != dirs[0] &&
		host.Under(real, fsys.Path("/")) {
		dirs = append(dirs, real)
	}
	var found []string
	for _, mp := range parseMountPoints(string(b)) {
		for _, dir := range dirs {
			if mp != dir && host.Under(mp, dir) {
				found = append(found, mp)
				break
			}
		}
	}
	// The last mounted goes first among equals; deeper paths before the
	// mounts they sit on.
	slices.Reverse(found)
	sort.SliceStable(found, func(i, j int) bool { return depth(found[i]) > depth(found[j]) })
	// kubelet bind-mounts its directory onto itself (to make it a shared
	// mount) when it is not on one, as on hosts without systemd; that
	// mount goes last, or the directory cannot be removed (EBUSY). A disk
	// or another directory mounted there is the operator's and stays.
	if mi, err := fsys.ReadFile(mountInfoFile); err == nil {
		for _, dir := range dirs {
			for _, root := range selfBindRoots(string(mi), dir) {
				if root == hostPath(fsys, dir) {
					found = append(found, dir)
				}
			}
		}
	}
	return found, nil
}

// mountInfoFile has each mount's root within its file system, which
// /proc/mounts lacks.
const mountInfoFile = "/proc/self/mountinfo"

// selfBindRoots returns, for every mount at mountPoint in a mountinfo
// table, the path of its root within its file system (field 4). A bind
// mount of a directory onto itself has its own path there; a disk mounted
// at the directory has "/".
func selfBindRoots(table, mountPoint string) []string {
	var roots []string
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		if unescapeMountPath(f[4]) == mountPoint {
			roots = append(roots, unescapeMountPath(f[3]))
		}
	}
	return roots
}

func depth(p string) int { return strings.Count(filepath.Clean(p), "/") }

// parseMountPoints returns the second field of each line of a
// /proc/mounts style table, with the kernel's octal escapes (\040 for a
// space) decoded.
func parseMountPoints(table string) []string {
	var out []string
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		out = append(out, unescapeMountPath(f[1]))
	}
	return out
}

func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// hostPath turns a real path below fsys's root back into the host path the
// user knows.
func hostPath(fsys host.FS, real string) string {
	root := fsys.Path("/")
	if root == "/" {
		return real
	}
	rel, err := filepath.Rel(root, real)
	if err != nil || strings.HasPrefix(rel, "..") {
		return real
	}
	return filepath.Join("/", rel)
}
