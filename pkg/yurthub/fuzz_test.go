package yurthub

import "testing"

// FuzzSetKubeconfigFlag: for any kubeadm-flags.env content that parses,
// pointing kubelet at a kubeconfig yields content whose effective
// --kubeconfig is that path, and removing it again leaves none.
func FuzzSetKubeconfigFlag(f *testing.F) {
	f.Add([]byte(`KUBELET_KUBEADM_ARGS="--node-ip=10.0.0.2 --kubeconfig=/etc/kubernetes/kubelet.conf"` + "\n"))
	f.Add([]byte("# comment\nKUBELET_KUBEADM_ARGS='--a --kubeconfig /x'\nOTHER=1"))
	f.Add([]byte(`KUBELET_KUBEADM_ARGS="\"`))
	f.Fuzz(func(t *testing.T, env []byte) {
		out, _, err := SetKubeconfigFlag(env, "/var/lib/openyurt/kubelet.conf")
		if err != nil {
			return
		}
		args, found, err := KubeadmFlagsArgs(out)
		if err != nil || !found {
			t.Fatalf("written content does not parse back: %v %v\n%q", found, err, out)
		}
		if got := KubeconfigFlag(args); got != "/var/lib/openyurt/kubelet.conf" {
			t.Fatalf("effective --kubeconfig %q in %q", got, out)
		}
		back, _, err := SetKubeconfigFlag(out, "")
		if err != nil {
			t.Fatal(err)
		}
		args, _, _ = KubeadmFlagsArgs(back)
		if got := KubeconfigFlag(args); got != "" {
			t.Fatalf("after removal --kubeconfig %q remains in %q", got, back)
		}
	})
}
