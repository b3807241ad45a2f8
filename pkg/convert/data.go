package convert

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/convert/controlplane"
	"github.com/yurtadm/yurtadm/pkg/convert/lock"
	"github.com/yurtadm/yurtadm/pkg/convert/nodejobs"
	"github.com/yurtadm/yurtadm/pkg/convert/nodestep"
	"github.com/yurtadm/yurtadm/pkg/kube"
)

// Env holds what tests replace.
type Env struct {
	NewClients func(*rest.Config) (controlplane.Clients, error)
	// WrapTransport wraps the API client's transport (tests count requests).
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// JobManagedBy is set only under a simulator that plays the Job
	// controller; real runs leave the Jobs to kube-controller-manager.
	JobManagedBy string
	Now          func() time.Time
	Identity     func(op string) string
	// MessageGrace is how long a finished Job waits for its pod's result.
	MessageGrace time.Duration
	NodeStep     nodestep.EnvFunc
	// RunHelm runs the helm CLI (default ExecHelm).
	RunHelm func(ctx context.Context, bin string, args []string) (stdout, stderr []byte, err error)
}

// DefaultEnv is the real cluster.
func DefaultEnv() Env {
	return Env{NewClients: RealClients, Now: time.Now, Identity: lock.Identity, MessageGrace: 3 * time.Second, NodeStep: nodestep.RealEnv}
}

// RealClients builds clients for cfg.
func RealClients(cfg *rest.Config) (controlplane.Clients, error) {
	kc, err := kube.New(cfg)
	if err != nil {
		return controlplane.Clients{}, err
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return controlplane.Clients{}, err
	}
	return controlplane.Clients{Kube: kc, Dynamic: dc}, nil
}

// ReportLine is one step of the run, for the report and -o json.
type ReportLine struct {
	Phase   string `json:"phase"`
	Status  string `json:"status"` // done, skipped, warning, failed, would
	Message string `json:"message"`
}

// phaseData is what the phases of convert and revert see of a run, as
// kubeadm's join phases see a JoinData; runData is its one implementation.
type phaseData interface {
	Context() context.Context
	Action() string // nodestep.ActionConvert or nodestep.ActionRevert
	Options() *Options
	Env() Env
	Clients() (controlplane.Clients, error)
	NodeClients(name string) (controlplane.Clients, error)
	// Plan lists the cluster once and plans the run.
	Plan() (*Plan, error)
	PrintPlan(p *Plan)
	// Prepare is what every phase that writes does first: the plan, the
	// lock and the confirmation.
	Prepare() (*Plan, error)
	// LockLost is why the run's lock was lost, nil while it is held.
	LockLost() error
	// Report records a step for the report and -o json and says it.
	Report(phase, status, format string, a ...any)
	Logf(phase, format string, a ...any)
	AddResults(r ...nodejobs.Result)
	Results() []nodejobs.Result
	SetKubernetesVersion(v string)
}

// runData is what every convert and revert phase works with.
type runData struct {
	ctx    context.Context
	action string
	opts   *Options
	io     cmdutil.IOStreams // progress and dry-run lines (cmdutil.Narration)
	result cmdutil.IOStreams // where -o json's result goes
	env    Env

	mu         sync.Mutex
	clients    *controlplane.Clients
	restConfig *rest.Config
	plan       *Plan
	lock       *lock.Lock
	lostErr    error // why the lock was lost, kept after release
	confirmed  bool
	results    []nodejobs.Result
	report     []ReportLine
	failed     []string
	version    string
}

func (d *runData) Context() context.Context { return d.ctx }
func (d *runData) Action() string           { return d.action }
func (d *runData) Options() *Options        { return d.opts }
func (d *runData) Env() Env                 { return d.env }

func (d *runData) AddResults(r ...nodejobs.Result) { d.results = append(d.results, r...) }
func (d *runData) Results() []nodejobs.Result      { return d.results }
func (d *runData) SetKubernetesVersion(v string)   { d.version = v }

func (d *runData) Logf(phase, format string, a ...any) { d.io.Logf(phase, format, a...) }

func (d *runData) Report(phase, status, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	d.mu.Lock()
	d.report = append(d.report, ReportLine{Phase: phase, Status: status, Message: msg})
	if status == "failed" {
		d.failed = append(d.failed, phase+": "+msg)
	}
	d.mu.Unlock()
	if status == "would" {
		fmt.Fprintf(d.io.Out, "[dryrun] would %s\n", msg)
		return
	}
	if status == "warning" || status == "failed" {
		d.Logf(phase, "%s: %s", strings.ToUpper(status), msg)
		return
	}
	d.Logf(phase, "%s", msg)
}

// Clients loads the admin kubeconfig once. The client has no client-side
// rate limit: convert bounds its own in-flight requests with --concurrency
// and leaves fairness to the API server's priority and fairness.
func (d *runData) Clients() (controlplane.Clients, error) {
	if d.clients != nil {
		return *d.clients, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = d.opts.Kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return controlplane.Clients{}, cmdutil.WithHint(fmt.Errorf("load the admin kubeconfig: %w", err), cmdutil.ExitUsage,
			"pass --kubeconfig /etc/kubernetes/admin.conf, or set KUBECONFIG")
	}
	cfg.UserAgent = "yurtctl"
	cfg.QPS, cfg.Burst = -1, 0
	if d.env.WrapTransport != nil {
		cfg.Wrap(d.env.WrapTransport)
	}
	c, err := d.env.NewClients(cfg)
	if err != nil {
		return controlplane.Clients{}, err
	}
	d.clients, d.restConfig = &c, cfg
	return c, nil
}

// NodeClients talk to the API server as the node name (the admin
// impersonates system:node:<name> in group system:nodes), for what only a
// node may change on itself.
func (d *runData) NodeClients(name string) (controlplane.Clients, error) {
	if _, err := d.Clients(); err != nil {
		return controlplane.Clients{}, err
	}
	cfg := rest.CopyConfig(d.restConfig)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:node:" + name, Groups: []string{"system:nodes", "system:authenticated"}}
	return d.env.NewClients(cfg)
}

// Lock takes the cluster-wide lock once (not in dry-run).
func (d *runData) Lock() error {
	if d.lock != nil || d.opts.DryRun {
		return nil
	}
	c, err := d.Clients()
	if err != nil {
		return err
	}
	l, err := lock.Acquire(d.ctx, c.Kube, d.opts.Namespace, d.env.Identity(d.action), d.env.Now,
		func(format string, a ...any) { d.Logf(PhasePreflight, format, a...) })
	if err != nil {
		return err
	}
	d.lock = l
	// A run that loses its lock stops starting work: every wait and
	// request of the phases after this one ends with its context.
	ctx, cancel := context.WithCancelCause(d.ctx)
	d.ctx = ctx
	go func() {
		select {
		case <-l.Lost():
			d.Logf(PhasePreflight, "ERROR: %v: stopping", l.LostErr())
			cancel(l.LostErr())
		case <-ctx.Done():
		}
	}()
	d.Logf(PhasePreflight, "Holding the lock %s/%s for this %s", d.opts.Namespace, lock.Name, d.action)
	return nil
}

// LockLost is why this run's lock was lost, nil while it is held.
func (d *runData) LockLost() error {
	if d.lock == nil {
		return d.lostErr
	}
	return d.lock.LostErr()
}

// release gives the lock back.
func (d *runData) release() {
	if d.lock == nil {
		return
	}
	d.lostErr = d.lock.LostErr()
	if err := d.lock.Release(context.WithoutCancel(d.ctx)); err != nil {
		d.Logf(PhaseCleanup, "WARNING: %v", err)
	}
	d.lock = nil
}

// confirm asks once before the first change.
func (d *runData) confirm(what string) error {
	if d.confirmed || d.opts.DryRun || d.opts.Yes {
		d.confirmed = true
		return nil
	}
	if err := cmdutil.Confirm(d.ctx, d.io, what, flagYes); err != nil {
		return err
	}
	d.confirmed = true
	return nil
}

// Prepare is what every phase that writes does first: the plan, the lock
// and the confirmation.
func (d *runData) Prepare() (*Plan, error) {
	p, err := d.Plan()
	if err != nil {
		return nil, err
	}
	if err := d.Lock(); err != nil {
		return nil, err
	}
	if err := d.confirm(d.question(p)); err != nil {
		return nil, err
	}
	return p, nil
}

func (d *runData) question(p *Plan) string {
	if d.action == nodestep.ActionRevert {
		return fmt.Sprintf("Revert %d node(s) to talk to kube-apiserver directly (kubelet restarts on each) and remove OpenYurt from the cluster?", len(p.nodesWithStep(StepRevert)))
	}
	return fmt.Sprintf("Convert %d edge node(s) (kubelet restarts on each; running pods are kept) and install what OpenYurt needs?", len(p.nodesWithStep(StepConvert)))
}

func newRunData(c *cobra.Command, action string, opts *Options, s cmdutil.IOStreams, env Env) (*runData, error) {
	if err := opts.validate(c.Flags(), action == nodestep.ActionConvert); err != nil {
		return nil, err
	}
	ctx := c.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Identity == nil {
		env.Identity = lock.Identity
	}
	if env.NewClients == nil {
		env.NewClients = RealClients
	}
	return &runData{ctx: ctx, action: action, opts: opts, io: s.Narration(opts.Output), result: s, env: env}, nil
}

// summary prints the result (table or JSON) and turns failures into the
// command's error with what to do next.
func (d *runData) summary(err error) error {
	var bad []nodejobs.Result
	for _, r := range d.results {
		if !r.OK() {
			bad = append(bad, r)
		}
	}
	if d.opts.Output == cmdutil.OutputJSON {
		_ = d.result.PrintJSON(map[string]any{
			"action": d.action, "dryRun": d.opts.DryRun, "plan": d.plan, "nodes": d.results, "report": d.report,
			"succeeded": err == nil && len(bad) == 0 && len(d.failed) == 0,
		})
	} else if len(d.results) > 0 {
		fmt.Fprintf(d.io.Out, "\n%s", nodejobs.Table(d.results))
	}
	if lost := d.LockLost(); lost != nil {
		return &cmdutil.Error{Code: cmdutil.ExitPreflight, Err: lost,
			Hint: "another yurtctl convert or revert may own the cluster now ('kubectl -n " + d.opts.Namespace + " get lease " + lock.Name + " -o yaml' names it); this run started nothing after it lost the lock and left its node Jobs to the new holder. Run the command again once that one is done"}
	}
	if err != nil {
		return err
	}
	if d.opts.DryRun {
		if d.opts.Output != cmdutil.OutputJSON {
			fmt.Fprintf(d.io.Out, "\nDry run: nothing was changed.\n")
		}
		return nil
	}
	if len(bad) == 0 && len(d.failed) == 0 {
		if d.opts.Output != cmdutil.OutputJSON && d.plan != nil {
			fmt.Fprintf(d.io.Out, "\n%s finished: %d node(s).\n", strings.ToUpper(d.action[:1])+d.action[1:], len(d.plan.Nodes))
		}
		return nil
	}
	var names []string
	for _, r := range bad {
		names = append(names, r.Node+" ("+r.Outcome+")")
	}
	msgs := append([]string(nil), d.failed...)
	if len(names) > 0 {
		msgs = append([]string{fmt.Sprintf("%d node(s) failed: %s", len(names), strings.Join(names, ", "))}, msgs...)
	}
	hint := "the failed nodes were rolled back by their node step and work as before; the others are converted. " +
		"Read each node's DETAILS, fix the cause (e.g. the yurthub image on that node, 'kubectl -n " + d.opts.Namespace + " logs' of its Job), " +
		"then run 'yurtctl convert' again: converted nodes are skipped. 'yurtctl revert' undoes everything."
	if d.action == nodestep.ActionRevert {
		hint = "revert is best effort: the steps above that failed are what is left. Fix their cause and run 'yurtctl revert' again: reverted nodes and removed objects are skipped."
	}
	return &cmdutil.Error{Code: cmdutil.ExitError, Err: fmt.Errorf("%s", strings.Join(msgs, "; ")), Hint: hint}
}

// Plan lists the cluster once and plans the run.
func (d *runData) Plan() (*Plan, error) {
	if d.plan != nil {
		return d.plan, nil
	}
	c, err := d.Clients()
	if err != nil {
		return nil, err
	}
	nodes, err := c.Kube.CoreV1().Nodes().List(d.ctx, listAll)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	pods, err := c.Kube.CoreV1().Pods(d.opts.Namespace).List(d.ctx, listOpts(yurthubAppLabel))
	if err != nil {
		return nil, fmt.Errorf("list yurthub pods: %w", err)
	}
	var p *Plan
	if d.action == nodestep.ActionRevert {
		p = PlanRevert(nodes.Items, pods.Items)
	} else if p, err = PlanConvert(nodes.Items, pods.Items, d.opts); err != nil {
		return nil, err
	}
	p.KubernetesVersion = d.version
	d.plan = p
	return p, nil
}

// PrintPlan shows the plan: in full for --dry-run, a summary otherwise.
func (d *runData) PrintPlan(p *Plan) {
	if d.opts.Output == cmdutil.OutputJSON {
		return
	}
	w := d.io.ErrOut
	if d.opts.DryRun {
		w = d.io.Out
	}
	counts := map[string]int{}
	for _, n := range p.Nodes {
		counts[n.Step]++
	}
	fmt.Fprintf(w, "Plan (%s): %d node(s): ", p.Action, len(p.Nodes))
	var keys []string
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 {
			fmt.Fprint(w, ", ")
		}
		fmt.Fprintf(w, "%d %s", counts[k], k)
	}
	fmt.Fprintln(w)
	if !d.opts.DryRun && len(p.Nodes) > 20 {
		return
	}
	fmt.Fprintf(w, "  %-28s %-6s %-10s %-10s %-8s %s\n", "NODE", "ROLE", "POOL", "AUTONOMY", "STEP", "LABELS/ANNOTATIONS")
	for _, n := range p.Nodes {
		var kv []string
		for _, m := range []map[string]string{n.Labels, n.Annotations} {
			for k, v := range m {
				if d.action == nodestep.ActionRevert {
					kv = append(kv, "-"+k)
				} else {
					kv = append(kv, k+"="+v)
				}
			}
		}
		sort.Strings(kv)
		step := n.Step
		if n.Reason != "" && n.Step != StepConvert && n.Step != StepRevert {
			step += " (" + n.Reason + ")"
		}
		fmt.Fprintf(w, "  %-28s %-6s %-10s %-10v %-8s %s\n", n.Name, n.Role, n.Pool, n.Autonomous, step, strings.Join(kv, ","))
	}
	if d.opts.DryRun {
		fmt.Fprintf(w, "Files the node step changes on each %s node:\n", map[bool]string{true: "reverted", false: "edge"}[d.action == nodestep.ActionRevert])
		for _, f := range p.NodeFiles {
			fmt.Fprintf(w, "  %s\n", f)
		}
	}
	for _, warn := range p.Warnings {
		fmt.Fprintf(d.io.ErrOut, "WARNING: %s\n", warn)
	}
}
