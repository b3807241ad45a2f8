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
		RunE: postRender(s, func(in []byte) ([]byte, error) {
			return controlplane.PostRenderYurthub(in, args, strategy, mode)
		}),
	}
	cmd.Flags().StringArrayVar(&args, flagYurthubExtraArg, nil, "a --flag=value to set on yurthub's command line (repeat for more)")
	cmd.Flags().StringVar(&strategy, flagUpgradeStrategy, strategy, "the YurtStaticSets' upgrade strategy: OTA or AdvancedRollingUpdate")
	cmd.Flags().StringVar(&mode, flagHubBootstrapMode, mode, "yurthub's bootstrap mode in the YurtStaticSets: kubeletcertificate or token")
	return cmd
}

// PostRenderYurtManagerCommand is the hidden command convert names as
// Helm's --post-renderer of the yurt-manager chart.
const PostRenderYurtManagerCommand = "helm-post-render-yurt-manager"

// NewPostRenderYurtManagerCommand reads the rendered yurt-manager chart on
// stdin and writes it with yurt-manager's readiness probe starting at once
// (controlplane.PostRenderYurtManager).
func NewPostRenderYurtManagerCommand(s cmdutil.IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:    PostRenderYurtManagerCommand,
		Short:  "Helm post-renderer of OpenYurt's yurt-manager chart (run by yurtctl convert)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE:   postRender(s, controlplane.PostRenderYurtManager),
	}
}

// postRender is a post-renderer's run: what helm rendered, at most
// maxRendered bytes on stdin, through render to stdout.
func postRender(s cmdutil.IOStreams, render func([]byte) ([]byte, error)) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		in, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxRendered+1))
		if err != nil {
			return err
		}
		if len(in) > maxRendered {
			return fmt.Errorf("more than %d MiB on stdin", maxRendered>>20)
		}
		out, err := render(in)
		if err != nil {
			return err
		}
		_, err = s.Out.Write(out)
		return err
	}
}
