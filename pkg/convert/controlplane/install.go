package controlplane

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	yversion "github.com/yurtadm/yurtadm/pkg/version"
)

// Values are what convert pins in OpenYurt's two charts, and what it sets
// on the yurthub chart's YurtStaticSets through its post-renderer.
type Values struct {
	// YurtManagerImage is yurt-manager's image; empty keeps the chart's.
	YurtManagerImage string
	// UpgradeWorkerImage is the node-servant image yurt-manager runs for
	// AdvancedRollingUpdate.
	UpgradeWorkerImage string
	YurthubImage       string
	// EdgePool is the NodePool of the edge nodes (the chart's
	// nodePoolName).
	EdgePool string
	// YurthubExtraArgs, UpgradeStrategy and BootstrapMode are the
	// post-renderer's (PostRenderYurthub); here they only name what the
	// dry run would do.
	YurthubExtraArgs []string
	UpgradeStrategy  string
	BootstrapMode    string
}

// Installer installs OpenYurt's control plane from its charts (Install)
// and removes what it installed (Uninstall), saying what it does through
// Report.
type Installer struct {
	Clients   Clients
	Helm      *Helm
	Namespace string
	// Source is where the charts come from (Install only).
	Source *Source
	Values Values
	// PostRenderers are, by release, the command Helm runs on the chart's
	// manifests: this binary's hidden PostRenderYurthub and
	// PostRenderYurtManager commands.
	PostRenderers map[string][]string
	DryRun        bool
	Now           func() time.Time
	// Report says one step: status is done, warning, failed or would.
	Report func(status, format string, a ...any)
}

// NodePools are the pools convert makes if missing: the edge pool and the
// cloud pool, with their NodePool type.
func (in *Installer) NodePools() map[string]string {
	return map[string]string{in.Values.EdgePool: "Edge", constants.DefaultCloudNodePool: "Cloud"}
}

// Install creates or updates the CRDs of the yurt-manager chart, hands an
// earlier convert's hand-made objects over, installs or upgrades the two
// releases and waits for them, waits for the YurtStaticSets' templates and
// makes the NodePools.
func (in *Installer) Install(ctx context.Context) error {
	c := in.Clients
	server, err := clusterServer(ctx, c.Kube)
	if err != nil {
		return cmdutil.WithHint(err, cmdutil.ExitPreflight, "run 'kubeadm init phase bootstrap-token' on a control-plane node")
	}
	ymValues, err := yurtManagerValues(in.Values)
	if err != nil {
		return err
	}
	hubValues, err := yurthubValues(server, in.Values)
	if err != nil {
		return err
	}
	ns, v := in.Namespace, in.Values
	if in.DryRun {
		in.Report("would", "create or update the CRDs of chart %s from %s", ReleaseYurtManager, in.Source)
		in.Report("would", "helm upgrade --install %s (namespace %s, controllers %s, image %s) and wait for it", ReleaseYurtManager, ns, DefaultYurtManagerControllers, valueImage(ymValues, "the chart's"))
		in.Report("would", "helm upgrade --install %s (namespace %s, kubernetesServerAddr %s, image %s, extra yurthub flags %v, upgrade strategy %s, bootstrap mode %s)", ReleaseYurthub, ns, server, valueImage(hubValues, ""), v.YurthubExtraArgs, v.UpgradeStrategy, v.BootstrapMode)
		if v.UpgradeStrategy == UpgradeAdvancedRollingUpdate {
			in.Report("would", "wait while yurt-manager rolls a changed yurthub template out to the nodes (AdvancedRollingUpdate), reporting each node")
		}
		in.Report("would", "ensure NodePools %s (Edge) and %s (Cloud)", v.EdgePool, constants.DefaultCloudNodePool)
		return nil
	}
	aru := v.UpgradeStrategy == UpgradeAdvancedRollingUpdate
	var before map[string]*yssTemplate
	var hashBefore map[string]string
	if aru {
		if before, hashBefore, err = in.templates(ctx); err != nil {
			return err
		}
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
		return cmdutil.WithHint(err, cmdutil.ExitError, "the phase is safe to run again; 'helm history -n "+ns+" <release>' shows what Helm did")
	}
	// What the releases will hold, to hand an earlier convert's objects over.
	rendered := map[string][]manifestObject{}
	for _, name := range chartNames {
		out, err := in.Helm.Template(ctx, in.Source, name, values[name])
		if err != nil {
			return fail(err)
		}
		if rendered[name], err = renderedObjects(out); err != nil {
			return fail(fmt.Errorf("helm template %s: %w", name, err))
		}
	}
	crds, err := in.Helm.ShowCRDs(ctx, in.Source, ReleaseYurtManager)
	if err != nil {
		return fail(err)
	}
	actions, err := ensureCRDs(ctx, c.Dynamic, crds)
	in.done(actions)
	if err != nil {
		return fail(err)
	}
	actions, err = migrateLegacy(ctx, c.Dynamic, ns, rendered)
	in.done(actions)
	if err != nil {
		return fail(err)
	}
	for _, name := range chartNames {
		start := in.Now()
		if err := in.upgradeRelease(ctx, name, values[name], in.PostRenderers[name]); err != nil {
			return fail(err)
		}
		rs, err := in.Helm.Releases(ctx, false)
		if err != nil {
			return fail(err)
		}
		r := rs[name]
		in.Report("done", "Helm release %s/%s: revision %s, chart %s, %s (%s)", ns, name, r.Revision, r.Chart, r.Status, in.Now().Sub(start).Round(time.Second))
		if name == ReleaseYurthub && aru {
			if err := in.waitRollout(ctx, before, hashBefore); err != nil {
				return err
			}
		}
	}
	// Nodes that join right after render yurthub from these.
	for _, yss := range []string{constants.YurthubStaticSet, constants.YurthubCloudStaticSet} {
		if err := waitConfigMap(ctx, c, ns, "yurt-static-set-"+yss, time.Minute); err != nil {
			in.Report("warning", "YurtStaticSet %s/%s: %v; nodes joining now use yurtadm's built-in yurthub template", ns, yss, err)
		} else {
			in.Report("done", "YurtStaticSet %s/%s: its template is in ConfigMap yurt-static-set-%s", ns, yss, yss)
		}
	}
	for name, typ := range in.NodePools() {
		r, err := retryWebhook(ctx, func() (string, error) { return ensureNodePool(ctx, c.Dynamic, name, typ) })
		if err != nil {
			return fail(fmt.Errorf("NodePool %s: %w", name, err))
		}
		in.Report("done", "NodePool %s %s", name, r)
	}
	return nil
}

func (in *Installer) done(actions []Action) {
	for _, a := range actions {
		in.Report("done", "%s", a)
	}
}

// upgradeRelease installs or upgrades one chart and waits for it (helm
// --wait --atomic: a release that does not become ready is rolled back,
// or, on a first install, removed). yurthub's YurtStaticSets go through
// yurt-manager's webhooks, which may take a moment to answer once its pod
// is ready: that is retried.
func (in *Installer) upgradeRelease(ctx context.Context, name, values string, post []string) error {
	_, err := retryWebhook(ctx, func() (string, error) {
		_, err := in.Helm.Upgrade(ctx, in.Source, name, values, post)
		return "", err
	})
	if err != nil && name == ReleaseYurtManager {
		if why := in.yurtManagerPods(ctx); why != "" {
			err = fmt.Errorf("%w; %s", err, why)
		}
	}
	return err
}

// yurtManagerPods says what yurt-manager's pods are doing, for an error.
func (in *Installer) yurtManagerPods(ctx context.Context) string {
	pods, err := in.Clients.Kube.CoreV1().Pods(in.Namespace).List(context.WithoutCancel(ctx), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=yurt-manager"})
	if err != nil || len(pods.Items) == 0 {
		return "no yurt-manager pod: 'kubectl -n " + in.Namespace + " describe deployment yurt-manager' says why"
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

// CheckControllerManager says what convert does with
// kube-controller-manager: nothing. OpenYurt v1.7 keeps node lifecycle in
// kube-controller-manager (yurt-manager runs with -nodelifecycle; autonomy
// comes from node.openyurt.io/autonomy-duration mapped to pod
// tolerations). It also says when kube-controller-manager is not a kubeadm
// static pod.
func (in *Installer) CheckControllerManager(ctx context.Context) {
	pods, err := in.Clients.Kube.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{LabelSelector: "component=kube-controller-manager,tier=control-plane"})
	switch {
	case err != nil:
		in.Report("warning", "could not look for kube-controller-manager: %v", err)
	case len(pods.Items) == 0:
		in.Report("warning", "kube-controller-manager is not a kubeadm static pod (no kube-system pod with component=kube-controller-manager): "+
			"convert leaves it alone. OpenYurt %s needs no change there (node lifecycle stays in kube-controller-manager); "+
			"if you run OpenYurt older than v1.4, disable its nodelifecycle controller yourself (--controllers=-nodelifecycle,*)", yversion.OpenYurtVersion)
	default:
		in.Report("done", "kube-controller-manager is a kubeadm static pod (%s); OpenYurt %s needs no change to it", pods.Items[0].Name, yversion.OpenYurtVersion)
	}
}
