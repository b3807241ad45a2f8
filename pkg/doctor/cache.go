package doctor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/yurtadm/yurtadm/pkg/constants"
)

// cachedComponents are yurthub v1.7.0's default cache agents (by the
// User-Agent before its first "/"), and the container names they run as.
var cachedComponents = []struct{ agent, container string }{
	{"kubelet", ""},
	{"kube-proxy", "kube-proxy"},
	{"flanneld", "kube-flannel"},
	{"coredns", "coredns"},
	{"raven-agent-ds", "raven-agent"},
	{"yurttunnel-agent", "yurt-tunnel-agent"},
	{"yurthub", ""},
}

// cacheDir is yurthub's --disk-cache-path.
func (d *doctor) cacheDir() string {
	m, _ := d.yurthubManifest()
	return path.Clean(m.arg("disk-cache-path", constants.YurthubCacheDir))
}

// countFiles counts the objects cached below a real directory.
func countFiles(dir string) int {
	n := 0
	_ = filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && !strings.HasPrefix(e.Name(), "tmp_") {
			n++
		}
		return nil
	})
	return n
}

func (d *doctor) checkCacheComponents() Finding {
	const name = CheckCacheComponents
	dir := d.cacheDir()
	entries, err := d.h.FS.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fail(name, dir+" does not exist: yurthub has cached nothing, so nothing on this node survives a cloud outage",
			"kubelet must talk through yurthub: see the kubelet-kubeconfig and yurthub-healthz checks")
	}
	if err != nil {
		return skip(name, "cannot read "+dir, err.Error())
	}
	have := map[string]int{}
	for _, e := range entries {
		if e.IsDir() && e.Name() != "_internal" {
			have[e.Name()] = countFiles(d.h.FS.Path(path.Join(dir, e.Name())))
		}
	}
	var ev []string
	for _, c := range sortedKeys(have) {
		ev = append(ev, fmt.Sprintf("%s/%s: %d objects", dir, c, have[c]))
	}
	if _, found := have["kubelet"]; !found {
		return fail(name, "yurthub has no cache for kubelet: kubelet does not talk through yurthub, so its pods do not restart while the cloud is unreachable",
			"see the kubelet-kubeconfig check", ev...)
	}
	// Components running here whose requests yurthub never saw.
	running := map[string]bool{}
	if ctrs, err := d.containers(); err == nil {
		for _, c := range ctrs {
			if c.State == stateRunning {
				running[c.Metadata.Name] = true
			}
		}
	}
	var missing []string
	for _, c := range cachedComponents {
		if _, found := have[c.agent]; !found && c.container != "" && running[c.container] {
			missing = append(missing, fmt.Sprintf("%s (container %s)", c.agent, c.container))
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		return warn(name, "running here without a cache in yurthub: "+strings.Join(missing, ", ")+
			": they talk to the API server directly and stop working when the cloud is unreachable",
			"recreate their pods so that they get yurthub's address (see the pods-bypassing-yurthub check), or point their kubeconfig at "+constants.YurthubProxyURL, ev...)
	}
	return ok(name, fmt.Sprintf("yurthub caches %d %s", len(have), plural(len(have), "component", "components")), ev...)
}

// kubeletUserAgent is the User-Agent doctor lists Services with to see
// them as kubelet does: yurthub picks its filters by the client's name.
const kubeletUserAgent = "kubelet/yurtadm-doctor"

// kubeServiceCachePaths are where yurthub keeps the default/kubernetes
// Service on disk. yurthub v1.7.0 serves Services to kubelet from its
// multiplexer, which caches them under multiplexer-proxy-<node> as the
// cloud has them and rewrites them on the way out; older yurthubs cached
// kubelet's (rewritten) copy under kubelet/, in the layout
// <resource>.<version>.<group> or, before that, <resource>.
func kubeServiceCachePaths(node string) (multiplexer []string, kubelet []string) {
	return []string{"multiplexer-proxy-" + node + "/services.v1.core/default/kubernetes"},
		[]string{"kubelet/services.v1.core/default/kubernetes", "kubelet/services/default/kubernetes"}
}

// serviceAddress reads the clusterIP and https port of a Service.
func serviceAddress(svc *corev1.Service) string {
	port := ""
	for _, sp := range svc.Spec.Ports {
		if sp.Name == "https" {
			port = fmt.Sprint(sp.Port)
		}
	}
	return svc.Spec.ClusterIP + ":" + port
}

// kubeletView lists the Services through yurthub as kubelet does and
// returns default/kubernetes as kubelet gets it. yurthub's multiplexer
// answers this from its cache while the cloud is unreachable.
func (d *doctor) kubeletView() (*corev1.Service, error) {
	ctx, cancel := d.timeout()
	defer cancel()
	url := d.dp.proxyURL + "/api/v1/services"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", kubeletUserAgent)
	req.Header.Set("Accept", "application/json")
	resp, err := d.dp.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %v", url, unwrapURLError(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d %s", url, resp.StatusCode, strings.TrimSpace(string(b[:min(len(b), 300)])))
	}
	var list corev1.ServiceList
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("GET %s: %v", url, err)
	}
	for i := range list.Items {
		if list.Items[i].Namespace == "default" && list.Items[i].Name == "kubernetes" {
			return &list.Items[i], nil
		}
	}
	return nil, fmt.Errorf("GET %s: no default/kubernetes among %d Services", url, len(list.Items))
}

const filterFix = "yurthub's masterservice filter did not rewrite it: make sure the manifest does not disable it " +
	"(--disabled-resource-filters, --enable-resource-filter=false), then restart yurthub and kubelet"

func (d *doctor) checkCacheKubeService() Finding {
	const name = CheckCacheKubeService
	m, _ := d.yurthubManifest()
	wantIP, wantPort := m.serviceAddress()
	want := wantIP + ":" + wantPort
	offline := "pods started while the cloud is unreachable get no API server address"

	// On disk: is it cached at all, so that kubelet gets it offline?
	mux, old := kubeServiceCachePaths(d.nodeName())
	var ev []string
	cached := false
	for _, k := range append(mux, old...) {
		p := path.Join(d.cacheDir(), k)
		b, err := d.h.FS.ReadFile(p)
		if err != nil {
			continue
		}
		var svc corev1.Service
		if err := json.Unmarshal(b, &svc); err != nil {
			ev = append(ev, fmt.Sprintf("%s: %v", p, err))
			continue
		}
		cached = true
		got := serviceAddress(&svc)
		ev = append(ev, fmt.Sprintf("%s: %s", p, got))
		if strings.HasPrefix(k, "kubelet/") && got != want {
			// An older yurthub caches kubelet's copy after its filters.
			return fail(name, "kubelet's cached default/kubernetes Service is "+got+", not yurthub's "+want+
				": pods created on this node reach the API server directly (InClusterConfig) and fail while the cloud is unreachable",
				filterFix, ev...)
		}
	}
	if !cached {
		var looked []string
		for _, k := range append(mux, old...) {
			looked = append(looked, path.Join(d.cacheDir(), k))
		}
		return fail(name, "yurthub has not cached the default/kubernetes Service, so "+offline,
			"kubelet must talk through yurthub (see the kubelet-kubeconfig check); it lists Services right after it starts",
			append(ev, "looked for "+strings.Join(looked, ", "))...)
	}

	// Live: what does kubelet get?
	if !d.hubHealthy() {
		return warn(name, "default/kubernetes is cached, but yurthub does not answer, so what kubelet gets cannot be checked",
			"get yurthub running (see the yurthub-healthz check)", ev...)
	}
	svc, err := d.kubeletView()
	if err != nil {
		return warn(name, "default/kubernetes is cached, but listing Services through yurthub as kubelet failed",
			"read yurthub's log: 'crictl logs $(crictl ps -q --name yurt-hub)'", append(ev, err.Error())...)
	}
	got := serviceAddress(svc)
	ev = append(ev, fmt.Sprintf("listed through yurthub as kubelet: default/kubernetes is %s", got))
	if got != want {
		return fail(name, "kubelet gets default/kubernetes as "+got+", not yurthub's "+want+
			": pods created on this node reach the API server directly (InClusterConfig) and fail while the cloud is unreachable",
			filterFix, ev...)
	}
	return ok(name, "default/kubernetes is cached, and kubelet gets it as yurthub's "+want, ev...)
}
