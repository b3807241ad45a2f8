package controlplane

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/yurtadm/yurtadm/pkg/constants"
)

// Uninstall removes what convert installed, best effort: the NodePools it
// made, the Helm releases it installed (a release of a chart's name that
// it did not install is kept), an earlier convert's hand-made objects, and
// the CRDs it created once none of their objects is left. Every step is
// reported; none stops the next.
func (in *Installer) Uninstall(ctx context.Context) {
	c, helm := in.Clients, in.Helm
	// The NodePools convert made go first, while yurt-manager (its
	// webhooks and the nodepool controller's finalizers) still runs.
	objs := controlPlaneObjects(in.Namespace)
	in.deleteObjects(ctx, objs, func(o cpObject) bool { return o.kind == "NodePools" })
	releases := map[string]Release{}
	helmOK := false
	if in.DryRun {
		in.Report("would", "helm uninstall the releases %s and %s in %s if yurtctl convert installed them (release label %s=%s)",
			ReleaseYurthub, ReleaseYurtManager, in.Namespace, releaseLabelKey, releaseLabelValue)
	} else if _, err := helm.Version(ctx); err != nil {
		in.Report("warning", "cannot remove the Helm releases convert installed (pass --helm PATH): %v", err)
	} else if releases, err = helm.Releases(ctx, true); err != nil {
		in.Report("failed", "list the Helm releases convert installed: %v", err)
	} else {
		helmOK = true
	}
	for _, name := range []string{ReleaseYurthub, ReleaseYurtManager} {
		if _, ok := releases[name]; !ok {
			continue
		}
		if err := helm.Uninstall(ctx, name); err != nil {
			in.Report("failed", "%v", err)
			continue
		}
		in.Report("done", "Helm release %s/%s uninstalled", in.Namespace, name)
	}
	// A release of a chart's name that convert did not install is kept.
	if helmOK {
		if others, err := helm.Releases(ctx, false); err == nil {
			for _, name := range chartNames {
				if _, ours := releases[name]; !ours {
					if r, ok := others[name]; ok {
						in.Report("warning", "Helm release %s/%s (chart %s) was not installed by yurtctl convert: kept", in.Namespace, name, r.Chart)
					}
				}
			}
		}
	}
	// An earlier convert's hand-made objects (its NodePool CRD is one of
	// the CRDs below), then the CRDs.
	in.deleteObjects(ctx, objs, func(o cpObject) bool { return o.kind != "NodePools" && o.kind != "CustomResourceDefinition" })
	if in.DryRun {
		in.Report("would", "delete the CustomResourceDefinitions yurtctl created once none of their objects is left")
		return
	}
	actions, err := deleteUnusedCRDs(ctx, c.Dynamic)
	for _, a := range actions {
		in.Report("done", "%s", a)
	}
	if err != nil {
		in.Report("failed", "%v", err)
	}
	in.Report("done", "kube-controller-manager: convert did not change it, nothing to restore")
}

// deleteObjects deletes the objects of objs that pick selects, if yurtctl
// made them (labelled as ours).
func (in *Installer) deleteObjects(ctx context.Context, objs []cpObject, pick func(cpObject) bool) {
	for _, o := range objs {
		if !pick(o) {
			continue
		}
		if in.DryRun {
			in.Report("would", "delete %s %s if yurtctl created it", o.kind, o.name)
			continue
		}
		res, err := o.delete(ctx, in.Clients)
		switch {
		case err != nil:
			in.Report("failed", "delete %s %s: %v", o.kind, o.name, err)
		case res != "":
			in.Report("done", "%s %s %s", o.kind, o.name, res)
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
	ours := func(l map[string]string) bool { return l[constants.LabelManagedBy] == constants.ManagedBy }
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
		list, err := api.List(ctx, metav1.ListOptions{LabelSelector: constants.LabelManagedBy + "=" + constants.ManagedBy})
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
