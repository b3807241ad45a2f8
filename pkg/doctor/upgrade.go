package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/kube"
	"github.com/yurtadm/yurtadm/pkg/version"
	"github.com/yurtadm/yurtadm/pkg/yurthub"
	"github.com/yurtadm/yurtadm/templates"
)

// `yurtadm upgrade yurthub` applies, on this node, the yurthub upgrade the
// cluster's YurtStaticSet asks for with the OTA strategy (yurtctl
// convert's default): yurt-manager marks the node's yurt-hub mirror pod
// PodNeedUpgrade when the YurtStaticSet's template changes. yurthub's own
// OTA endpoint (POST 127.0.0.1:10267/openyurt.io/v1/namespaces/<ns>/pods/
// <pod>/upgrade) copies the ConfigMap's manifest verbatim, and the
// template OpenYurt's v1.7.0 chart renders carries one cluster-wide
// --nodepool-name, empty by default: yurthub v1.7.0 then exits at start
// ("validate options: node-pool-name is empty", measured on the harness).
// So the command renders the new template for this node the way join
// does (templates.RenderFromStaticSet: the node's server address, working
// mode, namespace, pool and bootstrap file from its current manifest, and
// its own flags the template does not set), keeps the manifest it
// replaces, writes the new one, and waits until the new yurthub is healthy
// and ready and its mirror pod carries the template's hash (the
// YurtStaticSet counts the node as upgraded). If not within --wait, the
// kept manifest is put back (kubelet runs the old yurthub again) and the
// operator is told how to roll the YurtStaticSet back.

const (
	// podNeedUpgrade is the mirror pod condition yurt-manager's
	// YurtStaticSet controller sets for OTA (OpenYurt v1.7.0).
	podNeedUpgrade corev1.PodConditionType = "PodNeedUpgrade"
	// yssConfigMapPrefix names the ConfigMap holding a YurtStaticSet's
	// rendered manifest.
	yssConfigMapPrefix = "yurt-static-set-"
	// upgradeBackup keeps the manifest an upgrade replaces.
	upgradeBackup = constants.OpenYurtDir + "/yurthub.yaml.before-upgrade"
)

// upgradeResult is the -o json output of yurtadm upgrade yurthub.
type upgradeResult struct {
	Node     string `json:"node"`
	Pod      string `json:"pod"`
	From     string `json:"from"`
	To       string `json:"to,omitempty"`
	Pending  bool   `json:"pending"`
	Upgraded bool   `json:"upgraded"`
	// RolledBack is set when the new yurthub did not come up and the old
	// manifest was put back.
	RolledBack bool   `json:"rolledBack,omitempty"`
	TookMillis int64  `json:"tookMillis,omitempty"`
	Message    string `json:"message"`
}

// NewUpgradeCommand returns `yurtadm upgrade` with its yurthub subcommand.
func NewUpgradeCommand(s cmdutil.IOStreams) *cobra.Command {
	return newUpgradeCommand(s, realDeps(), os.Geteuid)
}

func newUpgradeCommand(s cmdutil.IOStreams, dp deps, geteuid func() int) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "upgrade",
		Short: "Upgrade the OpenYurt components of this node",
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	o := &options{output: cmdutil.OutputText, hostRoot: "/", timeout: 10 * time.Second}
	var dryRun bool
	wait := 3 * time.Minute
	hub := &cobra.Command{
		Use:   "yurthub",
		Short: "Apply the yurthub upgrade the cluster's YurtStaticSet asks this node for (OTA)",
		Long: `With the OTA upgrade strategy (yurtctl convert's default), a change of the
yurt-hub YurtStaticSet's image on the control plane ('yurtctl convert phase
control-plane --yurthub-image <new>') reaches a node when the node asks for
it. This command asks for it on this node, and checks what happens:

  1. the node's yurt-hub mirror pod says PodNeedUpgrade, and the image
     the YurtStaticSet wants is in the container runtime (pulled if it can
     be; an air-gapped node loads it with 'ctr -n k8s.io images import');
  2. the current manifest is kept in ` + upgradeBackup + `;
  3. the YurtStaticSet's manifest is rendered for this node as join does
     (its server address, working mode, namespace, pool and bootstrap file,
     and its own flags the template does not set) and written; kubelet
     starts the new yurthub;
  4. the command waits until the new yurthub answers healthz and readyz
     and its mirror pod carries the template's hash.

yurthub's own OTA endpoint is not used: it copies the template verbatim,
and the template of OpenYurt v1.7.0's chart has an empty --nodepool-name,
which yurthub v1.7.0 refuses to start with.

If the new yurthub is not healthy within --wait, the kept manifest is put
back, kubelet runs the old yurthub again, and the command exits 4 saying how
to set the YurtStaticSet's image back. It reads the mirror pod and the
YurtStaticSet's ConfigMap through yurthub, so run it with the cloud
reachable.`,
		Example: `  # Is an upgrade pending, and to what?
  sudo yurtadm upgrade yurthub --dry-run

  # Apply it
  sudo yurtadm upgrade yurthub`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cmdutil.Usagef("'yurtadm upgrade yurthub' takes flags only", "unexpected argument %q", args[0])
			}
			return nil
		},
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			return runUpgrade(ctx, s, o, dp, dryRun, wait, geteuid)
		},
	}
	fs := hub.Flags()
	fs.DurationVar(&o.timeout, flagTimeout, o.timeout, "How long each request or command may take")
	fs.DurationVar(&wait, flagWait, wait, "How long to wait for the new yurthub to be healthy and ready before putting the old one back")
	fs.StringVarP(&o.output, flagOutput, "o", o.output, "Output format: text or json (both on stdout)")
	fs.StringVar(&o.nodeName, flagNodeName, "", "This node's name (default: as doctor finds it)")
	fs.StringVar(&o.criSocket, flagCRISocket, "", "Container runtime socket (default: the one found)")
	fs.BoolVar(&dryRun, flagDryRun, false, "Say whether an upgrade is pending and to which image; change nothing")
	fs.StringVar(&o.hostRoot, flagHostRoot, o.hostRoot, "Directory that stands for / (for tests)")
	_ = fs.MarkHidden(flagHostRoot)
	cmd.AddCommand(hub)
	return cmd
}

func runUpgrade(ctx context.Context, s cmdutil.IOStreams, o *options, dp deps, dryRun bool, wait time.Duration, geteuid func() int) error {
	if _, err := validate(o); err != nil {
		return err
	}
	if wait <= 0 {
		return cmdutil.Usagef("pass a positive duration, e.g. --"+flagWait+" 3m", "--%s %s is not positive", flagWait, wait)
	}
	if !dryRun && geteuid() != 0 {
		return &cmdutil.Error{Code: cmdutil.ExitPreflight, Err: errors.New("yurtadm upgrade yurthub replaces a static pod manifest and must run as root"),
			Hint: "run it with sudo, or pass --" + flagDryRun + " to see what is pending"}
	}
	log := s.Narration(o.output)
	d := newDoctor(ctx, o, dp)
	res := upgradeResult{Node: d.nodeName()}
	finish := func(err error) error {
		if o.output == cmdutil.OutputJSON {
			if perr := s.PrintJSON(res); perr != nil && err == nil {
				err = perr
			}
		} else if res.Message != "" {
			fmt.Fprintln(s.Out, res.Message)
		}
		return err
	}
	m, err := d.yurthubManifest()
	if err != nil || m == nil {
		if err == nil {
			err = fmt.Errorf("%s is missing", constants.YurthubManifest)
		}
		return cmdutil.WithHint(err, cmdutil.ExitPreflight, "this node runs no yurthub static pod: join it with 'yurtadm join'")
	}
	ns := m.pod.Namespace
	if ns == "" {
		ns = "kube-system"
	}
	res.From = m.container.Image
	res.Pod = m.pod.Name + "-" + res.Node
	if !d.hubHealthy() {
		return finish(cmdutil.WithHint(errors.New("yurthub does not answer its healthz"), cmdutil.ExitPreflight,
			"an upgrade goes through yurthub: see 'yurtadm doctor' first"))
	}
	cl, err := kube.New(&rest.Config{Host: d.dp.proxyURL, Timeout: o.timeout, UserAgent: "yurtadm-upgrade/" + version.Get().GitVersion})
	if err != nil {
		return finish(err)
	}
	pctx, cancel := d.timeout()
	pod, err := cl.CoreV1().Pods(ns).Get(pctx, res.Pod, metav1.GetOptions{})
	cancel()
	if err != nil {
		return finish(cmdutil.WithHint(fmt.Errorf("read the mirror pod %s/%s through yurthub: %w", ns, res.Pod, err), cmdutil.ExitError,
			"yurthub's upgrade needs the cloud: run it once the node reaches the API server"))
	}
	res.Pending = needsUpgrade(pod)
	pctx, cancel = d.timeout()
	cm, err := cl.CoreV1().ConfigMaps(ns).Get(pctx, yssConfigMapPrefix+m.pod.Name, metav1.GetOptions{})
	cancel()
	if err != nil {
		return finish(cmdutil.WithHint(fmt.Errorf("read the YurtStaticSet's manifest (ConfigMap %s/%s%s): %w", ns, yssConfigMapPrefix, m.pod.Name, err),
			cmdutil.ExitError, "this cluster has no YurtStaticSet "+m.pod.Name+": install OpenYurt's yurthub chart with 'yurtctl convert phase control-plane'"))
	}
	res.To, err = manifestImage(cm)
	if err != nil {
		return finish(err)
	}
	if !res.Pending {
		res.Message = fmt.Sprintf("yurthub on %s is up to date with its YurtStaticSet (%s); no upgrade is pending", res.Node, res.From)
		return finish(nil)
	}
	log.Logf("upgrade", "YurtStaticSet %s/%s asks %s to move yurthub from %s to %s", ns, m.pod.Name, res.Node, res.From, res.To)
	if err := d.ensureImage(res.To, dryRun); err != nil {
		return finish(err)
	}
	if dryRun {
		res.Message = fmt.Sprintf("would upgrade yurthub on %s from %s to %s", res.Node, res.From, res.To)
		return finish(nil)
	}

	// Keep what is replaced, then ask yurthub.
	old, err := d.h.FS.ReadFile(constants.YurthubManifest)
	if err != nil {
		return finish(err)
	}
	if err := d.h.FS.MkdirAll(constants.OpenYurtDir, 0o700); err != nil {
		return finish(err)
	}
	if err := d.h.FS.WriteFileAtomic(upgradeBackup, old, 0o600); err != nil {
		return finish(fmt.Errorf("keep the current manifest: %w", err))
	}
	newManifest, kept, err := renderForNode(cm, m)
	if err != nil {
		return finish(cmdutil.WithHint(err, cmdutil.ExitError, "nothing was changed; check the YurtStaticSet's template ('kubectl -n "+ns+" get yss "+m.pod.Name+" -o yaml')"))
	}
	for _, k := range kept {
		log.Logf("upgrade", "kept this node's %s, which the YurtStaticSet's template does not set", k)
	}
	start := time.Now()
	oldIDs := map[string]bool{}
	if all, err := d.containers(); err == nil {
		for _, c := range hubContainers(all) {
			oldIDs[c.ID] = true
		}
	}
	if err := d.h.FS.WriteFileAtomic(constants.YurthubManifest, newManifest, 0o600); err != nil {
		return finish(cmdutil.WithHint(fmt.Errorf("write %s: %w", constants.YurthubManifest, err), cmdutil.ExitError,
			"the old manifest is unchanged or in "+upgradeBackup))
	}
	hash := cm.Annotations[staticPodHashAnnotation]
	log.Logf("upgrade", "wrote %s for %s; waiting up to %s for the new yurthub", constants.YurthubManifest, res.To, wait)
	if d.waitUpgraded(ctx, cl, ns, res.Pod, res.To, hash, oldIDs, wait) {
		res.Upgraded, res.TookMillis = true, time.Since(start).Milliseconds()
		res.Message = fmt.Sprintf("yurthub on %s runs %s, healthy and ready (%s); the replaced manifest is kept in %s",
			res.Node, res.To, time.Since(start).Round(100*time.Millisecond), upgradeBackup)
		return finish(nil)
	}
	// Put the old yurthub back.
	log.Logf("upgrade", "yurthub %s is not healthy and ready after %s: putting %s back", res.To, wait, res.From)
	if err := d.h.FS.WriteFileAtomic(constants.YurthubManifest, old, 0o600); err != nil {
		return finish(cmdutil.WithHint(fmt.Errorf("put the old manifest back: %w", err), cmdutil.ExitError,
			"copy "+upgradeBackup+" to "+constants.YurthubManifest+" by hand"))
	}
	res.RolledBack = true
	back := d.waitHealthy(ctx, wait)
	res.Message = fmt.Sprintf("yurthub %s did not become healthy and ready on %s within %s; the old manifest (%s) is back", res.To, res.Node, wait, res.From)
	if !back {
		res.Message += ", but yurthub is not healthy yet either: see 'yurtadm doctor'"
	}
	return finish(&cmdutil.Error{Code: cmdutil.ExitTimeout, Err: errors.New(res.Message),
		Hint: "on the control plane, set the YurtStaticSet's image back: 'yurtctl convert phase control-plane --yurthub-image " + res.From + "'"})
}

// needsUpgrade tells whether yurt-manager marked the pod for an OTA upgrade.
func needsUpgrade(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == podNeedUpgrade {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// manifestImage is the yurt-hub image of the manifest a YurtStaticSet's
// ConfigMap holds.
func manifestImage(cm *corev1.ConfigMap) (string, error) {
	for _, data := range cm.Data {
		var pod corev1.Pod
		if err := yaml.Unmarshal([]byte(data), &pod); err != nil {
			return "", fmt.Errorf("ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
		}
		for _, c := range pod.Spec.Containers {
			if c.Name == constants.YurthubContainerName {
				return c.Image, nil
			}
		}
	}
	return "", fmt.Errorf("ConfigMap %s/%s holds no %s container", cm.Namespace, cm.Name, constants.YurthubContainerName)
}

// ensureImage makes sure the runtime has image, pulling it unless dryRun.
func (d *doctor) ensureImage(image string, dryRun bool) error {
	if _, err := d.crictl("inspecti", "-q", image); err == nil {
		return nil
	}
	if dryRun {
		return nil
	}
	ctx, cancel := context.WithTimeout(d.ctx, 5*time.Minute)
	defer cancel()
	real, err := d.runtimeEndpoint()
	if err != nil {
		return err
	}
	if out, err := d.h.Exec.CommandContext(ctx, "crictl", "--runtime-endpoint", real, "pull", image).CombinedOutput(); err != nil {
		return cmdutil.WithHint(fmt.Errorf("the new yurthub image %s is not in the runtime and cannot be pulled: %v: %s", image, err, strings.TrimSpace(string(out))),
			cmdutil.ExitPreflight, "load it first (an archive from 'yurtadm images save' on a connected machine: 'ctr -n k8s.io images import <file>'); nothing was changed")
	}
	return nil
}

// waitUpgraded waits until a yurt-hub container that was not there before
// runs (the manifest naming image), yurthub answers healthz and readyz,
// and the mirror pod carries the template's hash (when it has one).
func (d *doctor) waitUpgraded(ctx context.Context, cl kube.Interface, ns, pod, image, hash string, oldIDs map[string]bool, timeout time.Duration) bool {
	err := wait.PollUntilContextTimeout(ctx, healthPoll, timeout, true, func(context.Context) (bool, error) {
		d.once = map[string]*sync.Once{} // read everything again
		return d.newHubServing(image, oldIDs) && d.mirrorHash(cl, ns, pod) == hash, nil
	})
	return err == nil
}

// newHubServing tells whether the manifest names image and a new yurt-hub
// container runs and answers healthz and readyz.
func (d *doctor) newHubServing(image string, oldIDs map[string]bool) bool {
	m, err := d.yurthubManifest()
	if err != nil || m == nil || m.container.Image != image {
		return false
	}
	all, err := d.containers()
	if err != nil {
		return false
	}
	for _, c := range hubContainers(all) {
		if !oldIDs[c.ID] && c.State == stateRunning {
			h := d.get(d.dp.serveURL+"/v1/healthz", 1024)
			r := d.get(d.dp.serveURL+"/v1/readyz", 1024)
			return h.err == nil && h.status == http.StatusOK && r.err == nil && r.status == http.StatusOK
		}
	}
	return false
}

// mirrorHash is the static-pod hash on the mirror pod; "?" when the pod
// cannot be read, so that it never equals a template without a hash.
func (d *doctor) mirrorHash(cl kube.Interface, ns, pod string) string {
	ctx, cancel := d.timeout()
	defer cancel()
	p, err := cl.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		return "?"
	}
	return p.Annotations[staticPodHashAnnotation]
}

// staticPodHashAnnotation is where the YurtStaticSet controller keeps the
// template's hash, on its ConfigMap and on each static pod.
const staticPodHashAnnotation = "openyurt.io/static-pod-hash"

// nodeOwnedFlags are yurthub's flags whose values are this node's, not the
// template's: join sets them per node.
var nodeOwnedFlags = []string{"--server-addr", "--working-mode", "--namespace", "--nodepool-name", "--bootstrap-file"}

// renderForNode renders the YurtStaticSet's manifest (the ConfigMap's one
// entry) for this node: the node-owned flags from the current manifest,
// and the current manifest's other flags the template does not set (the
// operator's --yurthub-extra-arg at join), which it reports.
func renderForNode(cm *corev1.ConfigMap, cur *hubManifest) ([]byte, []string, error) {
	var data string
	for _, v := range cm.Data {
		data = v
	}
	var tmpl corev1.Pod
	if err := yaml.Unmarshal([]byte(data), &tmpl); err != nil {
		return nil, nil, fmt.Errorf("ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	var tmplCmd []string
	for _, c := range tmpl.Spec.Containers {
		if c.Name == constants.YurthubContainerName {
			tmplCmd = c.Command
		}
	}
	var args, kept []string
	for _, a := range cur.container.Command[1:] {
		name, _, _ := strings.Cut(a, "=")
		if !strings.HasPrefix(name, "--") {
			continue
		}
		owned := false
		for _, f := range nodeOwnedFlags {
			owned = owned || f == name
		}
		_, inTemplate := yurthub.ArgValue(tmplCmd, name)
		switch {
		case owned:
			args = append(args, a)
		case !inTemplate && !hasBareFlag(tmplCmd, name):
			args = append(args, a)
			kept = append(kept, a)
		}
	}
	out, err := templates.RenderFromStaticSet(templates.FromStaticSet{Manifest: []byte(data), Args: args})
	return out, kept, err
}

// hasBareFlag tells whether cmd has name without a value ("--flag").
func hasBareFlag(cmd []string, name string) bool {
	for _, a := range cmd {
		if a == name {
			return true
		}
	}
	return false
}

// CheckYurthubUpgrade is the doctor check that compares the node's yurthub
// with its YurtStaticSet.
const CheckYurthubUpgrade = "yurthub-upgrade"

func (d *doctor) checkYurthubUpgrade() Finding {
	const name = CheckYurthubUpgrade
	m, err := d.yurthubManifest()
	if err != nil || m == nil {
		return skip(name, "no yurthub manifest to compare with its YurtStaticSet")
	}
	cl, _, err := d.cloud()
	if err != nil {
		return skip(name, "the YurtStaticSet is read from the cloud, which cannot be reached")
	}
	ns := m.pod.Namespace
	if ns == "" {
		ns = "kube-system"
	}
	ctx, cancel := d.timeout()
	defer cancel()
	cmName := yssConfigMapPrefix + m.pod.Name
	cm, err := cl.CoreV1().ConfigMaps(ns).Get(ctx, cmName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return ok(name, "the cluster has no YurtStaticSet "+m.pod.Name+": this node's yurthub ("+m.container.Image+") is its own to upgrade",
			"ConfigMap "+ns+"/"+cmName+" not found")
	case err != nil:
		return skip(name, "cannot read the YurtStaticSet's template", err.Error())
	}
	want, err := manifestImage(cm)
	if err != nil {
		return warn(name, "the YurtStaticSet's template cannot be read", "see 'kubectl -n "+ns+" get yss "+m.pod.Name+" -o yaml'", err.Error())
	}
	pod := m.pod.Name + "-" + d.nodeName()
	p, err := cl.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		return skip(name, "cannot read the mirror pod "+ns+"/"+pod, err.Error())
	}
	ev := []string{fmt.Sprintf("this node runs %s; YurtStaticSet %s/%s asks for %s (template hash %s, the pod's %s)",
		m.container.Image, ns, m.pod.Name, want, cm.Annotations[staticPodHashAnnotation], p.Annotations[staticPodHashAnnotation])}
	if needsUpgrade(p) {
		return warn(name, "an upgrade of yurthub to "+want+" is pending on this node (PodNeedUpgrade)",
			"apply it with 'sudo yurtadm upgrade yurthub' (docs/upgrade.md)", ev...)
	}
	return ok(name, "yurthub is what its YurtStaticSet asks for", ev...)
}
