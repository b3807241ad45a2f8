package convert

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/convert/controlplane"
	"github.com/yurtadm/yurtadm/pkg/convert/nodestep"
	"github.com/yurtadm/yurtadm/pkg/yurthub"
)

// Roles of a node.
const (
	RoleEdge  = "edge"
	RoleCloud = "cloud"
)

// Node steps a plan can give a node.
const (
	StepConvert = "convert"
	StepRevert  = "revert"
	StepSkip    = "skip"
	StepNone    = "none"
)

const (
	labelControlPlane = "node-role.kubernetes.io/control-plane"
	labelMaster       = "node-role.kubernetes.io/master"
	// autonomyForever is node.openyurt.io/autonomy-duration's "never evict".
	autonomyForever = "0"
	yurthubAppLabel = "k8s-app=yurt-hub"
)

// NodePlan is what convert or revert will do to one node.
type NodePlan struct {
	Name       string `json:"name"`
	Role       string `json:"role"`
	Pool       string `json:"pool,omitempty"`
	Autonomous bool   `json:"autonomous"`
	Ready      bool   `json:"ready"`
	// Labels and Annotations to set (value) or remove (empty value under
	// revert); only what differs from the node.
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Step is the node step: convert, revert, skip (already done) or none.
	Step   string `json:"step"`
	Reason string `json:"reason,omitempty"`
}

// Plan is the whole of a convert or revert, printed by --dry-run.
type Plan struct {
	Action            string     `json:"action"`
	KubernetesVersion string     `json:"kubernetesVersion,omitempty"`
	Nodes             []NodePlan `json:"nodes"`
	// Objects are the cluster objects created (convert) or deleted (revert).
	Objects []string `json:"objects"`
	// NodeFiles are the files the node step changes on each node.
	NodeFiles []string `json:"nodeFiles"`
	Warnings  []string `json:"warnings,omitempty"`
}

// converted returns the nodes where a yurthub static pod runs (its mirror
// pod is Running): the node step has nothing to do there.
func hubNodes(pods []corev1.Pod) map[string]bool {
	m := map[string]bool{}
	for _, p := range pods {
		if p.Spec.NodeName != "" && p.Status.Phase == corev1.PodRunning {
			m[p.Spec.NodeName] = true
		}
	}
	return m
}

func nodeReady(n *corev1.Node) bool {
	ok, _ := yurthub.NodeReady(n, time.Time{})
	return ok
}

func isControlPlane(n *corev1.Node) bool {
	_, cp := n.Labels[labelControlPlane]
	_, m := n.Labels[labelMaster]
	return cp || m
}

// PlanConvert decides each node's role, pool, autonomy, labels and step.
// Control-plane nodes and --cloud-nodes are cloud nodes; every other node
// is an edge node and gets the node step unless yurthub already runs there.
func PlanConvert(nodes []corev1.Node, hubPods []corev1.Pod, o *Options) (*Plan, error) {
	byName := map[string]*corev1.Node{}
	for i := range nodes {
		byName[nodes[i].Name] = &nodes[i]
	}
	cloud := map[string]bool{}
	for _, n := range o.CloudNodes {
		if byName[n] == nil {
			return nil, cmdutil.Usagef("pass node names as 'kubectl get nodes' lists them", "--%s names %q, which is not a node of this cluster", flagCloudNodes, n)
		}
		cloud[n] = true
	}
	auto := map[string]bool{}
	for _, n := range o.AutonomousNodes {
		nd := byName[n]
		if nd == nil {
			return nil, cmdutil.Usagef("pass node names as 'kubectl get nodes' lists them", "--%s names %q, which is not a node of this cluster", flagAutonomousNodes, n)
		}
		if cloud[n] || isControlPlane(nd) {
			return nil, cmdutil.Usagef("only edge nodes can be autonomous: remove it from --"+flagAutonomousNodes+" or from --"+flagCloudNodes,
				"--%s names %q, which is a cloud node", flagAutonomousNodes, n)
		}
		auto[n] = true
	}
	hubs := hubNodes(hubPods)
	p := &Plan{Action: "convert", NodeFiles: nodeFiles()}
	for i := range nodes {
		n := &nodes[i]
		np := NodePlan{Name: n.Name, Role: RoleEdge, Pool: o.NodePoolName, Ready: nodeReady(n), Step: StepConvert}
		if cloud[n.Name] || isControlPlane(n) {
			np.Role, np.Pool, np.Step, np.Reason = RoleCloud, constants.DefaultCloudNodePool, StepNone, "cloud node: kubelet keeps talking to kube-apiserver directly"
		}
		if have := n.Labels[constants.LabelNodePool]; have != "" && have != np.Pool {
			p.Warnings = append(p.Warnings, fmt.Sprintf("node %s stays in NodePool %q (the label is immutable once set), not %q", n.Name, have, np.Pool))
			np.Pool = have
		}
		np.Autonomous = np.Role == RoleEdge && (auto[n.Name] || !o.autonomousGiven)
		want := map[string]string{
			constants.LabelEdgeWorker: fmt.Sprint(np.Role == RoleEdge),
			constants.LabelNodePool:   np.Pool,
		}
		np.Labels = diffMap(n.Labels, want)
		if np.Autonomous {
			np.Annotations = diffMap(n.Annotations, map[string]string{constants.AnnotationAutonomyDur: autonomyForever})
		}
		if np.Step == StepConvert && hubs[n.Name] {
			np.Step, np.Reason = StepSkip, "yurthub already runs on this node"
		}
		p.Nodes = append(p.Nodes, np)
	}
	sort.Slice(p.Nodes, func(i, j int) bool { return p.Nodes[i].Name < p.Nodes[j].Name })
	if o.YurthubUpgradeStrategy == controlplane.UpgradeAdvancedRollingUpdate {
		if err := oneManifestFits(p, o.NodePoolName); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// oneManifestFits refuses AdvancedRollingUpdate when a node is in another
// NodePool than the one its YurtStaticSet names: yurt-manager's upgrade
// worker copies the YurtStaticSet's manifest to every node as it is, so
// such a node's yurthub would move to the wrong pool.
func oneManifestFits(p *Plan, edgePool string) error {
	var off []string
	for _, n := range p.Nodes {
		want := edgePool
		if n.Role == RoleCloud {
			want = constants.DefaultCloudNodePool
		}
		if n.Pool != want {
			off = append(off, fmt.Sprintf("%s (in %q, the manifest says %q)", n.Name, n.Pool, want))
		}
	}
	if len(off) == 0 {
		return nil
	}
	return cmdutil.Usagef("keep --"+flagUpgradeStrategy+" "+controlplane.UpgradeOTA+": 'yurtadm upgrade yurthub' renders each node's manifest with its own pool",
		"--%s %s copies one yurthub manifest to every node, but %s", flagUpgradeStrategy, controlplane.UpgradeAdvancedRollingUpdate, strings.Join(off, ", "))
}

// openYurtNodeKeys are the labels and annotations revert removes.
var (
	openYurtLabels      = []string{constants.LabelEdgeWorker, constants.LabelNodePool}
	openYurtAnnotations = []string{constants.AnnotationAutonomy, constants.AnnotationAutonomyOld, constants.AnnotationAutonomyDur}
)

// PlanRevert gives the revert step to every node that is labelled an edge
// node or runs yurthub, and removes OpenYurt's labels and annotations from
// every node that has them.
func PlanRevert(nodes []corev1.Node, hubPods []corev1.Pod) *Plan {
	hubs := hubNodes(hubPods)
	for _, p := range hubPods {
		if p.Spec.NodeName != "" {
			hubs[p.Spec.NodeName] = true // also a yurthub that is not Running
		}
	}
	p := &Plan{Action: "revert", NodeFiles: nodeFiles()}
	for i := range nodes {
		n := &nodes[i]
		np := NodePlan{Name: n.Name, Role: RoleCloud, Ready: nodeReady(n), Step: StepNone, Reason: "no yurthub and not an edge node"}
		if n.Labels[constants.LabelEdgeWorker] == "true" || hubs[n.Name] {
			np.Role, np.Step, np.Reason = RoleEdge, StepRevert, ""
		}
		np.Pool = n.Labels[constants.LabelNodePool]
		np.Labels = removals(n.Labels, openYurtLabels)
		np.Annotations = removals(n.Annotations, openYurtAnnotations)
		p.Nodes = append(p.Nodes, np)
	}
	sort.Slice(p.Nodes, func(i, j int) bool { return p.Nodes[i].Name < p.Nodes[j].Name })
	return p
}

func nodeFiles() []string {
	out := []string{"back up to " + nodestep.BackupDir + " (with sha256): " + strings.Join(nodestep.ChangedFiles, ", ")}
	out = append(out,
		"write "+constants.YurthubManifest+" (yurthub static pod, kubeletcertificate bootstrap)",
		"write "+constants.OpenYurtKubeletConfig+" (server "+constants.YurthubProxyURL+", 0600)",
		"edit "+constants.KubeletFlagsEnvFile+" (append --kubeconfig="+constants.OpenYurtKubeletConfig+")",
		"restart kubelet; yurthub writes "+constants.YurthubDir+" and "+constants.YurthubCacheDir)
	return out
}

func diffMap(have, want map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range want {
		if cur, ok := have[k]; !ok || cur != v {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func removals(have map[string]string, keys []string) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		if _, ok := have[k]; ok {
			out[k] = ""
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// notReady lists the nodes of p that are not Ready.
func (p *Plan) notReady() []string {
	var out []string
	for _, n := range p.Nodes {
		if !n.Ready {
			out = append(out, n.Name)
		}
	}
	return out
}

// nodesWithStep lists the nodes whose step is step.
func (p *Plan) nodesWithStep(step string) []string {
	var out []string
	for _, n := range p.Nodes {
		if n.Step == step {
			out = append(out, n.Name)
		}
	}
	return out
}
