// Package join implements `yurtadm join`: it makes this machine a node of a
// kubeadm cluster whose kubelet talks to kube-apiserver through yurthub.
package join

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/lithammer/dedent"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/rest"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/host"
	"github.com/yurtadm/yurtadm/pkg/kube"
	"github.com/yurtadm/yurtadm/pkg/preflight"
	"github.com/yurtadm/yurtadm/pkg/workflow"
)

// Env holds what a test replaces: the host, clients and endpoints.
type Env struct {
	Host       func(root string) *host.Host
	Hostname   func() (string, error)
	NewClient  func(*rest.Config) (kube.Interface, error)
	HTTP       *http.Client
	HealthzURL string
	ProxyURL   string
	Poll       time.Duration
	// Preflight is the machine as the preflight checks see it (zero: real).
	Preflight preflight.Env
	// ServingCertWait bounds how long join waits for the yurthub serving
	// certificate it asks for ahead of yurthub (zero: it does not ask).
	ServingCertWait time.Duration
	// NodeIP is the node's default IPv4 address, as yurthub finds it.
	NodeIP func() (net.IP, error)
}

// DefaultEnv is the real machine.
func DefaultEnv() Env {
	return Env{
		Host:       host.New,
		Hostname:   os.Hostname,
		HTTP:       &http.Client{Timeout: 5 * time.Second},
		HealthzURL: constants.YurthubHealthzURL,
		ProxyURL:   constants.YurthubProxyURL,
		// Each wait is a local check (yurthub's healthz, a file) or one
		// small GET through yurthub; every second of it is a second the
		// user waits.
		Poll: 100 * time.Millisecond,
		// Approval by yurt-manager and signing take about a second.
		ServingCertWait: 15 * time.Second,
		NodeIP:          utilnet.ChooseHostInterface,
	}
}

// NewCommand returns `yurtadm join`.
func NewCommand(s cmdutil.IOStreams) *cobra.Command { return NewCommandWithEnv(s, DefaultEnv()) }

var joinExample = dedent.Dedent(`
	# Join this machine as an edge node (values from 'kubeadm token create --print-join-command')
	yurtadm join 192.168.1.10:6443 --token abcdef.0123456789abcdef \
	    --discovery-token-ca-cert-hash sha256:1234...cdef

	# Join as a cloud node in the pool "hangzhou"
	yurtadm join 192.168.1.10:6443 --token ... --discovery-token-ca-cert-hash ... \
	    --node-type cloud --nodepool-name hangzhou

	# See what would be written, without changing anything
	yurtadm join 192.168.1.10:6443 --token ... --discovery-token-ca-cert-hash ... --dry-run`)

// NewCommandWithEnv returns `yurtadm join` bound to env.
func NewCommandWithEnv(s cmdutil.IOStreams, env Env) *cobra.Command {
	opts := newOptions()
	runner := workflow.NewRunner()
	var data *joinData

	cmd := &cobra.Command{
		Use:   "join <apiserver-host:port>",
		Short: "Join this machine to a kubeadm cluster as an OpenYurt edge or cloud node",
		Long: dedent.Dedent(`
			Join this machine to a kubeadm cluster as an OpenYurt node. kubelet
			bootstraps its certificate with the bootstrap token, runs yurthub as a
			static pod, and then talks to kube-apiserver only through yurthub, which
			caches what the node needs so that pods keep running and restart when
			the link to the cloud drops.`),
		Example: joinExample,
		Args:    endpointArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			rd, err := runner.InitData(args)
			if err != nil {
				return err
			}
			data = rd.(*joinData)
			if err := runner.Run(args); err != nil {
				return rollback(data, err)
			}
			return printSummary(data)
		},
	}
	opts.AddFlags(cmd.Flags())
	var inherit []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) { inherit = append(inherit, f.Name) })

	for _, p := range phases(inherit) {
		p := p
		run := p.Run
		// A phase run alone (`yurtadm join phase X`) rolls back what it
		// wrote when it fails, as the whole join does.
		p.Run = func(c workflow.RunData) error {
			// Interrupted (SIGINT, SIGTERM): start no further phase; the
			// error rolls back what was written, as any failure does.
			jd := c.(*joinData)
			err := jd.Context().Err()
			if err != nil {
				err = fmt.Errorf("interrupted before phase %s: %w", p.Name, err)
			} else {
				began := time.Now()
				err = run(c)
				jd.outcome.Phases = append(jd.outcome.Phases, PhaseTime{Name: p.Name, Millis: time.Since(began).Milliseconds()})
			}
			if err != nil && runner.Options.FilterPhases != nil {
				return rollback(c.(*joinData), err)
			}
			return err
		}
		runner.AppendPhase(p)
	}
	runner.SetDataInitializer(func(c *cobra.Command, args []string) (workflow.RunData, error) {
		return newJoinData(c, args, opts, s, env)
	})
	runner.BindToCommand(cmd)
	phaseCommandNamesPhases(cmd)
	return cmd
}

// phaseCommandNamesPhases makes `yurtadm join phase <unknown>` a usage
// error that lists the phases (cobra said "unknown flag: --token", since
// the phase command itself has no flags, or exited 1).
func phaseCommandNamesPhases(join *cobra.Command) {
	names := phaseNames()
	for _, sc := range join.Commands() {
		if sc.Name() != "phase" {
			continue
		}
		sc.FParseErrWhitelist.UnknownFlags = true
		sc.Args = func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cmdutil.Usagef("the phases are: "+strings.Join(names, ", "), "unknown phase %q for 'yurtadm join phase'", args[0])
			}
			return cmdutil.Usagef("the phases are: "+strings.Join(names, ", "), "name the phase to run: yurtadm join phase <phase> [flags]")
		}
	}
}

func newJoinData(cmd *cobra.Command, args []string, opts *Options, s cmdutil.IOStreams, env Env) (*joinData, error) {
	if len(args) == 1 {
		opts.APIServerEndpoint = args[0]
	}
	if err := opts.loadConfig(cmd.Flags()); err != nil {
		return nil, err
	}
	if err := opts.complete(env.Hostname); err != nil {
		return nil, err
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	h := env.Host(opts.HostRoot)
	// Unknown --ignore-preflight-errors names are bad input: refuse them
	// before anything runs. Building the checks touches nothing.
	if _, err := preflight.ParseIgnore(opts.IgnorePreflightErrors, preflight.JoinChecks(h, preflight.Options{})); err != nil {
		return nil, err
	}
	skip, _ := cmd.Flags().GetStringSlice("skip-phases")
	if err := checkSkipPhases(skip); err != nil {
		return nil, err
	}
	if sets.New(skip...).Has(PhasePreflight) {
		opts.skipPreflight = true
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return &joinData{
		ctx:          ctx,
		opts:         opts,
		host:         h,
		io:           s.Narration(opts.Output),
		result:       s,
		files:        newWriter(h.FS, s.Narration(opts.Output), opts.DryRun, opts.redact),
		http:         env.HTTP,
		client:       env.NewClient,
		healthzURL:   env.HealthzURL,
		proxyURL:     env.ProxyURL,
		poll:         env.Poll,
		preflightEnv: env.Preflight,
		certWait:     env.ServingCertWait,
		nodeIP:       env.NodeIP,
	}, nil
}

// endpointArg accepts at most one argument, the API server's endpoint; more
// is a usage error (exit 2) that names them.
func endpointArg(_ *cobra.Command, args []string) error {
	if len(args) > 1 {
		return cmdutil.Usagef("pass one endpoint: yurtadm join <apiserver-host:port> [flags]",
			"%d arguments given (%s); join takes one API server endpoint", len(args), strings.Join(args, " "))
	}
	return nil
}

// phaseNames are the join phases' names, in order.
func phaseNames() []string {
	var names []string
	for _, p := range phases(nil) {
		names = append(names, p.Name)
	}
	return names
}

// checkSkipPhases refuses a --skip-phases list that would skip every
// phase (an unknown name is the runner's usage error, naming the phases).
func checkSkipPhases(skip []string) error {
	names := phaseNames()
	if sets.New(names...).Equal(sets.New(skip...)) {
		return cmdutil.Usagef("leave at least one phase to run (the phases are: "+strings.Join(names, ", ")+")",
			"--skip-phases skips every phase: nothing would be done")
	}
	return nil
}

// rollback undoes what this run wrote after a failure and returns the
// original error with what was undone and what is left to do.
func rollback(d *joinData, cause error) error {
	if d == nil || d.DryRun() {
		return cause
	}
	written := d.files.Written()
	h := d.host
	var problems []error
	if d.started {
		if err := h.Init.ServiceStop(constants.KubeletService); err != nil {
			problems = append(problems, fmt.Errorf("stop kubelet: %w", err))
		} else {
			d.io.Logf("rollback", "Stopped kubelet")
		}
		// kubelet's own output of this run: its kubeconfig and certificates.
		for _, p := range []string{constants.KubeletKubeconfig, constants.KubeletPKIDir} {
			if removed, err := h.FS.RemoveAll(p); err != nil {
				problems = append(problems, err)
			} else if removed {
				d.io.Logf("rollback", "Removed %s (written by kubelet)", p)
			}
		}
	}
	problems = append(problems, d.files.Rollback()...)
	for _, p := range written {
		d.io.Logf("rollback", "Restored %s", p)
	}
	hint := cmdutil.Hint(cause)
	if d.started {
		extra := "kubelet ran: run 'yurtadm reset --force' to remove its containers before joining again"
		if hint != "" {
			hint += "; " + extra
		} else {
			hint = extra
		}
	}
	if len(problems) > 0 {
		msgs := make([]string, len(problems))
		for i, p := range problems {
			msgs[i] = p.Error()
		}
		hint = "the rollback was incomplete (" + strings.Join(msgs, "; ") + "): run 'yurtadm reset --force'. " + hint
	}
	return &cmdutil.Error{Code: cmdutil.ExitCode(cause), Err: cause, Hint: hint}
}

// Summary is what a successful join reports (-o json).
type Summary struct {
	NodeName          string `json:"nodeName"`
	NodeType          string `json:"nodeType"`
	NodePool          string `json:"nodePool"`
	Server            string `json:"server"`
	KubernetesVersion string `json:"kubernetesVersion"`
	KubeletKubeconfig string `json:"kubeletKubeconfig"`
	YurthubManifest   string `json:"yurthubManifest"`
	// YurthubTemplate says where the manifest came from: the cluster's
	// YurtStaticSet or the built-in template (and why).
	YurthubTemplate string `json:"yurthubTemplate,omitempty"`
	// Autonomy is the node.openyurt.io/autonomy-duration set on the Node.
	Autonomy     string   `json:"autonomy,omitempty"`
	FilesWritten []string `json:"filesWritten"`
	DryRun       bool     `json:"dryRun"`
	// Phases is each phase that ran and its wall time, in order.
	Phases []PhaseTime `json:"phases"`
}

// PhaseTime is a phase's wall time.
type PhaseTime struct {
	Name   string `json:"name"`
	Millis int64  `json:"ms"`
}

// phaseTimes is "took 4.4s: preflight 20ms, discovery 10ms, ...".
func phaseTimes(ps []PhaseTime) string {
	var total int64
	var parts []string
	for _, p := range ps {
		total += p.Millis
		parts = append(parts, fmt.Sprintf("%s %s", p.Name, time.Duration(p.Millis)*time.Millisecond))
	}
	return fmt.Sprintf("%s (%s)", time.Duration(total)*time.Millisecond, strings.Join(parts, ", "))
}

func printSummary(d *joinData) error {
	o := d.opts
	sum := Summary{NodeName: o.NodeName, NodeType: o.NodeType, NodePool: o.NodePoolName,
		KubeletKubeconfig: constants.OpenYurtKubeletConfig, YurthubManifest: constants.YurthubManifest,
		FilesWritten: d.files.Written(), DryRun: o.DryRun, YurthubTemplate: d.outcome.YurthubTemplate, Autonomy: d.outcome.Autonomy,
		Phases: d.outcome.Phases}
	if d.discovered != nil {
		sum.Server, sum.KubernetesVersion = d.discovered.Server, d.discovered.KubernetesVersion
	}
	if o.Output == cmdutil.OutputJSON {
		return d.result.PrintJSON(sum)
	}
	if o.DryRun {
		fmt.Fprintf(d.io.Out, "\nDry run: nothing was changed.\n")
		return nil
	}
	fmt.Fprintf(d.io.Out, dedent.Dedent(`
		This node has joined the cluster as an OpenYurt %s node:
		  * Node %q is Ready, in nodepool %q
		  * kubelet talks to %s through yurthub (%s)
		  * yurthub runs as the static pod %s, from %s
		  * autonomy: %s
		  * took %s

		Run 'kubectl get nodes' on the control plane to see it.
		To undo this join, run 'yurtadm reset'.
		`), o.NodeType, o.NodeName, o.NodePoolName, sum.Server, constants.YurthubProxyURL, constants.YurthubManifest,
		orDash(sum.YurthubTemplate), autonomyText(sum.Autonomy), phaseTimes(sum.Phases))
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// autonomyText says what the autonomy annotation means for the operator.
func autonomyText(v string) string {
	switch v {
	case "":
		return "not set (the cloud evicts this node's pods as on any node when it is cut off)"
	case autonomyForever:
		return "node.openyurt.io/autonomy-duration=0 (its pods stay for as long as it is cut off)"
	}
	return "node.openyurt.io/autonomy-duration=" + v + " (its pods stay that long while it is cut off)"
}
