package doctor

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/yurtadm/yurtadm/pkg/constants"
)

// checkPods reads the environment the runtime really gave each running
// container: kubelet sets KUBERNETES_SERVICE_HOST/PORT from the
// default/kubernetes Service when it creates the container, so a pod
// created while kubelet bypassed yurthub (or before yurthub ran) keeps the
// API server's real address until it is recreated. The pod spec does not
// show this; the container's environment does.
func (d *doctor) checkPods() Finding {
	const name = CheckPodsBypass
	all, err := d.containers()
	if err != nil {
		if errors.Is(err, errCrictlMissing) {
			return skip(name, "cannot read the container runtime", err.Error())
		}
		return skip(name, "cannot list the containers", err.Error())
	}
	var ids []string
	byID := map[string]criContainer{}
	for _, c := range all {
		if c.State == stateRunning && c.Metadata.Name != constants.YurthubContainerName {
			ids = append(ids, c.ID)
			byID[c.ID] = c
		}
	}
	if len(ids) == 0 {
		return ok(name, "no running container besides yurthub")
	}
	list, err := d.inspect(ids...)
	if err != nil {
		return skip(name, "cannot inspect the containers", err.Error())
	}
	m, err := d.yurthubManifest()
	if m == nil {
		// The address kubelet gives pods follows yurthub's flags: with no
		// manifest to read them from, every pod would look wrong.
		why := constants.YurthubManifest + " is missing"
		if err != nil {
			why = err.Error()
		}
		return skip(name, "the address pods should get is unknown without yurthub's manifest (see the "+CheckYurthubManifest+" check)", why)
	}
	wantIP, wantPort := m.serviceAddress()
	var bad []string
	pods := map[string]bool{}
	checked := 0
	for _, in := range list {
		env := in.env()
		host, port := env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]
		if host == "" {
			continue
		}
		checked++
		if host == wantIP && port == wantPort {
			continue
		}
		c := byID[in.Status.ID]
		pod := c.pod()
		if pod == "" {
			pod = "(no pod)"
		}
		pods[pod] = true
		bad = append(bad, fmt.Sprintf("pod %s, container %s (%s): KUBERNETES_SERVICE_HOST=%s KUBERNETES_SERVICE_PORT=%s",
			pod, c.Metadata.Name, c.short(), host, port))
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		var cmds []string
		for _, p := range sortedKeys(pods) {
			if ns, n, found := strings.Cut(p, "/"); found {
				cmds = append(cmds, fmt.Sprintf("kubectl delete pod -n %s %s", ns, n))
			}
		}
		return fail(name, fmt.Sprintf("%d %s on this node %s the API server directly, bypassing yurthub (%s:%s): %s while the cloud is unreachable",
			len(pods), plural(len(pods), "pod", "pods"), plural(len(pods), "reaches", "reach"), wantIP, wantPort,
			plural(len(pods), "it fails", "they fail")),
			"recreate the pods so that kubelet gives them yurthub's address ("+strings.Join(cmds, "; ")+"); their controller starts new ones", bad...)
	}
	return ok(name, fmt.Sprintf("the %d %s with a service environment use yurthub's %s:%s", checked,
		plural(checked, "container", "containers"), wantIP, wantPort))
}
