package convert

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/convert/lock"
	"github.com/yurtadm/yurtadm/pkg/convert/nodestep"
	yversion "github.com/yurtadm/yurtadm/pkg/version"
	"github.com/yurtadm/yurtadm/pkg/yurthub"
)

var listAll = metav1.ListOptions{}

func listOpts(selector string) metav1.ListOptions { return metav1.ListOptions{LabelSelector: selector} }

const kubeadmConfigMap = "kubeadm-config"

// checkKubeadm reads kubeadm-config and checks the cluster's version: at
// least the oldest minor yurtadm supports; a newer one is a warning, not a
// refusal (the old tool's allow-list refused every new release).
func (d *runData) checkKubeadm() error {
	c, err := d.Clients()
	if err != nil {
		return err
	}
	cm, err := c.Kube.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(d.ctx, kubeadmConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &cmdutil.Error{Code: cmdutil.ExitPreflight, Err: fmt.Errorf("kube-system/%s not found: this is not a kubeadm cluster", kubeadmConfigMap),
			Hint: "convert works on clusters made with kubeadm; for others, install OpenYurt with its Helm charts and join nodes with 'yurtadm join'"}
	}
	if err != nil {
		return fmt.Errorf("read kube-system/%s: %w", kubeadmConfigMap, err)
	}
	var cc struct {
		KubernetesVersion    string `json:"kubernetesVersion"`
		ControlPlaneEndpoint string `json:"controlPlaneEndpoint"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["ClusterConfiguration"]), &cc); err != nil || cc.KubernetesVersion == "" {
		return &cmdutil.Error{Code: cmdutil.ExitPreflight, Err: fmt.Errorf("kube-system/%s has no readable ClusterConfiguration.kubernetesVersion (%v)", kubeadmConfigMap, err),
			Hint: "run 'kubeadm init phase upload-config kubeadm' on a control-plane node"}
	}
	v, err := version.ParseGeneric(cc.KubernetesVersion)
	if err != nil {
		return &cmdutil.Error{Code: cmdutil.ExitPreflight, Err: fmt.Errorf("kubernetesVersion %q in kubeadm-config: %w", cc.KubernetesVersion, err)}
	}
	d.version = cc.KubernetesVersion
	built := version.MustParseGeneric(yversion.KubernetesVersion)
	switch {
	case v.Major() != 1 || int(v.Minor()) < yversion.MinKubernetesMinor:
		return &cmdutil.Error{Code: cmdutil.ExitPreflight, Err: fmt.Errorf("Kubernetes %s is older than v1.%d, the oldest this yurtctl supports", cc.KubernetesVersion, yversion.MinKubernetesMinor),
			Hint: "upgrade the cluster with kubeadm first, or use the yurtctl release made for it"}
	case v.Minor() > built.Minor():
		d.add(PhasePreflight, "warning", "Kubernetes %s is newer than %s, which this yurtctl was tested with; going ahead", cc.KubernetesVersion, yversion.KubernetesVersion)
	default:
		d.add(PhasePreflight, "done", "kubeadm cluster, Kubernetes %s", cc.KubernetesVersion)
	}
	return nil
}

func runConvertPreflight(d *runData) error {
	if err := d.checkKubeadm(); err != nil {
		return err
	}
	p, err := d.Plan()
	if err != nil {
		return err
	}
	d.printPlan(p)
	if bad := p.notReady(); len(bad) > 0 {
		return &cmdutil.Error{Code: cmdutil.ExitPreflight, Err: fmt.Errorf("node(s) not Ready: %s", strings.Join(bad, ", ")),
			Hint: "convert restarts kubelet on every edge node and needs each to be Ready before and after; fix them ('kubectl describe node') and run convert again"}
	}
	d.add(PhasePreflight, "done", "all %d node(s) Ready", len(p.Nodes))
	if d.opts.DryRun {
		d.peekLock()
		return nil
	}
	_, err = d.prepare()
	return err
}

// peekLock says, without taking it, whether the lock is free.
func (d *runData) peekLock() {
	c, err := d.Clients()
	if err != nil {
		return
	}
	holder, live, err := lock.Peek(d.ctx, c.Kube, d.opts.Namespace, d.env.Now())
	switch {
	case err == nil && holder == "":
		d.add(PhasePreflight, "would", "take the lock Lease %s/%s (free)", d.opts.Namespace, lock.Name)
	case err == nil && live:
		d.add(PhasePreflight, "warning", "the lock %s/%s is held by %s: a real run would be refused now", d.opts.Namespace, lock.Name, holder)
	default:
		d.add(PhasePreflight, "would", "take over the expired lock Lease %s/%s", d.opts.Namespace, lock.Name)
	}
}

func (d *runData) controlPlaneOptions() ControlPlaneOptions {
	return ControlPlaneOptions{Namespace: d.opts.Namespace,
		NodePools: map[string]string{d.opts.NodePoolName: "Edge", constants.DefaultCloudNodePool: "Cloud"}}
}

func runConvertControlPlane(d *runData) error {
	// Everything that can be wrong with the charts or helm is found before
	// the first change.
	src, err := openChartSource(d.opts.ChartSource, d.opts.ChartVersion)
	if err != nil {
		return cmdutil.WithHint(err, cmdutil.ExitUsage, "pass --"+flagChartSource+" "+DefaultChartRepo+", or a directory or archive holding OpenYurt's yurt-manager and yurthub charts")
	}
	defer src.Close()
	helm := d.helmCLI()
	if !d.opts.DryRun {
		v, err := helm.Version(d.ctx)
		if err != nil {
			return err
		}
		d.add(PhaseControlPlane, "done", "helm %s; charts from %s", v, src)
	}
	if _, err := d.prepare(); err != nil {
		return err
	}
	c, err := d.Clients()
	if err != nil {
		return err
	}
	d.checkControllerManager(c)
	server, err := clusterServer(d.ctx, c.Kube)
	if err != nil {
		return cmdutil.WithHint(err, cmdutil.ExitPreflight, "run 'kubeadm init phase bootstrap-token' on a control-plane node")
	}
	ymValues, err := yurtManagerValues(d.opts.YurtManagerImage, d.opts.YurthubUpgradeWorkerImage)
	if err != nil {
		return err
	}
	hubValues, err := yurthubValues(server, d.opts.YurthubImage, d.opts.NodePoolName)
	if err != nil {
		return err
	}
	if d.opts.DryRun {
		d.add(PhaseControlPlane, "would", "create or update the CRDs of chart %s from %s", ReleaseYurtManager, src)
		d.add(PhaseControlPlane, "would", "helm upgrade --install %s (namespace %s, controllers %s, image %s) and wait for it", ReleaseYurtManager, d.opts.Namespace, DefaultYurtManagerControllers, valueImage(ymValues, "the chart's"))
		d.add(PhaseControlPlane, "would", "helm upgrade --install %s (namespace %s, kubernetesServerAddr %s, image %s, extra yurthub flags %v, upgrade strategy %s, bootstrap mode %s)", ReleaseYurthub, d.opts.Namespace, server, valueImage(hubValues, ""), d.opts.YurthubExtraArgs, d.opts.YurthubUpgradeStrategy, d.opts.YurthubBootstrapMode)
		d.add(PhaseControlPlane, "would", "ensure NodePools %s (Edge) and %s (Cloud)", d.opts.NodePoolName, constants.DefaultCloudNodePool)
		return nil
	}
	tmp, err := os.MkdirTemp("", "yurtctl-values-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	values := map[string]string{}
	for name, v := range map[string]map[string]any{ReleaseYurtManager: ymValues, ReleaseYurthub: hubValues} {
		if values[name], err = writeValues(tmp, name, v); err != nil {
			return err
		}
	}
	fail := func(err error) error {
		return cmdutil.WithHint(err, cmdutil.ExitError, "the phase is safe to run again; 'helm history -n "+d.opts.Namespace+" <release>' shows what Helm did")
	}
	// What the releases will hold, to hand an earlier convert's objects over.
	rendered := map[string][]manifestObject{}
	for _, name := range chartNames {
		out, err := helm.Template(d.ctx, src, name, values[name])
		if err != nil {
			return fail(err)
		}
		if rendered[name], err = renderedObjects(out); err != nil {
			return fail(fmt.Errorf("helm template %s: %w", name, err))
		}
	}
	crds, err := helm.ShowCRDs(d.ctx, src, ReleaseYurtManager)
	if err != nil {
		return fail(err)
	}
	actions, err := ensureCRDs(d.ctx, c.Dynamic, crds)
	for _, a := range actions {
		d.add(PhaseControlPlane, "done", "%s", a)
	}
	if err != nil {
		return fail(err)
	}
	actions, err = migrateLegacy(d.ctx, c.Dynamic, d.opts.Namespace, rendered)
	for _, a := range actions {
		d.add(PhaseControlPlane, "done", "%s", a)
	}
	if err != nil {
		return fail(err)
	}
	for _, name := range chartNames {
		var post []string
		if name == ReleaseYurthub {
			if post, err = d.postRenderer(); err != nil {
				return fail(err)
			}
		}
		start := d.env.Now()
		if err := d.upgradeRelease(helm, src, name, values[name], post); err != nil {
			return fail(err)
		}
		rs, err := helm.Releases(d.ctx, false)
		if err != nil {
			return fail(err)
		}
		r := rs[name]
		d.add(PhaseControlPlane, "done", "Helm release %s/%s: revision %s, chart %s, %s (%s)", d.opts.Namespace, name, r.Revision, r.Chart, r.Status, d.env.Now().Sub(start).Round(time.Second))
	}
	// Nodes that join right after render yurthub from these.
	for _, yss := range []string{constants.YurthubStaticSet, constants.YurthubCloudStaticSet} {
		if err := waitConfigMap(d.ctx, c, d.opts.Namespace, "yurt-static-set-"+yss, time.Minute); err != nil {
			d.add(PhaseControlPlane, "warning", "YurtStaticSet %s/%s: %v; nodes joining now use yurtadm's built-in yurthub template", d.opts.Namespace, yss, err)
		} else {
			d.add(PhaseControlPlane, "done", "YurtStaticSet %s/%s: its template is in ConfigMap yurt-static-set-%s", d.opts.Namespace, yss, yss)
		}
	}
	for name, typ := range d.controlPlaneOptions().NodePools {
		r, err := retryWebhook(d.ctx, func() (string, error) { return ensureNodePool(d.ctx, c.Dynamic, name, typ) })
		if err != nil {
			return fail(fmt.Errorf("NodePool %s: %w", name, err))
		}
		d.add(PhaseControlPlane, "done", "NodePool %s %s", name, r)
	}
	return nil
}

// upgradeRelease installs or upgrades one chart and waits for it (helm
// --wait --atomic: a release that does not become ready is rolled back,
// or, on a first install, removed). yurthub's YurtStaticSets go through
// yurt-manager's webhooks, which may take a moment to answer once its pod
// is ready: that is retried.
func (d *runData) upgradeRelease(helm *helmCLI, src *chartSource, name, values string, post []string) error {
	_, err := retryWebhook(d.ctx, func() (string, error) {
		_, err := helm.Upgrade(d.ctx, src, name, values, post)
		return "", err
	})
	if err != nil && name == ReleaseYurtManager {
		if why := d.yurtManagerPods(); why != "" {
			err = fmt.Errorf("%w; %s", err, why)
		}
	}
	return err
}

// yurtManagerPods says what yurt-manager's pods are doing, for an error.
func (d *runData) yurtManagerPods() string {
	c, err := d.Clients()
	if err != nil {
		return ""
	}
	pods, err := c.Kube.CoreV1().Pods(d.opts.Namespace).List(context.WithoutCancel(d.ctx), listOpts("app.kubernetes.io/name=yurt-manager"))
	if err != nil || len(pods.Items) == 0 {
		return "no yurt-manager pod: 'kubectl -n " + d.opts.Namespace + " describe deployment yurt-manager' says why"
	}
	var s []string
	for _, p := range pods.Items {
		st := string(p.Status.Phase)
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil {
				st += " " + w.Reason + ": " + w.Message
			}
		}
		s = append(s, fmt.Sprintf("pod %s on %q: %s", p.Name, p.Spec.NodeName, st))
	}
	return strings.Join(s, "; ")
}

// waitConfigMap waits until the ConfigMap exists.
func waitConfigMap(ctx context.Context, c Clients, ns, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		_, err := c.Kube.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsNotFound(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ConfigMap %s/%s not written by yurt-manager's yurt-static-set-controller within %s", ns, name, timeout)
		case <-sleep():
		}
	}
}

// retryWebhook runs f again while the API server cannot reach one of
// yurt-manager's webhooks yet (for up to 90 s).
func retryWebhook(ctx context.Context, f func() (string, error)) (string, error) {
	var r string
	var err error
	_ = wait.PollUntilContextTimeout(ctx, webhookRetry, 90*time.Second, true, func(context.Context) (bool, error) {
		r, err = f()
		return err == nil || !webhookNotReady(err), nil
	})
	return r, err
}

// webhookRetry is how often retryWebhook tries again (a variable for tests).
var webhookRetry = 2 * time.Second

func webhookNotReady(err error) bool {
	s := err.Error()
	return strings.Contains(s, "failed calling webhook") || strings.Contains(s, "no endpoints available for service") ||
		strings.Contains(s, "connection refused")
}

func valueImage(v map[string]any, dflt string) string {
	if im, ok := v["image"].(imageValues); ok {
		return im.Registry + "/" + im.Repository + ":" + im.Tag
	}
	return dflt
}

// releaseTimeout bounds one release's install or upgrade (helm --wait):
// yurt-manager's readiness probe alone waits 60 s, an image pull on a slow
// link more. --timeout is per node and does not apply.
const releaseTimeout = 5 * time.Minute

// helmCLI is the helm convert and revert run.
func (d *runData) helmCLI() *helmCLI {
	run := d.env.RunHelm
	if run == nil {
		run = ExecHelm
	}
	return &helmCLI{bin: d.opts.Helm, kubeconfig: d.opts.Kubeconfig, namespace: d.opts.Namespace, timeout: releaseTimeout, run: run}
}

// postRenderer is this binary as Helm's post-renderer of the yurthub
// chart (PostRenderYurthub): it sets --yurthub-extra-arg and the upgrade
// strategy on both YurtStaticSets, which the chart has no value for.
func (d *runData) postRenderer() ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this binary for helm's --post-renderer: %w", err)
	}
	args := []string{exe, PostRenderCommand, "--" + flagUpgradeStrategy + "=" + d.opts.YurthubUpgradeStrategy,
		"--" + flagHubBootstrapMode + "=" + d.opts.YurthubBootstrapMode}
	for _, a := range d.opts.YurthubExtraArgs {
		args = append(args, "--"+flagYurthubExtraArg+"="+a)
	}
	return args, nil
}

// checkControllerManager says what convert does with kube-controller-manager:
// nothing. OpenYurt v1.7 keeps node lifecycle in kube-controller-manager
// (yurt-manager runs with -nodelifecycle; autonomy comes from
// node.openyurt.io/autonomy-duration mapped to pod tolerations). It also
// says when kube-controller-manager is not a kubeadm static pod.
func (d *runData) checkControllerManager(c Clients) {
	pods, err := c.Kube.CoreV1().Pods(metav1.NamespaceSystem).List(d.ctx, listOpts("component=kube-controller-manager,tier=control-plane"))
	switch {
	case err != nil:
		d.add(PhaseControlPlane, "warning", "could not look for kube-controller-manager: %v", err)
	case len(pods.Items) == 0:
		d.add(PhaseControlPlane, "warning", "kube-controller-manager is not a kubeadm static pod (no kube-system pod with component=kube-controller-manager): "+
			"convert leaves it alone. OpenYurt %s needs no change there (node lifecycle stays in kube-controller-manager); "+
			"if you run OpenYurt older than v1.4, disable its nodelifecycle controller yourself (--controllers=-nodelifecycle,*)", yversion.OpenYurtVersion)
	default:
		d.add(PhaseControlPlane, "done", "kube-controller-manager is a kubeadm static pod (%s); OpenYurt %s needs no change to it", pods.Items[0].Name, yversion.OpenYurtVersion)
	}
}

// patchNodes applies each node's label and annotation changes (a merge
// patch; an empty value removes the key), --concurrency at a time.
func (d *runData) patchNodes(phase string, p *Plan, remove, quiet bool) error {
	c, err := d.Clients()
	if err != nil {
		return err
	}
	type job struct{ n NodePlan }
	var todo []NodePlan
	for _, n := range p.Nodes {
		if len(n.Labels)+len(n.Annotations) > 0 {
			todo = append(todo, n)
		}
	}
	if d.opts.DryRun {
		for _, n := range todo {
			d.add(phase, "would", "patch node %s: %s", n.Name, describeKV(n, remove))
		}
		return nil
	}
	sem := make(chan struct{}, d.opts.Concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []string
	for _, n := range todo {
		n := n
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// yurt-manager's node webhook lets only the node itself (and
			// its conversion controller) change openyurt.io/is-edge-worker:
			// a change of that label goes, with the rest, in one patch made
			// as the node; any other change as the admin.
			meta := map[string]any{}
			if len(n.Labels) > 0 {
				meta["labels"] = nullable(n.Labels, remove)
			}
			if len(n.Annotations) > 0 {
				meta["annotations"] = nullable(n.Annotations, remove)
			}
			body, _ := json.Marshal(map[string]any{"metadata": meta})
			api := c
			var err error
			if _, ok := n.Labels[constants.LabelEdgeWorker]; ok {
				api, err = d.NodeClients(n.Name)
			}
			if err == nil {
				_, err = api.Kube.CoreV1().Nodes().Patch(d.ctx, n.Name, types.MergePatchType, body, metav1.PatchOptions{})
			}
			if apierrors.IsNotFound(err) && remove {
				err = nil
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Sprintf("node %s: %v", n.Name, err))
			}
		}()
	}
	wg.Wait()
	sort.Strings(errs)
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	if !quiet {
		d.add(phase, "done", "patched %d node(s), %d already as wanted", len(todo), len(p.Nodes)-len(todo))
	}
	return nil
}

func nullable(m map[string]string, remove bool) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if remove {
			out[k] = nil
		} else {
			out[k] = v
		}
	}
	return out
}

func describeKV(n NodePlan, remove bool) string {
	var kv []string
	for _, m := range []map[string]string{n.Labels, n.Annotations} {
		for k, v := range m {
			if remove {
				kv = append(kv, "remove "+k)
			} else {
				kv = append(kv, k+"="+v)
			}
		}
	}
	sort.Strings(kv)
	return strings.Join(kv, ", ")
}

func runConvertLabels(d *runData) error {
	p, err := d.prepare()
	if err != nil {
		return err
	}
	if err := d.patchNodes(PhaseLabels, p, false, false); err != nil {
		return cmdutil.WithHint(err, cmdutil.ExitError, "the phase is safe to run again")
	}
	return nil
}

// nodeRunner runs the node steps of the run's action.
func (d *runData) nodeRunner(c Clients) *jobRunner {
	return &jobRunner{
		kc: c.Kube, ns: d.opts.Namespace, action: d.action, concurrency: d.opts.Concurrency,
		deadline: jobDeadline(d.opts.Timeout), messageGrace: d.env.MessageGrace,
		progress: func(f string, a ...any) { d.logf(PhaseNodes, f, a...) },
	}
}

func (d *runData) runNodeSteps(step string) error {
	p, err := d.prepare()
	if err != nil {
		return err
	}
	c, err := d.Clients()
	if err != nil {
		return err
	}
	nodes := p.nodesWithStep(step)
	pool := map[string]string{}
	for _, n := range p.Nodes {
		pool[n.Name] = n.Pool
		if n.Step == StepSkip {
			d.results = append(d.results, NodeResult{Node: n.Name, Outcome: OutcomeSkipped, Message: n.Reason})
		}
	}
	if d.opts.DryRun {
		for _, n := range nodes {
			j := NodeJob(d.action, n, pool[n], d.opts, "", d.env.JobManagedBy)
			d.add(PhaseNodes, "would", "create Job %s<random> on node %s running: %s %s", j.GenerateName, n,
				strings.Join(j.Spec.Template.Spec.Containers[0].Command, " "), strings.Join(j.Spec.Template.Spec.Containers[0].Args, " "))
		}
		return nil
	}
	if len(nodes) == 0 {
		d.add(PhaseNodes, "skipped", "no node needs the %s step", d.action)
		return nil
	}
	r := d.nodeRunner(c)
	r.build = func(n string) *batchv1.Job { return NodeJob(d.action, n, pool[n], d.opts, "", d.env.JobManagedBy) }
	d.logf(PhaseNodes, "Running the %s step on %d node(s), %d at a time (image %s)", d.action, len(nodes), d.opts.Concurrency, d.opts.NodeImage)
	results, err := r.run(d.ctx, nodes)
	d.results = append(d.results, results...)
	if err != nil {
		return cmdutil.WithHint(fmt.Errorf("%s interrupted: %w", d.action, err), cmdutil.ExitError,
			"the node Jobs keep running; run the same command again: it takes them over")
	}
	if step == StepConvert {
		d.unlabelRolledBack(p, results)
	}
	return nil
}

// unlabelRolledBack takes back, from each node whose node step rolled back
// (kubelet talks to kube-apiserver directly again), the labels and
// annotations this run's labels phase gave it: an edge-worker label or an
// autonomy annotation on a node without yurthub would tell OpenYurt's
// controllers it can live through a cloud outage, which it cannot. A
// re-run sets them again.
func (d *runData) unlabelRolledBack(p *Plan, results []NodeResult) {
	back := map[string]bool{}
	for _, r := range results {
		if r.Outcome == nodestep.OutcomeRolledBack {
			back[r.Node] = true
		}
	}
	undo := &Plan{}
	var names []string
	for _, n := range p.Nodes {
		if back[n.Name] && len(n.Labels)+len(n.Annotations) > 0 {
			undo.Nodes = append(undo.Nodes, n)
			names = append(names, n.Name)
		}
	}
	if len(names) == 0 {
		return
	}
	if err := d.patchNodes(PhaseNodes, undo, true, true); err != nil {
		d.add(PhaseNodes, "failed", "take the OpenYurt labels and annotations back from the rolled-back node(s): %v", err)
		return
	}
	d.add(PhaseNodes, "done", "took the OpenYurt labels and annotations back from the rolled-back node(s) %s", strings.Join(names, ", "))
}

func runConvertNodes(d *runData) error { return d.runNodeSteps(StepConvert) }

func runConvertVerify(d *runData) error {
	if d.opts.DryRun {
		d.add(PhaseVerify, "would", "check every edge node is Ready with a Running yurt-hub pod and its labels")
		return nil
	}
	p, err := d.Plan()
	if err != nil {
		return err
	}
	c, err := d.Clients()
	if err != nil {
		return err
	}
	// kubelet reports yurthub's mirror pod a moment after the node step
	// ends: look again for a short while before calling it missing.
	var nodes *corev1.NodeList
	var pods *corev1.PodList
	for attempt := 0; ; attempt++ {
		if nodes, err = c.Kube.CoreV1().Nodes().List(d.ctx, listAll); err != nil {
			return fmt.Errorf("list nodes: %w", err)
		}
		if pods, err = c.Kube.CoreV1().Pods(d.opts.Namespace).List(d.ctx, listOpts(yurthubAppLabel)); err != nil {
			return fmt.Errorf("list yurthub pods: %w", err)
		}
		if attempt >= 10 || d.hubsComplete(p, hubNodes(pods.Items)) {
			break
		}
		select {
		case <-d.ctx.Done():
			return d.ctx.Err()
		case <-time.After(time.Second):
		}
	}
	hubs := hubNodes(pods.Items)
	failed := map[string]bool{}
	for _, r := range d.results {
		if !r.OK() {
			failed[r.Node] = true
		}
	}
	byName := map[string]*corev1.Node{}
	for i := range nodes.Items {
		byName[nodes.Items[i].Name] = &nodes.Items[i]
	}
	checked, problems := 0, 0
	for _, np := range p.Nodes {
		n := byName[np.Name]
		if n == nil {
			d.add(PhaseVerify, "failed", "node %s is gone", np.Name)
			problems++
			continue
		}
		if failed[np.Name] {
			continue // named in the table already
		}
		if want := fmt.Sprint(np.Role == RoleEdge); n.Labels[constants.LabelEdgeWorker] != want {
			d.add(PhaseVerify, "failed", "node %s: label %s=%q, want %q", np.Name, constants.LabelEdgeWorker, n.Labels[constants.LabelEdgeWorker], want)
			problems++
		}
		if np.Role != RoleEdge {
			continue
		}
		checked++
		if ok, state := yurthub.NodeReady(n, time.Time{}); !ok {
			d.add(PhaseVerify, "failed", "edge node %s is not Ready: %s", np.Name, state)
			problems++
		}
		if !hubs[np.Name] {
			d.add(PhaseVerify, "failed", "edge node %s has no Running yurt-hub pod", np.Name)
			problems++
		}
	}
	if problems == 0 {
		d.add(PhaseVerify, "done", "%d edge node(s) Ready with yurthub running", checked)
	}
	return nil
}

// hubsComplete reports whether every edge node that the node step did not
// fail on runs yurthub.
func (d *runData) hubsComplete(p *Plan, hubs map[string]bool) bool {
	failed := map[string]bool{}
	for _, r := range d.results {
		if !r.OK() {
			failed[r.Node] = true
		}
	}
	for _, n := range p.Nodes {
		if n.Role == RoleEdge && !failed[n.Name] && !hubs[n.Name] {
			return false
		}
	}
	return true
}

// runCleanup deletes every node Job of convert and revert that is left.
func runCleanup(d *runData) error {
	if d.opts.DryRun {
		d.add(PhaseCleanup, "would", "delete the node Jobs (label %s) and release the lock", LabelJob)
		return nil
	}
	if lost := d.lockLost(); lost != nil {
		d.add(PhaseCleanup, "warning", "node Jobs left to the run that holds the lock now (%v)", lost)
		return nil
	}
	c, err := d.Clients()
	if err != nil {
		return err
	}
	bg := metav1.DeletePropagationBackground
	if err := c.Kube.BatchV1().Jobs(d.opts.Namespace).DeleteCollection(d.ctx, metav1.DeleteOptions{PropagationPolicy: &bg}, listOpts(LabelJob)); err != nil {
		d.add(PhaseCleanup, "failed", "delete the node Jobs: %v", err)
		return nil
	}
	d.add(PhaseCleanup, "done", "no node Job left")
	return nil
}
