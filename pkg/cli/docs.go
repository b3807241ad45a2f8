package cli

import (
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newDocsCommand generates the Markdown CLI reference for the whole tree.
func newDocsCommand(root *cobra.Command) *cobra.Command {
	dir := "docs/cli"
	cmd := &cobra.Command{
		Use:    "docs",
		Short:  "Generate the Markdown CLI reference",
		Hidden: false,
		Args:   cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			root.DisableAutoGenTag = true
			return doc.GenMarkdownTree(root, dir)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", dir, "directory to write the reference into")
	return cmd
}
