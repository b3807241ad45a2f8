//go:build !linux

package doctor

import "errors"

func statfs(string) (uint64, uint64, error) {
	return 0, 0, errors.New("statfs is only implemented on Linux")
}
