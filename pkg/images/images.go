// Package images implements `yurtadm images list|save`: the images a node
// runs before it can reach a registry through the cluster (yurthub and the
// pause image), and an archive of them for air-gapped nodes, which
// `yurtadm join --image-archive` loads.
package images

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/cri"
	"github.com/yurtadm/yurtadm/pkg/host"
	"github.com/yurtadm/yurtadm/pkg/version"
	"github.com/yurtadm/yurtadm/pkg/yurthub"
)

type options struct {
	yurthubImage string
	criSocket    string
	output       string
	hostRoot     string
}

// NewCommand returns `yurtadm images`.
func NewCommand(s cmdutil.IOStreams) *cobra.Command { return newCommand(s, host.New) }

func newCommand(s cmdutil.IOStreams, newHost func(string) *host.Host) *cobra.Command {
	o := &options{yurthubImage: version.DefaultYurthubImage, output: cmdutil.OutputText, hostRoot: "/"}
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List and save the images a node needs before it can pull, for air-gapped nodes",
		Long: `The images a node runs before it can reach a registry: yurthub and the pause
image of its container runtime. On a machine that can pull them, 'yurtadm
images save <file>' writes them to one archive; on the air-gapped node,
'yurtadm join --image-archive <file>' loads it before yurthub starts.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.PersistentFlags().StringVar(&o.yurthubImage, "yurthub-image", o.yurthubImage, "yurthub image, as given to yurtadm join")
	cmd.PersistentFlags().StringVar(&o.criSocket, "cri-socket", o.criSocket, "container runtime socket (default: detect containerd, CRI-O or cri-dockerd)")
	cmd.PersistentFlags().StringVar(&o.hostRoot, "host-root", o.hostRoot, "directory that stands for / (for tests)")
	_ = cmd.PersistentFlags().MarkHidden("host-root")

	list := &cobra.Command{
		Use:   "list",
		Short: "Print the images yurtadm join needs on this node",
		Example: `  yurtadm images list
  yurtadm images list --yurthub-image registry.local/openyurt/yurthub:v1.7.0 -o json`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			h := newHost(o.hostRoot)
			var imgs *cri.Images
			if ep, err := o.endpoint(h); err == nil {
				imgs = &cri.Images{Exec: h.Exec, Endpoint: ep}
			}
			list := o.images(imgs)
			if o.output == cmdutil.OutputJSON {
				return s.PrintJSON(map[string][]string{"images": list})
			}
			fmt.Fprintln(s.Out, strings.Join(list, "\n"))
			return nil
		},
	}
	list.Flags().StringVarP(&o.output, "output", "o", o.output, "output format: text or json")

	save := &cobra.Command{
		Use:   "save <file>",
		Short: "Write the images yurtadm join needs to one archive (pulling missing ones)",
		Long: `Save pulls the images 'yurtadm images list' prints through this machine's
container runtime where they are missing, and writes them to <file> with
containerd's 'ctr images export'. Copy the file to the air-gapped node and
run 'yurtadm join ... --image-archive <file>'. <file> must not exist, and
its directory must be writable: both are checked before anything is pulled.`,
		Example: `  yurtadm images save /tmp/yurtadm-images.tar`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return cmdutil.Usagef("usage: yurtadm images save <file>", "save takes one file name, %d given", len(args))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			file, err := filepath.Abs(args[0])
			if err != nil {
				return cmdutil.Usagef("pass a file path", "%v", err)
			}
			if _, err := os.Lstat(file); err == nil {
				return cmdutil.Usagef("choose a new file name, or remove the old archive first", "%s exists", file)
			}
			if st, err := os.Stat(filepath.Dir(file)); err != nil || !st.IsDir() {
				return cmdutil.Usagef("create the directory first", "%s is not a directory", filepath.Dir(file))
			}
			// The archive must be writable before anything is pulled: made
			// here (new, 0600) and left for ctr to write again.
			f, err := os.OpenFile(file, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return cmdutil.Usagef("choose a file in a directory you can write to", "cannot write %s: %v", file, err)
			}
			_ = f.Close()
			_ = os.Remove(file)
			h := newHost(o.hostRoot)
			ep, err := o.endpoint(h)
			if err != nil {
				return cmdutil.WithHint(err, cmdutil.ExitError, "run save where a container runtime runs, or pass --cri-socket")
			}
			imgs := cri.Images{Exec: h.Exec, Endpoint: ep}
			list := o.images(&imgs)
			for _, img := range list {
				ok, err := imgs.Present(img)
				if err != nil {
					return err
				}
				if !ok {
					fmt.Fprintf(s.ErrOut, "Pulling %s\n", img)
					if err := imgs.Pull(img); err != nil {
						return cmdutil.WithHint(err, cmdutil.ExitError, "run save on a machine that can pull from the registry")
					}
				}
			}
			if err := imgs.Export(file, list); err != nil {
				_ = os.Remove(file) // a partial archive of ours
				if errors.Is(err, cri.ErrNoImport) {
					return cmdutil.WithHint(err, cmdutil.ExitError, "run save where containerd runs; with CRI-O use 'podman save -o <file> "+strings.Join(list, " ")+"'")
				}
				return err
			}
			fmt.Fprintf(s.Out, "Wrote %s with %s\n", file, strings.Join(list, ", "))
			return nil
		},
	}
	cmd.AddCommand(list, save)
	return cmd
}

func (o *options) validate() error {
	if err := yurthub.ValidateImage(o.yurthubImage); err != nil {
		return cmdutil.Usagef("pass an image reference like "+version.DefaultYurthubImage, "invalid --yurthub-image: %v", err)
	}
	if o.criSocket != "" {
		if err := cri.Validate(o.criSocket); err != nil {
			return cmdutil.Usagef("pass e.g. --cri-socket unix:///run/containerd/containerd.sock", "%v", err)
		}
	}
	if err := cmdutil.ValidateHostRoot("host-root", o.hostRoot); err != nil {
		return err
	}
	return cmdutil.ValidateOutput(o.output)
}

func (o *options) endpoint(h *host.Host) (string, error) {
	if o.criSocket != "" {
		return cri.Endpoint(o.criSocket), nil
	}
	return cri.Detect(h.FS)
}

// images are yurthub's image and the pause image of the runtime imgs
// reads (the default for this Kubernetes version without one), as join
// checks them.
func (o *options) images(imgs *cri.Images) []string {
	pause := cri.DefaultSandboxImage
	if imgs != nil {
		pause = imgs.SandboxImage()
	}
	return []string{cri.FullName(o.yurthubImage), cri.FullName(pause)}
}
