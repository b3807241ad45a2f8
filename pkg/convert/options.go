package convert

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/convert/controlplane"
	"github.com/yurtadm/yurtadm/pkg/version"
	"github.com/yurtadm/yurtadm/pkg/yurthub"
)

// Flag names, in one place.
const (
	flagKubeconfig       = "kubeconfig"
	flagNamespace        = "namespace"
	flagOutput           = "output"
	flagCloudNodes       = "cloud-nodes"
	flagAutonomousNodes  = "autonomous-nodes"
	flagNodePool         = "nodepool-name"
	flagYurthubImage     = "yurthub-image"
	flagYurtManagerImage = "yurt-manager-image"
	flagYurthubExtraArg  = "yurthub-extra-arg"
	flagNodeImage        = "node-image"
	flagConcurrency      = "concurrency"
	flagTimeout          = "timeout"
	flagDryRun           = "dry-run"
	flagYes              = "yes"
	flagChartSource      = "chart-source"
	flagChartVersion     = "chart-version"
	flagHelm             = "helm"
	flagUpgradeStrategy  = "yurthub-upgrade-strategy"
	flagUpgradeWorker    = "yurthub-upgrade-worker-image"
	flagHubBootstrapMode = "yurthub-bootstrap-mode"
)

// DefaultNodeImage is the image whose yurtadm runs the node step: the
// release of this binary, so that master and node sides always agree.
var DefaultNodeImage = "docker.io/openyurt/yurtadm:" + version.Get().GitVersion

// Defaults.
const (
	// DefaultConcurrency is how many node steps run at once by default:
	// 200, so that clusters of up to 200 edge nodes convert in one wave.
	// A node step does not disturb the node's pods, and a failing one
	// rolls back on its own node; waves would not stop a bad rollout, only
	// make it take longer. --concurrency lowers it for a gentler rollout.
	DefaultConcurrency = 200
	// maxConcurrency bounds --concurrency: each worker holds a Job and a
	// watch on the API server.
	maxConcurrency     = 1000
	DefaultNodeTimeout = 5 * time.Minute
)

// Options of yurtctl convert and revert.
type Options struct {
	Kubeconfig       string
	Namespace        string
	Output           string
	CloudNodes       []string
	AutonomousNodes  []string
	NodePoolName     string
	YurthubImage     string
	YurtManagerImage string
	// YurthubExtraArgs are added to yurthub's command line on every edge
	// node, each "--flag=value".
	YurthubExtraArgs []string
	NodeImage        string
	Concurrency      int
	Timeout          time.Duration
	DryRun           bool
	Yes              bool
	// ChartSource is where OpenYurt's charts come from: a chart
	// repository URL, a directory or an archive (chartSource).
	ChartSource  string
	ChartVersion string
	// Helm is the helm binary convert and revert run.
	Helm string
	// YurthubUpgradeStrategy is the YurtStaticSets' upgrade strategy.
	YurthubUpgradeStrategy string
	// YurthubUpgradeWorkerImage is the node-servant image yurt-manager
	// runs for AdvancedRollingUpdate.
	YurthubUpgradeWorkerImage string
	// YurthubBootstrapMode is the YurtStaticSets' yurthub bootstrap mode.
	YurthubBootstrapMode string

	autonomousGiven bool
}

func newOptions() *Options {
	return &Options{
		Namespace:    constants.DefaultNamespace,
		Output:       cmdutil.OutputText,
		NodePoolName: constants.DefaultEdgeNodePool,
		YurthubImage: version.DefaultYurthubImage,
		NodeImage:    DefaultNodeImage,
		Concurrency:  DefaultConcurrency,
		Timeout:      DefaultNodeTimeout,
		ChartSource:  controlplane.DefaultChartRepo,
		ChartVersion: strings.TrimPrefix(version.OpenYurtVersion, "v"),
		Helm:         "helm",
		// OTA: a node's yurthub changes when the node asks (yurthub's
		// upgrade API), not behind its back; see docs/convert.md.
		YurthubUpgradeStrategy:    controlplane.UpgradeOTA,
		YurthubUpgradeWorkerImage: version.DefaultNodeServantImage,
		YurthubBootstrapMode:      constants.YurthubBootstrapModeKCE,
	}
}

// addCommonFlags binds the flags convert and revert share.
func (o *Options) addCommonFlags(f *pflag.FlagSet) {
	f.StringVar(&o.Kubeconfig, flagKubeconfig, o.Kubeconfig, "admin kubeconfig (default: $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&o.Namespace, flagNamespace, o.Namespace, "namespace of OpenYurt's components, yurt-hub-cfg, the lock and the node Jobs")
	f.StringVarP(&o.Output, flagOutput, "o", o.Output, "result format: text or json")
	f.StringVar(&o.NodeImage, flagNodeImage, o.NodeImage, "image with this yurtadm binary (on PATH) that the node Jobs run")
	f.IntVar(&o.Concurrency, flagConcurrency, o.Concurrency, "how many nodes are worked on at once")
	f.DurationVar(&o.Timeout, flagTimeout, o.Timeout, "per node: how long to wait for yurthub and for the Node to be Ready (the Job gets twice that plus 2m)")
	f.BoolVar(&o.DryRun, flagDryRun, o.DryRun, "print the plan (nodes and roles, objects, files per node) and change nothing")
	f.BoolVarP(&o.Yes, flagYes, "y", o.Yes, "do not ask for confirmation")
	f.StringVar(&o.Helm, flagHelm, o.Helm, "the helm CLI (v3.13 or newer) that installs and removes OpenYurt's charts")
}

// addConvertFlags binds convert's own flags and the seed's old ones.
func (o *Options) addConvertFlags(f *pflag.FlagSet) {
	f.StringSliceVar(&o.CloudNodes, flagCloudNodes, o.CloudNodes, "nodes that stay cloud nodes (control-plane nodes always do); every other node becomes an edge node")
	f.StringSliceVar(&o.AutonomousNodes, flagAutonomousNodes, o.AutonomousNodes, "edge nodes whose pods are not evicted while the node is cut off (default: every edge node)")
	f.StringVar(&o.NodePoolName, flagNodePool, o.NodePoolName, "NodePool of the edge nodes (created if missing; a node already in a pool keeps it)")
	f.StringVar(&o.YurthubImage, flagYurthubImage, o.YurthubImage, "yurthub image for the static pod on each edge node")
	f.StringArrayVar(&o.YurthubExtraArgs, flagYurthubExtraArg, o.YurthubExtraArgs, "add this --flag=value to yurthub's command line on every edge node (repeat for more), e.g. --yurthub-extra-arg=--enable-dummy-if=false where no dummy interface can be created")
	f.StringVar(&o.YurtManagerImage, flagYurtManagerImage, o.YurtManagerImage, "yurt-manager image (default: the yurt-manager chart's, openyurt/yurt-manager:<chart appVersion>)")
	f.StringVar(&o.ChartSource, flagChartSource, o.ChartSource, "OpenYurt's charts (yurt-manager, yurthub): a chart repository URL (https:// or oci://), or, for air-gapped masters, a directory holding them (OpenYurt's charts/, or packaged <name>-<version>.tgz) or an archive of one (.tgz, .tar.gz, .zip such as the github.com/openyurtio/openyurt module zip)")
	f.StringVar(&o.ChartVersion, flagChartVersion, o.ChartVersion, "the charts' version in a chart repository (local charts are installed as they are)")
	f.StringVar(&o.YurthubBootstrapMode, flagHubBootstrapMode, o.YurthubBootstrapMode, "how the yurthub of the cluster's YurtStaticSets gets its client certificate: kubeletcertificate (reuse kubelet's: no bootstrap token on the node; yurtadm join's default) or token (OpenYurt's chart's: its own CSR with the bootstrap token)")
	f.StringVar(&o.YurthubUpgradeStrategy, flagUpgradeStrategy, o.YurthubUpgradeStrategy, "how a change of the yurt-hub YurtStaticSets reaches the nodes: OTA (each node when asked, through yurthub's upgrade API) or AdvancedRollingUpdate (yurt-manager rolls it out with node-servant worker pods)")
	f.StringVar(&o.YurthubUpgradeWorkerImage, flagUpgradeWorker, o.YurthubUpgradeWorkerImage, "OpenYurt's node-servant image, which yurt-manager runs on each node to roll out an AdvancedRollingUpdate")
	addDeprecatedFlags(f, o)
}

// deprecatedFlag is a flag of OpenYurt's old yurtctl convert.
type deprecatedFlag struct {
	name string
	// alias is the flag it now means; empty: refused with why.
	alias string
	why   string
	bool  bool
}

// deprecatedFlags are the old yurtctl's convert flags (OpenYurt v0.2 to
// v0.7), as the seed's blog and scripts still pass them.
var deprecatedFlags = []deprecatedFlag{
	{name: "yurt-controller-manager-image", alias: flagYurtManagerImage,
		why: "yurt-controller-manager became yurt-manager in OpenYurt v1.2"},
	{name: "yurtctl-servant-image", alias: flagNodeImage,
		why: "the node step now runs this same binary (yurtadm convert node)"},
	{name: "node-servant-image", alias: flagNodeImage,
		why: "the node step now runs this same binary (yurtadm convert node)"},
	{name: "yurt-tunnel-server-image",
		why: "yurt-tunnel was removed from OpenYurt (v1.0); cloud-to-edge traffic is Raven's job now: install raven-agent with OpenYurt's Helm chart, and drop this flag"},
	{name: "yurt-tunnel-agent-image",
		why: "yurt-tunnel was removed from OpenYurt (v1.0); cloud-to-edge traffic is Raven's job now: install raven-agent with OpenYurt's Helm chart, and drop this flag"},
	{name: "deploy-yurttunnel", bool: true,
		why: "yurt-tunnel was removed from OpenYurt (v1.0); cloud-to-edge traffic is Raven's job now: install raven-agent with OpenYurt's Helm chart, and drop this flag"},
	{name: "enable-app-manager", bool: true,
		why: "yurt-app-manager was merged into yurt-manager (OpenYurt v1.3): pass --yurt-manager-image instead"},
	{name: "yurt-app-manager-image",
		why: "yurt-app-manager was merged into yurt-manager (OpenYurt v1.3): pass --yurt-manager-image instead"},
	{name: "provider",
		why: "convert supports kubeadm clusters only and finds that out itself: drop this flag"},
	{name: "kubeadm-conf-path",
		why: "convert reads kubelet's kubeadm-flags.env on each node itself: drop this flag"},
	{name: "pod-manifest-path",
		why: "convert writes yurthub's static pod to kubeadm's " + constants.ManifestsDir + ": drop this flag"},
	{name: "system-architecture",
		why: "images are multi-architecture; the node image is pulled for each node's platform: drop this flag"},
}

func addDeprecatedFlags(f *pflag.FlagSet, o *Options) {
	for _, d := range deprecatedFlags {
		d := d
		switch {
		case d.alias == flagYurtManagerImage:
			f.StringVar(&o.YurtManagerImage, d.name, "", "use --"+d.alias)
			_ = f.MarkDeprecated(d.name, "use --"+d.alias+" ("+d.why+")")
		case d.alias == flagNodeImage:
			f.StringVar(&o.NodeImage, d.name, o.NodeImage, "use --"+d.alias)
			_ = f.MarkDeprecated(d.name, "use --"+d.alias+" ("+d.why+")")
		case d.bool:
			f.Bool(d.name, false, d.why)
			_ = f.MarkHidden(d.name)
		default:
			f.String(d.name, "", d.why)
			_ = f.MarkHidden(d.name)
		}
	}
}

// checkDeprecated refuses the old flags that map to nothing, naming what
// replaced them.
func checkDeprecated(f *pflag.FlagSet) error {
	for _, d := range deprecatedFlags {
		if d.alias != "" || !f.Changed(d.name) {
			continue
		}
		val := f.Lookup(d.name).Value.String()
		if d.bool && val == "false" {
			continue // --deploy-yurttunnel=false asks for nothing
		}
		if d.name == "provider" && val == "kubeadm" {
			continue
		}
		if d.name == "pod-manifest-path" && strings.TrimSuffix(val, "/") == constants.ManifestsDir {
			continue
		}
		return cmdutil.Usagef(d.why, "--%s is no longer supported", d.name)
	}
	return nil
}

// validate checks every value before the cluster is touched.
func (o *Options) validate(f *pflag.FlagSet, convert bool) error {
	if err := cmdutil.ValidateOutput(o.Output); err != nil {
		return err
	}
	if errs := validation.IsDNS1123Label(o.Namespace); len(errs) > 0 {
		return cmdutil.Usagef("pass a valid --"+flagNamespace, "invalid namespace %q: %s", o.Namespace, strings.Join(errs, "; "))
	}
	if o.Concurrency < 1 || o.Concurrency > maxConcurrency {
		return cmdutil.Usagef(fmt.Sprintf("pass --concurrency between 1 and %d", maxConcurrency), "invalid --%s %d", flagConcurrency, o.Concurrency)
	}
	if o.Timeout <= 0 {
		return cmdutil.Usagef("pass a positive duration such as 5m", "invalid --%s %s", flagTimeout, o.Timeout)
	}
	if err := validImage(flagNodeImage, o.NodeImage); err != nil {
		return err
	}
	if strings.TrimSpace(o.Helm) == "" {
		return cmdutil.Usagef("pass --"+flagHelm+" PATH of the helm CLI", "empty --%s", flagHelm)
	}
	if !convert {
		return nil
	}
	if err := checkDeprecated(f); err != nil {
		return err
	}
	for _, im := range []struct{ flag, ref string }{
		{flagYurthubImage, o.YurthubImage}, {flagYurtManagerImage, o.YurtManagerImage}, {flagUpgradeWorker, o.YurthubUpgradeWorkerImage},
	} {
		if err := chartImage(im.flag, im.ref); err != nil {
			return err
		}
	}
	if err := ValidYurthubExtraArgs("--"+flagYurthubExtraArg, o.YurthubExtraArgs); err != nil {
		return err
	}
	if o.YurthubUpgradeStrategy != controlplane.UpgradeOTA && o.YurthubUpgradeStrategy != controlplane.UpgradeAdvancedRollingUpdate {
		return cmdutil.Usagef("pass --"+flagUpgradeStrategy+" "+controlplane.UpgradeOTA+" or "+controlplane.UpgradeAdvancedRollingUpdate, "invalid --%s %q", flagUpgradeStrategy, o.YurthubUpgradeStrategy)
	}
	if o.YurthubBootstrapMode != constants.YurthubBootstrapModeKCE && o.YurthubBootstrapMode != controlplane.BootstrapModeToken {
		return cmdutil.Usagef("pass --"+flagHubBootstrapMode+" "+constants.YurthubBootstrapModeKCE+" or "+controlplane.BootstrapModeToken, "invalid --%s %q", flagHubBootstrapMode, o.YurthubBootstrapMode)
	}
	if strings.TrimSpace(o.ChartSource) == "" || strings.ContainsAny(o.ChartSource, "\x00\n\r") {
		return cmdutil.Usagef("pass --"+flagChartSource+" "+controlplane.DefaultChartRepo+", or a directory or archive with OpenYurt's charts", "invalid --%s %q", flagChartSource, o.ChartSource)
	}
	if errs := validation.IsDNS1123Label(o.NodePoolName); len(errs) > 0 {
		return cmdutil.Usagef("pass a valid --"+flagNodePool, "invalid nodepool name %q: %s", o.NodePoolName, strings.Join(errs, "; "))
	}
	for _, list := range []struct {
		flag  string
		names []string
	}{{flagCloudNodes, o.CloudNodes}, {flagAutonomousNodes, o.AutonomousNodes}} {
		for _, n := range list.names {
			if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
				return cmdutil.Usagef("pass node names as 'kubectl get nodes' lists them", "invalid node name %q in --%s: %s", n, list.flag, strings.Join(errs, "; "))
			}
		}
	}
	o.autonomousGiven = f.Changed(flagAutonomousNodes)
	return nil
}

func validImage(flag, ref string) error {
	if err := yurthub.ValidateImage(ref); err != nil {
		return cmdutil.Usagef(fmt.Sprintf("pass an image reference like %s", version.DefaultYurthubImage), "invalid --%s: %v", flag, err)
	}
	return nil
}

// chartImage checks an image a chart takes (registry/repository:tag); an
// empty --yurt-manager-image keeps the chart's.
func chartImage(flag, ref string) error {
	if ref == "" && flag == flagYurtManagerImage {
		return nil
	}
	if err := validImage(flag, ref); err != nil {
		return err
	}
	if err := controlplane.CheckChartImage(ref); err != nil {
		return cmdutil.Usagef("pass --"+flag+" as registry/repository:tag", "invalid --%s: %v", flag, err)
	}
	return nil
}

// ValidYurthubExtraArgs checks that every entry is one "--flag=value" (or
// "--flag") for yurthub's command line (yurthub.ValidateExtraArgs).
func ValidYurthubExtraArgs(flag string, args []string) error {
	if err := yurthub.ValidateExtraArgs(args); err != nil {
		return cmdutil.Usagef("write each as --flag=value, e.g. "+flag+"=--enable-dummy-if=false", "invalid %s: %v", flag, err)
	}
	return nil
}
