package doctor

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/yurtadm/yurtadm/pkg/constants"
)

func (d *doctor) checkManifest() Finding {
	const name = CheckYurthubManifest
	m, err := d.yurthubManifest()
	switch {
	case err != nil:
		return fail(name, "the yurthub static pod manifest cannot be read",
			"rewrite it: run 'yurtadm reset', then 'yurtadm join' again", err.Error())
	case m == nil:
		return fail(name, constants.YurthubManifest+" is missing: kubelet does not run yurthub",
			"join the node with 'yurtadm join' (run 'yurtadm reset' first if it joined before); yurthub runs as a static pod")
	}
	c := m.container
	ev := []string{fmt.Sprintf("image %s, --working-mode=%s, --bootstrap-mode=%s, --nodepool-name=%s, --server-addr=%s",
		c.Image, m.arg("working-mode", "edge"), m.bootstrapMode(), m.arg("nodepool-name", ""), m.arg("server-addr", ""))}
	if m.arg("server-addr", "") == "" {
		return fail(name, "the yurthub manifest has no --server-addr: yurthub does not know the API server",
			"run 'yurtadm reset' and 'yurtadm join' again", ev...)
	}
	if m.arg("nodepool-name", "") == "" {
		return fail(name, "the yurthub manifest has no --nodepool-name, which yurthub v1.7 needs to start",
			"run 'yurtadm reset' and join again with --nodepool-name", ev...)
	}
	return ok(name, constants.YurthubManifest+" is present", ev...)
}

// criContainer is a container as `crictl ps -a -o json` prints it.
type criContainer struct {
	ID       string `json:"id"`
	Metadata struct {
		Name    string `json:"name"`
		Attempt int    `json:"attempt"`
	} `json:"metadata"`
	State     string            `json:"state"`
	CreatedAt protoInt          `json:"createdAt"`
	Labels    map[string]string `json:"labels"`
}

func (c criContainer) short() string {
	if len(c.ID) > 13 {
		return c.ID[:13]
	}
	return c.ID
}

func (c criContainer) pod() string {
	ns, n := c.Labels["io.kubernetes.pod.namespace"], c.Labels["io.kubernetes.pod.name"]
	if n == "" {
		return ""
	}
	return ns + "/" + n
}

const (
	stateRunning = "CONTAINER_RUNNING"
	stateExited  = "CONTAINER_EXITED"
)

// protoInt reads an int64 that protojson writes as a string.
type protoInt int64

func (p *protoInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	*p = protoInt(v)
	return err
}

// flexTime reads a time that crictl inspect writes as RFC 3339 (and
// protojson as nanoseconds in a string).
type flexTime struct{ time.Time }

func (t *flexTime) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" || s == "0" {
		return nil
	}
	if ns, err := strconv.ParseInt(s, 10, 64); err == nil {
		t.Time = time.Unix(0, ns)
		return nil
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	t.Time = v
	return err
}

// set reports whether t holds a real time (crictl writes year 1 for none).
func (t flexTime) set() bool { return !t.IsZero() && t.Year() > 1 }

// containers lists every container the runtime knows, running or not.
func (d *doctor) containers() ([]criContainer, error) {
	d.do("containers", func() {
		out, err := d.crictl("ps", "-a", "-o", "json")
		if err != nil {
			d.ctrsErr = err
			return
		}
		var list struct {
			Containers []criContainer `json:"containers"`
		}
		if err := json.Unmarshal(out, &list); err != nil {
			d.ctrsErr = fmt.Errorf("parse the output of crictl ps: %w", err)
			return
		}
		d.ctrs = list.Containers
	})
	return d.ctrs, d.ctrsErr
}

// inspected is the part of `crictl inspect -o json` doctor reads.
type inspected struct {
	Status struct {
		ID         string   `json:"id"`
		State      string   `json:"state"`
		StartedAt  flexTime `json:"startedAt"`
		FinishedAt flexTime `json:"finishedAt"`
		ExitCode   int      `json:"exitCode"`
		Reason     string   `json:"reason"`
		Message    string   `json:"message"`
	} `json:"status"`
	Info struct {
		// RuntimeSpec is the OCI spec (containerd, CRI-O).
		RuntimeSpec struct {
			Process struct {
				Env []string `json:"env"`
			} `json:"process"`
		} `json:"runtimeSpec"`
		// Config is the CRI container config (containerd).
		Config struct {
			Envs []struct {
				Key   string `json:"key"`
				Value string `json:"value"`
			} `json:"envs"`
		} `json:"config"`
	} `json:"info"`
}

// env returns the container's environment.
func (in inspected) env() map[string]string {
	env := map[string]string{}
	for _, e := range in.Info.Config.Envs {
		env[e.Key] = e.Value
	}
	for _, kv := range in.Info.RuntimeSpec.Process.Env {
		if k, v, found := strings.Cut(kv, "="); found {
			env[k] = v
		}
	}
	return env
}

// inspect runs `crictl inspect -o json` on ids; crictl prints one object
// for one id and an array for several.
func (d *doctor) inspect(ids ...string) ([]inspected, error) {
	out, err := d.crictl(append([]string{"inspect", "-o", "json"}, ids...)...)
	if err != nil {
		return nil, err
	}
	var list []inspected
	if t := strings.TrimSpace(string(out)); strings.HasPrefix(t, "[") {
		err = json.Unmarshal(out, &list)
	} else {
		var one inspected
		err = json.Unmarshal(out, &one)
		list = []inspected{one}
	}
	if err != nil {
		return nil, fmt.Errorf("parse the output of crictl inspect: %w", err)
	}
	return list, nil
}

// hubContainers are the yurt-hub containers, newest first.
func hubContainers(all []criContainer) []criContainer {
	var hub []criContainer
	for _, c := range all {
		if c.Metadata.Name == constants.YurthubContainerName {
			hub = append(hub, c)
		}
	}
	sort.SliceStable(hub, func(i, j int) bool {
		if hub[i].Metadata.Attempt != hub[j].Metadata.Attempt {
			return hub[i].Metadata.Attempt > hub[j].Metadata.Attempt
		}
		return hub[i].CreatedAt > hub[j].CreatedAt
	})
	return hub
}

// logSigns are lines in yurthub's log that name a cause, and its fix.
var logSigns = []struct {
	match, cause, fix string
}{
	{"certificate signed by unknown authority", "yurthub's certificates were issued by another cluster's CA",
		"stale certificates from an earlier join: run 'yurtadm reset', then join again"},
	{"x509: certificate has expired", "a certificate yurthub uses has expired",
		"see the yurthub-certificates check; with an expired bootstrap token too, renew it with 'yurtadm token renew'"},
	{"waiting for the controller-manager to sign", "yurthub waits for its certificate signing request to be approved",
		"nothing approves yurthub's CSRs: deploy yurt-manager in the cluster (it approves them), or approve by hand with 'kubectl certificate approve <csr>'"},
	{"hub certificates preparation failed", "yurthub gave up waiting for its certificates",
		"its CSR was never approved or never created: see the yurthub-csr check"},
	{"couldn't retrieve bootstrap config", "yurthub's bootstrap token was refused",
		"the bootstrap token is invalid or expired: create one with 'kubeadm token create' and run 'yurtadm token renew'"},
	{"could not retrieve bootstrap config", "yurthub's bootstrap token was refused",
		"the bootstrap token is invalid or expired: create one with 'kubeadm token create' and run 'yurtadm token renew'"},
	{"file doesn't exist", "a file yurthub needs is missing",
		"in kubeletcertificate mode yurthub needs /etc/kubernetes/kubelet.conf, /etc/kubernetes/pki/ca.crt and kubelet's client certificate: check that kubelet finished its TLS bootstrap"},
	{"address already in use", "another process holds one of yurthub's ports",
		"find it with 'ss -ltnp' (ports 10261, 10267, 10268) and stop it"},
	{"bootstrap token and bootstrap file are empty", "yurthub has neither a bootstrap token nor a bootstrap file",
		"token mode needs --bootstrap-file=/var/lib/yurthub/bootstrap-hub.conf and that file: run 'yurtadm reset' and join again"},
	{"unknown flag", "yurthub was started with a flag it does not know",
		"the manifest has a flag this yurthub image does not take: compare " + constants.YurthubManifest + " with the image's 'yurthub --help', or run 'yurtadm reset' and join again"},
	{"node-pool-name is empty", "yurthub was started without --nodepool-name",
		"yurthub v1.7 needs --nodepool-name: run 'yurtadm reset' and join again with --nodepool-name"},
}

// diagnoseLog returns the cause and fix of the last known line in lines.
func diagnoseLog(lines []string) (cause, fix string) {
	for i := len(lines) - 1; i >= 0; i-- {
		for _, s := range logSigns {
			if strings.Contains(lines[i], s.match) {
				return s.cause, s.fix
			}
		}
	}
	return "", ""
}

// logTail returns the last n lines of a container's log (both streams).
func (d *doctor) logTail(id string, n int) []string {
	if _, err := d.h.Exec.LookPath("crictl"); err != nil {
		return nil
	}
	real, err := d.runtimeEndpoint()
	if err != nil {
		return nil
	}
	ctx, cancel := d.timeout()
	defer cancel()
	out, _ := d.h.Exec.CommandContext(ctx, "crictl", "--runtime-endpoint", real, "logs", "--tail", strconv.Itoa(n), id).CombinedOutput()
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		// crictl's own complaint about its missing config file.
		if strings.Contains(l, "crictl.yaml") {
			continue
		}
		if l = strings.TrimSpace(l); l != "" {
			if len(l) > 240 {
				l = l[:240] + "..."
			}
			lines = append(lines, l)
		}
	}
	return lines
}

// logLines are the lines of yurthub's log a finding shows; logScanLines
// the lines read to find the cause.
const (
	logLines     = 8
	logScanLines = 200
)

// causeLine is the index of the last line in lines that names a known
// cause, or -1.
func causeLine(lines []string) int {
	for i := len(lines) - 1; i >= 0; i-- {
		for _, s := range logSigns {
			if strings.Contains(lines[i], s.match) {
				return i
			}
		}
	}
	return -1
}

func (d *doctor) checkContainer() Finding {
	const name = CheckYurthubContainer
	all, err := d.containers()
	if err != nil {
		if errors.Is(err, errCrictlMissing) {
			return skip(name, "cannot read the container runtime", err.Error())
		}
		return warn(name, "cannot list the containers", "check that the container runtime runs ('crictl info')", err.Error())
	}
	hub := hubContainers(all)
	if len(hub) == 0 {
		return fail(name, "no yurt-hub container: kubelet has not started the yurthub static pod",
			"check that kubelet runs ('systemctl status kubelet', its log) and that its staticPodPath is "+constants.ManifestsDir+
				"; a missing image shows as an ErrImagePull event in kubelet's log")
	}
	c := hub[0]
	ev := []string{fmt.Sprintf("container %s (pod %s), state %s, attempt %d", c.short(), c.pod(), c.State, c.Metadata.Attempt)}
	if c.State == stateRunning {
		if c.Metadata.Attempt < 3 {
			return ok(name, "yurthub's container is running", ev...)
		}
		// Restarting: look at the previous run's end.
		if len(hub) > 1 {
			ev = append(ev, d.exitEvidence(hub[1])...)
		}
		cause, fix := diagnoseLog(ev)
		if fix == "" {
			cause, fix = "kubelet restarts it", "read its earlier log: 'crictl logs --previous "+c.short()+"' (the liveness probe is /v1/healthz on 10267)"
		}
		return warn(name, fmt.Sprintf("yurthub's container is running but has restarted %d times: %s", c.Metadata.Attempt, cause), fix, ev...)
	}
	ev = append(ev, d.exitEvidence(c)...)
	cause, fix := diagnoseLog(ev)
	if fix == "" {
		cause, fix = "see its log", "read the whole log with 'crictl logs "+c.short()+"'"
	}
	return fail(name, fmt.Sprintf("yurthub's container is not running (%s): %s", strings.TrimPrefix(c.State, "CONTAINER_"), cause), fix, ev...)
}

// exitEvidence describes how container c ended, with the end of its log.
func (d *doctor) exitEvidence(c criContainer) []string {
	var ev []string
	if st, err := d.inspect(c.ID); err == nil && len(st) > 0 {
		s := st[0].Status
		line := fmt.Sprintf("container %s exited with code %d", c.short(), s.ExitCode)
		if s.Reason != "" {
			line += ", reason " + s.Reason
		}
		if s.FinishedAt.set() {
			line += ", at " + s.FinishedAt.UTC().Format(time.RFC3339)
		}
		if s.Message != "" {
			line += ": " + strings.TrimSpace(s.Message)
		}
		ev = append(ev, line)
	} else if err != nil {
		ev = append(ev, err.Error())
	}
	// The cause can be well above the end: yurthub prints its usage after
	// a flag error. The last lines are shown, and the line that names the
	// cause when it is earlier.
	if tail := d.logTail(c.ID, logScanLines); len(tail) > 0 {
		shown := tail[max(0, len(tail)-logLines):]
		if i := causeLine(tail); i >= 0 && i < len(tail)-logLines {
			shown = append([]string{tail[i], "..."}, shown...)
		}
		ev = append(ev, "log: "+strings.Join(shown, "\nlog: "))
	}
	return ev
}

func (d *doctor) checkHealthz() Finding {
	const name = CheckYurthubHealthz
	p := d.healthz()
	switch {
	case p.err != nil:
		return fail(name, "yurthub does not answer on "+d.dp.serveURL+": it is not running",
			"see the yurthub-container check for why; kubelet reaches the API server only through yurthub", p.String())
	case p.status != http.StatusOK:
		return fail(name, fmt.Sprintf("yurthub's healthz answers HTTP %d", p.status),
			"read yurthub's log: 'crictl logs $(crictl ps -q --name yurt-hub)'", p.String())
	}
	return ok(name, "yurthub answers /v1/healthz with "+strings.TrimSpace(p.body), p.String())
}

// readyzSigns map yurthub's readyz answers (v1.7.0) to their fix.
var readyzSigns = []struct{ match, fix string }{
	{"certificates are not ready", "yurthub has no usable certificate yet: see the yurthub-certificates and yurthub-csr checks"},
	{"yurt-hub-cfg configmap is not synced", "yurthub cannot read the ConfigMap kube-system/yurt-hub-cfg: create it and the RBAC for it with 'yurtctl convert' (phase control-plane) on the control plane"},
	{"resources needed by filters are not synced", "yurthub's filters cannot read what they need (NodePools, Services): install the NodePool CRD and the node's NodePool with 'yurtctl convert' (phase control-plane)"},
}

func (d *doctor) checkReadyz() Finding {
	const name = CheckYurthubReadyz
	if !d.hubHealthy() {
		return skip(name, "yurthub is not healthy, so not asked whether it is ready")
	}
	p := d.get(d.dp.serveURL+"/v1/readyz", 4096)
	switch {
	case p.err != nil:
		return fail(name, "yurthub does not answer /v1/readyz", "read yurthub's log: 'crictl logs $(crictl ps -q --name yurt-hub)'", p.String())
	case p.status != http.StatusOK:
		fix := "read yurthub's log: 'crictl logs $(crictl ps -q --name yurt-hub)'"
		for _, s := range readyzSigns {
			if strings.Contains(p.body, s.match) {
				fix = s.fix
			}
		}
		return fail(name, "yurthub is not ready: "+strings.TrimSpace(p.body), fix, p.String())
	}
	return ok(name, "yurthub is ready to proxy requests", p.String())
}
