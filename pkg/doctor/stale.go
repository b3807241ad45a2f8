package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/yurtadm/yurtadm/pkg/kube"
)

// A stale cache entry is an object yurthub keeps on disk that the cloud
// no longer has (deleted, or deleted and created again with a new UID)
// while the node was cut off. After an offline reboot yurthub serves it as
// if it were current (openyurtio/openyurt#2809: a deleted Service's
// ClusterIP and DNS name stay broken on the node). doctor names them when
// the cloud answers; `yurtadm cache repair` removes exactly those files.

// cachedObject is one file of yurthub v1.7's disk cache:
// <component>/<resource>.<version>.<group>/[<namespace>/]<name>.
type cachedObject struct {
	Component string `json:"component"`
	Resource  string `json:"resource"`
	Version   string `json:"version"`
	Group     string `json:"group"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Path is the host path of the file.
	Path string `json:"path"`
	// UID is the object's UID as cached; "" when it cannot be read.
	UID string `json:"uid,omitempty"`
}

func (o cachedObject) String() string {
	obj := o.Name
	if o.Namespace != "" {
		obj = o.Namespace + "/" + o.Name
	}
	return fmt.Sprintf("%s %s %s", o.Component, o.gvr(), obj)
}

// gvr is "services" for the core group, "endpointslices.discovery.k8s.io"
// otherwise (as kubectl names them).
func (o cachedObject) gvr() string {
	if o.Group == "core" || o.Group == "" {
		return o.Resource
	}
	return o.Resource + "." + o.Group
}

// staleObject is a cached object the cloud does not have.
type staleObject struct {
	cachedObject
	// Why is "deleted in the cloud" or "replaced in the cloud (new UID ...)".
	Why string `json:"why"`
}

// staleReport is what a comparison with the cloud found.
type staleReport struct {
	Checked int           `json:"checked"`
	Stale   []staleObject `json:"stale"`
	// Unchecked names what could not be compared, and why.
	Unchecked []string `json:"unchecked,omitempty"`
	// Via is the way to the API server the lists took.
	Via string `json:"via"`
}

// parseCachePath turns a path below the cache directory into an object;
// found is false for what is not an object file of the v1.7 layout.
func parseCachePath(rel string) (o cachedObject, found bool) {
	parts := strings.Split(rel, "/")
	if len(parts) < 3 || len(parts) > 4 || parts[0] == "_internal" || strings.HasPrefix(parts[len(parts)-1], "tmp_") {
		return o, false
	}
	res, rest, ok1 := strings.Cut(parts[1], ".")
	ver, group, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || res == "" || ver == "" || group == "" {
		return o, false
	}
	o = cachedObject{Component: parts[0], Resource: res, Version: ver, Group: group, Name: parts[len(parts)-1]}
	if len(parts) == 4 {
		o.Namespace = parts[2]
	}
	return o, true
}

// cachedObjects lists the objects in yurthub's cache, with their UIDs.
func (d *doctor) cachedObjects() ([]cachedObject, error) {
	entries, err := d.cacheEntries()
	if err != nil {
		return nil, err
	}
	dir := d.cacheDir()
	var out []cachedObject
	for _, e := range entries {
		o, found := parseCachePath(e.rel)
		if !found {
			continue
		}
		o.Path = path.Join(dir, e.rel)
		if b, err := os.ReadFile(d.h.FS.Path(o.Path)); err == nil {
			var meta struct {
				Metadata struct {
					UID string `json:"uid"`
				} `json:"metadata"`
			}
			if json.Unmarshal(b, &meta) == nil {
				o.UID = meta.Metadata.UID
			}
		}
		out = append(out, o)
	}
	return out, nil
}

// listKey is one list request: a resource in a namespace ("" for all or
// for a cluster-scoped resource), maybe with a field selector.
type listKey struct {
	group, version, resource, namespace, fieldSelector string
}

// listFor picks the list that covers o: kubelet caches only its node's
// pods, so they are listed by node, cluster-wide; anything else by
// namespace.
func listFor(o cachedObject, node string) listKey {
	if o.Component == "kubelet" && o.Resource == "pods" && o.Group == "core" {
		return listKey{o.Group, o.Version, o.Resource, "", "spec.nodeName=" + node}
	}
	return listKey{o.Group, o.Version, o.Resource, o.Namespace, ""}
}

// staleCache compares the cache with the cloud. It needs the cloud: the
// error says when it cannot be reached.
func (d *doctor) staleCache() (staleReport, error) {
	cl, via, err := d.cloud()
	if err != nil {
		return staleReport{}, err
	}
	objs, err := d.cachedObjects()
	if err != nil {
		return staleReport{}, err
	}
	rep := staleReport{Via: via}
	node := d.nodeName()
	// A resource cached in many namespaces (kube-proxy's Services) is
	// listed once for all of them.
	namespaces := map[listKey]map[string]bool{}
	for _, o := range objs {
		k := listFor(o, node)
		k.namespace = ""
		if namespaces[k] == nil {
			namespaces[k] = map[string]bool{}
		}
		namespaces[k][o.Namespace] = true
	}
	byList := map[listKey][]cachedObject{}
	var keys []listKey
	for _, o := range objs {
		k := listFor(o, node)
		all := k
		all.namespace = ""
		if len(namespaces[all]) > maxNamespaceLists {
			k = all
		}
		if _, seen := byList[k]; !seen {
			keys = append(keys, k)
		}
		byList[k] = append(byList[k], o)
	}
	unchecked := map[string]int{}
	for _, k := range keys {
		ctx, cancel := d.timeout()
		items, err := cl.ListMeta(ctx, k.group, k.version, k.resource, k.namespace, k.fieldSelector)
		cancel()
		if err != nil {
			why := err.Error()
			switch {
			case apierrors.IsForbidden(err):
				why = "the node may not list them"
			case apierrors.IsNotFound(err):
				why = "the API server does not serve them"
			}
			where := k.resource + "." + k.group
			if k.namespace != "" {
				where += " in " + k.namespace
			}
			unchecked[where+": "+why] += len(byList[k])
			continue
		}
		cloud := map[string]string{}
		for _, it := range items {
			cloud[it.Namespace+"/"+it.Name] = it.UID
		}
		for _, o := range byList[k] {
			rep.Checked++
			uid, found := cloud[o.Namespace+"/"+o.Name]
			switch {
			case !found:
				rep.Stale = append(rep.Stale, staleObject{o, "deleted in the cloud"})
			case o.UID != "" && uid != "" && uid != o.UID:
				rep.Stale = append(rep.Stale, staleObject{o, "replaced in the cloud (cached uid " + o.UID + ", now " + uid + ")"})
			}
		}
	}
	for _, u := range sortedKeys(unchecked) {
		rep.Unchecked = append(rep.Unchecked, fmt.Sprintf("%s (%d cached)", u, unchecked[u]))
	}
	sort.Slice(rep.Stale, func(i, j int) bool { return rep.Stale[i].Path < rep.Stale[j].Path })
	return rep, nil
}

// maxNamespaceLists is how many namespaces of one resource are listed one
// by one before one list of all namespaces is cheaper.
const maxNamespaceLists = 3

// CheckCacheStale is the doctor check that compares the cache with the cloud.
const CheckCacheStale = "cache-stale"

// maxStaleShown bounds the stale objects a finding lists.
const maxStaleShown = 20

func (d *doctor) checkCacheStale() Finding {
	const name = CheckCacheStale
	if _, _, err := d.cloud(); err != nil {
		return skip(name, "the cache is compared with the cloud, which cannot be reached")
	}
	rep, err := d.staleCache()
	if err != nil {
		return skip(name, "cannot read yurthub's cache", err.Error())
	}
	ev := []string{fmt.Sprintf("%d cached objects compared with the cloud through %s", rep.Checked, rep.Via)}
	for _, u := range rep.Unchecked {
		ev = append(ev, "not compared: "+u)
	}
	if len(rep.Stale) == 0 {
		return ok(name, fmt.Sprintf("the %d cached objects compared are all in the cloud", rep.Checked), ev...)
	}
	for i, s := range rep.Stale {
		if i == maxStaleShown {
			ev = append(ev, fmt.Sprintf("... and %d more", len(rep.Stale)-i))
			break
		}
		ev = append(ev, fmt.Sprintf("%s: %s (%s)", s.cachedObject, s.Why, s.Path))
	}
	return warn(name, fmt.Sprintf("%d cached %s no longer in the cloud: after a reboot while cut off, yurthub serves them as current",
		len(rep.Stale), plural(len(rep.Stale), "object is", "objects are")),
		"remove exactly these with 'sudo yurtadm cache repair' (yurthub is stopped for a moment; pods keep running)", ev...)
}

// ListMeta lists a resource's objects as metadata only.
func (c *cloudClients) ListMeta(ctx context.Context, group, version, resource, namespace, fieldSelector string) ([]kube.ObjectMeta, error) {
	return kube.ListMetadata(ctx, c.rest, group, version, resource, namespace, fieldSelector)
}
