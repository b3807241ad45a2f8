package join

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/cri"
	"github.com/yurtadm/yurtadm/pkg/preflight"
)

// runImages makes sure the images the node will run before it can reach a
// registry through the cluster are in the container runtime: it loads the
// --image-archive files, then checks yurthub's image (from the manifest the
// node will run) and the runtime's pause image, pulling a missing one as
// kubelet would (kubeadm's ImagePull check). An image that is neither
// there nor pullable stops the join before anything is written.
func runImages(d Data) error {
	o := d.Options()
	ep, err := d.CRIEndpoint()
	if err != nil {
		return cmdutil.WithHint(err, cmdutil.ExitError, "pass --cri-socket")
	}
	imgs := cri.Images{Exec: d.Host().Exec, Endpoint: ep}
	for _, a := range o.ImageArchives {
		if d.DryRun() {
			fmt.Fprintf(d.IO().Out, "[dryrun] would load %s into the container runtime (%s)\n", a, ep)
			continue
		}
		if err := imgs.Import(a); err != nil {
			if errors.Is(err, cri.ErrNoImport) {
				return cmdutil.WithHint(fmt.Errorf("--%s %s: %w (%s)", flagImageArchive, a, err, ep), cmdutil.ExitUsage, cri.ImportHint)
			}
			return err
		}
		d.IO().Logf(PhaseImages, "Loaded %s into the container runtime", a)
	}
	manifest, err := d.HubManifest()
	if err != nil {
		return err
	}
	hub, err := hubImage(manifest)
	if err != nil {
		return err
	}
	list := []string{hub, imgs.SandboxImage()}
	err = runLateChecks(d, PhaseImages, preflight.ImagePullCheck(imgs, list, !d.DryRun()))
	if err == nil {
		d.IO().Logf(PhaseImages, "%s and %s are in the container runtime", list[0], list[1])
	}
	return err
}

// hubImage is the yurt-hub container's image in a yurthub manifest.
func hubImage(manifest []byte) (string, error) {
	var pod corev1.Pod
	if err := yaml.Unmarshal(manifest, &pod); err != nil {
		return "", fmt.Errorf("the yurthub manifest: %w", err)
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == "yurt-hub" {
			return c.Image, nil
		}
	}
	return "", errors.New("the yurthub manifest has no yurt-hub container")
}
