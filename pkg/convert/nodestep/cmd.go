package nodestep

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/host"
	"github.com/yurtadm/yurtadm/pkg/version"
	"github.com/yurtadm/yurtadm/pkg/yurthub"
)

// Actions, and the hidden command names the Jobs run.
const (
	ActionConvert = "convert"
	ActionRevert  = "revert"
	// CommandName is the hidden subcommand of convert and revert.
	CommandName = "node"
	// TerminationLog is where kubelet reads a container's termination
	// message: the Result, for the master side to report.
	TerminationLog = "/dev/termination-log"
	// maxMessage is what kubelet keeps of a termination message.
	maxMessage = 4096
)

// Flag names shared with the master side, which builds the Job's command.
const (
	FlagHostRoot     = "host-root"
	FlagNodeName     = "node-name"
	FlagServerAddr   = "server-addr"
	FlagYurthubImage = "yurthub-image"
	// FlagYurthubExtraArg adds one --flag=value to yurthub's command line.
	FlagYurthubExtraArg = "yurthub-extra-arg"
	FlagNodePool        = "nodepool-name"
	FlagNamespace       = "namespace"
	FlagTimeout         = "timeout"
	FlagTermLog         = "termination-log"
)

// EnvFunc builds the node environment for a host root.
type EnvFunc func(root string, log func(string, ...any)) Env

// RealEnv is the real node, commands chrooted into root.
func RealEnv(root string, log func(string, ...any)) Env {
	x := HostExec{Root: root}
	return DefaultEnv(&host.Host{FS: host.FS{Root: root}, Exec: x, Init: host.Systemd{Exec: x}}, log)
}

// NewCommand returns the hidden `<action> node` command run in the Jobs.
func NewCommand(action string, s cmdutil.IOStreams, mkEnv EnvFunc) *cobra.Command {
	o := Options{
		YurthubImage: version.DefaultYurthubImage,
		NodePoolName: constants.DefaultEdgeNodePool,
		Namespace:    constants.DefaultNamespace,
		Timeout:      5 * time.Minute,
	}
	root, termLog := "/", TerminationLog
	cmd := &cobra.Command{
		Use:    CommandName,
		Short:  "Node-side step of " + action + ", run by yurtctl in a privileged Job on each node",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.NodeName == "" {
				o.NodeName = os.Getenv("NODE_NAME")
			}
			if err := cmdutil.ValidateHostRoot(FlagHostRoot, root); err != nil {
				return err
			}
			if err := o.validate(action); err != nil {
				return err
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			env := mkEnv(root, func(f string, a ...any) { s.Logf(action+" node", f, a...) })
			run := Convert
			if action == ActionRevert {
				run = Revert
			}
			res, err := run(ctx, o, env)
			writeResult(s, res, termLog)
			if err != nil {
				return cmdutil.WithHint(err, cmdutil.ExitError, "see the steps above; 'yurtctl revert' undoes a partial convert")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&root, FlagHostRoot, root, "where the node's root is mounted")
	f.StringVar(&o.NodeName, FlagNodeName, o.NodeName, "this node's name (default: $NODE_NAME)")
	f.StringVar(&o.ServerAddr, FlagServerAddr, o.ServerAddr, "API server for yurthub (default: the server in kubelet's kubeconfig)")
	f.StringVar(&o.YurthubImage, FlagYurthubImage, o.YurthubImage, "yurthub image")
	f.StringArrayVar(&o.YurthubExtraArgs, FlagYurthubExtraArg, o.YurthubExtraArgs, "add this --flag=value to yurthub's command line (repeat for more)")
	f.StringVar(&o.NodePoolName, FlagNodePool, o.NodePoolName, "NodePool of this node (yurthub --nodepool-name)")
	f.StringVar(&o.Namespace, FlagNamespace, o.Namespace, "namespace of yurthub's pod and yurt-hub-cfg")
	f.DurationVar(&o.Timeout, FlagTimeout, o.Timeout, "how long to wait for yurthub and for the Node to be Ready")
	f.StringVar(&termLog, FlagTermLog, termLog, "file for the result kubelet reports as the termination message (skipped when its directory is missing)")
	return cmd
}

func (o Options) validate(action string) error {
	if o.NodeName == "" {
		return cmdutil.Usagef("pass --"+FlagNodeName, "the node name is missing")
	}
	if errs := validation.IsDNS1123Subdomain(o.NodeName); len(errs) > 0 {
		return cmdutil.Usagef("pass a valid --"+FlagNodeName, "invalid node name %q: %s", o.NodeName, strings.Join(errs, "; "))
	}
	if o.Timeout <= 0 {
		return cmdutil.Usagef("pass a positive --"+FlagTimeout, "invalid --%s %s", FlagTimeout, o.Timeout)
	}
	if action == ActionConvert {
		if errs := validation.IsDNS1123Label(o.Namespace); len(errs) > 0 {
			return cmdutil.Usagef("pass a valid --"+FlagNamespace, "invalid namespace %q: %s", o.Namespace, strings.Join(errs, "; "))
		}
		if err := yurthub.ValidateImage(o.YurthubImage); err != nil {
			return cmdutil.Usagef("pass an image reference like "+version.DefaultYurthubImage, "invalid --%s: %v", FlagYurthubImage, err)
		}
		if err := yurthub.ValidateExtraArgs(o.YurthubExtraArgs); err != nil {
			return cmdutil.Usagef("write each as --flag=value", "invalid --%s: %v", FlagYurthubExtraArg, err)
		}
		if errs := validation.IsDNS1123Label(o.NodePoolName); len(errs) > 0 {
			return cmdutil.Usagef("pass a valid --"+FlagNodePool, "invalid nodepool name %q: %s", o.NodePoolName, strings.Join(errs, "; "))
		}
	}
	return nil
}

// writeResult prints the result on stdout and, compact, as the
// termination message.
func writeResult(s cmdutil.IOStreams, r *Result, termLog string) {
	if r == nil {
		return
	}
	for _, st := range r.Steps {
		s.Logf(r.Action+" node", "%-16s %-8s %s", st.Name, st.Status, st.Message)
	}
	_ = s.PrintJSON(r)
	if termLog == "" {
		return
	}
	if _, err := os.Stat(dirOf(termLog)); err != nil {
		return
	}
	if err := os.WriteFile(termLog, TerminationMessage(r), 0o644); err != nil {
		s.Logf(r.Action+" node", "WARNING: could not write %s: %v", termLog, err)
	}
}

func dirOf(p string) string {
	if i := strings.LastIndex(p, "/"); i > 0 {
		return p[:i]
	}
	return "/"
}

// TerminationMessage is r as compact JSON that fits kubelet's limit: the
// steps are dropped first, then the message is cut.
func TerminationMessage(r *Result) []byte {
	b, _ := json.Marshal(r)
	if len(b) <= maxMessage {
		return b
	}
	short := *r
	short.Steps = nil
	b, _ = json.Marshal(short)
	if len(b) <= maxMessage {
		return b
	}
	short.Message = short.Message[:len(short.Message)-(len(b)-maxMessage)-3] + "..."
	b, _ = json.Marshal(short)
	return b
}

// ParseTerminationMessage reads a Result back from a termination message.
func ParseTerminationMessage(msg string) (*Result, error) {
	var r Result
	if err := json.Unmarshal([]byte(msg), &r); err != nil {
		return nil, fmt.Errorf("not a node step result: %w", err)
	}
	return &r, nil
}
