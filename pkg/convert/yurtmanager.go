package convert

const (
	yurtManagerName = "yurt-manager"
	// CSRApproverClusterRole was the role an earlier convert gave
	// yurt-manager's csr-approver-controller (migrateLegacy removes it).
	CSRApproverClusterRole = "yurtctl:yurt-manager-csr-approver"
)
