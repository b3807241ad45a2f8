//go:build !linux

package preflight

import (
	"fmt"
	"runtime"
)

// ProbeDType works on Linux only; elsewhere it says so.
func ProbeDType(dir string) (bool, error) {
	return false, fmt.Errorf("d_type probe not supported on %s", runtime.GOOS)
}
