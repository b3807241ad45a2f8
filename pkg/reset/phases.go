package reset

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/cri"
	"github.com/yurtadm/yurtadm/pkg/workflow"
)

// Phase names, in the order they run. Subphases of remove-files are named
// "remove-files/<sub>" in --skip-phases and in the report.
const (
	PhasePreflight        = "preflight"
	PhaseStopKubelet      = "stop-kubelet"
	PhaseRemoveContainers = "remove-containers"
	PhaseUnmount          = "unmount"
	PhaseRemoveFiles      = "remove-files"
	PhaseReloadInitSystem = "reload-init-system"

	SubphaseYurthubManifest = "yurthub-manifest"
	SubphaseYurthubPKI      = "yurthub-pki"
	SubphaseYurthub         = "yurthub"
	SubphaseCache           = "cache"
	SubphaseYurthubLogs     = "yurthub-logs"
	SubphaseKubelet         = "kubelet"
	SubphaseKubeletDropIn   = "kubelet-dropin"
	SubphaseJoinFiles       = "join-files"
	SubphaseOpenYurt        = "openyurt"
)

// phases returns the reset workflow. Every phase reports its steps in the
// data's report and returns an error only when the host must not be touched
// (no confirmation): reset is best effort, one failed step does not stop
// the next.
func phases() []workflow.Phase {
	common := []string{flagForce, flagDryRun, flagOutput}
	// mk builds a phase; reportAs is its full name, used in the report.
	mk := func(name, reportAs, short string, run func(ResetData, string) error, flags ...string) workflow.Phase {
		return workflow.Phase{Name: name, Short: short, InheritFlags: append(flags, common...),
			Run: func(c workflow.RunData) error {
				d, ok := c.(ResetData)
				if !ok {
					return errors.New("reset phase run with data that is not ResetData")
				}
				return run(d, reportAs)
			}}
	}
	p := func(name, short string, run func(ResetData, string) error, flags ...string) workflow.Phase {
		return mk(name, name, short, run, flags...)
	}
	sub := func(name, short string, run func(ResetData, string) error) workflow.Phase {
		return mk(name, PhaseRemoveFiles+"/"+name, short, confirmed(run))
	}
	return []workflow.Phase{
		p(PhasePreflight, "Check the host and ask for confirmation", runPreflight),
		p(PhaseStopKubelet, "Stop kubelet through the init system", confirmed(runStopKubelet)),
		p(PhaseRemoveContainers, "Remove the pod sandboxes and their containers through the CRI (crictl)",
			confirmed(runRemoveContainers), flagCRISocket),
		p(PhaseUnmount, "Unmount kubelet's mounts below /var/lib/kubelet, deepest first", confirmed(runUnmount)),
		{
			Name:         PhaseRemoveFiles,
			Short:        "Remove the files yurtadm join and yurthub wrote",
			InheritFlags: common,
			Phases: []workflow.Phase{
				{Name: "all", Short: "Run all remove-files subphases", InheritFlags: common, RunAllSiblings: true},
				sub(SubphaseYurthubManifest, "Remove the yurthub static pod manifest and the manifests join wrote", runRemoveManifests),
				sub(SubphaseYurthubPKI, "Remove yurthub's certificates in /var/lib/yurthub/pki", runRemoveYurthubPKI),
				sub(SubphaseYurthub, "Remove yurthub's bootstrap kubeconfig and /var/lib/yurthub (with autonomy data)", runRemoveYurthubDir),
				sub(SubphaseCache, "Remove yurthub's cache in /etc/kubernetes/cache", runRemoveCache),
				sub(SubphaseYurthubLogs, "Remove the yurthub static pod's logs in /var/log/pods (kubelet would count them as restarts of the next join's yurthub)", runRemoveYurthubLogs),
				sub(SubphaseKubelet, "Remove kubelet's kubeconfigs, config, flags, certificates and the rest of /var/lib/kubelet", runRemoveKubeletFiles),
				sub(SubphaseKubeletDropIn, "Remove the kubelet drop-in 10-kubeadm.conf if yurtadm join wrote it", runRemoveDropIn),
				sub(SubphaseJoinFiles, "Remove other files yurtadm join recorded and the directories it created, if empty", runRemoveJoinFiles),
				sub(SubphaseOpenYurt, "Remove /var/lib/openyurt (kubelet's yurthub kubeconfig, join state)", runRemoveOpenYurt),
			},
		},
		p(PhaseReloadInitSystem, "Make the init system re-read unit files if reset removed any", confirmed(runReloadInitSystem)),
	}
}

// confirmed makes a phase ask for confirmation before it changes anything,
// so that `yurtadm reset phase <name>` and --skip-phases=preflight still ask.
func confirmed(run func(ResetData, string) error) func(ResetData, string) error {
	return func(d ResetData, phase string) error {
		if err := d.Confirm(); err != nil {
			return err
		}
		// SIGINT or SIGTERM: no further phase starts; the report says
		// which were not done and reset exits 130.
		if err := d.Context().Err(); err != nil {
			d.Report().interrupted(phase)
			return nil
		}
		return run(d, phase)
	}
}

func runPreflight(d ResetData, phase string) error {
	h, io := d.Host(), d.IO()
	for _, m := range []string{"kube-apiserver.yaml", "etcd.yaml"} {
		if h.FS.Exists(path.Join(constants.ManifestsDir, m)) {
			io.Logf(phase, "WARNING: %s is here: this is a control-plane node. reset keeps the control-plane "+
				"manifests but removes kubelet's files, so kubelet stops running them; use 'kubeadm reset' "+
				"to take down a control plane", path.Join(constants.ManifestsDir, m))
			break
		}
	}
	switch st, err := d.JoinState(); {
	case err != nil:
		io.Logf(phase, "WARNING: cannot use the join state: %v; removing the well-known paths only", err)
	case st == nil:
		io.Logf(phase, "no join state in %s: removing the well-known paths and keeping the kubelet drop-in",
			constants.JoinStateFile)
	default:
		io.Logf(phase, "join state %s: %d files, %d directories, kubelet drop-in written: %v",
			constants.JoinStateFile, len(st.Files), len(st.CreatedDirs), st.DropIn)
	}
	return d.Confirm()
}

func runStopKubelet(d ResetData, phase string) error {
	h, rep := d.Host(), d.Report()
	const name = "stop kubelet"
	svc := constants.KubeletService
	switch {
	case !h.Init.ServiceIsActive(svc):
		rep.skipped(phase, name, "kubelet is not running")
	case d.DryRun():
		rep.planned(phase, name, "would stop kubelet")
	default:
		if err := h.Init.ServiceStop(svc); err != nil {
			rep.failed(phase, name, fmt.Errorf("stop kubelet: %w", err), "systemctl stop kubelet")
			return nil
		}
		rep.done(phase, name, "stopped kubelet")
	}
	return nil
}

func runRemoveContainers(d ResetData, phase string) error {
	h, rep := d.Host(), d.Report()
	const name = "remove pods"
	ep, err := d.CRIEndpoint()
	if err != nil {
		rep.failed(phase, name, err, "crictl --runtime-endpoint <socket> rmp -a -f")
		return nil
	}
	if ep == "" {
		rep.skipped(phase, name, "no container runtime socket found")
		return nil
	}
	sock := cri.SocketPath(ep)
	manual := "crictl --runtime-endpoint " + ep + " rmp -a -f"
	if !h.FS.Exists(sock) {
		// Only a --cri-socket can name a missing socket: a typo, or the
		// runtime is down and its pods may still be there.
		rep.failed(phase, name, fmt.Errorf("the CRI socket %s does not exist", sock), manual)
		return nil
	}
	if _, err := h.Exec.LookPath("crictl"); err != nil {
		rep.add(step{Phase: phase, Name: name, Status: statusSkipped, Manual: manual,
			Detail: "crictl not found in PATH: pods were not removed; install crictl or remove them by hand"})
		return nil
	}
	// crictl talks to the socket as this process sees it, below the root.
	real := cri.Endpoint(h.FS.Path(sock))
	out, err := h.Exec.CommandContext(d.Context(), "crictl", "--runtime-endpoint", real, "pods", "-q").Output()
	if err != nil {
		rep.failed(phase, name, fmt.Errorf("list pods through %s: %w", ep, err), manual)
		return nil
	}
	n := len(strings.Fields(string(out)))
	switch {
	case n == 0:
		rep.skipped(phase, name, "no pods in the container runtime at "+ep)
	case d.DryRun():
		rep.planned(phase, name, fmt.Sprintf("would remove %s through %s", plural(n, "pod"), ep))
	default:
		if err := removePods(d, real); err != nil {
			rep.failed(phase, name, fmt.Errorf("remove pods through %s: %w", ep, err), manual)
			return nil
		}
		rep.done(phase, name, fmt.Sprintf("removed %s through %s", plural(n, "pod"), ep))
	}
	return nil
}

func runUnmount(d ResetData, phase string) error {
	h, rep := d.Host(), d.Report()
	const name = "unmount"
	mounts, err := kubeletMounts(h.FS)
	if err != nil {
		rep.failed(phase, name, err, "umount the mounts below /var/lib/kubelet listed by 'grep /var/lib/kubelet/ /proc/mounts'")
		return nil
	}
	if len(mounts) == 0 {
		rep.skipped(phase, name, "no mounts below "+constants.KubeletDir)
		return nil
	}
	if d.DryRun() {
		rep.planned(phase, name, fmt.Sprintf("would unmount %s below %s",
			plural(len(mounts), "mount"), constants.KubeletDir))
		return nil
	}
	var failed []string
	var errs []error
	for _, mp := range mounts {
		if err := d.Unmounter().Unmount(mp); err != nil {
			failed = append(failed, hostPath(h.FS, mp))
			errs = append(errs, fmt.Errorf("unmount %s: %w", hostPath(h.FS, mp), err))
		}
	}
	if len(failed) > 0 {
		rep.failed(phase, name, errors.Join(errs...), "umount "+strings.Join(failed, " "))
		return nil
	}
	rep.done(phase, name, fmt.Sprintf("unmounted %s below %s", plural(len(mounts), "mount"), constants.KubeletDir))
	return nil
}

func runReloadInitSystem(d ResetData, phase string) error {
	h, rep := d.Host(), d.Report()
	const name = "daemon-reload"
	switch {
	case !rep.unitsChanged:
		rep.skipped(phase, name, "no unit files or drop-ins were removed")
	case d.DryRun():
		rep.planned(phase, name, "would make the init system re-read unit files (daemon-reload)")
	default:
		if err := h.Init.DaemonReload(); err != nil {
			rep.failed(phase, name, fmt.Errorf("reload unit files: %w", err), "systemctl daemon-reload")
			return nil
		}
		rep.done(phase, name, "the init system re-read unit files (daemon-reload)")
	}
	return nil
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// removePods removes every pod sandbox through crictl. A pod kubelet was
// starting just before it stopped can refuse removal for a moment
// ("container is in starting state, can't be removed"), so a failure is
// retried, after listing again, a few times with a growing pause, the
// way kubeadm reset retries its container removal.
func removePods(d ResetData, endpoint string) error {
	h := d.Host()
	var err error
	attempt := 0
	backoff := wait.Backoff{Duration: removeRetryPause, Factor: 2, Steps: removeAttempts}
	_ = wait.ExponentialBackoffWithContext(d.Context(), backoff, func(ctx context.Context) (bool, error) {
		if attempt++; attempt > 1 {
			// Gone meanwhile (kubelet finished starting it, then it went).
			if out, lerr := h.Exec.CommandContext(ctx, "crictl", "--runtime-endpoint", endpoint, "pods", "-q").Output(); lerr == nil && len(strings.Fields(string(out))) == 0 {
				err = nil
				return true, nil
			}
		}
		// crictl's default timeout is 2s per call; stopping a sandbox
		// tears down its network through CNI and took longer than that
		// on a loaded 2-core e2e machine, failing the step.
		var b []byte
		b, err = h.Exec.CommandContext(ctx, "crictl", "--runtime-endpoint", endpoint, "--timeout", crictlRemoveTimeout, "rmp", "-a", "-f").CombinedOutput()
		if err != nil {
			if msg := strings.TrimSpace(string(b)); msg != "" {
				err = fmt.Errorf("%w: %s", err, msg)
			}
		}
		return err == nil, nil
	})
	if attempt == 0 { // interrupted before the first try
		return d.Context().Err()
	}
	return err
}

// removeAttempts and removeRetryPause bound removePods' retries: four
// tries over about 3.5 s by default.
var (
	removeAttempts   = 4
	removeRetryPause = 500 * time.Millisecond
)

// crictlRemoveTimeout bounds each CRI call of `crictl rmp` (stop and
// remove one sandbox).
const crictlRemoveTimeout = "1m"
