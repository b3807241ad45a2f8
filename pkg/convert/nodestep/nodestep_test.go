package nodestep

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/yurtadm/yurtadm/pkg/kube/kubetest"
	"k8s.io/client-go/rest"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/host"
	"github.com/yurtadm/yurtadm/pkg/host/hosttest"
	"github.com/yurtadm/yurtadm/pkg/kube"
	"github.com/yurtadm/yurtadm/pkg/yurthub"
)

const (
	origFlags   = "KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.10\"\n"
	kubeletConf = `apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: ""
    server: https://10.0.0.1:6443
  name: default-cluster
contexts:
- context:
    cluster: default-cluster
    namespace: default
    user: default-auth
  name: default-context
current-context: default-context
users:
- name: default-auth
  user:
    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem
    client-key: /var/lib/kubelet/pki/kubelet-client-current.pem
`
)

// node is a kubeadm node below a temp root with a yurthub that becomes
// healthy once its manifest is there (unless broken) and a Node whose
// readiness the test sets.
type node struct {
	t       *testing.T
	h       *host.Host
	init    *hosttest.Init
	env     Env
	broken  atomic.Bool // yurthub never healthy
	ready   atomic.Bool
	clients []*rest.Config
	// template is the cluster's yurt-static-set-yurt-hub ConfigMap.
	template *corev1.ConfigMap
}

func newNode(t *testing.T) *node {
	t.Helper()
	n := &node{t: t}
	n.h, n.init, _ = hosttest.New(t)
	n.ready.Store(true)
	plant := func(p, content string, mode os.FileMode) {
		if err := n.h.FS.WriteFileAtomic(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	plant(constants.KubeletFlagsEnvFile, origFlags, 0o640) // an unusual mode that must survive
	plant(constants.KubeletKubeconfig, kubeletConf, 0o600)
	plant(constants.KubeletClientCert, "cert", 0o600)
	plant(constants.CACertPath, "ca", 0o644)
	plant(constants.KubeletConfigFile, "kind: KubeletConfiguration\n", 0o644)
	if err := n.h.FS.MkdirAll(constants.ManifestsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var running sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// yurthub runs while its manifest is there, and writes its dirs;
		// one request at a time, so that once it does not answer nothing
		// of it writes any more.
		running.Lock()
		defer running.Unlock()
		if !n.h.FS.Exists(constants.YurthubManifest) {
			conn, _, err := w.(http.Hijacker).Hijack() // nothing listens: no answer
			if err == nil {
				conn.Close()
			}
			return
		}
		_ = n.h.FS.WriteFileAtomic(constants.YurthubClientCert, []byte("hub"), 0o600)
		_ = n.h.FS.WriteFileAtomic(constants.YurthubCacheDir+"/kubelet/pods/kube-system/x", []byte("{}"), 0o600)
		if n.broken.Load() {
			http.Error(w, "waiting for certificate", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("OK"))
	}))
	t.Cleanup(srv.Close)
	n.env = Env{
		Host: n.h, HTTP: srv.Client(), HealthzURL: srv.URL + "/v1/healthz", ProxyURL: "http://127.0.0.1:10261",
		Poll: time.Millisecond, Now: time.Now, GoneWait: time.Second,
		NewClient: func(cfg *rest.Config) (kube.Interface, error) {
			n.clients = append(n.clients, cfg)
			st := corev1.ConditionTrue
			if !n.ready.Load() {
				st = corev1.ConditionFalse
			}
			objs := []runtime.Object{&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "edge-1"},
				Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st,
					LastHeartbeatTime: metav1.NewTime(time.Now().Add(time.Hour))}}}}}
			if n.template != nil {
				objs = append(objs, n.template)
			}
			return kubetest.Wrap(fake.NewSimpleClientset(objs...)), nil
		},
	}
	return n
}

func opts() Options {
	return Options{NodeName: "edge-1", YurthubImage: "openyurt/yurthub:v1.7.0", NodePoolName: "edge", Namespace: "kube-system", Timeout: 200 * time.Millisecond}
}

func (n *node) tree() []string { return hosttest.Tree(n.t, n.h) }

func (n *node) read(p string) string {
	b, err := n.h.FS.ReadFile(p)
	if err != nil {
		n.t.Fatal(err)
	}
	return string(b)
}

func diff(a, b []string) string {
	in := map[string]int{}
	for _, x := range a {
		in[x]++
	}
	for _, x := range b {
		in[x]--
	}
	var out []string
	for k, v := range in {
		if v > 0 {
			out = append(out, "- "+k)
		} else if v < 0 {
			out = append(out, "+ "+k)
		}
	}
	return strings.Join(out, "\n")
}

func TestConvertThenRevertIsByteIdentical(t *testing.T) {
	n := newNode(t)
	before := n.tree()
	ctx := context.Background()

	r, err := Convert(ctx, opts(), n.env)
	if err != nil {
		t.Fatalf("convert: %v\n%+v", err, r)
	}
	if r.Outcome != OutcomeConverted {
		t.Fatalf("outcome %s", r.Outcome)
	}
	args, _, _ := yurthub.KubeadmFlagsArgs([]byte(n.read(constants.KubeletFlagsEnvFile)))
	if yurthub.KubeconfigFlag(args) != constants.OpenYurtKubeletConfig {
		t.Errorf("kubelet not pointed at yurthub: %s", n.read(constants.KubeletFlagsEnvFile))
	}
	if st, _ := n.h.FS.Stat(constants.KubeletFlagsEnvFile); st.Mode().Perm() != 0o640 {
		t.Errorf("kubeadm-flags.env mode %v, want the original 0640", st.Mode().Perm())
	}
	if st, _ := n.h.FS.Stat(constants.OpenYurtKubeletConfig); st.Mode().Perm() != 0o600 {
		t.Errorf("kubelet.conf for yurthub mode %v", st.Mode().Perm())
	}
	if !strings.Contains(n.read(constants.YurthubManifest), "--server-addr=https://10.0.0.1:6443") {
		t.Errorf("yurthub manifest does not name kubelet's server:\n%s", n.read(constants.YurthubManifest))
	}
	if got := n.init.CallLog(); !reflect.DeepEqual(got, []string{"restart kubelet"}) {
		t.Errorf("init calls %v", got)
	}
	// The cluster's template read with kubelet's identity, directly; then
	// Ready checked through yurthub.
	if len(n.clients) != 2 || n.clients[0].Host != "https://10.0.0.1:6443" || n.clients[1].Host != n.env.ProxyURL {
		t.Errorf("clients: want the direct one for the template, then yurthub's for Ready: %+v", n.clients)
	}
	bk, err := readBackup(n.h.FS)
	if err != nil || bk == nil {
		t.Fatalf("backup: %v", err)
	}
	if e := bk.Entries[2]; e.Path != constants.KubeletFlagsEnvFile || !e.Existed || e.SHA256 != sum([]byte(origFlags)) {
		t.Errorf("backup entry %+v", e)
	}

	// A second convert changes nothing.
	converted := n.tree()
	r, err = Convert(ctx, opts(), n.env)
	if err != nil || r.Outcome != OutcomeAlreadyConverted {
		t.Fatalf("second convert: %v %+v", err, r)
	}
	if d := diff(converted, n.tree()); d != "" {
		t.Errorf("second convert changed files:\n%s", d)
	}
	if len(n.init.CallLog()) != 1 {
		t.Errorf("second convert restarted kubelet: %v", n.init.CallLog())
	}

	r, err = Revert(ctx, opts(), n.env)
	if err != nil || r.Outcome != OutcomeReverted {
		t.Fatalf("revert: %v %+v", err, r)
	}
	if d := diff(before, n.tree()); d != "" {
		t.Errorf("revert did not restore the node byte for byte:\n%s", d)
	}
	if last := n.clients[len(n.clients)-1]; last.Host != "https://10.0.0.1:6443" || string(last.CertData) != n.read(constants.KubeletClientCert) || len(last.CertData) == 0 {
		t.Errorf("Ready after revert not checked directly with kubelet's identity: host %s cert %q", last.Host, last.CertData)
	}

	// Revert again: nothing to do.
	r, err = Revert(ctx, opts(), n.env)
	if err != nil || r.Outcome != OutcomeNothingToRevert {
		t.Fatalf("second revert: %v %+v", err, r)
	}
}

func TestConvertRollsBackWhenYurthubNeverHealthy(t *testing.T) {
	n := newNode(t)
	n.broken.Store(true)
	before := n.tree()
	r, err := Convert(context.Background(), opts(), n.env)
	if err == nil || r.Outcome != OutcomeRolledBack {
		t.Fatalf("want a rollback, got %v %+v", err, r)
	}
	if !strings.Contains(r.Message, "waiting for certificate") {
		t.Errorf("message does not carry yurthub's last answer: %s", r.Message)
	}
	if d := diff(before, n.tree()); d != "" {
		t.Errorf("rollback left the node changed:\n%s", d)
	}
	if got := n.init.CallLog(); len(got) != 0 {
		t.Errorf("kubelet was never switched, yet the init system saw %v", got)
	}
}

func TestConvertRollsBackWhenNodeNotReadyThroughYurthub(t *testing.T) {
	n := newNode(t)
	n.ready.Store(false)
	before := n.tree()
	r, err := Convert(context.Background(), opts(), n.env)
	if err == nil || r.Outcome != OutcomeRolledBack {
		t.Fatalf("want a rollback, got %v %+v", err, r)
	}
	if d := diff(before, n.tree()); d != "" {
		t.Errorf("rollback left the node changed:\n%s", d)
	}
	if got := n.init.CallLog(); !reflect.DeepEqual(got, []string{"restart kubelet", "restart kubelet"}) {
		t.Errorf("kubelet must be restarted again with its original flags: %v", got)
	}
}

func TestConvertRollsBackWhenKubeletRestartFails(t *testing.T) {
	n := newNode(t)
	n.init.Fail = map[string]error{"restart kubelet": os.ErrPermission}
	before := n.tree()
	r, err := Convert(context.Background(), opts(), n.env)
	if err == nil {
		t.Fatal("convert succeeded")
	}
	// The restart of the rollback fails too: reported, files restored.
	if r.Outcome != OutcomeFailed || !strings.Contains(r.Message, "restart kubelet") {
		t.Errorf("%+v", r)
	}
	// The backup is kept for 'yurtctl revert' since kubelet may still run
	// with the changed flags; every other file is as before.
	var after []string
	for _, l := range n.tree() {
		if !strings.HasPrefix(l, "var/lib/openyurt/") {
			after = append(after, l)
		}
	}
	if d := diff(before, after); d != "" {
		t.Errorf("files not restored:\n%s", d)
	}
	if !n.h.FS.Exists(BackupManifest) {
		t.Error("the backup was removed although the rollback was incomplete")
	}
}

func TestConvertResumesWithoutOverwritingTheBackup(t *testing.T) {
	n := newNode(t)
	before := n.tree()
	// An earlier run was killed after the backup and the flag edit.
	if _, err := takeBackup(n.h.FS, ChangedFiles, append(append([]string{}, yurthubDirs...), createdDirs...), "https://10.0.0.1:6443", time.Now()); err != nil {
		t.Fatal(err)
	}
	redirected, _, _ := yurthub.SetKubeconfigFlag([]byte(origFlags), constants.OpenYurtKubeletConfig)
	if err := n.h.FS.WriteFileAtomic(constants.KubeletFlagsEnvFile, redirected, 0o640); err != nil {
		t.Fatal(err)
	}
	r, err := Convert(context.Background(), opts(), n.env)
	if err != nil || r.Outcome != OutcomeConverted {
		t.Fatalf("resume: %v %+v", err, r)
	}
	if _, err := Revert(context.Background(), opts(), n.env); err != nil {
		t.Fatal(err)
	}
	if d := diff(before, n.tree()); d != "" {
		t.Errorf("the original flags were lost:\n%s", d)
	}
}

func TestConvertRefusesRedirectedKubeletWithoutBackup(t *testing.T) {
	n := newNode(t)
	redirected, _, _ := yurthub.SetKubeconfigFlag([]byte(origFlags), constants.OpenYurtKubeletConfig)
	hosttest.WriteFile(t, n.h, constants.KubeletFlagsEnvFile, string(redirected))
	before := n.tree()
	r, err := Convert(context.Background(), opts(), n.env)
	if err == nil || r.Outcome != OutcomeFailed || !strings.Contains(r.Message, "no backup") {
		t.Fatalf("%v %+v", err, r)
	}
	if d := diff(before, n.tree()); d != "" {
		t.Errorf("changed:\n%s", d)
	}
}

func TestConvertRefusesWhenKubeletConfPointsAtProxy(t *testing.T) {
	n := newNode(t)
	hosttest.WriteFile(t, n.h, constants.KubeletKubeconfig, strings.Replace(kubeletConf, "https://10.0.0.1:6443", "http://127.0.0.1:10261", 1))
	before := n.tree()
	r, err := Convert(context.Background(), opts(), n.env)
	if err == nil || !strings.Contains(r.Message, "--server-addr") {
		t.Fatalf("%v %+v", err, r)
	}
	if d := diff(before, n.tree()); d != "" {
		t.Errorf("changed:\n%s", d)
	}
	// With the server given, it converts.
	o := opts()
	o.ServerAddr = "https://10.0.0.1:6443"
	if _, err := Convert(context.Background(), o, n.env); err != nil {
		t.Fatal(err)
	}
}

func TestRevertWithoutBackupUsesKubeadmFiles(t *testing.T) {
	n := newNode(t)
	if _, err := Convert(context.Background(), opts(), n.env); err != nil {
		t.Fatal(err)
	}
	if _, err := n.h.FS.RemoveAll(BackupDir); err != nil {
		t.Fatal(err)
	}
	r, err := Revert(context.Background(), opts(), n.env)
	if err != nil || r.Outcome != OutcomeReverted {
		t.Fatalf("%v %+v", err, r)
	}
	warned := false
	for _, s := range r.Steps {
		warned = warned || (s.Status == StatusWarning && strings.Contains(s.Message, "no backup"))
	}
	if !warned {
		t.Errorf("no warning about the missing backup: %+v", r.Steps)
	}
	if got := n.read(constants.KubeletFlagsEnvFile); got != origFlags {
		t.Errorf("flags %q, want kubeadm's %q", got, origFlags)
	}
	for _, p := range []string{constants.YurthubManifest, constants.YurthubDir, constants.YurthubCacheDir, constants.OpenYurtKubeletConfig} {
		if n.h.FS.Exists(p) {
			t.Errorf("%s left behind", p)
		}
	}
}

func TestRevertReportsMissingKubeletConf(t *testing.T) {
	n := newNode(t)
	if _, err := Convert(context.Background(), opts(), n.env); err != nil {
		t.Fatal(err)
	}
	n.h.FS.Remove(constants.KubeletKubeconfig)
	r, err := Revert(context.Background(), opts(), n.env)
	if err == nil || r.Outcome != OutcomeFailed || !strings.Contains(r.Message, "re-join") {
		t.Fatalf("%v %+v", err, r)
	}
	// Best effort: yurthub is still removed.
	if n.h.FS.Exists(constants.YurthubManifest) || n.h.FS.Exists(constants.YurthubDir) {
		t.Error("revert stopped at the first failed step")
	}
}

func TestTerminationMessageFits(t *testing.T) {
	r := &Result{Node: "n", Action: "convert", Outcome: OutcomeFailed, Message: strings.Repeat("x", 9000),
		Steps: []Step{{Name: "a", Status: StatusFailed, Message: strings.Repeat("y", 100)}}}
	b := TerminationMessage(r)
	if len(b) > maxMessage {
		t.Fatalf("%d bytes", len(b))
	}
	back, err := ParseTerminationMessage(string(b))
	if err != nil || back.Outcome != OutcomeFailed || back.Node != "n" {
		t.Fatalf("%v %+v", err, back)
	}
}

func TestHostExecLooksUpBelowRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/bin/systemctl"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	x := HostExec{Root: root}
	if p, err := x.LookPath("systemctl"); err != nil || p != "/usr/bin/systemctl" {
		t.Errorf("LookPath: %q %v", p, err)
	}
	if _, err := x.LookPath("kubelet"); err == nil {
		t.Error("found a command that is not below the root")
	}
	if err := x.Command("kubelet").Run(); err == nil || !strings.Contains(err.Error(), "not found below") {
		t.Errorf("running a missing command: %v", err)
	}
	out, err := HostExec{Root: "/"}.Command("sh", "-c", "echo hi").CombinedOutput()
	if err != nil || string(out) != "hi\n" {
		t.Errorf("plain exec: %q %v", out, err)
	}
}

func TestConvertPassesYurthubExtraArgs(t *testing.T) {
	n := newNode(t)
	o := opts()
	o.YurthubExtraArgs = []string{"--enable-dummy-if=false"}
	if r, err := Convert(context.Background(), o, n.env); err != nil {
		t.Fatalf("convert: %v\n%+v", err, r)
	}
	if m := n.read(constants.YurthubManifest); !strings.Contains(m, `- "--enable-dummy-if=false"`) {
		t.Errorf("yurthub manifest lacks the extra arg:\n%s", m)
	}
}

func TestDirectClientConfigFollowsSymlinksBelowRoot(t *testing.T) {
	root := t.TempDir()
	fsys := host.FS{Root: root}
	for p, data := range map[string]string{
		"/var/lib/kubelet/pki/kubelet-client-2026.pem": "cert-and-key",
		"/etc/kubernetes/pki/ca.crt":                   "ca",
		constants.KubeletKubeconfig: `apiVersion: v1
kind: Config
clusters:
- cluster: {certificate-authority: /etc/kubernetes/pki/ca.crt, server: "https://10.0.0.1:6443"}
  name: k
contexts:
- context: {cluster: k, user: u}
  name: c
current-context: c
users:
- name: u
  user: {client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem, client-key: /var/lib/kubelet/pki/kubelet-client-current.pem}
`,
	} {
		if err := fsys.WriteFileAtomic(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// As kubelet writes it: an absolute link, which only resolves below the root.
	if err := os.Symlink("/var/lib/kubelet/pki/kubelet-client-2026.pem", fsys.Path("/var/lib/kubelet/pki/kubelet-client-current.pem")); err != nil {
		t.Fatal(err)
	}
	rc, err := DirectClientConfig(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if string(rc.CertData) != "cert-and-key" || string(rc.KeyData) != "cert-and-key" || string(rc.CAData) != "ca" || rc.Host != "https://10.0.0.1:6443" {
		t.Errorf("config %+v", rc.TLSClientConfig)
	}
}

// TestConvertUsesTheClustersTemplate: with the cluster's yurt-hub
// YurtStaticSet in kubeletcertificate mode (yurtctl convert's), the node
// step writes yurthub from it with the node's values; in token mode (no
// bootstrap token on a converted node) it uses the built-in template.
func TestConvertUsesTheClustersTemplate(t *testing.T) {
	tmpl := func(mode string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "yurt-static-set-yurt-hub", Namespace: "kube-system"},
			Data: map[string]string{"yurthub": `apiVersion: v1
kind: Pod
metadata:
  name: yurt-hub
  namespace: kube-system
  annotations: {openyurt.io/static-pod-hash: c0ffee}
spec:
  containers:
  - name: yurt-hub
    image: docker.io/openyurt/yurthub:v1.7.0
    command: [yurthub, --server-addr=https://9.9.9.9:6443, --nodepool-name=, --bootstrap-mode=` + mode + `, --enable-dummy-if=false]
`}}
	}
	n := newNode(t)
	n.template = tmpl("kubeletcertificate")
	if _, err := Convert(context.Background(), opts(), n.env); err != nil {
		t.Fatal(err)
	}
	m := n.read(constants.YurthubManifest)
	for _, want := range []string{"openyurt.io/static-pod-hash: c0ffee", "--server-addr=https://10.0.0.1:6443", "--nodepool-name=edge", "--enable-dummy-if=false"} {
		if !strings.Contains(m, want) {
			t.Errorf("manifest lacks %q:\n%s", want, m)
		}
	}
	tok := newNode(t)
	tok.template = tmpl("token")
	r, err := Convert(context.Background(), opts(), tok.env)
	if err != nil {
		t.Fatal(err)
	}
	if m := tok.read(constants.YurthubManifest); strings.Contains(m, "c0ffee") || !strings.Contains(m, "--bootstrap-mode=kubeletcertificate") {
		t.Errorf("token-mode template used on a converted node:\n%s", m)
	}
	found := false
	for _, s := range r.Steps {
		if strings.Contains(s.Message, "the cluster's template is for token mode") {
			found = true
		}
	}
	if !found {
		t.Errorf("the step does not say why the built-in template was used: %+v", r.Steps)
	}
}

// A kubelet file that is a symlink (a device image keeping its settings
// elsewhere) comes back as the same symlink, on rollback and on revert, and
// the file it points at is never written.
func TestSymlinkedKubeletFileComesBackAsTheSymlink(t *testing.T) {
	for _, fail := range []bool{false, true} {
		n := newNode(t)
		if err := n.h.FS.WriteFileAtomic("/srv/device/kubeadm-flags.env", []byte(origFlags), 0o640); err != nil {
			t.Fatal(err)
		}
		if _, err := n.h.FS.Remove(constants.KubeletFlagsEnvFile); err != nil {
			t.Fatal(err)
		}
		if err := n.h.FS.SymlinkAtomic("../../../srv/device/kubeadm-flags.env", constants.KubeletFlagsEnvFile); err != nil {
			t.Fatal(err)
		}
		before := n.tree()
		n.broken.Store(fail)
		r, err := Convert(context.Background(), opts(), n.env)
		if fail {
			if err == nil || r.Outcome != OutcomeRolledBack {
				t.Fatalf("want a rollback, got %v %+v", err, r)
			}
		} else {
			if err != nil || r.Outcome != OutcomeConverted {
				t.Fatalf("convert: %v %+v", err, r)
			}
			if n.read("/srv/device/kubeadm-flags.env") != origFlags {
				t.Errorf("convert wrote through the symlink into the file it points at")
			}
			if r, err = Revert(context.Background(), opts(), n.env); err != nil || r.Outcome != OutcomeReverted {
				t.Fatalf("revert: %v %+v", err, r)
			}
		}
		if d := diff(before, n.tree()); d != "" {
			t.Errorf("rolled back %v: the node is not as before:\n%s", fail, d)
		}
	}
}

// Revert never removes through a symlink into a system directory: with
// /var/lib/yurthub a link to /etc, /etc stays whole and revert says why.
func TestRevertDoesNotRemoveThroughALinkIntoASystemDir(t *testing.T) {
	n := newNode(t)
	if _, err := Convert(context.Background(), opts(), n.env); err != nil {
		t.Fatal(err)
	}
	if _, err := n.h.FS.RemoveAll(constants.YurthubDir); err != nil {
		t.Fatal(err)
	}
	hosttest.WriteFile(t, n.h, "/etc/passwd", "root:x:0:0::/root:/bin/sh\n")
	if err := n.h.FS.SymlinkAtomic("../../etc", constants.YurthubDir); err != nil {
		t.Fatal(err)
	}
	r, err := Revert(context.Background(), opts(), n.env)
	if err == nil || !strings.Contains(r.Message, "symlink to the system directory /etc") {
		t.Fatalf("want revert to refuse and say why, got %v %+v", err, r)
	}
	if n.read("/etc/passwd") != "root:x:0:0::/root:/bin/sh\n" {
		t.Error("/etc/passwd went")
	}
}
