// Package version holds the build stamp of the binary and the versions of
// Kubernetes and OpenYurt it is built and tested against.
package version

import (
	"encoding/json"
	"fmt"
	"runtime"
)

// Set with -ldflags "-X github.com/yurtadm/yurtadm/pkg/version.gitVersion=..." by the Makefile.
var (
	gitVersion = "v0.0.0-dev"
	gitCommit  = "unknown"
	buildDate  = "unknown"
)

const (
	// KubernetesVersion is the Kubernetes release yurtadm is built against and tested with.
	KubernetesVersion = "v1.34.4"
	// MinKubernetesMinor is the oldest control-plane minor version join accepts.
	MinKubernetesMinor = 32
	// OpenYurtVersion is the OpenYurt release whose yurthub yurtadm deploys by default.
	OpenYurtVersion = "v1.7.0"
	// DefaultYurthubImage is the yurthub image written into the static pod by default.
	DefaultYurthubImage = "docker.io/openyurt/yurthub:" + OpenYurtVersion
	// DefaultNodeServantImage is OpenYurt's node-servant, the worker
	// yurt-manager runs on each node for a YurtStaticSet's
	// AdvancedRollingUpdate.
	DefaultNodeServantImage = "docker.io/openyurt/node-servant:" + OpenYurtVersion
)

// Info is what `yurtadm version` prints.
type Info struct {
	GitVersion        string `json:"gitVersion"`
	GitCommit         string `json:"gitCommit"`
	BuildDate         string `json:"buildDate"`
	GoVersion         string `json:"goVersion"`
	Platform          string `json:"platform"`
	KubernetesVersion string `json:"kubernetesVersion"`
	OpenYurtVersion   string `json:"openYurtVersion"`
}

// Get returns the build information of this binary.
func Get() Info {
	return Info{
		GitVersion:        gitVersion,
		GitCommit:         gitCommit,
		BuildDate:         buildDate,
		GoVersion:         runtime.Version(),
		Platform:          runtime.GOOS + "/" + runtime.GOARCH,
		KubernetesVersion: KubernetesVersion,
		OpenYurtVersion:   OpenYurtVersion,
	}
}

// String is the one-line human form.
func (i Info) String() string {
	return fmt.Sprintf("yurtadm %s (commit %s, built %s, %s %s; Kubernetes %s, OpenYurt %s)",
		i.GitVersion, i.GitCommit, i.BuildDate, i.GoVersion, i.Platform, i.KubernetesVersion, i.OpenYurtVersion)
}

// JSON is the machine form.
func (i Info) JSON() string {
	b, _ := json.MarshalIndent(i, "", "  ")
	return string(b)
}
