// Package framework starts a real Kubernetes control plane on this machine
// for integration tests: Debian's etcd and the kube-apiserver and
// kube-controller-manager binaries that hack/tools.sh builds, set up by the
// real kubeadm binary so that the cluster looks the way `yurtadm join` finds
// a kubeadm cluster (cluster-info in kube-public, kubeadm-config and
// kubelet-config in kube-system, bootstrap-token RBAC, JWS-signed
// cluster-info).
//
// Everything runs as host processes listening on free ports of loopback
// (etcd) and of this machine's own address (kube-apiserver); state, PKI,
// kubeconfigs and logs live in the test's temporary directory. Nothing is
// contacted but this machine.
//
// The binaries are found through the environment:
//
//	YURTADM_TOOLS_BIN   directory with kube-apiserver, kube-controller-manager
//	                    and kubeadm (the last line hack/tools.sh prints)
//	YURTADM_ETCD        etcd binary (default: etcd in PATH, then /usr/bin/etcd)
//
// Without them the tests skip, except under CI=true, where they fail: CI must
// not pass by skipping the real-cluster suite. `make test` (hack/test.sh)
// installs and builds everything and sets the variables.
package framework
