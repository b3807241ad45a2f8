package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/host/hosttest"
)

func TestParseCachePath(t *testing.T) {
	for _, tc := range []struct {
		rel   string
		want  cachedObject
		found bool
	}{
		{"kube-proxy/services.v1.core/default/web", cachedObject{Component: "kube-proxy", Resource: "services", Version: "v1", Group: "core", Namespace: "default", Name: "web"}, true},
		{"multiplexer-proxy-edge-1/endpointslices.v1.discovery.k8s.io/default/web-abc", cachedObject{Component: "multiplexer-proxy-edge-1", Resource: "endpointslices", Version: "v1", Group: "discovery.k8s.io", Namespace: "default", Name: "web-abc"}, true},
		{"kubelet/nodes.v1.core/edge-1", cachedObject{Component: "kubelet", Resource: "nodes", Version: "v1", Group: "core", Name: "edge-1"}, true},
		{"_internal/restmapper/cache-crd-restmapper.conf", cachedObject{}, false},
		{"kubelet/pods/default/old-layout", cachedObject{}, false},
		{"kubelet/pods.v1.core/default/tmp_app", cachedObject{}, false},
		{"kubelet/pods.v1.core", cachedObject{}, false},
	} {
		got, found := parseCachePath(tc.rel)
		if found != tc.found || got != tc.want {
			t.Errorf("parseCachePath(%q) = %+v, %v; want %+v, %v", tc.rel, got, found, tc.want, tc.found)
		}
	}
}

// staleNode plants, on the healthy fixture, what a node cut off while a
// Service was deleted and another one replaced holds: kube-proxy's and
// the multiplexer's copies of Service web (gone from the cloud) and its
// EndpointSlice, Service api cached with an old UID, and a ConfigMap the
// node may not list.
func staleNode(t *testing.T, f *fixture) {
	f.write("/etc/kubernetes/cache/kube-proxy/services.v1.core/default/web", `{"metadata":{"name":"web","namespace":"default","uid":"u-web"}}`)
	f.write("/etc/kubernetes/cache/multiplexer-proxy-edge-1/services.v1.core/default/web", `{"metadata":{"name":"web","namespace":"default","uid":"u-web"}}`)
	f.write("/etc/kubernetes/cache/multiplexer-proxy-edge-1/endpointslices.v1.discovery.k8s.io/default/web-x1", `{"metadata":{"uid":"u-eps"}}`)
	f.write("/etc/kubernetes/cache/kube-proxy/services.v1.core/default/api", `{"metadata":{"name":"api","namespace":"default","uid":"u-api-old"}}`)
	f.write("/etc/kubernetes/cache/kubelet/configmaps.v1.core/default/settings", `{}`)
	for _, o := range []runtime.Object{
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "api", UID: types.UID("u-api-new")}},
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "api-x2"}},
	} {
		if err := f.cloud.Tracker().Add(o); err != nil {
			t.Fatal(err)
		}
	}
	f.listErrs = map[string]error{"configmaps": apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "", errors.New("node may not list"))}
}

func TestCheckCacheStale(t *testing.T) {
	f := newFixture(t)
	staleNode(t, f)
	rep, _, _ := f.run()
	c, found := rep.finding(CheckCacheStale)
	if !found {
		t.Fatal("no cache-stale finding")
	}
	if c.Status != StatusWarn || !strings.Contains(c.Summary, "4 cached objects are no longer in the cloud") {
		t.Fatalf("cache-stale = %s %q, want warn naming 4 objects; evidence %q", c.Status, c.Summary, c.Evidence)
	}
	ev := strings.Join(c.Evidence, "\n")
	for _, want := range []string{
		"kube-proxy services default/web: deleted in the cloud",
		"multiplexer-proxy-edge-1 services default/web: deleted in the cloud",
		"multiplexer-proxy-edge-1 endpointslices.discovery.k8s.io default/web-x1: deleted in the cloud",
		"kube-proxy services default/api: replaced in the cloud (cached uid u-api-old, now u-api-new)",
		"not compared: configmaps.core in default: the node may not list them",
	} {
		if !strings.Contains(ev, want) {
			t.Errorf("evidence does not say %q:\n%s", want, ev)
		}
	}
	if strings.Contains(ev, "yurt-hub-cfg") || strings.Contains(ev, "app-1: deleted") {
		t.Errorf("objects the cloud has are called stale:\n%s", ev)
	}
	if !strings.Contains(c.Fix, "yurtadm cache repair") {
		t.Errorf("fix %q does not name the repair", c.Fix)
	}

	// Cut off: not compared, not a failure.
	f = newFixture(t)
	staleNode(t, f)
	f.unreachable()
	rep, _, _ = f.run()
	if c, _ := rep.finding(CheckCacheStale); c.Status != StatusSkip {
		t.Errorf("cache-stale with the cloud unreachable = %s %q, want skip", c.Status, c.Summary)
	}
}

// runRepair runs yurtadm cache repair on the fixture, as root unless
// euid says otherwise.
func (f *fixture) repair(euid int, args ...string) (repairResult, int, string) {
	f.t.Helper()
	var out, errOut bytes.Buffer
	s := cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	confirm := func(context.Context, cmdutil.IOStreams, string, string) error {
		return cmdutil.Usagef("pass --force", "refusing to prompt")
	}
	cmd := newCacheCommand(s, f.deps(), confirm, func() int { return euid })
	cmd.SetArgs(append([]string{"repair", "--host-root", f.h.FS.Root, "-o", "json", "--timeout", "5s", "--wait", "2s"}, args...))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	var res repairResult
	if out.Len() > 0 {
		if jerr := json.Unmarshal(out.Bytes(), &res); jerr != nil {
			f.t.Fatalf("output is not JSON: %v\n%s", jerr, out.String())
		}
	}
	msg := errOut.String()
	if err != nil {
		msg += err.Error() + " | " + cmdutil.Hint(err)
	}
	return res, cmdutil.ExitCode(err), msg
}

var staleFiles = []string{
	"/etc/kubernetes/cache/kube-proxy/services.v1.core/default/api",
	"/etc/kubernetes/cache/kube-proxy/services.v1.core/default/web",
	"/etc/kubernetes/cache/multiplexer-proxy-edge-1/endpointslices.v1.discovery.k8s.io/default/web-x1",
	"/etc/kubernetes/cache/multiplexer-proxy-edge-1/services.v1.core/default/web",
}

var keptFiles = []string{
	"/etc/kubernetes/cache/kubelet/pods.v1.core/default/app-1",
	"/etc/kubernetes/cache/kubelet/configmaps.v1.core/default/settings",
	"/etc/kubernetes/cache/yurthub/configmaps.v1.core/kube-system/yurt-hub-cfg",
	"/etc/kubernetes/cache/multiplexer-proxy-edge-1/services.v1.core/default/kubernetes",
}

func TestCacheRepair(t *testing.T) {
	healthPoll = 10 * time.Millisecond
	stopHub := func(f *fixture) string {
		return "crictl --runtime-endpoint unix://" + f.h.FS.Path(socketPath) + " stop hub0000000000000001"
	}
	t.Run("removes exactly the stale objects, yurthub and kubelet stopped meanwhile", func(t *testing.T) {
		f := newFixture(t)
		staleNode(t, f)
		init := f.h.Init.(*hosttest.Init)
		init.Active = map[string]bool{"kubelet": true}
		f.sc.Answers[stopHub(f)] = hosttest.Answer{}
		var seenWhenStopped []string
		init.OnStart = func(string) {
			for _, p := range append(staleFiles, keptFiles...) {
				if f.h.FS.Exists(p) {
					seenWhenStopped = append(seenWhenStopped, p)
				}
			}
		}
		res, code, msg := f.repair(0, "--force")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, msg)
		}
		if !slices.Equal(res.Removed, staleFiles) {
			t.Errorf("removed %q, want %q", res.Removed, staleFiles)
		}
		if !slices.Equal(seenWhenStopped, keptFiles) {
			t.Errorf("when kubelet started again the cache held %q, want %q", seenWhenStopped, keptFiles)
		}
		for _, p := range keptFiles {
			if !f.h.FS.Exists(p) {
				t.Errorf("%s was removed; the cloud has it or it was not compared", p)
			}
		}
		if got, want := init.CallLog(), []string{"stop kubelet", "start kubelet"}; !slices.Equal(got, want) {
			t.Errorf("init calls %q, want %q", got, want)
		}
		if i := slices.Index(f.sc.Ran, stopHub(f)); i < 0 {
			t.Errorf("yurthub's container was not stopped: %q", f.sc.Ran)
		}
		if !res.YurthubReady {
			t.Error("repair did not wait for yurthub")
		}
	})
	t.Run("dry run, not root: lists and changes nothing", func(t *testing.T) {
		f := newFixture(t)
		staleNode(t, f)
		before := hosttest.Tree(t, f.h)
		res, code, msg := f.repair(1000, "--dry-run")
		if code != 0 || len(res.Stale) != 4 || len(res.Removed) != 0 || !res.DryRun {
			t.Fatalf("exit %d, %d stale, removed %q: %s", code, len(res.Stale), res.Removed, msg)
		}
		if !strings.Contains(msg, "would stop kubelet and yurthub, remove these 4 files") {
			t.Errorf("dry run does not say what it would do: %s", msg)
		}
		assertUnchanged(t, f, before)
	})
	for _, tc := range []struct {
		name  string
		setup func(*fixture)
		euid  int
		args  []string
		code  int
		words string
	}{
		{name: "cloud unreachable", setup: func(f *fixture) { f.unreachable() }, code: cmdutil.ExitError, words: "once the node reaches the cloud again"},
		{name: "not root", euid: 1000, code: cmdutil.ExitPreflight, words: "must run as root"},
		{name: "no terminal, no --force", code: cmdutil.ExitUsage, words: "--force"},
		{name: "bad --wait", args: []string{"--wait", "0s"}, code: cmdutil.ExitUsage, words: "--wait 0s is not positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			staleNode(t, f)
			if tc.setup != nil {
				tc.setup(f)
			}
			f.h.Init.(*hosttest.Init).Active = map[string]bool{"kubelet": true}
			before := hosttest.Tree(t, f.h)
			args := tc.args
			if tc.name != "no terminal, no --force" {
				args = append(args, "--force")
			}
			_, code, msg := f.repair(tc.euid, args...)
			if code != tc.code || !strings.Contains(msg, tc.words) {
				t.Fatalf("exit %d (%s), want %d naming %q", code, msg, tc.code, tc.words)
			}
			assertUnchanged(t, f, before)
			if calls := f.h.Init.(*hosttest.Init).CallLog(); len(calls) != 0 {
				t.Errorf("init calls %q: kubelet was touched", calls)
			}
		})
	}
	t.Run("yurthub does not come back", func(t *testing.T) {
		f := newFixture(t)
		staleNode(t, f)
		f.h.Init.(*hosttest.Init).Active = map[string]bool{"kubelet": true}
		f.sc.Answers[stopHub(f)] = hosttest.Answer{}
		var restarted atomic.Bool
		f.h.Init.(*hosttest.Init).OnStart = func(string) { restarted.Store(true) }
		f.healthz = func(w http.ResponseWriter, _ *http.Request) {
			if restarted.Load() {
				http.Error(w, "starting", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprint(w, "OK")
		}
		_, code, msg := f.repair(0, "--force")
		if code != cmdutil.ExitTimeout || !strings.Contains(msg, "did not answer its healthz within 2s") {
			t.Fatalf("exit %d (%s), want %d", code, msg, cmdutil.ExitTimeout)
		}
	})
	t.Run("a symlinked component directory is not followed", func(t *testing.T) {
		f := newFixture(t)
		staleNode(t, f)
		f.h.Init.(*hosttest.Init).Active = map[string]bool{"kubelet": true}
		f.sc.Answers[stopHub(f)] = hosttest.Answer{}
		real := f.h.FS.Path("/srv/elsewhere")
		if err := os.MkdirAll(real+"/services.v1.core/default", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(real+"/services.v1.core/default/gone", []byte(`{}`), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(real, f.h.FS.Path("/etc/kubernetes/cache/coredns")); err != nil {
			t.Fatal(err)
		}
		res, code, msg := f.repair(0, "--force")
		if code != 0 || !slices.Equal(res.Removed, staleFiles) {
			t.Fatalf("exit %d, removed %q: %s", code, res.Removed, msg)
		}
		if _, err := os.Stat(real + "/services.v1.core/default/gone"); err != nil {
			t.Errorf("a file behind the symlink was removed: %v", err)
		}
	})
	t.Run("nothing stale", func(t *testing.T) {
		f := newFixture(t)
		res, code, msg := f.repair(0, "--force")
		if code != 0 || len(res.Stale) != 0 || !strings.Contains(msg, "nothing to repair") {
			t.Fatalf("exit %d, %d stale: %s", code, len(res.Stale), msg)
		}
		if calls := f.h.Init.(*hosttest.Init).CallLog(); len(calls) != 0 {
			t.Errorf("init calls %q with nothing to repair", calls)
		}
	})
}

func assertUnchanged(t *testing.T, f *fixture, before []string) {
	t.Helper()
	if after := hosttest.Tree(t, f.h); !slices.Equal(after, before) {
		t.Errorf("the host changed:\nbefore %q\nafter  %q", before, after)
	}
}

func TestNoSymlinkBelow(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(root+"/cache/kubelet/pods.v1.core/default", 0o755))
	must(os.WriteFile(root+"/cache/kubelet/pods.v1.core/default/a", nil, 0o600))
	must(os.MkdirAll(root+"/elsewhere/default", 0o755))
	must(os.WriteFile(root+"/elsewhere/default/b", nil, 0o600))
	must(os.Symlink(root+"/elsewhere", root+"/cache/kubelet/services.v1.core"))
	must(os.Symlink(root+"/elsewhere/default/b", root+"/cache/kubelet/pods.v1.core/default/link"))
	for _, tc := range []struct {
		target, err string
	}{
		{root + "/cache/kubelet/pods.v1.core/default/a", ""},
		{root + "/cache/kubelet/services.v1.core/default/b", "is a symbolic link"},
		{root + "/cache/kubelet/pods.v1.core/default/link", "is a symbolic link"},
		{root + "/cache/kubelet/pods.v1.core/default", "not a regular file"},
		{root + "/elsewhere/default/b", "is not below"},
	} {
		err := noSymlinkBelow(root+"/cache", tc.target)
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("noSymlinkBelow(%s) = %v, want %q", tc.target, err, tc.err)
		}
	}
}

func TestCheckDiskSpace(t *testing.T) {
	for _, tc := range []struct {
		name   string
		avail  map[string]uint64 // by host path suffix; others 20 GiB
		status Status
		words  string
	}{
		{name: "room", status: StatusOK, words: "enough free space"},
		{name: "kubelet's disk full", avail: map[string]uint64{"/var/lib/kubelet": 4096}, status: StatusFail, words: "no space left on /var/lib/kubelet"},
		{name: "cache disk low", avail: map[string]uint64{"/etc/kubernetes": 100 << 20}, status: StatusWarn, words: "little space left on /etc/kubernetes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			for _, d := range []string{"/var/lib/kubelet", "/etc/kubernetes", "/var/lib/yurthub", "/var/lib/containerd"} {
				if err := f.h.FS.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			f.statfs = func(p string) (uint64, uint64, error) {
				for suffix, a := range tc.avail {
					if strings.HasSuffix(p, suffix) {
						return a, 64 << 30, nil
					}
				}
				return 20 << 30, 64 << 30, nil
			}
			rep, _, _ := f.run()
			c, _ := rep.finding(CheckDiskSpace)
			if c.Status != tc.status || !strings.Contains(c.Summary, tc.words) {
				t.Errorf("disk-space = %s %q %q, want %s naming %q", c.Status, c.Summary, c.Evidence, tc.status, tc.words)
			}
		})
	}
}
