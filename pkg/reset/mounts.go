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
// of fsys's root, as real paths, deepest first. With a root other than "/"
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
	return found, nil
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
