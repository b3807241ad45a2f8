package nodejobs

import (
	"fmt"
	"sort"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/yurtadm/yurtadm/pkg/convert/nodestep"
)

// Node outcomes the master reports, beyond the node step's own.
const (
	OutcomeSucceeded   = "succeeded"
	OutcomeJobFailed   = "failed"
	OutcomeTimedOut    = "timed-out"
	OutcomeInterrupted = "interrupted"
	OutcomeSkipped     = "skipped"
)

// Result is one node's line in the final table.
type Result struct {
	Node     string        `json:"node"`
	Outcome  string        `json:"outcome"`
	Message  string        `json:"message,omitempty"`
	Job      string        `json:"job,omitempty"`
	Duration time.Duration `json:"duration"`
	// Adopted is set when a Job of an earlier, interrupted run was taken over.
	Adopted bool `json:"adopted,omitempty"`
}

// OK reports whether the node ended as wanted.
func (r Result) OK() bool {
	switch r.Outcome {
	case OutcomeSucceeded, OutcomeSkipped, nodestep.OutcomeConverted, nodestep.OutcomeAlreadyConverted,
		nodestep.OutcomeReverted, nodestep.OutcomeNothingToRevert:
		return true
	}
	return false
}

func jobFinished(j *batchv1.Job) (done, ok bool, reason string) {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return true, true, ""
		case batchv1.JobFailed:
			return true, false, strings.TrimSpace(c.Reason + " " + c.Message)
		}
	}
	return false, false, ""
}

// podResult reads the node step's result from a finished pod.
func podResult(p *corev1.Pod) (*nodestep.Result, string) {
	for _, cs := range p.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil {
			if r, err := nodestep.ParseTerminationMessage(t.Message); err == nil {
				return r, ""
			}
			return nil, strings.TrimSpace(fmt.Sprintf("%s (exit %d) %s", t.Reason, t.ExitCode, lastLine(t.Message)))
		}
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" {
			return nil, w.Reason + ": " + w.Message
		}
	}
	return nil, ""
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		return s[i+1:]
	}
	return s
}

// Table renders the per-node table.
func Table(results []Result) string {
	rows := append([]Result(nil), results...)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].OK() && !rows[j].OK() })
	var b strings.Builder
	fmt.Fprintf(&b, "%-28s %-18s %8s  %s\n", "NODE", "RESULT", "TIME", "DETAILS")
	for _, r := range rows {
		fmt.Fprintf(&b, "%-28s %-18s %8s  %s\n", r.Node, r.Outcome, r.Duration.Round(100*time.Millisecond), r.Message)
	}
	return b.String()
}
