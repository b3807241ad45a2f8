package multinode

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/yurtadm/yurtadm/pkg/join"
	"github.com/yurtadm/yurtadm/test/cluster"
	"github.com/yurtadm/yurtadm/test/framework"
)

// TestMeasureJoinVsKubeadmJoin is the join benchmark of docs/benchmarks.md:
// the same node (edge2) of the same cluster joins by `yurtadm join` and by
// the real `kubeadm join`, alternating, YURTADM_JOIN_ROUNDS rounds each
// (default 5), each from a node reset by the tool's own reset with its Node
// deleted. The time is from the command's start until it has returned and
// the API server shows the Node Ready (polled every 100 ms from here).
// It reports, it does not gate: it runs only with YURTADM_E2E_MEASURE=1.
func TestMeasureJoinVsKubeadmJoin(t *testing.T) {
	c := needMeasure(t)
	n := node(t, edge2Name)
	rounds := 5
	if v, err := strconv.Atoi(os.Getenv("YURTADM_JOIN_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	ctx := timeout(t, time.Duration(rounds)*3*time.Minute)

	resetWith := func(tool string) {
		t.Helper()
		args := []string{"yurtadm", "reset", "--force"}
		if tool == "kubeadm" {
			args = []string{"kubeadm", "reset", "--force", "--cri-socket", cluster.CRISocket}
		}
		if r, err := n.Run(ctx, args...); err != nil || r.ExitCode != 0 {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, r)
		}
		if err := c.Client.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{}); err != nil && !isNotFound(err) {
			t.Fatal(err)
		}
	}
	defer func() {
		// Leave the node joined by yurtadm, as the other scenarios expect.
		if _, err := n.Output(context.Background(), "test", "-e", "/etc/kubernetes/manifests/yurthub.yaml"); err != nil || nodeReadyStatus(context.Background(), n.Name) != "True" {
			_, _ = n.Run(context.Background(), "kubeadm", "reset", "--force", "--cri-socket", cluster.CRISocket)
			_, _ = n.Run(context.Background(), "yurtadm", "reset", "--force")
			_ = c.Client.CoreV1().Nodes().Delete(context.Background(), n.Name, metav1.DeleteOptions{})
			if _, err := c.JoinNode(context.Background(), n); err != nil {
				t.Errorf("rejoin %s by yurtadm: %v", n.Name, err)
			}
		}
	}()

	// YURTADM_JOIN_LINK=4g: both joins with all of the node's API traffic
	// over the harness's 4G-like link (cluster.FourG), counted per join.
	var link *cluster.SlowLink
	if os.Getenv("YURTADM_JOIN_LINK") == "4g" {
		var err error
		if link, err = c.StartSlowLink(cluster.FourG); err != nil {
			t.Fatal(err)
		}
		defer link.Close()
		if err := n.Route(ctx, link); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = n.Unroute(context.Background()) }()
	}
	// linkMark notes the link's counts; the function it returns says what
	// went through the link since ("" without one).
	linkMark := func() func() string {
		if link == nil {
			return func() string { return "" }
		}
		c0, b0 := link.Counts()
		return func() string {
			c1, b1 := link.Counts()
			return fmt.Sprintf(", %d connections and %d bytes through the link", c1-c0, b1-b0)
		}
	}

	// runJoin runs one join and returns its time to Ready and, for yurtadm,
	// its own phase times.
	runJoin := func(kubeadm bool, extra ...string) (time.Duration, time.Duration, []join.PhaseTime) {
		t.Helper()
		tok, hash, err := c.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ready := make(chan time.Duration, 1)
		start := time.Now()
		pollCtx, stop := context.WithCancel(ctx)
		defer stop()
		go func() {
			for pollCtx.Err() == nil {
				if nodeReadyStatus(pollCtx, n.Name) == "True" {
					ready <- time.Since(start)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
		args := c.JoinArgs(n, c.APIServer(), tok, hash, extra...)
		if kubeadm {
			// All of kubeadm's checks are ignored: this machine fails some
			// kernel-module and systemd checks yurtadm's preflight does
			// not make; its preflight still runs and is timed.
			args = cluster.KubeadmJoinArgs(c.APIServer(), tok, hash, extra...)
			for i, a := range args {
				if strings.HasPrefix(a, "--ignore-preflight-errors=") {
					args[i] = "--ignore-preflight-errors=all"
				}
			}
		}
		r, err := n.Run(ctx, args...)
		if err != nil || r.ExitCode != 0 {
			t.Fatalf("join: %v\n%s", err, strings.ReplaceAll(r.String(), tok, "<token>"))
		}
		var readyAt time.Duration
		select {
		case readyAt = <-ready:
		case <-time.After(2 * time.Minute):
			t.Fatalf("%s: Node not Ready 2 min after the join returned", args[0])
		}
		var sum join.Summary
		if !kubeadm {
			if err := json.Unmarshal([]byte(r.Stdout), &sum); err != nil {
				t.Fatalf("yurtadm join -o json printed %q: %v", r.Stdout, err)
			}
		}
		return max(readyAt, r.Took), r.Took, sum.Phases
	}

	var ours, theirs []time.Duration
	phaseSum := map[string]time.Duration{}
	var phaseOrder []string
	for i := 0; i < rounds; i++ {
		resetWith("yurtadm")
		since := linkMark()
		k, kCmd, _ := runJoin(true)
		kLink := since()
		theirs = append(theirs, k)
		resetWith("kubeadm")
		since = linkMark()
		y, yCmd, phases := runJoin(false, "-o", "json")
		yLink := since()
		ours = append(ours, y)
		var parts []string
		for _, p := range phases {
			if _, ok := phaseSum[p.Name]; !ok {
				phaseOrder = append(phaseOrder, p.Name)
			}
			phaseSum[p.Name] += time.Duration(p.Millis) * time.Millisecond
			parts = append(parts, fmt.Sprintf("%s %dms", p.Name, p.Millis))
		}
		measure(t, "round %d: kubeadm join %s to Ready (command %s%s); yurtadm join %s to Ready (command %s%s: %s)",
			i+1, k.Round(10*time.Millisecond), kCmd.Round(10*time.Millisecond), kLink, y.Round(10*time.Millisecond),
			yCmd.Round(10*time.Millisecond), yLink, strings.Join(parts, ", "))
	}
	mo, mt := framework.Median(ours), framework.Median(theirs)
	var mean []string
	for _, p := range phaseOrder {
		mean = append(mean, fmt.Sprintf("%s %s", p, (phaseSum[p]/time.Duration(rounds)).Round(time.Millisecond)))
	}
	over := "direct link"
	if link != nil {
		over = "over the 4G-like link (" + cluster.FourG.String() + ")"
	}
	measure(t, "join to Node Ready, %s, median of %d alternating rounds: yurtadm join %s, kubeadm join %s, ratio %.2f; yurtadm's phases, mean: %s",
		over, rounds, mo.Round(10*time.Millisecond), mt.Round(10*time.Millisecond), float64(mo)/float64(mt), strings.Join(mean, ", "))
}

// needMeasure is need for a benchmark: it runs only with
// YURTADM_E2E_MEASURE=1 and says so when it skips.
func needMeasure(t *testing.T) *cluster.Cluster {
	t.Helper()
	if os.Getenv("YURTADM_E2E_MEASURE") != "1" {
		t.Skip("a benchmark, not a test: set YURTADM_E2E_MEASURE=1 to run it (docs/benchmarks.md)")
	}
	return need(t)
}
