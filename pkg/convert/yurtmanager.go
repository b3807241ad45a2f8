package convert

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/yurtadm/yurtadm/pkg/constants"
)

const (
	yurtManagerName = "yurt-manager"
	// yurtManagerHealthPort serves yurt-manager's /healthz and /readyz.
	yurtManagerHealthPort = 10272
	// csrApproverSA is the ServiceAccount yurt-manager v1.7.0 runs its
	// csr-approver-controller as: it creates it in its working namespace
	// and asks for its tokens (one identity per controller, as
	// kube-controller-manager's --use-service-account-credentials).
	csrApproverSA = "yurt-manager-csr-approver-controller"
	// CSRApproverClusterRole lets csrApproverSA approve yurthub's CSRs.
	CSRApproverClusterRole = "yurtctl:yurt-manager-csr-approver"
)

// CSRApproverRules are what yurt-manager's csr-approver-controller does:
// read CSRs and approve yurthub's client (kube-apiserver-client) and
// serving (kubelet-serving) requests.
func CSRApproverRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests/approval"}, Verbs: []string{"update"}},
		{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"signers"}, Verbs: []string{"approve"},
			ResourceNames: []string{"kubernetes.io/kube-apiserver-client", "kubernetes.io/kubelet-serving"}},
	}
}

// yurtManagerDeployment is the one-replica yurt-manager convert runs on a
// cloud node: only csr-approver-controller, which is what yurthub v1.7.0
// needs (its serving certificate, and its client certificate in token
// mode), and no webhooks. Every other controller of yurt-manager needs
// OpenYurt's other CRDs and webhook configurations, which only OpenYurt's
// Helm chart installs.
func yurtManagerDeployment(ns, image string) *appsv1.Deployment {
	labels := map[string]string{"app.kubernetes.io/name": yurtManagerName}
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(yurtManagerHealthPort)}},
			PeriodSeconds: 10, FailureThreshold: 3}
	}
	return &appsv1.Deployment{
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
						Args: []string{"--controllers=csr-approver-controller", "--disable-independent-webhooks=*",
							"--metrics-addr=:10271", "--health-probe-addr=:10272", "--working-namespace=" + ns, "--v=2"},
						ReadinessProbe: probe("/readyz"),
						LivenessProbe:  probe("/healthz"),
					}},
				},
			},
		},
	}
}

// EnsureYurtManager deploys yurt-manager, minimally: a ServiceAccount bound
// to cluster-admin (it creates its controllers' ServiceAccounts and their
// tokens), the csr-approver controller's ClusterRole and binding, and the
// Deployment above. The RBAC goes through the same create-or-repair as
// yurthub's. OpenYurt's Helm chart (charts/yurt-manager) is the full,
// least-privilege install.
func EnsureYurtManager(ctx context.Context, c Clients, ns, image string) ([]Action, error) {
	kc := c.Kube
	var out []Action
	add := func(kind, name, result string, err error) error {
		if err != nil {
			return fmt.Errorf("%s %s: %w", kind, name, err)
		}
		out = append(out, Action{kind, name, result})
		return nil
	}
	created := func(err error) (string, error) {
		if apierrors.IsAlreadyExists(err) {
			return "unchanged", nil
		}
		return "created", err
	}
	_, err := kc.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: yurtManagerName, Namespace: ns, Labels: managedLabels()}}, metav1.CreateOptions{})
	r, err := created(err)
	if err := add("ServiceAccount", ns+"/"+yurtManagerName, r, err); err != nil {
		return out, err
	}
	r, err = ensureClusterRoleBinding(ctx, kc, yurtManagerName, "cluster-admin",
		rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: yurtManagerName, Namespace: ns})
	if err := add("ClusterRoleBinding", yurtManagerName, r, err); err != nil {
		return out, err
	}
	r, err = ensureClusterRole(ctx, kc, CSRApproverClusterRole, CSRApproverRules())
	if err := add("ClusterRole", CSRApproverClusterRole, r, err); err != nil {
		return out, err
	}
	r, err = ensureClusterRoleBinding(ctx, kc, CSRApproverClusterRole, CSRApproverClusterRole,
		rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: csrApproverSA, Namespace: ns})
	if err := add("ClusterRoleBinding", CSRApproverClusterRole, r, err); err != nil {
		return out, err
	}
	_, err = kc.AppsV1().Deployments(ns).Create(ctx, yurtManagerDeployment(ns, image), metav1.CreateOptions{})
	r, err = created(err)
	if err := add("Deployment", ns+"/"+yurtManagerName, r, err); err != nil {
		return out, err
	}
	return out, nil
}
