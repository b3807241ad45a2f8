package doctor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/yurtadm/yurtadm/pkg/constants"
)

// CheckDiskSpace is the doctor check of free space where the node's
// components write.
const CheckDiskSpace = "disk-space"

// Where kubelet, yurthub and the runtime write, by what writes there.
var diskPaths = []struct{ path, what string }{
	{constants.KubeletDir, "kubelet's pods and volumes"},
	{constants.KubernetesDir, "yurthub's cache and the static pod manifests"},
	{constants.YurthubDir, "yurthub's certificates"},
	{"/var/lib/containerd", "the container runtime's images and containers"},
}

// Thresholds: below diskFailBytes nothing can be written any more; below
// diskWarnBytes or diskWarnRatio it will soon be so.
const (
	diskFailBytes = 1 << 20
	diskWarnBytes = 512 << 20
	diskWarnRatio = 0.05
)

func (d *doctor) checkDiskSpace() Finding {
	const name = CheckDiskSpace
	var ev, full, low []string
	seen := map[string]bool{}
	for _, p := range diskPaths {
		// The nearest existing directory: a missing one is written below
		// its parent's filesystem.
		dir := p.path
		for dir != "/" {
			if st, err := os.Stat(d.h.FS.Path(dir)); err == nil && st.IsDir() {
				break
			} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
				break
			}
			dir = path.Dir(dir)
		}
		avail, total, err := d.dp.statfs(d.h.FS.Path(dir))
		if err != nil {
			ev = append(ev, fmt.Sprintf("%s: %v", dir, err))
			continue
		}
		line := fmt.Sprintf("%s (%s): %s free of %s", dir, p.what, bytesString(float64(avail)), bytesString(float64(total)))
		if seen[line] {
			continue
		}
		seen[line] = true
		ev = append(ev, line)
		switch {
		case avail < diskFailBytes:
			full = append(full, dir)
		case avail < diskWarnBytes || total > 0 && float64(avail) < diskWarnRatio*float64(total):
			low = append(low, dir)
		}
	}
	const fix = "free space there (old images: 'crictl rmi --prune'; logs: 'journalctl --vacuum-size=100M'), or give the filesystem more room"
	switch {
	case len(full) > 0:
		return fail(name, "no space left on "+strings.Join(full, ", ")+": yurthub cannot cache, kubelet cannot start pods", fix, ev...)
	case len(low) > 0:
		return warn(name, "little space left on "+strings.Join(low, ", "), fix, ev...)
	case len(ev) == 0:
		return skip(name, "no filesystem could be read")
	}
	return ok(name, "enough free space where kubelet, yurthub and the runtime write", ev...)
}
