package preflight

import (
	"github.com/spf13/cobra"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
)

// NewCommand is a placeholder until the preflight command lands.
func NewCommand(s cmdutil.IOStreams) *cobra.Command {
	return &cobra.Command{Use: "preflight", Short: "preflight (not implemented yet)"}
}
