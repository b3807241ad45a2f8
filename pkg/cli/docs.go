package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/yurtadm/yurtadm/pkg/version"
)

// newDocsCommand generates the Markdown CLI reference for the whole tree.
//
// It writes the pages itself rather than through cobra/doc: that package also
// links a Markdown-to-man converter whose package initialisation costs every
// yurtadm run about 0.8 MB of peak RSS and several milliseconds of start-up
// (measured with `/usr/bin/time -f %M yurtadm version` and GODEBUG=inittrace=1),
// which an edge device pays for a command only developers run.
func newDocsCommand(root *cobra.Command) *cobra.Command {
	dir := "docs/cli"
	cmd := &cobra.Command{
		Use:   "docs",
		Short: "Generate the Markdown CLI reference",
		Args:  cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			stableDefaults(root, version.Get().GitVersion)
			return writeMarkdownTree(root, dir)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", dir, "directory to write the reference into")
	return cmd
}

// stableDefaults shows defaults that embed this build's version (the node
// image convert's Jobs run, for one) as "<version>", so that the reference
// does not change with every commit. Only the displayed default changes.
func stableDefaults(c *cobra.Command, v string) {
	fix := func(f *pflag.Flag) { f.DefValue = strings.ReplaceAll(f.DefValue, v, "<version>") }
	c.Flags().VisitAll(fix)
	c.PersistentFlags().VisitAll(fix)
	for _, sub := range c.Commands() {
		stableDefaults(sub, v)
	}
}

// documented says whether a command gets a page: not hidden, deprecated or
// cobra's help and completion commands.
func documented(c *cobra.Command) bool {
	return c.IsAvailableCommand() || c.IsAdditionalHelpTopicCommand()
}

func pageName(c *cobra.Command) string {
	return strings.ReplaceAll(c.CommandPath(), " ", "_") + ".md"
}

func writeMarkdownTree(c *cobra.Command, dir string) error {
	for _, sub := range c.Commands() {
		if documented(sub) {
			if err := writeMarkdownTree(sub, dir); err != nil {
				return err
			}
		}
	}
	var buf bytes.Buffer
	markdownPage(&buf, c)
	return os.WriteFile(filepath.Join(dir, pageName(c)), buf.Bytes(), 0o644)
}

// markdownPage writes one command's page: synopsis, usage, examples, flags
// and links to its parent and children.
func markdownPage(buf *bytes.Buffer, c *cobra.Command) {
	c.InitDefaultHelpCmd()
	c.InitDefaultHelpFlag()
	name := c.CommandPath()
	fmt.Fprintf(buf, "## %s\n\n%s\n\n", name, c.Short)
	if c.Long != "" {
		fmt.Fprintf(buf, "### Synopsis\n\n%s\n\n", c.Long)
	}
	if c.Runnable() {
		fmt.Fprintf(buf, "```\n%s\n```\n\n", c.UseLine())
	}
	if c.Example != "" {
		fmt.Fprintf(buf, "### Examples\n\n```\n%s\n```\n\n", c.Example)
	}
	if f := c.NonInheritedFlags(); f.HasAvailableFlags() {
		fmt.Fprintf(buf, "### Options\n\n```\n%s```\n\n", f.FlagUsages())
	}
	if f := c.InheritedFlags(); f.HasAvailableFlags() {
		fmt.Fprintf(buf, "### Options inherited from parent commands\n\n```\n%s```\n\n", f.FlagUsages())
	}
	var links []string
	if p := c.Parent(); p != nil {
		links = append(links, fmt.Sprintf("* [%s](%s)\t - %s", p.CommandPath(), pageName(p), p.Short))
	}
	subs := c.Commands()
	sort.Slice(subs, func(i, j int) bool { return subs[i].Name() < subs[j].Name() })
	for _, s := range subs {
		if documented(s) {
			links = append(links, fmt.Sprintf("* [%s](%s)\t - %s", s.CommandPath(), pageName(s), s.Short))
		}
	}
	if len(links) > 0 {
		fmt.Fprintf(buf, "### SEE ALSO\n\n%s\n", strings.Join(links, "\n"))
	}
}
