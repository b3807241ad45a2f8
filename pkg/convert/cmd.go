package convert

import (
	"context"
	"fmt"
	"strings"

	"github.com/lithammer/dedent"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/kubernetes/cmd/kubeadm/app/cmd/phases/workflow"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/kube"
)

// PhaseControlPlane installs what yurthub needs from the cluster.
const PhaseControlPlane = "control-plane"

// Data is what the convert phases ask for.
type Data interface {
	Context() context.Context
	Clients() (Clients, error)
	Options() *Options
	IO() cmdutil.IOStreams
}

// Options of yurtctl convert.
type Options struct {
	Kubeconfig string
	Namespace  string
	Output     string
}

type convertData struct {
	ctx     context.Context
	opts    *Options
	io      cmdutil.IOStreams
	clients func(*rest.Config) (Clients, error)
	actions []Action
}

var _ Data = &convertData{}

func (d *convertData) Context() context.Context { return d.ctx }
func (d *convertData) Options() *Options        { return d.opts }
func (d *convertData) IO() cmdutil.IOStreams    { return d.io }

func (d *convertData) Clients() (Clients, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = d.opts.Kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return Clients{}, cmdutil.WithHint(fmt.Errorf("load the admin kubeconfig: %w", err), cmdutil.ExitUsage,
			"pass --kubeconfig /etc/kubernetes/admin.conf, or set KUBECONFIG")
	}
	cfg.UserAgent = "yurtctl"
	return d.clients(cfg)
}

// RealClients builds clients for cfg.
func RealClients(cfg *rest.Config) (Clients, error) {
	kc, err := kube.New(cfg)
	if err != nil {
		return Clients{}, err
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return Clients{}, err
	}
	return Clients{Kube: kc, Dynamic: dc}, nil
}

// NewCommand returns `yurtctl convert`.
func NewCommand(s cmdutil.IOStreams) *cobra.Command { return newCommand(s, RealClients) }

func newCommand(s cmdutil.IOStreams, clients func(*rest.Config) (Clients, error)) *cobra.Command {
	opts := &Options{Namespace: constants.DefaultNamespace, Output: cmdutil.OutputText}
	runner := workflow.NewRunner()
	cmd := &cobra.Command{
		Use:   "convert",
		Short: "Prepare a kubeadm cluster for OpenYurt edge nodes (run on the master)",
		Long: dedent.Dedent(`
			Turn a kubeadm cluster into an OpenYurt cluster. This version has the
			control-plane phase only: it installs what yurthub needs before any
			edge node joins (the NodePool CRD and the default pools "edge" and
			"cloud", RBAC for nodes, the yurt-hub-cfg ConfigMap). Converting
			nodes that already run (the nodes phase) is not part of this version;
			join new nodes with 'yurtadm join'.`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := runner.Run(args); err != nil {
				return err
			}
			return nil
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.Kubeconfig, "kubeconfig", "", "admin kubeconfig (default: $KUBECONFIG or ~/.kube/config)")
	flags.StringVar(&opts.Namespace, "namespace", opts.Namespace, "namespace of OpenYurt's components and yurt-hub-cfg")
	flags.StringVarP(&opts.Output, "output", "o", opts.Output, "text or json")
	inherit := []string{"kubeconfig", "namespace", "output"}

	runner.AppendPhase(workflow.Phase{
		Name:         PhaseControlPlane,
		Short:        "Install the NodePool CRD, default pools, RBAC for yurthub and the yurt-hub-cfg ConfigMap",
		InheritFlags: inherit,
		Run:          func(c workflow.RunData) error { return runControlPlane(c.(Data)) },
	})
	runner.SetDataInitializer(func(c *cobra.Command, _ []string) (workflow.RunData, error) {
		if err := cmdutil.ValidateOutput(opts.Output); err != nil {
			return nil, err
		}
		if errs := validation.IsDNS1123Label(opts.Namespace); len(errs) > 0 {
			return nil, cmdutil.Usagef("pass a valid --namespace", "invalid namespace %q: %s", opts.Namespace, strings.Join(errs, "; "))
		}
		ctx := c.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		return &convertData{ctx: ctx, opts: opts, io: s, clients: clients}, nil
	})
	runner.BindToCommand(cmd)
	return cmd
}

func runControlPlane(d Data) error {
	c, err := d.Clients()
	if err != nil {
		return err
	}
	actions, err := EnsureControlPlane(d.Context(), c, ControlPlaneOptions{
		Namespace: d.Options().Namespace,
		NodePools: map[string]string{constants.DefaultEdgeNodePool: "Edge", constants.DefaultCloudNodePool: "Cloud"},
	})
	if d.Options().Output == cmdutil.OutputJSON {
		if jerr := d.IO().PrintJSON(map[string]any{"actions": actions}); jerr != nil && err == nil {
			err = jerr
		}
	} else {
		for _, a := range actions {
			d.IO().Logf("control-plane", "%s", a)
		}
	}
	if err != nil {
		return cmdutil.WithHint(err, cmdutil.ExitError, "check that the kubeconfig is a cluster admin's; the phase is safe to run again")
	}
	return nil
}
