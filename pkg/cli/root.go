// Package cli builds the yurtadm (and yurtctl) command tree and turns errors
// into exit codes. cmd/yurtadm only calls Run.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/convert"
	"github.com/yurtadm/yurtadm/pkg/doctor"
	"github.com/yurtadm/yurtadm/pkg/images"
	"github.com/yurtadm/yurtadm/pkg/join"
	"github.com/yurtadm/yurtadm/pkg/preflight"
	"github.com/yurtadm/yurtadm/pkg/reset"
	"github.com/yurtadm/yurtadm/pkg/token"
)

// Names the binary answers to. yurtctl is the cluster-side name of the same binary.
const (
	NameYurtadm = "yurtadm"
	NameYurtctl = "yurtctl"
)

// NewRootCommand builds the command tree for the binary called name.
func NewRootCommand(name string, s cmdutil.IOStreams) *cobra.Command {
	if name != NameYurtctl {
		name = NameYurtadm
	}
	root := &cobra.Command{
		Use:   name,
		Short: "Manage the lifecycle of OpenYurt edge nodes",
		Long: name + ` manages the lifecycle of OpenYurt edge nodes in a kubeadm cluster:
join a node through yurthub, check a host before it joins, and reset it
before it joins again.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// No arguments: print help, exit 0. An unknown subcommand is an error.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cmdutil.Usagef("see '"+name+" --help' for the commands", "unknown command %q for %q", args[0], name)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.ErrOut)
	root.CompletionOptions.HiddenDefaultCmd = true

	gofs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(gofs)
	if f := gofs.Lookup("v"); f != nil {
		root.PersistentFlags().AddGoFlag(f)
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return cmdutil.Usagef("see '"+name+" --help'", "%v", err)
	})

	root.AddCommand(
		join.NewCommand(s),
		convert.NewCommand(s),
		convert.NewRevertCommand(s),
		convert.NewPostRenderCommand(s),
		convert.NewPostRenderYurtManagerCommand(s),
		reset.NewCommand(s),
		preflight.NewCommand(s),
		doctor.NewCommand(s),
		doctor.NewCacheCommand(s),
		doctor.NewUpgradeCommand(s),
		token.NewCommand(s),
		images.NewCommand(s),
		newVersionCommand(s),
		newDocsCommand(root),
	)
	usageArgs(root)
	return root
}

// usageArgs makes a refused argument a usage error (exit 2, with a hint)
// on every command: cobra's own checks, such as cobra.NoArgs, return
// plain errors (`unknown command "x" for "yurtadm reset"`), which exit 1.
func usageArgs(c *cobra.Command) {
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			err := check(cmd, args)
			var ce *cmdutil.Error
			if err != nil && !errors.As(err, &ce) {
				return cmdutil.Usagef("see '"+cmd.CommandPath()+" --help'", "%v", err)
			}
			return err
		}
	}
	for _, sub := range c.Commands() {
		usageArgs(sub)
	}
}

// Run executes the command line args (args[0] is the program name) and
// returns the exit code. Errors are printed once, with their hint.
func Run(args []string, s cmdutil.IOStreams) int {
	name := strings.TrimSuffix(filepath.Base(args[0]), ".exe")
	root := NewRootCommand(name, s)
	root.SetArgs(args[1:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	klog.Flush()
	if err == nil {
		return cmdutil.ExitOK
	}
	// A signal ends the command with ExitInterrupted, whatever error the
	// step it stopped returned (a wait cut short is not a time-out).
	if ctx.Err() != nil && cmdutil.ExitCode(err) != cmdutil.ExitInterrupted {
		hint := cmdutil.Hint(err)
		if hint == "" {
			hint = "the command was interrupted; run it again, or run 'yurtadm reset' to clean up"
		}
		err = &cmdutil.Error{Code: cmdutil.ExitInterrupted, Err: fmt.Errorf("interrupted: %w", err), Hint: hint}
	}
	fmt.Fprintf(s.ErrOut, "error: %v\n", err)
	if h := cmdutil.Hint(err); h != "" {
		fmt.Fprintf(s.ErrOut, "hint: %s\n", h)
	}
	if klog.V(5).Enabled() {
		fmt.Fprintf(s.ErrOut, "%+v\n", err)
	}
	return cmdutil.ExitCode(err)
}
