package controlplane

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
)

// OpenYurt's two charts and how convert installs them: the helm CLI (see
// docs/design.md for why not the Helm SDK), one release per chart in the
// convert namespace, labelled so that revert knows them as its own.
const (
	ReleaseYurtManager = "yurt-manager"
	ReleaseYurthub     = "yurthub"
	// DefaultChartRepo is OpenYurt's published chart repository.
	DefaultChartRepo = "https://openyurtio.github.io/openyurt-helm"
	// releaseLabel marks the Helm releases convert made (helm --labels).
	releaseLabelKey   = "managed-by"
	releaseLabelValue = "yurtctl"
	// DefaultYurtManagerControllers is the chart's default controller list
	// ("-nodelifecycle,*") without yurt-node-conversion-controller: that
	// controller converts and reverts nodes by their labels with
	// node-servant Jobs (it cordons the node meanwhile), which is what
	// yurtctl convert and yurtadm join do here; both at once would fight.
	DefaultYurtManagerControllers = "-nodelifecycle,-yurtnodeconversion,*"
	// maxChartArchive bounds what an archive may unpack to.
	maxChartArchive = 64 << 20
)

// chartNames are the charts convert installs, in install order.
var chartNames = []string{ReleaseYurtManager, ReleaseYurthub}

// Source is where OpenYurt's charts come from: a chart repository
// (http(s) or oci) or local charts (a directory holding OpenYurt's
// charts/, or an archive of it, such as the Go module's zip).
type Source struct {
	raw     string
	repo    string
	version string
	local   map[string]string // chart name -> chart directory or .tgz
	tmp     string
}

// openChartSource resolves --chart-source. Local charts are checked
// here, before anything is changed: both charts must be there.
func OpenSource(raw, version string) (*Source, error) {
	s := &Source{raw: raw, version: version}
	switch {
	case raw == "":
		return nil, fmt.Errorf("--chart-source is empty")
	case strings.HasPrefix(raw, "https://"), strings.HasPrefix(raw, "http://"), strings.HasPrefix(raw, "oci://"):
		if version == "" {
			return nil, fmt.Errorf("--chart-version is empty: a chart repository needs the version to install")
		}
		s.repo = strings.TrimRight(raw, "/")
		return s, nil
	}
	fi, err := os.Stat(raw)
	if err != nil {
		return nil, fmt.Errorf("--chart-source %q: %w", raw, err)
	}
	if fi.IsDir() {
		s.local, err = findCharts(raw)
		return s, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("--chart-source %q is neither a directory nor an archive", raw)
	}
	tmp, err := os.MkdirTemp("", "yurtctl-charts-")
	if err != nil {
		return nil, err
	}
	s.tmp = tmp
	if err := unpackCharts(raw, tmp); err != nil {
		s.Close()
		return nil, fmt.Errorf("--chart-source %q: %w", raw, err)
	}
	if s.local, err = findCharts(tmp); err != nil {
		s.Close()
		return nil, fmt.Errorf("--chart-source %q: %w", raw, err)
	}
	return s, nil
}

// Close removes what an archive was unpacked to.
func (s *Source) Close() {
	if s != nil && s.tmp != "" {
		_ = os.RemoveAll(s.tmp)
		s.tmp = ""
	}
}

// String says where the charts come from, for the report.
func (s *Source) String() string {
	if s.repo != "" {
		return fmt.Sprintf("%s (version %s)", s.repo, s.version)
	}
	return s.raw
}

// ref is the chart argument of a helm command for chart name.
func (s *Source) ref(name string) []string {
	switch {
	case strings.HasPrefix(s.repo, "oci://"):
		return []string{s.repo + "/" + name, "--version", s.version}
	case s.repo != "":
		return []string{name, "--repo", s.repo, "--version", s.version}
	}
	return []string{s.local[name]}
}

// findCharts finds both charts under dir: DIR/NAME, DIR/charts/NAME (a
// checkout or the module), a packaged DIR/NAME-<version>.tgz, or, for an
// unpacked archive, one NAME/Chart.yaml anywhere below.
func findCharts(dir string) (map[string]string, error) {
	out := map[string]string{}
	var missing []string
	for _, name := range chartNames {
		var found []string
		for _, c := range []string{filepath.Join(dir, name), filepath.Join(dir, "charts", name)} {
			if isChartDir(c, name) {
				found = append(found, c)
				break
			}
		}
		if len(found) == 0 {
			tgz, _ := filepath.Glob(filepath.Join(dir, name+"-*.tgz"))
			found = append(found, tgz...)
		}
		if len(found) == 0 {
			_ = filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
				if err != nil || !e.IsDir() {
					return nil
				}
				if rel, _ := filepath.Rel(dir, p); strings.Count(rel, string(filepath.Separator)) > 6 {
					return filepath.SkipDir
				}
				if e.Name() == name && isChartDir(p, name) {
					found = append(found, p)
					return filepath.SkipDir
				}
				return nil
			})
		}
		switch len(found) {
		case 0:
			missing = append(missing, name)
		case 1:
			out[name] = found[0]
		default:
			return nil, fmt.Errorf("more than one %s chart under %s: %s", name, dir, strings.Join(found, ", "))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("no %s chart under %s (looked for %s/<name>/Chart.yaml, charts/<name>/Chart.yaml and <name>-<version>.tgz)",
			strings.Join(missing, " or "), dir, dir)
	}
	return out, nil
}

// isChartDir says whether dir is the chart name (its Chart.yaml says so).
func isChartDir(dir, name string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return false
	}
	var c struct {
		Name string `json:"name"`
	}
	return yaml.Unmarshal(data, &c) == nil && c.Name == name
}

// unpackCharts unpacks a .tgz/.tar.gz or .zip archive into dst: regular
// files and directories only, no path outside dst, at most
// maxChartArchive bytes.
func unpackCharts(archive, dst string) error {
	var total int64
	write := func(name string, mode os.FileMode, r io.Reader) error {
		clean := path.Clean("/" + filepath.ToSlash(name))[1:]
		if clean == "" || strings.HasPrefix(name, "/") || strings.Contains("/"+filepath.ToSlash(name)+"/", "/../") {
			return fmt.Errorf("entry %q leaves the archive", name)
		}
		p := filepath.Join(dst, filepath.FromSlash(clean))
		if mode.IsDir() {
			return os.MkdirAll(p, 0o755)
		}
		if !mode.IsRegular() {
			return nil // links and devices are not part of a chart
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		n, err := io.Copy(f, io.LimitReader(r, maxChartArchive-total+1))
		total += n
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil && total > maxChartArchive {
			err = fmt.Errorf("unpacks to more than %d MiB", maxChartArchive>>20)
		}
		return err
	}
	if strings.HasSuffix(archive, ".zip") {
		zr, err := zip.OpenReader(archive)
		if err != nil {
			return err
		}
		defer zr.Close()
		for _, f := range zr.File {
			if !strings.Contains(f.Name, "/"+ReleaseYurtManager+"/") && !strings.Contains(f.Name, "/"+ReleaseYurthub+"/") &&
				!strings.HasPrefix(f.Name, ReleaseYurtManager+"/") && !strings.HasPrefix(f.Name, ReleaseYurthub+"/") {
				continue // a module zip holds the whole of OpenYurt: only the charts are unpacked
			}
			r, err := f.Open()
			if err != nil {
				return err
			}
			err = write(f.Name, f.Mode(), r)
			r.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("not a .tgz, .tar.gz or .zip archive: %w", err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := write(h.Name, h.FileInfo().Mode(), tr); err != nil {
			return err
		}
	}
}

// Helm runs helm with the admin kubeconfig.
type Helm struct {
	bin        string
	kubeconfig string
	namespace  string
	timeout    time.Duration // of an install or upgrade (--wait --atomic)
	run        func(ctx context.Context, bin string, args []string) (stdout, stderr []byte, err error)
}

// releaseTimeout bounds one release's install or upgrade (helm --wait):
// yurt-manager's readiness probe alone waits 60 s, an image pull on a slow
// link more. convert's --timeout is per node and does not apply.
const releaseTimeout = 5 * time.Minute

// NewHelm runs bin with kubeconfig in namespace, through run (ExecHelm
// when nil).
func NewHelm(bin, kubeconfig, namespace string, run func(ctx context.Context, bin string, args []string) ([]byte, []byte, error)) *Helm {
	if run == nil {
		run = ExecHelm
	}
	return &Helm{bin: bin, kubeconfig: kubeconfig, namespace: namespace, timeout: releaseTimeout, run: run}
}

// ExecHelm runs the helm binary.
func ExecHelm(ctx context.Context, bin string, args []string) ([]byte, []byte, error) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.Bytes(), errb.Bytes(), err
}

func (h *Helm) helm(ctx context.Context, args ...string) ([]byte, error) {
	if h.kubeconfig != "" {
		args = append(args, "--kubeconfig", h.kubeconfig)
	}
	out, errb, err := h.run(ctx, h.bin, args)
	if err != nil {
		msg := strings.TrimSpace(string(errb))
		if msg == "" {
			msg = err.Error()
		}
		return out, fmt.Errorf("helm %s: %s", args[0], msg)
	}
	return out, nil
}

// Version is helm's own version; helm 3.13 or newer is needed (--labels).
func (h *Helm) Version(ctx context.Context) (string, error) {
	out, errb, err := h.run(ctx, h.bin, []string{"version", "--short"})
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return "", &cmdutil.Error{Code: cmdutil.ExitPreflight, Err: fmt.Errorf("helm not found (%s)", h.bin),
				Hint: "convert installs OpenYurt's Helm charts with the helm CLI (v3.13 or newer): install it on this machine or pass --helm PATH"}
		}
		return "", fmt.Errorf("%s version: %v %s", h.bin, err, errb)
	}
	v := strings.TrimSpace(string(out))
	var major, minor int
	if _, err := fmt.Sscanf(strings.TrimPrefix(v, "v"), "%d.%d", &major, &minor); err != nil || (major == 3 && minor < 13) || major < 3 {
		return v, &cmdutil.Error{Code: cmdutil.ExitPreflight, Err: fmt.Errorf("helm %s is too old", v),
			Hint: "convert needs helm v3.13 or newer (release labels): upgrade helm or pass --helm PATH"}
	}
	return v, nil
}

// Release is one line of helm list -o json.
type Release struct {
	Name       string `json:"name"`
	Namespace  string `json:"namespace"`
	Revision   string `json:"revision"`
	Status     string `json:"status"`
	Chart      string `json:"chart"`
	AppVersion string `json:"app_version"`
}

// Releases are the releases in the namespace, all of them or only
// convert's (ours).
func (h *Helm) Releases(ctx context.Context, ours bool) (map[string]Release, error) {
	args := []string{"list", "--namespace", h.namespace, "--all", "-o", "json"}
	if ours {
		args = append(args, "--selector", releaseLabelKey+"="+releaseLabelValue)
	}
	out, err := h.helm(ctx, args...)
	if err != nil {
		return nil, err
	}
	var rs []Release
	if err := json.Unmarshal(out, &rs); err != nil {
		return nil, fmt.Errorf("helm list -o json: %w", err)
	}
	m := map[string]Release{}
	for _, r := range rs {
		m[r.Name] = r
	}
	return m, nil
}

// ShowCRDs is the CRDs a chart ships (its crds/ directory).
func (h *Helm) ShowCRDs(ctx context.Context, src *Source, chart string) ([]byte, error) {
	return h.helm(ctx, append([]string{"show", "crds"}, src.ref(chart)...)...)
}

// Template renders a chart as an install with values would.
func (h *Helm) Template(ctx context.Context, src *Source, chart, values string) ([]byte, error) {
	return h.helm(ctx, append(append([]string{"template", chart}, src.ref(chart)...),
		"--namespace", h.namespace, "--skip-crds", "--values", values)...)
}

// Upgrade installs or upgrades the release chart with values; CRDs are
// convert's (ensureCRDs), not the release's.
func (h *Helm) Upgrade(ctx context.Context, src *Source, chart, values string, postRender []string) ([]byte, error) {
	args := append(append([]string{"upgrade", "--install", chart}, src.ref(chart)...),
		"--namespace", h.namespace, "--skip-crds", "--values", values,
		"--labels", releaseLabelKey+"="+releaseLabelValue, "--history-max", "5",
		"--wait", "--atomic", "--timeout", h.timeout.String())
	if len(postRender) > 0 {
		args = append(args, "--post-renderer", postRender[0])
		for _, a := range postRender[1:] {
			args = append(args, "--post-renderer-args", a)
		}
	}
	return h.helm(ctx, args...)
}

// Uninstall removes a release and what it created.
func (h *Helm) Uninstall(ctx context.Context, release string) error {
	_, err := h.helm(ctx, "uninstall", release, "--namespace", h.namespace, "--wait", "--timeout", "3m")
	return err
}

// manifestObject is what convert reads of one rendered object.
type manifestObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

// splitDocs splits a YAML stream into its non-empty documents.
func splitDocs(stream []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		if d := bytes.TrimSpace(cur.Bytes()); len(d) > 0 && !onlyComments(d) {
			docs = append(docs, append([]byte(nil), cur.Bytes()...))
		}
		cur.Reset()
	}
	for _, line := range bytes.SplitAfter(stream, []byte("\n")) {
		if t := bytes.TrimRight(line, " \t\r\n"); bytes.Equal(t, []byte("---")) || bytes.HasPrefix(t, []byte("--- ")) {
			flush()
			continue
		}
		cur.Write(line)
	}
	flush()
	return docs
}

func onlyComments(doc []byte) bool {
	for _, l := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' {
			return false
		}
	}
	return true
}

// renderedObjects lists kind/name of a rendered stream, sorted.
func renderedObjects(stream []byte) ([]manifestObject, error) {
	var out []manifestObject
	for _, d := range splitDocs(stream) {
		var o manifestObject
		if err := yaml.Unmarshal(d, &o); err != nil {
			return nil, err
		}
		if o.Kind != "" {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Metadata.Name < out[j].Metadata.Name
	})
	return out, nil
}
