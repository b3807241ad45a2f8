package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// writeTree writes files (path inside root -> content) under root.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const unitPath = "/lib/systemd/system/demo.service"

// unitEnv returns the unit's Environment= settings without PATH.
func unitEnv(t *testing.T, root string) ([]string, *Unit) {
	t.Helper()
	u, err := loadUnit(root, "demo.service")
	if err != nil {
		t.Fatalf("loadUnit: %v", err)
	}
	env, err := u.Environment(root)
	if err != nil {
		t.Fatalf("Environment: %v", err)
	}
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, "PATH=") {
			out = append(out, e)
		}
	}
	return out, u
}

func TestEnvironmentQuoting(t *testing.T) {
	tests := []struct {
		name  string
		lines string
		want  []string
	}{
		{"quoted and unquoted on one line", `Environment="A=1 2" "B=3" C=4`, []string{"A=1 2", "B=3", "C=4"}},
		{"quote in the middle of a word", `Environment=A="x y"z`, []string{"A=x yz"}},
		{"single quotes", `Environment='A=$x "y"'`, []string{`A=$x "y"`}},
		{"later assignment replaces", "Environment=A=1\nEnvironment=A=2 B=1", []string{"A=2", "B=1"}},
		{"empty assignment resets", "Environment=A=1\nEnvironment=\nEnvironment=B=2", []string{"B=2"}},
		{"C escapes", `Environment=A=a\x41\tb "B=\"q\""`, []string{"A=aA\tb", `B="q"`}},
		{"invalid assignments ignored", `Environment=1X=2 Y=ok NOEQ`, []string{"Y=ok"}},
		{"specifiers", `Environment=N=%n P=%p Q=100%%`, []string{"N=demo.service", "P=demo", "Q=100%"}},
		{"unbalanced quote ignores the rest", `Environment=A=1 "B=2`, []string{"A=1"}},
		{"empty value", `Environment=E=`, []string{"E="}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, map[string]string{unitPath: "[Service]\nExecStart=/bin/true\n" + tc.lines + "\n"})
			got, _ := unitEnv(t, root)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("env = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestEnvironmentFile(t *testing.T) {
	tests := []struct {
		name    string
		service string
		files   map[string]string
		want    []string
		wantErr string
	}{
		{
			name:    "optional and missing",
			service: "Environment=A=1\nEnvironmentFile=-/etc/default/nothere",
			want:    []string{"A=1"},
		},
		{
			name:    "required and missing",
			service: "EnvironmentFile=/etc/default/nothere",
			wantErr: "Failed to load environment files",
		},
		{
			name:    "file overrides Environment= whatever the order",
			service: "EnvironmentFile=/etc/default/demo\nEnvironment=A=unit B=unit",
			files:   map[string]string{"/etc/default/demo": "A=file\n"},
			want:    []string{"B=unit", "A=file"},
		},
		{
			name:    "later file overrides earlier",
			service: "EnvironmentFile=-/etc/default/one\nEnvironmentFile=-/etc/default/two",
			files:   map[string]string{"/etc/default/one": "A=one\nB=one\n", "/etc/default/two": "A=two\n"},
			want:    []string{"B=one", "A=two"},
		},
		{
			name:    "empty EnvironmentFile= resets the list",
			service: "EnvironmentFile=/etc/default/nothere\nEnvironmentFile=\nEnvironmentFile=/etc/default/one",
			files:   map[string]string{"/etc/default/one": "A=one\n"},
			want:    []string{"A=one"},
		},
		{
			name:    "glob",
			service: "EnvironmentFile=/etc/demo/*.env",
			files:   map[string]string{"/etc/demo/a.env": "A=a\n", "/etc/demo/b.env": "B=b\n"},
			want:    []string{"A=a", "B=b"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			files := map[string]string{unitPath: "[Service]\nExecStart=/bin/true\n" + tc.service + "\n"}
			for k, v := range tc.files {
				files[k] = v
			}
			writeTree(t, root, files)
			u, err := loadUnit(root, "demo.service")
			if err != nil {
				t.Fatal(err)
			}
			env, err := u.Environment(root)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if _, cerr := u.Command(root); cerr == nil {
					t.Fatal("Command succeeded with a missing required EnvironmentFile")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if env[0] != "PATH="+defaultPath {
				t.Errorf("env[0] = %q, want the default PATH", env[0])
			}
			if got := env[1:]; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("env = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseEnvFile(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{
		{"plain", "A=1\nB=two words\n", []string{"A=1", "B=two words"}},
		{"comments and blank lines", "# c\n; c\n\n  A=1\n", []string{"A=1"}},
		{"double quotes", `A="x y \"q\" \$v \n"` + "\n", []string{`A=x y "q" $v \n`}},
		{"single quotes are literal", `A='x \"y\" $v'` + "\n", []string{`A=x \"y\" $v`}},
		{"spaces around = and trailing spaces", "A = v  \n", []string{"A=v"}},
		{"backslash outside quotes", `A=a\ b\\c` + "\n", []string{`A=a b\c`}},
		{"escaped newline continues", "A=line1\\\nline2\n", []string{"A=line1line2"}},
		{"quoted value spanning lines", "A=\"l1\nl2\"\n", []string{"A=l1\nl2"}},
		{"no trailing newline", "A=1", []string{"A=1"}},
		{"later wins", "A=1\nA=2\n", []string{"A=2"}},
		{"invalid key ignored", "export A=1\n1B=2\nC=3\n", []string{"C=3"}},
		{"line without =", "JUSTAKEY\nA=1\n", []string{"A=1"}},
		{"CRLF", "A=1\r\nB=2\r\n", []string{"A=1", "B=2"}},
		{
			"kubeadm-flags.env",
			`KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.10"` + "\n",
			[]string{"KUBELET_KUBEADM_ARGS=--container-runtime-endpoint=unix:///run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.10"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseEnvFile(tc.text); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parseEnvFile(%q) = %q, want %q", tc.text, got, tc.want)
			}
		})
	}
}

func TestExecStart(t *testing.T) {
	tests := []struct {
		name       string
		service    string
		dropIn     string // /etc/systemd/system/demo.service.d/override.conf, if set
		wantPath   string
		wantArgv   []string
		wantIgnore bool
		wantErr    string
	}{
		{
			name:     "plain",
			service:  "ExecStart=/bin/echo a  b",
			wantPath: "/bin/echo", wantArgv: []string{"/bin/echo", "a", "b"},
		},
		{
			name:     "empty ExecStart= in a drop-in resets",
			service:  "ExecStart=/bin/echo unit",
			dropIn:   "[Service]\nExecStart=\nExecStart=/bin/echo dropin",
			wantPath: "/bin/echo", wantArgv: []string{"/bin/echo", "dropin"},
		},
		{
			name:    "a second ExecStart= without the reset is refused, as by systemd",
			service: "ExecStart=/bin/echo unit",
			dropIn:  "[Service]\nExecStart=/bin/echo dropin",
			wantErr: "more than one ExecStart=",
		},
		{
			name:    "reset and nothing after it",
			service: "ExecStart=/bin/echo unit",
			dropIn:  "[Service]\nExecStart=",
			wantErr: "no ExecStart=",
		},
		{
			name:     "$VAR as a word is split, quotes in the value honoured",
			service:  "Environment=\"ARGS=--a=1  --b='x y'\"\nExecStart=/bin/echo $ARGS end",
			wantPath: "/bin/echo", wantArgv: []string{"/bin/echo", "--a=1", "--b=x y", "end"},
		},
		{
			name:     "${VAR} is not split",
			service:  "Environment=\"ARGS=--a=1 --b=2\"\nExecStart=/bin/echo ${ARGS} x${ARGS}y",
			wantPath: "/bin/echo", wantArgv: []string{"/bin/echo", "--a=1 --b=2", "x--a=1 --b=2y"},
		},
		{
			name:     "$VAR inside a word is left alone",
			service:  "Environment=A=1\nExecStart=/bin/echo --x=$A",
			wantPath: "/bin/echo", wantArgv: []string{"/bin/echo", "--x=$A"},
		},
		{
			name:     "unset: $VAR gives no word, ${VAR} an empty one",
			service:  "ExecStart=/bin/echo $NOPE ${NOPE} end",
			wantPath: "/bin/echo", wantArgv: []string{"/bin/echo", "", "end"},
		},
		{
			name:     "$$ is a literal $",
			service:  "ExecStart=/bin/echo $$HOME a$$b",
			wantPath: "/bin/echo", wantArgv: []string{"/bin/echo", "$HOME", "a$b"},
		},
		{
			name:     "defaults and alternates",
			service:  "Environment=A=1 E=\nExecStart=/bin/echo ${NOPE:-def} ${E:-empty} ${A:+alt} ${NOPE:+alt}",
			wantPath: "/bin/echo", wantArgv: []string{"/bin/echo", "def", "empty", "alt", ""},
		},
		{
			name:     "quoted word is kept for the shell",
			service:  "Environment=FOO=bar\nExecStart=/bin/sh -c 'echo $FOO > /tmp/x; sleep 1'",
			wantPath: "/bin/sh", wantArgv: []string{"/bin/sh", "-c", "echo $FOO > /tmp/x; sleep 1"},
		},
		{
			name:     "Environment= after ExecStart= still applies",
			service:  "ExecStart=/bin/echo $A\nEnvironment=A=late",
			wantPath: "/bin/echo", wantArgv: []string{"/bin/echo", "late"},
		},
		{
			name:     "':' prefix turns expansion off",
			service:  "Environment=A=1\nExecStart=:/bin/echo $A ${A}",
			wantPath: "/bin/echo", wantArgv: []string{"/bin/echo", "$A", "${A}"},
		},
		{
			name:     "'-' prefix ignores failure",
			service:  "ExecStart=-/bin/false",
			wantPath: "/bin/false", wantArgv: []string{"/bin/false"}, wantIgnore: true,
		},
		{
			name:     "'@' prefix gives argv[0]",
			service:  "ExecStart=@/bin/echo myname x",
			wantPath: "/bin/echo", wantArgv: []string{"myname", "x"},
		},
		{
			name:     "escaped semicolon is an argument",
			service:  `ExecStart=/bin/echo a \; b`,
			wantPath: "/bin/echo", wantArgv: []string{"/bin/echo", "a", ";", "b"},
		},
		{
			name:    "two commands separated by ; are refused",
			service: `ExecStart=/bin/echo a ; /bin/echo b`,
			wantErr: "more than one ExecStart=",
		},
		{
			name:     "relative name found in the default PATH",
			service:  "ExecStart=sh -c true",
			wantPath: "/usr/bin/sh", wantArgv: []string{"sh", "-c", "true"},
		},
		{
			name:     "specifiers",
			service:  "ExecStart=/bin/echo %n %N %t/%p 100%%",
			wantPath: "/bin/echo", wantArgv: []string{"/bin/echo", "demo.service", "demo", "/run/demo", "100%"},
		},
		{
			name:     "unknown specifier makes the line invalid",
			service:  "ExecStart=/bin/echo ok\nExecStart=\nExecStart=/bin/echo %Q",
			wantErr:  "no ExecStart=",
			wantPath: "",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			files := map[string]string{unitPath: "[Service]\n" + tc.service + "\n"}
			if tc.dropIn != "" {
				files["/etc/systemd/system/demo.service.d/override.conf"] = tc.dropIn + "\n"
			}
			writeTree(t, root, files)
			u, err := loadUnit(root, "demo.service")
			if err != nil {
				t.Fatal(err)
			}
			c, err := u.Command(root)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantPath := tc.wantPath
			if tc.name == "relative name found in the default PATH" {
				// /bin may be /usr/bin (merged /usr) or not: whichever comes first in PATH.
				wantPath = c.Path
				if c.Path != "/usr/bin/sh" && c.Path != "/bin/sh" {
					t.Errorf("path = %q, want /usr/bin/sh or /bin/sh", c.Path)
				}
			}
			if c.Path != wantPath || !reflect.DeepEqual(c.Argv, tc.wantArgv) || c.IgnoreFailure != tc.wantIgnore {
				t.Errorf("got path %q argv %q ignore %v, want %q %q %v", c.Path, c.Argv, c.IgnoreFailure, wantPath, tc.wantArgv, tc.wantIgnore)
			}
		})
	}
}

// The files kubeadm's packages and kubeadm join write, as they are.
const (
	kubeletService = `[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
`
	kubeadmDropIn = `# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
# This is a file that "kubeadm init" and "kubeadm join" generates at runtime, populating the KUBELET_KUBEADM_ARGS variable dynamically
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
# This is a file that the user can use for overrides of the kubelet args as a last resort. Preferably, the user should use
# the .NodeRegistration.KubeletExtraArgs object in the configuration files instead. KUBELET_EXTRA_ARGS should be sourced from this file.
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
`
	kubeadmFlags = `KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.10"
`
)

func TestKubeadmKubeletUnit(t *testing.T) {
	base := []string{"/usr/bin/kubelet",
		"--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf", "--kubeconfig=/etc/kubernetes/kubelet.conf",
		"--config=/var/lib/kubelet/config.yaml"}
	flags := []string{"--container-runtime-endpoint=unix:///run/containerd/containerd.sock", "--pod-infra-container-image=registry.k8s.io/pause:3.10"}
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"before join: no env files", nil, base},
		{"after join", map[string]string{"/var/lib/kubelet/kubeadm-flags.env": kubeadmFlags}, append(append([]string{}, base...), flags...)},
		{
			"with /etc/default/kubelet",
			map[string]string{
				"/var/lib/kubelet/kubeadm-flags.env": kubeadmFlags,
				"/etc/default/kubelet":               "KUBELET_EXTRA_ARGS=--node-ip=10.0.0.5 --v=2\n",
			},
			append(append(append([]string{}, base...), flags...), "--node-ip=10.0.0.5", "--v=2"),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			files := map[string]string{
				"/lib/systemd/system/kubelet.service":                   kubeletService,
				"/etc/systemd/system/kubelet.service.d/10-kubeadm.conf": kubeadmDropIn,
			}
			for k, v := range tc.files {
				files[k] = v
			}
			writeTree(t, root, files)
			u, err := loadUnit(root, "kubelet.service")
			if err != nil {
				t.Fatal(err)
			}
			if len(u.Warnings) > 0 {
				t.Errorf("warnings: %q", u.Warnings)
			}
			if u.Restart != "always" || u.RestartSec != 10*time.Second || u.StartLimitIval != 0 {
				t.Errorf("Restart=%s RestartSec=%v StartLimitInterval=%v", u.Restart, u.RestartSec, u.StartLimitIval)
			}
			if !reflect.DeepEqual(u.WantedBy, []string{"multi-user.target"}) {
				t.Errorf("WantedBy = %q", u.WantedBy)
			}
			c, err := u.Command(root)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Argv, tc.want) {
				t.Errorf("argv = %q\nwant   %q", c.Argv, tc.want)
			}
		})
	}
}

func TestDropInOrderAndOverride(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"/usr/lib/systemd/system/demo.service":              "[Service]\nExecStart=/bin/true\nEnvironment=ORDER=unit\n",
		"/lib/systemd/system/demo.service.d/10-a.conf":      "[Service]\nEnvironment=ORDER=lib-10 A=lib\n",
		"/run/systemd/system/demo.service.d/15-r.conf":      "[Service]\nEnvironment=ORDER=run-15 R=run\n",
		"/usr/lib/systemd/system/demo.service.d/20-b.conf":  "[Service]\nEnvironment=ORDER=usr-20 SHADOWED=yes\n",
		"/etc/systemd/system/demo.service.d/20-b.conf":      "[Service]\nEnvironment=ORDER=etc-20 B=etc\n",
		"/etc/systemd/system/demo.service.d/30-c.conf.bak":  "[Service]\nEnvironment=ORDER=not-a-conf\n",
		"/usr/lib/systemd/system/demo.service.d/05-z.conf":  "[Service]\nEnvironment=ORDER=usr-05 Z=usr\n",
		"/etc/systemd/system/other.service.d/99-other.conf": "[Service]\nEnvironment=ORDER=other\n",
	})
	env, u := unitEnv(t, root)
	wantDropIns := []string{
		"/usr/lib/systemd/system/demo.service.d/05-z.conf",
		"/lib/systemd/system/demo.service.d/10-a.conf",
		"/run/systemd/system/demo.service.d/15-r.conf",
		"/etc/systemd/system/demo.service.d/20-b.conf",
	}
	if !reflect.DeepEqual(u.DropIns, wantDropIns) {
		t.Errorf("drop-ins = %q\nwant       %q", u.DropIns, wantDropIns)
	}
	want := []string{"Z=usr", "A=lib", "R=run", "ORDER=etc-20", "B=etc"}
	if !reflect.DeepEqual(env, want) {
		t.Errorf("env = %q, want %q", env, want)
	}
}

func TestFragmentLookup(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		unit  string
		want  string
	}{
		{"lib only", []string{"/lib/systemd/system/demo.service"}, "demo", "/lib/systemd/system/demo.service"},
		{"usr/lib before lib", []string{"/lib/systemd/system/demo.service", "/usr/lib/systemd/system/demo.service"}, "demo", "/usr/lib/systemd/system/demo.service"},
		{"etc first", []string{"/lib/systemd/system/demo.service", "/etc/systemd/system/demo.service"}, "demo.service", "/etc/systemd/system/demo.service"},
		{"template", []string{"/lib/systemd/system/demo@.service"}, "demo@x", "/lib/systemd/system/demo@.service"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			files := map[string]string{}
			for _, f := range tc.files {
				files[f] = "[Service]\nExecStart=/bin/echo " + f + " %i\n"
			}
			writeTree(t, root, files)
			name, err := normalizeName(tc.unit)
			if err != nil {
				t.Fatal(err)
			}
			u, err := loadUnit(root, name)
			if err != nil {
				t.Fatal(err)
			}
			if u.Path != tc.want {
				t.Errorf("path = %q, want %q", u.Path, tc.want)
			}
			if tc.name == "template" {
				if got := u.ExecStart[0].Argv[2]; got != "x" {
					t.Errorf("%%i = %q, want x", got)
				}
			}
		})
	}
	if _, err := loadUnit(t.TempDir(), "nope.service"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing unit: err = %v", err)
	}
}

func TestContinuationLines(t *testing.T) {
	tests := []struct {
		name     string
		service  string
		wantArgv []string
		wantEnv  []string
	}{
		{
			name:     "backslash continues",
			service:  "ExecStart=/bin/echo \\\n  --a \\\n  --b\nEnvironment=X=1",
			wantArgv: []string{"/bin/echo", "--a", "--b"}, wantEnv: []string{"X=1"},
		},
		{
			name:     "comment lines inside a continuation are skipped",
			service:  "ExecStart=/bin/echo \\\n# a comment\n; another\n  --a",
			wantArgv: []string{"/bin/echo", "--a"},
		},
		{
			name:     "escaped backslash at the end is not a continuation",
			service:  "ExecStart=/bin/echo x\\\\\nEnvironment=X=1",
			wantArgv: []string{"/bin/echo", `x\`}, wantEnv: []string{"X=1"},
		},
		{
			name:     "continued Environment=",
			service:  "Environment=\"A=1\" \\\n  \"B=2\"\nExecStart=/bin/echo $A$B ${A}${B}",
			wantArgv: []string{"/bin/echo", "12"}, wantEnv: []string{"A=1", "B=2"},
		},
		{
			name:     "continuation at end of file",
			service:  "ExecStart=/bin/echo a \\",
			wantArgv: []string{"/bin/echo", "a"},
		},
	}
	// "$A$B" is one word starting with $: it is looked up as the variable
	// "A$B", which is unset, so it gives no words (as in systemd).
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, map[string]string{unitPath: "[Service]\n" + tc.service + "\n"})
			env, u := unitEnv(t, root)
			c, err := u.Command(root)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Argv, tc.wantArgv) {
				t.Errorf("argv = %q, want %q", c.Argv, tc.wantArgv)
			}
			if !reflect.DeepEqual(env, tc.wantEnv) {
				t.Errorf("env = %q, want %q", env, tc.wantEnv)
			}
		})
	}
}

func TestServiceSettings(t *testing.T) {
	tests := []struct {
		name  string
		lines string
		check func(*Unit) string
	}{
		{"defaults", "", func(u *Unit) string {
			if u.Restart != "no" || u.RestartSec != 100*time.Millisecond || u.KillMode != "control-group" || u.TimeoutStopSec != 10*time.Second {
				return fmt.Sprintf("%+v", u)
			}
			return ""
		}},
		{"Restart and RestartSec", "Restart=on-failure\nRestartSec=1min 30s", func(u *Unit) string {
			if u.Restart != "on-failure" || u.RestartSec != 90*time.Second {
				return fmt.Sprintf("Restart=%s RestartSec=%v", u.Restart, u.RestartSec)
			}
			return ""
		}},
		{"invalid Restart ignored", "Restart=always\nRestart=sometimes", func(u *Unit) string {
			if u.Restart != "always" || len(u.Warnings) != 1 {
				return fmt.Sprintf("Restart=%s warnings=%q", u.Restart, u.Warnings)
			}
			return ""
		}},
		{"WorkingDirectory optional", "WorkingDirectory=-/does/not/exist", func(u *Unit) string {
			c, err := u.Command("/")
			if err != nil || c.Dir != "/" {
				return fmt.Sprintf("dir=%v err=%v", c, err)
			}
			return ""
		}},
		{"WorkingDirectory required", "WorkingDirectory=/does/not/exist", func(u *Unit) string {
			if _, err := u.Command("/"); err == nil {
				return "missing WorkingDirectory accepted"
			}
			return ""
		}},
		{"other sections and keys ignored", "User=nobody\n[X-Custom]\nExecStart=/bin/other\n[Service]\nType=simple", func(u *Unit) string {
			if len(u.ExecStart) != 1 || u.ExecStart[0].Path != "/bin/true" {
				return fmt.Sprintf("ExecStart=%+v", u.ExecStart)
			}
			return ""
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, map[string]string{unitPath: "[Service]\nExecStart=/bin/true\n" + tc.lines + "\n"})
			u, err := loadUnit(root, "demo.service")
			if err != nil {
				t.Fatal(err)
			}
			if msg := tc.check(u); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func TestTimespan(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"10", 10 * time.Second, false},
		{"100ms", 100 * time.Millisecond, false},
		{"1min 30s", 90 * time.Second, false},
		{"2h5min", 2*time.Hour + 5*time.Minute, false},
		{"0.5s", 500 * time.Millisecond, false},
		{"infinity", 24 * time.Hour, false},
		{"5 sec", 5 * time.Second, false},
		{"ten", 0, true},
		{"5parsecs", 0, true},
		{"", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseTimespan(tc.in)
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("parseTimespan(%q) = %v, %v; want %v, err %v", tc.in, got, err, tc.want, tc.err)
			}
		})
	}
}

func TestNormalizeName(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"kubelet", "kubelet.service", false},
		{"kubelet.service", "kubelet.service", false},
		{"foo@bar", "foo@bar.service", false},
		{"a/b", "", true},
		{"", "", true},
		{"multi-user.target", "", true},
	}
	for _, tc := range tests {
		got, err := normalizeName(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("normalizeName(%q) = %q, %v", tc.in, got, err)
		}
	}
}

// ---- the built binary ----

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

func TestMain(m *testing.M) {
	rc := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(rc)
}

// binary builds the stand-in once for all tests.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "systemctl-standin-test")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(buildDir, "systemctl"), ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "systemctl")
}

// sandbox is a SYSTEMCTL_ROOT with a fake cgroup tree and a cleanup that
// kills whatever was started from it.
type sandbox struct {
	t    *testing.T
	bin  string
	root string
}

func newSandbox(t *testing.T, files map[string]string) *sandbox {
	bin := binary(t)
	// Become a subreaper so that the supervisors, orphaned when `systemctl
	// start` exits, are our children and can be reaped here.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	writeTree(t, root, files)
	writeTree(t, root, map[string]string{
		"/cg/memory/cgroup.procs":  "",
		"/cg/unified/cgroup.procs": "",
	})
	if err := os.MkdirAll(filepath.Join(root, "/cg/cpu"), 0o755); err != nil { // no cgroup.procs: skipped
		t.Fatal(err)
	}
	s := &sandbox{t: t, bin: bin, root: root}
	t.Cleanup(s.killAll)
	return s
}

// run runs the stand-in and returns its stdout, stderr and exit code.
func (s *sandbox) run(args ...string) (string, string, int) {
	s.t.Helper()
	cmd := exec.Command(s.bin, args...)
	cmd.Env = append(os.Environ(), "SYSTEMCTL_ROOT="+s.root, "SYSTEMCTL_CGROUP_ROOT="+filepath.Join(s.root, "cg"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	rc := 0
	if ee, ok := err.(*exec.ExitError); ok {
		rc = ee.ExitCode()
	} else if err != nil {
		s.t.Fatalf("systemctl %v: %v", args, err)
	}
	return out.String(), errb.String(), rc
}

// processesMentioning returns live processes whose command line contains s.
func processesMentioning(s string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(b, []byte(s)) && processAlive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// killAll kills every process started from this sandbox and reaps the
// supervisors that were reparented to the test.
func (s *sandbox) killAll() {
	for _, p := range processesMentioning(s.root) {
		unix.Kill(-p, unix.SIGKILL)
		unix.Kill(p, unix.SIGKILL)
	}
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err != nil || pid <= 0 {
			return
		}
	}
}

func (s *sandbox) pidFile(ext string) int {
	return readPid(filepath.Join(s.root, stateDirRel, "demo."+ext))
}

// waitFor polls cond for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

// reapSupervisor waits for the (reparented) supervisor pid to exit.
func reapSupervisor(t *testing.T, pid int) {
	t.Helper()
	ok := waitFor(5*time.Second, func() bool {
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		return got == pid || err == unix.ECHILD
	})
	if !ok {
		t.Errorf("supervisor %d did not exit", pid)
	}
}

func TestStartStopProcess(t *testing.T) {
	tmp := t.TempDir()
	out := filepath.Join(tmp, "out")
	s := newSandbox(t, map[string]string{
		"/lib/systemd/system/demo.service": "[Unit]\nDescription=Demo service\n[Service]\nEnvironment=FOO=unit\n" +
			"ExecStart=/bin/sh -c 'echo $FOO > " + out + "; sleep 60'\nRestart=always\nRestartSec=10\n" +
			"[Install]\nWantedBy=multi-user.target\n",
		"/etc/systemd/system/demo.service.d/50-foo.conf": "[Service]\nEnvironment=FOO=from-drop-in\n",
	})

	if o, e, rc := s.run("daemon-reload"); rc != 0 {
		t.Fatalf("daemon-reload: rc %d %s %s", rc, o, e)
	}
	if o, _, rc := s.run("is-active", "demo"); rc != 3 || strings.TrimSpace(o) != "inactive" {
		t.Fatalf("is-active before start: %q rc %d", o, rc)
	}
	if _, e, rc := s.run("start", "demo.service", "--no-pager"); rc != 0 {
		t.Fatalf("start: rc %d: %s", rc, e)
	}
	sup, mainPid := s.pidFile("pid"), s.pidFile("main")
	if sup == 0 || mainPid == 0 {
		t.Fatalf("pid files: supervisor %d main %d", sup, mainPid)
	}
	if o, _, rc := s.run("is-active", "demo"); rc != 0 || strings.TrimSpace(o) != "active" {
		t.Fatalf("is-active after start: %q rc %d", o, rc)
	}
	if _, e, rc := s.run("start", "demo"); rc != 0 || s.pidFile("pid") != sup {
		t.Fatalf("second start is not a no-op: rc %d %s, supervisor %d -> %d", rc, e, sup, s.pidFile("pid"))
	}
	if !waitFor(5*time.Second, func() bool {
		b, _ := os.ReadFile(out)
		return strings.TrimSpace(string(b)) == "from-drop-in"
	}) {
		b, _ := os.ReadFile(out)
		t.Fatalf("out = %q, want the drop-in's value", b)
	}

	// The supervisor left our session and the (fake) cgroups.
	if sid, _ := unix.Getsid(sup); sid != sup {
		t.Errorf("supervisor session %d, want its own (%d)", sid, sup)
	}
	for _, cg := range []string{"memory", "unified"} {
		b, _ := os.ReadFile(filepath.Join(s.root, "cg", cg, "cgroup.procs"))
		if strings.TrimSpace(string(b)) != strconv.Itoa(sup) {
			t.Errorf("cg/%s/cgroup.procs = %q, want %d", cg, b, sup)
		}
	}
	// The service runs in its own process group, with the sleep in it.
	var sleeps []int
	waitFor(5*time.Second, func() bool {
		sleeps = nil
		for _, p := range processesMentioning("sleep") {
			if _, _, pg, ok := procStat(p); ok && pg == mainPid {
				sleeps = append(sleeps, p)
			}
		}
		return len(sleeps) > 0
	})
	if len(sleeps) == 0 {
		t.Fatalf("no sleep process in process group %d", mainPid)
	}

	o, _, rc := s.run("status", "demo")
	for _, want := range []string{"Demo service", "Loaded: loaded (/lib/systemd/system/demo.service; disabled",
		"/etc/systemd/system/demo.service.d", "50-foo.conf", "Active: active (running)",
		"Main PID: " + strconv.Itoa(mainPid), "Started: main PID"} {
		if !strings.Contains(o, want) {
			t.Errorf("status lacks %q:\n%s", want, o)
		}
	}
	if rc != 0 {
		t.Errorf("status rc = %d", rc)
	}

	start := time.Now()
	if _, e, rc := s.run("stop", "demo"); rc != 0 {
		t.Fatalf("stop: rc %d %s", rc, e)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %v", d)
	}
	if o, _, rc := s.run("is-active", "demo"); rc != 3 || strings.TrimSpace(o) != "inactive" {
		t.Errorf("is-active after stop: %q rc %d", o, rc)
	}
	reapSupervisor(t, sup)
	for _, p := range append(sleeps, mainPid) {
		if processAlive(p) {
			t.Errorf("process %d still alive after stop", p)
		}
	}
	for _, ext := range []string{"pid", "main", "state"} {
		if _, err := os.Stat(filepath.Join(s.root, stateDirRel, "demo."+ext)); err == nil {
			t.Errorf("demo.%s left behind", ext)
		}
	}
	if _, e, rc := s.run("stop", "demo"); rc != 0 {
		t.Errorf("stop when stopped: rc %d %s", rc, e)
	}
	log, _ := os.ReadFile(filepath.Join(s.root, logDirRel, "demo.log"))
	if !strings.Contains(string(log), "Stopped.") {
		t.Errorf("log:\n%s", log)
	}

	// restart = stop + start, picking up a changed drop-in.
	writeTree(t, s.root, map[string]string{"/etc/systemd/system/demo.service.d/50-foo.conf": "[Service]\nEnvironment=FOO=changed\n"})
	if _, e, rc := s.run("restart", "demo"); rc != 0 {
		t.Fatalf("restart: rc %d %s", rc, e)
	}
	sup2 := s.pidFile("pid")
	if !waitFor(5*time.Second, func() bool {
		b, _ := os.ReadFile(out)
		return strings.TrimSpace(string(b)) == "changed"
	}) {
		t.Errorf("after restart, out is not the changed drop-in's value")
	}
	if _, e, rc := s.run("restart", "demo"); rc != 0 || s.pidFile("pid") == sup2 {
		t.Fatalf("restart of a running unit: rc %d %s", rc, e)
	}
	reapSupervisor(t, sup2)
	sup3 := s.pidFile("pid")
	if _, e, rc := s.run("stop", "demo"); rc != 0 {
		t.Fatalf("stop: rc %d %s", rc, e)
	}
	reapSupervisor(t, sup3)
	if left := processesMentioning(s.root); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
}

func TestRestartPolicyProcess(t *testing.T) {
	tmp := t.TempDir()
	runs := filepath.Join(tmp, "runs")
	s := newSandbox(t, map[string]string{
		"/lib/systemd/system/demo.service": "[Unit]\nStartLimitIntervalSec=30\nStartLimitBurst=3\n[Service]\n" +
			"ExecStart=/bin/sh -c 'echo run >> " + runs + "; exit 3'\nRestart=on-failure\nRestartSec=150ms\n",
	})
	start := time.Now()
	if _, e, rc := s.run("start", "demo"); rc != 0 {
		t.Fatalf("start: rc %d %s", rc, e)
	}
	sup := s.pidFile("pid")
	if !waitFor(10*time.Second, func() bool { o, _, _ := s.run("is-active", "demo"); return strings.TrimSpace(o) == "failed" }) {
		o, _, _ := s.run("status", "demo")
		t.Fatalf("unit did not fail after hitting the start limit:\n%s", o)
	}
	reapSupervisor(t, sup)
	b, _ := os.ReadFile(runs)
	if n := strings.Count(string(b), "run"); n != 3 {
		t.Errorf("ran %d times, want 3 (StartLimitBurst)", n)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("3 runs took %v, less than 2 RestartSec", d)
	}
	o, _, rc := s.run("status", "demo")
	if rc != 3 || !strings.Contains(o, "start-limit-hit") || !strings.Contains(o, "status=3") {
		t.Errorf("status rc %d:\n%s", rc, o)
	}
	if _, _, rc := s.run("is-failed", "demo"); rc != 0 {
		t.Errorf("is-failed rc %d", rc)
	}
	s.run("reset-failed", "demo")
	if o, _, _ := s.run("is-active", "demo"); strings.TrimSpace(o) != "inactive" {
		t.Errorf("after reset-failed: %q", o)
	}

	// Restart=no and a clean exit: inactive, not failed.
	writeTree(t, s.root, map[string]string{"/lib/systemd/system/demo.service": "[Service]\nExecStart=/bin/true\n"})
	if _, e, rc := s.run("start", "demo"); rc != 0 {
		t.Fatalf("start: rc %d %s", rc, e)
	}
	sup = s.pidFile("pid")
	if !waitFor(5*time.Second, func() bool { o, _, _ := s.run("is-active", "demo"); return strings.TrimSpace(o) == "inactive" }) {
		t.Error("a unit whose process exited 0 is not inactive")
	}
	reapSupervisor(t, sup)
}

func TestStartErrorsAndUnitFileCommands(t *testing.T) {
	s := newSandbox(t, map[string]string{
		"/lib/systemd/system/demo.service":                   "[Service]\nExecStart=/bin/sleep 60\nEnvironmentFile=/etc/default/demo\n[Install]\nWantedBy=multi-user.target\n",
		"/lib/systemd/system/twice.service":                  "[Service]\nExecStart=/bin/sleep 60\n",
		"/etc/systemd/system/twice.service.d/10-bad.conf":    "[Service]\nExecStart=/bin/sleep 61\n",
		"/lib/systemd/system/static.service":                 "[Service]\nExecStart=/bin/sleep 60\n",
		"/lib/systemd/system/noexec.service":                 "[Service]\nExecStart=/nonexistent/binary\n",
		"/etc/systemd/system/multi-user.target.wants/.keep":  "",
		"/etc/systemd/system/static.service.d/not-conf.txt":  "junk",
		"/usr/lib/systemd/system/twice.service.d/.gitignore": "",
	})
	tests := []struct {
		name    string
		args    []string
		rc      int
		stdout  string
		stderr  string
		running bool
	}{
		{"missing required EnvironmentFile", []string{"start", "demo"}, 1, "", "Failed to load environment files", false},
		{"second ExecStart without reset", []string{"start", "twice"}, 1, "", "more than one ExecStart=", false},
		{"exec failure is reported", []string{"start", "noexec"}, 1, "", "no such file or directory", false},
		{"unknown unit: start", []string{"start", "nope"}, 5, "", "Unit nope.service not found.", false},
		{"unknown unit: stop", []string{"stop", "nope"}, 5, "", "not loaded", false},
		{"unknown unit: status", []string{"status", "nope.service", "--no-pager"}, 4, "", "Unit nope.service could not be found.", false},
		{"unknown unit: is-active", []string{"is-active", "nope"}, 3, "inactive\n", "", false},
		{"unknown unit: is-enabled", []string{"is-enabled", "nope"}, 1, "", "No such file or directory", false},
		{"stop of a stopped unit", []string{"stop", "static"}, 0, "", "", false},
		{"is-enabled before enable", []string{"is-enabled", "demo"}, 1, "disabled\n", "", false},
		{"enable", []string{"enable", "demo.service"}, 0, "", "Created symlink /etc/systemd/system/multi-user.target.wants/demo.service → /lib/systemd/system/demo.service.", false},
		{"is-enabled after enable", []string{"is-enabled", "demo"}, 0, "enabled\n", "", false},
		{"is-enabled quiet", []string{"is-enabled", "-q", "demo"}, 0, "", "", false},
		{"enable again is a no-op", []string{"enable", "demo"}, 0, "", "", false},
		{"disable", []string{"disable", "demo"}, 0, "", "Removed \"/etc/systemd/system/multi-user.target.wants/demo.service\".", false},
		{"is-enabled after disable", []string{"is-enabled", "demo"}, 1, "disabled\n", "", false},
		{"no [Install]: static", []string{"is-enabled", "static"}, 0, "static\n", "", false},
		{"enable without [Install]", []string{"enable", "static"}, 0, "", "no installation config", false},
		{"unknown verb", []string{"frobnicate", "demo"}, 1, "", "Unknown command verb", false},
		{"no verb", []string{"--no-pager"}, 1, "", "verb is required", false},
		{"cat", []string{"cat", "twice"}, 0, "# /lib/systemd/system/twice.service\n[Service]\nExecStart=/bin/sleep 60\n\n# /etc/systemd/system/twice.service.d/10-bad.conf\n", "", false},
		{"show -p --value", []string{"show", "-p", "LoadState,ActiveState", "--value", "static"}, 0, "loaded\ninactive\n", "", false},
		{"enable --now starts", []string{"enable", "--now", "static"}, 0, "", "", true},
		{"show MainPID while running", []string{"show", "--property=ActiveState", "static"}, 0, "ActiveState=active\n", "", true},
		{"try-restart of a running unit", []string{"try-restart", "static"}, 0, "", "", true},
		{"disable --now stops", []string{"disable", "--now", "static"}, 0, "", "", false},
		{"try-restart of a stopped unit does nothing", []string{"try-restart", "static"}, 0, "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, e, rc := s.run(tc.args...)
			if rc != tc.rc {
				t.Errorf("rc = %d, want %d (stdout %q stderr %q)", rc, tc.rc, o, e)
			}
			if tc.stdout != "" && !strings.HasPrefix(o, tc.stdout) || tc.stdout == "" && o != "" && tc.args[0] != "cat" {
				t.Errorf("stdout = %q, want %q", o, tc.stdout)
			}
			if tc.stderr != "" && !strings.Contains(e, tc.stderr) {
				t.Errorf("stderr = %q, want it to contain %q", e, tc.stderr)
			}
			// A supervisor that failed to start its service exits right after
			// saying so: give it a moment.
			if !waitFor(2*time.Second, func() bool { return (len(processesMentioning(s.root)) > 0) == tc.running }) {
				t.Errorf("something running = %v, want %v", !tc.running, tc.running)
			}
		})
	}
}
