// Package convert is yurtctl convert and revert: the commands and their
// phases, as kubeadm lays out its own (cmd.go the commands and the phase
// lists, data.go what every phase works with, phase_*.go and revert.go the
// phases). What the phases drive lives below, each in a package of its
// own that knows nothing of the command: lock (the cluster-wide Lease),
// controlplane (OpenYurt's charts: install, upgrade, uninstall), nodejobs
// (a Job per node and the runner that watches them) and nodestep (what a
// Job runs on its node).
package convert

import (
	"github.com/lithammer/dedent"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/convert/nodestep"
	"github.com/yurtadm/yurtadm/pkg/workflow"
)

// Phase names of convert, in the order they run.
const (
	PhasePreflight    = "preflight"
	PhaseControlPlane = "control-plane"
	PhaseLabels       = "labels"
	PhaseNodes        = "nodes"
	PhaseVerify       = "verify"
	PhaseCleanup      = "cleanup"
)

// NewCommand returns `yurtctl convert`.
func NewCommand(s cmdutil.IOStreams) *cobra.Command { return NewCommandWithEnv(s, DefaultEnv()) }

var convertExample = dedent.Dedent(`
	# Convert every worker node into an OpenYurt edge node (control-plane nodes stay cloud nodes)
	yurtctl convert --kubeconfig /etc/kubernetes/admin.conf

	# The old tool's command line still works: master-node stays a cloud node
	yurtctl convert --cloud-nodes=master-node --yes

	# Only edge-1 keeps its pods when cut off; see the plan first
	yurtctl convert --autonomous-nodes edge-1 --dry-run

	# One phase at a time
	yurtctl convert phase labels --yes`)

// NewCommandWithEnv returns `yurtctl convert` bound to env.
func NewCommandWithEnv(s cmdutil.IOStreams, env Env) *cobra.Command {
	opts := newOptions()
	cmd := &cobra.Command{
		Use:   "convert",
		Short: "Convert a kubeadm cluster into an OpenYurt cluster (run with an admin kubeconfig)",
		Long: dedent.Dedent(`
			Turn a kubeadm cluster into an OpenYurt cluster, in phases:

			  preflight      kubeadm-config present, supported version, every node Ready,
			                 and the lock (a Lease) that keeps a second convert or revert out
			  control-plane  what yurthub needs: NodePool CRD and pools, RBAC, yurt-hub-cfg
			  labels         openyurt.io/is-edge-worker, apps.openyurt.io/nodepool, and
			                 node.openyurt.io/autonomy-duration=0 on autonomous nodes
			  nodes          one privileged Job per edge node runs 'yurtadm convert node':
			                 backup, yurthub static pod, kubelet through yurthub, Ready check;
			                 a node that fails is rolled back and named
			  verify         every edge node Ready with yurthub running
			  cleanup        no Job left behind; the lock is released

			Running it again is safe: done work is skipped and Jobs of an interrupted
			run are taken over. 'yurtctl revert' undoes it.`),
		Example: convertExample,
		Args:    cobra.NoArgs,
	}
	opts.addCommonFlags(cmd.Flags())
	opts.addConvertFlags(cmd.Flags())
	bindWorkflow(cmd, nodestep.ActionConvert, opts, s, env, []phaseDef{
		{PhasePreflight, "Check the cluster, plan, and take the lock", runConvertPreflight},
		{PhaseControlPlane, "Install what yurthub needs and check kube-controller-manager", runConvertControlPlane},
		{PhaseLabels, "Label edge and cloud nodes and annotate autonomous ones", runConvertLabels},
		{PhaseNodes, "Run the node step on each edge node in a Job", runConvertNodes},
		{PhaseVerify, "Check every edge node is Ready with yurthub running", runConvertVerify},
		{PhaseCleanup, "Delete the node Jobs and release the lock", runCleanup},
	})
	cmd.AddCommand(nodestep.NewCommand(nodestep.ActionConvert, s, env.nodeStep()))
	return cmd
}

func (e Env) nodeStep() nodestep.EnvFunc {
	if e.NodeStep != nil {
		return e.NodeStep
	}
	return nodestep.RealEnv
}

type phaseDef struct {
	name, short string
	run         func(phaseData) error
}

// bindWorkflow makes the phases a kubeadm workflow on cmd: the whole run,
// `<cmd> phase <name>` and --skip-phases. The lock is released and the
// report printed however the run ends.
func bindWorkflow(cmd *cobra.Command, action string, opts *Options, s cmdutil.IOStreams, env Env, defs []phaseDef) {
	runner := workflow.NewRunner()
	var inherit []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) { inherit = append(inherit, f.Name) })
	var data *runData
	finish := func(err error) error {
		if data == nil {
			return err
		}
		data.release()
		return data.summary(err)
	}
	for _, def := range defs {
		def := def
		runner.AppendPhase(workflow.Phase{
			Name: def.name, Short: def.short, InheritFlags: inherit,
			Run: func(c workflow.RunData) error {
				d := c.(*runData)
				err := def.run(d)
				if runner.Options.FilterPhases != nil { // run alone
					return finish(err)
				}
				return err
			},
		})
	}
	runner.SetDataInitializer(func(c *cobra.Command, _ []string) (workflow.RunData, error) {
		d, err := newRunData(c, action, opts, s, env)
		data = d
		return d, err
	})
	cmd.RunE = func(c *cobra.Command, args []string) error {
		return finish(runner.Run(args))
	}
	runner.BindToCommand(cmd)
}
