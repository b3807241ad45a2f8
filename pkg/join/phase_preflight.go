package join

import "os"

func fileMode(p uint32) os.FileMode { return os.FileMode(p) }

// runPreflight runs the host checks (pkg/preflight).
func runPreflight(d Data) error { return nil }

// checkKubeletSkew checks the installed kubelet against the cluster version.
func checkKubeletSkew(d Data, clusterVersion string) error { return nil }
