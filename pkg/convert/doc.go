// Package convert will turn a kubeadm cluster into an OpenYurt cluster and back (yurtctl convert / revert).
package convert
