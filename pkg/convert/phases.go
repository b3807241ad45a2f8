package convert

import (
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
	"sigs.k8s.io/yaml"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/convert/controlplane"
	"github.com/yurtadm/yurtadm/pkg/convert/lock"
	"github.com/yurtadm/yurtadm/pkg/convert/nodejobs"
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

func runConvertControlPlane(d *runData) error {
	// Everything that can be wrong with the charts or helm is found before
	// the first change.
	src, err := controlplane.OpenSource(d.opts.ChartSource, d.opts.ChartVersion)
	if err != nil {
		return cmdutil.WithHint(err, cmdutil.ExitUsage, "pass --"+flagChartSource+" "+controlplane.DefaultChartRepo+", or a directory or archive holding OpenYurt's yurt-manager and yurthub charts")
	}
	defer src.Close()
	in, err := d.installer(PhaseControlPlane)
	if err != nil {
		return err
	}
	in.Source = src
	if in.PostRenderer, err = d.postRenderer(); err != nil {
		return err
	}
	if !d.opts.DryRun {
		v, err := in.Helm.Version(d.ctx)
		if err != nil {
			return err
		}
		d.add(PhaseControlPlane, "done", "helm %s; charts from %s", v, src)
	}
	if _, err := d.prepare(); err != nil {
		return err
	}
	in.CheckControllerManager(d.ctx)
	return in.Install(d.ctx)
}

// installer is the control-plane installer of this run; it reports as
// phase.
func (d *runData) installer(phase string) (*controlplane.Installer, error) {
	c, err := d.Clients()
	if err != nil {
		return nil, err
	}
	o := d.opts
	return &controlplane.Installer{
		Clients: c, Namespace: o.Namespace, DryRun: o.DryRun, Now: d.env.Now,
		Helm: controlplane.NewHelm(o.Helm, o.Kubeconfig, o.Namespace, d.env.RunHelm),
		Values: controlplane.Values{YurtManagerImage: o.YurtManagerImage, UpgradeWorkerImage: o.YurthubUpgradeWorkerImage,
			YurthubImage: o.YurthubImage, EdgePool: o.NodePoolName, YurthubExtraArgs: o.YurthubExtraArgs,
			UpgradeStrategy: o.YurthubUpgradeStrategy, BootstrapMode: o.YurthubBootstrapMode},
		Report: func(status, format string, a ...any) { d.add(phase, status, format, a...) },
	}, nil
}

// postRenderer is this binary as Helm's post-renderer of the yurthub
// chart (controlplane.PostRenderYurthub): it sets --yurthub-extra-arg and
// the upgrade strategy on both YurtStaticSets, which the chart has no
// value for.
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

// jobSpec is what the node Jobs of action share, from the flags.
func jobSpec(action string, o *Options, managedBy string) nodejobs.Spec {
	return nodejobs.Spec{Action: action, Namespace: o.Namespace, Image: o.NodeImage, Timeout: o.Timeout,
		YurthubImage: o.YurthubImage, YurthubExtraArgs: o.YurthubExtraArgs, ManagedBy: managedBy}
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
			d.results = append(d.results, nodejobs.Result{Node: n.Name, Outcome: nodejobs.OutcomeSkipped, Message: n.Reason})
		}
	}
	spec := jobSpec(d.action, d.opts, d.env.JobManagedBy)
	if d.opts.DryRun {
		for _, n := range nodes {
			j := spec.Job(n, pool[n])
			d.add(PhaseNodes, "would", "create Job %s<random> on node %s running: %s %s", j.GenerateName, n,
				strings.Join(j.Spec.Template.Spec.Containers[0].Command, " "), strings.Join(j.Spec.Template.Spec.Containers[0].Args, " "))
		}
		return nil
	}
	if len(nodes) == 0 {
		d.add(PhaseNodes, "skipped", "no node needs the %s step", d.action)
		return nil
	}
	r := &nodejobs.Runner{
		Client: c.Kube, Namespace: d.opts.Namespace, Action: d.action, Concurrency: d.opts.Concurrency,
		Deadline: nodejobs.Deadline(d.opts.Timeout), MessageGrace: d.env.MessageGrace,
		Build:    func(n string) *batchv1.Job { return spec.Job(n, pool[n]) },
		Progress: func(f string, a ...any) { d.logf(PhaseNodes, f, a...) },
	}
	d.logf(PhaseNodes, "Running the %s step on %d node(s), %d at a time (image %s)", d.action, len(nodes), d.opts.Concurrency, d.opts.NodeImage)
	results, err := r.Run(d.ctx, nodes)
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
func (d *runData) unlabelRolledBack(p *Plan, results []nodejobs.Result) {
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
		d.add(PhaseCleanup, "would", "delete the node Jobs (label %s) and release the lock", nodejobs.LabelJob)
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
	if err := c.Kube.BatchV1().Jobs(d.opts.Namespace).DeleteCollection(d.ctx, metav1.DeleteOptions{PropagationPolicy: &bg}, listOpts(nodejobs.LabelJob)); err != nil {
		d.add(PhaseCleanup, "failed", "delete the node Jobs: %v", err)
		return nil
	}
	d.add(PhaseCleanup, "done", "no node Job left")
	return nil
}
