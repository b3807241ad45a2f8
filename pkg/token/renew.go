// Package token implements `yurtadm token renew`: it hands yurthub a new
// bootstrap token through yurthub's local endpoint, for a node whose token
// has expired (yurthub needs one to get a new client certificate once its
// own has expired). The token is read from a file, stdin or a flag, its
// format is checked before anything is sent, and it is never printed.
package token

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	"sigs.k8s.io/yaml"

	corev1 "k8s.io/api/core/v1"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/discovery"
	"github.com/yurtadm/yurtadm/pkg/host"
	"github.com/yurtadm/yurtadm/pkg/kube"
)

// Flag names.
const (
	flagToken     = "token"
	flagTokenFile = "token-file"
	flagTimeout   = "timeout"
	flagOutput    = "output"
	flagHostRoot  = "host-root"
)

// tokenKey is the JSON field yurthub v1.7.0's /v1/token handler reads the
// new token from (the request body is {"jointoken": "<token>"}).
const tokenKey = "jointoken"

// phase tags the progress lines.
const phase = "token"

type options struct {
	token     string
	tokenFile string
	timeout   time.Duration
	output    string
	hostRoot  string
}

// deps are the seams NewCommand fills with the real machine and tests with
// fakes.
type deps struct {
	newHost  func(root string) *host.Host
	serveURL string
	http     *http.Client
	// readSecret reads a line from the terminal without echo; nil when
	// stdin is not a terminal.
	readSecret func(prompt string) (string, error)
	// clusterInfo reads kube-public/cluster-info's data anonymously from
	// the API server a bootstrap kubeconfig names; nil skips the check.
	clusterInfo func(ctx context.Context, cfg *rest.Config) (map[string]string, error)
	// listener names the process listening on a local TCP port (PID and
	// command name): the token goes only to yurthub.
	listener func(port int) (int, string, error)
}

// yurthubComm is yurthub's command name, as the kernel reports it.
const yurthubComm = "yurthub"

// readClusterInfo is deps.clusterInfo on the real cluster.
func readClusterInfo(ctx context.Context, cfg *rest.Config) (map[string]string, error) {
	// The project's client of a few API groups: the full clientset would
	// link every API group into the binary for one GET.
	kc, err := kube.New(cfg)
	if err != nil {
		return nil, err
	}
	cm, err := kc.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return cm.Data, nil
}

// NewCommand returns `yurtadm token` with its `renew` subcommand.
func NewCommand(s cmdutil.IOStreams) *cobra.Command {
	var readSecret func(string) (string, error)
	if f, isFile := s.In.(*os.File); isFile && cmdutil.IsTerminal(s.In) {
		readSecret = func(prompt string) (string, error) {
			fmt.Fprint(s.ErrOut, prompt)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(s.ErrOut)
			return string(b), err
		}
	}
	return newCommand(s, deps{
		newHost:     host.New,
		serveURL:    constants.YurthubServeURL,
		http:        &http.Client{Transport: &http.Transport{Proxy: nil}},
		readSecret:  readSecret,
		clusterInfo: readClusterInfo,
		listener:    func(port int) (int, string, error) { return listenerOf("/proc", port) },
	})
}

func newCommand(s cmdutil.IOStreams, dp deps) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage yurthub's bootstrap token on this node",
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.AddCommand(newRenewCommand(s, dp))
	return cmd
}

func newRenewCommand(s cmdutil.IOStreams, dp deps) *cobra.Command {
	o := &options{timeout: 30 * time.Second, output: cmdutil.OutputText, hostRoot: "/"}
	cmd := &cobra.Command{
		Use:   "renew",
		Short: "Give yurthub a new bootstrap token, replacing an expired one",
		Long: `Renew hands yurthub a new bootstrap token through its local endpoint
(POST http://127.0.0.1:10267/v1/token). yurthub checks the token against the
cluster (cluster-info, signed for the token) and rewrites its bootstrap
kubeconfig with it; renew then confirms that the file holds the new token.
A token the cluster does not know (cluster-info is not signed for its ID) is
named before anything is sent, when the cluster can be asked.

yurthub needs a valid bootstrap token only in token bootstrap mode, to get a
new client certificate once its own has expired. In kubeletcertificate mode
(yurtadm join's default) yurthub uses kubelet's certificate and ignores the
token, so renew refuses to send one.

The token is read from --token-file (a file, or - for stdin), from the
terminal without echo, or from --token (visible in the process list); its
format is checked before anything is sent, and it is never printed: the
output names its ID only.`,
		Example: `  # Create a token on a control-plane node
  kubeadm token create

  # Give it to yurthub on the edge node, without it showing in the shell history
  sudo yurtadm token renew            # asks for the token without echo
  kubeadm token create | ssh edge-1 sudo yurtadm token renew --token-file -`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			return runRenew(ctx, s, o, dp)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.token, flagToken, "", "The new bootstrap token (abcdef.0123456789abcdef); prefer --token-file, as a flag shows in the process list")
	fs.StringVar(&o.tokenFile, flagTokenFile, "", "File holding the new bootstrap token, or - for stdin")
	fs.DurationVar(&o.timeout, flagTimeout, o.timeout, "How long to wait for yurthub's answer (it asks the API server)")
	fs.StringVarP(&o.output, flagOutput, "o", o.output, "Output format: text (on stderr) or json (on stdout)")
	fs.StringVar(&o.hostRoot, flagHostRoot, o.hostRoot,
		"Directory that stands for / (for tests and for running from a container with the host mounted)")
	_ = fs.MarkHidden(flagHostRoot)
	return cmd
}

// Result is the -o json output of `yurtadm token renew`.
type Result struct {
	// TokenID is the public half of the token; the secret is never shown.
	TokenID       string `json:"tokenID"`
	Updated       bool   `json:"updated"`
	BootstrapFile string `json:"bootstrapFile"`
	// Confirmed is true when the bootstrap file was read back and holds
	// the new token.
	Confirmed bool   `json:"confirmed"`
	Detail    string `json:"detail,omitempty"`
}

// readToken takes the token from the one source given.
func readToken(s cmdutil.IOStreams, o *options, dp deps) (string, error) {
	if o.token != "" && o.tokenFile != "" {
		return "", cmdutil.Usagef("pass the token one way", "--%s and --%s are mutually exclusive", flagToken, flagTokenFile)
	}
	switch {
	case o.token != "":
		return strings.TrimSpace(o.token), nil
	case o.tokenFile == "-":
		return firstLine(s.In)
	case o.tokenFile != "":
		f, err := os.Open(o.tokenFile)
		if err != nil {
			return "", cmdutil.Usagef("pass a readable file holding the token", "--%s: %v", flagTokenFile, err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.IsDir() {
			return "", cmdutil.Usagef("pass a readable file holding the token", "--%s %q is a directory", flagTokenFile, o.tokenFile)
		}
		return firstLine(f)
	case dp.readSecret != nil:
		t, err := dp.readSecret("Bootstrap token: ")
		return strings.TrimSpace(t), err
	}
	return "", cmdutil.Usagef("pass --"+flagTokenFile+" FILE, or --"+flagTokenFile+" - to read it from stdin",
		"no token given, and standard input is not a terminal to ask for it")
}

func firstLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the token: %w", err)
	}
	return strings.TrimSpace(line), nil
}

// yurthubSettings reads the bootstrap mode and bootstrap file from the
// yurthub static pod; found is false without a manifest.
func yurthubSettings(h *host.Host) (mode, file string, found bool, err error) {
	mode, file = constants.YurthubBootstrapModeToken, constants.YurthubBootstrapFile
	b, err := h.FS.ReadFile(constants.YurthubManifest)
	if errors.Is(err, fs.ErrNotExist) {
		return mode, file, false, nil
	}
	if err != nil {
		return mode, file, false, fmt.Errorf("read %s: %w", constants.YurthubManifest, err)
	}
	var pod corev1.Pod
	if err := yaml.Unmarshal(b, &pod); err != nil {
		return mode, file, false, fmt.Errorf("parse %s: %w", constants.YurthubManifest, err)
	}
	for _, c := range pod.Spec.Containers {
		for _, a := range append(append([]string{}, c.Command...), c.Args...) {
			if v, ok := strings.CutPrefix(a, "--bootstrap-mode="); ok {
				mode = v
			}
			if v, ok := strings.CutPrefix(a, "--bootstrap-file="); ok {
				file = v
			}
		}
	}
	return mode, file, true, nil
}

func runRenew(ctx context.Context, s cmdutil.IOStreams, o *options, dp deps) error {
	if err := cmdutil.ValidateOutput(o.output); err != nil {
		return err
	}
	if o.timeout <= 0 {
		return cmdutil.Usagef("pass a positive duration, e.g. --"+flagTimeout+" 30s", "--%s %s is not positive", flagTimeout, o.timeout)
	}
	if err := cmdutil.ValidateHostRoot(flagHostRoot, o.hostRoot); err != nil {
		return err
	}
	token, err := readToken(s, o, dp)
	if err != nil {
		return err
	}
	if err := discovery.ValidateToken(token); err != nil {
		return err
	}
	id, _, _ := strings.Cut(token, ".")
	h := dp.newHost(o.hostRoot)
	mode, file, found, err := yurthubSettings(h)
	if err != nil {
		return cmdutil.WithHint(err, cmdutil.ExitError, "check the yurthub static pod; 'yurtadm doctor' shows what is wrong")
	}
	if mode == constants.YurthubBootstrapModeKCE {
		return cmdutil.WithHint(fmt.Errorf("yurthub on this node uses kubelet's certificate (--bootstrap-mode=%s in %s) and ignores bootstrap tokens: nothing was sent",
			mode, constants.YurthubManifest), cmdutil.ExitError,
			"kubelet renews its own certificate before it expires; once it has expired, join the node again ('yurtadm reset', then 'yurtadm join')")
	}
	if !found {
		s.Logf(phase, "No yurthub manifest at %s: assuming yurthub runs in token mode with %s", constants.YurthubManifest, file)
	}

	if err := knownToCluster(ctx, s, h, dp, file, id); err != nil {
		return err
	}

	if err := isYurthub(dp); err != nil {
		return err
	}
	res := Result{TokenID: id, BootstrapFile: file}
	if err := post(ctx, dp, o.timeout, token); err != nil {
		return err
	}
	res.Updated = true
	res.Confirmed, res.Detail = confirm(h, file, token)
	if !res.Confirmed && strings.HasPrefix(res.Detail, "holds another token") {
		return &cmdutil.Error{Code: cmdutil.ExitError,
			Err:  fmt.Errorf("yurthub answered that it took the token with ID %s, but %s %s", id, file, res.Detail),
			Hint: "yurthub may write another bootstrap file (its --bootstrap-file); read yurthub's log: 'crictl logs $(crictl ps -q --name yurt-hub)'"}
	}
	if o.output == cmdutil.OutputJSON {
		return s.PrintJSON(res)
	}
	s.Logf(phase, "yurthub accepted the bootstrap token with ID %s", id)
	if res.Confirmed {
		s.Logf(phase, "%s now holds it; yurthub uses it the next time it needs a new client certificate", file)
	} else {
		s.Logf(phase, "could not confirm it in %s: %s", file, res.Detail)
	}
	return nil
}

// knownToCluster asks the API server that yurthub's current bootstrap
// kubeconfig names (trusting the CA in it) whether cluster-info is signed
// for the token ID, as it is for every live bootstrap token. yurthub v1.7.0
// waits minutes for a signature that never comes, so an unknown token is
// named here and nothing is sent. When the cluster cannot be asked (no
// bootstrap file, cloud unreachable) the token goes to yurthub unchecked.
func knownToCluster(ctx context.Context, s cmdutil.IOStreams, h *host.Host, dp deps, file, id string) error {
	if dp.clusterInfo == nil {
		return nil
	}
	skip := func(why string) error {
		s.Logf(phase, "Could not check the token with the cluster first (%s): sending it to yurthub", why)
		return nil
	}
	b, err := h.FS.ReadFile(file)
	if err != nil {
		return skip(err.Error())
	}
	cfg, err := clientcmd.Load(b)
	if err != nil {
		return skip(fmt.Sprintf("parse %s: %v", file, err))
	}
	_, cluster := discovery.FirstCluster(cfg)
	if cluster == nil || cluster.Server == "" || len(cluster.CertificateAuthorityData) == 0 {
		return skip(file + " names no API server with its CA")
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	data, err := dp.clusterInfo(cctx, &rest.Config{Host: cluster.Server, Timeout: 10 * time.Second, UserAgent: "yurtadm",
		TLSClientConfig: rest.TLSClientConfig{CAData: cluster.CertificateAuthorityData}})
	if err != nil {
		return skip(fmt.Sprintf("read kube-public/%s from %s: %v", bootstrapapi.ConfigMapClusterInfo, cluster.Server, err))
	}
	if _, ok := data[bootstrapapi.JWSSignatureKeyPrefix+id]; !ok {
		return cmdutil.WithHint(fmt.Errorf("the cluster at %s does not know a bootstrap token with ID %s (kube-public/%s is not signed for it: never created, deleted or expired): nothing was sent",
			cluster.Server, id, bootstrapapi.ConfigMapClusterInfo), cmdutil.ExitError,
			"create a token on a control-plane node ('kubeadm token create') and pass that one")
	}
	return nil
}

// isYurthub checks that the process listening where the token would go is
// yurthub: anything else on 127.0.0.1:10267 (a stopped yurthub's port
// taken by another program) must not receive the token.
func isYurthub(dp deps) error {
	u, err := url.Parse(dp.serveURL)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return fmt.Errorf("yurthub's address %s has no port", dp.serveURL)
	}
	pid, comm, err := dp.listener(port)
	if err != nil {
		return cmdutil.WithHint(fmt.Errorf("could not tell who listens on %s (%v): nothing was sent", u.Host, err), cmdutil.ExitError,
			"yurthub must be running to take a new token: 'yurtadm doctor' says why it is not")
	}
	if comm != yurthubComm {
		return cmdutil.WithHint(fmt.Errorf("%s is served by process %d (%q), not yurthub: nothing was sent", u.Host, pid, comm), cmdutil.ExitError,
			"stop that process and let kubelet start yurthub again ('yurtadm doctor' checks yurthub's pod)")
	}
	return nil
}

// post sends the token to yurthub and interprets its answer.
func post(ctx context.Context, dp deps, timeout time.Duration, token string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, _ := json.Marshal(map[string]string{tokenKey: token})
	url := dp.serveURL + constants.YurthubTokenPath
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := dp.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return &cmdutil.Error{Code: cmdutil.ExitTimeout, Err: fmt.Errorf("yurthub did not answer POST %s within %s", url, timeout),
				Hint: "yurthub checks the token with the API server: check the network to the control plane, or raise --" + flagTimeout}
		}
		return cmdutil.WithHint(fmt.Errorf("yurthub does not answer at %s: %v", url, errors.Unwrap(err)), cmdutil.ExitError,
			"yurthub must be running to take a new token: 'yurtadm doctor' says why it is not")
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	msg := redact(strings.TrimSpace(string(b)), token)
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusInternalServerError:
		id, _, _ := strings.Cut(token, ".")
		return cmdutil.WithHint(fmt.Errorf("yurthub could not use the token with ID %s: %s", id, msg), cmdutil.ExitError,
			"yurthub verifies the token against the cluster's cluster-info: check that it exists and has not expired ('kubeadm token list' on the control plane) and that the API server is reachable")
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
		return cmdutil.WithHint(fmt.Errorf("yurthub at %s has no token endpoint (HTTP %d)", url, resp.StatusCode), cmdutil.ExitError,
			"this yurthub is too old to take a token at run time: write the token into its bootstrap kubeconfig and restart it")
	}
	return cmdutil.WithHint(fmt.Errorf("yurthub refused the token: HTTP %d %s", resp.StatusCode, msg), cmdutil.ExitError,
		"read yurthub's log: 'crictl logs $(crictl ps -q --name yurt-hub)'")
}

// confirm reads the bootstrap kubeconfig back and tells whether it holds
// token. detail says why not.
func confirm(h *host.Host, file, token string) (bool, string) {
	b, err := h.FS.ReadFile(file)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return false, "cannot read it: run as root to confirm"
		}
		return false, fmt.Sprintf("cannot read it: %v", err)
	}
	cfg, err := clientcmd.Load(b)
	if err != nil {
		return false, fmt.Sprintf("cannot parse it: %v", err)
	}
	for _, a := range cfg.AuthInfos {
		if a.Token == token {
			return true, ""
		}
	}
	return false, "holds another token"
}

// redact hides the token and its secret in text from yurthub.
func redact(text, token string) string {
	text = strings.ReplaceAll(text, token, "<token>")
	if _, secret, found := strings.Cut(token, "."); found && secret != "" {
		text = strings.ReplaceAll(text, secret, "<redacted>")
	}
	return text
}
