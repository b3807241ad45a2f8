package doctor

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/version"
)

// A support bundle (`yurtadm doctor --collect <file.tar.gz>`) is what a
// maintainer asks for first, in one file: doctor's report, kubelet's and
// yurthub's logs, the files join wrote, yurthub's endpoints and the index
// of its cache. It reads only; it needs nothing from the cloud; every
// text in it passes through redactSecrets; each part and the whole are
// bounded.

// Limits of a bundle (uncompressed bytes).
const (
	maxFileBytes    = 1 << 20  // one host file
	maxLogBytes     = 8 << 20  // kubelet's or containerd's journal, one container's log
	maxMetricsBytes = 4 << 20  // yurthub's /metrics
	maxIndexLines   = 20000    // entries of the cache index
	maxCacheBytes   = 16 << 20 // cached objects, with --collect-cache
	maxBundleBytes  = 64 << 20 // everything
	hubLogLines     = 5000     // per yurthub container
	journalLines    = 20000    // of kubelet's journal
	hubContainersN  = 3        // newest yurt-hub containers whose logs are taken
)

// bundleFiles are the host files a bundle takes, redacted. Keys and
// certificates are never taken: pki-index.txt describes them.
var bundleFiles = []string{
	constants.YurthubManifest,
	constants.YurthubBootstrapFile,
	constants.YurthubKubeconfig,
	constants.KubeletKubeconfig,
	constants.OpenYurtKubeletConfig,
	constants.KubeletConfigFile,
	constants.KubeletFlagsEnvFile,
	constants.KubeletUnitFile,
	"/usr/lib/systemd/system/kubelet.service",
	"/lib/systemd/system/kubelet.service",
	constants.KubeletDropInFile,
	constants.KubeletDropInFileUsr,
	"/etc/default/kubelet",
	"/etc/sysconfig/kubelet",
	constants.JoinStateFile,
	"/etc/containerd/config.toml",
	"/etc/crictl.yaml",
	"/etc/resolv.conf",
	"/etc/hosts",
	"/etc/os-release",
}

// pkiDirs are described, never copied, in pki-index.txt.
var pkiDirs = []string{constants.YurthubPKIDir, constants.KubeletPKIDir, constants.PKIDir}

// bundleEntry is one file of the bundle as bundle.json lists it.
type bundleEntry struct {
	Name string `json:"name"`
	// Source is the host file or the command the entry came from.
	Source string `json:"source"`
	Bytes  int    `json:"bytes"`
	// Redacted counts the credentials replaced by <redacted>.
	Redacted  int  `json:"redacted,omitempty"`
	Truncated bool `json:"truncated,omitempty"`
}

// bundleIndex is bundle.json.
type bundleIndex struct {
	Created string        `json:"created"`
	Node    string        `json:"node"`
	Yurtadm string        `json:"yurtadm"`
	Entries []bundleEntry `json:"entries"`
	// Missing lists what the bundle tried to take and could not, and why.
	Missing []string `json:"missing,omitempty"`
	// Notes say what was left out on purpose.
	Notes []string `json:"notes"`
}

// bundle collects entries in memory: a bundle is bounded, and the file is
// written once, whole, or not at all.
type bundle struct {
	dir     string // top directory inside the archive
	index   bundleIndex
	data    map[string][]byte
	order   []string
	total   int
	cacheIn int // bytes of cached objects taken
}

func newBundle(node string, now time.Time) *bundle {
	stamp := now.UTC().Format("20060102T150405Z")
	if node == "" {
		node = "node"
	}
	return &bundle{
		dir:  "yurtadm-doctor-" + node + "-" + stamp,
		data: map[string][]byte{},
		index: bundleIndex{Created: now.UTC().Format(time.RFC3339), Node: node, Yurtadm: version.Get().String(),
			Notes: []string{
				"tokens, passwords and private keys are replaced by " + redacted + "; review the bundle before sharing it",
				"private keys and certificates are not copied: pki-index.txt describes the certificates",
			}},
	}
}

// add redacts b, cuts it to limit bytes (keeping the end: the newest log
// lines), and adds it as name.
func (b *bundle) add(name, source string, data []byte, limit int) {
	// Redact first: a cut could leave half a key the patterns miss.
	data, n := redactSecrets(data)
	truncated := false
	if limit > 0 && len(data) > limit {
		data, truncated = data[len(data)-limit:], true
		if i := bytes.IndexByte(data, '\n'); i >= 0 && i < len(data)-1 {
			data = data[i+1:]
		}
	}
	if b.total+len(data) > maxBundleBytes {
		b.missing(name, fmt.Sprintf("left out: the bundle reached its limit of %d MiB", maxBundleBytes>>20))
		return
	}
	b.total += len(data)
	if _, dup := b.data[name]; !dup {
		b.order = append(b.order, name)
	}
	b.data[name] = data
	b.index.Entries = append(b.index.Entries, bundleEntry{Name: name, Source: source, Bytes: len(data), Redacted: n, Truncated: truncated})
}

func (b *bundle) missing(what, why string) {
	b.index.Missing = append(b.index.Missing, what+": "+why)
}

// collect gathers the bundle on this node. rep is the report doctor just
// made.
func (d *doctor) collect(rep Report) *bundle {
	b := newBundle(rep.Node, d.dp.now())
	if j, err := json.MarshalIndent(rep, "", "  "); err == nil {
		b.add("doctor.json", "yurtadm doctor -o json", append(j, '\n'), 0)
	}
	b.add("versions.txt", "yurtadm version, kubelet --version, crictl version, /proc/version", d.versions(), 0)
	d.collectFiles(b)
	d.collectJournal(b, constants.KubeletService, "kubelet/journal.txt")
	d.collectJournal(b, "containerd", "containerd/journal.txt")
	d.collectRuntime(b)
	d.collectEndpoints(b)
	d.collectCache(b)
	b.add("pki-index.txt", strings.Join(pkiDirs, ", "), d.pkiIndex(), 0)
	return b
}

// run runs a command with the probe timeout and returns its combined
// output; a missing command is an error that says so.
func (d *doctor) command(name string, args ...string) ([]byte, error) {
	if _, err := d.h.Exec.LookPath(name); err != nil {
		return nil, fmt.Errorf("%s not found in PATH", name)
	}
	ctx, cancel := d.timeout()
	defer cancel()
	out, err := d.h.Exec.CommandContext(ctx, name, args...).CombinedOutput()
	if ctx.Err() != nil {
		return out, fmt.Errorf("%s: no answer within %s", name, d.o.timeout)
	}
	return out, err
}

func (d *doctor) versions() []byte {
	var w bytes.Buffer
	fmt.Fprintf(&w, "%s\n", version.Get())
	if m, err := d.yurthubManifest(); err == nil && m != nil {
		fmt.Fprintf(&w, "yurthub image: %s\n", m.container.Image)
	}
	if out, err := d.command("kubelet", "--version"); err == nil {
		fmt.Fprintf(&w, "%s\n", strings.TrimSpace(string(out)))
	} else {
		fmt.Fprintf(&w, "kubelet --version: %v\n", err)
	}
	if out, err := d.crictl("version"); err == nil {
		fmt.Fprintf(&w, "crictl version:\n%s\n", strings.TrimSpace(string(out)))
	} else {
		fmt.Fprintf(&w, "crictl version: %v\n", err)
	}
	if v, err := d.h.FS.ReadFile("/proc/version"); err == nil {
		fmt.Fprintf(&w, "kernel: %s\n", strings.TrimSpace(string(v)))
	}
	return w.Bytes()
}

// collectFiles copies bundleFiles. A symlink is named, never followed:
// the bundle takes only the regular files it knows.
func (d *doctor) collectFiles(b *bundle) {
	for _, p := range bundleFiles {
		st, err := os.Lstat(d.h.FS.Path(p))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			b.missing(p, err.Error())
			continue
		case st.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(d.h.FS.Path(p))
			b.missing(p, "a symbolic link to "+target+", not followed")
			continue
		case !st.Mode().IsRegular():
			b.missing(p, "not a regular file")
			continue
		}
		data, err := readTail(d.h.FS.Path(p), maxFileBytes+1)
		if err != nil {
			b.missing(p, err.Error())
			continue
		}
		b.add("files"+p, p, data, maxFileBytes)
	}
}

// collectJournal takes the end of a unit's journal, or for kubelet the log
// doctor read (--kubelet-log or /var/log/kubelet.log) when there is no
// journal.
func (d *doctor) collectJournal(b *bundle, unit, name string) {
	if unit == constants.KubeletService && d.o.kubeletLog != "" {
		data, err := readTail(d.o.kubeletLog, maxLogBytes)
		if err != nil {
			b.missing(name, err.Error())
			return
		}
		b.add(name, d.o.kubeletLog, data, maxLogBytes)
		return
	}
	src := "journalctl -u " + unit
	out, err := d.command("journalctl", "-u", unit, "-n", strconv.Itoa(journalLines), "--no-pager", "-o", "short-iso")
	if err == nil && len(bytes.TrimSpace(out)) > 0 && !bytes.Contains(out, []byte("-- No entries --")) {
		b.add(name, src, out, maxLogBytes)
		return
	}
	if unit == constants.KubeletService && d.h.FS.Exists(kubeletLogFile) {
		if data, rerr := readTail(d.h.FS.Path(kubeletLogFile), maxLogBytes); rerr == nil {
			b.add(name, kubeletLogFile, data, maxLogBytes)
			return
		}
	}
	switch {
	case err != nil:
		b.missing(name, fmt.Sprintf("%s: %v", src, err))
	default:
		b.missing(name, src+": no entries")
	}
}

// collectRuntime takes the container and pod lists and, for the newest
// yurt-hub containers, their state and log.
func (d *doctor) collectRuntime(b *bundle) {
	if out, err := d.crictl("ps", "-a", "-o", "json"); err == nil {
		b.add("runtime/containers.json", "crictl ps -a -o json", out, maxFileBytes)
	} else {
		b.missing("runtime/containers.json", err.Error())
		return
	}
	if out, err := d.crictl("pods", "-o", "json"); err == nil {
		b.add("runtime/pods.json", "crictl pods -o json", out, maxFileBytes)
	} else {
		b.missing("runtime/pods.json", err.Error())
	}
	all, err := d.containers()
	if err != nil {
		b.missing("yurthub/", err.Error())
		return
	}
	hub := hubContainers(all)
	if len(hub) == 0 {
		b.missing("yurthub/", "no yurt-hub container in the runtime")
	}
	for i, c := range hub {
		if i == hubContainersN {
			b.index.Notes = append(b.index.Notes, fmt.Sprintf("logs of %d older yurt-hub containers left out", len(hub)-i))
			break
		}
		base := fmt.Sprintf("yurthub/%d-%s", c.Metadata.Attempt, c.short())
		if st, err := d.inspect(c.ID); err == nil && len(st) > 0 {
			// Only the status: the rest of crictl inspect holds the
			// container's environment.
			j, _ := json.MarshalIndent(st[0].Status, "", "  ")
			b.add(base+".status.json", "crictl inspect -o json "+c.ID+" (status)", append(j, '\n'), 0)
		}
		if out, err := d.crictlCombined("logs", "--tail", strconv.Itoa(hubLogLines), c.ID); err == nil {
			b.add(base+".log", "crictl logs --tail "+strconv.Itoa(hubLogLines)+" "+c.ID, out, maxLogBytes)
		} else {
			b.missing(base+".log", err.Error())
		}
	}
}

// crictlCombined is crictl with both streams (crictl logs writes the
// container's stderr to its own), its config-file complaint dropped.
func (d *doctor) crictlCombined(args ...string) ([]byte, error) {
	real, err := d.runtimeEndpoint()
	if err != nil {
		return nil, err
	}
	out, err := d.command("crictl", append([]string{"--runtime-endpoint", real}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("crictl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	var keep [][]byte
	for _, l := range bytes.SplitAfter(out, []byte("\n")) {
		if !bytes.Contains(l, []byte("crictl.yaml")) {
			keep = append(keep, l)
		}
	}
	return bytes.Join(keep, nil), nil
}

// collectEndpoints takes yurthub's healthz, readyz and metrics.
func (d *doctor) collectEndpoints(b *bundle) {
	for _, e := range []struct {
		path, name string
		limit      int64
	}{
		{"/v1/healthz", "yurthub/healthz.txt", 4096},
		{"/v1/readyz", "yurthub/readyz.txt", 4096},
		{constants.YurthubMetricsPath, "yurthub/metrics.txt", maxMetricsBytes},
	} {
		p := d.get(d.dp.serveURL+e.path, e.limit)
		if p.err != nil {
			b.missing(e.name, p.String())
			continue
		}
		b.add(e.name, "GET "+p.url, []byte(fmt.Sprintf("HTTP %d\n%s", p.status, p.body)), int(e.limit))
	}
}

// cachedEntry is one object in yurthub's disk cache.
type cachedEntry struct {
	rel  string
	size int64
	mod  time.Time
}

// cacheEntries walks yurthub's cache below the root, not following links.
func (d *doctor) cacheEntries() ([]cachedEntry, error) {
	root := d.h.FS.Path(d.cacheDir())
	var out []cachedEntry
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			return nil
		}
		if e.IsDir() || !e.Type().IsRegular() {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, cachedEntry{rel: filepath.ToSlash(rel), size: info.Size(), mod: info.ModTime()})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].rel < out[j].rel })
	return out, err
}

// collectCache takes the index of yurthub's cache (names, sizes, times)
// and, with --collect-cache, the cached objects but Secrets.
func (d *doctor) collectCache(b *bundle) {
	dir := d.cacheDir()
	entries, err := d.cacheEntries()
	if err != nil {
		b.missing("cache-index.txt", fmt.Sprintf("%s: %v", dir, err))
		return
	}
	var w bytes.Buffer
	fmt.Fprintf(&w, "# yurthub's cache %s: %d objects (path, bytes, modified)\n", dir, len(entries))
	for i, e := range entries {
		if i == maxIndexLines {
			fmt.Fprintf(&w, "# ... %d more\n", len(entries)-i)
			break
		}
		fmt.Fprintf(&w, "%s\t%d\t%s\n", e.rel, e.size, e.mod.UTC().Format(time.RFC3339))
	}
	b.add("cache-index.txt", dir, w.Bytes(), 0)
	if !d.o.collectCache {
		b.index.Notes = append(b.index.Notes, "the cached objects are not copied, only cache-index.txt; --collect-cache takes them (Secrets excepted)")
		return
	}
	b.index.Notes = append(b.index.Notes, "cached Secrets are never copied")
	for _, e := range entries {
		if isCachedSecret(e.rel) || strings.HasPrefix(path.Base(e.rel), "tmp_") {
			continue
		}
		if b.cacheIn+int(e.size) > maxCacheBytes {
			b.missing("cache/", fmt.Sprintf("cached objects beyond %d MiB left out", maxCacheBytes>>20))
			return
		}
		data, err := os.ReadFile(filepath.Join(d.h.FS.Path(dir), filepath.FromSlash(e.rel)))
		if err != nil {
			b.missing("cache/"+e.rel, err.Error())
			continue
		}
		b.cacheIn += len(data)
		b.add("cache/"+e.rel, path.Join(dir, e.rel), data, 0)
	}
}

// isCachedSecret tells whether a cache path holds a Secret: yurthub v1.7
// keeps them in <component>/secrets.v1.core/<ns>/<name> (older releases:
// <component>/secrets/...).
func isCachedSecret(rel string) bool {
	for _, part := range strings.Split(rel, "/") {
		if part == "secrets" || strings.HasPrefix(part, "secrets.") {
			return true
		}
	}
	return false
}

// pkiIndex describes the certificate directories: names, modes, sizes,
// link targets and, for certificates, subject, issuer and validity.
func (d *doctor) pkiIndex() []byte {
	var w bytes.Buffer
	for _, dir := range pkiDirs {
		entries, err := d.h.FS.ReadDir(dir)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintf(&w, "%s: %v\n", dir, err)
			}
			continue
		}
		fmt.Fprintf(&w, "%s:\n", dir)
		for _, e := range entries {
			p := path.Join(dir, e.Name())
			info, err := os.Lstat(d.h.FS.Path(p))
			if err != nil {
				continue
			}
			line := fmt.Sprintf("  %s %s %d bytes", info.Mode(), e.Name(), info.Size())
			if info.Mode()&fs.ModeSymlink != 0 {
				target, _ := os.Readlink(d.h.FS.Path(p))
				fmt.Fprintf(&w, "%s -> %s\n", line, target)
				continue
			}
			fmt.Fprintln(&w, line)
			if info.Mode().IsRegular() && info.Size() < maxFileBytes {
				data, _ := os.ReadFile(d.h.FS.Path(p))
				for _, c := range parseCerts(data) {
					fmt.Fprintf(&w, "    certificate: subject %q, issuer %q, valid %s to %s\n", c.Subject.String(), c.Issuer.String(),
						c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
				}
			}
		}
	}
	return w.Bytes()
}

// validateBundlePath checks --collect before doctor looks at anything: a
// .tar.gz or .tgz name in an existing directory, not there yet.
func validateBundlePath(p string) error {
	const hint = "pass a new file name ending in .tar.gz in an existing directory, e.g. --" + flagCollect + " /tmp/yurtadm-doctor.tar.gz"
	if !strings.HasSuffix(p, ".tar.gz") && !strings.HasSuffix(p, ".tgz") {
		return cmdutil.Usagef(hint, "--%s %q: the bundle is a gzipped tar; the name must end in .tar.gz or .tgz", flagCollect, p)
	}
	dir := filepath.Dir(p)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return cmdutil.Usagef(hint, "--%s %q: the directory %s does not exist", flagCollect, p, dir)
	}
	if _, err := os.Lstat(p); err == nil {
		return cmdutil.Usagef("remove it or choose another name", "--%s %q already exists; doctor does not overwrite it", flagCollect, p)
	}
	// The bundle is written last: a directory doctor cannot create its
	// temporary file in is refused now, not once every check has run.
	tmp, err := os.CreateTemp(dir, ".yurtadm-doctor-*.tmp")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return cmdutil.Usagef("pass a file in a directory you can write, e.g. --"+flagCollect+" /tmp/yurtadm-doctor.tar.gz",
			"--%s %q: cannot write in %s: %v", flagCollect, p, dir, err)
	}
	_ = tmp.Close()
	_ = os.Remove(tmp.Name())
	return nil
}

// write writes the bundle to p, readable by its owner only, in one step:
// a temporary file in the same directory is linked to p, which fails if p
// appeared meanwhile, so nothing is ever overwritten, a symlink included.
func (b *bundle) write(p string) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(p), ".yurtadm-doctor-*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	gz := gzip.NewWriter(tmp)
	tw := tar.NewWriter(gz)
	mod, _ := time.Parse(time.RFC3339, b.index.Created)
	put := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: b.dir + "/" + name, Mode: 0o600, Size: int64(len(data)),
			ModTime: mod, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	idx, _ := json.MarshalIndent(b.index, "", "  ")
	if err := put("bundle.json", append(idx, '\n')); err != nil {
		return err
	}
	for _, name := range b.order {
		if err := put(name, b.data[name]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Link(tmp.Name(), p)
}

// size is the bundle's uncompressed size, for the message.
func (b *bundle) size() string {
	return bytesString(float64(b.total))
}

// redactions counts the credentials replaced in the whole bundle.
func (b *bundle) redactions() int {
	n := 0
	for _, e := range b.index.Entries {
		n += e.Redacted
	}
	return n
}
