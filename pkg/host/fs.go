// Package host is the seam between yurtadm and the machine it runs on: files
// below a root directory, commands through an exec interface and services
// through an init system. Tests point the root at t.TempDir() and use fakes
// for the rest, so a whole join or reset can run without touching the host.
package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// FS reads and writes host paths below Root. Every absolute path the tool
// knows (/etc/kubernetes/..., /var/lib/yurthub/...) is resolved through it.
type FS struct {
	// Root is the directory that stands for "/". Empty means "/".
	Root string
}

// Path maps an absolute host path to the real path below Root.
func (f FS) Path(p string) string {
	if f.Root == "" || f.Root == "/" {
		return filepath.Clean(p)
	}
	return filepath.Join(f.Root, filepath.Clean("/"+p))
}

// ReadFile reads the host file p.
func (f FS) ReadFile(p string) ([]byte, error) { return os.ReadFile(f.Path(p)) }

// Exists reports whether p exists (without following a final symlink).
func (f FS) Exists(p string) bool {
	_, err := os.Lstat(f.Path(p))
	return err == nil
}

// Stat returns the file info of p.
func (f FS) Stat(p string) (fs.FileInfo, error) { return os.Stat(f.Path(p)) }

// ReadDir lists the directory p.
func (f FS) ReadDir(p string) ([]fs.DirEntry, error) { return os.ReadDir(f.Path(p)) }

// MkdirAll creates p and its parents.
func (f FS) MkdirAll(p string, perm os.FileMode) error { return os.MkdirAll(f.Path(p), perm) }

// Remove removes the file or empty directory p; a missing p is not an error.
// It reports whether something was removed.
func (f FS) Remove(p string) (bool, error) {
	err := os.Remove(f.Path(p))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// RemoveAll removes p and everything below it; a missing p is not an error.
// It reports whether something was removed. It refuses, removing nothing,
// when p or a directory on its way is a symlink to a system directory
// (IntoSystemDir): what it would remove is the system's, not ours.
func (f FS) RemoveAll(p string) (bool, error) {
	if !f.Exists(p) {
		return false, nil
	}
	if link, target := f.IntoSystemDir(p); link != "" {
		return false, &SystemDirLinkError{Path: p, Link: link, Target: target}
	}
	return true, os.RemoveAll(f.Path(p))
}

// SystemDirLinkError is a removal refused because the path leads through a
// symlink into a system directory.
type SystemDirLinkError struct{ Path, Link, Target string }

func (e *SystemDirLinkError) Error() string {
	return fmt.Sprintf("kept %s: %s is a symlink to the system directory %s (check it with 'ls -l %s' and remove what is yurtadm's by hand)",
		e.Path, e.Link, e.Target, e.Link)
}

// SystemDirs are directories no symlink may lead a removal into.
var SystemDirs = map[string]bool{
	"/": true, "/etc": true, "/usr": true, "/var": true, "/var/lib": true, "/home": true, "/root": true, "/boot": true,
	"/bin": true, "/sbin": true, "/lib": true, "/lib64": true, "/opt": true, "/srv": true, "/tmp": true, "/run": true,
	"/dev": true, "/proc": true, "/sys": true, "/mnt": true, "/media": true, "/usr/lib": true, "/usr/local": true,
}

// IntoSystemDir reports the first directory on p's way (p's parents, and p
// itself when it is a directory link) that is a symlink to a system
// directory, and that directory: removing below it would remove what the
// system owns. Both are host paths; link is empty when there is none.
func (f FS) IntoSystemDir(p string) (link, target string) {
	parts := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
	root := f.Path("/")
	for i := range parts {
		cur := "/" + strings.Join(parts[:i+1], "/")
		fi, err := os.Lstat(f.Path(cur))
		if err != nil {
			return "", ""
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			continue
		}
		real, err := filepath.EvalSymlinks(f.Path(cur))
		if err != nil {
			continue
		}
		t := path.Clean("/" + strings.TrimPrefix(strings.TrimPrefix(real, root), "/"))
		if SystemDirs[t] {
			return cur, t
		}
	}
	return "", ""
}

// Readlink returns the target of the symlink p, and false when p is not a
// symlink (or does not exist).
func (f FS) Readlink(p string) (string, bool) {
	fi, err := os.Lstat(f.Path(p))
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		return "", false
	}
	t, err := os.Readlink(f.Path(p))
	return t, err == nil
}

// WriteFileAtomic writes data to p with perm: it writes a temporary file in
// the same directory, syncs it and renames it over p, so a reader never sees
// a half-written file and a crash leaves either the old or the new content.
func (f FS) WriteFileAtomic(p string, data []byte, perm os.FileMode) error {
	real := f.Path(p)
	dir := filepath.Dir(real)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(real)+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	cleanup := func(e error) error {
		tmp.Close()
		os.Remove(tmpName)
		return fmt.Errorf("write %s: %w", p, e)
	}
	if err := tmp.Chmod(perm); err != nil {
		return cleanup(err)
	}
	if _, err := tmp.Write(data); err != nil {
		return cleanup(err)
	}
	if err := tmp.Sync(); err != nil {
		return cleanup(err)
	}
	if err := tmp.Close(); err != nil {
		return cleanup(err)
	}
	if err := os.Rename(tmpName, real); err != nil {
		os.Remove(tmpName)
		return fmt.Errorf("write %s: %w", p, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Under reports whether host path p is dir or lies below it.
func Under(p, dir string) bool {
	p, dir = filepath.Clean(p), filepath.Clean(dir)
	return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator))
}

// SymlinkAtomic makes p a symlink to target (a host path, kept as given:
// it resolves on the host), replacing p through a rename.
func (f FS) SymlinkAtomic(target, p string) error {
	real := f.Path(p)
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(real), "."+filepath.Base(real)+".tmp-link")
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("link %s: %w", p, err)
	}
	if err := os.Rename(tmp, real); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("link %s: %w", p, err)
	}
	return nil
}
