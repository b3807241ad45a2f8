package join

import (
	"github.com/spf13/cobra"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
)

// NewCommand is a placeholder until the join command lands.
func NewCommand(s cmdutil.IOStreams) *cobra.Command {
	return &cobra.Command{Use: "join", Short: "join (not implemented yet)"}
}
