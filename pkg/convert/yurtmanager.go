package convert

import (
	rbacv1 "k8s.io/api/rbac/v1"
)

const (
	yurtManagerName = "yurt-manager"
	// CSRApproverClusterRole was the role an earlier convert gave
	// yurt-manager's csr-approver-controller (migrateLegacy removes it).
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
