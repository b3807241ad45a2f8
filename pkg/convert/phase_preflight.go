package convert

import (
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/version"
	"sigs.k8s.io/yaml"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/convert/lock"
	yversion "github.com/yurtadm/yurtadm/pkg/version"
)

var listAll = metav1.ListOptions{}

func listOpts(selector string) metav1.ListOptions { return metav1.ListOptions{LabelSelector: selector} }

const kubeadmConfigMap = "kubeadm-config"

// checkKubeadm reads kubeadm-config and checks the cluster's version: at
// least the oldest minor yurtadm supports; a newer one is a warning, not a
// refusal (the old tool's allow-list refused every new release).
func checkKubeadm(d phaseData) error {
	c, err := d.Clients()
	if err != nil {
		return err
	}
	cm, err := c.Kube.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(d.Context(), kubeadmConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &cmdutil.Error{Code: cmdutil.ExitPreflight, Err: fmt.Errorf("kube-system/%s not found: this is not a kubeadm cluster", kubeadmConfigMap),
			Hint: "convert works on clusters made with kubeadm; for others, install OpenYurt with its Helm charts and join nodes with 'yurtadm join'"}
	}
	if err != nil {
		return fmt.Errorf("read kube-system/%s: %w", kubeadmConfigMap, err)
	}
	var cc struct {
		KubernetesVersion    string `json:"kubernetesVersion"`
		ControlPlaneEndpoint string `json:"controlPlaneEndpoint"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["ClusterConfiguration"]), &cc); err != nil || cc.KubernetesVersion == "" {
		return &cmdutil.Error{Code: cmdutil.ExitPreflight, Err: fmt.Errorf("kube-system/%s has no readable ClusterConfiguration.kubernetesVersion (%v)", kubeadmConfigMap, err),
			Hint: "run 'kubeadm init phase upload-config kubeadm' on a control-plane node"}
	}
	v, err := version.ParseGeneric(cc.KubernetesVersion)
	if err != nil {
		return &cmdutil.Error{Code: cmdutil.ExitPreflight, Err: fmt.Errorf("kubernetesVersion %q in kubeadm-config: %w", cc.KubernetesVersion, err)}
	}
	d.SetKubernetesVersion(cc.KubernetesVersion)
	built := version.MustParseGeneric(yversion.KubernetesVersion)
	switch {
	case v.Major() != 1 || int(v.Minor()) < yversion.MinKubernetesMinor:
		return &cmdutil.Error{Code: cmdutil.ExitPreflight, Err: fmt.Errorf("Kubernetes %s is older than v1.%d, the oldest this yurtctl supports", cc.KubernetesVersion, yversion.MinKubernetesMinor),
			Hint: "upgrade the cluster with kubeadm first, or use the yurtctl release made for it"}
	case v.Minor() > built.Minor():
		d.Report(PhasePreflight, "warning", "Kubernetes %s is newer than %s, which this yurtctl was tested with; going ahead", cc.KubernetesVersion, yversion.KubernetesVersion)
	default:
		d.Report(PhasePreflight, "done", "kubeadm cluster, Kubernetes %s", cc.KubernetesVersion)
	}
	return nil
}

func runConvertPreflight(d phaseData) error {
	if err := checkKubeadm(d); err != nil {
		return err
	}
	p, err := d.Plan()
	if err != nil {
		return err
	}
	d.PrintPlan(p)
	if bad := p.notReady(); len(bad) > 0 {
		return &cmdutil.Error{Code: cmdutil.ExitPreflight, Err: fmt.Errorf("node(s) not Ready: %s", strings.Join(bad, ", ")),
			Hint: "convert restarts kubelet on every edge node and needs each to be Ready before and after; fix them ('kubectl describe node') and run convert again"}
	}
	d.Report(PhasePreflight, "done", "all %d node(s) Ready", len(p.Nodes))
	if d.Options().DryRun {
		peekLock(d)
		return nil
	}
	_, err = d.Prepare()
	return err
}

// peekLock says, without taking it, whether the lock is free.
func peekLock(d phaseData) {
	c, err := d.Clients()
	if err != nil {
		return
	}
	holder, live, err := lock.Peek(d.Context(), c.Kube, d.Options().Namespace, d.Env().Now())
	switch {
	case err == nil && holder == "":
		d.Report(PhasePreflight, "would", "take the lock Lease %s/%s (free)", d.Options().Namespace, lock.Name)
	case err == nil && live:
		d.Report(PhasePreflight, "warning", "the lock %s/%s is held by %s: a real run would be refused now", d.Options().Namespace, lock.Name, holder)
	default:
		d.Report(PhasePreflight, "would", "take over the expired lock Lease %s/%s", d.Options().Namespace, lock.Name)
	}
}
