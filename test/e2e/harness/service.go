package harness

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// serviceChain holds the stand-in's rule. Its KUBE- prefix puts it in
// what the tear-down removes and what Leftovers reports.
const serviceChain = "KUBE-E2E-APISERVER"

// ServiceStandIn does for the default/kubernetes Service what kube-proxy
// would (the harness runs none): a DNAT from its ClusterIP:443 to
// kube-apiserver's address, for pods (PREROUTING) and host processes
// (OUTPUT), so that a pod's in-cluster config reaches the API server. The
// returned function removes it.
func (h *Harness) ServiceStandIn(ctx context.Context) (func(), error) {
	svc, err := h.CP.Client.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	ipt := func(args ...string) error {
		if out, err := exec.Command("iptables", append([]string{"-w", "-t", "nat"}, args...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	undo := func() {
		_ = ipt("-D", "PREROUTING", "-j", serviceChain)
		_ = ipt("-D", "OUTPUT", "-j", serviceChain)
		_ = ipt("-F", serviceChain)
		_ = ipt("-X", serviceChain)
	}
	undo() // a crashed run's
	for _, args := range [][]string{
		{"-N", serviceChain},
		{"-A", serviceChain, "-d", svc.Spec.ClusterIP + "/32", "-p", "tcp", "--dport", "443",
			"-j", "DNAT", "--to-destination", h.CP.HostIP + ":" + strconv.Itoa(h.CP.Port)},
		{"-A", "PREROUTING", "-j", serviceChain},
		{"-A", "OUTPUT", "-j", serviceChain},
	} {
		if err := ipt(args...); err != nil {
			undo()
			return nil, err
		}
	}
	h.logf("kubernetes Service %s:443 → %s:%d (kube-proxy stand-in)", svc.Spec.ClusterIP, h.CP.HostIP, h.CP.Port)
	return undo, nil
}

// PauseYurtManager stops (SIGSTOP) the harness's own yurt-manager, so that
// a scenario can show another one at work; the returned function resumes it.
func (h *Harness) PauseYurtManager() (func(), error) {
	pid := h.CP.PIDs()["yurt-manager"]
	if pid <= 0 {
		return nil, fmt.Errorf("the harness's yurt-manager is not running")
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return nil, fmt.Errorf("stop yurt-manager (pid %d): %w", pid, err)
	}
	return func() { _ = syscall.Kill(pid, syscall.SIGCONT) }, nil
}
