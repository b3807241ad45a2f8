package convert

import (
	"github.com/lithammer/dedent"
	"github.com/spf13/cobra"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/convert/nodestep"
)

// Phase names of revert, in the order they run.
const (
	PhaseRevertNodes        = "nodes"
	PhaseRevertLabels       = "labels"
	PhaseRevertControlPlane = "control-plane"
)

// NewRevertCommand returns `yurtctl revert`.
func NewRevertCommand(s cmdutil.IOStreams) *cobra.Command {
	return NewRevertCommandWithEnv(s, DefaultEnv())
}

// NewRevertCommandWithEnv returns `yurtctl revert` bound to env.
func NewRevertCommandWithEnv(s cmdutil.IOStreams, env Env) *cobra.Command {
	opts := newOptions()
	cmd := &cobra.Command{
		Use:   "revert",
		Short: "Revert an OpenYurt cluster made by 'yurtctl convert' to plain kubeadm",
		Long: dedent.Dedent(`
			Undo 'yurtctl convert', best effort, on a fully or partly converted cluster:

			  preflight      the lock, the plan
			  nodes          one Job per edge node (or node running yurthub) runs
			                 'yurtadm revert node': kubelet's files back byte for byte from
			                 the backup (or from kubeadm's own files, with a warning, when
			                 the backup is gone), kubelet restarted and Ready talking to
			                 kube-apiserver directly, yurthub's manifest, /var/lib/yurthub
			                 and /etc/kubernetes/cache removed
			  labels         OpenYurt's labels and autonomy annotations removed
			  control-plane the objects convert created removed (kube-controller-manager
			                 was never changed)
			  cleanup        no Job left behind; the lock is released

			Every step is reported; a failed step does not stop the next.`),
		Args: cobra.NoArgs,
	}
	opts.addCommonFlags(cmd.Flags())
	bindWorkflow(cmd, nodestep.ActionRevert, opts, s, env, []phaseDef{
		{PhasePreflight, "Plan and take the lock", runRevertPreflight},
		{PhaseRevertNodes, "Run the revert step on each converted node in a Job", bestEffort(runRevertNodes)},
		{PhaseRevertLabels, "Remove OpenYurt's labels and annotations from the nodes", bestEffort(runRevertLabels)},
		{PhaseRevertControlPlane, "Remove the objects convert created", bestEffort(runRevertControlPlane)},
		{PhaseCleanup, "Delete the node Jobs and release the lock", runCleanup},
	})
	cmd.AddCommand(nodestep.NewCommand(nodestep.ActionRevert, s, env.nodeStep()))
	return cmd
}

// bestEffort records a phase's error in the report and lets the next
// phase run; the command still fails at the end. A refused lock or
// confirmation stops the run.
func bestEffort(run func(phaseData) error) func(phaseData) error {
	return func(d phaseData) error {
		err := run(d)
		if err == nil || cmdutil.ExitCode(err) == cmdutil.ExitAborted || cmdutil.ExitCode(err) == cmdutil.ExitPreflight || cmdutil.ExitCode(err) == cmdutil.ExitUsage {
			return err
		}
		d.Report("revert", "failed", "%v", err)
		return nil
	}
}

func runRevertPreflight(d phaseData) error {
	p, err := d.Plan()
	if err != nil {
		return err
	}
	d.PrintPlan(p)
	if bad := p.notReady(); len(bad) > 0 {
		d.Report(PhasePreflight, "warning", "node(s) not Ready: %v: their revert Jobs cannot run until they are", bad)
	}
	if d.Options().DryRun {
		peekLock(d)
		return nil
	}
	_, err = d.Prepare()
	return err
}

func runRevertNodes(d phaseData) error { return runNodeSteps(d, StepRevert) }

func runRevertLabels(d phaseData) error {
	p, err := d.Prepare()
	if err != nil {
		return err
	}
	return patchNodes(d, PhaseRevertLabels, p, true, false)
}

func runRevertControlPlane(d phaseData) error {
	if _, err := d.Prepare(); err != nil {
		return err
	}
	in, err := installer(d, PhaseRevertControlPlane)
	if err != nil {
		return err
	}
	in.Uninstall(d.Context())
	return nil
}
