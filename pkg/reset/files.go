package reset

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/host"
	"github.com/yurtadm/yurtadm/pkg/joinstate"
)

// kubeletFiles are the kubelet files yurtadm join writes, as kubeadm join
// does; reset removes them before the rest of /var/lib/kubelet.
var kubeletFiles = []string{
	constants.KubeletKubeconfig,
	constants.KubeletBootstrapConfig,
	constants.CACertPath,
	constants.KubeletConfigFile,
	constants.KubeletFlagsEnvFile,
	constants.KubeletPKIDir,
}

// kubeletEntries are what kubelet itself (and kubeadm's files) keep in
// /var/lib/kubelet: the rest of that directory that reset removes. Any
// other entry is not known to be kubelet's and stays, named in the report.
var kubeletEntries = map[string]bool{
	"pods": true, "plugins": true, "plugins_registry": true, "pod-resources": true, "device-plugins": true,
	"checkpoints": true, "pki": true, "config.yaml": true, "kubeadm-flags.env": true, "instance-config.yaml": true,
	"cpu_manager_state": true, "memory_manager_state": true, "dra_manager_state": true,
	"allocated_pods_state": true, "actuated_pods_state": true, "seccomp": true, "volumeplugins": true,
	"credential-provider": true, "boot_id": true,
}

// unitDirs hold systemd unit files and drop-ins: removing anything below
// them needs a daemon-reload.
var unitDirs = []string{"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system", "/run/systemd/system"}

func isUnitPath(p string) bool {
	for _, d := range unitDirs {
		if host.Under(p, d) {
			return true
		}
	}
	return false
}

// isKubeletDropIn reports whether p is a kubeadm kubelet drop-in, wherever
// the distribution keeps it.
func isKubeletDropIn(p string) bool {
	return strings.HasSuffix(p, "/kubelet.service.d/10-kubeadm.conf")
}

// countFiles returns how many non-directories are at or below the real
// path p, and whether p is a directory. It does not follow links.
func countFiles(real string) (n int, isDir bool) {
	info, err := os.Lstat(real)
	if err != nil {
		return 0, false
	}
	if !info.IsDir() {
		return 1, false
	}
	_ = filepath.WalkDir(real, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			n++
		}
		return nil
	})
	return n, true
}

func sizeNote(n int, isDir bool) string {
	if !isDir {
		return ""
	}
	if n == 0 {
		return " (empty)"
	}
	return " (" + plural(n, "file") + ")"
}

// removePath removes host path p and everything below it, or in a dry run
// says it would, and reports the step.
func removePath(d ResetData, phase, p string) {
	h, rep := d.Host(), d.Report()
	name := "remove " + p
	if !h.FS.Exists(p) {
		rep.skipped(phase, name, p+" does not exist")
		return
	}
	if link, target := h.FS.IntoSystemDir(p); link != "" {
		rep.failed(phase, name, fmt.Errorf("kept %s: %s is a symlink to the system directory %s", p, link, target),
			"check "+link+" ('ls -l "+link+"') and remove what is yurtadm's by hand")
		return
	}
	note := sizeNote(countFiles(h.FS.Path(p)))
	if d.DryRun() {
		rep.unitsChanged = rep.unitsChanged || isUnitPath(p)
		rep.planned(phase, name, "would remove "+p+note)
		return
	}
	if _, err := h.FS.RemoveAll(p); err != nil {
		rep.failed(phase, name, fmt.Errorf("remove %s: %w", p, err), "rm -rf "+p)
		return
	}
	rep.unitsChanged = rep.unitsChanged || isUnitPath(p)
	rep.done(phase, name, "removed "+p+note)
}

func runRemoveManifests(d ResetData, phase string) error {
	targets := []string{constants.YurthubManifest}
	// Only manifests join wrote: this node may run a control plane whose
	// manifests sit in the same directory.
	if st, _ := d.JoinState(); st != nil {
		for _, f := range st.Files {
			if path.Dir(f) == constants.ManifestsDir && f != constants.YurthubManifest {
				targets = append(targets, f)
			}
		}
	}
	for _, p := range targets {
		removePath(d, phase, p)
	}
	return nil
}

func runRemoveYurthubPKI(d ResetData, phase string) error {
	removePath(d, phase, constants.YurthubPKIDir)
	return nil
}

func runRemoveYurthubDir(d ResetData, phase string) error {
	// The bootstrap kubeconfig holds a token: name it in the report on its own.
	removePath(d, phase, constants.YurthubBootstrapFile)
	removePath(d, phase, constants.YurthubDir)
	return nil
}

func runRemoveCache(d ResetData, phase string) error {
	removePath(d, phase, constants.YurthubCacheDir)
	return nil
}

func runRemoveOpenYurt(d ResetData, phase string) error {
	removePath(d, phase, constants.OpenYurtDir)
	return nil
}

func runRemoveKubeletFiles(d ResetData, phase string) error {
	h, rep := d.Host(), d.Report()
	caKey := path.Join(constants.PKIDir, "ca.key")
	for _, p := range kubeletFiles {
		if p == constants.CACertPath && h.FS.Exists(caKey) {
			rep.skipped(phase, "remove "+p, "kept "+p+": "+caKey+" is here too, so this node holds the cluster CA")
			continue
		}
		removePath(d, phase, p)
	}
	cleanKubeletDir(d, phase)
	return nil
}

// cleanKubeletDir removes kubelet's own entries left in /var/lib/kubelet
// (kubeletEntries) and keeps the directory, as kubeadm reset does; entries
// it does not know stay and are named. It refuses while anything is mounted
// below it (removing would reach into the mounted volumes), and when
// /var/lib/kubelet leads through a symlink into a system directory.
func cleanKubeletDir(d ResetData, phase string) {
	h, rep := d.Host(), d.Report()
	dir := constants.KubeletDir
	name := "remove the rest of " + dir
	if link, target := h.FS.IntoSystemDir(dir); link != "" {
		rep.failed(phase, name, fmt.Errorf("kept the rest of %s: %s is a symlink to the system directory %s", dir, link, target),
			"check "+link+" ('ls -l "+link+"') and remove kubelet's entries by hand")
		return
	}
	all, err := h.FS.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		rep.skipped(phase, name, dir+" does not exist")
		return
	case err != nil:
		rep.failed(phase, name, fmt.Errorf("list %s: %w", dir, err), "rm -rf "+dir+"/*")
		return
	}
	var entries []fs.DirEntry
	var unknown []string
	for _, e := range all {
		if kubeletEntries[e.Name()] {
			entries = append(entries, e)
		} else {
			unknown = append(unknown, path.Join(dir, e.Name()))
		}
	}
	kept := ""
	if len(unknown) > 0 {
		kept = "; kept what is not known to be kubelet's: " + strings.Join(unknown, ", ")
	}
	if len(entries) == 0 {
		if len(all) == 0 {
			rep.skipped(phase, name, dir+" is empty")
		} else {
			rep.skipped(phase, name, "nothing of kubelet's in "+dir+kept)
		}
		return
	}
	files := 0
	for _, e := range entries {
		n, _ := countFiles(h.FS.Path(path.Join(dir, e.Name())))
		files += n
	}
	ents := fmt.Sprintf("%d entries", len(entries))
	if len(entries) == 1 {
		ents = "1 entry"
	}
	what := fmt.Sprintf("the rest of %s (%s, %s)", dir, ents, plural(files, "file"))
	if d.DryRun() {
		rep.planned(phase, name, "would remove "+what+kept)
		return
	}
	mounts, err := kubeletMounts(h.FS)
	if err != nil {
		rep.failed(phase, name, err, "rm -rf "+dir+"/*")
		return
	}
	if len(mounts) > 0 {
		var hp []string
		for _, m := range mounts {
			hp = append(hp, hostPath(h.FS, m))
		}
		rep.failed(phase, name, fmt.Errorf("kept the rest of %s: still mounted below it: %s", dir, strings.Join(hp, ", ")),
			"umount "+strings.Join(hp, " ")+" && rm -rf "+dir+"/*")
		return
	}
	var errs []error
	for _, e := range entries {
		if _, err := h.FS.RemoveAll(path.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		rep.failed(phase, name, fmt.Errorf("remove the rest of %s: %w", dir, errors.Join(errs...)), "rm -rf "+dir+"/*")
		return
	}
	rep.done(phase, name, "removed "+what+kept)
}

// dropInPaths are the drop-ins reset may remove when join says it wrote one.
func dropInPaths(st *joinstate.State) []string {
	out := []string{constants.KubeletDropInFile}
	for _, f := range st.Files {
		if isKubeletDropIn(f) && f != constants.KubeletDropInFile {
			out = append(out, f)
		}
	}
	return out
}

func runRemoveDropIn(d ResetData, phase string) error {
	h, rep := d.Host(), d.Report()
	st, stErr := d.JoinState()
	if st != nil && st.DropIn {
		for _, p := range dropInPaths(st) {
			removePath(d, phase, p)
		}
		return nil
	}
	var present []string
	for _, p := range []string{constants.KubeletDropInFile, constants.KubeletDropInFileUsr} {
		if h.FS.Exists(p) {
			present = append(present, p)
		}
	}
	if len(present) == 0 {
		rep.skipped(phase, "remove "+constants.KubeletDropInFile, "no kubelet drop-in 10-kubeadm.conf")
		return nil
	}
	for _, p := range present {
		name := "remove " + p
		manual := "rm -f " + p + " && systemctl daemon-reload  # only if it was written for this cluster"
		switch {
		case p == constants.KubeletDropInFileUsr:
			// That place belongs to the kubelet package: never suggest removing it.
			rep.skipped(phase, name, "kept "+p+": it belongs to the kubelet package")
		case stErr != nil:
			rep.failed(phase, name, fmt.Errorf("kept %s: cannot tell whether yurtadm join wrote it: %w", p, stErr), manual)
		case st == nil:
			rep.add(step{Phase: phase, Name: name, Status: statusSkipped, Manual: manual,
				Detail: "kept " + p + ": there is no join state (" + constants.JoinStateFile + ") saying yurtadm join wrote it"})
		default:
			rep.skipped(phase, name, "kept "+p+": yurtadm join did not write it")
		}
	}
	return nil
}

// removedWholesale reports whether another step removes p with everything
// around it, so the join-files step need not name it.
func removedWholesale(p string) bool {
	for _, dir := range []string{constants.YurthubDir, constants.YurthubCacheDir, constants.OpenYurtDir, constants.KubeletPKIDir} {
		if host.Under(p, dir) {
			return true
		}
	}
	if p != constants.KubeletDir && host.Under(p, constants.KubeletDir) {
		return true
	}
	for _, f := range kubeletFiles {
		if p == f {
			return true
		}
	}
	return path.Dir(p) == constants.ManifestsDir || isKubeletDropIn(p)
}

func runRemoveJoinFiles(d ResetData, phase string) error {
	h, rep := d.Host(), d.Report()
	st, err := d.JoinState()
	if err != nil {
		rep.failed(phase, "read join state", err,
			"remove by hand what yurtadm join wrote outside /etc/kubernetes, /var/lib/kubelet, /var/lib/yurthub and /var/lib/openyurt")
		return nil
	}
	if st == nil {
		rep.skipped(phase, "read join state", "no join state ("+constants.JoinStateFile+"): only the well-known paths were removed")
		return nil
	}
	n := 0
	for _, f := range st.Files {
		if removedWholesale(f) {
			continue
		}
		n++
		if info, err := os.Lstat(h.FS.Path(f)); err == nil && info.IsDir() {
			rep.add(step{Phase: phase, Name: "remove " + f, Status: statusSkipped, Manual: "rm -rf " + f,
				Detail: "kept " + f + ": join recorded a file, but it is a directory"})
			continue
		}
		removePath(d, phase, f)
	}
	var dirs []string
	for _, dir := range st.CreatedDirs {
		if !removedWholesale(dir) {
			dirs = append(dirs, dir)
		}
	}
	sort.SliceStable(dirs, func(i, j int) bool { return depth(dirs[i]) > depth(dirs[j]) })
	for _, dir := range dirs {
		n++
		removeEmptyDir(d, phase, dir)
	}
	if n == 0 {
		rep.skipped(phase, "remove other files", "yurtadm join recorded no other files or directories")
	}
	return nil
}

// removeEmptyDir removes a directory join created, but only when nothing is
// left in it: someone else may have put files there since.
func removeEmptyDir(d ResetData, phase, dir string) {
	h, rep := d.Host(), d.Report()
	name := "remove directory " + dir
	entries, err := h.FS.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		rep.skipped(phase, name, dir+" does not exist")
		return
	case err != nil:
		rep.failed(phase, name, fmt.Errorf("list %s: %w", dir, err), "rmdir "+dir)
		return
	case d.DryRun():
		rep.planned(phase, name, "would remove "+dir+" if it is empty by then (yurtadm join created it)")
		return
	case len(entries) > 0:
		rep.skipped(phase, name, "kept "+dir+": yurtadm join created it, but it is not empty")
		return
	}
	if _, err := h.FS.Remove(dir); err != nil {
		rep.failed(phase, name, fmt.Errorf("remove %s: %w", dir, err), "rmdir "+dir)
		return
	}
	rep.done(phase, name, "removed the empty directory "+dir+" (yurtadm join created it)")
}
