// Package integration holds the tests that run against a real control plane
// (etcd, kube-apiserver and kube-controller-manager set up by kubeadm; see
// test/framework). `make test` builds the binaries and runs them; a plain
// `go test ./...` skips them with the reason, except under CI=true, where
// missing binaries fail the run.
package integration
