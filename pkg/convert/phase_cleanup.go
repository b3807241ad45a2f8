package convert

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/yurtadm/yurtadm/pkg/convert/nodejobs"
)

// runCleanup deletes every node Job of convert and revert that is left.
func runCleanup(d phaseData) error {
	if d.Options().DryRun {
		d.Report(PhaseCleanup, "would", "delete the node Jobs (label %s) and release the lock", nodejobs.LabelJob)
		return nil
	}
	if lost := d.LockLost(); lost != nil {
		d.Report(PhaseCleanup, "warning", "node Jobs left to the run that holds the lock now (%v)", lost)
		return nil
	}
	c, err := d.Clients()
	if err != nil {
		return err
	}
	bg := metav1.DeletePropagationBackground
	if err := c.Kube.BatchV1().Jobs(d.Options().Namespace).DeleteCollection(d.Context(), metav1.DeleteOptions{PropagationPolicy: &bg}, listOpts(nodejobs.LabelJob)); err != nil {
		d.Report(PhaseCleanup, "failed", "delete the node Jobs: %v", err)
		return nil
	}
	d.Report(PhaseCleanup, "done", "no node Job left")
	return nil
}
