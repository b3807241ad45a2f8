package cluster

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// WebPodSpec runs the harness's web workload (it serves its pod name on
// :8080; with args, it runs "web ARGS..." once instead), pinned to node
// when node is not empty.
func WebPodSpec(node string, args ...string) corev1.PodSpec {
	spec := corev1.PodSpec{
		Containers: []corev1.Container{{
			Name: "web", Image: WebImage, ImagePullPolicy: corev1.PullNever,
			Command: append([]string{"/usr/local/bin/web"}, args...),
			Env: []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
		}},
		TerminationGracePeriodSeconds: ptr.To[int64](2),
	}
	if len(args) == 0 {
		spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8080}}
		spec.Containers[0].ReadinessProbe = &corev1.Probe{PeriodSeconds: 2,
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(8080)}}}
	}
	if node != "" {
		spec.NodeSelector = map[string]string{"kubernetes.io/hostname": node}
	}
	return spec
}

// DeployWeb creates (or keeps) a one-replica Deployment name of the web
// workload on node, with a Service of the same name, in default, and
// waits until its pod is Ready.
func (c *Cluster) DeployWeb(ctx context.Context, name, node string) error {
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: WebPodSpec(node)},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 8080, TargetPort: intstr.FromInt32(8080)}}},
	}
	if _, err := c.Client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if _, err := c.Client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if err := c.WaitPods(ctx, "default", "app="+name, 2*time.Minute); err != nil {
		return fmt.Errorf("deployment %s on %s: %w", name, node, err)
	}
	return nil
}

// DeleteWeb removes what DeployWeb made, pods at once.
func (c *Cluster) DeleteWeb(ctx context.Context, name string) {
	_ = c.Client.AppsV1().Deployments("default").Delete(ctx, name, metav1.DeleteOptions{})
	_ = c.Client.CoreV1().Services("default").Delete(ctx, name, metav1.DeleteOptions{})
	_ = c.Client.CoreV1().Pods("default").DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)},
		metav1.ListOptions{LabelSelector: "app=" + name})
}
