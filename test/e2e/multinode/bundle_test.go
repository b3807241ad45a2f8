package multinode

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/yurtadm/yurtadm/pkg/host/hosttest"
)

// TestSupportBundleWhileCutOff: on an edge node joined by yurtadm and cut
// off from the cloud, `yurtadm doctor --collect` writes one file with the
// report, kubelet's journal under systemd, yurthub's log and state, the
// files join wrote, yurthub's endpoints and the index of its cache. Every
// credential the node really holds (its private keys, the tokens in its
// files) is looked for in every entry and must not be there.
func TestSupportBundleWhileCutOff(t *testing.T) {
	need(t)
	n := node(t, edge1Name)
	ctx := timeout(t, 4*time.Minute)
	const bundle = "/root/yurtadm-doctor.tar.gz"
	_, _ = n.Run(ctx, "rm", "-f", bundle)
	defer func() { _, _ = n.Run(ctx, "rm", "-f", bundle) }()

	secrets := nodeSecrets(t, n.Merged())
	keys := 0
	for _, s := range secrets {
		if s.kind == "private key" {
			keys++
		}
	}
	if keys < 2 {
		t.Fatalf("found %d private keys on %s; a joined node holds kubelet's and yurthub's", keys, n.Name)
	}

	if err := n.Partition(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = n.Heal(ctx) }()
	r, err := n.Run(ctx, "yurtadm", "doctor", "--collect", bundle)
	if err != nil {
		t.Fatal(err)
	}
	if r.ExitCode != 0 && r.ExitCode != 6 {
		t.Fatalf("yurtadm doctor --collect exited %d:\n%s", r.ExitCode, r)
	}
	if !strings.Contains(r.Stderr, "Support bundle written to "+bundle) {
		t.Errorf("doctor does not say where the bundle is:\n%s", r.Stderr)
	}
	path := filepath.Join(n.Merged(), bundle)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("bundle mode %v, want 0600", st.Mode().Perm())
	}
	files := hosttest.ReadTarGz(t, path)
	total := 0
	for _, b := range files {
		total += len(b)
	}
	measure(t, "doctor --collect on %s cut off: %s, %d files, %d bytes compressed, %d uncompressed",
		n.Name, r.Took.Round(100*time.Millisecond), len(files), st.Size(), total)

	for name, b := range files {
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s.value)) {
				t.Errorf("%s holds the %s from %s", name, s.kind, s.from)
			}
		}
	}
	var rep struct {
		Node     string `json:"node"`
		Findings []struct {
			Name, Status string
		} `json:"findings"`
	}
	if err := json.Unmarshal(files["doctor.json"], &rep); err != nil || rep.Node != n.Name || len(rep.Findings) < 10 {
		t.Errorf("doctor.json: %v, node %q, %d findings", err, rep.Node, len(rep.Findings))
	}
	for _, f := range rep.Findings {
		if f.Name == "cloud-connection" && f.Status == "ok" {
			t.Errorf("doctor reached the cloud from a node that is cut off")
		}
	}
	// What a maintainer reads, really there.
	want := map[string]string{
		"kubelet/journal.txt":                         "kubelet",
		"files/etc/kubernetes/manifests/yurthub.yaml": "yurthub",
		"yurthub/healthz.txt":                         "HTTP 200",
		"yurthub/metrics.txt":                         "node_yurthub_",
		"cache-index.txt":                             "kubelet/pods.v1.core/",
		"pki-index.txt":                               "certificate: subject",
		"versions.txt":                                "Kubernetes v",
		"runtime/containers.json":                     "yurt-hub",
	}
	for name, word := range want {
		if !strings.Contains(string(files[name]), word) {
			t.Errorf("%s does not hold %q (%d bytes)", name, word, len(files[name]))
		}
	}
	hubLog := false
	for name, b := range files {
		if strings.HasPrefix(name, "yurthub/") && strings.HasSuffix(name, ".log") && bytes.Contains(b, []byte("yurthub")) {
			hubLog = true
		}
	}
	if !hubLog {
		t.Errorf("no yurthub container log in the bundle: %v", sortedNames(files))
	}
}

// secret is a credential found on the node.
type secret struct{ kind, from, value string }

var (
	bootstrapTokenRE = regexp.MustCompile(`\b[a-z0-9]{6}\.([a-z0-9]{16})\b`)
	fieldRE          = regexp.MustCompile(`(?m)^\s*(?:token|client-key-data):\s*(\S+)`)
)

// nodeSecrets reads the node's private keys (one line of each key's
// base64 body) and the tokens and inlined keys in the files join wrote.
func nodeSecrets(t *testing.T, root string) []secret {
	t.Helper()
	var out []secret
	for _, dir := range []string{"var/lib/yurthub/pki", "var/lib/kubelet/pki", "etc/kubernetes/pki"} {
		entries, _ := os.ReadDir(filepath.Join(root, dir))
		for _, e := range entries {
			p := filepath.Join(root, dir, e.Name())
			if st, err := os.Lstat(p); err != nil || !st.Mode().IsRegular() {
				continue
			}
			data, _ := os.ReadFile(p)
			for {
				var blk *pem.Block
				blk, data = pem.Decode(data)
				if blk == nil {
					break
				}
				if strings.Contains(blk.Type, "PRIVATE KEY") {
					body := strings.Split(string(pem.EncodeToMemory(blk)), "\n")[1]
					out = append(out, secret{"private key", "/" + filepath.Join(dir, e.Name()), body})
				}
			}
		}
	}
	for _, f := range []string{"etc/kubernetes/manifests/yurthub.yaml", "var/lib/yurthub/bootstrap-hub.conf", "var/lib/openyurt/join-state.json",
		"etc/kubernetes/kubelet.conf", "var/lib/openyurt/kubelet.conf", "var/lib/yurthub/yurthub.conf"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			continue
		}
		for _, m := range bootstrapTokenRE.FindAllSubmatch(b, -1) {
			out = append(out, secret{"bootstrap token secret", "/" + f, string(m[1])})
		}
		for _, m := range fieldRE.FindAllSubmatch(b, -1) {
			if v := string(m[1]); len(v) > 12 && !strings.HasPrefix(v, "/") {
				out = append(out, secret{"credential field", "/" + f, v[:min(len(v), 64)]})
			}
		}
	}
	return out
}

func sortedNames(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
