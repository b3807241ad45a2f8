package preflight

import (
	"fmt"

	"k8s.io/klog/v2"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
)

// Phase is the tag of preflight's progress lines.
const Phase = "preflight"

// Report is the -o json output of `yurtadm preflight`.
type Report struct {
	Checks []Result `json:"checks"`
	// Passed is false when a check that was not ignored failed.
	Passed bool `json:"passed"`
}

// NewReport builds the report of results; runErr is what Run returned.
func NewReport(results []Result, runErr error) Report {
	if results == nil {
		results = []Result{}
	}
	return Report{Checks: results, Passed: runErr == nil}
}

// Print writes results to s.ErrOut the way kubeadm does: a header, then a
// "\t[WARNING Name]: message" line per warning and per ignored error, and
// "\t[OK Name]" lines at -v=1 and above. Errors that are not ignored are not
// printed here: they are in the error Run returns, which the caller shows.
func Print(s cmdutil.IOStreams, results []Result) {
	s.Logf(Phase, "Running pre-flight checks")
	count := map[string]int{}
	for _, r := range results {
		count[r.Status]++
		switch r.Status {
		case StatusOK:
			if klog.V(1).Enabled() {
				fmt.Fprintf(s.ErrOut, "\t[OK %s]\n", r.Name)
			}
		case StatusWarning, StatusIgnored:
			for _, m := range r.Messages {
				fmt.Fprintf(s.ErrOut, "\t[WARNING %s]: %s\n", r.Name, m)
			}
		}
	}
	if count[StatusError] == 0 {
		s.Logf(Phase, "%d checks: %d ok, %d with warnings, %d failed and ignored",
			len(results), count[StatusOK], count[StatusWarning], count[StatusIgnored])
	}
}
