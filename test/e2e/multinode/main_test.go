// Package multinode holds the end-to-end scenarios that need a real
// multi-node cluster: nodes that boot systemd, a control plane from
// `kubeadm init`, and faults where the cloud keeps running (test/cluster).
// They run under hack/e2e-multinode.sh (YURTADM_E2E=1, as root); without
// it every test skips and says why.
package multinode

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yurtadm/yurtadm/test/cluster"
)

// c is the cluster every scenario runs on; nil when the suite is skipped.
var c *cluster.Cluster

var skipReason string

// Nodes of the scenarios' cluster.
const (
	cpName     = "cp"
	edge1Name  = "edge1"
	edge2Name  = "edge2"
	cloudName  = "cloud1"
	workerName = "worker1"
)

// description is the cluster: a control plane, two edge nodes in two
// pools and a cloud node joined by yurtadm join, a plain worker joined by
// kubeadm join; node lifecycle shortened (Unknown 20 s after the last
// heartbeat, eviction 30 s later) so that partitions take a minute, not
// six.
func description() *cluster.Config {
	cfg := cluster.Default()
	cfg.Nodes = append(cfg.Nodes, cluster.NodeSpec{Name: workerName, Role: cluster.RoleWorker})
	cfg.NodeMonitorGracePeriod, cfg.TolerationSeconds = "20s", 30
	return cfg
}

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	if os.Getenv("YURTADM_E2E") != "1" {
		skipReason = "the multi-node scenarios boot nodes and change the host's network: set YURTADM_E2E=1 as root, or run hack/e2e-multinode.sh"
		return m.Run()
	}
	var err error
	c, err = cluster.New(description(), os.Stderr)
	if err == nil {
		err = buildYurtadm(c)
	}
	if err == nil {
		if missing := c.Prerequisites(); len(missing) > 0 {
			err = fmt.Errorf("missing: %s", strings.Join(missing, "; "))
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "FAIL: YURTADM_E2E=1 under CI=true but the multi-node harness cannot run: %v\n", err)
			return 1
		}
		skipReason = "multi-node harness unavailable: " + err.Error()
		c = nil
		return m.Run()
	}
	ctx := context.Background()
	// YURTADM_E2E_KEEP=1 (development): reuse a cluster an earlier run
	// kept, and keep this one.
	keep := os.Getenv("YURTADM_E2E_KEEP") == "1"
	if kept, err := cluster.Attach(os.Stderr); keep && err == nil && kept.Client != nil && len(kept.Nodes()) == len(c.Nodes()) {
		fmt.Fprintln(os.Stderr, "reusing the kept cluster (YURTADM_E2E_KEEP=1)")
		c = kept
		return m.Run()
	}
	if err := c.Create(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: bring the cluster up: %v\n", err)
		_ = c.Delete(ctx)
		return 1
	}
	code := m.Run()
	if keep {
		fmt.Fprintln(os.Stderr, "cluster kept (YURTADM_E2E_KEEP=1): take it down with hack/cluster.sh down")
		return code
	}
	if err := c.Delete(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: take the cluster down: %v\n", err)
		code = 1
	}
	if left := c.Leftovers(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: left behind: %s\n", strings.Join(left, "; "))
		code = 1
	}
	return code
}

// buildYurtadm builds this repository's yurtadm (as `make build` does)
// unless YURTADM_E2E_YURTADM names one.
func buildYurtadm(c *cluster.Cluster) error {
	bin := os.Getenv("YURTADM_E2E_YURTADM")
	if bin == "" {
		root, err := filepath.Abs("../../..")
		if err != nil {
			return err
		}
		out := filepath.Join(c.Build, "bin")
		cmd := exec.Command("make", "-s", "build", "BIN="+out)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("make build: %v\n%s", err, b)
		}
		bin = filepath.Join(out, "yurtadm")
	}
	return c.SetYurtadm(bin)
}

// need skips t when the suite does not run and returns the cluster.
func need(t *testing.T) *cluster.Cluster {
	t.Helper()
	if c == nil {
		t.Skip(skipReason)
	}
	return c
}

func node(t *testing.T, name string) *cluster.Node {
	t.Helper()
	n, err := need(t).Node(name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// measure appends a line to the figures file YURTADM_E2E_MEASURE_OUT
// names (docs/e2e.md), and logs it.
func measure(t *testing.T, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log("figure: " + line)
	if p := os.Getenv("YURTADM_E2E_MEASURE_OUT"); p != "" {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err == nil {
			fmt.Fprintf(f, "%s %s: %s\n", time.Now().UTC().Format(time.RFC3339), t.Name(), line)
			f.Close()
		}
	}
}
