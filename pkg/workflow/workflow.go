// Package workflow runs a command as an ordered list of named phases, the way
// kubeadm's commands behave: the whole command runs every phase in order,
// `<command> phase <name>` runs one (a phase with subphases runs all of
// them, `<name> <sub>` one), --skip-phases leaves some out, and the
// command's help lists the phases.
//
// yurtadm used kubeadm's own runner (cmd/kubeadm/app/cmd/phases/workflow)
// until it measured what that import costs: the runner's package imports
// kubeadm's cmd/util for two helpers, which imports kubeadm's kubeconfig
// utilities and with them client-go's whole clientset, every API group's
// typed client, scheme and apply configurations. On linux/amd64 that is
// 13.8 MB of a 41.0 MB stripped binary (docs/design.md). This package does
// what yurtadm needs of it in a few hundred lines and links nothing but
// cobra and pflag.
package workflow

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
)

// RunData is what the data initializer builds and every phase receives.
type RunData = any

// Phase is one step of a command.
type Phase struct {
	// Name is the phase's name on the command line (lower case).
	Name string
	// Short is the one-line description shown in the help.
	Short string
	// Phases are the subphases, run in order after Run (if any).
	Phases []Phase
	// RunAllSiblings makes this entry only a subcommand that runs all
	// of its parent's subphases (e.g. `remove-files all`); it is not a
	// phase of its own, has no Run and is not listed.
	RunAllSiblings bool
	// Run does the phase's work; nil for a phase that only groups
	// subphases.
	Run func(RunData) error
	// InheritFlags names the command's flags that `phase <name>` takes.
	InheritFlags []string
}

// Options selects the phases a run runs.
type Options struct {
	// FilterPhases, when set, runs only these phases (by path, e.g.
	// "remove-files" or "remove-files/cache") and their subphases.
	FilterPhases []string
	// SkipPhases leaves these phases and their subphases out.
	SkipPhases []string
}

// Runner runs a command's phases.
type Runner struct {
	Options Options

	phases []Phase
	init   func(*cobra.Command, []string) (RunData, error)
	data   RunData
	// cmd is the command that started the run: the whole command, or
	// the `phase <name>` subcommand.
	cmd *cobra.Command
}

// NewRunner returns a runner with no phases.
func NewRunner() *Runner { return &Runner{} }

// AppendPhase adds a phase after the others.
func (r *Runner) AppendPhase(p Phase) { r.phases = append(r.phases, p) }

// SetDataInitializer sets the function that builds the phases' data, once,
// from the command that started the run and its arguments.
func (r *Runner) SetDataInitializer(f func(*cobra.Command, []string) (RunData, error)) {
	r.init = f
}

// InitData builds the phases' data, once, and returns it.
func (r *Runner) InitData(args []string) (RunData, error) {
	if r.data == nil && r.init != nil {
		d, err := r.init(r.cmd, args)
		if err != nil {
			return nil, err
		}
		r.data = d
	}
	return r.data, nil
}

// step is a phase at its place in the command: its path ("parent/name")
// and depth, listed in run order (a parent before its subphases).
type step struct {
	*Phase
	path  string
	depth int
}

func (r *Runner) steps() []step {
	var out []step
	var walk func(list []Phase, parent string, depth int)
	walk = func(list []Phase, parent string, depth int) {
		for i := range list {
			p := &list[i]
			if p.RunAllSiblings {
				continue
			}
			path := strings.ToLower(p.Name)
			if parent != "" {
				path = parent + "/" + path
			}
			out = append(out, step{Phase: p, path: path, depth: depth})
			walk(p.Phases, path, depth+1)
		}
	}
	walk(r.phases, "", 0)
	return out
}

// Names lists the path of every phase, in run order: the names
// --skip-phases takes.
func (r *Runner) Names() []string {
	var names []string
	for _, s := range r.steps() {
		names = append(names, s.path)
	}
	return names
}

// selected says which phases this run runs. A name in FilterPhases or
// SkipPhases that is not a phase is a usage error naming the phases.
func (r *Runner) selected() (map[string]bool, error) {
	names := r.Names()
	within := func(path, sel string) bool { return path == sel || strings.HasPrefix(path, sel+"/") }
	check := func(flag string, sel []string) error {
		for _, s := range sel {
			if !slices.Contains(names, s) {
				return cmdutil.Usagef("the phases are: "+strings.Join(names, ", "), "%sunknown phase %q", flag, s)
			}
		}
		return nil
	}
	if err := check("", r.Options.FilterPhases); err != nil {
		return nil, err
	}
	if err := check("--skip-phases: ", r.Options.SkipPhases); err != nil {
		return nil, err
	}
	run := map[string]bool{}
	for _, n := range names {
		on := len(r.Options.FilterPhases) == 0 || slices.ContainsFunc(r.Options.FilterPhases, func(f string) bool { return within(n, f) })
		if slices.ContainsFunc(r.Options.SkipPhases, func(s string) bool { return within(n, s) }) {
			on = false
		}
		run[n] = on
	}
	return run, nil
}

// Run builds the data (if not yet built) and runs the selected phases in
// order, stopping at the first error, which it returns wrapped with the
// phase's path.
func (r *Runner) Run(args []string) error {
	run, err := r.selected()
	if err != nil {
		return err
	}
	data, err := r.InitData(args)
	if err != nil {
		return err
	}
	for _, s := range r.steps() {
		if !run[s.path] || s.Run == nil {
			continue
		}
		if err := s.Run(data); err != nil {
			return fmt.Errorf("error execution phase %s: %w", s.path, err)
		}
	}
	return nil
}

// Help lists the phases as the command's help shows them.
func (r *Runner) Help(use string) string {
	steps := r.steps()
	// A subphase is shown as "/name" below its parent, indented two
	// spaces a level; the descriptions line up.
	label := func(s step) string {
		l := strings.ToLower(s.Name)
		if s.depth > 0 {
			l = "/" + l
		}
		return strings.Repeat("  ", s.depth) + l
	}
	width := 0
	for _, s := range steps {
		width = max(width, len(label(s)))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "The %q command executes the following phases:\n```\n", use)
	for _, s := range steps {
		l := label(s)
		fmt.Fprintf(&b, "%s%s%s\n", l, strings.Repeat(" ", width-len(l)+2), s.Short)
	}
	b.WriteString("```")
	return b.String()
}

// errSubcommandRequired is returned by `phase` and by a phase with
// subphases when no subcommand is named.
var errSubcommandRequired = cmdutil.Usagef("", "subcommand is required")

// BindToCommand adds `phase` with a subcommand per phase to cmd, the
// --skip-phases flag, and the list of phases to cmd's long help. Call it
// once every phase is appended.
func (r *Runner) BindToCommand(cmd *cobra.Command) {
	r.cmd = cmd
	if len(r.phases) == 0 {
		return
	}
	phaseCmd := &cobra.Command{
		Use:   "phase",
		Short: fmt.Sprintf("Use this command to invoke single phase of the %q workflow", cmd.Name()),
		Args:  unknownPhase(r.phases),
		RunE: func(c *cobra.Command, _ []string) error {
			_ = c.Help()
			return errSubcommandRequired
		},
	}
	phaseCmd.FParseErrWhitelist.UnknownFlags = true
	cmd.AddCommand(phaseCmd)
	r.addSubcommands(cmd, phaseCmd, r.phases, "")

	long := cmd.Long
	if long == "" {
		long = cmd.Short
	}
	cmd.Long = fmt.Sprintf("%s\n\n%s\n", long, r.Help(cmd.Use))
	cmd.Flags().StringSliceVar(&r.Options.SkipPhases, "skip-phases", nil, "List of phases to be skipped")
}

// unknownPhase refuses an argument of `phase`, or of a phase with
// subphases, as a usage error that names it and the phases of list.
// Unknown flags are let through to it (FParseErrWhitelist), so that
// `reset phase bogus -f` names "bogus", not -f, which no phase parent has.
func unknownPhase(list []Phase) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		var names []string
		for _, p := range list {
			names = append(names, strings.ToLower(p.Name))
		}
		return cmdutil.Usagef("the phases are: "+strings.Join(names, ", "), "unknown phase %q for '%s'", args[0], c.CommandPath())
	}
}

func (r *Runner) addSubcommands(root, parent *cobra.Command, list []Phase, parentPath string) {
	for i := range list {
		p := &list[i]
		name := strings.ToLower(p.Name)
		path := name
		if parentPath != "" {
			path = parentPath + "/" + name
		}
		selector := path
		if p.RunAllSiblings {
			selector = parentPath
		}
		sub := &cobra.Command{
			Use:   name,
			Short: p.Short,
			RunE: func(c *cobra.Command, args []string) error {
				if len(p.Phases) > 0 {
					_ = c.Help()
					return errSubcommandRequired
				}
				r.cmd = c
				r.Options.FilterPhases = []string{selector}
				return r.Run(args)
			},
		}
		inherit(root.Flags(), sub.Flags(), p.InheritFlags)
		if len(p.Phases) > 0 {
			sub.Args = unknownPhase(p.Phases)
			sub.FParseErrWhitelist.UnknownFlags = true
		} else {
			sub.Args = root.Args
		}
		parent.AddCommand(sub)
		if !p.RunAllSiblings {
			r.addSubcommands(root, sub, p.Phases, path)
		}
	}
}

// inherit adds the named flags of from to to; both then set the same value.
func inherit(from, to *pflag.FlagSet, names []string) {
	for _, n := range names {
		if f := from.Lookup(n); f != nil && to.Lookup(n) == nil {
			to.AddFlag(f)
		}
	}
}
