package doctor

import (
	"fmt"
	"sort"
	"strings"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
)

// Status is the outcome of one check.
type Status string

// Statuses, from good to bad. skip means the check could not look (the
// evidence says why), which is not a failure.
const (
	StatusOK   Status = "ok"
	StatusSkip Status = "skip"
	StatusWarn Status = "warn"
	StatusFail Status = "fail"
)

func (s Status) rank() int {
	switch s {
	case StatusFail:
		return 3
	case StatusWarn:
		return 2
	case StatusSkip:
		return 1
	}
	return 0
}

// Finding is what one check saw on the node.
type Finding struct {
	// Name is the check's stable name (what --skip takes).
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Summary is one line saying what was found.
	Summary string `json:"summary"`
	// Evidence lists what the check read: files, answers, log lines.
	Evidence []string `json:"evidence,omitempty"`
	// Fix says what to do, for warn and fail.
	Fix string `json:"fix,omitempty"`
}

func ok(name, summary string, evidence ...string) Finding {
	return Finding{Name: name, Status: StatusOK, Summary: summary, Evidence: evidence}
}

func skip(name, summary string, evidence ...string) Finding {
	return Finding{Name: name, Status: StatusSkip, Summary: summary, Evidence: evidence}
}

func warn(name, summary, fix string, evidence ...string) Finding {
	return Finding{Name: name, Status: StatusWarn, Summary: summary, Fix: fix, Evidence: evidence}
}

func fail(name, summary, fix string, evidence ...string) Finding {
	return Finding{Name: name, Status: StatusFail, Summary: summary, Fix: fix, Evidence: evidence}
}

// Report is the result of one doctor run, and its -o json output.
type Report struct {
	Node     string         `json:"node,omitempty"`
	Findings []Finding      `json:"findings"`
	Summary  map[Status]int `json:"summary"`
	// Healthy is false when a check failed.
	Healthy bool `json:"healthy"`
}

func newReport(node string, findings []Finding) Report {
	r := Report{Node: node, Findings: findings, Healthy: true,
		Summary: map[Status]int{StatusOK: 0, StatusWarn: 0, StatusFail: 0, StatusSkip: 0}}
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	for i := range r.Findings {
		f := &r.Findings[i]
		f.Summary = redact(f.Summary)
		f.Fix = redact(f.Fix)
		for j := range f.Evidence {
			f.Evidence[j] = redact(f.Evidence[j])
		}
		r.Summary[f.Status]++
		if f.Status == StatusFail {
			r.Healthy = false
		}
	}
	return r
}

// failed lists the names of the failing checks.
func (r Report) failed() []string {
	var names []string
	for _, f := range r.Findings {
		if f.Status == StatusFail {
			names = append(names, f.Name)
		}
	}
	return names
}

// err is the command's error: nil when nothing failed, otherwise an
// ExitUnhealthy error naming the failing checks.
func (r Report) err() error {
	names := r.failed()
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	return &cmdutil.Error{Code: cmdutil.ExitUnhealthy,
		Err:  fmt.Errorf("%d %s failed: %s", len(names), plural(len(names), "check", "checks"), strings.Join(names, ", ")),
		Hint: "each failed check above says how to fix it; docs/troubleshooting.md explains them"}
}

// printText writes the report for people: one block per finding, the fix
// under the failing and warning ones.
func (r Report) printText(s cmdutil.IOStreams, verbose bool) {
	w := s.Out
	if r.Node != "" {
		fmt.Fprintf(w, "yurtadm doctor: node %s\n\n", r.Node)
	}
	width := 0
	for _, f := range r.Findings {
		width = max(width, len(f.Name))
	}
	for _, f := range r.Findings {
		fmt.Fprintf(w, "%-6s %-*s  %s\n", label(f.Status), width, f.Name, f.Summary)
		pad := strings.Repeat(" ", 7+width+2)
		if f.Status != StatusOK || verbose {
			for _, e := range f.Evidence {
				for _, line := range strings.Split(e, "\n") {
					fmt.Fprintf(w, "%s| %s\n", pad, line)
				}
			}
		}
		if f.Fix != "" && (f.Status == StatusFail || f.Status == StatusWarn) {
			fmt.Fprintf(w, "%sfix: %s\n", pad, f.Fix)
		}
	}
	fmt.Fprintf(w, "\n%d checks: %d ok, %d %s, %d failed, %d skipped\n", len(r.Findings),
		r.Summary[StatusOK], r.Summary[StatusWarn], plural(r.Summary[StatusWarn], "warning", "warnings"),
		r.Summary[StatusFail], r.Summary[StatusSkip])
}

func label(s Status) string {
	switch s {
	case StatusOK:
		return "[ok]"
	case StatusWarn:
		return "[warn]"
	case StatusFail:
		return "[FAIL]"
	}
	return "[skip]"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
