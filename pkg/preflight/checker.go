// Package preflight holds the named host checks that run before a join (and
// alone as `yurtadm preflight`). A check is a small value with a Name, which
// is what --ignore-preflight-errors accepts, and a Check that returns
// warnings and errors; the errors say how to fix the problem.
package preflight

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
)

// Checker is one named check. Its method set is kubeadm's preflight.Checker.
type Checker interface {
	Name() string
	Check() (warnings, errorList []error)
}

// Status of a check after it ran.
const (
	StatusOK      = "ok"
	StatusWarning = "warning"
	StatusError   = "error"
	StatusIgnored = "ignored" // it failed, and the user ignored it by name
)

// Result is what one check found.
type Result struct {
	Name     string   `json:"name"`
	Status   string   `json:"status"`
	Messages []string `json:"messages,omitempty"`
}

// IgnoreAll in --ignore-preflight-errors ignores every check.
const IgnoreAll = "all"

// ParseIgnore validates the --ignore-preflight-errors values against the
// names of checks. Names are case-insensitive; "all" ignores everything.
func ParseIgnore(values []string, checks []Checker) (sets.Set[string], error) {
	known := sets.New[string]()
	var names []string // as the checks spell them, for the hint
	for _, c := range checks {
		known.Insert(strings.ToLower(c.Name()))
		names = append(names, c.Name())
	}
	for _, n := range lateChecks {
		if !known.Has(strings.ToLower(n)) {
			known.Insert(strings.ToLower(n))
			names = append(names, n)
		}
	}
	ignore := sets.New[string]()
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			item = strings.ToLower(strings.TrimSpace(item))
			if item == "" {
				continue
			}
			if item != IgnoreAll && !known.Has(item) {
				return nil, cmdutil.Usagef("valid names (in any case): "+strings.Join(names, ", ")+", or all",
					"unknown preflight check %q in --ignore-preflight-errors", item)
			}
			ignore.Insert(item)
		}
	}
	if ignore.Has(IgnoreAll) && ignore.Len() > 1 {
		return nil, cmdutil.Usagef("pass either 'all' or a list of names",
			"--ignore-preflight-errors: 'all' cannot be mixed with other names")
	}
	return ignore, nil
}

// Run runs every check and returns their results. When a check that is not
// ignored fails, the error is a *cmdutil.Error with ExitPreflight that lists
// every failure and says how to ignore them knowingly.
func Run(checks []Checker, ignore sets.Set[string]) ([]Result, error) {
	var results []Result
	var failed []string
	for _, c := range checks {
		warnings, errs := c.Check()
		r := Result{Name: c.Name(), Status: StatusOK}
		for _, w := range warnings {
			r.Messages = append(r.Messages, w.Error())
			r.Status = StatusWarning
		}
		if len(errs) > 0 {
			r.Status = StatusError
			if ignore.Has(IgnoreAll) || ignore.Has(strings.ToLower(c.Name())) {
				r.Status = StatusIgnored
			}
			for _, e := range errs {
				r.Messages = append(r.Messages, e.Error())
				if r.Status == StatusError {
					failed = append(failed, fmt.Sprintf("[ERROR %s]: %v", c.Name(), e))
				}
			}
		}
		results = append(results, r)
	}
	if len(failed) > 0 {
		names := sets.New[string]()
		for _, r := range results {
			if r.Status == StatusError {
				names.Insert(r.Name)
			}
		}
		list := sets.List(names)
		sort.Strings(list)
		return results, &cmdutil.Error{
			Code: cmdutil.ExitPreflight,
			Err:  fmt.Errorf("preflight checks failed:\n\t%s", strings.Join(failed, "\n\t")),
			Hint: "fix the errors above, or skip a check knowingly with --ignore-preflight-errors=" + strings.Join(list, ","),
		}
	}
	return results, nil
}
