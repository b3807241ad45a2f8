package multinode

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/yurtadm/yurtadm/test/cluster"
)

// joinLeftovers are what a join writes and `yurtadm reset` must remove.
var joinLeftovers = []string{"/var/lib/yurthub", "/etc/kubernetes/manifests/yurthub.yaml", "/etc/kubernetes/cache",
	"/var/lib/openyurt", "/etc/kubernetes/kubelet.conf", "/etc/kubernetes/bootstrap-kubelet.conf", "/var/lib/kubelet/config.yaml",
	"/var/lib/kubelet/pki", "/etc/kubernetes/pki/ca.crt"}

// faultNode resets n and deletes its Node: a clean node to join; it fails
// the test when reset leaves any of joinLeftovers, a yurt-hub container
// or an active kubelet.
func faultNode(ctx context.Context, t *testing.T, c *cluster.Cluster, n *cluster.Node, after string) {
	t.Helper()
	r, err := n.Run(ctx, "yurtadm", "reset", "--force")
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("yurtadm reset after %s: %v\n%s", after, err, r)
	}
	var left []string
	for _, p := range joinLeftovers {
		if _, err := n.Output(ctx, "test", "!", "-e", p); err != nil {
			left = append(left, p)
		}
	}
	if out, _ := n.Output(ctx, "crictl", "ps", "-a", "-q", "--name", "yurt-hub"); strings.TrimSpace(out) != "" {
		left = append(left, "yurt-hub container "+strings.TrimSpace(out))
	}
	if r, _ := n.Run(ctx, "systemctl", "is-active", "--quiet", "kubelet"); r.ExitCode == 0 {
		left = append(left, "an active kubelet")
	}
	if len(left) > 0 {
		t.Errorf("after %s and yurtadm reset, %s still has %q", after, n.Name, left)
	}
	if err := c.Client.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{}); err != nil && !isNotFound(err) {
		t.Fatal(err)
	}
}

// cleanEdge2 starts a scenario on edge2 reset to a clean, unjoined node
// (faultNode), with a context of d; edge2 is joined again when the
// scenario ends, as the other scenarios expect it.
func cleanEdge2(t *testing.T, d time.Duration) (*cluster.Cluster, *cluster.Node, context.Context) {
	t.Helper()
	c := need(t)
	n := node(t, edge2Name)
	ctx := timeout(t, d)
	t.Cleanup(func() { rejoinAtEnd(t, c, n) })
	faultNode(ctx, t, c, n, "the scenario before")
	return c, n, ctx
}

// rejoinAtEnd leaves n joined, as the other scenarios expect it.
func rejoinAtEnd(t *testing.T, c *cluster.Cluster, n *cluster.Node) {
	ctx := context.Background()
	_ = n.Heal(ctx)
	if nodeReadyStatus(ctx, n.Name) == "True" {
		if r, _ := n.Run(ctx, "yurtadm", "doctor", "--skip", "host"); r.ExitCode == 0 {
			return
		}
	}
	_, _ = n.Run(ctx, "yurtadm", "reset", "--force")
	_ = c.Client.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{})
	if _, err := c.JoinNode(ctx, n); err != nil {
		t.Errorf("rejoin %s: %v", n.Name, err)
	}
}

// TestJoinKilledAtEachPhase: `yurtadm join` is killed with SIGKILL (no
// rollback can run) as each of its phases starts, on a node under real
// systemd; `yurtadm reset` then leaves a clean node each time, and the
// node joins at the end.
func TestJoinKilledAtEachPhase(t *testing.T) {
	c, n, ctx := cleanEdge2(t, 12*time.Minute)

	phases := []string{"preflight", "discovery", "images", "kubelet-files", "yurthub", "kubelet-start", "wait-yurthub", "kubelet-yurthub", "wait-ready"}
	killed := 0
	for _, phase := range phases {
		tok, hash, err := c.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cmd, err := n.Command(ctx, c.JoinArgs(n, c.APIServer(), tok, hash)...)
		if err != nil {
			t.Fatal(err)
		}
		stderr, _ := cmd.StderrPipe()
		cmd.Stdout = nil
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var seen []string
		hit := make(chan struct{}, 1)
		go func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				line := sc.Text()
				mu.Lock()
				seen = append(seen, strings.ReplaceAll(line, tok, "<token>"))
				mu.Unlock()
				if strings.HasPrefix(line, "["+phase+"]") {
					select {
					case hit <- struct{}{}:
					default:
					}
				}
			}
		}()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-hit:
			k, err := n.Kill(ctx, "yurtadm")
			<-done
			if err != nil || k == 0 {
				t.Errorf("kill at %s: killed %d, %v", phase, k, err)
				continue
			}
			killed++
			// A half-joined node is not healthy, and doctor says why.
			r, err := n.Run(ctx, "yurtadm", "doctor", "--skip", "host", "-o", "json")
			var rep struct {
				Findings []struct{ Name, Status, Summary string } `json:"findings"`
			}
			first := ""
			if err == nil && json.Unmarshal([]byte(r.Stdout), &rep) == nil {
				for _, f := range rep.Findings {
					if f.Status == "fail" && first == "" {
						first = f.Name + ": " + f.Summary
					}
				}
			}
			// Killed once kubelet runs through yurthub (kubelet-yurthub,
			// wait-ready), the node works: doctor may rightly find it
			// healthy. Before that, something is missing and doctor says so.
			late := phase == "kubelet-yurthub" || phase == "wait-ready"
			if !late && (r.ExitCode != 6 || first == "") || late && r.ExitCode != 0 && r.ExitCode != 6 {
				t.Errorf("doctor on a join killed at %s: exit %d, first failure %q; want 6 naming what is missing", phase, r.ExitCode, first)
			}
			if first == "" {
				first = fmt.Sprintf("exit %d, nothing fails (kubelet already runs through yurthub)", r.ExitCode)
			}
			t.Logf("killed yurtadm join with SIGKILL as phase %s started; doctor: %s", phase, first)
		case err := <-done:
			mu.Lock()
			t.Logf("join ended (%v) before phase %s printed anything; its output:\n%s", err, phase, strings.Join(seen, "\n"))
			mu.Unlock()
		}
		faultNode(ctx, t, c, n, "a join killed at "+phase)
	}
	measure(t, "join killed with SIGKILL at %d of %d phases; yurtadm reset left a clean node each time", killed, len(phases))
	if killed < len(phases)-2 {
		t.Errorf("killed at only %d of %d phases", killed, len(phases))
	}
	if _, err := c.JoinNode(ctx, n); err != nil {
		t.Fatalf("join after the killed ones: %v", err)
	}
}

// TestJoinWithTheCloudCutMidJoin: the link to the cloud drops as the join
// waits for yurthub (kubelet started, yurthub asking the API server for
// its certificate and objects). The join gives up within its --timeout,
// says what it waited for, undoes what it wrote; once the link is back
// the node joins.
func TestJoinWithTheCloudCutMidJoin(t *testing.T) {
	c, n, ctx := cleanEdge2(t, 8*time.Minute)

	tok, hash, err := c.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := n.Command(ctx, append(c.JoinArgs(n, c.APIServer(), tok, hash), "--timeout", "45s")...)
	if err != nil {
		t.Fatal(err)
	}
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cut := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			out.WriteString(strings.ReplaceAll(sc.Text(), tok, "<token>") + "\n")
			if strings.HasPrefix(sc.Text(), "[kubelet-start]") {
				once.Do(func() {
					if err := n.Partition(ctx); err != nil {
						t.Errorf("partition: %v", err)
					}
					close(cut)
				})
			}
		}
	}()
	start := time.Now()
	err = cmd.Wait()
	took := time.Since(start)
	select {
	case <-cut:
	default:
		t.Fatalf("the join never reached kubelet-start (%v):\n%s", err, out.String())
	}
	code := cmd.ProcessState.ExitCode()
	measure(t, "join with the cloud cut at kubelet-start: exit %d after %s", code, took.Round(100*time.Millisecond))
	if code == 0 {
		t.Fatalf("join succeeded with the cloud cut:\n%s", out.String())
	}
	if code != 4 || !strings.Contains(out.String(), "yurthub") {
		t.Errorf("join exited %d; want 4 (timeout) naming what it waited for:\n%s", code, out.String())
	}
	if took > 90*time.Second {
		t.Errorf("join took %s with --timeout 45s", took)
	}
	for _, p := range []string{"/etc/kubernetes/manifests/yurthub.yaml", "/var/lib/openyurt/join-state.json", "/var/lib/kubelet/config.yaml"} {
		if _, err := n.Output(ctx, "test", "!", "-e", p); err != nil {
			t.Errorf("the failed join left %s", p)
		}
	}
	if err := n.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	faultNode(ctx, t, c, n, "the join cut off from the cloud")
	if _, err := c.JoinNode(ctx, n); err != nil {
		t.Fatalf("join once the link is back: %v", err)
	}
}

// TestJoinOnAFullDisk: /var/lib/kubelet is a full 64 KiB tmpfs. The join
// fails writing kubelet's files, names the cause, and undoes what it wrote
// elsewhere; with the space back the node joins.
func TestJoinOnAFullDisk(t *testing.T) {
	c, n, ctx := cleanEdge2(t, 6*time.Minute)
	if _, err := n.Shell(ctx, "mkdir -p /var/lib/kubelet && mount -t tmpfs -o size=64k tmpfs /var/lib/kubelet && "+
		"(dd if=/dev/zero of=/var/lib/kubelet/.fill bs=4k 2>/dev/null || true) && df -k /var/lib/kubelet"); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = n.Shell(context.Background(), "umount /var/lib/kubelet 2>/dev/null || true") }()
	tok, hash, err := c.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := n.Run(ctx, c.JoinArgs(n, c.APIServer(), tok, hash)...)
	if err != nil {
		t.Fatal(err)
	}
	out := strings.ReplaceAll(r.Stdout+r.Stderr, tok, "<token>")
	measure(t, "join with /var/lib/kubelet full: exit %d after %s", r.ExitCode, r.Took.Round(100*time.Millisecond))
	if r.ExitCode == 0 {
		t.Fatalf("join succeeded on a full disk:\n%s", out)
	}
	if !strings.Contains(out, "no space left on device") {
		t.Errorf("the failed join does not name the full disk:\n%s", out)
	}
	for _, p := range []string{"/etc/kubernetes/manifests/yurthub.yaml", "/var/lib/openyurt/join-state.json", "/etc/kubernetes/pki/ca.crt", "/var/lib/yurthub"} {
		if _, err := n.Output(ctx, "test", "!", "-e", p); err != nil {
			t.Errorf("the failed join left %s", p)
		}
	}
	if got := doctorFindings(ctx, n)["disk-space"]; !strings.HasPrefix(got, "fail") || !strings.Contains(got, "/var/lib/kubelet") {
		t.Errorf("doctor's disk-space on the full disk: %q; want a fail naming /var/lib/kubelet", got)
	}
	if ls, _ := n.Output(ctx, "ls", "-A", "/var/lib/kubelet"); strings.TrimSpace(ls) != ".fill" {
		t.Errorf("the failed join left in /var/lib/kubelet: %q", ls)
	}
	if _, err := n.Shell(ctx, "umount /var/lib/kubelet"); err != nil {
		t.Fatal(err)
	}
	faultNode(ctx, t, c, n, "the join on a full disk")
	if _, err := c.JoinNode(ctx, n); err != nil {
		t.Fatalf("join with the space back: %v", err)
	}
}

// TestYurthubCrashLoopNamedByDoctor: yurthub's manifest is given a flag
// yurthub v1.7.0 does not know, so it exits at start and kubelet restarts
// it over and over; doctor names the container, its cause read from
// yurthub's last words, and the healthz failing. The manifest restored, yurthub runs again.
func TestYurthubCrashLoopNamedByDoctor(t *testing.T) {
	c := need(t)
	n := node(t, edge2Name)
	ctx := timeout(t, 6*time.Minute)
	defer rejoinAtEnd(t, c, n)
	const manifest = "/etc/kubernetes/manifests/yurthub.yaml"
	orig, err := n.Output(ctx, "cat", manifest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Shell(ctx, "cp "+manifest+" /root/yurthub.yaml.orig && sed -i 's/^\\( *\\)- --v=\\(.*\\)$/\\1- --v=\\2\\n\\1- --no-such-flag=1/' "+manifest+
		" && grep -q no-such-flag "+manifest); err != nil {
		t.Fatalf("break the manifest: %v", err)
	}
	restore := func() {
		_, _ = n.Shell(context.Background(), "cp /root/yurthub.yaml.orig "+manifest+" && rm -f /root/yurthub.yaml.orig")
	}
	defer restore()
	var got map[string]string
	crashing := waitFor(t, 3*time.Minute, "doctor sees yurthub crash-looping", func() bool {
		got = doctorFindings(ctx, n)
		return strings.HasPrefix(got["yurthub-healthz"], "fail") &&
			strings.Contains(got["yurthub-container"], "a flag it does not know")
	})
	t.Logf("doctor on a crash-looping yurthub:\n  yurthub-container %s\n  yurthub-healthz %s", got["yurthub-container"], got["yurthub-healthz"])
	if !crashing {
		t.Fatalf("doctor does not name the crash loop: %q", got)
	}
	restore()
	if cur, _ := n.Output(ctx, "cat", manifest); cur != orig {
		t.Fatal("the manifest was not restored")
	}
	if !waitFor(t, 3*time.Minute, "yurthub healthy again", func() bool {
		return strings.HasPrefix(doctorFindings(ctx, n)["yurthub-healthz"], "ok")
	}) {
		t.Fatal("yurthub did not come back with its manifest restored")
	}
	if err := c.WaitNodeReady(ctx, n.Name, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
}

// doctorFindings runs doctor on n and returns "status: summary" by check.
func doctorFindings(ctx context.Context, n *cluster.Node) map[string]string {
	r, err := n.Run(ctx, "yurtadm", "doctor", "-o", "json", "--skip", "host")
	var rep struct {
		Findings []struct{ Name, Status, Summary string } `json:"findings"`
	}
	if err != nil || json.Unmarshal([]byte(r.Stdout), &rep) != nil {
		return nil
	}
	got := map[string]string{}
	for _, f := range rep.Findings {
		got[f.Name] = f.Status + ": " + f.Summary
	}
	return got
}
