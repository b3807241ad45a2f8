// Package joinstate is the record yurtadm join leaves in
// constants.JoinStateFile of what it wrote, and that yurtadm reset reads to
// remove exactly that. It never holds secrets.
package joinstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/host"
)

// Version is the only format version written and read.
const Version = 1

// State lists the host paths join wrote.
type State struct {
	Version     int      `json:"version"`
	Files       []string `json:"files"`
	CreatedDirs []string `json:"createdDirs,omitempty"`
	// DropIn is true when join wrote the kubelet drop-in (the kubelet
	// package had none), so reset may remove it.
	DropIn bool `json:"dropIn"`
}

// Read reads the state below fsys. It returns nil and no error when there is
// no state file: the node was not joined by yurtadm, or the join did not get
// far enough to write anything.
func Read(fsys host.FS) (*State, error) {
	b, err := fsys.ReadFile(constants.JoinStateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", constants.JoinStateFile, err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("parse %s: %w", constants.JoinStateFile, err)
	}
	if st.Version != Version {
		return nil, fmt.Errorf("%s has version %d; this yurtadm reads version %d",
			constants.JoinStateFile, st.Version, Version)
	}
	// A path that cannot be placed exactly is a reason to trust none of them.
	for _, list := range [][]string{st.Files, st.CreatedDirs} {
		for i, p := range list {
			if !filepath.IsAbs(p) || filepath.Clean(p) == "/" {
				return nil, fmt.Errorf("%s lists %q, which is not an absolute path below /",
					constants.JoinStateFile, p)
			}
			list[i] = filepath.Clean(p)
		}
	}
	return &st, nil
}

// Marshal renders st as the file's content.
func (st State) Marshal() []byte {
	st.Version = Version
	b, _ := json.MarshalIndent(st, "", "  ")
	return append(b, '\n')
}
