package convert

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/yurtadm/yurtadm/test/cluster/clustertest"
	"github.com/yurtadm/yurtadm/test/framework"
)

// TestMeasureConvertTwoVsOne converts the cluster with one edge node
// (worker2 named a cloud node, so it gets no node step) and with two,
// alternating, each run from the cluster as kubeadm left it (a revert in
// between), and reports each run's wall time, its slowest node step and the
// ratio of the medians. It reports, it does not gate: it runs only with
// YURTADM_E2E_MEASURE=1 (docs/benchmarks.md); YURTADM_CONVERT_ROUNDS sets
// the rounds (default 3).
func TestMeasureConvertTwoVsOne(t *testing.T) {
	if os.Getenv("YURTADM_E2E_MEASURE") != "1" {
		t.Skip("a benchmark, not a test: set YURTADM_E2E_MEASURE=1 to run it (docs/benchmarks.md)")
	}
	rounds := 3
	if v, err := strconv.Atoi(os.Getenv("YURTADM_CONVERT_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	c := clustertest.Need(t)
	ctx := clustertest.Timeout(t, time.Duration(rounds)*12*time.Minute)
	cp, worker2 := clustertest.Node(t, cpName), clustertest.Node(t, worker2Name)
	revert := []string{"revert", "--yes", "--timeout", "60s", "--node-image", c.YurtadmImage}
	walls := map[int][]time.Duration{}
	for round := 1; round <= rounds; round++ {
		for _, edges := range []int{1, 2} {
			args := append(convertArgs(c, cp, "60s"), "-o", "json")
			if edges == 1 {
				for i, a := range args {
					if a == "--cloud-nodes" {
						args[i+1] = cp.Name + "," + worker2.Name
					}
				}
			}
			r := yurtctlOn(ctx, t, cp, args...)
			if r.ExitCode != 0 {
				t.Fatalf("convert of %d edge node(s):\n%s", edges, r)
			}
			var out struct {
				Nodes []struct {
					Node     string        `json:"node"`
					Outcome  string        `json:"outcome"`
					Duration time.Duration `json:"duration"`
				} `json:"nodes"`
			}
			if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
				t.Fatalf("convert -o json: %v\n%s", err, r.Stdout)
			}
			var steps []string
			var slowest time.Duration
			for _, n := range out.Nodes {
				if n.Outcome == "skipped" {
					continue
				}
				steps = append(steps, fmt.Sprintf("%s %s %s", n.Node, n.Outcome, n.Duration.Round(100*time.Millisecond)))
				slowest = max(slowest, n.Duration)
			}
			if len(steps) != edges {
				t.Fatalf("convert of %d edge node(s) ran %d node steps: %v", edges, len(steps), steps)
			}
			walls[edges] = append(walls[edges], r.Took)
			clustertest.Measure(t, "round %d: convert of %d edge node(s) %s, slowest node step %s (%s)",
				round, edges, r.Took.Round(100*time.Millisecond), slowest.Round(100*time.Millisecond), strings.Join(steps, "; "))
			if r := yurtctlOn(ctx, t, cp, revert...); r.ExitCode != 0 {
				t.Fatalf("revert:\n%s", r)
			}
			for _, w := range []string{worker1Name, worker2Name} {
				if err := c.WaitNodeReady(ctx, w, time.Minute); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	one, two := framework.Median(walls[1]), framework.Median(walls[2])
	clustertest.Measure(t, "median of %d: convert of 2 edge nodes %s, of 1 %s, ratio %.2f",
		rounds, two.Round(100*time.Millisecond), one.Round(100*time.Millisecond), float64(two)/float64(one))
}
