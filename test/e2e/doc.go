// Package e2e holds the end-to-end scenarios: `yurtadm join`, reset,
// rejoin, bad input, a cloud node, autonomy and the join-time comparison
// with `kubeadm join`, on a real cluster that test/e2e/harness brings up on
// this machine. They run only with YURTADM_E2E=1 as root (`make e2e`);
// otherwise every test skips and says why. Under CI=true with
// YURTADM_E2E=1 a machine that lacks what the harness needs fails the run.
// See docs/e2e.md.
package e2e
