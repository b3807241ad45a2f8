package harness

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Snapshot records every path below roots with its type, mode and content
// hash (symlinks by target), to compare the host before and after a command.
func Snapshot(roots ...string) map[string]string {
	m := map[string]string{}
	for _, root := range roots {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			// containerd's CNI results of pods a previous step removed
			// are cleared asynchronously: runtime state join never touches.
			if strings.HasPrefix(p, "/var/lib/cni/results/") {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return nil
			}
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				t, _ := os.Readlink(p)
				m[p] = "link " + t
			case fi.IsDir():
				m[p] = fmt.Sprintf("dir %o", fi.Mode().Perm())
			case fi.Mode().IsRegular():
				b, _ := os.ReadFile(p)
				m[p] = fmt.Sprintf("file %o %x", fi.Mode().Perm(), sha256.Sum256(b))
			default:
				m[p] = "other " + fi.Mode().String()
			}
			return nil
		})
	}
	return m
}

// SnapshotDiff lists the differences between two snapshots, empty if equal.
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

// HostRoots are the directories a join may write to.
var HostRoots = []string{"/etc/kubernetes", "/var/lib/kubelet", "/var/lib/yurthub", "/var/lib/openyurt", "/etc/systemd/system", "/var/lib/cni"}

// Exists lists which of paths exist.
func Exists(paths ...string) []string {
	var have []string
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			have = append(have, p)
		}
	}
	return have
}

// Redact hides a token's secret in s.
func Redact(s, token string) string {
	if id, secret, ok := strings.Cut(token, "."); ok {
		return strings.ReplaceAll(s, secret, "<secret of "+id+">")
	}
	return s
}
