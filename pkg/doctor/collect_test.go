package doctor

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/host/hosttest"
)

// secrets planted on the node; none may reach a bundle.
type planted struct {
	token, tokenSecret, jwt, password, keyPEM, keyB64, keyBody, cachedSecret, linked string
}

// plantSecrets puts a credential everywhere a bundle reads: the yurthub
// manifest and bootstrap file, both kubelet kubeconfigs, the join state,
// containerd's config, kubelet's and yurthub's logs, yurthub's PKI, a
// cached Secret and a file behind a symlink.
func plantSecrets(t *testing.T, f *fixture) planted {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(key)
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	p := planted{
		token: "abcdef.0123456789abcdef", tokenSecret: "0123456789abcdef",
		jwt:      "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6a3ViZS1zeXN0ZW06ZGVmYXVsdCJ9.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU",
		password: "hunter2-registry-pass", keyPEM: keyPEM,
		keyB64: base64.StdEncoding.EncodeToString([]byte(keyPEM)), cachedSecret: "c3VwZXItc2VjcmV0LWRhdGE=",
		linked: "THE-FILE-BEHIND-A-LINK",
	}
	lines := strings.Split(strings.TrimSpace(keyPEM), "\n")
	p.keyBody = lines[1]

	f.manifest(constants.YurthubBootstrapModeToken, "--bootstrap-token="+p.token)
	f.write(constants.YurthubBootstrapFile, "apiVersion: v1\nkind: Config\nusers:\n- name: token-bootstrap-client\n  user:\n    token: "+p.token+"\n")
	f.write(constants.KubeletKubeconfig, "apiVersion: v1\nkind: Config\nusers:\n- name: default-auth\n  user:\n    client-certificate-data: QUJD\n    client-key-data: "+p.keyB64+"\n")
	f.write(constants.OpenYurtKubeletConfig, "apiVersion: v1\nkind: Config\nusers:\n- name: sa\n  user:\n    token: "+p.jwt+"\n")
	f.write(constants.JoinStateFile, `{"version":1,"discovery":{"token":"`+p.token+`","caCertHashes":["sha256:aa"]}}`)
	f.write("/etc/containerd/config.toml", "[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"r.example\".auth]\n  username = \"edge\"\n  password = \""+p.password+"\"\n")
	f.write(constants.YurthubClientCert, string(f.ca.issue(t, "system:node:"+testNode, f.now.Add(-time.Hour), f.now.Add(time.Hour)))+keyPEM)
	f.write("/etc/kubernetes/cache/kubelet/secrets.v1.core/default/db", `{"kind":"Secret","data":{"pw":"`+p.cachedSecret+`"}}`)
	f.write("/etc/kubernetes/cache/kubelet/configmaps.v1.core/default/app", `{"kind":"ConfigMap","data":{"a":"b"}}`)
	f.write("/root/elsewhere", p.linked)
	if err := os.Symlink(f.h.FS.Path("/root/elsewhere"), f.h.FS.Path("/etc/default/kubelet")); err != nil {
		if err := os.MkdirAll(f.h.FS.Path("/etc/default"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(f.h.FS.Path("/root/elsewhere"), f.h.FS.Path("/etc/default/kubelet")); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(f.kubeletLog, []byte("I0601 kubelet started with --token="+p.token+"\n"+
		"I0601 round_trippers.go: \"Authorization: Bearer "+p.jwt+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.containers[0].log = "I0601 options.go: JoinToken:" + p.token + "\n" + keyPEM
	return p
}

// collectAnswers scripts the commands only a bundle runs.
func collectAnswers(f *fixture) {
	real := "crictl --runtime-endpoint unix://" + f.h.FS.Path(socketPath) + " "
	f.sc.Prefixes = map[string]hosttest.Answer{
		real + "version":       {Out: "Version:  0.1.0\nRuntimeName:  containerd\nRuntimeVersion:  1.7.24\n"},
		real + "pods -o json":  {Out: `{"items":[]}`},
		"kubelet --version":    {Out: "Kubernetes v1.34.4\n"},
		real + "logs --tail 5": {Out: "fallback log\n"},
	}
	for _, c := range f.containers {
		f.sc.Prefixes[real+"logs --tail 5000 "+c.id] = hosttest.Answer{Out: "time=\"x\" msg=\"Config \\\"/etc/crictl.yaml\\\" does not exist\"\n" + c.log}
	}
}

func TestCollectBundleHoldsNoSecret(t *testing.T) {
	for _, tc := range []struct {
		name        string
		args        []string
		cloudDown   bool
		wantCache   bool
		hubStopped  bool
		wantMissing string
	}{
		{name: "default", wantMissing: "/etc/default/kubelet: a symbolic link"},
		{name: "with the cached objects", args: []string{"--collect-cache"}, wantCache: true},
		{name: "cloud unreachable and yurthub down", cloudDown: true, hubStopped: true, wantMissing: "yurthub/healthz.txt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			p := plantSecrets(t, f)
			if tc.cloudDown {
				f.unreachable()
			}
			if tc.hubStopped {
				f.healthz = nil
			}
			collectAnswers(f)
			out := filepath.Join(t.TempDir(), "bundle.tar.gz")
			rep, code, _ := f.run(append([]string{"--collect", out}, tc.args...)...)
			if code != cmdutil.ExitOK && code != cmdutil.ExitUnhealthy {
				t.Fatalf("exit code %d", code)
			}
			st, err := os.Stat(out)
			if err != nil {
				t.Fatalf("no bundle: %v", err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("bundle mode %v, want 0600", st.Mode().Perm())
			}
			files := hosttest.ReadTarGz(t, out)

			// Nothing secret, in any form, anywhere.
			for name, b := range files {
				for what, s := range map[string]string{"bootstrap token secret": p.tokenSecret, "JWT": p.jwt,
					"registry password": p.password, "private key (PEM body)": p.keyBody, "private key (base64)": p.keyB64[:40],
					"cached Secret": p.cachedSecret, "file behind a symlink": p.linked} {
					if bytes.Contains(b, []byte(s)) {
						t.Errorf("%s holds the %s", name, what)
					}
				}
				if bytes.Contains(b, []byte("PRIVATE KEY-----\nM")) {
					t.Errorf("%s holds a PEM private key", name)
				}
			}

			var idx bundleIndex
			if err := json.Unmarshal(files["bundle.json"], &idx); err != nil {
				t.Fatalf("bundle.json: %v", err)
			}
			var got Report
			if err := json.Unmarshal(files["doctor.json"], &got); err != nil || len(got.Findings) != len(rep.Findings) {
				t.Errorf("doctor.json is not the report printed (%v): %d findings, printed %d", err, len(got.Findings), len(rep.Findings))
			}
			for _, want := range []string{"versions.txt", "files" + constants.YurthubManifest, "files" + constants.KubeletKubeconfig,
				"files" + constants.JoinStateFile, "files" + constants.YurthubBootstrapFile, "kubelet/journal.txt",
				"runtime/containers.json", "yurthub/0-hub0000000000.log", "yurthub/0-hub0000000000.status.json",
				"cache-index.txt", "pki-index.txt"} {
				if _, found := files[want]; !found {
					t.Errorf("the bundle has no %s; it has %v", want, keys(files))
				}
			}
			// Redacted, not dropped: the operator sees where a secret was.
			for name, word := range map[string]string{"files" + constants.YurthubManifest: "--bootstrap-token=<redacted>",
				"files" + constants.KubeletKubeconfig: "client-key-data: <redacted>", "kubelet/journal.txt": "Bearer <redacted>",
				"yurthub/0-hub0000000000.log": "JoinToken:abcdef.<redacted>", "files" + constants.JoinStateFile: `"token":"<redacted>"`} {
				if !strings.Contains(string(files[name]), word) {
					t.Errorf("%s does not say %q:\n%s", name, word, files[name])
				}
			}
			if strings.Contains(string(files["yurthub/0-hub0000000000.log"]), "crictl.yaml") {
				t.Error("crictl's complaint about its config is in yurthub's log")
			}
			if !strings.Contains(string(files["cache-index.txt"]), "kubelet/pods.v1.core/default/app-1\t2\t") {
				t.Errorf("cache-index.txt does not list kubelet's cached pod with its size:\n%s", files["cache-index.txt"])
			}
			if !strings.Contains(string(files["pki-index.txt"]), `certificate: subject "CN=system:node:edge-1,O=system:nodes"`) {
				t.Errorf("pki-index.txt does not describe yurthub's certificate:\n%s", files["pki-index.txt"])
			}
			_, hasCM := files["cache/kubelet/configmaps.v1.core/default/app"]
			if hasCM != tc.wantCache {
				t.Errorf("cached ConfigMap in the bundle = %v, want %v", hasCM, tc.wantCache)
			}
			if _, found := files["cache/kubelet/secrets.v1.core/default/db"]; found {
				t.Error("a cached Secret is in the bundle")
			}
			if tc.wantMissing != "" && !strings.Contains(strings.Join(idx.Missing, "\n"), tc.wantMissing) {
				t.Errorf("bundle.json's missing list does not say %q: %q", tc.wantMissing, idx.Missing)
			}
			for _, e := range idx.Entries {
				if _, found := files[e.Name]; !found {
					t.Errorf("bundle.json lists %s, which is not in the bundle", e.Name)
				}
			}
			if tc.hubStopped {
				if _, found := files["yurthub/metrics.txt"]; found {
					t.Error("metrics of a yurthub that does not listen")
				}
			} else if !strings.Contains(string(files["yurthub/metrics.txt"]), "node_yurthub_proxy_traffic_collector") {
				t.Errorf("yurthub/metrics.txt is not yurthub's metrics:\n%s", files["yurthub/metrics.txt"])
			}
			// Nothing but the bundle is left in its directory.
			if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 1 {
				t.Errorf("the bundle's directory holds %d entries, want the bundle only", len(entries))
			}
		})
	}
}

func keys[V any](m map[string]V) []string { return sortedKeys(m) }

func TestCollectBadInput(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "old.tar.gz")
	if err := os.WriteFile(existing, []byte("an earlier bundle"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.tar.gz")
	if err := os.Symlink(filepath.Join(dir, "target"), link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		words string
	}{
		{"not a tar.gz", []string{"--collect", filepath.Join(dir, "bundle.zip")}, "must end in .tar.gz"},
		{"no such directory", []string{"--collect", filepath.Join(dir, "nope", "b.tar.gz")}, "does not exist"},
		{"the file exists", []string{"--collect", existing}, "already exists"},
		{"a dangling symlink", []string{"--collect", link}, "already exists"},
		{"--collect-cache alone", []string{"--collect-cache"}, "needs --collect"},
		{"an empty --collect", []string{"--collect", ""}, "must end in .tar.gz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			collectAnswers(f)
			var out, errOut bytes.Buffer
			cmd := newCommand(cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, f.deps())
			cmd.SetArgs(append([]string{"--host-root", f.h.FS.Root}, tc.args...))
			cmd.SilenceUsage, cmd.SilenceErrors = true, true
			err := cmd.Execute()
			if code := cmdutil.ExitCode(err); code != cmdutil.ExitUsage || !strings.Contains(err.Error(), tc.words) {
				t.Fatalf("exit %d, %v: want %d naming %q", code, err, cmdutil.ExitUsage, tc.words)
			}
			if len(f.sc.Ran) != 0 {
				t.Errorf("doctor ran %q before refusing its flags", f.sc.Ran)
			}
			if b, _ := os.ReadFile(existing); string(b) != "an earlier bundle" {
				t.Errorf("the existing file was changed: %q", b)
			}
			if _, err := os.Lstat(filepath.Join(dir, "target")); err == nil {
				t.Error("a file was written through the symlink")
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 2 {
				t.Errorf("%s holds %d entries, want the 2 planted", dir, len(entries))
			}
		})
	}
}

// TestCollectRefusesADirectoryItCannotWriteIn: the bundle is written
// last, so a directory doctor cannot write in is a usage error before
// any check runs, not a failure once all have.
func TestCollectRefusesADirectoryItCannotWriteIn(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "read-only")
	if err := os.Mkdir(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// root writes in a 0555 directory; nobody creates files in /proc.
		if runtime.GOOS != "linux" {
			t.Skip("needs a directory root cannot write in")
		}
		dir = "/proc"
	}
	f := newFixture(t)
	collectAnswers(f)
	var out, errOut bytes.Buffer
	cmd := newCommand(cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, f.deps())
	cmd.SetArgs([]string{"--host-root", f.h.FS.Root, "--collect", filepath.Join(dir, "b.tar.gz")})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	if code := cmdutil.ExitCode(err); code != cmdutil.ExitUsage || !strings.Contains(err.Error(), "cannot write in "+dir) {
		t.Fatalf("exit %d, %v: want %d naming the directory", code, err, cmdutil.ExitUsage)
	}
	if len(f.sc.Ran) != 0 || out.Len() != 0 {
		t.Errorf("doctor ran %q and printed %q before refusing its flags", f.sc.Ran, out.String())
	}
	if entries, _ := filepath.Glob(filepath.Join(dir, ".yurtadm-doctor-*")); len(entries) != 0 {
		t.Errorf("left %v behind", entries)
	}
}

func TestRedactSecrets(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"--bootstrap-token=abcdef.0123456789abcdef --v=2", "--bootstrap-token=<redacted> --v=2"},
		{"JoinToken:abcdef.0123456789abcdef,", "JoinToken:abcdef.<redacted>,"},
		{"    token: abcdef.0123456789abcdef", "    token: <redacted>"},
		{`  password = "x"`, `  password = <redacted>`},
		{`{"token":"t0k","name":"n"}`, `{"token":"<redacted>","name":"n"}`},
		{`{"token":""}`, `{"token":""}`},
		{"Authorization: Bearer abc.def", "Authorization: Bearer <redacted>"},
		{"client-certificate-data: QUJD", "client-certificate-data: QUJD"},
		{"-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", "-----BEGIN RSA PRIVATE KEY-----\n<redacted>\n-----END RSA PRIVATE KEY-----"},
		{"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"},
		{"I0601 nothing secret here", "I0601 nothing secret here"},
	} {
		got, n := redactSecrets([]byte(tc.in))
		if string(got) != tc.want {
			t.Errorf("redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if (n > 0) != (tc.in != tc.want) {
			t.Errorf("redact(%q) counted %d", tc.in, n)
		}
	}
}
