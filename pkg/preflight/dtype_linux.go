package preflight

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ProbeDType reports whether the filesystem of dir, a real path, fills in
// d_type: it reads dir with getdents64 and looks at the type of its first
// entry other than "." and "..". It writes nothing: an empty dir is judged
// by its parent's entry for it when both are on one filesystem; an empty
// mount point cannot be judged and is an error (the check's warning). On
// xfs formatted with ftype=0 the type is DT_UNKNOWN, and overlayfs refuses
// to work on it.
func ProbeDType(dir string) (bool, error) {
	typ, found, err := readFirstEntryType(dir)
	if err != nil {
		return false, err
	}
	if !found {
		parent := filepath.Dir(dir)
		var ds, ps syscall.Stat_t
		if err := syscall.Stat(dir, &ds); err != nil {
			return false, &os.PathError{Op: "stat", Path: dir, Err: err}
		}
		if err := syscall.Stat(parent, &ps); err != nil || ps.Dev != ds.Dev || parent == dir {
			return false, fmt.Errorf("%s is an empty mount point: its d_type support cannot be seen without writing a file there", dir)
		}
		if typ, found, err = readFirstEntryType(parent); err != nil {
			return false, err
		}
		if !found {
			return false, fmt.Errorf("%s lists no entry, not even %s", parent, dir)
		}
	}
	return typ != dtUnknown, nil
}

func readFirstEntryType(dir string) (typ uint8, found bool, err error) {
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0, false, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer syscall.Close(fd)
	buf := make([]byte, 8192)
	for {
		n, err := syscall.Getdents(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, false, &os.PathError{Op: "getdents", Path: dir, Err: err}
		}
		if n <= 0 {
			return 0, false, nil
		}
		if typ, found := firstEntryType(buf[:n]); found {
			return typ, true, nil
		}
	}
}
