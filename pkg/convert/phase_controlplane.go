package convert

import (
	"fmt"
	"os"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/convert/controlplane"
)

func runConvertControlPlane(d phaseData) error {
	// Everything that can be wrong with the charts or helm is found before
	// the first change.
	src, err := controlplane.OpenSource(d.Options().ChartSource, d.Options().ChartVersion)
	if err != nil {
		return cmdutil.WithHint(err, cmdutil.ExitUsage, "pass --"+flagChartSource+" "+controlplane.DefaultChartRepo+", or a directory or archive holding OpenYurt's yurt-manager and yurthub charts")
	}
	defer src.Close()
	in, err := installer(d, PhaseControlPlane)
	if err != nil {
		return err
	}
	in.Source = src
	if in.PostRenderers, err = postRenderers(d); err != nil {
		return err
	}
	if !d.Options().DryRun {
		v, err := in.Helm.Version(d.Context())
		if err != nil {
			return err
		}
		d.Report(PhaseControlPlane, "done", "helm %s; charts from %s", v, src)
	}
	if _, err := d.Prepare(); err != nil {
		return err
	}
	in.CheckControllerManager(d.Context())
	return in.Install(d.Context())
}

// installer is the control-plane installer of this run; it reports as
// phase.
func installer(d phaseData, phase string) (*controlplane.Installer, error) {
	c, err := d.Clients()
	if err != nil {
		return nil, err
	}
	o := d.Options()
	return &controlplane.Installer{
		Clients: c, Namespace: o.Namespace, DryRun: o.DryRun, Now: d.Env().Now,
		Helm: controlplane.NewHelm(o.Helm, o.Kubeconfig, o.Namespace, d.Env().RunHelm),
		Values: controlplane.Values{YurtManagerImage: o.YurtManagerImage, UpgradeWorkerImage: o.YurthubUpgradeWorkerImage,
			YurthubImage: o.YurthubImage, EdgePool: o.NodePoolName, YurthubExtraArgs: o.YurthubExtraArgs,
			UpgradeStrategy: o.YurthubUpgradeStrategy, BootstrapMode: o.YurthubBootstrapMode},
		Report: func(status, format string, a ...any) { d.Report(phase, status, format, a...) },
	}, nil
}

// postRenderers are this binary as Helm's post-renderer of each chart:
// of the yurthub chart (controlplane.PostRenderYurthub), setting
// --yurthub-extra-arg and the upgrade strategy on both YurtStaticSets,
// which the chart has no value for; of the yurt-manager chart
// (controlplane.PostRenderYurtManager), yurt-manager's readiness probe
// from its start instead of after a minute.
func postRenderers(d phaseData) (map[string][]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this binary for helm's --post-renderer: %w", err)
	}
	hub := []string{exe, PostRenderCommand, "--" + flagUpgradeStrategy + "=" + d.Options().YurthubUpgradeStrategy,
		"--" + flagHubBootstrapMode + "=" + d.Options().YurthubBootstrapMode}
	for _, a := range d.Options().YurthubExtraArgs {
		hub = append(hub, "--"+flagYurthubExtraArg+"="+a)
	}
	return map[string][]string{
		controlplane.ReleaseYurthub:     hub,
		controlplane.ReleaseYurtManager: {exe, PostRenderYurtManagerCommand},
	}, nil
}
