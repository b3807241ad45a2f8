// Package nodestep is the node side of yurtctl convert and revert: the
// step a privileged Job runs on each node (`yurtadm convert node`,
// `yurtadm revert node`) with the node's root mounted at --host-root.
//
// Convert backs up every kubelet file it changes (byte for byte, with its
// mode and a checksum, under /var/lib/openyurt/backup), writes the yurthub
// static pod, waits for yurthub's healthz, points kubelet at yurthub's proxy
// and restarts it, and confirms through yurthub that the Node is Ready. Any
// failure after the backup restores it and restarts kubelet if it was
// restarted. A converted node is left alone. Revert puts the backed-up files
// back and removes yurthub; without a backup it reverts from kubeadm's own
// files with a warning.
package nodestep

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/host"
	"github.com/yurtadm/yurtadm/pkg/kube"
	"github.com/yurtadm/yurtadm/pkg/yurthub"
	"github.com/yurtadm/yurtadm/templates"
)

// Outcomes of a node step.
const (
	OutcomeConverted        = "converted"
	OutcomeAlreadyConverted = "already-converted"
	OutcomeRolledBack       = "rolled-back"
	OutcomeReverted         = "reverted"
	OutcomeNothingToRevert  = "nothing-to-revert"
	OutcomeFailed           = "failed"
)

// Step statuses in a Result.
const (
	StatusDone    = "done"
	StatusSkipped = "skipped"
	StatusWarning = "warning"
	StatusFailed  = "failed"
)

// ChangedFiles are the files convert changes on a node, in the order it
// writes them; each is backed up first.
var ChangedFiles = []string{constants.YurthubManifest, constants.OpenYurtKubeletConfig, constants.KubeletFlagsEnvFile}

// yurthubDirs are yurthub's own directories: removed by revert, and by a
// rollback when they did not exist before.
var yurthubDirs = []string{constants.YurthubDir, constants.YurthubCacheDir}

// createdDirs are directories convert may create; when they did not exist
// before, rollback and revert remove them if they are empty again.
var createdDirs = []string{constants.OpenYurtDir, constants.ManifestsDir}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// removeIfCreated removes the directories convert created, if empty.
func removeIfCreated(fsys host.FS, bk *Backup) {
	for _, d := range bk.AbsentDirs {
		if contains(createdDirs, d) {
			_, _ = fsys.Remove(d)
		}
	}
}

// Options of a node step.
type Options struct {
	NodeName string
	// ServerAddr is the API server for yurthub; empty: the server of
	// kubelet's own kubeconfig (/etc/kubernetes/kubelet.conf).
	ServerAddr   string
	YurthubImage string
	// YurthubExtraArgs are added to yurthub's command line ("--flag=value").
	YurthubExtraArgs []string
	NodePoolName     string
	Namespace        string
	// Timeout bounds each wait (yurthub healthy, Node Ready).
	Timeout time.Duration
}

// Env is the node as the step sees it; tests replace all of it.
type Env struct {
	Host       *host.Host
	HTTP       *http.Client
	HealthzURL string
	ProxyURL   string
	Poll       time.Duration
	Now        func() time.Time
	// NewClient builds API clients (nil: kube.New).
	NewClient func(*rest.Config) (kube.Interface, error)
	// Log prints a progress line.
	Log func(format string, a ...any)
	// GoneWait bounds the wait for yurthub to stop once its manifest is gone.
	GoneWait time.Duration
}

// DefaultEnv is the real node with its root at h.
func DefaultEnv(h *host.Host, log func(string, ...any)) Env {
	return Env{
		Host:       h,
		HTTP:       &http.Client{Timeout: 5 * time.Second},
		HealthzURL: constants.YurthubHealthzURL,
		ProxyURL:   constants.YurthubProxyURL,
		Poll:       2 * time.Second,
		Now:        time.Now,
		Log:        log,
		GoneWait:   90 * time.Second,
	}
}

// Step is one reported step of a node step.
type Step struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

// Result is what a node step did; it is printed as JSON and written as the
// Job pod's termination message.
type Result struct {
	Node    string `json:"node"`
	Action  string `json:"action"`
	Outcome string `json:"outcome"`
	Message string `json:"message,omitempty"`
	Steps   []Step `json:"steps,omitempty"`
}

func (r *Result) step(name, status, format string, a ...any) {
	r.Steps = append(r.Steps, Step{Name: name, Status: status, Message: fmt.Sprintf(format, a...)})
}

func (e Env) logf(format string, a ...any) {
	if e.Log != nil {
		e.Log(format, a...)
	}
}

func (e Env) client(cfg *rest.Config) (kube.Interface, error) {
	if e.NewClient != nil {
		return e.NewClient(cfg)
	}
	return kube.New(cfg)
}

// readFlags returns kubeadm-flags.env (nil when missing) and its args.
func readFlags(fsys host.FS) ([]byte, []string, error) {
	b, err := fsys.ReadFile(constants.KubeletFlagsEnvFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	args, _, err := yurthub.KubeadmFlagsArgs(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", constants.KubeletFlagsEnvFile, err)
	}
	return b, args, nil
}

// kubeletServer is the API server in kubelet's own kubeconfig.
func kubeletServer(fsys host.FS) (string, error) {
	cfg, err := loadKubeletKubeconfig(fsys)
	if err != nil {
		return "", err
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil || cfg.Clusters[ctx.Cluster] == nil || cfg.Clusters[ctx.Cluster].Server == "" {
		return "", fmt.Errorf("%s names no server in its current context", constants.KubeletKubeconfig)
	}
	return cfg.Clusters[ctx.Cluster].Server, nil
}

// DirectClientConfig is kubelet's own kubeconfig with its file paths
// resolved below the host root: the node's identity, talking to the API
// server directly.
func DirectClientConfig(fsys host.FS) (*rest.Config, error) {
	cfg, err := loadKubeletKubeconfig(fsys)
	if err != nil {
		return nil, err
	}
	// The files are read here, following symlinks below the host root:
	// kubelet-client-current.pem is an absolute symlink, which the client
	// would otherwise resolve outside the root (seen on the e2e harness).
	// A relative path is relative to the kubeconfig's directory, as kubelet
	// reads it (not to this process's working directory).
	inline := func(p *string, data *[]byte) error {
		if *p == "" {
			return nil
		}
		f := *p
		if !filepath.IsAbs(f) {
			f = filepath.Join(filepath.Dir(constants.KubeletKubeconfig), f)
		}
		b, err := readBelowRoot(fsys, f)
		if err != nil {
			return err
		}
		*data, *p = b, ""
		return nil
	}
	for _, a := range cfg.AuthInfos {
		if err := inline(&a.ClientCertificate, &a.ClientCertificateData); err != nil {
			return nil, err
		}
		if err := inline(&a.ClientKey, &a.ClientKeyData); err != nil {
			return nil, err
		}
		if a.TokenFile != "" {
			var tok []byte
			if err := inline(&a.TokenFile, &tok); err != nil {
				return nil, err
			}
			a.Token = strings.TrimSpace(string(tok))
		}
	}
	for _, c := range cfg.Clusters {
		if err := inline(&c.CertificateAuthority, &c.CertificateAuthorityData); err != nil {
			return nil, err
		}
	}
	rc, err := clientcmd.NewDefaultClientConfig(*cfg, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, err
	}
	rc.Timeout, rc.UserAgent = 10*time.Second, "yurtadm"
	return rc, nil
}

func loadKubeletKubeconfig(fsys host.FS) (*clientcmdapi.Config, error) {
	b, err := fsys.ReadFile(constants.KubeletKubeconfig)
	if err != nil {
		return nil, fmt.Errorf("read kubelet's kubeconfig: %w", err)
	}
	cfg, err := clientcmd.Load(b)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", constants.KubeletKubeconfig, err)
	}
	return cfg, nil
}

// isProxy reports whether server is yurthub's local proxy.
func isProxy(server string) bool {
	return strings.TrimSuffix(server, "/") == constants.YurthubProxyURL ||
		strings.Contains(server, fmt.Sprintf("127.0.0.1:%d", constants.YurthubProxyPort))
}

// Convert runs the convert step on the node. On failure the Result says
// what was rolled back and the error says why.
func Convert(ctx context.Context, o Options, env Env) (*Result, error) {
	r := &Result{Node: o.NodeName, Action: "convert"}
	fsys := env.Host.FS
	fail := func(name string, err error) (*Result, error) {
		r.step(name, StatusFailed, "%v", err)
		r.Outcome, r.Message = OutcomeFailed, fmt.Sprintf("%s: %v (nothing was changed)", name, err)
		return r, errors.New(r.Message)
	}

	flags, args, err := readFlags(fsys)
	if err != nil {
		return fail("inspect", err)
	}
	bk, err := readBackup(fsys)
	if err != nil {
		return fail("inspect", fmt.Errorf("%w; move it away or run 'yurtctl revert'", err))
	}
	redirected := yurthub.KubeconfigFlag(args) == constants.OpenYurtKubeletConfig
	if redirected && fsys.Exists(constants.OpenYurtKubeletConfig) && fsys.Exists(constants.YurthubManifest) {
		ok, state := yurthub.Healthy(ctx, env.HTTP, env.HealthzURL)
		if ok || bk == nil {
			r.step("inspect", StatusSkipped, "kubelet already talks through yurthub (%s; yurthub healthz: %s)", constants.OpenYurtKubeletConfig, state)
			r.Outcome, r.Message = OutcomeAlreadyConverted, "already converted: nothing changed (yurthub healthz: "+state+")"
			return r, nil
		}
		env.logf("kubelet already points at yurthub but yurthub is not healthy (%s): resuming the interrupted convert", state)
	} else if redirected && bk == nil {
		return fail("inspect", fmt.Errorf("kubelet's flags already name %s but the yurthub manifest or that kubeconfig is missing, and there is no backup: run 'yurtctl revert' (or 'yurtadm reset') on this node first", constants.OpenYurtKubeletConfig))
	}

	server := o.ServerAddr
	if server == "" && bk != nil && bk.Server != "" {
		server = bk.Server
	}
	if server == "" {
		if server, err = kubeletServer(fsys); err != nil {
			return fail("inspect", fmt.Errorf("%w (pass --server-addr)", err))
		}
	}
	if isProxy(server) {
		return fail("inspect", fmt.Errorf("kubelet's kubeconfig %s already points at yurthub's proxy %s; yurthub needs the real API server (pass --server-addr)", constants.KubeletKubeconfig, server))
	}
	for _, p := range []string{constants.KubeletClientCert, constants.CACertPath} {
		if !fsys.Exists(p) {
			return fail("inspect", fmt.Errorf("%s is missing: yurthub (kubeletcertificate mode) needs kubelet's client certificate and the cluster CA of a kubeadm node", p))
		}
	}
	r.step("inspect", StatusDone, "kubelet talks to %s; yurthub will too", server)

	if bk == nil {
		if bk, err = takeBackup(fsys, ChangedFiles, append(append([]string{}, yurthubDirs...), createdDirs...), server, env.Now()); err != nil {
			_, _ = fsys.RemoveAll(BackupDir)
			return fail("backup", err)
		}
		r.step("backup", StatusDone, "saved %s to %s", strings.Join(existing(bk), ", "), BackupDir)
	} else {
		r.step("backup", StatusSkipped, "resuming: keeping the backup of %s", bk.Created.Format(time.RFC3339))
	}
	env.logf("backed up kubelet's files to %s", BackupDir)

	restarted := false
	rollback := func(name string, cause error) (*Result, error) {
		r.step(name, StatusFailed, "%v", cause)
		problems := rollbackNode(ctx, env, bk, restarted, r)
		r.Outcome = OutcomeRolledBack
		r.Message = fmt.Sprintf("%s: %v; rolled back: kubelet files restored from %s", name, cause, BackupDir)
		if len(problems) > 0 {
			r.Outcome = OutcomeFailed
			r.Message = fmt.Sprintf("%s: %v; the rollback was incomplete: %s", name, cause, strings.Join(problems, "; "))
		}
		return r, errors.New(r.Message)
	}

	manifest, from, err := hubManifest(ctx, env, &o, server)
	if err != nil {
		return rollback("yurthub", err)
	}
	if err := fsys.WriteFileAtomic(constants.YurthubManifest, manifest, 0o644); err != nil {
		return rollback("yurthub", err)
	}
	r.step("yurthub", StatusDone, "wrote the static pod %s (nodepool %s) from %s", constants.YurthubManifest, o.NodePoolName, from)
	env.logf("wrote %s; waiting up to %s for yurthub at %s", constants.YurthubManifest, o.Timeout, env.HealthzURL)

	wctx, cancel := context.WithTimeout(ctx, o.Timeout)
	last, err := yurthub.WaitHealthy(wctx, env.HTTP, env.HealthzURL, env.Poll)
	cancel()
	if err != nil {
		return rollback("wait-yurthub", fmt.Errorf("yurthub was not healthy within %s (last: %s)", o.Timeout, last))
	}
	r.step("wait-yurthub", StatusDone, "yurthub is healthy")

	kc, err := yurthub.KubeletKubeconfig()
	if err != nil {
		return rollback("kubelet-yurthub", err)
	}
	if err := fsys.WriteFileAtomic(constants.OpenYurtKubeletConfig, kc, 0o600); err != nil {
		return rollback("kubelet-yurthub", err)
	}
	newFlags, _, err := yurthub.SetKubeconfigFlag(flags, constants.OpenYurtKubeletConfig)
	if err != nil {
		return rollback("kubelet-yurthub", err)
	}
	if err := fsys.WriteFileAtomic(constants.KubeletFlagsEnvFile, newFlags, flagsMode(bk)); err != nil {
		return rollback("kubelet-yurthub", err)
	}
	restartedAt := env.Now()
	restarted = true
	if err := env.Host.Init.ServiceRestart(constants.KubeletService); err != nil {
		return rollback("kubelet-yurthub", fmt.Errorf("restart kubelet: %w", err))
	}
	r.step("kubelet-yurthub", StatusDone, "kubelet now uses %s (server %s) and was restarted", constants.OpenYurtKubeletConfig, constants.YurthubProxyURL)
	env.logf("kubelet restarted with %s; waiting for Node %q to be Ready through yurthub", constants.OpenYurtKubeletConfig, o.NodeName)

	client, err := env.client(&rest.Config{Host: env.ProxyURL, Timeout: 10 * time.Second, UserAgent: "yurtadm"})
	if err != nil {
		return rollback("wait-ready", err)
	}
	wctx, cancel = context.WithTimeout(ctx, o.Timeout)
	last, err = yurthub.WaitNodeReady(wctx, client, o.NodeName, restartedAt, env.Poll)
	cancel()
	if err != nil {
		return rollback("wait-ready", fmt.Errorf("node %q was not Ready through yurthub within %s (last: %s)", o.NodeName, o.Timeout, last))
	}
	r.step("wait-ready", StatusDone, "Node %q is Ready through yurthub", o.NodeName)
	r.Outcome, r.Message = OutcomeConverted, "kubelet talks to the API server through yurthub; backup in "+BackupDir
	return r, nil
}

func existing(b *Backup) []string {
	var out []string
	for _, e := range b.Entries {
		if e.Existed {
			out = append(out, e.Path)
		}
	}
	if len(out) == 0 {
		return []string{"nothing (no kubelet file existed)"}
	}
	return out
}

func flagsMode(b *Backup) os.FileMode {
	for _, e := range b.Entries {
		if e.Path == constants.KubeletFlagsEnvFile && e.Existed && e.Mode != 0 {
			return e.Mode // (a symlink has none: the default)
		}
	}
	return 0o644
}

// rollbackNode restores the backup after a failed convert, restarts kubelet
// if convert restarted it, waits for yurthub to go away and removes what it
// left. It returns what it could not do.
func rollbackNode(ctx context.Context, env Env, bk *Backup, restarted bool, r *Result) []string {
	fsys := env.Host.FS
	var problems []string
	for _, e := range bk.Entries {
		changed, err := e.restore(fsys)
		switch {
		case err != nil:
			problems = append(problems, err.Error())
			r.step("rollback", StatusFailed, "restore %s: %v", e.Path, err)
		case changed && e.Existed:
			r.step("rollback", StatusDone, "restored %s byte for byte", e.Path)
		case changed:
			r.step("rollback", StatusDone, "removed %s", e.Path)
		}
	}
	if restarted {
		if err := env.Host.Init.ServiceRestart(constants.KubeletService); err != nil {
			problems = append(problems, "restart kubelet: "+err.Error())
			r.step("rollback", StatusFailed, "restart kubelet: %v", err)
		} else {
			r.step("rollback", StatusDone, "restarted kubelet with its original flags")
		}
	}
	waitYurthubGone(ctx, env)
	for _, d := range bk.AbsentDirs {
		if contains(yurthubDirs, d) {
			if removed, err := fsys.RemoveAll(d); err != nil {
				problems = append(problems, err.Error())
			} else if removed {
				r.step("rollback", StatusDone, "removed %s", d)
			}
		}
	}
	if len(problems) == 0 {
		if _, err := fsys.RemoveAll(BackupDir); err != nil {
			problems = append(problems, err.Error())
		}
		removeIfCreated(fsys, bk)
	}
	env.logf("rolled back")
	return problems
}

// waitYurthubGone waits, up to GoneWait, until kubelet has stopped yurthub
// after its manifest was removed (nothing answers on its port, not merely
// "unhealthy": a yurthub waiting for its certificate answers 503 and still
// writes its PKI), so that its directories are not written again after
// they are removed.
func waitYurthubGone(ctx context.Context, env Env) {
	if env.GoneWait <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, env.GoneWait)
	defer cancel()
	_ = yurthub.Poll(ctx, env.Poll, func(ctx context.Context) (bool, error) {
		return !yurthub.Answers(ctx, env.HTTP, env.HealthzURL), nil
	})
}

// readBelowRoot reads the host file p, resolving symlinks (absolute ones
// too) below the host root, as the host itself would.
func readBelowRoot(fsys host.FS, p string) ([]byte, error) {
	for i := 0; i < 40; i++ {
		st, err := os.Lstat(fsys.Path(p))
		if err != nil {
			return nil, fmt.Errorf("read %s on the node: %w", p, err)
		}
		if st.Mode()&os.ModeSymlink == 0 {
			return fsys.ReadFile(p)
		}
		target, err := os.Readlink(fsys.Path(p))
		if err != nil {
			return nil, fmt.Errorf("read %s on the node: %w", p, err)
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		p = filepath.Clean(target)
	}
	return nil, fmt.Errorf("read %s on the node: too many levels of symbolic links", p)
}

// hubManifest renders yurthub's static pod as yurtadm join does: from the
// cluster's YurtStaticSet yurt-hub (its ConfigMap, read with the node's
// own identity: OpenYurt's yurthub chart lets system:nodes read
// ConfigMaps) when it is in kubeletcertificate mode, the only one a node
// without a bootstrap token can run; else from the built-in template. It
// says which.
func hubManifest(ctx context.Context, env Env, o *Options, server string) ([]byte, string, error) {
	builtin := func(why string) ([]byte, string, error) {
		m, err := templates.RenderYurthub(templates.Yurthub{
			Image: o.YurthubImage, Namespace: o.Namespace, ServerAddr: server, NodePoolName: o.NodePoolName,
			WorkingMode: constants.NodeTypeEdge, BootstrapMode: constants.YurthubBootstrapModeKCE, Verbosity: 2,
			ExtraArgs: o.YurthubExtraArgs,
		})
		return m, "the built-in template, image " + o.YurthubImage + " (" + why + ")", err
	}
	cfg, err := DirectClientConfig(env.Host.FS)
	if err != nil {
		return builtin("no client to read the cluster's template: " + err.Error())
	}
	newClient := env.NewClient
	if newClient == nil {
		newClient = kube.New
	}
	client, err := newClient(cfg)
	if err != nil {
		return builtin("no client to read the cluster's template: " + err.Error())
	}
	t, why, err := yurthub.ReadStaticSetTemplate(ctx, client, o.Namespace, constants.YurthubStaticSet)
	if err != nil {
		env.logf("WARNING: %v", err)
	}
	if t == nil {
		return builtin(why)
	}
	mode := t.BootstrapMode
	if mode != constants.YurthubBootstrapModeKCE {
		return builtin("the cluster's template is for " + mode + " mode; a converted node has no bootstrap token")
	}
	m, err := templates.RenderFromStaticSet(templates.FromStaticSet{Manifest: t.Manifest, Image: templates.TemplateImage(o.YurthubImage),
		Args: templates.NodeArgs(server, constants.NodeTypeEdge, o.Namespace, o.NodePoolName, "", o.YurthubExtraArgs)})
	if err != nil {
		return builtin("the cluster's template is unusable: " + err.Error())
	}
	return m, "the cluster's YurtStaticSet " + o.Namespace + "/" + constants.YurthubStaticSet, nil
}
