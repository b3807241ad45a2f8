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
// labels, images, phase names and yurtctl flags, each run through the real
// command line against a test root. Every one must exit 2, name the bad
// value, print no token secret, and leave the test root byte-identical.

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
	add("host-root", "reset", "--force", "--host-root", "relative")
	add("output", "reset", "--force", "--host-root", root, "-o", "xml")
	add("flag", "reset", "--bogus")
	// token renew.
	add("token", "token", "renew", "--host-root", root, "--token", "abc")
	add("host-root", "token", "renew", "--host-root", "rel", "--token", goodToken)
	add("timeout", "token", "renew", "--host-root", root, "--token", goodToken, "--timeout", "0s")
	// yurtctl.
	for _, a := range [][]string{{"--concurrency", "0"}, {"--concurrency", "100000000"}, {"--yurthub-image", "a b"},
		{"--yurthub-extra-arg", "no-dashes"}, {"--yurthub-extra-arg", "--a=b\r"}, {"--node-image", "UPPER/x"}, {"-o", "yaml"}, {"--nodepool-name", "Bad_Pool"}} {
		add(strings.TrimPrefix(a[0], "--"), append([]string{"convert", "--yes", "--kubeconfig", filepath.Join(cfgDir, "missing.kubeconfig")}, a...)...)
	}
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
	before := snapshot(t, root)
	refused := 0
	for i, tc := range cases {
		prog := "yurtadm"
		if tc.args[0] == "convert" {
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
		if !strings.Contains(errOut, "error:") {
			t.Errorf("%s: no error line on stderr:\n%s", label, all)
		}
	}
	after := snapshot(t, root)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("the test root changed:\nbefore %v\nafter  %v", before, after)
	}
	t.Logf("bad inputs tried %d, refused cleanly (exit 2, named, no secret) %d, test root untouched: %v", len(cases), refused, fmt.Sprint(before) == fmt.Sprint(after))
}
