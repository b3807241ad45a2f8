package cluster

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// JoinRoots are the node's directories a join, a reset or a convert may
// write to: what "the host is untouched" is measured over.
var JoinRoots = []string{"/etc/kubernetes", "/var/lib/kubelet", "/var/lib/yurthub", "/var/lib/openyurt",
	"/etc/systemd/system", "/usr/lib/systemd/system/kubelet.service.d", "/var/lib/cni", "/etc/cni"}

// Snapshot records every file, directory and symlink under the node's
// roots (paths inside the node) with its type, mode and, for a regular
// file, the sha256 of its bytes; symlinks are recorded, never followed.
// It reads the node's files from the host (HostPath).
func (n *Node) Snapshot(roots ...string) map[string]string {
	m := map[string]string{}
	for _, root := range roots {
		base := n.HostPath(root)
		_ = filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			rel := filepath.Join(root, strings.TrimPrefix(p, base))
			// containerd's CNI results of pods removed before are cleared
			// asynchronously: runtime state a join never touches.
			if strings.HasPrefix(rel, "/var/lib/cni/results/") {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return nil
			}
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				t, _ := os.Readlink(p)
				m[rel] = "link " + t
			case fi.IsDir():
				m[rel] = fmt.Sprintf("dir %o", fi.Mode().Perm())
			case fi.Mode().IsRegular():
				b, _ := os.ReadFile(p)
				m[rel] = fmt.Sprintf("file %o %x", fi.Mode().Perm(), sha256.Sum256(b))
			default:
				m[rel] = "other " + fi.Mode().String()
			}
			return nil
		})
	}
	return m
}

// SnapshotDiff lists what changed between two snapshots, sorted:
// "added P", "removed P", "changed P: before -> after".
func SnapshotDiff(before, after map[string]string) []string {
	var d []string
	for p, v := range before {
		if w, ok := after[p]; !ok {
			d = append(d, "removed "+p)
		} else if w != v {
			d = append(d, "changed "+p+": "+v+" -> "+w)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			d = append(d, "added "+p)
		}
	}
	sort.Strings(d)
	return d
}
