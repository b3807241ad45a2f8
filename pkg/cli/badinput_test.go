package cli

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
)

// The bad-input suite: malformed flags, config files, endpoints, names,
// labels, images, phase names, output paths, arguments, and the flags of
// every verb (join, preflight, reset, token renew, doctor, cache repair,
// upgrade yurthub, images, version, docs, yurtctl convert and revert and
// their node step), each run through the real command line against a test
// root. Every one must exit 2, name the bad value, say what to do (a hint
// line), print no token secret, and leave the test root and the files
// planted beside it byte-identical.

const (
	// Not the example token the hints show (abcdef.0123456789abcdef).
	goodToken  = "k3j9x2.q8w7e6r5t4y3u2i1"
	goodSecret = "q8w7e6r5t4y3u2i1"
	goodHash   = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
)

type badCase struct {
	args []string // after the program name
	// names is what the error must mention (the bad value, or the flag).
	names string
}

func badInputs(root string) []badCase {
	join := func(extra ...string) []string {
		return append([]string{"join", "10.0.0.1:6443", "--token", goodToken, "--discovery-token-ca-cert-hash", goodHash,
			"--host-root", root, "--node-name", "edge-1"}, extra...)
	}
	without := func(args []string, flag string) []string {
		var out []string
		for i := 0; i < len(args); i++ {
			if args[i] == flag {
				i++
				continue
			}
			out = append(out, args[i])
		}
		return out
	}
	var cs []badCase
	add := func(names string, args ...string) { cs = append(cs, badCase{args: args, names: names}) }
	for _, tok := range []string{"abc", "abcdef", "abcdef.", ".0123456789abcdef", "ABCDEF.0123456789abcdef", "abcdef.0123456789ABCDEF",
		"abcdef-0123456789abcdef", "abcdef.0123456789abcde", "abcdef.0123456789abcdef0", "abcdef.01234567 9abcdef", "abc def.0123456789abcdef", "abcdef.0123456789abcde\n"} {
		add("token", append(without(join(), "--token"), "--token", tok)...)
	}
	for _, h := range []string{"sha256:", "sha256:zz", "md5:" + strings.Repeat("0", 32), strings.Repeat("0", 64), "sha256:" + strings.Repeat("0", 63),
		"sha256:" + strings.Repeat("0", 65), "sha256:" + strings.Repeat("g", 64), "sha256 " + strings.Repeat("0", 64), "sha512:" + strings.Repeat("0", 128)} {
		add("hash", append(without(join(), "--discovery-token-ca-cert-hash"), "--discovery-token-ca-cert-hash", h)...)
	}
	for _, ep := range []string{"", "http://10.0.0.1:6443", "10.0.0.1:0", "10.0.0.1:99999", "10.0.0.1:-1", "10.0.0.1:port", "[::1", "10.0.0.1:6443/path",
		"user@10.0.0.1:6443", "10.0.0.1:6443 10.0.0.2:6443", "a b:6443"} {
		args := join()
		args[1] = ep
		add("endpoint", args...)
	}
	for _, n := range []string{"Edge-1", "edge_1", "-edge", "edge-", strings.Repeat("a", 254), "edge 1", "edge/1", "ed..ge", "EDGE"} {
		add("node name", append(without(join(), "--node-name"), "--node-name", n)...)
	}
	for _, p := range []string{"Hangzhou", "hang_zhou", "-pool", "pool-", strings.Repeat("p", 64), "po ol", "po.ol"} {
		add("nodepool", append(join(), "--nodepool-name", p)...)
	}
	for _, l := range []string{"=v", "k=v=w", "k=" + strings.Repeat("v", 64), "bad key=v", "k=bad value", "openyurt.io/is-edge-worker=false",
		"apps.openyurt.io/nodepool=x", "-k=v", "k/=v", "a/b/c=v"} {
		add("label", append(join(), "--node-labels", l)...)
	}
	for _, img := range []string{"", " ", "a b", "UPPER/case:v1", "img:", "img@sha256:12", "img\r", "x:y\n  command: [sh]", "-img", `i"mg`, "img#x", "a:b:c"} {
		add("image", append(join(), "--yurthub-image", img)...)
	}
	for _, nt := range []string{"fog", "Edge", "EDGE", "", "edge,cloud"} {
		add("node type", append(join(), "--node-type", nt)...)
	}
	for _, d := range []string{"0s", "-1s", "1ns", "999ms", "1000000h", "25h", "abc", "5"} {
		add("timeout", append(join(), "--timeout", d)...)
	}
	for _, s := range []string{"tcp://10.0.0.1:1234", "npipe:////./pipe/x", "unix://", "relative.sock"} {
		add("cri", append(join(), "--cri-socket", s)...)
	}
	for _, o := range []string{"yaml", "JSON", "table"} {
		add("output", append(join(), "-o", o)...)
	}
	for _, m := range []string{"cert", "Token", ""} {
		add("bootstrap-mode", append(join(), "--yurthub-bootstrap-mode", m)...)
	}
	for _, a := range []string{"/nonexistent/bundle.tar", root, "/dev/null", ""} {
		add("image-archive", append(join(), "--image-archive", a)...)
	}
	for _, sp := range []string{"bogus", "preflight,bogus", "preflight,discovery,images,kubelet-files,yurthub,kubelet-start,wait-yurthub,kubelet-yurthub,wait-ready"} {
		add("phase", append(join(), "--skip-phases", sp)...)
	}
	for _, hr := range []string{"relative/root", "/nonexistent/root", "./root"} {
		add("host-root", append(without(join(), "--host-root"), "--host-root", hr)...)
	}
	for _, ad := range []string{"5x", "500ms", "-1h", "", "forever", "6 h"} {
		add("autonomy-duration", append(join(), "--autonomy-duration", ad)...)
	}
	for _, ns := range []string{"Kube_System", "-ns", "ns-", "", "kube.system", strings.Repeat("n", 64)} {
		add("namespace", append(join(), "--namespace", ns)...)
	}
	add("dry-run", append(join(), "--dry-run=maybe")...)
	add("argument", append(join(), "10.0.0.2:6443")...)
	// join's phases take join's flags and check them the same way.
	add("host-root", append(append([]string{"join", "phase", "preflight"}, without(join(), "--host-root")[1:]...), "--host-root", "relative")...)
	add("timeout", append(append([]string{"join", "phase", "wait-ready"}, join()[1:]...), "--timeout", "0s")...)
	add("node name", append(append([]string{"join", "phase", "kubelet-start"}, without(join(), "--node-name")[1:]...), "--node-name", "Edge-1")...)
	add("ignore-preflight-errors", append(join(), "--ignore-preflight-errors", "NoSuchCheck")...)
	add("unsafe", append(join(), "--discovery-token-unsafe-skip-ca-verification")...)
	add("token", without(join(), "--token")...)
	add("hash", without(join(), "--discovery-token-ca-cert-hash")...)
	add("phase", "join", "phase", "bogus", "--token", goodToken)
	add("phase", "join", "phase")
	add("flag", append(join(), "--no-such-flag")...)
	add("argument", append(join(), "extra")...)
	// Config files.
	cfgs := map[string]string{
		"two.yaml":   "apiVersion: yurtadm.openyurt.io/v1alpha1\nkind: JoinConfiguration\n---\nkind: JoinConfiguration\n",
		"field.yaml": "apiVersion: yurtadm.openyurt.io/v1alpha1\nkind: JoinConfiguration\nnodeTyp: edge\n",
		"kind.yaml":  "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n",
		"args.yaml":  "apiVersion: yurtadm.openyurt.io/v1alpha1\nkind: JoinConfiguration\nyurthubExtraArgs: [\"--a=b\\r\"]\n",
		"args2.yaml": "apiVersion: yurtadm.openyurt.io/v1alpha1\nkind: JoinConfiguration\nyurthubExtraArgs: [\"no-dashes\"]\n",
		"bad.yaml":   "apiVersion: [\n",
		"empty.yaml": "# nothing\n",
	}
	cfgDir := filepath.Join(filepath.Dir(root), "configs")
	_ = os.MkdirAll(cfgDir, 0o755)
	names := make([]string, 0, len(cfgs))
	for n := range cfgs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(cfgDir, n)
		_ = os.WriteFile(p, []byte(cfgs[n]), 0o600)
		names := "config"
		if strings.HasPrefix(n, "args") {
			names = "yurthubExtraArgs" // the entry is named, from the file
		}
		add(names, append(join(), "--config", p)...)
	}
	add("config", append(join(), "--config", "/dev/zero")...)
	add("config", append(join(), "--config", filepath.Join(cfgDir, "missing.yaml"))...)
	// preflight and reset.
	add("host-root", "preflight", "--host-root", "relative")
	add("cri", "preflight", "--host-root", root, "--cri-socket", "tcp://x:1")
	add("output", "preflight", "--host-root", root, "-o", "yaml")
	add("ignore-preflight-errors", "preflight", "--host-root", root, "--ignore-preflight-errors", "Nope")
	for _, v := range []string{"banana", "v1.x", "latest", " "} {
		add("kubernetes-version", "preflight", "--host-root", root, "--kubernetes-version", v)
	}
	add("node-name", "preflight", "--host-root", root, "--node-name", "Edge_1")
	add("cri", "preflight", "--host-root", root, "--cri-socket", "relative.sock")
	add("argument", "preflight", "--host-root", root, "extra")
	add("host-root", "reset", "--force", "--host-root", "relative")
	add("output", "reset", "--force", "--host-root", root, "-o", "xml")
	add("flag", "reset", "--bogus")
	for _, s := range []string{"tcp://10.0.0.1:1234", "relative.sock", "unix://"} {
		add("cri", "reset", "--force", "--host-root", root, "--cri-socket", s)
	}
	for _, sp := range []string{"bogus", "stop-kubelet,bogus", "remove-files/bogus"} {
		add("phase", "reset", "--force", "--host-root", root, "--skip-phases", sp)
	}
	add("force", "reset", "--force=maybe", "--host-root", root)
	add("extra", "reset", "--force", "--host-root", root, "extra")
	add("phase", "reset", "phase", "bogus", "-f", "--host-root", root)
	add("phase", "reset", "phase", "remove-files", "bogus", "-f", "--host-root", root)
	add("extra", "reset", "phase", "stop-kubelet", "-f", "--host-root", root, "extra")
	add("host-root", "reset", "phase", "stop-kubelet", "-f", "--host-root", "relative")
	add("output", "reset", "phase", "remove-containers", "-f", "--host-root", root, "-o", "xml")
	add("flag", "reset", "phase", "remove-files", "all", "-f", "--host-root", root, "--cri-socket", "unix:///run/x.sock")
	// token renew.
	add("token", "token", "renew", "--host-root", root, "--token", "abc")
	add("host-root", "token", "renew", "--host-root", "rel", "--token", goodToken)
	add("timeout", "token", "renew", "--host-root", root, "--token", goodToken, "--timeout", "0s")
	add("timeout", "token", "renew", "--host-root", root, "--token", goodToken, "--timeout", "-1s")
	add("timeout", "token", "renew", "--host-root", root, "--token", goodToken, "--timeout", "abc")
	add("output", "token", "renew", "--host-root", root, "--token", goodToken, "-o", "yaml")
	add("host-root", "token", "renew", "--host-root", "/nonexistent/root", "--token", goodToken)
	add("token-file", "token", "renew", "--host-root", root, "--token-file", filepath.Join(cfgDir, "missing.token"))
	add("token-file", "token", "renew", "--host-root", root, "--token-file", cfgDir)
	add("mutually exclusive", "token", "renew", "--host-root", root, "--token", goodToken, "--token-file", "-")
	add("token", "token", "renew", "--host-root", root, "--token-file", "-") // stdin is empty
	add("token", "token", "renew", "--host-root", root)                      // no token, no terminal
	add("extra", "token", "renew", "--host-root", root, "--token", goodToken, "extra")
	add("extra", "token", "extra")
	// doctor: it only reads, but --collect writes a bundle outside the
	// test root, which must be a new .tar.gz in a directory doctor can
	// write in; the test root's parent holds the planted paths.
	outDir := filepath.Join(filepath.Dir(root), "out")
	_ = os.MkdirAll(filepath.Join(outDir, "dir.tar.gz"), 0o755)
	_ = os.WriteFile(filepath.Join(outDir, "old.tar.gz"), []byte("an earlier bundle"), 0o600)
	_ = os.Symlink(filepath.Join(outDir, "nowhere"), filepath.Join(outDir, "dangling.tar.gz"))
	_ = os.Symlink(filepath.Join(outDir, "old.tar.gz"), filepath.Join(outDir, "link.tar.gz"))
	_ = os.Symlink(filepath.Join(outDir, "dir.tar.gz"), filepath.Join(outDir, "linkdir.tar.gz"))
	doctor := func(extra ...string) []string { return append([]string{"doctor", "--host-root", root}, extra...) }
	for _, c := range []string{filepath.Join(outDir, "bundle.zip"), filepath.Join(outDir, "bundle.tar"), "",
		filepath.Join(outDir, "old.tar.gz"), filepath.Join(outDir, "dir.tar.gz"), filepath.Join(outDir, "dangling.tar.gz"),
		filepath.Join(outDir, "link.tar.gz"), filepath.Join(outDir, "linkdir.tar.gz"), filepath.Join(outDir, "missing", "b.tar.gz"),
		filepath.Join(outDir, "old.tar.gz", "b.tar.gz"), filepath.Join(outDir, "linkdir.tar.gz", "..", "missing", "b.tar.gz"),
		"/proc/b.tar.gz"} { // nobody, root included, creates a file in /proc
		add("collect", doctor("--collect", c)...)
	}
	if os.Geteuid() != 0 { // root writes in a 0555 directory
		ro := filepath.Join(outDir, "read-only")
		_ = os.Mkdir(ro, 0o555)
		add("collect", doctor("--collect", filepath.Join(ro, "b.tar.gz"))...)
	}
	add("collect", doctor("--collect-cache")...)
	add("collect", doctor("--collect-cache", "--collect", filepath.Join(outDir, "old.tar.gz"))...)
	for _, sk := range []string{"bogus", "host/Bogus", "yurthub-healthz,nope", "host/", "yurthub", "preflight"} {
		add("unknown check", doctor("--skip", sk)...)
	}
	for _, d := range []string{"0s", "-1s", "abc", "5"} {
		add("timeout", doctor("--timeout", d)...)
	}
	add("output", doctor("-o", "yaml")...)
	add("cri", doctor("--cri-socket", "tcp://10.0.0.1:1234")...)
	add("cri", doctor("--cri-socket", "relative.sock")...)
	add("node-name", doctor("--node-name", "Edge_1")...)
	add("node-name", doctor("--node-name", "-edge")...)
	add("kubeconfig", doctor("--kubeconfig", filepath.Join(cfgDir, "missing.kubeconfig"))...)
	add("kubeconfig", doctor("--kubeconfig", cfgDir)...)
	add("kubelet-log", doctor("--kubelet-log", filepath.Join(cfgDir, "missing.log"))...)
	add("kubelet-log", doctor("--kubelet-log", cfgDir)...)
	add("host-root", "doctor", "--host-root", "relative")
	add("host-root", "doctor", "--host-root", "/nonexistent/root")
	add("verbose", doctor("--verbose=maybe")...)
	add("argument", doctor("extra")...)
	add("flag", doctor("--wait", "1m")...)
	// yurtadm cache repair and yurtadm upgrade yurthub: doctor's checks
	// of the flags they share, and their --wait.
	for _, verb := range [][]string{{"cache", "repair"}, {"upgrade", "yurthub"}} {
		cmd := func(extra ...string) []string {
			return append(append(append([]string{}, verb...), "--host-root", root), extra...)
		}
		for _, d := range []string{"0s", "-5s", "abc"} {
			add("timeout", cmd("--timeout", d)...)
			add("wait", cmd("--wait", strings.Replace(d, "5s", "1m", 1))...)
		}
		add("output", cmd("-o", "yaml")...)
		add("cri", cmd("--cri-socket", "tcp://10.0.0.1:1234")...)
		add("node-name", cmd("--node-name", "Bad_Node")...)
		add("host-root", append(append([]string{}, verb...), "--host-root", "relative")...)
		add("host-root", append(append([]string{}, verb...), "--host-root", "/nonexistent/root")...)
		add("dry-run", cmd("--dry-run=perhaps")...)
		add("argument", cmd("extra")...)
		add("flag", cmd("--skip", "yurthub-healthz")...)
		add("flag", cmd("--collect", filepath.Join(outDir, "b.tar.gz"))...)
		add("extra", verb[0], "extra")
	}
	add("kubeconfig", "cache", "repair", "--host-root", root, "--kubeconfig", filepath.Join(cfgDir, "missing.kubeconfig"))
	add("kubeconfig", "cache", "repair", "--host-root", root, "--dry-run", "--kubeconfig", cfgDir)
	add("force", "cache", "repair", "--host-root", root, "--force=maybe")
	add("flag", "upgrade", "yurthub", "--host-root", root, "--kubeconfig", filepath.Join(cfgDir, "missing.kubeconfig"))
	// images, version and docs.
	for _, sub := range []string{"list", "save"} {
		img := func(extra ...string) []string {
			args := append([]string{"images", sub, "--host-root", root}, extra...)
			if sub == "save" {
				args = append(args, filepath.Join(outDir, "images.tar"))
			}
			return args
		}
		for _, im := range []string{"", "a b", "UPPER/case:v1", "img@sha256:12"} {
			add("image", img("--yurthub-image", im)...)
		}
		add("cri", img("--cri-socket", "tcp://10.0.0.1:1234")...)
		add("host-root", img("--host-root", "relative")...)
	}
	add("output", "images", "list", "--host-root", root, "-o", "yaml")
	add("extra", "images", "list", "--host-root", root, "extra")
	add("file name", "images", "save", "--host-root", root)
	add("file name", "images", "save", "--host-root", root, filepath.Join(outDir, "a.tar"), filepath.Join(outDir, "b.tar"))
	add("exists", "images", "save", "--host-root", root, filepath.Join(outDir, "old.tar.gz"))
	add("exists", "images", "save", "--host-root", root, filepath.Join(outDir, "dangling.tar.gz"))
	add("not a directory", "images", "save", "--host-root", root, filepath.Join(outDir, "missing", "images.tar"))
	add("not a directory", "images", "save", "--host-root", root, filepath.Join(outDir, "old.tar.gz", "images.tar"))
	add("flag", "images", "save", "--host-root", root, "-o", "json", filepath.Join(outDir, "images.tar"))
	add("extra", "images", "extra")
	add("output", "version", "-o", "yaml")
	add("extra", "version", "extra")
	add("extra", "docs", "extra")
	add(`"abc"`, "-v", "abc", "version")
	// yurtctl.
	for _, a := range [][]string{{"--concurrency", "0"}, {"--concurrency", "100000000"}, {"--yurthub-image", "a b"},
		{"--yurthub-extra-arg", "no-dashes"}, {"--yurthub-extra-arg", "--a=b\r"}, {"--node-image", "UPPER/x"}, {"-o", "yaml"}, {"--nodepool-name", "Bad_Pool"},
		{"--namespace", "Kube_System"}, {"--timeout", "0s"}, {"--timeout", "-1m"}, {"--timeout", "abc"}, {"--helm", ""}, {"--helm", " "},
		{"--chart-source", ""}, {"--chart-source", "charts\n"}, {"--yurt-manager-image", "a b"}, {"--yurt-manager-image", "img@sha256:" + strings.Repeat("0", 64)},
		{"--yurthub-image", "img@sha256:" + strings.Repeat("0", 64)}, {"--yurthub-upgrade-strategy", "ota"}, {"--yurthub-upgrade-strategy", "RollingUpdate"},
		{"--yurthub-bootstrap-mode", "cert"}, {"--cloud-nodes", "Bad_Node"}, {"--autonomous-nodes", "node_1"}, {"--dry-run=maybe"}, {"--yes=maybe"},
		{"--yurt-tunnel-server-image", "x"}, {"--yurt-tunnel-agent-image", "x"}, {"--deploy-yurttunnel"}, {"--enable-app-manager"},
		{"--yurt-app-manager-image", "x"}, {"--provider", "minikube"}, {"--kubeadm-conf-path", "/x"}, {"--pod-manifest-path", "/x"}, {"--system-architecture", "arm64"}} {
		name := strings.TrimPrefix(a[0], "--")
		name, _, _ = strings.Cut(name, "=")
		add(name, append([]string{"convert", "--yes", "--kubeconfig", filepath.Join(cfgDir, "missing.kubeconfig")}, a...)...)
	}
	add("phase", "convert", "--yes", "--kubeconfig", filepath.Join(cfgDir, "missing.kubeconfig"), "--skip-phases", "bogus")
	add("extra", "convert", "--yes", "--kubeconfig", filepath.Join(cfgDir, "missing.kubeconfig"), "extra")
	add("phase", "convert", "phase", "bogus", "--yes", "--kubeconfig", filepath.Join(cfgDir, "missing.kubeconfig"))
	add("concurrency", "convert", "phase", "nodes", "--yes", "--kubeconfig", filepath.Join(cfgDir, "missing.kubeconfig"), "--concurrency", "0")
	add("yurthub-image", "convert", "phase", "control-plane", "--yes", "--kubeconfig", filepath.Join(cfgDir, "missing.kubeconfig"), "--yurthub-image", "a b")
	add("extra", "convert", "phase", "labels", "--yes", "--kubeconfig", filepath.Join(cfgDir, "missing.kubeconfig"), "extra")
	for _, a := range [][]string{{"--concurrency", "0"}, {"--concurrency", "1001"}, {"--timeout", "0s"}, {"--namespace", "Bad_NS"}, {"-o", "yaml"},
		{"--node-image", "a b"}, {"--helm", ""}, {"--skip-phases", "bogus"}, {"--yurthub-image", "x"}, {"extra"}} {
		name := map[string]string{"-o": "output", "--skip-phases": "phase", "--yurthub-image": "flag", "extra": "extra"}[a[0]]
		if name == "" {
			name = strings.TrimPrefix(a[0], "--")
		}
		add(name, append([]string{"revert", "--yes", "--kubeconfig", filepath.Join(cfgDir, "missing.kubeconfig")}, a...)...)
	}
	add("phase", "revert", "phase", "bogus", "--yes", "--kubeconfig", filepath.Join(cfgDir, "missing.kubeconfig"))
	// The node step the Jobs of convert and revert run (hidden): what the
	// master side passes is checked again before the node is looked at.
	node := func(action string, extra ...string) []string {
		return append([]string{action, "node", "--host-root", root, "--node-name", "edge-1", "--termination-log", ""}, extra...)
	}
	for _, action := range []string{"convert", "revert"} {
		add("node-name", append(node(action), "--node-name", "Bad_Node")...)
		add("timeout", append(node(action), "--timeout", "0s")...)
		add("host-root", append(node(action), "--host-root", "relative/root")...)
		add("host-root", append(node(action), "--host-root", "/nonexistent/root")...)
		add("extra", append(node(action), "extra")...)
	}
	if os.Getenv("NODE_NAME") == "" { // its default
		add("node name", "convert", "node", "--host-root", root, "--termination-log", "")
	}
	add("yurthub-image", append(node("convert"), "--yurthub-image", "a b")...)
	add("yurthub-extra-arg", append(node("convert"), "--yurthub-extra-arg", "no-dashes")...)
	add("nodepool", append(node("convert"), "--nodepool-name", "Bad_Pool")...)
	add("namespace", append(node("convert"), "--namespace", "Kube_System")...)
	add("unknown command", "frobnicate")
	return cs
}

// snapshot hashes every file, link and directory below root.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, _ := d.Info()
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			v += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			l, _ := os.Readlink(p)
			v += " -> " + l
		}
		m[p] = v
		return nil
	})
	return m
}

func TestBadInputIsRefusedCleanly(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	for _, d := range []string{"etc/kubernetes/manifests", "var/lib/kubelet", "var/lib/yurthub"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/kubernetes/manifests/other.yaml"), []byte("kind: Pod\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := badInputs(root)
	if len(cases) < 100 {
		t.Fatalf("only %d bad inputs", len(cases))
	}
	// The test root and, beside it, the config files and the paths
	// planted for --collect and images save.
	before := snapshot(t, base)
	refused := 0
	for i, tc := range cases {
		prog := "yurtadm"
		if tc.args[0] == "convert" || tc.args[0] == "revert" {
			prog = "yurtctl"
		}
		code, out, errOut := run(append([]string{prog}, tc.args...)...)
		all := out + errOut
		label := fmt.Sprintf("#%d %s %q", i, prog, tc.args)
		switch {
		case code != cmdutil.ExitUsage:
			t.Errorf("%s: exit %d, want %d\n%s", label, code, cmdutil.ExitUsage, all)
		case !strings.Contains(strings.ToLower(all), strings.ToLower(tc.names)):
			t.Errorf("%s: the error does not name %s:\n%s", label, tc.names, all)
		case strings.Contains(all, goodSecret):
			t.Errorf("%s: printed the token secret:\n%s", label, all)
		default:
			refused++
		}
		if !strings.Contains(errOut, "\nhint: ") {
			t.Errorf("%s: no hint:\n%s", label, all)
		}
		if !strings.Contains(errOut, "error:") {
			t.Errorf("%s: no error line on stderr:\n%s", label, all)
		}
	}
	after := snapshot(t, base)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("the test root changed:\nbefore %v\nafter  %v", before, after)
	}
	t.Logf("bad inputs tried %d, refused cleanly (exit 2, named, no secret) %d, test root untouched: %v", len(cases), refused, fmt.Sprint(before) == fmt.Sprint(after))
}
