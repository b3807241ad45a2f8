package join

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/host"
	"github.com/yurtadm/yurtadm/pkg/joinstate"
)

// undo is how to put one path back as it was before this run.
type undo struct {
	path    string
	existed bool
	data    []byte
	mode    os.FileMode
	// link is the target when path was a symlink: it is put back as that
	// symlink (an atomic write replaced the link, not its target).
	link string
}

// writer writes host files atomically, records them in the state file and
// keeps what is needed to roll back. In dry-run mode it prints instead.
type writer struct {
	fs      host.FS
	out     cmdutil.IOStreams
	dryRun  bool
	redact  func(string) string
	undos   []undo
	dirs    []string
	touched map[string]bool
}

func newWriter(fsys host.FS, out cmdutil.IOStreams, dryRun bool, redact func(string) string) *writer {
	return &writer{fs: fsys, out: out, dryRun: dryRun, redact: redact, touched: map[string]bool{}}
}

// mkdirs creates the missing parents of p and remembers the ones it made.
func (w *writer) mkdirs(dir string) error {
	var missing []string
	for d := dir; d != "/" && d != "." && !w.fs.Exists(d); d = filepath.Dir(d) {
		missing = append(missing, d)
	}
	if err := w.fs.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		w.dirs = append(w.dirs, missing[i])
	}
	return nil
}

// WriteFile writes data to host path p with perm, atomically.
func (w *writer) WriteFile(p string, data []byte, perm os.FileMode) error {
	if w.dryRun {
		fmt.Fprintf(w.out.Out, "[dryrun] would write %s (mode %04o):\n%s\n", p, perm, indent(w.redact(string(data))))
		return nil
	}
	if !w.touched[p] {
		u := undo{path: p}
		if t, ok := w.fs.Readlink(p); ok {
			u.existed, u.link = true, t
		} else if b, err := w.fs.ReadFile(p); err == nil {
			st, _ := w.fs.Stat(p)
			u.existed, u.data, u.mode = true, b, st.Mode().Perm()
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("read %s before writing it: %w", p, err)
		}
		w.undos = append(w.undos, u)
		w.touched[p] = true
	}
	if err := w.mkdirs(filepath.Dir(p)); err != nil {
		return fmt.Errorf("create the directory of %s: %w", p, err)
	}
	if err := w.fs.WriteFileAtomic(p, data, perm); err != nil {
		return err
	}
	return w.record(p, false)
}

// Symlink makes host path p a symlink to target, recorded like a file.
func (w *writer) Symlink(target, p string) error {
	if w.dryRun {
		fmt.Fprintf(w.out.Out, "[dryrun] would link %s -> %s\n", p, target)
		return nil
	}
	if !w.touched[p] {
		if _, err := os.Lstat(w.fs.Path(p)); err == nil {
			return fmt.Errorf("%s exists already", p)
		}
		w.undos = append(w.undos, undo{path: p})
		w.touched[p] = true
	}
	if err := w.mkdirs(filepath.Dir(p)); err != nil {
		return fmt.Errorf("create the directory of %s: %w", p, err)
	}
	if err := w.fs.SymlinkAtomic(target, p); err != nil {
		return err
	}
	return w.record(p, false)
}

// record adds p to the state file (p itself when it is not the state file).
func (w *writer) record(p string, dropIn bool) error {
	st := w.loadState()
	if p != "" && p != constants.JoinStateFile && !contains(st.Files, p) {
		st.Files = append(st.Files, p)
	}
	for _, d := range w.dirs {
		if !contains(st.CreatedDirs, d) {
			st.CreatedDirs = append(st.CreatedDirs, d)
		}
	}
	st.DropIn = st.DropIn || dropIn
	if !w.touched[constants.JoinStateFile] {
		u := undo{path: constants.JoinStateFile}
		if old, err := w.fs.ReadFile(constants.JoinStateFile); err == nil {
			u.existed, u.data, u.mode = true, old, 0o600
		}
		w.undos = append(w.undos, u)
		w.touched[constants.JoinStateFile] = true
	}
	if err := w.mkdirs(filepath.Dir(constants.JoinStateFile)); err != nil {
		return err
	}
	return w.fs.WriteFileAtomic(constants.JoinStateFile, st.Marshal(), 0o600)
}

// loadState reads the state an earlier phase or run left; an unreadable
// one is started afresh (reset falls back to the well-known paths).
func (w *writer) loadState() joinstate.State {
	st, err := joinstate.Read(w.fs)
	if err != nil || st == nil {
		return joinstate.State{Version: joinstate.Version}
	}
	return *st
}

// markDropIn notes in the state file that join wrote the kubelet drop-in.
func (w *writer) markDropIn() error {
	if w.dryRun {
		return nil
	}
	return w.record("", true)
}

// Rollback puts every file this run wrote back as it was, newest first, and
// removes the directories it created when they are empty. It returns what
// it could not restore.
func (w *writer) Rollback() []error {
	var errs []error
	for i := len(w.undos) - 1; i >= 0; i-- {
		u := w.undos[i]
		var err error
		switch {
		case u.link != "":
			err = w.fs.SymlinkAtomic(u.link, u.path)
		case u.existed:
			err = w.fs.WriteFileAtomic(u.path, u.data, u.mode)
		default:
			_, err = w.fs.Remove(u.path)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("restore %s: %w", u.path, err))
		}
	}
	dirs := append([]string(nil), w.dirs...)
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		_ = os.Remove(w.fs.Path(d)) // only if empty
	}
	w.undos, w.dirs, w.touched = nil, nil, map[string]bool{}
	return errs
}

// Written lists the host paths this run wrote, in order.
func (w *writer) Written() []string {
	var out []string
	for _, u := range w.undos {
		out = append(out, u.path)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func indent(s string) string {
	out := "    "
	for i := 0; i < len(s); i++ {
		out += string(s[i])
		if s[i] == '\n' && i < len(s)-1 {
			out += "    "
		}
	}
	return out
}
