package reset

import (
	"github.com/spf13/cobra"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
)

// NewCommand is a placeholder until the reset command lands.
func NewCommand(s cmdutil.IOStreams) *cobra.Command {
	return &cobra.Command{Use: "reset", Short: "reset (not implemented yet)"}
}
