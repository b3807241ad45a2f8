package doctor

import "golang.org/x/sys/unix"

// statfs returns the bytes available to an unprivileged writer and the
// size of the filesystem holding path.
func statfs(path string) (avail, total uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}
