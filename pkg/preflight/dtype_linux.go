package preflight

import (
	"fmt"
	"os"
	"syscall"
)

// ProbeDType reports whether the filesystem of dir, a real path, fills in
// d_type: it reads dir with getdents64 and looks at the type of its first
// entry. An empty dir gets a probe file for the time of the reading. On xfs
// formatted with ftype=0 the type is DT_UNKNOWN, and overlayfs refuses to
// work on it.
func ProbeDType(dir string) (bool, error) {
	typ, found, err := readFirstEntryType(dir)
	if err != nil {
		return false, err
	}
	if !found {
		f, err := os.CreateTemp(dir, ".yurtadm-dtype-probe-")
		if err != nil {
			return false, fmt.Errorf("create a probe file: %w", err)
		}
		name := f.Name()
		f.Close()
		defer os.Remove(name)
		if typ, found, err = readFirstEntryType(dir); err != nil {
			return false, err
		}
		if !found {
			return false, fmt.Errorf("the probe file %s is not listed in %s", name, dir)
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
