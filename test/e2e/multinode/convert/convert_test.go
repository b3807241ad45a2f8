// Package convert holds the multi-node convert scenario: a kubeadm cluster
// of three real nodes (systemd in each) through `yurtctl convert` and
// `yurtctl revert` (test/cluster; run by hack/e2e-multinode.sh).
package convert

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/convert/controlplane"
	"github.com/yurtadm/yurtadm/pkg/convert/lock"
	"github.com/yurtadm/yurtadm/pkg/convert/nodejobs"
	"github.com/yurtadm/yurtadm/test/cluster"
	"github.com/yurtadm/yurtadm/test/cluster/clustertest"
)

// The cluster's nodes. Its name, subnet and node names are its own: it
// runs beside the edge cluster of test/e2e/multinode.
const (
	cpName      = "kcp"
	worker1Name = "kworker1"
	worker2Name = "kworker2"
)

// The cluster: a control plane and two workers joined by kubeadm join,
// the starting point of yurtctl convert.
func description() *cluster.Config {
	return &cluster.Config{Name: "kadm", Subnet: "172.31.251.0/24", Nodes: []cluster.NodeSpec{
		{Name: cpName, Role: cluster.RoleControlPlane},
		{Name: worker1Name, Role: cluster.RoleWorker},
		{Name: worker2Name, Role: cluster.RoleWorker},
	}, NodeMonitorGracePeriod: "20s", TolerationSeconds: 30}
}

func TestMain(m *testing.M) { os.Exit(clustertest.Main(m, description())) }

// kubeletFiles are a kubeadm node's kubelet files revert must give back
// byte for byte (the drop-in is the kubelet package's, under /usr/lib).
var kubeletFiles = []string{
	"/var/lib/kubelet/kubeadm-flags.env",
	"/var/lib/kubelet/config.yaml",
	"/etc/kubernetes/kubelet.conf",
	"/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
}

func checksums(ctx context.Context, t *testing.T, n *cluster.Node) string {
	t.Helper()
	out, err := n.Output(ctx, append([]string{"sha256sum"}, kubeletFiles...)...)
	if err != nil {
		t.Fatalf("%s: %v", n.Name, err)
	}
	return out
}

// TestThreeNodeConvert: both workers are converted in one run with their
// workloads undisturbed (same UID, no restart); a worker whose yurthub
// never becomes healthy (its image is not on the node and there is no
// registry) is rolled back and named while the other stays converted, and
// convert exits non-zero; revert gives both nodes' kubelet files back byte
// for byte.
func TestThreeNodeConvert(t *testing.T) {
	c, ctx, cp, workers, before, pods := start(t)
	yurtctl := func(args ...string) cluster.Result { t.Helper(); return yurtctlOn(ctx, t, cp, args...) }
	convertArgs := convertArgs(c, cp, "60s")

	// The second worker lacks yurthub's image: its yurthub can never start.
	bad, good := workers[1], workers[0]
	if _, err := bad.Output(ctx, "crictl", "rmi", cluster.YurthubImage); err != nil {
		t.Fatal(err)
	}
	r := yurtctl(convertArgs...)
	all := r.Stdout + r.Stderr
	t.Logf("convert with %s unable to run yurthub:\n%s", bad.Name, all)
	if r.ExitCode == 0 {
		t.Fatalf("convert exited 0 with %s's yurthub unable to start", bad.Name)
	}
	if !strings.Contains(all, bad.Name) || !strings.Contains(all, "rolled-back") {
		t.Errorf("convert does not name %s as rolled back", bad.Name)
	}
	clustertest.Measure(t, "convert of 2 workers, one rolled back: exit %d after %s", r.ExitCode, r.Took.Round(100*time.Millisecond))
	if got := checksums(ctx, t, bad); got != before[bad.Name] {
		t.Errorf("%s's kubelet files changed by the rollback:\nbefore %s\nafter %s", bad.Name, before[bad.Name], got)
	}
	checkConverted(ctx, t, c, good, pods[good.Name])
	n, err := c.Client.CoreV1().Nodes().Get(ctx, bad.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := n.Labels[constants.LabelEdgeWorker]; ok {
		t.Errorf("rolled-back %s keeps label %s=%s", bad.Name, constants.LabelEdgeWorker, v)
	}

	// With the image back, a second run converts the second worker too
	// and leaves the first as it is.
	if _, err := bad.Output(ctx, "ctr", "-n", "k8s.io", "images", "import", "/usr/local/share/ynode-images/common/yurthub.tar"); err != nil {
		t.Fatal(err)
	}
	r = yurtctl(convertArgs...)
	if r.ExitCode != 0 {
		t.Fatalf("second convert:\n%s", r)
	}
	clustertest.Measure(t, "convert again, the rolled-back worker now converted: %s", r.Took.Round(100*time.Millisecond))
	for _, w := range workers {
		checkConverted(ctx, t, c, w, pods[w.Name])
	}
	// OpenYurt's control plane from its charts: two Helm releases, the
	// chart's CRDs, yurt-manager Ready on the control-plane node.
	if got := releases(ctx, t, cp); got != "yurt-manager,yurthub" {
		t.Errorf("helm releases after convert: %q", got)
	}
	if n := openyurtCRDs(ctx, t, c); n < 8 {
		t.Errorf("%d OpenYurt CRDs after convert, want the chart's 8", n)
	}
	if t.Failed() {
		return
	}

	r = yurtctl("revert", "--yes", "--timeout", "60s", "--node-image", c.YurtadmImage)
	if r.ExitCode != 0 {
		t.Fatalf("revert:\n%s", r)
	}
	clustertest.Measure(t, "revert of 2 workers: %s", r.Took.Round(100*time.Millisecond))
	revertLeftNothing(ctx, t, c, cp, r)
	for _, w := range workers {
		if got := checksums(ctx, t, w); got != before[w.Name] {
			t.Errorf("%s's kubelet files after revert differ:\nbefore %s\nafter %s", w.Name, before[w.Name], got)
		}
		for _, p := range []string{constants.YurthubManifest, constants.YurthubDir, constants.YurthubCacheDir, constants.OpenYurtKubeletConfig} {
			if _, err := w.Output(ctx, "test", "!", "-e", p); err != nil {
				t.Errorf("%s: %s left after revert", w.Name, p)
			}
		}
		if err := c.WaitNodeReady(ctx, w.Name, time.Minute); err != nil {
			t.Error(err)
		}
		p := clustertest.OnlyPod(ctx, t, "web-"+w.Name)
		if string(p.UID) != pods[w.Name] || clustertest.Restarts(p) != 0 {
			t.Errorf("%s's workload after revert: uid %s (was %s), restarts %d", w.Name, p.UID, pods[w.Name], clustertest.Restarts(p))
		}
	}
}

// checkConverted fails t unless w runs kubelet through a healthy yurthub,
// carries the edge labels, and its workload pod is the one it had.
func checkConverted(ctx context.Context, t *testing.T, c *cluster.Cluster, w *cluster.Node, uid string) {
	t.Helper()
	if err := c.WaitNodeReady(ctx, w.Name, time.Minute); err != nil {
		t.Errorf("%s: %v", w.Name, err)
	}
	if out, err := w.Output(ctx, "ynode-web", "-get", "http://127.0.0.1:10267/v1/healthz"); err != nil || strings.TrimSpace(out) != "OK" {
		t.Errorf("%s: yurthub healthz %q %v", w.Name, out, err)
	}
	if out, err := w.Output(ctx, "cat", constants.YurthubManifest); err != nil || !strings.Contains(out, "openyurt.io/static-pod-hash") {
		t.Errorf("%s: yurthub's manifest is not the cluster's YurtStaticSet template: %v\n%s", w.Name, err, out)
	}
	if out, err := w.Output(ctx, "cat", constants.OpenYurtKubeletConfig); err != nil || !strings.Contains(out, constants.YurthubProxyURL) {
		t.Errorf("%s: kubelet's kubeconfig does not point at yurthub: %v", w.Name, err)
	}
	if out, err := w.Output(ctx, "systemctl", "is-active", "kubelet"); err != nil || strings.TrimSpace(out) != "active" {
		t.Errorf("%s: kubelet.service %q %v", w.Name, out, err)
	}
	n, err := c.Client.CoreV1().Nodes().Get(ctx, w.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Labels[constants.LabelEdgeWorker] != "true" || n.Annotations[constants.AnnotationAutonomyDur] != "0" {
		t.Errorf("%s: labels %v annotations %v", w.Name, n.Labels, n.Annotations)
	}
	// The same pod, never restarted, and Ready. Ready may lag the node's
	// by a kubelet status sync: a node that could not report for a while
	// (a broken yurthub for node-servant's 2 minutes) has its pods marked
	// not ready by the node lifecycle controller, and kubelet sets them
	// back on its next reconcile once it reaches the API server again.
	start := time.Now()
	p := clustertest.OnlyPod(ctx, t, "web-"+w.Name)
	err = cluster.Poll(ctx, time.Minute, func() (bool, string) {
		p = clustertest.OnlyPod(ctx, t, "web-"+w.Name)
		return cluster.PodReady(p) || string(p.UID) != uid || clustertest.Restarts(p) != 0, readyNote(p)
	})
	if string(p.UID) != uid || clustertest.Restarts(p) != 0 || err != nil {
		t.Errorf("%s's workload: uid %s (was %s), restarts %d, ready %v: %v", w.Name, p.UID, uid, clustertest.Restarts(p), cluster.PodReady(p), err)
	} else if took := time.Since(start); took > time.Second {
		t.Logf("%s's workload Ready again %s after its node", w.Name, took.Round(100*time.Millisecond))
	}
}

// readyNote is p's Ready condition as the API server has it.
func readyNote(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return fmt.Sprintf("Ready=%s %s %s since %s", c.Status, c.Reason, c.Message, c.LastTransitionTime.Format(time.RFC3339))
		}
	}
	return "no Ready condition, phase " + string(p.Status.Phase)
}

// releases are the Helm releases in kube-system, as helm lists them.
func releases(ctx context.Context, t *testing.T, cp *cluster.Node) string {
	t.Helper()
	out, err := cp.Output(ctx, "helm", "list", "-n", "kube-system", "-q", "--kubeconfig", "/etc/kubernetes/admin.conf")
	if err != nil {
		t.Fatalf("helm list: %v", err)
	}
	return strings.Join(strings.Fields(out), ",")
}

// openyurtCRDs counts the CRDs of OpenYurt's API groups.
func openyurtCRDs(ctx context.Context, t *testing.T, c *cluster.Cluster) int {
	t.Helper()
	dc, err := dynamic.NewForConfig(c.RestConfig())
	if err != nil {
		t.Fatal(err)
	}
	list, err := dc.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, crd := range list.Items {
		if strings.HasSuffix(crd.GetName(), ".openyurt.io") {
			n++
		}
	}
	return n
}

// TestConvertKilledMidway: the seed walkthrough's command line is accepted
// as a dry run and its tunnel refused; a second convert while one runs is
// refused by the lock; the running one SIGKILLed while its node step runs
// (a worker's yurthub manifest is written) leaves a lock that the next run
// watches go unrenewed before it takes it over and completes the
// conversion, with no node Job left; revert then gives the kubelet files
// back byte for byte.
func TestConvertKilledMidway(t *testing.T) {
	c, ctx, cp, workers, before, pods := start(t)
	yurtctl := func(ctx context.Context, args ...string) cluster.Result {
		t.Helper()
		return yurtctlOn(ctx, t, cp, args...)
	}
	convertArgs := convertArgs(c, cp, "90s")

	// The seed walkthrough's command line: what maps to something real is
	// accepted (here as a dry run), the tunnel is refused naming why; the
	// cluster is not touched by either.
	r := yurtctl(ctx, "convert", "--provider", "kubeadm", "--cloud-nodes", cp.Name,
		"--yurt-controller-manager-image", cluster.YurtManagerImage, "--yurtctl-servant-image", c.YurtadmImage, "--dry-run")
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, cp.Name) || !strings.Contains(r.Stdout, "cloud") {
		t.Errorf("the seed's convert as a dry run: want exit 0 and %s planned as a cloud node:\n%s", cp.Name, r)
	}
	r = yurtctl(ctx, "convert", "--cloud-nodes", cp.Name, "--deploy-yurttunnel", "--yes")
	if r.ExitCode != 2 || !strings.Contains(r.Stderr, "yurt-tunnel") {
		t.Errorf("--deploy-yurttunnel: want exit 2 naming yurt-tunnel's replacement:\n%s", r)
	}
	if got := releases(ctx, t, cp); got != "" {
		t.Errorf("helm releases after a dry run and a refusal: %q", got)
	}
	for _, w := range workers {
		if got := checksums(ctx, t, w); got != before[w.Name] {
			t.Errorf("%s's kubelet files changed by a dry run:\n%s", w.Name, got)
		}
	}
	noNodeJobs(ctx, t, c)

	// The first convert, killed once a worker's node step has written
	// yurthub's manifest; a second one started then is refused.
	type done struct {
		r   cluster.Result
		err error
	}
	first := make(chan done, 1)
	go func() {
		r, err := cp.Run(ctx, append([]string{"yurtctl"}, append(convertArgs, "--kubeconfig", "/etc/kubernetes/admin.conf")...)...)
		first <- done{r, err}
	}()
	var midway *cluster.Node
	err := cluster.Poll(ctx, 5*time.Minute, func() (bool, string) {
		for _, w := range workers {
			if _, err := os.Stat(w.HostPath(constants.YurthubManifest)); err == nil {
				midway = w
				return true, ""
			}
		}
		select {
		case d := <-first:
			first <- d
			return true, "convert ended"
		default:
		}
		return false, "no yurthub manifest on a worker yet"
	})
	if err != nil || midway == nil {
		d := <-first
		t.Fatalf("convert's node step never wrote yurthub's manifest on a worker (%v):\n%s", err, d.r)
	}
	second := yurtctl(ctx, convertArgs...)
	killed, kerr := cp.Kill(ctx, "yurtctl")
	d := <-first
	if d.err != nil {
		t.Fatal(d.err)
	}
	if killed != 1 || d.r.ExitCode == 0 {
		t.Fatalf("the first convert was not killed midway (killed %d %v):\n%s", killed, kerr, d.r)
	}
	t.Logf("the first convert killed after %s, %s's yurthub manifest written", d.r.Took.Round(100*time.Millisecond), midway.Name)
	if second.ExitCode != 3 || !strings.Contains(second.Stderr, "another yurtctl convert or revert is running") {
		t.Errorf("a second convert while the first runs: want exit 3 naming the lock:\n%s", second)
	}

	// The killed run's lock is live until it has gone unrenewed for its
	// duration (30 s); the next run watches it for one more duration, sees
	// nobody renew it, takes it over, and finishes the conversion.
	err = cluster.Poll(ctx, 2*time.Minute, func() (bool, string) {
		l, err := c.Client.CoordinationV1().Leases(constants.DefaultNamespace).Get(ctx, lock.Name, metav1.GetOptions{})
		if err != nil || l.Spec.RenewTime == nil {
			return true, ""
		}
		age := time.Since(l.Spec.RenewTime.Time)
		return age > 30*time.Second, fmt.Sprintf("lock renewed %s ago", age.Round(time.Second))
	})
	if err != nil {
		t.Fatalf("the killed run's lock did not expire: %v", err)
	}
	r = yurtctl(ctx, convertArgs...)
	if r.ExitCode != 0 {
		t.Fatalf("convert after the kill:\n%s", r)
	}
	clustertest.Measure(t, "convert re-run after a kill midway, lock taken over: %s", r.Took.Round(100*time.Millisecond))
	if !strings.Contains(r.Stderr, "looks expired by its timestamps: watching it for 30s") {
		t.Errorf("the re-run did not watch the killed run's lock before taking it over:\n%s", r.Stderr)
	}
	if !strings.Contains(r.Stderr, "took over the running Job") && !strings.Contains(r.Stderr, "yurthub already runs on this node") {
		t.Errorf("the re-run neither took over the killed run's Job nor found %s converted:\n%s", midway.Name, r.Stderr)
	}
	for _, w := range workers {
		checkConverted(ctx, t, c, w, pods[w.Name])
	}
	noNodeJobs(ctx, t, c)
	if t.Failed() {
		return
	}

	r = yurtctl(ctx, "revert", "--yes", "--timeout", "90s", "--node-image", c.YurtadmImage)
	if r.ExitCode != 0 {
		t.Fatalf("revert:\n%s", r)
	}
	for _, w := range workers {
		if got := checksums(ctx, t, w); got != before[w.Name] {
			t.Errorf("%s's kubelet files after revert differ:\nbefore %s\nafter %s", w.Name, before[w.Name], got)
		}
		if err := c.WaitNodeReady(ctx, w.Name, time.Minute); err != nil {
			t.Error(err)
		}
	}
	noNodeJobs(ctx, t, c)
}

// noNodeJobs fails t if a convert or revert node Job is left.
func noNodeJobs(ctx context.Context, t *testing.T, c *cluster.Cluster) {
	t.Helper()
	jobs, err := c.Client.BatchV1().Jobs(constants.DefaultNamespace).List(ctx, metav1.ListOptions{LabelSelector: nodejobs.LabelJob})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs.Items {
		t.Errorf("Job %s/%s left behind", j.Namespace, j.Name)
	}
}

// yurtctlOn runs yurtctl on the control-plane node with its admin kubeconfig.
func yurtctlOn(ctx context.Context, t *testing.T, cp *cluster.Node, args ...string) cluster.Result {
	t.Helper()
	r, err := cp.Run(ctx, append([]string{"yurtctl"}, append(args, "--kubeconfig", "/etc/kubernetes/admin.conf")...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("yurtctl %s: exit %d after %s", strings.Join(args, " "), r.ExitCode, r.Took.Round(100*time.Millisecond))
	return r
}

// convertArgs is the scenarios' convert: cp a cloud node, the harness's
// images and OpenYurt's charts as the nodes carry them.
func convertArgs(c *cluster.Cluster, cp *cluster.Node, timeout string) []string {
	return []string{"convert", "--yes", "--cloud-nodes", cp.Name, "--timeout", timeout, "--node-image", c.YurtadmImage,
		"--yurthub-image", cluster.YurthubImage, "--yurthub-extra-arg=--enable-dummy-if=false",
		"--yurt-manager-image", cluster.YurtManagerImage, "--chart-source", cluster.ChartsInNode}
}

// start is a scenario's starting point: the cluster as kubeadm left it
// (no yurthub manifest on a worker), each worker's kubelet files' sums in
// before and a web workload on it, its pod's UID in pods.
func start(t *testing.T) (c *cluster.Cluster, ctx context.Context, cp *cluster.Node, workers []*cluster.Node, before, pods map[string]string) {
	t.Helper()
	c = clustertest.Need(t)
	ctx = clustertest.Timeout(t, 15*time.Minute)
	cp = clustertest.Node(t, cpName)
	workers = []*cluster.Node{clustertest.Node(t, worker1Name), clustertest.Node(t, worker2Name)}
	before, pods = map[string]string{}, map[string]string{}
	for _, w := range workers {
		if _, err := os.Stat(w.HostPath(constants.YurthubManifest)); err == nil {
			t.Fatalf("%s already has %s: the cluster is not as kubeadm left it", w.Name, constants.YurthubManifest)
		}
		before[w.Name] = checksums(ctx, t, w)
		pods[w.Name] = string(clustertest.DeployWeb(ctx, t, "web-"+w.Name, w.Name).UID)
	}
	return c, ctx, cp, workers, before, pods
}

// earlierRelease is the last commit whose convert made OpenYurt's control
// plane by hand (a schemaless NodePool CRD, yurt-hub-cfg and RBAC, a
// csr-approver-only yurt-manager bound to cluster-admin), before it
// installed OpenYurt's charts.
const earlierRelease = "5bd5b05"

// TestConvertMigratesAnEarlierConversion: a cluster whose control plane
// the earlier yurtctl (built from earlierRelease, run on the control
// plane) converted, is converted by this one: the earlier objects are
// handed to the charts' Helm releases or deleted (the cluster-admin
// binding), the NodePool CRD becomes the chart's with the earlier pools
// kept, and nothing of ours is bound to cluster-admin; revert then leaves
// no release, no CRD and no earlier object.
func TestConvertMigratesAnEarlierConversion(t *testing.T) {
	c, ctx, cp, _, _, _ := start(t)
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := exec.CommandContext(ctx, "git", "-C", root, "cat-file", "-e", earlierRelease+"^{commit}").Run(); err != nil {
		t.Fatalf("commit %s is not in %s (a shallow clone?): %v", earlierRelease, root, err)
	}
	// The earlier yurtctl, built from its commit into the control-plane node.
	src := t.TempDir()
	archive := exec.CommandContext(ctx, "sh", "-c", fmt.Sprintf("git -C %q archive %s | tar -x -C %q", root, earlierRelease, src))
	if out, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("git archive %s: %v\n%s", earlierRelease, err, out)
	}
	dir := cp.HostPath("/opt/yurtctl-" + earlierRelease)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(dir, "yurtadm"), "./cmd/yurtadm")
	build.Dir, build.Env = src, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build the yurtctl of %s: %v\n%s", earlierRelease, err, out)
	}
	if err := os.Symlink("yurtadm", filepath.Join(dir, "yurtctl")); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join("/opt/yurtctl-"+earlierRelease, "yurtctl")
	r, err := cp.Run(ctx, old, "convert", "phase", "control-plane", "--yes", "--kubeconfig", "/etc/kubernetes/admin.conf",
		"--yurt-manager-image", cluster.YurtManagerImage)
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("the earlier convert's control-plane phase: %v\n%s", err, r)
	}
	t.Logf("the earlier convert (%s):\n%s", earlierRelease, r.Stdout+r.Stderr)
	crbs := c.Client.RbacV1().ClusterRoleBindings()
	if b, err := crbs.Get(ctx, "yurt-manager", metav1.GetOptions{}); err != nil || b.RoleRef.Name != "cluster-admin" {
		t.Fatalf("the earlier convert did not bind yurt-manager to cluster-admin as it used to: %v", err)
	}
	dc, err := dynamic.NewForConfig(c.RestConfig())
	if err != nil {
		t.Fatal(err)
	}
	nodePools := dc.Resource(schema.GroupVersionResource{Group: "apps.openyurt.io", Version: "v1beta2", Resource: "nodepools"})
	poolUIDs := func() map[string]string {
		t.Helper()
		l, err := nodePools.List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("NodePools: %v", err)
		}
		m := map[string]string{}
		for _, p := range l.Items {
			m[p.GetName()] = string(p.GetUID())
		}
		return m
	}
	earlier := poolUIDs()
	if len(earlier) == 0 {
		t.Fatal("the earlier convert made no NodePool")
	}

	r = yurtctlOn(ctx, t, cp, convertArgs(c, cp, "90s")...)
	all := r.Stdout + r.Stderr
	if r.ExitCode != 0 {
		t.Fatalf("convert over the earlier conversion:\n%s", r)
	}
	clustertest.Measure(t, "convert over a cluster the earlier yurtctl (%s) converted: %s", earlierRelease, r.Took.Round(100*time.Millisecond))
	for _, want := range []string{"ClusterRoleBinding yurt-manager deleted", "handed to Helm release"} {
		if !strings.Contains(all, want) {
			t.Errorf("convert does not say %q:\n%s", want, all)
		}
	}
	list, err := crbs.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range list.Items {
		for _, s := range b.Subjects {
			if b.RoleRef.Name == "cluster-admin" && strings.HasPrefix(s.Name, "yurt") {
				t.Errorf("ClusterRoleBinding %s binds %s %s to cluster-admin", b.Name, s.Kind, s.Name)
			}
		}
	}
	if got := releases(ctx, t, cp); got != "yurt-manager,yurthub" {
		t.Errorf("helm releases after the migration: %q", got)
	}
	if err := c.WaitPods(ctx, "kube-system", "app.kubernetes.io/name=yurt-manager", 3*time.Minute); err != nil {
		t.Errorf("the chart's yurt-manager is not Ready: %v", err)
	}
	// The chart's NodePool CRD, the earlier pools still there (same UIDs).
	now := poolUIDs()
	for name, uid := range earlier {
		if now[name] != uid {
			t.Errorf("NodePool %s: uid %q after the migration, %q before", name, now[name], uid)
		}
	}
	crd, err := dc.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}).Get(ctx, "nodepools.apps.openyurt.io", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if crd.GetAnnotations()["yurtctl.openyurt.io/chart-crd-hash"] == "" {
		t.Errorf("the NodePool CRD is not the chart's after the migration: annotations %v", crd.GetAnnotations())
	}
	if t.Failed() {
		return
	}

	r = yurtctlOn(ctx, t, cp, "revert", "--yes", "--timeout", "90s", "--node-image", c.YurtadmImage)
	if r.ExitCode != 0 {
		t.Fatalf("revert:\n%s", r)
	}
	revertLeftNothing(ctx, t, c, cp, r)
	for _, name := range []string{"yurt-manager", controlplane.CSRApproverClusterRole, "yurt-hub"} {
		if _, err := crbs.Get(ctx, name, metav1.GetOptions{}); err == nil {
			t.Errorf("ClusterRoleBinding %s left after revert", name)
		}
	}
	if _, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, constants.YurthubConfigMap, metav1.GetOptions{}); err == nil {
		t.Errorf("ConfigMap %s left after revert", constants.YurthubConfigMap)
	}
}

// revertLeftNothing checks what a revert (its result r) removed: every Helm
// release, and every OpenYurt CRD once the API server has removed their
// storage (no object of them is left here).
func revertLeftNothing(ctx context.Context, t *testing.T, c *cluster.Cluster, cp *cluster.Node, r cluster.Result) {
	t.Helper()
	if got := releases(ctx, t, cp); got != "" {
		t.Errorf("helm releases after revert: %q", got)
	}
	left := 0
	_ = cluster.Poll(ctx, time.Minute, func() (bool, string) {
		left = openyurtCRDs(ctx, t, c)
		return left == 0, fmt.Sprintf("%d CRDs", left)
	})
	if left != 0 {
		t.Errorf("%d OpenYurt CRDs left a minute after revert:\n%s", left, r.Stderr)
	}
}
