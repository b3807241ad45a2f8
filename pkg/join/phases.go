package join

import (
	"context"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/discovery"
	"github.com/yurtadm/yurtadm/pkg/kube"
	"github.com/yurtadm/yurtadm/pkg/workflow"
	"github.com/yurtadm/yurtadm/pkg/yurthub"
	"github.com/yurtadm/yurtadm/templates"
)

// Phase names, in the order they run.
const (
	PhasePreflight      = "preflight"
	PhaseDiscovery      = "discovery"
	PhaseKubeletFiles   = "kubelet-files"
	PhaseYurthub        = "yurthub"
	PhaseKubeletStart   = "kubelet-start"
	PhaseWaitYurthub    = "wait-yurthub"
	PhaseKubeletYurthub = "kubelet-yurthub"
	PhaseWaitReady      = "wait-ready"
	PhaseImages         = "images"
)

// phases returns the join workflow. inherit lists the flags each phase
// command accepts.
func phases(inherit []string) []workflow.Phase {
	p := func(name, short string, run func(Data) error) workflow.Phase {
		return workflow.Phase{Name: name, Short: short, InheritFlags: inherit,
			Run: func(c workflow.RunData) error { return run(c.(Data)) }}
	}
	return []workflow.Phase{
		p(PhasePreflight, "Check the host before anything is written", runPreflight),
		p(PhaseDiscovery, "Find the cluster, verify the token's signature and pin its CA", runDiscovery),
		p(PhaseImages, "Load --image-archive files into the container runtime; check yurthub's and the pause image are there (pull if not)", runImages),
		p(PhaseKubeletFiles, "Write the cluster CA, kubelet's client certificate (or bootstrap kubeconfig), config and flags", runKubeletFiles),
		p(PhaseYurthub, "Write the yurthub static pod manifest", runYurthub),
		p(PhaseKubeletStart, "Start kubelet through the init system", runKubeletStart),
		p(PhaseWaitYurthub, "Wait until yurthub reports healthy on 127.0.0.1:10267", runWaitYurthub),
		p(PhaseKubeletYurthub, "Point kubelet at yurthub's proxy on 127.0.0.1:10261 and restart it, unless it started there", runKubeletYurthub),
		p(PhaseWaitReady, "Wait until the Node is Ready, read through yurthub", runWaitReady),
	}
}

func runDiscovery(d Data) error {
	res, err := d.Discovery()
	if err != nil {
		return err
	}
	o := d.Options()
	pin := "pinned by --" + flagCACertHash
	if o.UnsafeSkipCAVerification {
		pin = "NOT pinned (--" + flagUnsafeSkipCA + ")"
	}
	cluster := "Cluster"
	if res.ClusterName != "" {
		cluster += " " + res.ClusterName
	}
	d.IO().Logf("discovery", "%s at %s, Kubernetes %s; token signature valid; CA %s %s",
		cluster, res.Server, res.KubernetesVersion, res.CAHash, pin)
	return checkKubeletSkew(d, res.KubernetesVersion)
}

func runKubeletFiles(d Data) error {
	res, err := d.Discovery()
	if err != nil {
		return err
	}
	o, w, h := d.Options(), d.Files(), d.Host()
	criEP, err := d.CRIEndpoint()
	if err != nil {
		return cmdutil.WithHint(err, cmdutil.ExitError, "pass --cri-socket")
	}
	cfg, err := kubeletConfig(res.KubeletConfig, criEP)
	if err != nil {
		return err
	}
	type file struct {
		path string
		data []byte
		perm uint32
	}
	steps := []file{{constants.CACertPath, res.CAData, 0o644}, {constants.KubeletConfigFile, cfg, 0o644}}
	// kubelet's client certificate asked for here, kubelet starts once,
	// already pointed at yurthub; otherwise it bootstraps with the token
	// and kubelet-yurthub restarts it onto yurthub.
	requestServingCertEarly(d)
	if onHub := d.ServingCertWait() > 0 && kubeletCertFirst(d); onHub {
		d.KubeletOnYurthub(true)
		kc, err := yurthubKubeletKubeconfig()
		if err != nil {
			return err
		}
		// The kubeconfig kubelet's own TLS bootstrap would have written:
		// yurthub's kubeletcertificate mode requires it and talks to the
		// API server with it.
		direct, err := kubeletDirectKubeconfig(res.Server, res.CAData)
		if err != nil {
			return err
		}
		steps = append(steps, file{constants.KubeletKubeconfig, direct, 0o600}, file{constants.OpenYurtKubeletConfig, kc, 0o600},
			file{constants.KubeletFlagsEnvFile, hubKubeletFlags(o), 0o644})
	} else {
		boot, err := bootstrapKubeconfig(res.ClusterName, res.Server, res.CAData, o.Token)
		if err != nil {
			return err
		}
		steps = append(steps, file{constants.KubeletBootstrapConfig, boot, 0o600},
			file{constants.KubeletFlagsEnvFile, kubeletFlags(o.NodeName, o.nodeLabels()), 0o644})
	}
	for _, s := range steps {
		if err := w.WriteFile(s.path, s.data, fileMode(s.perm)); err != nil {
			return err
		}
		d.IO().Logf("kubelet-files", "Wrote %s", s.path)
	}
	if h.FS.Exists(constants.KubeletDropInFile) || h.FS.Exists(constants.KubeletDropInFileUsr) {
		d.IO().Logf("kubelet-files", "Kept the kubelet drop-in shipped with the kubelet package")
		return nil
	}
	kubeletPath, err := h.Exec.LookPath("kubelet")
	if err != nil {
		return cmdutil.WithHint(fmt.Errorf("kubelet not found in system path"), cmdutil.ExitError,
			"install the kubelet package of your cluster's Kubernetes version")
	}
	dropIn, err := templates.RenderKubeletDropIn(templates.KubeletDropIn{KubeletPath: kubeletPath})
	if err != nil {
		return err
	}
	if err := w.WriteFile(constants.KubeletDropInFile, dropIn, 0o644); err != nil {
		return err
	}
	d.IO().Logf("kubelet-files", "Wrote %s", constants.KubeletDropInFile)
	return w.markDropIn()
}

// kubeletCertFirst asks for kubelet's client certificate; false (said
// why) when kubelet has to bootstrap it itself.
func kubeletCertFirst(d Data) bool {
	if err := preseedKubeletClientCert(d); err != nil {
		d.IO().Logf("kubelet-files", "kubelet bootstraps its client certificate itself and is restarted onto yurthub then (%v)", err)
		return false
	}
	return true
}

// hubKubeletFlags is kubeadm-flags.env for a kubelet that talks to the
// cluster through yurthub. The empty --bootstrap-kubeconfig= (after the
// drop-in's) turns TLS bootstrap off: with it on, kubelet finds no client
// certificate in a plain-HTTP kubeconfig (client-go drops TLS settings for
// http://), bootstraps again and overwrites the kubeconfig with the API
// server's address, bypassing yurthub. OpenYurt's node-servant does the
// same.
func hubKubeletFlags(o *Options) []byte {
	return kubeletFlags(o.NodeName, o.nodeLabels(), "--kubeconfig="+constants.OpenYurtKubeletConfig, "--bootstrap-kubeconfig=")
}

func runYurthub(d Data) error {
	res, err := d.Discovery()
	if err != nil {
		return err
	}
	o, w := d.Options(), d.Files()
	manifest, err := d.HubManifest()
	if err != nil {
		return err
	}
	if o.YurthubBootstrapMode == bootstrapModeToken {
		hub, err := bootstrapKubeconfig(res.ClusterName, res.Server, res.CAData, o.Token)
		if err != nil {
			return err
		}
		if err := w.WriteFile(constants.YurthubBootstrapFile, hub, 0o600); err != nil {
			return err
		}
		d.IO().Logf("yurthub", "Wrote %s", constants.YurthubBootstrapFile)
	}
	if d.ServingCertWait() > 0 {
		if err := preseedServingCert(d); err != nil {
			d.IO().Logf("yurthub", "yurthub asks for its serving certificate itself (%v)", err)
		}
	}
	if err := w.WriteFile(constants.YurthubManifest, manifest, 0o644); err != nil {
		return err
	}
	d.IO().Logf("yurthub", "Wrote the yurthub static pod %s (%s mode, bootstrap %s, nodepool %s) from %s",
		constants.YurthubManifest, o.NodeType, o.YurthubBootstrapMode, o.NodePoolName, d.Outcome().YurthubTemplate)
	return nil
}

// renderHub renders yurthub's static pod from the cluster's own template
// when it has one: the ConfigMap yurt-static-set-<yurt-hub|yurt-hub-cloud>
// that OpenYurt's YurtStaticSet controller keeps (OpenYurt's yurthub chart
// lets bootstrap tokens read exactly those two), so the node runs the
// yurthub version and flags the cluster chose. join sets the node's own
// values on it: the API server address it joined by, its mode, pool and
// bootstrap. Without a template (or with one join cannot use) the
// built-in template is used; Outcome says which and why.
func renderHub(d Data, res *discovery.Result) ([]byte, error) {
	o := d.Options()
	builtin := func(why string) ([]byte, error) {
		d.Outcome().YurthubTemplate = "the built-in template (" + why + ")"
		return templates.RenderYurthub(templates.Yurthub{
			Image:         o.YurthubImage,
			Namespace:     o.Namespace,
			ServerAddr:    res.Server,
			NodePoolName:  o.NodePoolName,
			WorkingMode:   o.NodeType,
			BootstrapMode: o.YurthubBootstrapMode,
			Verbosity:     yurthubVerbosity,
			ExtraArgs:     o.YurthubExtraArgs,
		})
	}
	yss := staticSetName(o)
	t, why, err := d.StaticSetTemplate()
	if err != nil {
		d.IO().Logf("yurthub", "WARNING: %v", err)
	}
	if t == nil {
		return builtin(why)
	}
	// The template's bootstrap mode is the cluster's choice unless this
	// join chose one.
	mode := t.BootstrapMode
	if !o.bootstrapModeGiven {
		o.YurthubBootstrapMode = mode
	}
	if o.YurthubBootstrapMode != mode || (mode != bootstrapModeToken && mode != constants.YurthubBootstrapModeKCE) {
		return builtin(fmt.Sprintf("--%s=%s, the cluster's template is for %s mode", flagBootstrapMode, o.YurthubBootstrapMode, mode))
	}
	bootstrapFile := ""
	if mode == bootstrapModeToken {
		bootstrapFile = constants.YurthubBootstrapFile
	}
	manifest, err := templates.RenderFromStaticSet(templates.FromStaticSet{Manifest: t.Manifest, Image: templates.TemplateImage(o.YurthubImage),
		Args: templates.NodeArgs(res.Server, o.NodeType, o.Namespace, o.NodePoolName, bootstrapFile, o.YurthubExtraArgs)})
	if err != nil {
		d.IO().Logf("yurthub", "WARNING: cannot use the cluster's yurthub template (ConfigMap %s): %v", t.Where, err)
		return builtin("the cluster's template in ConfigMap " + t.Where + " is unusable")
	}
	d.Outcome().YurthubTemplate = "the cluster's YurtStaticSet " + o.Namespace + "/" + yss + " (ConfigMap " + t.Where + ")"
	return manifest, nil
}

// staticSetName is the YurtStaticSet whose template a node of o's type
// runs.
func staticSetName(o *Options) string {
	if o.NodeType == constants.NodeTypeCloud {
		return constants.YurthubCloudStaticSet
	}
	return constants.YurthubStaticSet
}

func runKubeletStart(d Data) error {
	if d.DryRun() {
		fmt.Fprintf(d.IO().Out, "[dryrun] would reload the init system and start (or restart) %s\n", constants.KubeletService)
		return nil
	}
	in := d.Host().Init
	start := in.ServiceStart
	if in.ServiceIsActive(constants.KubeletService) {
		start = in.ServiceRestart
	}
	d.KubeletStarted(true)
	if err := start(constants.KubeletService); err != nil {
		return cmdutil.WithHint(fmt.Errorf("start kubelet: %w", err), cmdutil.ExitError,
			"check that the kubelet package is installed ('systemctl status kubelet', 'journalctl -u kubelet')")
	}
	if err := in.Enable(constants.KubeletService); err != nil {
		d.IO().Logf("kubelet-start", "WARNING: could not enable kubelet at boot: %v (run '%s')", err, in.EnableCommand(constants.KubeletService))
	}
	if d.KubeletOnYurthub(false) {
		d.IO().Logf("kubelet-start", "Started kubelet, pointed at yurthub's proxy %s; it runs the yurthub static pod", constants.YurthubProxyURL)
		return nil
	}
	d.IO().Logf("kubelet-start", "Started kubelet; it bootstraps its client certificate and runs the yurthub static pod")
	return nil
}

func runWaitYurthub(d Data) error {
	if d.DryRun() {
		fmt.Fprintf(d.IO().Out, "[dryrun] would wait for %s to answer OK\n", d.YurthubHealthzURL())
		return nil
	}
	d.IO().Logf("wait-yurthub", "Waiting up to %s for yurthub at %s", d.Options().Timeout.Duration, d.YurthubHealthzURL())
	ctx, cancel := context.WithTimeout(d.Context(), d.Options().Timeout.Duration)
	defer cancel()
	last, err := yurthub.WaitHealthy(ctx, d.HTTP(), d.YurthubHealthzURL(), d.PollInterval())
	if err != nil && d.Context().Err() != nil {
		return fmt.Errorf("interrupted while waiting for yurthub (last: %s): %w", last, d.Context().Err())
	}
	if err != nil {
		return &cmdutil.Error{Code: cmdutil.ExitTimeout,
			Err: fmt.Errorf("yurthub did not become healthy within %s (last: %s)", d.Options().Timeout.Duration, last),
			Hint: "look at 'crictl ps -a --name yurt-hub' and 'crictl logs <id>'; 'connection refused' means yurthub is not running; " +
				"'waiting for certificate' means its CSR is Pending: yurt-manager must run in the cluster to approve it (see docs/join.md)"}
	}
	// Ready too: until its filters' informers and yurt-hub-cfg are
	// synced yurthub refuses to proxy ("resources needed by filters are
	// not synced"), and each kubelet request refused then pushes kubelet's
	// next node-registration attempt further out (a back-off from 100 ms
	// doubling to 7 s).
	readyz := strings.TrimSuffix(d.YurthubHealthzURL(), "healthz") + "readyz"
	last, err = yurthub.WaitHealthy(ctx, d.HTTP(), readyz, d.PollInterval())
	if err != nil && d.Context().Err() != nil {
		return fmt.Errorf("interrupted while waiting for yurthub to be ready (last: %s): %w", last, d.Context().Err())
	}
	if err != nil {
		return &cmdutil.Error{Code: cmdutil.ExitTimeout,
			Err:  fmt.Errorf("yurthub was healthy but not ready within %s (last: %s)", d.Options().Timeout.Duration, last),
			Hint: "yurthub cannot sync what it needs from the cluster: run 'yurtadm doctor' (yurthub-readyz)"}
	}
	d.IO().Logf("wait-yurthub", "yurthub is healthy and ready")
	return nil
}

func runKubeletYurthub(d Data) error {
	o, w := d.Options(), d.Files()
	if d.KubeletOnYurthub(false) {
		return kickKubelet(d)
	}
	kc, err := yurthubKubeletKubeconfig()
	if err != nil {
		return err
	}
	if !d.DryRun() {
		// kubelet must hold its client certificate before its kubeconfig
		// names it, or it would bootstrap again.
		h := d.Host()
		if err := poll(d, func(context.Context) (bool, error) { return h.FS.Exists(constants.KubeletClientCert), nil }); err != nil {
			return &cmdutil.Error{Code: cmdutil.ExitTimeout, Err: fmt.Errorf("kubelet has no client certificate at %s", constants.KubeletClientCert),
				Hint: "kubelet's TLS bootstrap did not finish: check 'kubectl get csr' and kubelet's log"}
		}
	}
	if err := w.WriteFile(constants.OpenYurtKubeletConfig, kc, 0o600); err != nil {
		return err
	}
	if err := w.WriteFile(constants.KubeletFlagsEnvFile, hubKubeletFlags(o), 0o644); err != nil {
		return err
	}
	if d.DryRun() {
		fmt.Fprintf(d.IO().Out, "[dryrun] would restart %s\n", constants.KubeletService)
		return nil
	}
	if err := restartKubelet(d); err != nil {
		return err
	}
	d.IO().Logf("kubelet-yurthub", "kubelet now talks to the cluster through yurthub (%s, kubeconfig %s)",
		constants.YurthubProxyURL, constants.OpenYurtKubeletConfig)
	return nil
}

func runWaitReady(d Data) error {
	if d.DryRun() {
		fmt.Fprintf(d.IO().Out, "[dryrun] would wait for Node %q to be Ready through %s\n", d.Options().NodeName, constants.YurthubProxyURL)
		return nil
	}
	name := d.Options().NodeName
	client, err := d.YurthubClient()
	if err != nil {
		return err
	}
	d.IO().Logf("wait-ready", "Waiting up to %s for Node %q to be Ready", d.Options().Timeout.Duration, name)
	ctx, cancel := context.WithTimeout(d.Context(), d.Options().Timeout.Duration)
	defer cancel()
	// Ready as reported after kubelet's last restart: a Node left by an
	// earlier join still says Ready=True from then.
	last, err := yurthub.WaitNodeReady(ctx, client, name, d.KubeletStartedAt(), d.PollInterval())
	if err != nil && d.Context().Err() != nil {
		return fmt.Errorf("interrupted while waiting for Node %q (last: %s): %w", name, last, d.Context().Err())
	}
	if err != nil {
		return &cmdutil.Error{Code: cmdutil.ExitTimeout,
			Err:  fmt.Errorf("node %q was not Ready within %s (last: %s)", name, d.Options().Timeout.Duration, last),
			Hint: "check the CNI plugin (a node without pod network stays NotReady) and kubelet's log"}
	}
	d.IO().Logf("wait-ready", "Node %q is Ready", name)
	setAutonomy(d, client, name)
	// As kubeadm does once kubelet holds its certificate: the bootstrap
	// token has no use on this node any more (kubelet runs through yurthub
	// with an empty --bootstrap-kubeconfig), so it does not stay on disk.
	if removed, err := d.Host().FS.Remove(constants.KubeletBootstrapConfig); err != nil {
		d.IO().Logf("wait-ready", "WARNING: could not remove %s, which holds the bootstrap token: %v", constants.KubeletBootstrapConfig, err)
	} else if removed {
		d.IO().Logf("wait-ready", "Removed %s (the bootstrap token is no longer needed)", constants.KubeletBootstrapConfig)
	}
	return nil
}

// kickGrace is how long kubelet, started on yurthub, has to register its
// Node once yurthub is ready before join restarts it. Short: yurthub v1.7.0
// is ready about 2.3 s after kubelet starts (its own Service list is
// refused with 429 by its multiplexer while that initialises, and
// retried a second later), when kubelet's registration back-off has
// reached 1.6 s between tries; its next try is then 0.5-1.5 s away, a
// restart registers within 0.5 s (docs/benchmarks.md).
const kickGrace = 100 * time.Millisecond

// kickKubelet handles a kubelet that started on yurthub: it has been
// retrying its node registration while yurthub came up, each refusal
// doubling its wait (100 ms to 7 s). When the Node is not registered
// kickGrace after yurthub became ready, kubelet is restarted: a new
// kubelet registers within about 100 ms, instead of after the rest of the
// back-off.
func kickKubelet(d Data) error {
	if d.DryRun() {
		return nil
	}
	name := d.Options().NodeName
	client, err := d.YurthubClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(d.Context(), kickGrace)
	defer cancel()
	if yurthub.Poll(ctx, d.PollInterval(), func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		return err == nil, nil
	}) == nil {
		d.IO().Logf("kubelet-yurthub", "kubelet talks to the cluster through yurthub (%s, kubeconfig %s) since it started; Node %q is registered",
			constants.YurthubProxyURL, constants.OpenYurtKubeletConfig, name)
		return nil
	}
	if d.Context().Err() != nil {
		return d.Context().Err()
	}
	if err := restartKubelet(d); err != nil {
		return err
	}
	d.IO().Logf("kubelet-yurthub", "kubelet talks to the cluster through yurthub since it started; restarted it so that it registers Node %q now that yurthub is ready, not after its retry back-off", name)
	return nil
}

// restartKubelet restarts kubelet, noted as started by this run before
// (rollback must know) and again after: reports from then on are the
// restarted kubelet's, the old one is gone once the restart returns.
// kubelet-start reloaded the unit files already; since then join writes
// only kubeadm-flags.env, an environment file read at each start.
func restartKubelet(d Data) error {
	d.KubeletStarted(true)
	if err := d.Host().Init.ServiceRestartNoReload(constants.KubeletService); err != nil {
		return fmt.Errorf("restart kubelet: %w", err)
	}
	d.KubeletStarted(true)
	return nil
}

// poll calls cond every PollInterval until it is true, the join timeout
// passes, or the context ends.
func poll(d Data, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(d.Context(), d.Options().Timeout.Duration)
	defer cancel()
	return yurthub.Poll(ctx, d.PollInterval(), cond)
}

// setAutonomy marks an edge node autonomous (node.openyurt.io/autonomy-
// duration), with the node's own credentials through yurthub (the
// NodeRestriction admission lets a node annotate itself). yurt-manager's
// pod-binding controller turns it into the tolerationSeconds of the node's
// pods. A failure is a warning with the command that does it: the node
// has joined.
func setAutonomy(d Data, client kube.Interface, name string) {
	o := d.Options()
	if o.NodeType != constants.NodeTypeEdge || o.AutonomyDuration == autonomyOff {
		return
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, constants.AnnotationAutonomyDur, o.AutonomyDuration)
	ctx, cancel := context.WithTimeout(d.Context(), 15*time.Second)
	defer cancel()
	if _, err := client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		d.IO().Logf("wait-ready", "WARNING: could not set %s=%s on Node %q: %v; run 'kubectl annotate node %s %s=%s' on the control plane",
			constants.AnnotationAutonomyDur, o.AutonomyDuration, name, err, name, constants.AnnotationAutonomyDur, o.AutonomyDuration)
		return
	}
	d.Outcome().Autonomy = o.AutonomyDuration
	d.IO().Logf("wait-ready", "Node %q is autonomous: %s=%s", name, constants.AnnotationAutonomyDur, o.AutonomyDuration)
}
