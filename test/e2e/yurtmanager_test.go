package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509/pkix"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	certutil "k8s.io/client-go/util/cert"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/convert"
	"github.com/yurtadm/yurtadm/test/e2e/harness"
)

// servingCSR is a CSR shaped as yurthub v1.7.0 asks for its serving
// certificate (signer kubelet-serving, O=system:nodes, CN=system:node:<node>,
// a DNS SAN, server usages): what yurt-manager's approver approves.
func servingCSR(t *testing.T, node string) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	req, err := certutil.MakeCSR(key, &pkix.Name{CommonName: "system:node:" + node, Organization: []string{"system:nodes"}}, []string{node}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "yurtadm-e2e-serving-"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    req,
			SignerName: certificatesv1.KubeletServingSignerName,
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageServerAuth},
		},
	}
}

// Scenario: `yurtctl convert --yurt-manager-image` on a cluster whose only
// node stays a cloud node runs yurt-manager as a Deployment there, and that
// yurt-manager approves yurthub's certificate requests on its own (the
// harness's host yurt-manager is paused meanwhile); revert removes it.
func TestConvertDeploysYurtManager(t *testing.T) {
	machine(t)
	ctx := context.Background()
	// The harness runs no kube-proxy; the pod's in-cluster config needs
	// the kubernetes Service.
	undoSvc, err := h.ServiceStandIn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(undoSvc)
	t.Cleanup(func() {
		if r, err := h.Run(ctx, h.Yurtctl(), "convert", "phase", "control-plane", "--yes", "--kubeconfig", h.CP.AdminKubeconfig); err != nil || r.ExitCode != 0 {
			t.Errorf("restore the control-plane objects: %v %s", err, r)
		}
	})
	kubeadmNode(t)
	node := harness.NodeName()
	kube := h.CP.Client

	r := yurtctl(t, "convert", "--yes", "--cloud-nodes", node, "--yurt-manager-image", harness.YurtManagerImage,
		"--node-image", h.YurtadmImage())
	if r.ExitCode != 0 {
		t.Fatalf("convert with --yurt-manager-image failed:\n%s", r)
	}
	t.Cleanup(func() { // whatever happened, no yurt-manager Deployment is left for the next scenario
		_ = kube.AppsV1().Deployments(constants.DefaultNamespace).Delete(ctx, "yurt-manager", metav1.DeleteOptions{})
	})
	var last string
	err = wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := kube.AppsV1().Deployments(constants.DefaultNamespace).Get(ctx, "yurt-manager", metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = "status " + d.Status.String()
		return d.Status.ReadyReplicas == 1, nil
	})
	if err != nil {
		pods, _ := kube.CoreV1().Pods(constants.DefaultNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=yurt-manager"})
		for _, p := range pods.Items {
			t.Logf("pod %s on %q: %s %v", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.ContainerStatuses)
		}
		t.Fatalf("yurt-manager Deployment not ready in 3m: %s", last)
	}
	t.Log("yurt-manager Deployment ready (its readiness probe is yurt-manager's /readyz)")

	t.Run("approves yurthub's serving CSR on its own", func(t *testing.T) {
		resume, err := h.PauseYurtManager()
		if err != nil {
			t.Fatal(err)
		}
		defer resume()
		csr, err := kube.CertificatesV1().CertificateSigningRequests().Create(ctx, servingCSR(t, node), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = kube.CertificatesV1().CertificateSigningRequests().Delete(ctx, csr.Name, metav1.DeleteOptions{})
		}()
		var msg string
		err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			c, err := kube.CertificatesV1().CertificateSigningRequests().Get(ctx, csr.Name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			for _, cond := range c.Status.Conditions {
				if cond.Type == certificatesv1.CertificateApproved {
					msg = cond.Reason + ": " + cond.Message
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("CSR %s not approved within 1m with the harness's yurt-manager paused: convert's yurt-manager does not approve", csr.Name)
		}
		t.Logf("CSR %s approved: %s", csr.Name, msg)
	})

	t.Run("revert removes it", func(t *testing.T) {
		r := yurtctl(t, "revert", "--yes", "--node-image", h.YurtadmImage())
		if r.ExitCode != 0 {
			t.Fatalf("revert failed:\n%s", r)
		}
		if _, err := kube.AppsV1().Deployments(constants.DefaultNamespace).Get(ctx, "yurt-manager", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("yurt-manager Deployment after revert: %v", err)
		}
		if _, err := kube.RbacV1().ClusterRoleBindings().Get(ctx, convert.CSRApproverClusterRole, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("ClusterRoleBinding %s after revert: %v", convert.CSRApproverClusterRole, err)
		}
		var crb *rbacv1.ClusterRoleBinding
		if crb, err = kube.RbacV1().ClusterRoleBindings().Get(ctx, "yurt-manager", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("ClusterRoleBinding yurt-manager after revert: %v %v", crb, err)
		}
		if _, err := kube.CoreV1().ServiceAccounts(constants.DefaultNamespace).Get(ctx, "yurt-manager", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("ServiceAccount yurt-manager after revert: %v", err)
		}
	})
}
