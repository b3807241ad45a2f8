//go:build !linux

package reset

import (
	"fmt"
	"runtime"
)

// sysUnmounter is a stub: yurtadm resets Linux nodes only.
type sysUnmounter struct{}

func (sysUnmounter) Unmount(target string) error {
	return fmt.Errorf("unmount %s: not supported on %s", target, runtime.GOOS)
}
