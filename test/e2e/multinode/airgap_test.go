package multinode

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/yurtadm/yurtadm/test/cluster"
)

// TestAirGappedJoin: a node whose runtime lacks yurthub's image, and which
// cannot pull (the harness has no registry, as an air-gapped site has
// none), is refused by join's ImagePull check before anything is written,
// naming the image and --image-archive. An archive made on another node by
// `yurtadm images save` and passed as --image-archive is loaded into its
// containerd and the join succeeds.
func TestAirGappedJoin(t *testing.T) {
	c := need(t)
	src, n := node(t, edge1Name), node(t, edge2Name)
	ctx := timeout(t, 8*time.Minute)

	// The bundle, made on a node that has the images.
	_, _ = src.Run(ctx, "rm", "-f", "/root/yurtadm-images.tar")
	defer func() { _, _ = src.Run(context.Background(), "rm", "-f", "/root/yurtadm-images.tar") }()
	r, err := src.Run(ctx, "yurtadm", "images", "save", "/root/yurtadm-images.tar", "--yurthub-image", cluster.YurthubImage)
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("yurtadm images save: %v\n%s", err, r)
	}
	if !strings.Contains(r.Stdout, cluster.YurthubImage) {
		t.Errorf("save did not name yurthub's image: %s", r.Stdout)
	}
	b, err := os.ReadFile(filepath.Join(src.Merged(), "root", "yurtadm-images.tar"))
	if err != nil || len(b) < 1<<20 {
		t.Fatalf("the archive: %d bytes, %v", len(b), err)
	}
	if err := os.WriteFile(filepath.Join(n.Merged(), "root", "yurtadm-images.tar"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	measure(t, "yurtadm images save: %d bytes (yurthub and pause) in %s", len(b), r.Took.Round(100*time.Millisecond))

	defer func() {
		// crictl rmi removed the image with every tag (the harness's
		// second yurthub tag too): load the harness's tarball again, so
		// the node has what the harness gave it.
		if r, err := n.Run(context.Background(), "ctr", "-n", "k8s.io", "images", "import", "/usr/local/share/ynode-images/common/yurthub.tar"); err != nil || r.ExitCode != 0 {
			t.Errorf("re-import the harness's yurthub image: %v\n%s", err, r)
		}
	}()
	defer func() {
		// Leave the node joined, with its image, as the other scenarios expect.
		if nodeReadyStatus(context.Background(), n.Name) != "True" {
			_, _ = n.Run(context.Background(), "ctr", "-n", "k8s.io", "images", "import", "/root/yurtadm-images.tar")
			_, _ = n.Run(context.Background(), "yurtadm", "reset", "--force")
			_ = c.Client.CoreV1().Nodes().Delete(context.Background(), n.Name, metav1.DeleteOptions{})
			if _, err := c.JoinNode(context.Background(), n); err != nil {
				t.Errorf("rejoin %s: %v", n.Name, err)
			}
		}
	}()
	if r, err := n.Run(ctx, "yurtadm", "reset", "--force"); err != nil || r.ExitCode != 0 {
		t.Fatalf("yurtadm reset: %v\n%s", err, r)
	}
	if err := c.Client.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{}); err != nil && !isNotFound(err) {
		t.Fatal(err)
	}
	if r, err := n.Run(ctx, "crictl", "rmi", cluster.YurthubImage); err != nil || r.ExitCode != 0 {
		t.Fatalf("crictl rmi: %v\n%s", err, r)
	}

	// Without the archive: refused before anything is written.
	tok, hash, err := c.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err = n.Run(ctx, c.JoinArgs(n, c.APIServer(), tok, hash)...)
	if err != nil {
		t.Fatal(err)
	}
	out := strings.ReplaceAll(r.Stdout+r.Stderr, tok, "<token>")
	if r.ExitCode != 3 || !strings.Contains(out, "ImagePull") || !strings.Contains(out, cluster.YurthubImage) || !strings.Contains(out, "--image-archive") {
		t.Fatalf("join without the image: exit %d, want 3 naming ImagePull, the image and --image-archive:\n%s", r.ExitCode, out)
	}
	for _, p := range []string{"/etc/kubernetes/manifests/yurthub.yaml", "/var/lib/kubelet/config.yaml", "/etc/kubernetes/pki/ca.crt", "/var/lib/openyurt"} {
		if _, err := n.Output(ctx, "test", "!", "-e", p); err != nil {
			t.Errorf("the refused join wrote %s", p)
		}
	}
	measure(t, "join on a node without yurthub's image: exit %d after %s", r.ExitCode, r.Took.Round(100*time.Millisecond))

	// With it: loaded, joined.
	r, err = c.JoinNode(ctx, n, "--image-archive", "/root/yurtadm-images.tar")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Stderr+r.Stdout, "Loaded /root/yurtadm-images.tar") {
		t.Errorf("join did not say it loaded the archive:\n%s", r.Stderr)
	}
	if _, err := n.Output(ctx, "crictl", "inspecti", "-q", cluster.YurthubImage); err != nil {
		t.Errorf("yurthub's image is not in the runtime after the join: %v", err)
	}
	measure(t, "join with --image-archive: %s", r.Took.Round(100*time.Millisecond))
}
