package convert

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/yurthub"
)

func runConvertVerify(d phaseData) error {
	if d.Options().DryRun {
		d.Report(PhaseVerify, "would", "check every edge node is Ready with a Running yurt-hub pod and its labels")
		return nil
	}
	p, err := d.Plan()
	if err != nil {
		return err
	}
	c, err := d.Clients()
	if err != nil {
		return err
	}
	// kubelet reports yurthub's mirror pod a moment after the node step
	// ends: look again for a short while before calling it missing.
	var nodes *corev1.NodeList
	var pods *corev1.PodList
	for attempt := 0; ; attempt++ {
		if nodes, err = c.Kube.CoreV1().Nodes().List(d.Context(), listAll); err != nil {
			return fmt.Errorf("list nodes: %w", err)
		}
		if pods, err = c.Kube.CoreV1().Pods(d.Options().Namespace).List(d.Context(), listOpts(yurthubAppLabel)); err != nil {
			return fmt.Errorf("list yurthub pods: %w", err)
		}
		if attempt >= 10 || hubsComplete(d, p, hubNodes(pods.Items)) {
			break
		}
		select {
		case <-d.Context().Done():
			return d.Context().Err()
		case <-time.After(time.Second):
		}
	}
	hubs := hubNodes(pods.Items)
	failed := map[string]bool{}
	for _, r := range d.Results() {
		if !r.OK() {
			failed[r.Node] = true
		}
	}
	byName := map[string]*corev1.Node{}
	for i := range nodes.Items {
		byName[nodes.Items[i].Name] = &nodes.Items[i]
	}
	checked, problems := 0, 0
	for _, np := range p.Nodes {
		n := byName[np.Name]
		if n == nil {
			d.Report(PhaseVerify, "failed", "node %s is gone", np.Name)
			problems++
			continue
		}
		if failed[np.Name] {
			continue // named in the table already
		}
		if want := fmt.Sprint(np.Role == RoleEdge); n.Labels[constants.LabelEdgeWorker] != want {
			d.Report(PhaseVerify, "failed", "node %s: label %s=%q, want %q", np.Name, constants.LabelEdgeWorker, n.Labels[constants.LabelEdgeWorker], want)
			problems++
		}
		if np.Role != RoleEdge {
			continue
		}
		checked++
		if ok, state := yurthub.NodeReady(n, time.Time{}); !ok {
			d.Report(PhaseVerify, "failed", "edge node %s is not Ready: %s", np.Name, state)
			problems++
		}
		if !hubs[np.Name] {
			d.Report(PhaseVerify, "failed", "edge node %s has no Running yurt-hub pod", np.Name)
			problems++
		}
	}
	if problems == 0 {
		d.Report(PhaseVerify, "done", "%d edge node(s) Ready with yurthub running", checked)
	}
	return nil
}

// hubsComplete reports whether every edge node that the node step did not
// fail on runs yurthub.
func hubsComplete(d phaseData, p *Plan, hubs map[string]bool) bool {
	failed := map[string]bool{}
	for _, r := range d.Results() {
		if !r.OK() {
			failed[r.Node] = true
		}
	}
	for _, n := range p.Nodes {
		if n.Role == RoleEdge && !failed[n.Name] && !hubs[n.Name] {
			return false
		}
	}
	return true
}
