package reset

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
)

// status is the outcome of one step.
type status string

const (
	statusDone    status = "done"
	statusFailed  status = "failed"
	statusSkipped status = "skipped" // nothing to do, or deliberately left alone
	statusPlanned status = "planned" // --dry-run: what a real run would do
)

// label is how a status reads in text output.
func (s status) label() string {
	if s == statusSkipped {
		return "nothing to do"
	}
	return string(s)
}

// step is one line of the report: one path, one service or one command.
type step struct {
	Phase  string `json:"phase"`
	Name   string `json:"step"`
	Status status `json:"status"`
	Detail string `json:"detail"`
	// Manual is the command that finishes the step by hand, when reset did
	// not (a failure, or a file it chose to keep).
	Manual string `json:"manual,omitempty"`
}

// report collects the steps of one reset run and prints each as it lands.
type report struct {
	streams cmdutil.IOStreams
	dryRun  bool
	steps   []step
	// unitsChanged is set when a unit file or drop-in was (or, in a dry
	// run, would be) removed: the init system must re-read them.
	unitsChanged bool
	// wasInterrupted: a signal stopped reset before its last phase.
	wasInterrupted bool
}

func (r *report) add(s step) {
	r.steps = append(r.steps, s)
	tag, _, _ := strings.Cut(s.Phase, "/")
	switch s.Status {
	case statusFailed:
		r.streams.Logf(tag, "FAILED: %s: %s", s.Name, s.Detail)
	case statusSkipped:
		r.streams.Logf(tag, "nothing to do: %s", s.Detail)
	default:
		r.streams.Logf(tag, "%s", s.Detail)
	}
}

func (r *report) done(phase, name, detail string) {
	r.add(step{Phase: phase, Name: name, Status: statusDone, Detail: detail})
}

func (r *report) skipped(phase, name, detail string) {
	r.add(step{Phase: phase, Name: name, Status: statusSkipped, Detail: detail})
}

func (r *report) planned(phase, name, detail string) {
	r.add(step{Phase: phase, Name: name, Status: statusPlanned, Detail: detail})
}

// interrupted records a phase not run because reset was interrupted.
func (r *report) interrupted(phase string) {
	r.wasInterrupted = true
	r.skipped(phase, phase, "interrupted (SIGINT or SIGTERM): not done")
}

func (r *report) failed(phase, name string, err error, manual string) {
	r.add(step{Phase: phase, Name: name, Status: statusFailed, Detail: err.Error(), Manual: manual})
}

func (r *report) count(s status) int {
	n := 0
	for _, st := range r.steps {
		if st.Status == s {
			n++
		}
	}
	return n
}

// leftover is something reset never cleans, with the command that does.
type leftover struct {
	What    string `json:"what"`
	Command string `json:"command"`
}

// notCleaned lists what yurtadm reset leaves alone, like kubeadm reset: it
// is shared with other software or needs the user's judgement.
var notCleaned = []leftover{
	{"CNI configuration in /etc/cni/net.d", "rm -rf /etc/cni/net.d"},
	{"iptables rules", "iptables -F && iptables -t nat -F && iptables -t mangle -F && iptables -X"},
	{"IPVS tables (kube-proxy in IPVS mode)", "ipvsadm --clear"},
	{"yurthub's dummy interface " + constants.YurthubDummyIfName, "ip link delete " + constants.YurthubDummyIfName},
	{"kubeconfig files in your home directory", "rm -f $HOME/.kube/config"},
}

// jsonReport is what -o json prints on stdout.
type jsonReport struct {
	DryRun  bool           `json:"dryRun"`
	Failed  bool           `json:"failed"`
	Summary map[status]int `json:"summary"`
	Steps   []step         `json:"steps"`
	// Manual lists the commands for what this run left to do by hand.
	Manual     []string   `json:"manual"`
	NotCleaned []leftover `json:"notCleaned"`
}

func (r *report) manual() []string {
	out := []string{}
	for _, s := range r.steps {
		if s.Manual != "" && !slices.Contains(out, s.Manual) {
			out = append(out, s.Manual)
		}
	}
	return out
}

func (r *report) toJSON() jsonReport {
	steps := r.steps
	if steps == nil {
		steps = []step{}
	}
	sum := map[status]int{}
	for _, s := range []status{statusDone, statusFailed, statusSkipped, statusPlanned} {
		sum[s] = r.count(s)
	}
	return jsonReport{DryRun: r.dryRun, Failed: r.count(statusFailed) > 0, Summary: sum,
		Steps: steps, Manual: r.manual(), NotCleaned: notCleaned}
}

// printText writes the summary for people on stdout.
func (r *report) printText() {
	out := r.streams.Out
	title := "reset"
	if r.dryRun {
		title = "reset (dry run, nothing was changed)"
	}
	fmt.Fprintf(out, "\n%s: %d done, %d failed, %d nothing to do", title,
		r.count(statusDone), r.count(statusFailed), r.count(statusSkipped))
	if r.dryRun {
		fmt.Fprintf(out, ", %d planned", r.count(statusPlanned))
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tPHASE\tDETAIL")
	for _, s := range r.steps {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Status.label(), s.Phase, s.Detail)
	}
	tw.Flush()
	if m := r.manual(); len(m) > 0 {
		fmt.Fprintln(out, "\nLeft to do by hand:")
		for _, c := range m {
			fmt.Fprintf(out, "  %s\n", c)
		}
	}
	fmt.Fprintln(out, "\nyurtadm reset does not clean the following; clean them by hand if needed:")
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, l := range notCleaned {
		fmt.Fprintf(tw, "  %s:\t%s\n", l.What, l.Command)
	}
	tw.Flush()
}

// result turns failed steps into the exit error, whose hint lists what to
// do by hand.
func (r *report) result() error {
	var names, manual []string
	for _, s := range r.steps {
		if s.Status != statusFailed {
			continue
		}
		names = append(names, s.Phase+": "+s.Name)
		if s.Manual != "" && !slices.Contains(manual, s.Manual) {
			manual = append(manual, s.Manual)
		}
	}
	if r.wasInterrupted {
		msg := "reset was interrupted: the phases marked interrupted were not done"
		if len(names) > 0 {
			msg += fmt.Sprintf("; %d step(s) failed before: %s", len(names), strings.Join(names, ", "))
		}
		return &cmdutil.Error{Code: cmdutil.ExitInterrupted, Err: errors.New(msg),
			Hint: "run 'yurtadm reset' again to finish (it is safe to repeat)"}
	}
	if len(names) == 0 {
		return nil
	}
	hint := "fix the cause and run 'yurtadm reset' again (it is safe to repeat)"
	if len(manual) > 0 {
		hint = "finish by hand: " + strings.Join(manual, "; ") + "; or fix the cause and run 'yurtadm reset' again"
	}
	return &cmdutil.Error{Code: cmdutil.ExitError, Hint: hint,
		Err: fmt.Errorf("reset finished, but %d step(s) failed: %s", len(names), strings.Join(names, ", "))}
}
