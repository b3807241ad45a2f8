package doctor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
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

// kubeServiceCacheKeys are where yurthub stores kubelet's copy of the
// default/kubernetes Service: <component>/<resource>.<version>.<group>/...
// in the storage's enhancement mode (a cache started by v1.x), or
// <component>/<resource>/... in the older layout.
var kubeServiceCacheKeys = []string{"kubelet/services.v1.core/default/kubernetes", "kubelet/services/default/kubernetes"}

func (d *doctor) checkCacheKubeService() Finding {
	const name = CheckCacheKubeService
	m, _ := d.yurthubManifest()
	wantIP, wantPort := m.serviceAddress()
	want := wantIP + ":" + wantPort
	var p string
	var b []byte
	for _, k := range kubeServiceCacheKeys {
		p = path.Join(d.cacheDir(), k)
		var err error
		if b, err = d.h.FS.ReadFile(p); err == nil {
			break
		}
	}
	if b == nil {
		return fail(name, "yurthub has not cached the default/kubernetes Service for kubelet, so pods started offline get no API server address",
			"kubelet must talk through yurthub (see the kubelet-kubeconfig check); it lists Services right after it starts",
			"looked for "+strings.Join(kubeServiceCacheKeys, " and ")+" below "+d.cacheDir())
	}
	var svc corev1.Service
	if err := json.Unmarshal(b, &svc); err != nil {
		return warn(name, "the cached default/kubernetes Service cannot be read", "restart yurthub to rewrite its cache", fmt.Sprintf("%s: %v", p, err))
	}
	port := ""
	for _, sp := range svc.Spec.Ports {
		if sp.Name == "https" {
			port = fmt.Sprint(sp.Port)
		}
	}
	got := svc.Spec.ClusterIP + ":" + port
	ev := []string{fmt.Sprintf("%s: clusterIP %s, port https %s", p, svc.Spec.ClusterIP, port)}
	if got != want {
		return fail(name, "the cached default/kubernetes Service is "+got+", not yurthub's "+want+
			": pods created on this node reach the API server directly (InClusterConfig) and fail while the cloud is unreachable",
			"yurthub's masterservice filter did not rewrite it: make sure the manifest does not disable it (--disabled-resource-filters, --enable-resource-filter=false), restart yurthub, then kubelet", ev...)
	}
	return ok(name, "kubelet's cached default/kubernetes Service is yurthub's "+want, ev...)
}
