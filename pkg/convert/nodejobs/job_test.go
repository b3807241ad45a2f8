package nodejobs

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/yurtadm/yurtadm/pkg/convert/nodestep"
)

func TestJob(t *testing.T) {
	s := Spec{Action: nodestep.ActionConvert, Namespace: "kube-system", Image: "yurtadm:test", Timeout: 5 * time.Minute, YurthubImage: "openyurt/yurthub:v1.7.0"}
	long := strings.Repeat("a", 70) + ".example.com"
	for _, node := range []string{"edge-1", long} {
		j := s.Job(node, "edge")
		if n := len(j.GenerateName) + 5; n > jobNameMax {
			t.Errorf("%s: job name up to %d characters", node, n)
		}
		ps := j.Spec.Template.Spec
		c := ps.Containers[0]
		if ps.NodeName != node || !ps.HostPID || !ps.HostNetwork || !*c.SecurityContext.Privileged || ps.Tolerations[0].Operator != corev1.TolerationOpExists ||
			ps.Volumes[0].HostPath.Path != "/" || c.VolumeMounts[0].MountPath != hostMount || *j.Spec.BackoffLimit != 0 || j.Annotations[AnnotationNode] != node ||
			c.Image != s.Image || *j.Spec.ActiveDeadlineSeconds != int64(Deadline(s.Timeout)/time.Second) || j.Spec.ManagedBy != nil {
			t.Errorf("%s: job spec %+v", node, j.Spec)
		}
		args := strings.Join(c.Args, " ")
		for _, want := range []string{"convert node", "--host-root=/host", "--node-name=" + node, "--yurthub-image=" + s.YurthubImage, "--nodepool-name=edge", "--timeout=5m0s"} {
			if !strings.Contains(args, want) {
				t.Errorf("args %q lack %q", args, want)
			}
		}
	}
	s.ManagedBy = "sim"
	if j := s.Job("edge-1", "edge"); j.Spec.ManagedBy == nil || *j.Spec.ManagedBy != "sim" {
		t.Errorf("managedBy not set: %v", j.Spec.ManagedBy)
	}
}

func TestYurthubExtraArgsReachTheJob(t *testing.T) {
	s := Spec{Action: nodestep.ActionConvert, YurthubExtraArgs: []string{"--v=4", "--extra=x"}}
	args := strings.Join(s.Job("edge-1", "edge").Spec.Template.Spec.Containers[0].Args, " ")
	if !strings.Contains(args, "--yurthub-extra-arg=--v=4 --yurthub-extra-arg=--extra=x") {
		t.Errorf("args %q lack the extra yurthub flags in order", args)
	}
	s.Action = nodestep.ActionRevert
	if args := strings.Join(s.Job("edge-1", "").Spec.Template.Spec.Containers[0].Args, " "); strings.Contains(args, "extra") || strings.Contains(args, "yurthub-image") {
		t.Errorf("revert args %q carry convert's yurthub flags", args)
	}
}
