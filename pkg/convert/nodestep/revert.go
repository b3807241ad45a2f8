package nodestep

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/yurthub"
)

// Revert undoes convert on the node, best effort: every step runs and is
// reported; the error lists the steps that failed.
func Revert(ctx context.Context, o Options, env Env) (*Result, error) {
	r := &Result{Node: o.NodeName, Action: "revert"}
	fsys := env.Host.FS
	var failed []string
	failStep := func(name string, format string, a ...any) {
		r.step(name, StatusFailed, format, a...)
		failed = append(failed, name+": "+fmt.Sprintf(format, a...))
	}

	bk, bkErr := readBackup(fsys)
	flags, args, flagsErr := readFlags(fsys)
	redirected := yurthub.KubeconfigFlag(args) == constants.OpenYurtKubeletConfig
	traces := redirected || bk != nil || bkErr != nil
	for _, p := range append([]string{constants.YurthubManifest, constants.OpenYurtKubeletConfig, BackupDir}, yurthubDirs...) {
		traces = traces || fsys.Exists(p)
	}
	if !traces && flagsErr == nil {
		r.step("inspect", StatusSkipped, "no yurthub, no backup, kubelet talks to the API server directly")
		r.Outcome, r.Message = OutcomeNothingToRevert, "nothing to revert: the node was not converted"
		return r, nil
	}

	// 1. kubelet's files: from the backup, byte for byte, or else from
	// kubeadm's own files (kubelet.conf is never changed by convert).
	flagsChanged := false
	restoredFlags := false
	if bkErr != nil {
		r.step("restore", StatusWarning, "the backup is unreadable (%v): reverting from kubeadm's own files", bkErr)
	}
	if bk != nil {
		for _, e := range bk.Entries {
			if !e.Existed {
				continue // removed below, after kubelet no longer needs yurthub
			}
			changed, err := e.restore(fsys)
			switch {
			case err != nil:
				r.step("restore", StatusWarning, "%v: reverting %s from kubeadm's own files instead", err, e.Path)
			case changed:
				r.step("restore", StatusDone, "restored %s byte for byte from %s", e.Path, BackupDir)
			default:
				r.step("restore", StatusSkipped, "%s already as before convert", e.Path)
			}
			if e.Path == constants.KubeletFlagsEnvFile && err == nil {
				restoredFlags = true
				flagsChanged = flagsChanged || changed
			}
		}
	} else if bkErr == nil {
		r.step("restore", StatusWarning, "no backup in %s (converted by an older tool, or the backup was removed): reverting from kubeadm's own files", BackupDir)
	}
	if !restoredFlags {
		switch {
		case flagsErr != nil:
			failStep("restore", "%v", flagsErr)
		case flags != nil:
			out, changed, err := yurthub.SetKubeconfigFlag(flags, "")
			if err != nil {
				failStep("restore", "%v", err)
				break
			}
			if changed {
				mode := flagsMode(&Backup{})
				if st, err := fsys.Stat(constants.KubeletFlagsEnvFile); err == nil {
					mode = st.Mode().Perm()
				}
				if err := fsys.WriteFileAtomic(constants.KubeletFlagsEnvFile, out, mode); err != nil {
					failStep("restore", "%v", err)
					break
				}
				flagsChanged = true
				r.step("restore", StatusDone, "removed --kubeconfig=%s from %s: kubelet uses kubeadm's %s again", constants.OpenYurtKubeletConfig, constants.KubeletFlagsEnvFile, constants.KubeletKubeconfig)
			}
		}
	}
	if !fsys.Exists(constants.KubeletKubeconfig) {
		failStep("restore", "%s is missing: kubelet has no kubeconfig of its own to talk to the API server; re-join the node with kubeadm", constants.KubeletKubeconfig)
	}
	if removed, err := fsys.Remove(constants.OpenYurtKubeletConfig); err != nil {
		failStep("restore", "%v", err)
	} else if removed {
		r.step("restore", StatusDone, "removed %s", constants.OpenYurtKubeletConfig)
	}

	// 2. kubelet back on the API server directly.
	if flagsChanged || redirected {
		restartedAt := env.Now()
		if err := env.Host.Init.ServiceRestart(constants.KubeletService); err != nil {
			failStep("restart-kubelet", "restart kubelet: %v", err)
		} else {
			r.step("restart-kubelet", StatusDone, "restarted kubelet")
			waitDirectReady(ctx, o, env, r, restartedAt, failStep)
		}
	} else {
		r.step("restart-kubelet", StatusSkipped, "kubelet already talked to the API server directly")
	}

	// 3. yurthub and what it left.
	if removed, err := fsys.Remove(constants.YurthubManifest); err != nil {
		failStep("remove-yurthub", "%v", err)
	} else if removed {
		r.step("remove-yurthub", StatusDone, "removed %s", constants.YurthubManifest)
		waitYurthubGone(ctx, env)
	}
	for _, d := range append(append([]string{}, yurthubDirs...), BackupDir) {
		if removed, err := fsys.RemoveAll(d); err != nil {
			failStep("remove-yurthub", "%v", err)
		} else if removed {
			r.step("remove-yurthub", StatusDone, "removed %s", d)
		}
	}
	if bk != nil {
		removeIfCreated(fsys, bk)
	}
	if len(failed) > 0 {
		r.Outcome, r.Message = OutcomeFailed, "revert incomplete: "+strings.Join(failed, "; ")
		return r, errors.New(r.Message)
	}
	r.Outcome, r.Message = OutcomeReverted, "kubelet talks to the API server directly; yurthub removed"
	return r, nil
}

// waitDirectReady waits until the Node is Ready as kubelet's own
// kubeconfig sees it, reported after kubelet's restart.
func waitDirectReady(ctx context.Context, o Options, env Env, r *Result, since time.Time, failStep func(string, string, ...any)) {
	cfg, err := DirectClientConfig(env.Host.FS)
	if err != nil {
		failStep("wait-ready", "%v", err)
		return
	}
	client, err := env.client(cfg)
	if err != nil {
		failStep("wait-ready", "%v", err)
		return
	}
	wctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	last, err := yurthub.WaitNodeReady(wctx, client, o.NodeName, since, env.Poll)
	if err != nil {
		failStep("wait-ready", "node %q was not Ready talking to %s directly within %s (last: %s)", o.NodeName, cfg.Host, o.Timeout, last)
		return
	}
	r.step("wait-ready", StatusDone, "Node %q is Ready, kubelet talking to %s directly", o.NodeName, cfg.Host)
}
