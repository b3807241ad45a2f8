package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/version"
)

func newVersionCommand(s cmdutil.IOStreams) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of yurtadm and the Kubernetes and OpenYurt versions it supports",
		Args:  cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			if err := cmdutil.ValidateOutput(output); err != nil {
				return err
			}
			info := version.Get()
			if output == cmdutil.OutputJSON {
				return s.PrintJSON(info)
			}
			_, err := fmt.Fprintln(s.Out, info.String())
			return err
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", cmdutil.OutputText, "output format: text or json")
	return cmd
}
