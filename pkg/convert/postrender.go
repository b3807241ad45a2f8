package convert

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/convert/controlplane"
)

// PostRenderCommand is the hidden command convert names as Helm's
// --post-renderer of the yurthub chart.
const PostRenderCommand = "helm-post-render-yurthub"

// maxRendered bounds what the post-renderer reads from helm.
const maxRendered = 32 << 20

// NewPostRenderCommand reads the rendered yurthub chart on stdin and
// writes it with every --yurthub-extra-arg set on the YurtStaticSets'
// yurt-hub container (controlplane.PostRenderYurthub).
func NewPostRenderCommand(s cmdutil.IOStreams) *cobra.Command {
	var args []string
	strategy, mode := controlplane.UpgradeOTA, constants.YurthubBootstrapModeKCE
	cmd := &cobra.Command{
		Use:    PostRenderCommand,
		Short:  "Helm post-renderer of OpenYurt's yurthub chart (run by yurtctl convert)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxRendered+1))
			if err != nil {
				return err
			}
			if len(in) > maxRendered {
				return fmt.Errorf("more than %d MiB on stdin", maxRendered>>20)
			}
			out, err := controlplane.PostRenderYurthub(in, args, strategy, mode)
			if err != nil {
				return err
			}
			_, err = s.Out.Write(out)
			return err
		},
	}
	cmd.Flags().StringArrayVar(&args, flagYurthubExtraArg, nil, "a --flag=value to set on yurthub's command line (repeat for more)")
	cmd.Flags().StringVar(&strategy, flagUpgradeStrategy, strategy, "the YurtStaticSets' upgrade strategy: OTA or AdvancedRollingUpdate")
	cmd.Flags().StringVar(&mode, flagHubBootstrapMode, mode, "yurthub's bootstrap mode in the YurtStaticSets: kubeletcertificate or token")
	return cmd
}
