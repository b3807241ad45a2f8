package nodestep

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"time"

	"github.com/yurtadm/yurtadm/pkg/host"
)

// Backup layout on the node. The manifest is written last: a backup without
// it is incomplete and is ignored (and overwritten).
const (
	BackupDir      = "/var/lib/openyurt/backup"
	BackupManifest = "/var/lib/openyurt/backup/manifest.json"
	backupFiles    = "/var/lib/openyurt/backup/files"
	backupVersion  = 1
)

// BackupEntry is one file as it was before convert changed it.
type BackupEntry struct {
	Path    string      `json:"path"`
	Existed bool        `json:"existed"`
	Mode    os.FileMode `json:"mode,omitempty"`
	SHA256  string      `json:"sha256,omitempty"`
	// Copy is where the original bytes are kept (existed only).
	Copy string `json:"copy,omitempty"`
	// Link is the target when the path was a symlink: restored as that
	// symlink (convert's atomic writes replace a link, not its target).
	Link string `json:"link,omitempty"`
}

// Backup is what convert saved before it changed a node.
type Backup struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	// Server is the API server kubelet talked to before convert.
	Server  string        `json:"server,omitempty"`
	Entries []BackupEntry `json:"files"`
	// AbsentDirs existed not before convert: rollback and revert remove them.
	AbsentDirs []string `json:"absentDirs,omitempty"`
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// takeBackup copies every path that exists, with its mode and checksum,
// verifies each copy by reading it back, and writes the manifest last.
func takeBackup(fsys host.FS, paths, dirs []string, server string, now time.Time) (*Backup, error) {
	b := &Backup{Version: backupVersion, Created: now.UTC(), Server: server}
	for _, d := range dirs {
		if !fsys.Exists(d) {
			b.AbsentDirs = append(b.AbsentDirs, d)
		}
	}
	for _, p := range paths {
		if t, ok := fsys.Readlink(p); ok {
			b.Entries = append(b.Entries, BackupEntry{Path: p, Existed: true, Link: t})
			continue
		}
		data, err := fsys.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			b.Entries = append(b.Entries, BackupEntry{Path: p})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("back up %s: %w", p, err)
		}
		st, err := fsys.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("back up %s: %w", p, err)
		}
		e := BackupEntry{Path: p, Existed: true, Mode: st.Mode().Perm(), SHA256: sum(data), Copy: path.Join(backupFiles, p)}
		if err := fsys.WriteFileAtomic(e.Copy, data, 0o600); err != nil {
			return nil, fmt.Errorf("back up %s: %w", p, err)
		}
		if got, err := fsys.ReadFile(e.Copy); err != nil || sum(got) != e.SHA256 {
			return nil, fmt.Errorf("back up %s: the copy at %s does not read back the same (%v)", p, e.Copy, err)
		}
		b.Entries = append(b.Entries, e)
	}
	js, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := fsys.WriteFileAtomic(BackupManifest, append(js, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("write the backup manifest: %w", err)
	}
	return b, nil
}

// readBackup returns the backup on the node, nil if there is none.
func readBackup(fsys host.FS) (*Backup, error) {
	data, err := fsys.ReadFile(BackupManifest)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var b Backup
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("parse %s: %w", BackupManifest, err)
	}
	if b.Version != backupVersion {
		return nil, fmt.Errorf("%s has version %d, this binary reads %d", BackupManifest, b.Version, backupVersion)
	}
	return &b, nil
}

// original returns the bytes e held before convert, checked against the
// recorded checksum.
func (e BackupEntry) original(fsys host.FS) ([]byte, error) {
	data, err := fsys.ReadFile(e.Copy)
	if err != nil {
		return nil, fmt.Errorf("read the backup of %s: %w", e.Path, err)
	}
	if sum(data) != e.SHA256 {
		return nil, fmt.Errorf("the backup of %s at %s does not match its checksum", e.Path, e.Copy)
	}
	return data, nil
}

// restore puts e's path back as it was: the original bytes and mode, or no
// file at all. It reports whether it changed anything.
func (e BackupEntry) restore(fsys host.FS) (bool, error) {
	if !e.Existed {
		return fsys.Remove(e.Path)
	}
	if e.Link != "" {
		if t, ok := fsys.Readlink(e.Path); ok && t == e.Link {
			return false, nil
		}
		return true, fsys.SymlinkAtomic(e.Link, e.Path)
	}
	data, err := e.original(fsys)
	if err != nil {
		return false, err
	}
	if cur, err := fsys.ReadFile(e.Path); err == nil && sum(cur) == e.SHA256 {
		if st, err := fsys.Stat(e.Path); err == nil && st.Mode().Perm() == e.Mode {
			return false, nil
		}
	}
	return true, fsys.WriteFileAtomic(e.Path, data, e.Mode)
}
