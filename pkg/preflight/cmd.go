package preflight

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	utilversion "k8s.io/apimachinery/pkg/util/version"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/cri"
	"github.com/yurtadm/yurtadm/pkg/host"
)

// Flag names.
const (
	flagIgnore            = "ignore-preflight-errors"
	flagNodeName          = "node-name"
	flagCRISocket         = "cri-socket"
	flagKubernetesVersion = "kubernetes-version"
	flagOutput            = "output"
	flagHostRoot          = "host-root"
)

// cmdOptions are the flags of yurtadm preflight.
type cmdOptions struct {
	ignore            []string
	nodeName          string
	criSocket         string
	kubernetesVersion string
	output            string
	hostRoot          string
}

// deps are the seams NewCommand fills with the real machine and tests with
// fakes.
type deps struct {
	newHost func(root string) *host.Host
	env     Env
}

// NewCommand returns the `yurtadm preflight` command.
func NewCommand(s cmdutil.IOStreams) *cobra.Command {
	return newCommand(s, deps{newHost: host.New, env: RealEnv()})
}

func newCommand(s cmdutil.IOStreams, dp deps) *cobra.Command {
	o := &cmdOptions{output: cmdutil.OutputText, hostRoot: "/"}
	cmd := &cobra.Command{
		Use:   "preflight",
		Short: "Check that this host can join a cluster",
		Long: `Preflight runs the host checks that 'yurtadm join' runs first, and changes
nothing: root, crictl, conntrack and kubelet in PATH, kubelet's version, the
container runtime's socket and its filesystem's d_type support, swap, the
ports of kubelet and yurthub, files left by an earlier join, IP forwarding and
bridge netfilter, the node name, /etc/resolv.conf and the pids cgroup.

Each check has a name; a failed check stops 'yurtadm join' unless its name is
given to --ignore-preflight-errors. docs/preflight.md explains every check and
its fix. The exit code is 3 when a check that is not ignored fails.`,
		Example: `  # Check this host
  yurtadm preflight

  # Check kubelet's version against the control plane's
  yurtadm preflight --kubernetes-version v1.34.4

  # Accept swap, read the result from a script
  yurtadm preflight --ignore-preflight-errors Swap -o json`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cmdutil.Usagef("preflight takes flags only; see 'yurtadm preflight --help'",
					"unexpected argument %q", args[0])
			}
			return nil
		},
		RunE: func(_ *cobra.Command, _ []string) error { return run(s, o, dp) },
	}
	addFlags(cmd.Flags(), o)
	return cmd
}

func addFlags(fs *pflag.FlagSet, o *cmdOptions) {
	fs.StringSliceVar(&o.ignore, flagIgnore, nil,
		"Checks whose errors become warnings, e.g. Swap,Port-10250, or all (see docs/preflight.md for the names)")
	fs.StringVar(&o.nodeName, flagNodeName, "",
		"Name the node will register as (default: the lower-cased hostname; without it the real hostname is checked)")
	fs.StringVar(&o.criSocket, flagCRISocket, "",
		"Container runtime socket, e.g. unix:///run/containerd/containerd.sock (default: the one found)")
	fs.StringVar(&o.kubernetesVersion, flagKubernetesVersion, "",
		"Kubernetes version of the control plane, e.g. v1.34.4, to check kubelet's version skew against")
	fs.StringVarP(&o.output, flagOutput, "o", o.output, "Output format: text (on stderr) or json (on stdout)")
	fs.StringVar(&o.hostRoot, flagHostRoot, o.hostRoot,
		"Directory that stands for / (for tests and for running from a container with the host mounted)")
	_ = fs.MarkHidden(flagHostRoot)
}

// run checks the flags, runs the checks and prints their results. Bad flags
// are usage errors before any check runs.
func run(s cmdutil.IOStreams, o *cmdOptions, dp deps) error {
	if err := cmdutil.ValidateOutput(o.output); err != nil {
		return err
	}
	if o.criSocket != "" {
		if err := cri.Validate(o.criSocket); err != nil {
			return cmdutil.Usagef("pass the runtime's socket, e.g. --"+flagCRISocket+
				" unix:///run/containerd/containerd.sock", "--%s: %v", flagCRISocket, err)
		}
	}
	if o.kubernetesVersion != "" {
		if _, err := utilversion.ParseGeneric(o.kubernetesVersion); err != nil {
			return cmdutil.Usagef("pass the control plane's version, e.g. --"+flagKubernetesVersion+" v1.34.4",
				"--%s %q: %v", flagKubernetesVersion, o.kubernetesVersion, err)
		}
	}
	if o.nodeName != "" {
		if err := ValidateNodeName(o.nodeName); err != nil {
			return cmdutil.Usagef("pass a lower-case DNS name, e.g. --"+flagNodeName+" edge-1", "--%s: %v", flagNodeName, err)
		}
	}
	if err := cmdutil.ValidateHostRoot(flagHostRoot, o.hostRoot); err != nil {
		return err
	}

	checks := JoinChecks(dp.newHost(o.hostRoot), Options{
		NodeName:       o.nodeName,
		CRISocket:      o.criSocket,
		ClusterVersion: o.kubernetesVersion,
		Env:            dp.env,
	})
	ignore, err := ParseIgnore(o.ignore, checks)
	if err != nil {
		return err
	}
	results, runErr := Run(checks, ignore)
	if o.output == cmdutil.OutputJSON {
		if err := s.PrintJSON(NewReport(results, runErr)); err != nil {
			return err
		}
	} else {
		Print(s, results)
	}
	return runErr
}
