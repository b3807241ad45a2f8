//go:build tools

// Package tools records the programs and libraries hack/tools.sh builds from
// this module, so that `go mod tidy` keeps them (and only them) in go.mod.
package tools

import (
	_ "github.com/google/go-containerregistry/pkg/v1/empty"
	_ "github.com/google/go-containerregistry/pkg/v1/mutate"
	_ "github.com/google/go-containerregistry/pkg/v1/tarball"
	_ "github.com/openyurtio/openyurt/cmd/yurt-manager"
	_ "github.com/openyurtio/openyurt/cmd/yurtadm"
	_ "github.com/openyurtio/openyurt/cmd/yurthub"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubeadm"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "sigs.k8s.io/cri-tools/cmd/crictl"
)
