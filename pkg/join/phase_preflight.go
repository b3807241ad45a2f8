package join

import (
	"os"

	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/yurtadm/yurtadm/pkg/preflight"
)

func fileMode(p uint32) os.FileMode { return os.FileMode(p) }

// preflightOptions are the checks' view of the join. With no --node-name
// the Hostname check looks at the real hostname, so that an upper-case one
// is reported even though join lower-cases it.
func preflightOptions(d Data, clusterVersion string) preflight.Options {
	o := d.Options()
	name := o.NodeName
	if !o.nodeNameGiven {
		name = ""
	}
	return preflight.Options{NodeName: name, CRISocket: o.CRISocket, ClusterVersion: clusterVersion, Env: d.PreflightEnv()}
}

// runPreflight runs the host checks of pkg/preflight.
func runPreflight(d Data) error {
	checks := preflight.JoinChecks(d.Host(), preflightOptions(d, ""))
	ignore, err := preflight.ParseIgnore(d.Options().IgnorePreflightErrors, checks)
	if err != nil {
		return err
	}
	results, err := preflight.Run(checks, ignore)
	preflight.Print(d.IO(), results)
	return err
}

// checkKubeletSkew runs the KubeletVersion check again now that the
// cluster's version is known: kubelet must not be newer than the control
// plane, nor more than three minor versions older.
func checkKubeletSkew(d Data, clusterVersion string) error {
	return runLateChecks(d, "discovery", preflight.KubeletVersionCheck(d.Host(), preflightOptions(d, clusterVersion)))
}

// runLateChecks runs preflight checks that need the cluster's answers, so
// run after discovery, with the same --ignore-preflight-errors (all of
// them ignored when the preflight phase is skipped), and says under phase
// what did not pass.
func runLateChecks(d Data, phase string, checks ...preflight.Checker) error {
	ignore, err := preflight.ParseIgnore(d.Options().IgnorePreflightErrors, preflight.JoinChecks(d.Host(), preflightOptions(d, "")))
	if err != nil {
		return err
	}
	if d.Options().skipPreflight {
		ignore = sets.New(preflight.IgnoreAll)
	}
	results, err := preflight.Run(checks, ignore)
	for _, r := range results {
		if r.Status != preflight.StatusOK {
			for _, m := range r.Messages {
				d.IO().Logf(phase, "[%s %s]: %s", r.Status, r.Name, m)
			}
		}
	}
	return err
}
