// Package doctor implements `yurtadm doctor`: the OpenYurt FAQ as a fixed
// sequence of read-only look-ups on a joined node. Each check returns a
// Finding (ok, warn, fail or skip) with the evidence it read and the fix.
// Checks that need the cloud degrade to warn or skip when it is
// unreachable. Every host path goes through host.FS and every command
// through the exec interface, so tests run the whole doctor in a temp root.
package doctor

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/cri"
	"github.com/yurtadm/yurtadm/pkg/host"
	"github.com/yurtadm/yurtadm/pkg/preflight"
)

// Flag names.
const (
	flagKubeconfig   = "kubeconfig"
	flagTimeout      = "timeout"
	flagOutput       = "output"
	flagSkip         = "skip"
	flagNodeName     = "node-name"
	flagCRISocket    = "cri-socket"
	flagKubeletLog   = "kubelet-log"
	flagHostRoot     = "host-root"
	flagVerbose      = "verbose"
	flagCollect      = "collect"
	flagCollectCache = "collect-cache"
)

// options are the flags of yurtadm doctor.
type options struct {
	kubeconfig string
	timeout    time.Duration
	output     string
	skip       []string
	nodeName   string
	criSocket  string
	kubeletLog string
	hostRoot   string
	verbose    bool
	// collect is the support bundle to write; collectCache adds the
	// cached objects to it.
	collect      string
	collectCache bool
	// collectGiven is set when --collect was given, empty included.
	collectGiven bool
}

// deps are the seams NewCommand fills with the real machine and tests
// with fakes.
type deps struct {
	newHost func(root string) *host.Host
	// env is handed to the preflight checks.
	env preflight.Env
	// serveURL and proxyURL are yurthub's local endpoints.
	serveURL, proxyURL string
	http               *http.Client
	// newCloud builds the API client for the cloud checks.
	newCloud func(*rest.Config) (CloudClient, error)
	now      func() time.Time
	hostname func() (string, error)
	// statfs reports a filesystem's available and total bytes.
	statfs func(path string) (avail, total uint64, err error)
}

func realDeps() deps {
	return deps{
		newHost:  host.New,
		env:      preflight.RealEnv(),
		serveURL: constants.YurthubServeURL,
		proxyURL: constants.YurthubProxyURL,
		// Never through an HTTP proxy: these are yurthub's loopback ports.
		http:     &http.Client{Transport: &http.Transport{Proxy: nil}},
		newCloud: newCloudClient,
		now:      time.Now,
		hostname: os.Hostname,
		statfs:   statfs,
	}
}

// NewCommand returns the `yurtadm doctor` command.
func NewCommand(s cmdutil.IOStreams) *cobra.Command {
	return newCommand(s, realDeps())
}

func newCommand(s cmdutil.IOStreams, dp deps) *cobra.Command {
	o := &options{output: cmdutil.OutputText, hostRoot: "/", timeout: 5 * time.Second}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Diagnose yurthub, kubelet and the host on a joined node, and say how to fix what is wrong",
		Long: `Doctor runs the look-ups the OpenYurt FAQ asks for on a joined node and
reports each as ok, warn, fail or skip, with the evidence it saw and the fix:

  yurthub     static pod manifest, container state or last exit (crictl),
              /v1/healthz and /v1/readyz on 127.0.0.1:10267
  kubelet     its kubeconfig points at yurthub (http://127.0.0.1:10261), and
              its log shows no "connection refused" to it
  pki         yurthub's certificates: present, not expired, issued by this
              cluster's CA (/etc/kubernetes/pki/ca.crt), days left
  csr         yurthub's certificate request Pending or never created
  upgrade     an upgrade of yurthub its YurtStaticSet asks for, pending here
              ('yurtadm upgrade yurthub')
  metrics     requests in flight (a list without its watch is stuck) and
              the clients that pull the most traffic through yurthub
  cache       /etc/kubernetes/cache/<component> of the cached components,
              the default/kubernetes Service rewritten to yurthub's address,
              and, with the cloud reachable, cached objects the cloud no
              longer has (stale after an outage; 'yurtadm cache repair')
  pods        containers whose KUBERNETES_SERVICE_HOST/PORT bypass yurthub
  disk        free space where kubelet, yurthub and the runtime write
  host        the host checks of 'yurtadm preflight' that matter after a join

Doctor changes nothing and works with the cloud unreachable: the checks
that need the API server say so and are skipped. The exit code is 6 when
a check fails, 0 otherwise (warnings included). docs/troubleshooting.md
explains every finding.

With --collect, doctor also writes a support bundle: one .tar.gz (mode
0600) with the report as JSON, versions, kubelet's and containerd's
journal, yurthub's container states and logs, the files join wrote,
yurthub's healthz, readyz and metrics, the index of its cache and of the
certificate directories. Tokens, passwords and private keys are replaced
by <redacted>, keys and certificates are never copied, and bundle.json
lists every entry, what was left out and why. Each part is bounded (logs
8 MiB, the bundle 64 MiB) and nothing needs the cloud.`,
		Example: `  # Diagnose this node
  sudo yurtadm doctor

  # For a script: the findings as JSON, exit code 6 when one fails
  sudo yurtadm doctor -o json

  # One file for a maintainer, with secrets redacted
  sudo yurtadm doctor --collect /tmp/yurtadm-doctor.tar.gz

  # Without the cloud checks, with kubelet's log from a file
  sudo yurtadm doctor --skip yurthub-csr --kubelet-log /var/log/kubelet.log`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cmdutil.Usagef("doctor takes flags only; see 'yurtadm doctor --help'", "unexpected argument %q", args[0])
			}
			return nil
		},
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			o.collectGiven = c.Flags().Changed(flagCollect)
			return run(ctx, s, o, dp)
		},
	}
	addFlags(cmd.Flags(), o)
	return cmd
}

func addFlags(fs *pflag.FlagSet, o *options) {
	fs.StringVar(&o.kubeconfig, flagKubeconfig, "",
		"Kubeconfig for the checks that ask the API server (default: through yurthub's proxy on 127.0.0.1:10261, else /etc/kubernetes/kubelet.conf, else /etc/kubernetes/admin.conf)")
	fs.DurationVar(&o.timeout, flagTimeout, o.timeout, "How long each probe (an HTTP request, a command, an API call) may take")
	fs.StringVarP(&o.output, flagOutput, "o", o.output, "Output format: text or json (both on stdout)")
	fs.StringSliceVar(&o.skip, flagSkip, nil, "Checks not to run, by name (see the report), or 'host' for all host checks")
	fs.StringVar(&o.nodeName, flagNodeName, "",
		"This node's name (default: kubelet's --hostname-override, else its client certificate, else the host name)")
	fs.StringVar(&o.criSocket, flagCRISocket, "", "Container runtime socket (default: the one found)")
	fs.StringVar(&o.kubeletLog, flagKubeletLog, "",
		"File with kubelet's log (default: 'journalctl -u kubelet' when journalctl exists, else /var/log/kubelet.log)")
	fs.BoolVar(&o.verbose, flagVerbose, false, "Show the evidence of passing checks too")
	fs.StringVar(&o.collect, flagCollect, "",
		"Also write a support bundle to this new .tar.gz file: the report, kubelet's and yurthub's logs, the files join wrote, yurthub's endpoints and cache index, with tokens and keys redacted")
	fs.BoolVar(&o.collectCache, flagCollectCache, false, "With --"+flagCollect+": add the objects of yurthub's cache (Secrets excepted) to the bundle, not only their index")
	fs.StringVar(&o.hostRoot, flagHostRoot, o.hostRoot,
		"Directory that stands for / (for tests and for running from a container with the host mounted)")
	_ = fs.MarkHidden(flagHostRoot)
}

// check is one named look-up.
type check struct {
	name string
	run  func(*doctor) Finding
}

// Names of the checks, in the order they run.
const (
	CheckYurthubManifest  = "yurthub-manifest"
	CheckYurthubContainer = "yurthub-container"
	CheckYurthubHealthz   = "yurthub-healthz"
	CheckYurthubReadyz    = "yurthub-readyz"
	CheckKubeletKubeconf  = "kubelet-kubeconfig"
	CheckKubeletLog       = "kubelet-log"
	CheckYurthubCerts     = "yurthub-certificates"
	CheckCloud            = "cloud-connection"
	CheckYurthubCSR       = "yurthub-csr"
	CheckInFlight         = "requests-in-flight"
	CheckTraffic          = "proxy-traffic"
	CheckCacheComponents  = "cache-components"
	CheckCacheKubeService = "cache-kubernetes-service"
	CheckPodsBypass       = "pods-bypassing-yurthub"
	// HostPrefix prefixes the names of the host checks taken from
	// preflight: "host/OverlayDType".
	HostPrefix = "host/"
	hostGroup  = "host"
)

func checks() []check {
	return []check{
		{CheckYurthubManifest, (*doctor).checkManifest},
		{CheckYurthubContainer, (*doctor).checkContainer},
		{CheckYurthubHealthz, (*doctor).checkHealthz},
		{CheckYurthubReadyz, (*doctor).checkReadyz},
		{CheckKubeletKubeconf, (*doctor).checkKubeletKubeconfig},
		{CheckKubeletLog, (*doctor).checkKubeletLog},
		{CheckYurthubCerts, (*doctor).checkCertificates},
		{CheckCloud, (*doctor).checkCloud},
		{CheckYurthubCSR, (*doctor).checkCSR},
		{CheckYurthubUpgrade, (*doctor).checkYurthubUpgrade},
		{CheckInFlight, (*doctor).checkInFlight},
		{CheckTraffic, (*doctor).checkTraffic},
		{CheckCacheComponents, (*doctor).checkCacheComponents},
		{CheckCacheKubeService, (*doctor).checkCacheKubeService},
		{CheckCacheStale, (*doctor).checkCacheStale},
		{CheckNodePool, (*doctor).checkNodePool},
		{CheckPodBinding, (*doctor).checkPodBinding},
		{CheckPodsBypass, (*doctor).checkPods},
		{CheckDiskSpace, (*doctor).checkDiskSpace},
	}
}

// hostChecks are the preflight checks that still mean something on a
// joined node (the ports, KubeletConf, YurthubManifest and YurthubPKI
// checks are about a node that has not joined yet).
var hostChecks = []string{
	preflight.CheckCrictl,
	preflight.CheckConntrack,
	preflight.CheckCRISocket,
	preflight.CheckOverlayDType,
	preflight.CheckSwap,
	preflight.CheckIPForward,
	preflight.CheckBridgeNFCallIPTables,
	preflight.CheckHostname,
	preflight.CheckResolvConf,
	preflight.CheckPidsCgroup,
}

// checkNames lists every name --skip accepts.
func checkNames() []string {
	var names []string
	for _, c := range checks() {
		names = append(names, c.name)
	}
	for _, h := range hostChecks {
		names = append(names, HostPrefix+h)
	}
	return append(names, hostGroup)
}

// parseSkip validates --skip against the check names (in any case).
func parseSkip(values []string) (map[string]bool, error) {
	known := map[string]bool{}
	for _, n := range checkNames() {
		known[strings.ToLower(n)] = true
	}
	skip := map[string]bool{}
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			item = strings.ToLower(strings.TrimSpace(item))
			if item == "" {
				continue
			}
			if !known[item] {
				return nil, cmdutil.Usagef("check names are: "+strings.Join(checkNames(), ", "),
					"--%s: unknown check %q", flagSkip, item)
			}
			skip[item] = true
		}
	}
	return skip, nil
}

func validate(o *options) (map[string]bool, error) {
	if err := cmdutil.ValidateOutput(o.output); err != nil {
		return nil, err
	}
	if o.timeout <= 0 {
		return nil, cmdutil.Usagef("pass a positive duration, e.g. --"+flagTimeout+" 5s", "--%s %s is not positive", flagTimeout, o.timeout)
	}
	if o.criSocket != "" {
		if err := cri.Validate(o.criSocket); err != nil {
			return nil, cmdutil.Usagef("pass the runtime's socket, e.g. --"+flagCRISocket+
				" unix:///run/containerd/containerd.sock", "--%s: %v", flagCRISocket, err)
		}
	}
	if o.nodeName != "" {
		if err := preflight.ValidateNodeName(o.nodeName); err != nil {
			return nil, cmdutil.Usagef("pass the node's name as the cluster knows it", "--%s: %v", flagNodeName, err)
		}
	}
	if !filepath.IsAbs(o.hostRoot) {
		return nil, cmdutil.Usagef("pass an absolute directory", "--%s %q is not absolute", flagHostRoot, o.hostRoot)
	}
	if info, err := os.Stat(o.hostRoot); err != nil || !info.IsDir() {
		return nil, cmdutil.Usagef("pass an existing directory", "--%s %q is not a directory", flagHostRoot, o.hostRoot)
	}
	if o.kubeconfig != "" {
		if st, err := os.Stat(o.kubeconfig); err != nil {
			return nil, cmdutil.Usagef("pass a readable kubeconfig file", "--%s: %v", flagKubeconfig, err)
		} else if st.IsDir() {
			return nil, cmdutil.Usagef("pass a readable kubeconfig file", "--%s %q is a directory", flagKubeconfig, o.kubeconfig)
		}
	}
	if o.kubeletLog != "" {
		if st, err := os.Stat(o.kubeletLog); err != nil {
			return nil, cmdutil.Usagef("pass the file kubelet logs to", "--%s: %v", flagKubeletLog, err)
		} else if st.IsDir() {
			return nil, cmdutil.Usagef("pass the file kubelet logs to", "--%s %q is a directory", flagKubeletLog, o.kubeletLog)
		}
	}
	if o.collect != "" || o.collectGiven {
		if err := validateBundlePath(o.collect); err != nil {
			return nil, err
		}
	} else if o.collectCache {
		return nil, cmdutil.Usagef("add --"+flagCollect+" <file.tar.gz>", "--%s needs --%s", flagCollectCache, flagCollect)
	}
	return parseSkip(o.skip)
}

// run validates the flags, runs every check not skipped and prints the
// report. The error is an ExitUnhealthy error when a check failed.
func run(ctx context.Context, s cmdutil.IOStreams, o *options, dp deps) error {
	skipped, err := validate(o)
	if err != nil {
		return err
	}
	d := newDoctor(ctx, o, dp)
	rep := d.run(skipped)
	if o.output == cmdutil.OutputJSON {
		if err := s.PrintJSON(rep); err != nil {
			return err
		}
	} else {
		rep.printText(s, o.verbose)
	}
	if o.collect != "" {
		b := d.collect(rep)
		if err := b.write(o.collect); err != nil {
			return cmdutil.WithHint(fmt.Errorf("write the support bundle %s: %w", o.collect, err), cmdutil.ExitError,
				"check the directory is writable and has room, or pass another --"+flagCollect)
		}
		fmt.Fprintf(s.ErrOut, "Support bundle written to %s (%d files, %s before compression, %d credentials redacted).\n"+
			"Tokens, passwords and private keys are replaced by %s; review it before sharing.\n",
			o.collect, len(b.order)+1, b.size(), b.redactions(), redacted)
	}
	return rep.err()
}

// run runs the checks and builds the report.
func (d *doctor) run(skipped map[string]bool) Report {
	var findings []Finding
	for _, c := range checks() {
		if skipped[strings.ToLower(c.name)] {
			continue
		}
		findings = append(findings, c.run(d))
	}
	if !skipped[hostGroup] {
		findings = append(findings, d.hostFindings(skipped)...)
	}
	return newReport(d.nodeName(), findings)
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
