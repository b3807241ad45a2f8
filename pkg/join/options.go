package join

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/cri"
	"github.com/yurtadm/yurtadm/pkg/discovery"
	"github.com/yurtadm/yurtadm/pkg/version"
	"github.com/yurtadm/yurtadm/pkg/yurthub"
)

// Flag names, in one place.
const (
	flagToken           = "token"
	flagCACertHash      = "discovery-token-ca-cert-hash"
	flagUnsafeSkipCA    = "discovery-token-unsafe-skip-ca-verification"
	flagNodeName        = "node-name"
	flagNodeType        = "node-type"
	flagNodePool        = "nodepool-name"
	flagNodeLabels      = "node-labels"
	flagCRISocket       = "cri-socket"
	flagYurthubImage    = "yurthub-image"
	flagImageArchive    = "image-archive"
	flagBootstrapMode   = "yurthub-bootstrap-mode"
	flagNamespace       = "namespace"
	flagIgnorePreflight = "ignore-preflight-errors"
	flagConfig          = "config"
	flagDryRun          = "dry-run"
	flagTimeout         = "timeout"
	flagHostRoot        = "host-root"
	flagOutput          = "output"
	flagAutonomy        = "autonomy-duration"
	bootstrapModeToken  = "token"
	// autonomyForever is node.openyurt.io/autonomy-duration's "never
	// evict"; autonomyOff leaves the annotation unset.
	autonomyForever    = "0"
	autonomyOff        = "none"
	defaultJoinTimeout = 5 * time.Minute
	configAPIVersion   = "yurtadm.openyurt.io/v1alpha1"
	configKind         = "JoinConfiguration"
	yurthubVerbosity   = 2
)

// Options is everything join needs to know. Flags, the --config file and
// defaults fill it, in that order of precedence.
type Options struct {
	APIServerEndpoint        string            `json:"apiServerEndpoint,omitempty"`
	Token                    string            `json:"token,omitempty"`
	CACertHashes             []string          `json:"discoveryTokenCACertHashes,omitempty"`
	UnsafeSkipCAVerification bool              `json:"discoveryTokenUnsafeSkipCAVerification,omitempty"`
	NodeName                 string            `json:"nodeName,omitempty"`
	NodeType                 string            `json:"nodeType,omitempty"`
	NodePoolName             string            `json:"nodePoolName,omitempty"`
	NodeLabels               map[string]string `json:"nodeLabels,omitempty"`
	CRISocket                string            `json:"criSocket,omitempty"`
	YurthubImage             string            `json:"yurthubImage,omitempty"`
	// ImageArchives are OCI or Docker image archives loaded into the
	// container runtime before yurthub starts (air-gapped nodes).
	ImageArchives         []string     `json:"imageArchives,omitempty"`
	YurthubBootstrapMode  string       `json:"yurthubBootstrapMode,omitempty"`
	YurthubExtraArgs      []string     `json:"yurthubExtraArgs,omitempty"`
	AutonomyDuration      string       `json:"autonomyDuration,omitempty"`
	Namespace             string       `json:"namespace,omitempty"`
	IgnorePreflightErrors []string     `json:"ignorePreflightErrors,omitempty"`
	Timeout               metaDuration `json:"timeout,omitempty"`
	DryRun                bool         `json:"-"`
	HostRoot              string       `json:"-"`
	Output                string       `json:"-"`
	ConfigFile            string       `json:"-"`

	// nodeNameGiven is set when --node-name or the file named the node.
	nodeNameGiven bool
	// bootstrapModeGiven is set when --yurthub-bootstrap-mode or the file
	// chose the mode: otherwise the cluster's yurthub template's mode wins.
	bootstrapModeGiven bool
	// skipPreflight is set when --skip-phases skips preflight: the
	// kubelet skew check in discovery is then a warning too.
	skipPreflight bool
}

// metaDuration reads "5m" style durations from YAML.
type metaDuration struct{ time.Duration }

func (d *metaDuration) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("timeout %q: %w", s, err)
	}
	d.Duration = v
	return nil
}

func (d metaDuration) MarshalJSON() ([]byte, error) { return []byte(`"` + d.String() + `"`), nil }

// configFile is the versioned --config document.
type configFile struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Options    `json:",inline"`
}

func newOptions() *Options {
	return &Options{
		NodeType:             constants.NodeTypeEdge,
		YurthubImage:         version.DefaultYurthubImage,
		YurthubBootstrapMode: constants.YurthubBootstrapModeKCE,
		Namespace:            constants.DefaultNamespace,
		AutonomyDuration:     autonomyForever,
		Timeout:              metaDuration{defaultJoinTimeout},
		HostRoot:             "/",
		Output:               cmdutil.OutputText,
	}
}

// labelFlag is a k=v,k2=v2 flag into a map.
type labelFlag struct{ m *map[string]string }

func (l labelFlag) String() string {
	var parts []string
	for k, v := range *l.m {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
func (l labelFlag) Type() string { return "key=value,..." }
func (l labelFlag) Set(s string) error {
	if *l.m == nil {
		*l.m = map[string]string{}
	}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("%q is not key=value", kv)
		}
		(*l.m)[k] = v
	}
	return nil
}

type durationFlag struct{ d *metaDuration }

func (f durationFlag) String() string { return f.d.String() }
func (f durationFlag) Type() string   { return "duration" }
func (f durationFlag) Set(s string) error {
	v, err := time.ParseDuration(s)
	f.d.Duration = v
	return err
}

// AddFlags binds the join flags to o.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Token, flagToken, o.Token, "bootstrap token for discovery and TLS bootstrap (abcdef.0123456789abcdef)")
	fs.StringSliceVar(&o.CACertHashes, flagCACertHash, o.CACertHashes, "pin the cluster CA by the hash of its public key (sha256:<hex>); repeatable")
	fs.BoolVar(&o.UnsafeSkipCAVerification, flagUnsafeSkipCA, o.UnsafeSkipCAVerification, "trust the cluster CA without a pin (unsafe)")
	fs.StringVar(&o.NodeName, flagNodeName, o.NodeName, "name of the Node object (default: the lower-cased hostname)")
	fs.StringVar(&o.NodeType, flagNodeType, o.NodeType, "edge or cloud: edge nodes keep working when the cloud link drops")
	fs.StringVar(&o.NodePoolName, flagNodePool, o.NodePoolName, "NodePool the node joins (default: \"edge\" for edge nodes, \"cloud\" for cloud nodes)")
	fs.Var(labelFlag{&o.NodeLabels}, flagNodeLabels, "extra labels kubelet sets on the Node when it registers")
	fs.StringVar(&o.CRISocket, flagCRISocket, o.CRISocket, "container runtime socket (default: detect containerd, CRI-O or cri-dockerd)")
	fs.StringVar(&o.YurthubImage, flagYurthubImage, o.YurthubImage, "yurthub image for the static pod")
	fs.StringArrayVar(&o.ImageArchives, flagImageArchive, o.ImageArchives, "an OCI or Docker image archive to load into the container runtime before yurthub starts, for a node that cannot pull (containerd; made by 'yurtadm images save'); repeatable")
	fs.StringVar(&o.YurthubBootstrapMode, flagBootstrapMode, o.YurthubBootstrapMode, "how yurthub gets its client certificate: kubeletcertificate (reuse kubelet's) or token (its own CSR)")
	fs.StringVar(&o.Namespace, flagNamespace, o.Namespace, "namespace of OpenYurt's components and yurt-hub-cfg")
	fs.StringSliceVar(&o.IgnorePreflightErrors, flagIgnorePreflight, o.IgnorePreflightErrors, "preflight checks whose errors become warnings, or all")
	fs.StringVar(&o.ConfigFile, flagConfig, o.ConfigFile, "a "+configKind+" file ("+configAPIVersion+"); flags given on the command line win over it")
	fs.BoolVar(&o.DryRun, flagDryRun, o.DryRun, "discover the cluster and print what would be written and started, changing nothing")
	fs.Var(durationFlag{&o.Timeout}, flagTimeout, "how long to wait for yurthub and for the Node to be Ready")
	fs.StringVar(&o.HostRoot, flagHostRoot, o.HostRoot, "directory that stands for / (for a node's root mounted elsewhere)")
	fs.StringVarP(&o.Output, flagOutput, "o", o.Output, "summary format: text or json")
	fs.StringVar(&o.AutonomyDuration, flagAutonomy, o.AutonomyDuration, "edge nodes: how long the cloud keeps this node's pods while it is cut off, set as node.openyurt.io/autonomy-duration once the node is Ready: 0 = for as long as the outage lasts, a duration such as 6h, or none (pods are evicted as on any Kubernetes node)")
}

// loadConfig reads the --config file into o for every field whose flag was
// not given on the command line. Flags win; the file wins over defaults.
func (o *Options) loadConfig(fs *pflag.FlagSet) error {
	o.bootstrapModeGiven = fs.Changed(flagBootstrapMode)
	if o.ConfigFile == "" {
		return nil
	}
	b, err := cmdutil.ReadConfigFile(o.ConfigFile)
	if err != nil {
		return err
	}
	var cf configFile
	if err := yaml.UnmarshalStrict(b, &cf); err != nil {
		return cmdutil.Usagef("see docs/join.md for the "+configKind+" fields", "parse --config %s: %v", o.ConfigFile, err)
	}
	if cf.APIVersion != configAPIVersion || cf.Kind != configKind {
		return cmdutil.Usagef("start the file with 'apiVersion: "+configAPIVersion+"' and 'kind: "+configKind+"'",
			"--config %s: unsupported apiVersion %q / kind %q", o.ConfigFile, cf.APIVersion, cf.Kind)
	}
	f := cf.Options
	set := func(flag string, apply func()) {
		if !fs.Changed(flag) {
			apply()
		}
	}
	if f.APIServerEndpoint != "" && o.APIServerEndpoint == "" {
		o.APIServerEndpoint = f.APIServerEndpoint
	}
	set(flagToken, func() {
		if f.Token != "" {
			o.Token = f.Token
		}
	})
	set(flagCACertHash, func() {
		if len(f.CACertHashes) > 0 {
			o.CACertHashes = f.CACertHashes
		}
	})
	set(flagUnsafeSkipCA, func() {
		if f.UnsafeSkipCAVerification {
			o.UnsafeSkipCAVerification = true
		}
	})
	set(flagNodeName, func() {
		if f.NodeName != "" {
			o.NodeName = f.NodeName
		}
	})
	set(flagNodeType, func() {
		if f.NodeType != "" {
			o.NodeType = f.NodeType
		}
	})
	set(flagNodePool, func() {
		if f.NodePoolName != "" {
			o.NodePoolName = f.NodePoolName
		}
	})
	set(flagNodeLabels, func() {
		if len(f.NodeLabels) > 0 {
			o.NodeLabels = f.NodeLabels
		}
	})
	set(flagCRISocket, func() {
		if f.CRISocket != "" {
			o.CRISocket = f.CRISocket
		}
	})
	set(flagYurthubImage, func() {
		if f.YurthubImage != "" {
			o.YurthubImage = f.YurthubImage
		}
	})
	set(flagImageArchive, func() {
		if len(f.ImageArchives) > 0 {
			o.ImageArchives = f.ImageArchives
		}
	})
	set(flagBootstrapMode, func() {
		if f.YurthubBootstrapMode != "" {
			o.YurthubBootstrapMode = f.YurthubBootstrapMode
			o.bootstrapModeGiven = true
		}
	})
	set(flagNamespace, func() {
		if f.Namespace != "" {
			o.Namespace = f.Namespace
		}
	})
	set(flagAutonomy, func() {
		if f.AutonomyDuration != "" {
			o.AutonomyDuration = f.AutonomyDuration
		}
	})
	set(flagIgnorePreflight, func() {
		if len(f.IgnorePreflightErrors) > 0 {
			o.IgnorePreflightErrors = f.IgnorePreflightErrors
		}
	})
	set(flagTimeout, func() {
		if f.Timeout.Duration != 0 {
			o.Timeout = f.Timeout
		}
	})
	o.YurthubExtraArgs = f.YurthubExtraArgs
	return nil
}

// complete fills defaults that depend on other values.
func (o *Options) complete(hostname func() (string, error)) error {
	o.nodeNameGiven = o.NodeName != ""
	if o.NodeName == "" {
		h, err := hostname()
		if err != nil {
			return fmt.Errorf("read the hostname: %w (pass --%s)", err, flagNodeName)
		}
		o.NodeName = strings.ToLower(strings.TrimSpace(h))
	}
	if o.NodePoolName == "" {
		o.NodePoolName = constants.DefaultEdgeNodePool
		if o.NodeType == constants.NodeTypeCloud {
			o.NodePoolName = constants.DefaultCloudNodePool
		}
	}
	return nil
}

// validAutonomy checks --autonomy-duration: "0", "none" or a positive
// duration pod-binding can turn into tolerationSeconds.
func validAutonomy(v string) error {
	if v == autonomyForever || v == autonomyOff {
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second {
		return cmdutil.Usagef("pass 0 (for as long as the outage lasts), a duration such as 6h, or none",
			"invalid --%s %q", flagAutonomy, v)
	}
	return nil
}

// The bounds of --timeout: each wait of a join (yurthub, the Node) takes
// seconds on a good link and minutes on a slow one, never days.
const (
	minTimeout = time.Second
	maxTimeout = 24 * time.Hour
)

// Validate checks every value before anything on the host or the network
// is touched. Each error names the bad value and what to do.
func (o *Options) Validate() error {
	if o.APIServerEndpoint == "" {
		return cmdutil.Usagef("usage: yurtadm join <apiserver-host:port> --token ... --discovery-token-ca-cert-hash sha256:...",
			"the API server endpoint is missing")
	}
	if _, err := discovery.NormalizeEndpoint(o.APIServerEndpoint); err != nil {
		return err
	}
	if o.Token == "" {
		return cmdutil.Usagef("create one on a control-plane node with 'kubeadm token create --print-join-command'", "--%s is required", flagToken)
	}
	if err := discovery.ValidateToken(o.Token); err != nil {
		return err
	}
	if err := discovery.ValidateCAHashes(o.CACertHashes, o.UnsafeSkipCAVerification); err != nil {
		return err
	}
	if err := validAutonomy(o.AutonomyDuration); err != nil {
		return err
	}
	if o.NodeType != constants.NodeTypeEdge && o.NodeType != constants.NodeTypeCloud {
		return cmdutil.Usagef("use --node-type edge or --node-type cloud", "unknown node type %q", o.NodeType)
	}
	if o.NodeName != strings.ToLower(o.NodeName) {
		return cmdutil.Usagef("Kubernetes node names must be lower-case: pass --node-name "+strings.ToLower(o.NodeName),
			"node name %q has upper-case letters", o.NodeName)
	}
	if errs := validation.IsDNS1123Subdomain(o.NodeName); len(errs) > 0 {
		return cmdutil.Usagef("pass a valid --node-name", "invalid node name %q: %s", o.NodeName, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Label(o.NodePoolName); len(errs) > 0 {
		return cmdutil.Usagef("pass a valid --nodepool-name", "invalid nodepool name %q: %s", o.NodePoolName, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Label(o.Namespace); len(errs) > 0 {
		return cmdutil.Usagef("pass a valid --namespace", "invalid namespace %q: %s", o.Namespace, strings.Join(errs, "; "))
	}
	for k, v := range o.NodeLabels {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return cmdutil.Usagef("labels look like key=value,example.com/key=value", "invalid --node-labels key %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return cmdutil.Usagef("labels look like key=value,example.com/key=value", "invalid --node-labels value %q for %q: %s", v, k, strings.Join(errs, "; "))
		}
		if k == constants.LabelEdgeWorker || k == constants.LabelNodePool {
			return cmdutil.Usagef("use --node-type and --nodepool-name instead", "--node-labels must not set %s", k)
		}
	}
	if o.CRISocket != "" {
		if err := cri.Validate(o.CRISocket); err != nil {
			return cmdutil.Usagef("pass e.g. --cri-socket unix:///run/containerd/containerd.sock", "%v", err)
		}
	}
	if err := yurthub.ValidateImage(o.YurthubImage); err != nil {
		return cmdutil.Usagef("pass an image reference like "+version.DefaultYurthubImage, "invalid --%s: %v", flagYurthubImage, err)
	}
	if o.YurthubBootstrapMode != constants.YurthubBootstrapModeKCE && o.YurthubBootstrapMode != bootstrapModeToken {
		return cmdutil.Usagef("use kubeletcertificate or token", "unknown --%s %q", flagBootstrapMode, o.YurthubBootstrapMode)
	}
	for _, a := range o.ImageArchives {
		if st, err := os.Stat(a); err != nil || !st.Mode().IsRegular() || st.Size() == 0 {
			why := "is not a regular file"
			if err != nil {
				why = err.Error()
			} else if st.Mode().IsRegular() {
				why = "is empty"
			}
			return cmdutil.Usagef("pass the path of an image archive made by 'yurtadm images save' or 'ctr images export'",
				"--%s %q: %s", flagImageArchive, a, why)
		}
	}
	if err := yurthub.ValidateExtraArgs(o.YurthubExtraArgs); err != nil {
		return cmdutil.Usagef("write each yurthubExtraArgs entry as --flag=value", "invalid yurthubExtraArgs entry: %v", err)
	}
	if o.HostRoot != "" {
		if err := cmdutil.ValidateHostRoot(flagHostRoot, o.HostRoot); err != nil {
			return err
		}
	}
	if d := o.Timeout.Duration; d < minTimeout || d > maxTimeout {
		return cmdutil.Usagef(fmt.Sprintf("pass a duration between %s and %s, such as 5m", minTimeout, maxTimeout),
			"--%s %s is out of range", flagTimeout, d)
	}
	return cmdutil.ValidateOutput(o.Output)
}

// nodeLabels are the labels kubelet sets when it registers the Node: the
// user's plus OpenYurt's edge-worker and nodepool labels.
func (o *Options) nodeLabels() map[string]string {
	m := map[string]string{}
	for k, v := range o.NodeLabels {
		m[k] = v
	}
	m[constants.LabelEdgeWorker] = fmt.Sprint(o.NodeType == constants.NodeTypeEdge)
	m[constants.LabelNodePool] = o.NodePoolName
	return m
}

// redact hides the token's secret half in s.
func (o *Options) redact(s string) string {
	if o.Token == "" {
		return s
	}
	id, secret, _ := strings.Cut(o.Token, ".")
	if secret == "" {
		return strings.ReplaceAll(s, o.Token, "<redacted>")
	}
	s = strings.ReplaceAll(s, o.Token, id+".<redacted>")
	return strings.ReplaceAll(s, secret, "<redacted>")
}
