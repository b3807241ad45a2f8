package convert

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/yurtadm/yurtadm/pkg/convert/nodejobs"
)

// runCleanup deletes every node Job of convert and revert that is left.
func runCleanup(d *runData) error {
	if d.opts.DryRun {
		d.add(PhaseCleanup, "would", "delete the node Jobs (label %s) and release the lock", nodejobs.LabelJob)
		return nil
	}
	if lost := d.lockLost(); lost != nil {
		d.add(PhaseCleanup, "warning", "node Jobs left to the run that holds the lock now (%v)", lost)
		return nil
	}
	c, err := d.Clients()
	if err != nil {
		return err
	}
	bg := metav1.DeletePropagationBackground
	if err := c.Kube.BatchV1().Jobs(d.opts.Namespace).DeleteCollection(d.ctx, metav1.DeleteOptions{PropagationPolicy: &bg}, listOpts(nodejobs.LabelJob)); err != nil {
		d.add(PhaseCleanup, "failed", "delete the node Jobs: %v", err)
		return nil
	}
	d.add(PhaseCleanup, "done", "no node Job left")
	return nil
}
