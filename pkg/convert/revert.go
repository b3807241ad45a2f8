package convert

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lithammer/dedent"
	"github.com/spf13/cobra"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/convert/nodestep"
)

// Phase names of revert, in the order they run.
const (
	PhaseRevertNodes        = "nodes"
	PhaseRevertLabels       = "labels"
	PhaseRevertControlPlane = "control-plane"
)

// NewRevertCommand returns `yurtctl revert`.
func NewRevertCommand(s cmdutil.IOStreams) *cobra.Command {
	return NewRevertCommandWithEnv(s, DefaultEnv())
}

// NewRevertCommandWithEnv returns `yurtctl revert` bound to env.
func NewRevertCommandWithEnv(s cmdutil.IOStreams, env Env) *cobra.Command {
	opts := newOptions()
	cmd := &cobra.Command{
		Use:   "revert",
		Short: "Revert an OpenYurt cluster made by 'yurtctl convert' to plain kubeadm",
		Long: dedent.Dedent(`
			Undo 'yurtctl convert', best effort, on a fully or partly converted cluster:

			  preflight      the lock, the plan
			  nodes          one Job per edge node (or node running yurthub) runs
			                 'yurtadm revert node': kubelet's files back byte for byte from
			                 the backup (or from kubeadm's own files, with a warning, when
			                 the backup is gone), kubelet restarted and Ready talking to
			                 kube-apiserver directly, yurthub's manifest, /var/lib/yurthub
			                 and /etc/kubernetes/cache removed
			  labels         OpenYurt's labels and autonomy annotations removed
			  control-plane the objects convert created removed (kube-controller-manager
			                 was never changed)
			  cleanup        no Job left behind; the lock is released

			Every step is reported; a failed step does not stop the next.`),
		Args: cobra.NoArgs,
	}
	opts.addCommonFlags(cmd.Flags())
	bindWorkflow(cmd, nodestep.ActionRevert, opts, s, env, []phaseDef{
		{PhasePreflight, "Plan and take the lock", runRevertPreflight},
		{PhaseRevertNodes, "Run the revert step on each converted node in a Job", bestEffort(runRevertNodes)},
		{PhaseRevertLabels, "Remove OpenYurt's labels and annotations from the nodes", bestEffort(runRevertLabels)},
		{PhaseRevertControlPlane, "Remove the objects convert created", bestEffort(runRevertControlPlane)},
		{PhaseCleanup, "Delete the node Jobs and release the lock", runCleanup},
	})
	cmd.AddCommand(nodestep.NewCommand(nodestep.ActionRevert, s, env.nodeStep()))
	return cmd
}

// bestEffort records a phase's error in the report and lets the next
// phase run; the command still fails at the end. A refused lock or
// confirmation stops the run.
func bestEffort(run func(*runData) error) func(*runData) error {
	return func(d *runData) error {
		err := run(d)
		if err == nil || cmdutil.ExitCode(err) == cmdutil.ExitAborted || cmdutil.ExitCode(err) == cmdutil.ExitPreflight || cmdutil.ExitCode(err) == cmdutil.ExitUsage {
			return err
		}
		d.add("revert", "failed", "%v", err)
		return nil
	}
}

func runRevertPreflight(d *runData) error {
	p, err := d.Plan()
	if err != nil {
		return err
	}
	d.printPlan(p)
	if bad := p.notReady(); len(bad) > 0 {
		d.add(PhasePreflight, "warning", "node(s) not Ready: %v: their revert Jobs cannot run until they are", bad)
	}
	if d.opts.DryRun {
		d.peekLock()
		return nil
	}
	_, err = d.prepare()
	return err
}

func runRevertNodes(d *runData) error { return d.runNodeSteps(StepRevert) }

func runRevertLabels(d *runData) error {
	p, err := d.prepare()
	if err != nil {
		return err
	}
	return d.patchNodes(PhaseRevertLabels, p, true, false)
}

func runRevertControlPlane(d *runData) error {
	if _, err := d.prepare(); err != nil {
		return err
	}
	c, err := d.Clients()
	if err != nil {
		return err
	}
	helm := d.helmCLI()
	// The NodePools convert made go first, while yurt-manager (its
	// webhooks and the nodepool controller's finalizers) still runs.
	objs := controlPlaneObjects(d.opts.Namespace)
	d.deleteObjects(c, objs, func(o cpObject) bool { return o.kind == "NodePools" })
	releases := map[string]Release{}
	helmOK := false
	if d.opts.DryRun {
		d.add(PhaseRevertControlPlane, "would", "helm uninstall the releases %s and %s in %s if yurtctl convert installed them (release label %s=%s)",
			ReleaseYurthub, ReleaseYurtManager, d.opts.Namespace, releaseLabelKey, releaseLabelValue)
	} else if _, err := helm.Version(d.ctx); err != nil {
		d.add(PhaseRevertControlPlane, "warning", "cannot remove the Helm releases convert installed (pass --helm PATH): %v", err)
	} else if releases, err = helm.Releases(d.ctx, true); err != nil {
		d.add(PhaseRevertControlPlane, "failed", "list the Helm releases convert installed: %v", err)
	} else {
		helmOK = true
	}
	for _, name := range []string{ReleaseYurthub, ReleaseYurtManager} {
		if _, ok := releases[name]; !ok {
			continue
		}
		if err := helm.Uninstall(d.ctx, name); err != nil {
			d.add(PhaseRevertControlPlane, "failed", "%v", err)
			continue
		}
		d.add(PhaseRevertControlPlane, "done", "Helm release %s/%s uninstalled", d.opts.Namespace, name)
	}
	// A release of a chart's name that convert did not install is kept.
	if helmOK {
		if others, err := helm.Releases(d.ctx, false); err == nil {
			for _, name := range chartNames {
				if _, ours := releases[name]; !ours {
					if r, ok := others[name]; ok {
						d.add(PhaseRevertControlPlane, "warning", "Helm release %s/%s (chart %s) was not installed by yurtctl convert: kept", d.opts.Namespace, name, r.Chart)
					}
				}
			}
		}
	}
	// An earlier convert's hand-made objects (its NodePool CRD is one of
	// the CRDs below), then the CRDs.
	d.deleteObjects(c, objs, func(o cpObject) bool { return o.kind != "NodePools" && o.kind != "CustomResourceDefinition" })
	if d.opts.DryRun {
		d.add(PhaseRevertControlPlane, "would", "delete the CustomResourceDefinitions yurtctl created once none of their objects is left")
		return nil
	}
	actions, err := deleteUnusedCRDs(d.ctx, c.Dynamic)
	for _, a := range actions {
		d.add(PhaseRevertControlPlane, "done", "%s", a)
	}
	if err != nil {
		d.add(PhaseRevertControlPlane, "failed", "%v", err)
	}
	d.add(PhaseRevertControlPlane, "done", "kube-controller-manager: convert did not change it, nothing to restore")
	return nil
}

// deleteObjects deletes the objects of objs that pick selects, if yurtctl
// made them (labelled as ours).
func (d *runData) deleteObjects(c Clients, objs []cpObject, pick func(cpObject) bool) {
	for _, o := range objs {
		if !pick(o) {
			continue
		}
		if d.opts.DryRun {
			d.add(PhaseRevertControlPlane, "would", "delete %s %s if yurtctl created it", o.kind, o.name)
			continue
		}
		res, err := o.delete(d.ctx, c)
		switch {
		case err != nil:
			d.add(PhaseRevertControlPlane, "failed", "delete %s %s: %v", o.kind, o.name, err)
		case res != "":
			d.add(PhaseRevertControlPlane, "done", "%s %s %s", o.kind, o.name, res)
		}
	}
}

type cpObject struct {
	kind, name string
	delete     func(context.Context, Clients) (string, error)
}

type objectFuncs = func(Clients) (func(context.Context) (map[string]string, error), func(context.Context) error)

// getDeleter is what every typed client of client-go offers for one kind.
type getDeleter[T metav1.Object] interface {
	Get(ctx context.Context, name string, o metav1.GetOptions) (T, error)
	Delete(ctx context.Context, name string, o metav1.DeleteOptions) error
}

// named gets (its labels) and deletes the object name through the typed
// client api returns.
func named[T metav1.Object](name string, api func(Clients) getDeleter[T]) objectFuncs {
	return func(c Clients) (func(context.Context) (map[string]string, error), func(context.Context) error) {
		a := api(c)
		return func(ctx context.Context) (map[string]string, error) {
			o, err := a.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			return o.GetLabels(), nil
		}, func(ctx context.Context) error { return a.Delete(ctx, name, metav1.DeleteOptions{}) }
	}
}

func clusterRole(name string) objectFuncs {
	return named(name, func(c Clients) getDeleter[*rbacv1.ClusterRole] { return c.Kube.RbacV1().ClusterRoles() })
}

func clusterRoleBinding(name string) objectFuncs {
	return named(name, func(c Clients) getDeleter[*rbacv1.ClusterRoleBinding] { return c.Kube.RbacV1().ClusterRoleBindings() })
}

// controlPlaneObjects are the objects convert creates, in the order revert
// deletes them. Only objects labelled managed-by=yurtctl are deleted: a
// NodePool CRD that OpenYurt's chart installed stays.
func controlPlaneObjects(ns string) []cpObject {
	ours := func(l map[string]string) bool { return l[LabelManagedBy] == ManagedBy }
	del := func(get func(context.Context) (map[string]string, error), rm func(context.Context) error) func(context.Context, Clients) (string, error) {
		return func(ctx context.Context, _ Clients) (string, error) {
			l, err := get(ctx)
			if apierrors.IsNotFound(err) {
				return "", nil
			}
			if err != nil {
				return "", err
			}
			if !ours(l) {
				return "kept (not created by yurtctl)", nil
			}
			if err := rm(ctx); err != nil && !apierrors.IsNotFound(err) {
				return "", err
			}
			return "deleted", nil
		}
	}
	var out []cpObject
	add := func(kind, name string, mk objectFuncs) {
		out = append(out, cpObject{kind: kind, name: name, delete: func(ctx context.Context, c Clients) (string, error) {
			g, r := mk(c)
			return del(g, r)(ctx, c)
		}})
	}
	add("Deployment", ns+"/"+yurtManagerName, named(yurtManagerName, func(c Clients) getDeleter[*appsv1.Deployment] { return c.Kube.AppsV1().Deployments(ns) }))
	add("ClusterRoleBinding", yurtManagerName, clusterRoleBinding(yurtManagerName))
	add("ClusterRoleBinding", CSRApproverClusterRole, clusterRoleBinding(CSRApproverClusterRole))
	add("ClusterRole", CSRApproverClusterRole, clusterRole(CSRApproverClusterRole))
	add("ServiceAccount", ns+"/"+yurtManagerName, named(yurtManagerName, func(c Clients) getDeleter[*corev1.ServiceAccount] { return c.Kube.CoreV1().ServiceAccounts(ns) }))
	add("ConfigMap", ns+"/"+constants.YurthubConfigMap, named(constants.YurthubConfigMap, func(c Clients) getDeleter[*corev1.ConfigMap] { return c.Kube.CoreV1().ConfigMaps(ns) }))
	add("ClusterRoleBinding", YurthubClusterRole, clusterRoleBinding(YurthubClusterRole))
	add("ClusterRole", YurthubClusterRole, clusterRole(YurthubClusterRole))
	out = append(out, cpObject{kind: "NodePools", name: "(managed-by=yurtctl)", delete: func(ctx context.Context, c Clients) (string, error) {
		api := c.Dynamic.Resource(nodePoolGVR)
		list, err := api.List(ctx, metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ManagedBy})
		if apierrors.IsNotFound(err) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		deleted := 0
		var kept []string
		for _, np := range list.Items {
			err := api.Delete(ctx, np.GetName(), metav1.DeleteOptions{})
			switch {
			case err == nil || apierrors.IsNotFound(err):
				deleted++
			case apierrors.IsForbidden(err):
				// yurt-manager's webhook refuses to delete a pool that
				// still has nodes (joined by yurtadm join, not converted).
				kept = append(kept, np.GetName()+" ("+err.Error()+")")
			default:
				return "", err
			}
		}
		if len(list.Items) == 0 {
			return "", nil
		}
		if len(kept) > 0 {
			return fmt.Sprintf("deleted (%d); kept %s", deleted, strings.Join(kept, ", ")), nil
		}
		return fmt.Sprintf("deleted (%d)", deleted), nil
	}})
	out = append(out, cpObject{kind: "CustomResourceDefinition", name: NodePoolCRDName, delete: func(ctx context.Context, c Clients) (string, error) {
		api := c.Dynamic.Resource(crdGVR)
		return del(func(ctx context.Context) (map[string]string, error) {
			o, err := api.Get(ctx, NodePoolCRDName, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			return o.GetLabels(), nil
		}, func(ctx context.Context) error { return api.Delete(ctx, NodePoolCRDName, metav1.DeleteOptions{}) })(ctx, c)
	}})
	return out
}
