package reset

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/host"
)

// joinState is the part of constants.JoinStateFile reset reads. yurtadm join
// owns the format ({"version":1,"files":[...],"createdDirs":[...],"dropIn":b});
// reset only needs these fields and ignores any others.
type joinState struct {
	Version     int      `json:"version"`
	Files       []string `json:"files"`
	CreatedDirs []string `json:"createdDirs"`
	DropIn      bool     `json:"dropIn"`
}

// joinStateVersion is the only state file version this reader understands.
const joinStateVersion = 1

// readJoinState reads the join state below fsys. It returns nil and no error
// when there is no state file: the node was not joined by this yurtadm, or
// the join did not get far enough to write anything.
func readJoinState(fsys host.FS) (*joinState, error) {
	b, err := fsys.ReadFile(constants.JoinStateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", constants.JoinStateFile, err)
	}
	var st joinState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("parse %s: %w", constants.JoinStateFile, err)
	}
	if st.Version != joinStateVersion {
		return nil, fmt.Errorf("%s has version %d; this yurtadm reads version %d",
			constants.JoinStateFile, st.Version, joinStateVersion)
	}
	// A path reset cannot place exactly is a reason to trust none of them.
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
