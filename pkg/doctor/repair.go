package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/yurthub"
)

// `yurtadm cache repair` removes the cache entries doctor's cache-stale
// check names, and nothing else. yurthub v1.7 keeps its disk cache open
// while it runs and kubelet restarts the static pod at once, so repair
// stops kubelet first, then yurthub's container, removes the files, and
// starts kubelet again, which starts yurthub; the node's other pods keep
// running meanwhile. It needs the cloud: what is stale is what the cloud
// no longer has.

const (
	flagDryRun = "dry-run"
	flagForce  = "force"
	flagWait   = "wait"
)

// repairOptions are the flags of yurtadm cache repair, beyond doctor's.
type repairOptions struct {
	dryRun bool
	force  bool
	wait   time.Duration
}

// repairResult is the -o json output of yurtadm cache repair.
type repairResult struct {
	staleReport
	DryRun  bool     `json:"dryRun"`
	Removed []string `json:"removed"`
	Failed  []string `json:"failed,omitempty"`
	// YurthubReady is set once yurthub answered its healthz again.
	YurthubReady bool `json:"yurthubReady"`
}

// NewCacheCommand returns `yurtadm cache`, whose subcommand repair removes
// stale entries from yurthub's cache.
func NewCacheCommand(s cmdutil.IOStreams) *cobra.Command {
	return newCacheCommand(s, realDeps(), cmdutil.Confirm, os.Geteuid)
}

type confirmFunc func(ctx context.Context, s cmdutil.IOStreams, question, forceFlag string) error

func newCacheCommand(s cmdutil.IOStreams, dp deps, confirm confirmFunc, geteuid func() int) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Inspect and repair yurthub's cache on this node",
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.AddCommand(newRepairCommand(s, dp, confirm, geteuid))
	return cmd
}

func newRepairCommand(s cmdutil.IOStreams, dp deps, confirm confirmFunc, geteuid func() int) *cobra.Command {
	o := &options{output: cmdutil.OutputText, hostRoot: "/", timeout: 10 * time.Second}
	ro := &repairOptions{wait: 2 * time.Minute}
	cmd := &cobra.Command{
		Use:   "repair",
		Short: "Remove the objects yurthub cached that the cloud no longer has",
		Long: `Repair compares yurthub's disk cache (/etc/kubernetes/cache) with the
cloud, as 'yurtadm doctor' does in its cache-stale check, and removes
exactly the cached objects the cloud no longer has: deleted while the node
was cut off, or deleted and created again with a new UID. After a reboot
while cut off yurthub serves what it cached as current, so a Service
deleted meanwhile keeps its ClusterIP and DNS name on the node.

yurthub keeps its cache open while it runs, and kubelet restarts its static
pod at once; so repair stops kubelet, stops yurthub's container, removes the
files, and starts kubelet again, which starts yurthub. The other pods keep
running. It then waits until yurthub answers its healthz. Repair needs the
cloud (the comparison is with it) and root; it touches nothing else, follows
no symlink, and with --dry-run only lists what it would remove.`,
		Example: `  # What is stale, without changing anything
  sudo yurtadm cache repair --dry-run

  # Remove it, without the prompt
  sudo yurtadm cache repair --force`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cmdutil.Usagef("repair takes flags only; see 'yurtadm cache repair --help'", "unexpected argument %q", args[0])
			}
			return nil
		},
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			return runRepair(ctx, s, o, ro, dp, confirm, geteuid)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.kubeconfig, flagKubeconfig, "",
		"Kubeconfig to compare with the cloud (default: through yurthub's proxy, else /etc/kubernetes/kubelet.conf, else admin.conf)")
	fs.DurationVar(&o.timeout, flagTimeout, o.timeout, "How long each request to the API server or command may take")
	fs.StringVarP(&o.output, flagOutput, "o", o.output, "Output format: text or json (both on stdout)")
	fs.StringVar(&o.nodeName, flagNodeName, "", "This node's name (default: as doctor finds it)")
	fs.StringVar(&o.criSocket, flagCRISocket, "", "Container runtime socket (default: the one found)")
	fs.BoolVar(&ro.dryRun, flagDryRun, false, "List the stale objects and change nothing")
	fs.BoolVar(&ro.force, flagForce, false, "Do not ask before stopping kubelet and yurthub")
	fs.DurationVar(&ro.wait, flagWait, ro.wait, "How long to wait for yurthub to be healthy again")
	fs.StringVar(&o.hostRoot, flagHostRoot, o.hostRoot, "Directory that stands for / (for tests)")
	_ = fs.MarkHidden(flagHostRoot)
	return cmd
}

func runRepair(ctx context.Context, s cmdutil.IOStreams, o *options, ro *repairOptions, dp deps, confirm confirmFunc, geteuid func() int) error {
	if _, err := validate(o); err != nil {
		return err
	}
	if ro.wait <= 0 {
		return cmdutil.Usagef("pass a positive duration, e.g. --"+flagWait+" 2m", "--%s %s is not positive", flagWait, ro.wait)
	}
	if !ro.dryRun && geteuid() != 0 {
		return &cmdutil.Error{Code: cmdutil.ExitPreflight, Err: errors.New("yurtadm cache repair stops kubelet and yurthub and must run as root"),
			Hint: "run it with sudo, or pass --" + flagDryRun + " to see what it would remove"}
	}
	log := s.Narration(o.output)
	d := newDoctor(ctx, o, dp)
	rep, err := d.staleCache()
	if err != nil {
		return cmdutil.WithHint(fmt.Errorf("compare yurthub's cache with the cloud: %w", err), cmdutil.ExitError,
			"repair needs the API server: run it once the node reaches the cloud again (nothing was changed)")
	}
	res := repairResult{staleReport: rep, DryRun: ro.dryRun, Removed: []string{}}
	log.Logf("cache", "%d cached objects compared with the cloud through %s: %d stale", rep.Checked, rep.Via, len(rep.Stale))
	for _, u := range rep.Unchecked {
		log.Logf("cache", "not compared: %s", u)
	}
	for _, st := range rep.Stale {
		log.Logf("cache", "stale: %s: %s", st.cachedObject, st.Why)
	}
	finish := func(err error) error {
		if o.output == cmdutil.OutputJSON {
			if perr := s.PrintJSON(res); perr != nil && err == nil {
				err = perr
			}
		}
		return err
	}
	if len(rep.Stale) == 0 || ro.dryRun {
		if ro.dryRun && len(rep.Stale) > 0 {
			log.Logf("dry-run", "would stop kubelet and yurthub, remove these %d files and start kubelet again", len(rep.Stale))
		}
		if len(rep.Stale) == 0 {
			log.Logf("cache", "nothing to repair")
		}
		return finish(nil)
	}
	// Every file must be a regular file reached through no symlink below
	// the cache directory, checked before anything is stopped.
	dir := d.cacheDir()
	for _, st := range rep.Stale {
		if err := noSymlinkBelow(d.h.FS.Path(dir), d.h.FS.Path(st.Path)); err != nil {
			return finish(cmdutil.WithHint(err, cmdutil.ExitError, "nothing was changed; remove the link or the file by hand if it is yours"))
		}
	}
	if !ro.force {
		q := fmt.Sprintf("[cache] kubelet and yurthub will be stopped for a moment and %d cached objects removed. Proceed?", len(rep.Stale))
		if err := confirm(ctx, s, q, flagForce); err != nil {
			return finish(err)
		}
	}

	h := d.h
	kubeletWasActive := h.Init.ServiceIsActive(constants.KubeletService)
	if kubeletWasActive {
		log.Logf("cache", "stopping kubelet")
		if err := h.Init.ServiceStop(constants.KubeletService); err != nil {
			return finish(cmdutil.WithHint(fmt.Errorf("stop kubelet: %w", err), cmdutil.ExitError,
				"nothing was removed; check 'systemctl status kubelet'"))
		}
	}
	startKubelet := func() error {
		if !kubeletWasActive {
			return nil
		}
		log.Logf("cache", "starting kubelet")
		return h.Init.ServiceStart(constants.KubeletService)
	}
	if err := d.stopYurthub(log); err != nil {
		serr := startKubelet()
		return finish(cmdutil.WithHint(errors.Join(fmt.Errorf("stop yurthub: %w", err), serr), cmdutil.ExitError,
			"nothing was removed; kubelet was started again"))
	}
	for _, st := range rep.Stale {
		if _, err := h.FS.Remove(st.Path); err != nil {
			res.Failed = append(res.Failed, fmt.Sprintf("%s: %v", st.Path, err))
			continue
		}
		res.Removed = append(res.Removed, st.Path)
		log.Logf("cache", "removed %s (%s)", st.Path, st.Why)
	}
	if err := startKubelet(); err != nil {
		return finish(cmdutil.WithHint(fmt.Errorf("start kubelet: %w", err), cmdutil.ExitError, "start it with 'systemctl start kubelet'"))
	}
	if kubeletWasActive {
		res.YurthubReady = d.waitHealthy(ctx, ro.wait)
		if !res.YurthubReady {
			return finish(&cmdutil.Error{Code: cmdutil.ExitTimeout,
				Err:  fmt.Errorf("yurthub did not answer its healthz within %s after kubelet started again", ro.wait),
				Hint: "see 'yurtadm doctor'"})
		}
		log.Logf("cache", "yurthub is healthy again")
	}
	if len(res.Failed) > 0 {
		return finish(&cmdutil.Error{Code: cmdutil.ExitError, Err: fmt.Errorf("could not remove %s", strings.Join(res.Failed, "; ")),
			Hint: "remove them by hand while yurthub is stopped"})
	}
	if o.output != cmdutil.OutputJSON {
		fmt.Fprintf(s.Out, "Removed %d stale %s from yurthub's cache.\n", len(res.Removed), plural(len(res.Removed), "object", "objects"))
	}
	return finish(nil)
}

// stopYurthub stops the running yurt-hub containers (kubelet is stopped,
// so none is started again).
func (d *doctor) stopYurthub(log cmdutil.IOStreams) error {
	all, err := d.containers()
	if err != nil {
		return err
	}
	for _, c := range hubContainers(all) {
		if c.State != stateRunning {
			continue
		}
		log.Logf("cache", "stopping yurthub's container %s", c.short())
		if _, err := d.crictl("stop", c.ID); err != nil {
			return err
		}
	}
	return nil
}

// waitHealthy polls yurthub's healthz, for up to wait, until it answers OK.
func (d *doctor) waitHealthy(ctx context.Context, wait time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	_, err := yurthub.WaitHealthy(ctx, d.dp.http, d.dp.serveURL+"/v1/healthz", healthPoll)
	return err == nil
}

// healthPoll is how often waitHealthy asks.
var healthPoll = 500 * time.Millisecond

// noSymlinkBelow checks that every element of target below root is not a
// symlink and that target is a regular file.
func noSymlinkBelow(root, target string) error {
	rel, err := filepath.Rel(root, target)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("%s is not below %s", target, root)
	}
	cur := root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, part)
		st, err := os.Lstat(cur)
		if err != nil {
			return err
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symbolic link: repair does not follow links", cur)
		}
	}
	if st, _ := os.Lstat(target); !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path.Clean(target))
	}
	return nil
}
