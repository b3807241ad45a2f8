// Package reset implements `yurtadm reset`: it undoes what `yurtadm join`
// did to a node, best effort, as an ordered list of named phases
// (kubeadm's workflow runner), so that `yurtadm reset phase <name>` and
// --skip-phases work. Every host path goes through host.FS, every command
// through its exec interface and every service through its init system, so
// tests run whole resets inside a temp dir.
package reset

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/cri"
	"github.com/yurtadm/yurtadm/pkg/host"
	"github.com/yurtadm/yurtadm/pkg/joinstate"
	"github.com/yurtadm/yurtadm/pkg/workflow"
)

// Flag names.
const (
	flagForce      = "force"
	flagDryRun     = "dry-run"
	flagCRISocket  = "cri-socket"
	flagOutput     = "output"
	flagHostRoot   = "host-root"
	flagSkipPhases = "skip-phases" // added by the workflow runner
)

// options are the flags of yurtadm reset.
type options struct {
	force     bool
	dryRun    bool
	criSocket string
	output    string
	hostRoot  string
}

// deps are the seams NewCommand fills with the real machine and tests with
// fakes.
type deps struct {
	newHost   func(root string) *host.Host
	unmounter Unmounter
	confirm   func(ctx context.Context, s cmdutil.IOStreams, question, forceFlag string) error
	geteuid   func() int
}

// NewCommand returns the `yurtadm reset` command.
func NewCommand(s cmdutil.IOStreams) *cobra.Command {
	return newCommand(s, deps{newHost: host.New, unmounter: sysUnmounter{}, confirm: cmdutil.Confirm, geteuid: os.Geteuid})
}

func newCommand(s cmdutil.IOStreams, dp deps) *cobra.Command {
	opts := &options{output: cmdutil.OutputText, hostRoot: "/"}
	runner := workflow.NewRunner()
	cmd := &cobra.Command{
		Use:   "reset",
		Short: "Undo what 'yurtadm join' did to this node",
		Long: `Reset undoes what 'yurtadm join' did to this node, so that it can join again:
it stops kubelet, removes the pods through the container runtime, unmounts
kubelet's volumes, and removes yurthub's manifest, certificates, bootstrap
kubeconfig, working directory and cache, the kubelet files join wrote, and
/var/lib/openyurt. Control-plane manifests are kept. The kubelet drop-in is
removed only when the join state file says join wrote it.

Reset is best effort: every step is reported as done, failed or nothing to
do, a failed step does not stop the others, and the exit code is 1 when any
step failed. It asks before changing anything unless --force is given, and
refuses to ask without a terminal. CNI configuration, iptables and IPVS
rules and your kubeconfig are not cleaned: the report says how.`,
		Example: `  # See what reset would do, changing nothing
  yurtadm reset --dry-run

  # Reset without a prompt (scripts, no terminal), report as JSON
  yurtadm reset --force -o json

  # Keep the pods, remove everything else
  yurtadm reset -f --skip-phases remove-containers

  # Run one phase
  yurtadm reset phase remove-files yurthub-pki -f`,
		Args: cobra.NoArgs,
		// An unknown --skip-phases name is the runner's usage error,
		// naming the phases, before anything runs.
		RunE: func(_ *cobra.Command, args []string) error { return run(runner, args) },
	}
	addFlags(cmd.Flags(), opts)
	cmd.PersistentFlags().StringVar(&opts.hostRoot, flagHostRoot, opts.hostRoot,
		"Directory that stands for / (for tests and for running from a container with the host mounted)")
	_ = cmd.PersistentFlags().MarkHidden(flagHostRoot)

	for _, p := range phases() {
		runner.AppendPhase(p)
	}
	runner.SetDataInitializer(func(c *cobra.Command, _ []string) (workflow.RunData, error) {
		ctx := context.Background()
		if c != nil && c.Context() != nil {
			ctx = c.Context()
		}
		return newResetData(ctx, s, opts, dp)
	})
	runner.BindToCommand(cmd)
	// `yurtadm reset phase <name>` reports and sets the exit code too.
	for _, c := range cmd.Commands() {
		if c.Name() == "phase" {
			c.PersistentPostRunE = func(_ *cobra.Command, args []string) error { return finish(runner, args) }
		}
	}
	return cmd
}

func addFlags(fs *pflag.FlagSet, o *options) {
	fs.BoolVarP(&o.force, flagForce, "f", false, "Reset without asking for confirmation")
	fs.BoolVar(&o.dryRun, flagDryRun, false, "Print what would be stopped and removed, and change nothing")
	fs.StringVar(&o.criSocket, flagCRISocket, "",
		"CRI socket to remove the pods through, e.g. unix:///run/containerd/containerd.sock (default: the one found)")
	fs.StringVarP(&o.output, flagOutput, "o", o.output, "Output format of the report: text or json")
}

// run runs the phases, then prints the report.
func run(runner *workflow.Runner, args []string) error {
	if err := runner.Run(args); err != nil {
		return err
	}
	return finish(runner, args)
}

// finish prints the report of the phases that ran and returns the exit
// error when a step failed.
func finish(runner *workflow.Runner, args []string) error {
	rd, err := runner.InitData(args)
	if err != nil {
		return err
	}
	d, ok := rd.(*resetData)
	if !ok {
		return fmt.Errorf("reset ran with unexpected data %T", rd)
	}
	rep := d.report
	if d.opts.output == cmdutil.OutputJSON {
		if err := d.streams.PrintJSON(rep.toJSON()); err != nil {
			return err
		}
	} else {
		rep.printText()
	}
	return rep.result()
}

// newResetData checks the flags and builds the run's data. It changes
// nothing on the host: a bad flag is a usage error with nothing touched.
func newResetData(ctx context.Context, s cmdutil.IOStreams, o *options, dp deps) (*resetData, error) {
	if err := cmdutil.ValidateOutput(o.output); err != nil {
		return nil, err
	}
	if o.criSocket != "" {
		if err := cri.Validate(o.criSocket); err != nil {
			return nil, cmdutil.Usagef("pass the runtime's socket, e.g. --"+flagCRISocket+
				" unix:///run/containerd/containerd.sock", "--%s: %v", flagCRISocket, err)
		}
	}
	if err := cmdutil.ValidateHostRoot(flagHostRoot, o.hostRoot); err != nil {
		return nil, err
	}
	h := dp.newHost(o.hostRoot)
	d := &resetData{ctx: ctx, streams: s, opts: o, host: h, unmounter: dp.unmounter,
		confirm: dp.confirm, geteuid: dp.geteuid,
		report: &report{streams: s, dryRun: o.dryRun}}
	// Read it now: remove-files takes /var/lib/openyurt, and the state in it, away.
	d.state, d.stateErr = joinstate.Read(h.FS)
	return d, nil
}
