package reset

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"regexp"
	"strings"

	"github.com/yurtadm/yurtadm/pkg/constants"
)

// Where kubelet keeps the pods' logs: /var/log/pods/<namespace>_<pod>_<uid>/
// <container>/<restart>.log, and a link per container in /var/log/containers.
const (
	podLogsDir       = "/var/log/pods"
	containerLogsDir = "/var/log/containers"
)

// staticPodLogDir matches the log directory of a yurthub static pod: in
// kube-system, named after its manifest ("yurt-hub", or the cloud
// template's "yurt-hub-cloud") and the node, with the 32 hex digits of a
// static pod's UID (a hash of its manifest; an API pod's UID has dashes).
var staticPodLogDir = regexp.MustCompile(`^` + constants.DefaultNamespace + `_` + constants.YurthubContainerName + `-[a-z0-9.-]+_[0-9a-f]{32}$`)

// runRemoveYurthubLogs removes the yurthub static pod's log directories.
// The pod's UID is a hash of its manifest, so the next join's yurthub, with
// the same manifest, is the same pod to kubelet; kubelet counts the log
// files it finds there as earlier restarts (attempt 7 on a fresh join),
// which doctor and an operator read as a crash loop. Logs of other pods
// are not join's: they stay (kubelet removes them once it runs again).
func runRemoveYurthubLogs(d ResetData, phase string) error {
	h, rep := d.Host(), d.Report()
	entries, err := h.FS.ReadDir(podLogsDir)
	if errors.Is(err, fs.ErrNotExist) {
		rep.skipped(phase, "remove yurthub's pod logs", podLogsDir+" does not exist")
		return nil
	}
	if err != nil {
		rep.skipped(phase, "remove yurthub's pod logs", podLogsDir+" cannot be read: "+err.Error())
		return nil
	}
	var removed []string
	for _, e := range entries {
		// A symlink is never a log directory of ours (e.Type is the link's).
		if e.IsDir() && staticPodLogDir.MatchString(e.Name()) {
			p := path.Join(podLogsDir, e.Name())
			removePath(d, phase, p)
			removed = append(removed, p+"/")
		}
	}
	if len(removed) == 0 {
		rep.skipped(phase, "remove yurthub's pod logs", "no yurthub pod logs in "+podLogsDir)
		return nil
	}
	// The links kubelet made into them, and only those.
	links, _ := h.FS.ReadDir(containerLogsDir)
	for _, l := range links {
		if l.Type()&os.ModeSymlink == 0 {
			continue
		}
		p := path.Join(containerLogsDir, l.Name())
		target, err := os.Readlink(h.FS.Path(p))
		if err != nil || !hasAnyPrefix(target, removed) {
			continue
		}
		if d.DryRun() {
			rep.planned(phase, "remove "+p, "would remove the link "+p)
			continue
		}
		if _, err := h.FS.Remove(p); err != nil {
			rep.failed(phase, "remove "+p, err, "rm "+p)
			continue
		}
		rep.done(phase, "remove "+p, "removed the link "+p)
	}
	return nil
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
