package convert

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/lithammer/dedent"
	"github.com/spf13/cobra"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/convert/nodestep"
)

const yurtManagerName = "yurt-manager"

// EnsureYurtManager deploys yurt-manager, minimally: a ServiceAccount bound
// to cluster-admin and a one-replica Deployment on a control-plane node with
// OpenYurt's default controllers (-nodelifecycle,*). OpenYurt's Helm chart
// (charts/yurt-manager) is the full, least-privilege install.
func EnsureYurtManager(ctx context.Context, c Clients, ns, image string) ([]Action, error) {
	var out []Action
	kc := c.Kube
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: yurtManagerName, Namespace: ns, Labels: managedLabels()}}
	if _, err := kc.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err == nil {
		out = append(out, Action{"ServiceAccount", ns + "/" + yurtManagerName, "created"})
	} else if !apierrors.IsAlreadyExists(err) {
		return out, err
	}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: yurtManagerName, Labels: managedLabels()},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: yurtManagerName, Namespace: ns}}}
	if _, err := kc.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err == nil {
		out = append(out, Action{"ClusterRoleBinding", yurtManagerName, "created"})
	} else if !apierrors.IsAlreadyExists(err) {
		return out, err
	}
	labels := map[string]string{"app.kubernetes.io/name": yurtManagerName}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: yurtManagerName, Namespace: ns, Labels: managedLabels()},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: yurtManagerName,
					Tolerations: []corev1.Toleration{{Key: labelControlPlane, Effect: corev1.TaintEffectNoSchedule, Operator: corev1.TolerationOpExists},
						{Key: labelMaster, Effect: corev1.TaintEffectNoSchedule, Operator: corev1.TolerationOpExists}},
					NodeSelector: map[string]string{constants.LabelEdgeWorker: "false"},
					Containers: []corev1.Container{{
						Name: yurtManagerName, Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
						Command: []string{"/usr/local/bin/yurt-manager"},
						Args: []string{"--metrics-addr=:10271", "--health-probe-addr=:10272", "--webhook-port=10273",
							"--working-namespace=" + ns, "--controllers=-nodelifecycle,*"},
					}},
				},
			},
		},
	}
	if _, err := kc.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err == nil {
		out = append(out, Action{"Deployment", ns + "/" + yurtManagerName, "created"})
	} else if !apierrors.IsAlreadyExists(err) {
		return out, err
	} else {
		out = append(out, Action{"Deployment", ns + "/" + yurtManagerName, "unchanged"})
	}
	return out, nil
}

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
	for _, o := range controlPlaneObjects(d.opts.Namespace) {
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
	return nil
}

type cpObject struct {
	kind, name string
	delete     func(context.Context, Clients) (string, error)
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
	add := func(kind, name string, mk func(Clients) (func(context.Context) (map[string]string, error), func(context.Context) error)) {
		out = append(out, cpObject{kind: kind, name: name, delete: func(ctx context.Context, c Clients) (string, error) {
			g, r := mk(c)
			return del(g, r)(ctx, c)
		}})
	}
	add("Deployment", ns+"/"+yurtManagerName, func(c Clients) (func(context.Context) (map[string]string, error), func(context.Context) error) {
		api := c.Kube.AppsV1().Deployments(ns)
		return func(ctx context.Context) (map[string]string, error) {
				o, err := api.Get(ctx, yurtManagerName, metav1.GetOptions{})
				return labelsOf(o, err)
			}, func(ctx context.Context) error {
				return api.Delete(ctx, yurtManagerName, metav1.DeleteOptions{})
			}
	})
	add("ClusterRoleBinding", yurtManagerName, func(c Clients) (func(context.Context) (map[string]string, error), func(context.Context) error) {
		api := c.Kube.RbacV1().ClusterRoleBindings()
		return func(ctx context.Context) (map[string]string, error) {
			o, err := api.Get(ctx, yurtManagerName, metav1.GetOptions{})
			return labelsOf(o, err)
		}, func(ctx context.Context) error { return api.Delete(ctx, yurtManagerName, metav1.DeleteOptions{}) }
	})
	add("ServiceAccount", ns+"/"+yurtManagerName, func(c Clients) (func(context.Context) (map[string]string, error), func(context.Context) error) {
		api := c.Kube.CoreV1().ServiceAccounts(ns)
		return func(ctx context.Context) (map[string]string, error) {
			o, err := api.Get(ctx, yurtManagerName, metav1.GetOptions{})
			return labelsOf(o, err)
		}, func(ctx context.Context) error { return api.Delete(ctx, yurtManagerName, metav1.DeleteOptions{}) }
	})
	add("ConfigMap", ns+"/"+constants.YurthubConfigMap, func(c Clients) (func(context.Context) (map[string]string, error), func(context.Context) error) {
		api := c.Kube.CoreV1().ConfigMaps(ns)
		return func(ctx context.Context) (map[string]string, error) {
				o, err := api.Get(ctx, constants.YurthubConfigMap, metav1.GetOptions{})
				return labelsOf(o, err)
			}, func(ctx context.Context) error {
				return api.Delete(ctx, constants.YurthubConfigMap, metav1.DeleteOptions{})
			}
	})
	add("ClusterRoleBinding", YurthubClusterRole, func(c Clients) (func(context.Context) (map[string]string, error), func(context.Context) error) {
		api := c.Kube.RbacV1().ClusterRoleBindings()
		return func(ctx context.Context) (map[string]string, error) {
			o, err := api.Get(ctx, YurthubClusterRole, metav1.GetOptions{})
			return labelsOf(o, err)
		}, func(ctx context.Context) error { return api.Delete(ctx, YurthubClusterRole, metav1.DeleteOptions{}) }
	})
	add("ClusterRole", YurthubClusterRole, func(c Clients) (func(context.Context) (map[string]string, error), func(context.Context) error) {
		api := c.Kube.RbacV1().ClusterRoles()
		return func(ctx context.Context) (map[string]string, error) {
			o, err := api.Get(ctx, YurthubClusterRole, metav1.GetOptions{})
			return labelsOf(o, err)
		}, func(ctx context.Context) error { return api.Delete(ctx, YurthubClusterRole, metav1.DeleteOptions{}) }
	})
	out = append(out, cpObject{kind: "NodePools", name: "(managed-by=yurtctl)", delete: func(ctx context.Context, c Clients) (string, error) {
		api := c.Dynamic.Resource(nodePoolGVR)
		list, err := api.List(ctx, metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ManagedBy})
		if apierrors.IsNotFound(err) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		for _, np := range list.Items {
			if err := api.Delete(ctx, np.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return "", err
			}
		}
		if len(list.Items) == 0 {
			return "", nil
		}
		return fmt.Sprintf("deleted (%d)", len(list.Items)), nil
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

func labelsOf(o metav1.Object, err error) (map[string]string, error) {
	if err != nil {
		return nil, err
	}
	return o.GetLabels(), nil
}
