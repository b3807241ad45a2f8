package doctor

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/yurtadm/yurtadm/pkg/constants"
)

// The checks of what OpenYurt's control plane does for this node:
// yurt-manager's nodepool controller lists the node in its pool's status,
// and its pod-binding controller rewrites the NoExecute tolerations of the
// node's pods so that an autonomous node's pods are not evicted while the
// cloud cannot hear from it.
const (
	CheckNodePool   = "nodepool"
	CheckPodBinding = "pod-binding"

	// annotationPodBinding is the oldest way to ask for autonomy, still
	// honoured by yurt-manager v1.7.0's pod-binding controller.
	annotationPodBinding = "apps.openyurt.io/binding"
	// podBindingGrace is how young a pod may be and still wait for the
	// pod-binding controller (it reconciles on the pod's creation).
	podBindingGrace = 30 * time.Second
)

// thisNode reads this node's Node object from the cloud.
func (d *doctor) thisNode() (*corev1.Node, string, error) {
	cl, _, err := d.cloud()
	if err != nil {
		return nil, "the API server cannot be reached (see the " + CheckCloud + " check)", err
	}
	ctx, cancel := d.timeout()
	defer cancel()
	n, err := cl.CoreV1().Nodes().Get(ctx, d.nodeName(), metav1.GetOptions{})
	if err != nil {
		why := "cannot read Node " + d.nodeName()
		if apierrors.IsNotFound(err) {
			why = "the cluster has no Node " + d.nodeName() + " (pass --" + flagNodeName + " if this node has another name)"
		}
		return nil, why, err
	}
	return n, "", nil
}

// nodePool is the part of an apps.openyurt.io NodePool the check reads.
type nodePool struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Status struct {
		Nodes []string `json:"nodes"`
	} `json:"status"`
}

// errNoNodePoolAPI means the cluster serves no NodePool API.
var errNoNodePoolAPI = errors.New("the cluster serves no apps.openyurt.io NodePool API")

// nodePoolNamed lists the NodePool name (a node may list NodePools, not
// get one: yurthub's chart grants list and watch), in OpenYurt v1.7.0's
// storage version v1beta2 and else v1beta1 (clusters converted by older
// tools); nil when there is none.
func (d *doctor) nodePoolNamed(name string) (*nodePool, error) {
	cl, _, err := d.cloud()
	if err != nil {
		return nil, err
	}
	for _, v := range []string{"v1beta2", "v1beta1"} {
		ctx, cancel := d.timeout()
		b, err := cl.RawGet(ctx, "/apis/apps.openyurt.io/"+v+"/nodepools", map[string]string{"fieldSelector": "metadata.name=" + name})
		cancel()
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list NodePool %s (apps.openyurt.io/%s): %w", name, v, err)
		}
		var list struct {
			Items []nodePool `json:"items"`
		}
		if err := json.Unmarshal(b, &list); err != nil {
			return nil, fmt.Errorf("read NodePool %s (apps.openyurt.io/%s): %w", name, v, err)
		}
		for i := range list.Items {
			if list.Items[i].Metadata.Name == name {
				return &list.Items[i], nil
			}
		}
		return nil, nil
	}
	return nil, errNoNodePoolAPI
}

func (d *doctor) checkNodePool() Finding {
	const name = CheckNodePool
	n, why, err := d.thisNode()
	if err != nil {
		return skip(name, why, err.Error())
	}
	pool := n.Labels[constants.LabelNodePool]
	if pool == "" {
		return ok(name, "node "+n.Name+" is in no node pool (no "+constants.LabelNodePool+" label)")
	}
	np, err := d.nodePoolNamed(pool)
	if errors.Is(err, errNoNodePoolAPI) {
		return warn(name, fmt.Sprintf("node %s is labelled %s=%s but the cluster has no NodePool API: OpenYurt's control plane is not installed", n.Name, constants.LabelNodePool, pool),
			"install it on the control plane: yurtctl convert (or its phase control-plane)", err.Error())
	}
	if err != nil {
		return skip(name, "cannot list the NodePools", err.Error())
	}
	if np == nil {
		return fail(name, fmt.Sprintf("node %s is labelled %s=%s and there is no NodePool %s: the node belongs to no pool yurt-manager knows", n.Name, constants.LabelNodePool, pool, pool),
			fmt.Sprintf("create the pool on the control plane ('kubectl get nodepools' lists those there are), or move the node to one with 'kubectl label node %s %s=<pool> --overwrite'", n.Name, constants.LabelNodePool))
	}
	if !slices.Contains(np.Status.Nodes, n.Name) {
		return warn(name, fmt.Sprintf("NodePool %s does not list node %s in its status: yurt-manager's nodepool controller has not seen it yet, or does not run", pool, n.Name),
			"check yurt-manager on the control plane: 'kubectl -n kube-system get pods -l app.kubernetes.io/name=yurt-manager' and its log",
			fmt.Sprintf("status.nodes of NodePool %s: %v", pool, np.Status.Nodes))
	}
	return ok(name, fmt.Sprintf("node %s is in NodePool %s (%d %s)", n.Name, pool, len(np.Status.Nodes), plural(len(np.Status.Nodes), "node", "nodes")))
}

// autonomy says whether a Node asks to keep its pods while the cloud cannot
// hear from it, and for how long (nil: for ever), read as yurt-manager
// v1.7.0's pod-binding controller reads it.
func autonomy(n *corev1.Node) (autonomous bool, seconds *int64, why string) {
	a := n.Annotations
	for _, k := range []string{annotationPodBinding, constants.AnnotationAutonomy} {
		if a[k] == "true" {
			return true, nil, k + "=true"
		}
	}
	v, found := a[constants.AnnotationAutonomyDur]
	if !found {
		return false, nil, "no " + constants.AnnotationAutonomyDur + " annotation"
	}
	dur, err := time.ParseDuration(v)
	if err != nil {
		return false, nil, fmt.Sprintf("%s=%q is not a duration, which yurt-manager ignores", constants.AnnotationAutonomyDur, v)
	}
	if dur <= 0 {
		return true, nil, constants.AnnotationAutonomyDur + "=" + v
	}
	s := int64(dur.Seconds())
	return true, &s, constants.AnnotationAutonomyDur + "=" + v
}

func secondsString(s *int64) string {
	if s == nil {
		return "unset (never evicted)"
	}
	return fmt.Sprintf("%ds", *s)
}

func (d *doctor) checkPodBinding() Finding {
	const name = CheckPodBinding
	n, why, err := d.thisNode()
	if err != nil {
		return skip(name, why, err.Error())
	}
	if n.Labels[constants.LabelEdgeWorker] != "true" {
		return skip(name, "node "+n.Name+" is not an edge node: the pod-binding controller leaves its pods alone", constants.LabelEdgeWorker+"="+n.Labels[constants.LabelEdgeWorker])
	}
	auto, want, how := autonomy(n)
	if !auto {
		return ok(name, "node "+n.Name+" is not autonomous ("+how+"): its pods are evicted as in plain Kubernetes when the cloud loses it")
	}
	cl, _, _ := d.cloud()
	ctx, cancel := d.timeout()
	defer cancel()
	pods, err := cl.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + n.Name})
	if err != nil {
		return skip(name, "cannot list the node's pods", err.Error())
	}
	var bad, young []string
	checked := 0
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Spec.NodeName != n.Name || p.DeletionTimestamp != nil || p.Annotations[corev1.MirrorPodAnnotationKey] != "" || ownedByDaemonSet(p) {
			continue // the controller leaves static and DaemonSet pods alone
		}
		for _, tol := range p.Spec.Tolerations {
			if tol.Effect != corev1.TaintEffectNoExecute || (tol.Key != corev1.TaintNodeNotReady && tol.Key != corev1.TaintNodeUnreachable) {
				continue
			}
			checked++
			if equalSeconds(tol.TolerationSeconds, want) {
				continue
			}
			line := fmt.Sprintf("pod %s/%s tolerates %s for %s, want %s", p.Namespace, p.Name, tol.Key, secondsString(tol.TolerationSeconds), secondsString(want))
			if d.dp.now().Sub(p.CreationTimestamp.Time) < podBindingGrace {
				young = append(young, line)
			} else {
				bad = append(bad, line)
			}
		}
	}
	sort.Strings(bad)
	sort.Strings(young)
	if len(bad) > 0 {
		return fail(name, fmt.Sprintf("node %s is autonomous (%s) but %d %s of its pods %s the cloud loses the node: yurt-manager's pod-binding controller has not set them",
			n.Name, how, len(bad), plural(len(bad), "toleration", "tolerations"), plural(len(bad), "is evicted when", "are evicted when")),
			"check that yurt-manager runs on the control plane with its podbinding controller ('kubectl -n kube-system get deploy yurt-manager -o yaml': --controllers must not exclude podbinding); 'yurtctl convert' installs it from OpenYurt's chart",
			append(bad, young...)...)
	}
	if len(young) > 0 {
		return warn(name, fmt.Sprintf("%d %s of pods younger than %s %s not set for autonomy yet", len(young), plural(len(young), "toleration", "tolerations"), podBindingGrace, plural(len(young), "is", "are")),
			"run doctor again in a minute; if it stays, check yurt-manager's podbinding controller", young...)
	}
	return ok(name, fmt.Sprintf("node %s is autonomous (%s): the %d not-ready/unreachable %s of its pods %s %s", n.Name, how, checked,
		plural(checked, "toleration", "tolerations"), plural(checked, "is", "are"), secondsString(want)))
}

func equalSeconds(a, b *int64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func ownedByDaemonSet(p *corev1.Pod) bool {
	for _, o := range p.OwnerReferences {
		if o.Kind == "DaemonSet" {
			return true
		}
	}
	return false
}
