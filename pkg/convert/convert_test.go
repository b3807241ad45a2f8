package convert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/yurtadm/yurtadm/pkg/convert/controlplane"
	"github.com/yurtadm/yurtadm/pkg/convert/controlplane/cptest"
	"github.com/yurtadm/yurtadm/pkg/kube/kubetest"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/convert/lock"
	"github.com/yurtadm/yurtadm/pkg/convert/nodejobs"
	"github.com/yurtadm/yurtadm/pkg/convert/nodestep"
)

func readyNode(name string, labels map[string]string) corev1.Node {
	return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
}

func hubPod(node string, phase corev1.PodPhase) corev1.Pod {
	return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "yurt-hub-" + node, Namespace: "kube-system", Labels: map[string]string{"k8s-app": "yurt-hub"}},
		Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: phase}}
}

func TestPlanConvert(t *testing.T) {
	nodes := []corev1.Node{
		readyNode("master", map[string]string{labelControlPlane: ""}),
		readyNode("edge-1", nil),
		readyNode("edge-2", map[string]string{constants.LabelEdgeWorker: "true", constants.LabelNodePool: "edge"}),
		readyNode("edge-3", map[string]string{constants.LabelNodePool: "hangzhou"}),
		readyNode("gpu", nil),
	}
	o := newOptions()
	o.CloudNodes = []string{"gpu"}
	p, err := PlanConvert(nodes, []corev1.Pod{hubPod("edge-2", corev1.PodRunning), hubPod("edge-1", corev1.PodPending)}, o)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]NodePlan{}
	for _, n := range p.Nodes {
		got[n.Name] = n
	}
	for _, tc := range []struct {
		node, role, pool, step string
		auto                   bool
		labels                 int
	}{
		{"master", RoleCloud, "cloud", StepNone, false, 2},
		{"gpu", RoleCloud, "cloud", StepNone, false, 2},
		{"edge-1", RoleEdge, "edge", StepConvert, true, 2}, // yurthub not Running: converted (again)
		{"edge-2", RoleEdge, "edge", StepSkip, true, 0},
		{"edge-3", RoleEdge, "hangzhou", StepConvert, true, 1},
	} {
		n := got[tc.node]
		if n.Role != tc.role || n.Pool != tc.pool || n.Step != tc.step || n.Autonomous != tc.auto || len(n.Labels) != tc.labels {
			t.Errorf("%s: got %+v", tc.node, n)
		}
	}
	if got["edge-1"].Annotations[constants.AnnotationAutonomyDur] != "0" {
		t.Errorf("edge-1 annotations %v", got["edge-1"].Annotations)
	}
	if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "hangzhou") {
		t.Errorf("warnings %v", p.Warnings)
	}

	// --autonomous-nodes restricts autonomy.
	o.AutonomousNodes, o.autonomousGiven = []string{"edge-3"}, true
	p, _ = PlanConvert(nodes, nil, o)
	for _, n := range p.Nodes {
		if n.Autonomous != (n.Name == "edge-3") {
			t.Errorf("%s autonomous=%v", n.Name, n.Autonomous)
		}
	}
	for _, tc := range []struct {
		name       string
		cloud, aut []string
		want       string
	}{
		{"unknown cloud node", []string{"nope"}, nil, `--cloud-nodes names "nope"`},
		{"unknown autonomous node", nil, []string{"nope"}, `--autonomous-nodes names "nope"`},
		{"autonomous cloud node", []string{"gpu"}, []string{"gpu"}, "cloud node"},
		{"autonomous master", nil, []string{"master"}, "cloud node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOptions()
			o.CloudNodes, o.AutonomousNodes = tc.cloud, tc.aut
			_, err := PlanConvert(nodes, nil, o)
			if err == nil || !strings.Contains(err.Error(), tc.want) || cmdutil.ExitCode(err) != cmdutil.ExitUsage {
				t.Errorf("got %v", err)
			}
		})
	}
}

func TestPlanRevert(t *testing.T) {
	nodes := []corev1.Node{
		readyNode("master", map[string]string{labelControlPlane: "", constants.LabelEdgeWorker: "false", constants.LabelNodePool: "cloud"}),
		readyNode("edge-1", map[string]string{constants.LabelEdgeWorker: "true"}),
		readyNode("plain", nil),
		readyNode("half", nil), // yurthub written, labels never set
	}
	nodes[1].Annotations = map[string]string{constants.AnnotationAutonomyDur: "0", constants.AnnotationAutonomy: "true", "other": "x"}
	p := PlanRevert(nodes, []corev1.Pod{hubPod("half", corev1.PodFailed)})
	want := map[string]string{"master": StepNone, "edge-1": StepRevert, "plain": StepNone, "half": StepRevert}
	for _, n := range p.Nodes {
		if n.Step != want[n.Name] {
			t.Errorf("%s step %s", n.Name, n.Step)
		}
		if n.Name == "edge-1" && (len(n.Annotations) != 2 || len(n.Labels) != 1) {
			t.Errorf("edge-1 removals %v %v", n.Labels, n.Annotations)
		}
		if n.Name == "plain" && (n.Labels != nil || n.Annotations != nil) {
			t.Errorf("plain node would be patched: %v %v", n.Labels, n.Annotations)
		}
	}
}

// cmdHarness runs convert or revert against fake clients.
type cmdHarness struct {
	kc     *fake.Clientset
	c      controlplane.Clients
	out    bytes.Buffer
	errOut bytes.Buffer
	kcfg   string
	helm   *fakeHelm
}

// clusterInfo is kubeadm's kube-public/cluster-info.
func clusterInfo() *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cluster-info", Namespace: "kube-public"},
		Data: map[string]string{"kubeconfig": "apiVersion: v1\nkind: Config\nclusters:\n- name: \"\"\n  cluster:\n    server: https://10.0.0.1:6443\n"}}
}

// fakeHelm plays the helm CLI: it records each command and keeps the
// releases installed.
type fakeHelm struct {
	mu       sync.Mutex
	calls    []string
	releases map[string]int
	fail     string // a command (e.g. "upgrade yurt-manager") that fails
	// onUpgrade sees each upgrade's arguments while its files exist.
	onUpgrade func(args []string)
	// kc plays yurt-manager's yurt-static-set-controller: the yurthub
	// release's YurtStaticSets get their ConfigMaps.
	kc *fake.Clientset
}

func (f *fakeHelm) run(_ context.Context, _ string, args []string) ([]byte, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.releases == nil {
		f.releases = map[string]int{}
	}
	cmd := strings.Join(args, " ")
	f.calls = append(f.calls, cmd)
	if f.fail != "" && strings.HasPrefix(cmd, f.fail) {
		return nil, []byte("Error: " + f.fail + " failed"), fmt.Errorf("exit status 1")
	}
	switch args[0] {
	case "version":
		return []byte("v3.19.5+g1\n"), nil, nil
	case "show":
		return []byte(cptest.ChartCRDs), nil, nil
	case "template":
		return []byte(cptest.RenderedHub), nil, nil
	case "upgrade":
		if f.onUpgrade != nil {
			f.onUpgrade(args)
		}
		f.releases[args[2]]++
		if args[2] == controlplane.ReleaseYurthub && f.kc != nil {
			for _, n := range []string{"yurt-static-set-yurt-hub", "yurt-static-set-yurt-hub-cloud"} {
				_ = f.kc.Tracker().Add(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: "kube-system"}})
			}
		}
	case "uninstall":
		delete(f.releases, args[1])
	case "list":
		var rs []controlplane.Release
		for name, rev := range f.releases {
			if name == "other" && strings.Contains(cmd, "--selector") {
				continue
			}
			rs = append(rs, controlplane.Release{Name: name, Namespace: "kube-system", Revision: fmt.Sprint(rev), Status: "deployed", Chart: name + "-1.7.0"})
		}
		out, _ := json.Marshal(rs)
		return out, nil, nil
	}
	return nil, nil, nil
}

func newCmdHarness(t *testing.T, objs ...runtime.Object) *cmdHarness {
	h := &cmdHarness{helm: &fakeHelm{}}
	h.c = controlplane.Clients{Kube: kubetest.Wrap(fake.NewSimpleClientset()), Dynamic: cptest.NewDynamic()}
	h.kc = kubetest.Clientset(h.c.Kube).(*fake.Clientset)
	h.helm.kc = h.kc
	for _, o := range append([]runtime.Object{clusterInfo()}, objs...) {
		if err := h.kc.Tracker().Add(o); err != nil {
			t.Fatal(err)
		}
	}
	h.kcfg = filepath.Join(t.TempDir(), "admin.conf")
	os.WriteFile(h.kcfg, []byte("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: x\n"), 0o600)
	return h
}

func (h *cmdHarness) run(revert bool, args ...string) error {
	h.out.Reset()
	h.errOut.Reset()
	s := cmdutil.IOStreams{In: strings.NewReader(""), Out: &h.out, ErrOut: &h.errOut}
	env := Env{NewClients: func(*rest.Config) (controlplane.Clients, error) { return h.c, nil }, MessageGrace: time.Millisecond, RunHelm: h.helm.run}
	cmd := NewCommandWithEnv(s, env)
	if revert {
		cmd = NewRevertCommandWithEnv(s, env)
	}
	cmd.SetArgs(append([]string{"--kubeconfig", h.kcfg}, args...))
	cmd.SetOut(&h.out)
	cmd.SetErr(&h.errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	return cmd.Execute()
}

func kubeadmConfig(v string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kubeadm-config", Namespace: "kube-system"},
		Data: map[string]string{"ClusterConfiguration": "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: " + v + "\n"}}
}

func writes(kc *fake.Clientset) []string {
	var out []string
	for _, a := range kc.Actions() {
		switch a.GetVerb() {
		case "get", "list", "watch":
		default:
			out = append(out, a.GetVerb()+" "+a.GetResource().Resource)
		}
	}
	return out
}

func TestConvertDryRunTouchesNothing(t *testing.T) {
	m, e := readyNode("master", map[string]string{labelControlPlane: ""}), readyNode("edge-1", nil)
	h := newCmdHarness(t, kubeadmConfig("v1.34.4"), &m, &e)
	if err := h.run(false, "--dry-run"); err != nil {
		t.Fatalf("%v\n%s", err, h.errOut.String())
	}
	if w := writes(h.kc); len(w) != 0 {
		t.Errorf("dry run wrote: %v", w)
	}
	for _, want := range []string{"edge-1", "convert", "would patch node edge-1", "would create Job yurtctl-convert-edge-1-", constants.KubeletFlagsEnvFile, "Dry run: nothing was changed"} {
		if !strings.Contains(h.out.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, h.out.String())
		}
	}
}

func TestConvertPreflightRefusals(t *testing.T) {
	notReady := readyNode("edge-1", nil)
	notReady.Status.Conditions[0].Status = corev1.ConditionFalse
	ok := readyNode("edge-1", nil)
	for _, tc := range []struct {
		name string
		objs []runtime.Object
		want string
	}{
		{"not kubeadm", []runtime.Object{&ok}, "not a kubeadm cluster"},
		{"too old", []runtime.Object{kubeadmConfig("v1.20.0"), &ok}, "older than"},
		{"node not ready", []runtime.Object{kubeadmConfig("v1.34.4"), &notReady}, "not Ready: edge-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newCmdHarness(t, tc.objs...)
			err := h.run(false, "--yes")
			if err == nil || !strings.Contains(err.Error(), tc.want) || cmdutil.ExitCode(err) != cmdutil.ExitPreflight {
				t.Fatalf("got %v (exit %d)", err, cmdutil.ExitCode(err))
			}
			if w := writes(h.kc); len(w) != 0 {
				t.Errorf("refused run wrote: %v", w)
			}
		})
	}
	// A newer cluster is a warning, not a refusal.
	h := newCmdHarness(t, kubeadmConfig("v1.40.0"), &ok)
	if err := h.run(false, "phase", "preflight", "--dry-run"); err != nil || !strings.Contains(h.errOut.String(), "newer than") {
		t.Errorf("newer cluster: %v\n%s", err, h.errOut.String())
	}
}

func TestDeprecatedFlags(t *testing.T) {
	ok := readyNode("edge-1", nil)
	for _, tc := range []struct {
		name string
		args []string
		want string // error text; empty: accepted
	}{
		{"tunnel server", []string{"--yurt-tunnel-server-image=openyurt/yurt-tunnel-server:v0.6"}, "yurt-tunnel was removed"},
		{"tunnel agent", []string{"--yurt-tunnel-agent-image=x"}, "yurt-tunnel was removed"},
		{"deploy tunnel", []string{"--deploy-yurttunnel"}, "yurt-tunnel was removed"},
		{"app manager", []string{"--enable-app-manager"}, "--yurt-manager-image"},
		{"provider minikube", []string{"--provider=minikube"}, "kubeadm clusters only"},
		{"provider kubeadm", []string{"--provider=kubeadm"}, ""},
		{"deploy tunnel false", []string{"--deploy-yurttunnel=false"}, ""},
		{"servant alias", []string{"--yurtctl-servant-image=my/yurtadm:v1"}, ""},
		{"controller-manager alias", []string{"--yurt-controller-manager-image=openyurt/yurt-manager:v1.7.0"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newCmdHarness(t, kubeadmConfig("v1.34.4"), &ok)
			err := h.run(false, append([]string{"--dry-run"}, tc.args...)...)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error()+cmdutil.Hint(err), tc.want) {
				t.Fatalf("got %v hint %q", err, cmdutil.Hint(err))
			}
			if len(h.kc.Actions()) != 0 {
				t.Errorf("the cluster was contacted before the flags were checked")
			}
		})
	}
	o := newOptions()
	cmd := NewCommandWithEnv(cmdutil.IOStreams{}, Env{})
	_ = o
	if err := cmd.ParseFlags([]string{"--yurtctl-servant-image=my/yurtadm:v1", "--yurt-controller-manager-image=ym:1"}); err != nil {
		t.Fatal(err)
	}
	if v, _ := cmd.Flags().GetString(flagNodeImage); v != "my/yurtadm:v1" {
		t.Errorf("--yurtctl-servant-image did not set --node-image: %q", v)
	}
	if v, _ := cmd.Flags().GetString(flagYurtManagerImage); v != "ym:1" {
		t.Errorf("--yurt-controller-manager-image did not set --yurt-manager-image: %q", v)
	}
}

// TestConvertWithFakeJobs runs a whole convert against the fake clientset
// with a reactor that completes or fails each Job as it is created.
func TestConvertWithFakeJobs(t *testing.T) {
	m, e1, e2 := readyNode("master", map[string]string{labelControlPlane: ""}), readyNode("edge-1", nil), readyNode("edge-2", nil)
	h := newCmdHarness(t, kubeadmConfig("v1.34.4"), &m, &e1, &e2)
	h.kc.PrependReactor("create", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		j := a.(k8stesting.CreateAction).GetObject().(*batchJob)
		j.Name = j.GenerateName + "abcde"
		typ := batchComplete
		if j.Annotations[nodejobs.AnnotationNode] == "edge-2" {
			typ = batchFailed
		} else {
			p := hubPod(j.Annotations[nodejobs.AnnotationNode], corev1.PodRunning)
			h.kc.Tracker().Add(&p)
		}
		j.Status.Conditions = append(j.Status.Conditions, batchCondition(typ))
		return false, nil, nil
	})
	err := h.run(false, "--yes")
	if err == nil || cmdutil.ExitCode(err) != cmdutil.ExitError || !strings.Contains(err.Error(), "edge-2 (failed)") {
		t.Fatalf("got %v", err)
	}
	table := h.out.String()
	if !strings.Contains(table, "edge-1") || !strings.Contains(table, "edge-2") || !strings.Contains(cmdutil.Hint(err), "run 'yurtctl convert' again") {
		t.Errorf("table:\n%s\nhint: %s", table, cmdutil.Hint(err))
	}
	jobs, _ := h.kc.BatchV1().Jobs("kube-system").List(context.Background(), metav1.ListOptions{})
	if len(jobs.Items) != 0 {
		t.Errorf("%d Jobs left behind", len(jobs.Items))
	}
	if _, err := h.kc.CoordinationV1().Leases("kube-system").Get(context.Background(), lock.Name, metav1.GetOptions{}); err == nil {
		t.Error("the lock was not released")
	}
	n, _ := h.kc.CoreV1().Nodes().Get(context.Background(), "edge-1", metav1.GetOptions{})
	if n.Labels[constants.LabelEdgeWorker] != "true" || n.Annotations[constants.AnnotationAutonomyDur] != "0" {
		t.Errorf("edge-1 labels %v annotations %v", n.Labels, n.Annotations)
	}
}

type batchJob = batchv1.Job

const (
	batchComplete = batchv1.JobComplete
	batchFailed   = batchv1.JobFailed
)

func batchCondition(t batchv1.JobConditionType) batchv1.JobCondition {
	return batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue, Reason: "Sim"}
}

func TestYurthubExtraArgsReachTheNodeJob(t *testing.T) {
	o := newOptions()
	o.YurthubExtraArgs = []string{"--enable-dummy-if=false", "--v=4"}
	args := strings.Join(jobSpec(nodestep.ActionConvert, o, "").Job("edge-1", "edge").Spec.Template.Spec.Containers[0].Args, " ")
	for _, want := range []string{"--yurthub-extra-arg=--enable-dummy-if=false", "--yurthub-extra-arg=--v=4"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	if args := strings.Join(jobSpec(nodestep.ActionRevert, o, "").Job("edge-1", "").Spec.Template.Spec.Containers[0].Args, " "); strings.Contains(args, "extra") {
		t.Errorf("revert job args %q carry yurthub args", args)
	}
	for _, bad := range []string{"enable-dummy-if=false", "--", "--a b", "--x=\n"} {
		err := ValidYurthubExtraArgs("--yurthub-extra-arg", []string{bad})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
			t.Errorf("%q: error %v, want one naming it", bad, err)
		}
	}
	if err := ValidYurthubExtraArgs("--yurthub-extra-arg", []string{"--enable-dummy-if=false", "--a"}); err != nil {
		t.Error(err)
	}
}

// A node whose step rolled back loses the labels and annotations the run
// gave it; a converted node and a node that was labelled before keep them.
func TestUnlabelRolledBack(t *testing.T) {
	e1 := readyNode("edge-1", map[string]string{constants.LabelEdgeWorker: "true", constants.LabelNodePool: "edge", "keep": "me"})
	e1.Annotations = map[string]string{constants.AnnotationAutonomyDur: "0"}
	e2 := readyNode("edge-2", map[string]string{constants.LabelEdgeWorker: "true", constants.LabelNodePool: "edge"})
	e3 := readyNode("edge-3", map[string]string{constants.LabelEdgeWorker: "true", constants.LabelNodePool: "edge"})
	h := newCmdHarness(t, &e1, &e2, &e3)
	var log bytes.Buffer
	d := &runData{ctx: context.Background(), action: "convert", opts: &Options{Concurrency: 2}, clients: &h.c, restConfig: &rest.Config{},
		env: Env{NewClients: func(*rest.Config) (controlplane.Clients, error) { return h.c, nil }},
		io:  cmdutil.IOStreams{Out: &log, ErrOut: &log}}
	planned := map[string]string{constants.LabelEdgeWorker: "true", constants.LabelNodePool: "edge"}
	p := &Plan{Nodes: []NodePlan{
		{Name: "edge-1", Labels: planned, Annotations: map[string]string{constants.AnnotationAutonomyDur: "0"}},
		{Name: "edge-2", Labels: planned},
		{Name: "edge-3"}, // labelled before this run: nothing of this run's to take back
	}}
	unlabelRolledBack(d, p, []nodejobs.Result{
		{Node: "edge-1", Outcome: nodestep.OutcomeRolledBack},
		{Node: "edge-2", Outcome: nodestep.OutcomeConverted},
		{Node: "edge-3", Outcome: nodestep.OutcomeRolledBack},
	})
	get := func(name string) *corev1.Node {
		n, err := h.kc.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := get("edge-1"); len(n.Annotations) != 0 || len(n.Labels) != 1 || n.Labels["keep"] != "me" {
		t.Errorf("rolled-back edge-1: labels %v annotations %v", n.Labels, n.Annotations)
	}
	for _, name := range []string{"edge-2", "edge-3"} {
		if n := get(name); n.Labels[constants.LabelEdgeWorker] != "true" || n.Labels[constants.LabelNodePool] != "edge" {
			t.Errorf("%s: labels %v", name, n.Labels)
		}
	}
	if len(d.report) != 1 || d.report[0].Status != "done" || !strings.Contains(d.report[0].Message, "node(s) edge-1") {
		t.Errorf("report %+v", d.report)
	}
}

// With -o json, stdout is the JSON alone: the dry run's lines go to stderr.
func TestConvertJSONStdoutIsJSONAlone(t *testing.T) {
	m, e := readyNode("master", map[string]string{labelControlPlane: ""}), readyNode("edge-1", nil)
	h := newCmdHarness(t, kubeadmConfig("v1.34.4"), &m, &e)
	if err := h.run(false, "--dry-run", "-o", "json"); err != nil {
		t.Fatalf("%v\n%s", err, h.errOut.String())
	}
	var v map[string]any
	if err := json.Unmarshal(h.out.Bytes(), &v); err != nil {
		t.Errorf("stdout is not one JSON document: %v\n%s", err, h.out.String())
	}
	if !strings.Contains(h.errOut.String(), "[dryrun] would patch node edge-1") {
		t.Errorf("the dry run's lines are not on stderr:\n%s", h.errOut.String())
	}
}

func TestConvertRefusesAbsurdConcurrency(t *testing.T) {
	m := readyNode("master", map[string]string{labelControlPlane: ""})
	for _, v := range []string{"0", "100000000"} {
		h := newCmdHarness(t, kubeadmConfig("v1.34.4"), &m)
		err := h.run(false, "--concurrency", v, "--dry-run")
		if cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "invalid --concurrency "+v) || !strings.Contains(cmdutil.Hint(err), "between 1 and 1000") {
			t.Errorf("--concurrency %s: %v (exit %d)", v, err, cmdutil.ExitCode(err))
		}
		if w := writes(h.kc); len(w) != 0 {
			t.Errorf("--concurrency %s wrote %v", v, w)
		}
	}
}

// TestControlPlanePhaseDrivesHelm checks the helm commands of the
// control-plane phase and of revert's: CRDs are convert's (--skip-crds),
// the releases carry convert's label, yurt-manager goes first and is
// waited for, the values pin the images and the API server address, and
// revert uninstalls only the releases convert made.
func TestControlPlanePhaseDrivesHelm(t *testing.T) {
	m := readyNode("master", map[string]string{labelControlPlane: ""})
	h := newCmdHarness(t, kubeadmConfig("v1.34.4"), &m)
	var values []string
	h.helm.onUpgrade = func(args []string) {
		for i, a := range args {
			if a == "--values" {
				data, _ := os.ReadFile(args[i+1])
				values = append(values, string(data))
				if fi, err := os.Stat(args[i+1]); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("values file %s: %v %v", args[i+1], fi.Mode(), err)
				}
			}
		}
	}
	if err := h.run(false, "phase", "control-plane", "--yes", "--yurt-manager-image", "reg.local/openyurt/yurt-manager:v1.7.0",
		"--yurthub-extra-arg=--enable-dummy-if=false"); err != nil {
		t.Fatalf("%v\n%s", err, h.errOut.String())
	}
	var upgrades []string
	for _, c := range h.helm.calls {
		if strings.HasPrefix(c, "upgrade") {
			upgrades = append(upgrades, c)
		}
	}
	if len(upgrades) != 2 || !strings.HasPrefix(upgrades[0], "upgrade --install yurt-manager yurt-manager --repo "+controlplane.DefaultChartRepo+" --version 1.7.0") ||
		!strings.HasPrefix(upgrades[1], "upgrade --install yurthub yurthub") {
		t.Fatalf("helm upgrades: %q", upgrades)
	}
	for _, u := range upgrades {
		for _, want := range []string{"--skip-crds", "--labels managed-by=yurtctl", "--namespace kube-system", "--wait", "--atomic", "--timeout 5m0s"} {
			if !strings.Contains(u, want) {
				t.Errorf("%q lacks %s", u, want)
			}
		}
	}
	if !strings.Contains(upgrades[1], "--post-renderer-args "+PostRenderCommand) || !strings.Contains(upgrades[1], "--post-renderer-args --yurthub-extra-arg=--enable-dummy-if=false") {
		t.Errorf("yurthub's post-renderer: %q", upgrades[1])
	}
	if !strings.Contains(upgrades[0], "--post-renderer-args "+PostRenderYurtManagerCommand) {
		t.Errorf("yurt-manager's post-renderer: %q", upgrades[0])
	}
	if len(values) != 2 || !strings.Contains(values[0], `"registry": "reg.local/openyurt"`) || !strings.Contains(values[0], controlplane.DefaultYurtManagerControllers) ||
		!strings.Contains(values[0], `"repository": "node-servant"`) || !strings.Contains(values[0], `"tag": "v1.7.0"`) ||
		!strings.Contains(values[1], `"kubernetesServerAddr": "https://10.0.0.1:6443"`) || !strings.Contains(values[1], `"repository": "yurthub"`) ||
		!strings.Contains(values[1], `"nodePoolName": "edge"`) {
		t.Errorf("values:\n%s", strings.Join(values, "\n---\n"))
	}
	crd, err := h.c.Dynamic.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}).Get(context.Background(), controlplane.NodePoolCRDName, metav1.GetOptions{})
	if err != nil || crd.GetLabels()[constants.LabelManagedBy] != constants.ManagedBy {
		t.Errorf("the chart's NodePool CRD: %v %v", err, crd)
	}
	// An operator's own release of the same name is not ours to remove.
	h.helm.releases["other"] = 1
	h.helm.calls = nil
	if err := h.run(true, "phase", "control-plane", "--yes"); err != nil {
		t.Fatalf("revert: %v\n%s", err, h.errOut.String())
	}
	var un []string
	for _, c := range h.helm.calls {
		if strings.HasPrefix(c, "uninstall") {
			un = append(un, strings.Join(strings.Fields(c)[:2], " "))
		}
		if strings.HasPrefix(c, "list") && !strings.Contains(c, "--selector managed-by=yurtctl") && len(un) == 0 {
			t.Errorf("revert listed releases without convert's label first: %q", c)
		}
	}
	if strings.Join(un, ",") != "uninstall yurthub,uninstall yurt-manager" {
		t.Errorf("revert uninstalled %v", un)
	}
}

// TestEdgeWorkerLabelIsSetAsTheNode: yurt-manager's node webhook lets only
// the node itself change openyurt.io/is-edge-worker, so a node whose
// change includes that label is patched, in one request, impersonating
// system:node:<name>; a node whose change does not is patched as the admin.
func TestEdgeWorkerLabelIsSetAsTheNode(t *testing.T) {
	e1, e2 := readyNode("edge-1", nil), readyNode("edge-2", nil)
	h := newCmdHarness(t, &e1, &e2)
	asNode := fake.NewSimpleClientset(&e1, &e2)
	var users []string
	d := &runData{ctx: context.Background(), action: "convert", opts: &Options{Concurrency: 1}, clients: &h.c, restConfig: &rest.Config{},
		env: Env{NewClients: func(cfg *rest.Config) (controlplane.Clients, error) {
			users = append(users, cfg.Impersonate.UserName+"|"+strings.Join(cfg.Impersonate.Groups, ","))
			return controlplane.Clients{Kube: kubetest.Wrap(asNode)}, nil
		}},
		io: cmdutil.IOStreams{Out: io.Discard, ErrOut: io.Discard}}
	p := &Plan{Nodes: []NodePlan{
		{Name: "edge-1", Labels: map[string]string{constants.LabelEdgeWorker: "true", constants.LabelNodePool: "edge"}},
		{Name: "edge-2", Annotations: map[string]string{constants.AnnotationAutonomyDur: "0"}},
	}}
	if err := patchNodes(d, PhaseLabels, p, false, true); err != nil {
		t.Fatal(err)
	}
	if len(users) != 1 || users[0] != "system:node:edge-1|system:nodes,system:authenticated" {
		t.Errorf("impersonated %q", users)
	}
	get := func(kc *fake.Clientset, name string) *corev1.Node {
		n, _ := kc.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		return n
	}
	if n := get(asNode, "edge-1"); n.Labels[constants.LabelEdgeWorker] != "true" || n.Labels[constants.LabelNodePool] != "edge" {
		t.Errorf("edge-1 as the node: %v", n.Labels)
	}
	if n := get(h.kc, "edge-1"); len(n.Labels) != 0 {
		t.Errorf("edge-1 patched as the admin too: %v", n.Labels)
	}
	if n := get(h.kc, "edge-2"); n.Annotations[constants.AnnotationAutonomyDur] != "0" {
		t.Errorf("edge-2 as the admin: %v", n.Annotations)
	}
	var patches int
	for _, a := range append(h.kc.Actions(), asNode.Actions()...) {
		if a.GetVerb() == "patch" {
			patches++
		}
	}
	if patches != 2 {
		t.Errorf("%d patches for 2 nodes, want one each", patches)
	}
}

// A run whose Lease another run took over while its first node Job ran:
// it starts no further Job, deletes none (they are the new holder's now),
// leaves the new holder's Lease alone and exits 3 naming the lost lock.
func TestConvertThatLosesItsLockStartsNothingMore(t *testing.T) {
	defer func(d time.Duration) { lock.RenewInterval = d }(lock.RenewInterval)
	lock.RenewInterval = 5 * time.Millisecond
	m, e1, e2 := readyNode("master", map[string]string{labelControlPlane: ""}), readyNode("edge-1", nil), readyNode("edge-2", nil)
	h := newCmdHarness(t, kubeadmConfig("v1.34.4"), &m, &e1, &e2)
	var jobsFor []string
	h.kc.PrependReactor("create", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		j := a.(k8stesting.CreateAction).GetObject().(*batchJob)
		j.Name = j.GenerateName + "abcde"
		jobsFor = append(jobsFor, j.Annotations[nodejobs.AnnotationNode])
		// The Job never finishes; meanwhile another run takes the Lease.
		gvr := coordinationv1.SchemeGroupVersion.WithResource("leases")
		l, err := h.kc.Tracker().Get(gvr, "kube-system", lock.Name)
		if err != nil {
			t.Errorf("no lock while a Job is created: %v", err)
			return false, nil, nil
		}
		lc := l.(*coordinationv1.Lease).DeepCopy()
		lc.Spec.HolderIdentity = ptr.To("hostB/2/convert")
		_ = h.kc.Tracker().Update(gvr, lc, "kube-system")
		return false, nil, nil
	})
	err := h.run(false, "--yes", "--concurrency", "1", "--timeout", "5s")
	if cmdutil.ExitCode(err) != cmdutil.ExitPreflight || !errors.Is(err, lock.ErrLost) {
		t.Fatalf("got exit %d: %v, want %d and the lost lock", cmdutil.ExitCode(err), err, cmdutil.ExitPreflight)
	}
	if len(jobsFor) != 1 {
		t.Errorf("Jobs created for %v: want only the first, none after the lock was lost", jobsFor)
	}
	for _, a := range h.kc.Actions() {
		if a.GetVerb() == "delete" && a.GetResource().Resource == "jobs" {
			t.Errorf("a Job the new holder owns was deleted: %v", a)
		}
	}
	l, err := h.kc.CoordinationV1().Leases("kube-system").Get(context.Background(), lock.Name, metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "hostB/2/convert" {
		t.Errorf("the new holder's Lease: %v %+v", err, l)
	}
	if !strings.Contains(h.errOut.String()+h.out.String(), "stopping") {
		t.Errorf("the run did not say it stopped:\n%s%s", h.out.String(), h.errOut.String())
	}
}

// AdvancedRollingUpdate copies one manifest to every node: convert refuses
// it, before anything is changed, when a node is in another pool than the
// manifest would put it in, and names the node.
func TestAdvancedRollingUpdateNeedsOnePool(t *testing.T) {
	m := readyNode("master", map[string]string{labelControlPlane: ""})
	e1 := readyNode("edge-1", map[string]string{constants.LabelNodePool: "hangzhou"})
	e2 := readyNode("edge-2", nil)
	h := newCmdHarness(t, kubeadmConfig("v1.34.4"), &m, &e1, &e2)
	err := h.run(false, "--yurthub-upgrade-strategy", controlplane.UpgradeAdvancedRollingUpdate, "--yes")
	if cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), `edge-1 (in "hangzhou", the manifest says "edge")`) ||
		strings.Contains(err.Error(), "edge-2") || !strings.Contains(cmdutil.Hint(err), "OTA") {
		t.Fatalf("got %v (exit %d, hint %q)", err, cmdutil.ExitCode(err), cmdutil.Hint(err))
	}
	if w := writes(h.kc); len(w) != 0 {
		t.Errorf("the refused convert wrote %v", w)
	}
	// All edge nodes in the pool the manifest names: accepted.
	h = newCmdHarness(t, kubeadmConfig("v1.34.4"), &m, &e1, &e2)
	if err := h.run(false, "--yurthub-upgrade-strategy", controlplane.UpgradeAdvancedRollingUpdate, "--nodepool-name", "hangzhou", "--dry-run"); err != nil {
		t.Errorf("one pool: %v", err)
	}
}

// A bad --yurthub-upgrade-worker-image is refused before the cluster is
// touched, naming the flag and the value.
func TestConvertRefusesABadUpgradeWorkerImage(t *testing.T) {
	m := readyNode("master", map[string]string{labelControlPlane: ""})
	for _, v := range []string{"", "a b", "node-servant:v1\r", "UPPER/case:v1"} {
		h := newCmdHarness(t, kubeadmConfig("v1.34.4"), &m)
		err := h.run(false, "--yurthub-upgrade-worker-image", v, "--dry-run")
		if cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "--yurthub-upgrade-worker-image") {
			t.Errorf("--yurthub-upgrade-worker-image %q: %v (exit %d)", v, err, cmdutil.ExitCode(err))
		}
		if w := writes(h.kc); len(w) != 0 {
			t.Errorf("--yurthub-upgrade-worker-image %q wrote %v", v, w)
		}
	}
}
