package convert

import (
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/convert/nodejobs"
	"github.com/yurtadm/yurtadm/pkg/convert/nodestep"
)

// jobSpec is what the node Jobs of action share, from the flags.
func jobSpec(action string, o *Options, managedBy string) nodejobs.Spec {
	return nodejobs.Spec{Action: action, Namespace: o.Namespace, Image: o.NodeImage, Timeout: o.Timeout,
		YurthubImage: o.YurthubImage, YurthubExtraArgs: o.YurthubExtraArgs, ManagedBy: managedBy}
}

func runNodeSteps(d phaseData, step string) error {
	p, err := d.Prepare()
	if err != nil {
		return err
	}
	c, err := d.Clients()
	if err != nil {
		return err
	}
	nodes := p.nodesWithStep(step)
	pool := map[string]string{}
	for _, n := range p.Nodes {
		pool[n.Name] = n.Pool
		if n.Step == StepSkip {
			d.AddResults(nodejobs.Result{Node: n.Name, Outcome: nodejobs.OutcomeSkipped, Message: n.Reason})
		}
	}
	spec := jobSpec(d.Action(), d.Options(), d.Env().JobManagedBy)
	if d.Options().DryRun {
		for _, n := range nodes {
			j := spec.Job(n, pool[n])
			d.Report(PhaseNodes, "would", "create Job %s<random> on node %s running: %s %s", j.GenerateName, n,
				strings.Join(j.Spec.Template.Spec.Containers[0].Command, " "), strings.Join(j.Spec.Template.Spec.Containers[0].Args, " "))
		}
		return nil
	}
	if len(nodes) == 0 {
		d.Report(PhaseNodes, "skipped", "no node needs the %s step", d.Action())
		return nil
	}
	r := &nodejobs.Runner{
		Client: c.Kube, Namespace: d.Options().Namespace, Action: d.Action(), Concurrency: d.Options().Concurrency,
		Deadline: nodejobs.Deadline(d.Options().Timeout), MessageGrace: d.Env().MessageGrace,
		Build:    func(n string) *batchv1.Job { return spec.Job(n, pool[n]) },
		Progress: func(f string, a ...any) { d.Logf(PhaseNodes, f, a...) },
	}
	d.Logf(PhaseNodes, "Running the %s step on %d node(s), %d at a time (image %s)", d.Action(), len(nodes), d.Options().Concurrency, d.Options().NodeImage)
	results, err := r.Run(d.Context(), nodes)
	d.AddResults(results...)
	if err != nil {
		return cmdutil.WithHint(fmt.Errorf("%s interrupted: %w", d.Action(), err), cmdutil.ExitError,
			"the node Jobs keep running; run the same command again: it takes them over")
	}
	if step == StepConvert {
		unlabelRolledBack(d, p, results)
	}
	return nil
}

// unlabelRolledBack takes back, from each node whose node step rolled back
// (kubelet talks to kube-apiserver directly again), the labels and
// annotations this run's labels phase gave it: an edge-worker label or an
// autonomy annotation on a node without yurthub would tell OpenYurt's
// controllers it can live through a cloud outage, which it cannot. A
// re-run sets them again.
func unlabelRolledBack(d phaseData, p *Plan, results []nodejobs.Result) {
	back := map[string]bool{}
	for _, r := range results {
		if r.Outcome == nodestep.OutcomeRolledBack {
			back[r.Node] = true
		}
	}
	undo := &Plan{}
	var names []string
	for _, n := range p.Nodes {
		if back[n.Name] && len(n.Labels)+len(n.Annotations) > 0 {
			undo.Nodes = append(undo.Nodes, n)
			names = append(names, n.Name)
		}
	}
	if len(names) == 0 {
		return
	}
	if err := patchNodes(d, PhaseNodes, undo, true, true); err != nil {
		d.Report(PhaseNodes, "failed", "take the OpenYurt labels and annotations back from the rolled-back node(s): %v", err)
		return
	}
	d.Report(PhaseNodes, "done", "took the OpenYurt labels and annotations back from the rolled-back node(s) %s", strings.Join(names, ", "))
}

func runConvertNodes(d phaseData) error { return runNodeSteps(d, StepConvert) }
