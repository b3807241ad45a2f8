// Package nodejobs runs the node step of yurtctl convert and revert on
// each node as a privileged Job: the Job's spec, a runner that keeps at
// most --concurrency of them going and watches them to the end, and each
// node's result.
package nodejobs

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/convert/nodestep"
)

// Labels and annotations of the node Jobs.
const (
	// LabelJob marks convert's and revert's Jobs and their pods; its value
	// is the action (convert or revert).
	LabelJob = "yurtctl.openyurt.io/node-step"
	// AnnotationNode names the node a Job works on.
	AnnotationNode = "yurtctl.openyurt.io/node"
	hostMount      = "/host"
	jobNameMax     = 63
)

// Deadline is how long a Job may run: both waits of the node step
// (timeout each), and time for its rollback.
func Deadline(timeout time.Duration) time.Duration { return 2*timeout + 2*time.Minute }

// jobPrefix is the generateName of a node's Job: "yurtctl-<action>-<node>-",
// the node part shortened with a hash when too long.
func jobPrefix(action, node string) string {
	p := "yurtctl-" + action + "-"
	room := jobNameMax - len(p) - 1 - 5 // "-" and generateName's 5 characters
	if len(node) > room {
		h := sha256.Sum256([]byte(node))
		node = strings.TrimRight(node[:room-9], ".-") + "-" + hex.EncodeToString(h[:])[:8]
	}
	return p + strings.ReplaceAll(node, ".", "-") + "-"
}

// Spec is what every node Job of one run shares.
type Spec struct {
	Action    string // nodestep.ActionConvert or nodestep.ActionRevert
	Namespace string
	// Image runs the node step (a yurtadm image).
	Image string
	// Timeout is the node step's --timeout.
	Timeout time.Duration
	// YurthubImage and YurthubExtraArgs are the convert step's.
	YurthubImage     string
	YurthubExtraArgs []string
	// ManagedBy is empty except under a simulator that plays the Job
	// controller (integration tests).
	ManagedBy string
}

// Job is the privileged Job that runs the node step on node, which goes
// into pool (convert).
func (s Spec) Job(node, pool string) *batchv1.Job {
	args := []string{s.Action, nodestep.CommandName,
		"--" + nodestep.FlagHostRoot + "=" + hostMount,
		"--" + nodestep.FlagNodeName + "=" + node,
		"--" + nodestep.FlagNamespace + "=" + s.Namespace,
		"--" + nodestep.FlagTimeout + "=" + s.Timeout.String(),
	}
	if s.Action == nodestep.ActionConvert {
		args = append(args, "--"+nodestep.FlagYurthubImage+"="+s.YurthubImage, "--"+nodestep.FlagNodePool+"="+pool)
		for _, a := range s.YurthubExtraArgs {
			args = append(args, "--"+nodestep.FlagYurthubExtraArg+"="+a)
		}
	}
	labels := map[string]string{LabelJob: s.Action, constants.LabelManagedBy: constants.ManagedBy}
	deadline := int64(Deadline(s.Timeout) / time.Second)
	hostPathDir := corev1.HostPathDirectory
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: jobPrefix(s.Action, node),
			Namespace:    s.Namespace,
			Labels:       labels,
			Annotations:  map[string]string{AnnotationNode: node},
		},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To[int32](0),
			ActiveDeadlineSeconds:   &deadline,
			TTLSecondsAfterFinished: ptr.To[int32](3600), // if convert itself dies
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{AnnotationNode: node}},
				Spec: corev1.PodSpec{
					NodeName:                      node,
					HostPID:                       true,
					HostNetwork:                   true,
					RestartPolicy:                 corev1.RestartPolicyNever,
					PriorityClassName:             "system-node-critical",
					AutomountServiceAccountToken:  ptr.To(false),
					TerminationGracePeriodSeconds: ptr.To[int64](120), // the node step rolls back on SIGTERM
					Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					Volumes: []corev1.Volume{{Name: "host-root", VolumeSource: corev1.VolumeSource{
						HostPath: &corev1.HostPathVolumeSource{Path: "/", Type: &hostPathDir}}}},
					Containers: []corev1.Container{{
						Name:                     "node-step",
						Image:                    s.Image,
						ImagePullPolicy:          corev1.PullIfNotPresent,
						Command:                  []string{"yurtadm"},
						Args:                     args,
						Env:                      []corev1.EnvVar{{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}},
						SecurityContext:          &corev1.SecurityContext{Privileged: ptr.To(true)},
						TerminationMessagePath:   nodestep.TerminationLog,
						TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
						VolumeMounts:             []corev1.VolumeMount{{Name: "host-root", MountPath: hostMount}},
					}},
				},
			},
		},
	}
	if s.ManagedBy != "" {
		job.Spec.ManagedBy = &s.ManagedBy
	}
	return job
}
