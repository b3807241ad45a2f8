package doctor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/host/hosttest"
	"github.com/yurtadm/yurtadm/templates"
)

const newHubImage = "docker.io/openyurt/yurthub:v1.7.1"

// otaNode makes the fixture a node whose YurtStaticSet asks for
// newHubImage: the mirror pod (pending sets PodNeedUpgrade) and the
// YurtStaticSet's ConfigMap, with the chart's empty --nodepool-name and a
// template hash. When the manifest names newHubImage, kubelet "starts" a
// new yurt-hub container and the mirror pod carries the new hash, unless
// the image is broken.
type otaNode struct {
	f         *fixture
	broken    bool
	newYAML   string
	imagePull hosttest.Answer
}

const newHash = "759d9f855f"

func (o *otaNode) running() bool {
	b, _ := o.f.h.FS.ReadFile(constants.YurthubManifest)
	return !o.broken && strings.Contains(string(b), newHubImage)
}

func newOTANode(t *testing.T, pending bool) *otaNode {
	f := newFixture(t)
	// The node was joined with an extra flag the template lacks.
	f.manifest(constants.YurthubBootstrapModeKCE, "--enable-dummy-if=false")
	o := &otaNode{f: f}
	b, err := templates.RenderYurthub(templates.Yurthub{Image: newHubImage, Namespace: "kube-system",
		ServerAddr: "https://cluster-wide:6443", NodePoolName: "placeholder", WorkingMode: "edge", BootstrapMode: constants.YurthubBootstrapModeKCE, Verbosity: 2})
	if err != nil {
		t.Fatal(err)
	}
	o.newYAML = strings.Replace(string(b), "--nodepool-name=placeholder", "--nodepool-name=", 1)
	o.newYAML = strings.Replace(o.newYAML, "annotations:\n", "annotations:\n    "+staticPodHashAnnotation+": "+newHash+"\n", 1)
	status := corev1.ConditionFalse
	if pending {
		status = corev1.ConditionTrue
	}
	cm := corev1.ConfigMap{TypeMeta: metav1.TypeMeta{Kind: "ConfigMap", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: "yurt-static-set-yurt-hub", Namespace: "kube-system", Annotations: map[string]string{staticPodHashAnnotation: newHash}},
		Data:       map[string]string{"yurthub": o.newYAML}}
	f.handlers = map[string]http.HandlerFunc{
		"/api/v1/namespaces/kube-system/pods/yurt-hub-" + testNode: func(w http.ResponseWriter, _ *http.Request) {
			hash := "75bf5bdf5c"
			if o.running() {
				hash = newHash
			}
			pod := corev1.Pod{TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
				ObjectMeta: metav1.ObjectMeta{Name: "yurt-hub-" + testNode, Namespace: "kube-system", Annotations: map[string]string{staticPodHashAnnotation: hash}},
				Status:     corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: podNeedUpgrade, Status: status}}}}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(pod)
		},
		"/api/v1/namespaces/kube-system/configmaps/yurt-static-set-yurt-hub": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(cm)
		},
	}
	return o
}

// run runs yurtadm upgrade yurthub -o json as root.
func (o *otaNode) run(t *testing.T, args ...string) (upgradeResult, int, string) {
	t.Helper()
	f := o.f
	dp := f.deps()
	real := "crictl --runtime-endpoint unix://" + f.h.FS.Path(socketPath) + " "
	f.sc.Funcs = map[string]func() hosttest.Answer{real + "ps -a -o json": func() hosttest.Answer {
		ps := []map[string]any{}
		for _, c := range f.containers {
			ps = append(ps, c.psJSON())
		}
		if o.running() {
			ps = append(ps, container{id: "hub0000000000000002", name: "yurt-hub", pod: "kube-system/yurt-hub-edge-1", state: stateRunning, attempt: 0}.psJSON())
		}
		return hosttest.Answer{Out: mustJSON(map[string]any{"containers": ps})}
	}}
	f.sc.Answers[real+"inspecti -q "+newHubImage] = o.imagePull
	if o.imagePull.Err != nil {
		f.sc.Answers[real+"pull "+newHubImage] = hosttest.Answer{Out: "pull failed: no route to registry", Err: fmt.Errorf("exit status 1")}
	}
	var out, errOut bytes.Buffer
	cmd := newUpgradeCommand(cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, dp, func() int { return 0 })
	cmd.SetArgs(append([]string{"yurthub", "--host-root", f.h.FS.Root, "-o", "json", "--wait", "1s"}, args...))
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	var res upgradeResult
	if out.Len() > 0 {
		if jerr := json.Unmarshal(out.Bytes(), &res); jerr != nil {
			t.Fatalf("not JSON: %v\n%s", jerr, out.String())
		}
	}
	msg := errOut.String()
	if err != nil {
		msg += err.Error() + " | " + cmdutil.Hint(err)
	}
	return res, cmdutil.ExitCode(err), msg
}

func TestUpgradeYurthub(t *testing.T) {
	healthPoll = 10 * time.Millisecond
	t.Run("pending: yurthub upgrades itself, the old manifest is kept", func(t *testing.T) {
		o := newOTANode(t, true)
		old, _ := o.f.h.FS.ReadFile(constants.YurthubManifest)
		res, code, msg := o.run(t)
		if code != 0 || !res.Upgraded || res.RolledBack {
			t.Fatalf("exit %d, %+v: %s", code, res, msg)
		}
		if res.From != "docker.io/openyurt/yurthub:v1.7.0" || res.To != newHubImage {
			t.Errorf("from %s to %s", res.From, res.To)
		}
		// The template for this node: its own server, pool and extra
		// flag, the template's image and hash.
		m, err := parseManifest(must(o.f.h.FS.ReadFile(constants.YurthubManifest)))
		if err != nil {
			t.Fatal(err)
		}
		for flag, want := range map[string]string{"server-addr": testServer, "nodepool-name": "edge", "enable-dummy-if": "false", "working-mode": "edge"} {
			if got := m.arg(flag, "<unset>"); got != want {
				t.Errorf("new manifest --%s=%s, want %s", flag, got, want)
			}
		}
		if m.container.Image != newHubImage || m.pod.Annotations[staticPodHashAnnotation] != newHash {
			t.Errorf("new manifest: image %s, hash %q", m.container.Image, m.pod.Annotations[staticPodHashAnnotation])
		}
		if !strings.Contains(msg, "kept this node's --enable-dummy-if=false") {
			t.Errorf("the kept flag is not reported: %s", msg)
		}
		if b, _ := o.f.h.FS.ReadFile(upgradeBackup); !bytes.Equal(b, old) {
			t.Errorf("%s does not hold the replaced manifest", upgradeBackup)
		}
		if st, err := o.f.h.FS.Stat(upgradeBackup); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", upgradeBackup, err, st.Mode().Perm())
		}
	})
	t.Run("not pending: nothing asked, nothing written", func(t *testing.T) {
		o := newOTANode(t, false)
		before := hosttest.Tree(t, o.f.h)
		res, code, msg := o.run(t)
		if code != 0 || res.Pending || res.Upgraded || !strings.Contains(res.Message, "up to date") {
			t.Fatalf("exit %d, %+v: %s", code, res, msg)
		}
		assertUnchanged(t, o.f, before)
	})
	t.Run("dry run names the target and changes nothing", func(t *testing.T) {
		o := newOTANode(t, true)
		before := hosttest.Tree(t, o.f.h)
		res, code, msg := o.run(t, "--dry-run")
		if code != 0 || !res.Pending || !strings.Contains(res.Message, "would upgrade yurthub on edge-1 from docker.io/openyurt/yurthub:v1.7.0 to "+newHubImage) {
			t.Fatalf("exit %d, %+v: %s", code, res, msg)
		}
		assertUnchanged(t, o.f, before)
	})
	t.Run("the new image cannot be had: refused before anything changes", func(t *testing.T) {
		o := newOTANode(t, true)
		o.imagePull = hosttest.Answer{Err: fmt.Errorf("exit status 1")}
		before := hosttest.Tree(t, o.f.h)
		_, code, msg := o.run(t)
		if code != cmdutil.ExitPreflight || !strings.Contains(msg, newHubImage) || !strings.Contains(msg, "images import") {
			t.Fatalf("exit %d: %s; want %d naming the image and how to load it", code, msg, cmdutil.ExitPreflight)
		}
		assertUnchanged(t, o.f, before)
	})
	t.Run("the new yurthub never comes up: the old manifest is put back", func(t *testing.T) {
		o := newOTANode(t, true)
		o.broken = true
		old, _ := o.f.h.FS.ReadFile(constants.YurthubManifest)
		res, code, msg := o.run(t)
		if code != cmdutil.ExitTimeout || !res.RolledBack || !strings.Contains(msg, "--yurthub-image docker.io/openyurt/yurthub:v1.7.0") {
			t.Fatalf("exit %d, %+v: %s; want %d, rolled back, with the command to set the image back", code, res, msg, cmdutil.ExitTimeout)
		}
		if b, _ := o.f.h.FS.ReadFile(constants.YurthubManifest); !bytes.Equal(b, old) {
			t.Error("the old manifest is not back")
		}
	})
	t.Run("yurthub down: refused", func(t *testing.T) {
		o := newOTANode(t, true)
		o.f.healthz = nil
		_, code, msg := o.run(t)
		if code != cmdutil.ExitPreflight || !strings.Contains(msg, "yurtadm doctor") {
			t.Fatalf("exit %d: %s", code, msg)
		}
	})
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestCheckYurthubUpgrade(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cm      bool
		pending bool
		status  Status
		words   string
	}{
		{name: "no YurtStaticSet", status: StatusOK, words: "no YurtStaticSet yurt-hub"},
		{name: "up to date", cm: true, status: StatusOK, words: "what its YurtStaticSet asks for"},
		{name: "pending", cm: true, pending: true, status: StatusWarn, words: "upgrade of yurthub to " + newHubImage + " is pending"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.cm {
				o := newOTANode(t, tc.pending)
				f = o.f
				cond := corev1.ConditionFalse
				if tc.pending {
					cond = corev1.ConditionTrue
				}
				for _, obj := range []runtime.Object{
					&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "yurt-static-set-yurt-hub", Namespace: "kube-system"}, Data: map[string]string{"yurthub": o.newYAML}},
					&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "yurt-hub-" + testNode, Namespace: "kube-system"},
						Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: podNeedUpgrade, Status: cond}}}},
				} {
					if err := f.cloud.Tracker().Add(obj); err != nil {
						t.Fatal(err)
					}
				}
			}
			rep, _, _ := f.run()
			c, _ := rep.finding(CheckYurthubUpgrade)
			if c.Status != tc.status || !strings.Contains(c.Summary, tc.words) {
				t.Errorf("yurthub-upgrade = %s %q, want %s naming %q", c.Status, c.Summary, tc.status, tc.words)
			}
			if tc.pending && !strings.Contains(c.Fix, "yurtadm upgrade yurthub") {
				t.Errorf("fix %q does not name the command", c.Fix)
			}
		})
	}
}
