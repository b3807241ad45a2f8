//go:build linux

package reset

import "syscall"

// sysUnmounter unmounts with umount(2).
type sysUnmounter struct{}

func (sysUnmounter) Unmount(target string) error { return syscall.Unmount(target, 0) }
