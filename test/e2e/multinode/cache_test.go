package multinode

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestStaleCacheAfterOfflineReboot is openyurtio/openyurt#2809 on the
// harness: a Service is deleted while an edge node is cut off, the node
// reboots while still cut off and yurthub serves the Service from its
// cache (kube-proxy programs its ClusterIP again); the link heals. What
// yurthub still holds of the deleted Service is measured; doctor's
// cache-stale check must name each such file, and `yurtadm cache repair`
// must remove exactly those and leave yurthub healthy.
func TestStaleCacheAfterOfflineReboot(t *testing.T) {
	c := need(t)
	n := node(t, edge1Name)
	ctx := timeout(t, 10*time.Minute)
	const svcName = "stale-svc"
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: svcName, Namespace: "default"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": svcName},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	created, err := c.Client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = c.Client.CoreV1().Services("default").Delete(context.Background(), svcName, metav1.DeleteOptions{})
	}()
	ip := created.Spec.ClusterIP
	cached := func() []string { return cacheFilesOf(n.Merged(), "default", svcName) }
	if !waitFor(t, 90*time.Second, "yurthub caches Service "+svcName, func() bool { return len(cached()) > 0 }) {
		t.Fatalf("yurthub on %s never cached Service %s", n.Name, svcName)
	}
	t.Logf("cached before the outage: %q", cached())
	// What yurthub held before the outage, to put back should it drop the
	// deleted Service by itself once the link heals.
	copies := map[string][]byte{}
	for _, p := range cached() {
		if b, err := os.ReadFile(filepath.Join(n.Merged(), p)); err == nil {
			copies[p] = b
		}
	}

	if err := n.Partition(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = n.Heal(context.Background()) }()
	if err := c.Client.CoreV1().Services("default").Delete(ctx, svcName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := n.Poweroff(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := n.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	// kube-proxy, started from yurthub's cache, programs the deleted
	// Service: the symptom of #2809. A Service without endpoints (this
	// one selects no pod) is a REJECT rule in the filter table, not a
	// rule in nat: look at every table.
	booted := time.Now()
	programmed := waitFor(t, 100*time.Second, "kube-proxy programs "+ip+" from the cache", func() bool {
		out, err := n.Output(ctx, "iptables-save")
		return err == nil && strings.Contains(out, ip)
	})
	rules, _ := n.Output(ctx, "iptables-save")
	var mine []string
	for _, l := range strings.Split(rules, "\n") {
		if strings.Contains(l, ip) {
			mine = append(mine, l)
		}
	}
	measure(t, "offline after the reboot: ClusterIP %s of the deleted Service programmed = %v, %s after the node booted (%q); cache %q",
		ip, programmed, time.Since(booted).Round(time.Second), mine, cached())

	if err := n.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	if err := c.WaitNodeReady(ctx, n.Name, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	// How long does yurthub keep the deleted Service once the cloud is back?
	gone := waitFor(t, 90*time.Second, "yurthub drops "+svcName+" by itself", func() bool { return len(cached()) == 0 })
	left := cached()
	measure(t, "stale cache: deleted Service cached on %s after the offline reboot; %s after healing yurthub still holds %d files (%q); self-cleaned = %v",
		n.Name, time.Since(healed).Round(time.Second), len(left), left, gone)

	if len(left) == 0 {
		// yurthub v1.7.0 dropped the deleted Service when kube-proxy
		// listed again; a yurthub that missed the delete holds what it
		// held before: put that back, so doctor and repair work on a
		// real node's cache with yurthub and kubelet really running.
		for p, b := range copies {
			if err := os.WriteFile(filepath.Join(n.Merged(), p), b, 0o600); err != nil {
				t.Fatal(err)
			}
			left = append(left, p)
		}
		sort.Strings(left)
		t.Logf("put back the pre-outage copies %q", left)
	}
	r, err := n.Run(ctx, "yurtadm", "doctor", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Findings []struct {
			Name, Status, Summary string
			Evidence              []string
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatalf("doctor -o json: %v\n%s", err, r)
	}
	var stale []string
	status := ""
	for _, f := range rep.Findings {
		if f.Name == "cache-stale" {
			status = f.Status
			for _, e := range f.Evidence {
				if strings.Contains(e, "default/"+svcName) || strings.Contains(e, "default/"+svcName+"-") {
					stale = append(stale, e)
				}
			}
			t.Logf("doctor cache-stale: %s %s\n%s", f.Status, f.Summary, strings.Join(f.Evidence, "\n"))
		}
	}
	if status == "" || status == "skip" {
		t.Fatalf("doctor did not compare the cache with the cloud (cache-stale %q)", status)
	}
	for _, p := range left {
		rel := strings.TrimPrefix(p, "/etc/kubernetes/cache/")
		found := false
		for _, e := range stale {
			if strings.Contains(e, rel) {
				found = true
			}
		}
		if !found {
			t.Errorf("doctor does not name the stale file %s; it names %q", p, stale)
		}
	}
	if status != "warn" {
		t.Errorf("cache-stale is %s with %d stale files", status, len(left))
	}

	before := cacheFileCount(n.Merged())
	r, err = n.Run(ctx, "yurtadm", "cache", "repair", "--force", "-o", "json")
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("yurtadm cache repair: %v\n%s", err, r)
	}
	var res struct {
		Removed      []string `json:"removed"`
		YurthubReady bool     `json:"yurthubReady"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil {
		t.Fatalf("cache repair -o json: %v\n%s", err, r)
	}
	measure(t, "yurtadm cache repair: removed %d files in %s (%d cached before): %q", len(res.Removed), r.Took.Round(100*time.Millisecond), before, res.Removed)
	if left := cached(); len(left) > 0 {
		t.Errorf("after repair yurthub still caches %q", left)
	}
	for _, p := range res.Removed {
		if !strings.Contains(p, svcName) {
			t.Errorf("repair removed %s, which is not the deleted Service's", p)
		}
	}
	if !res.YurthubReady {
		t.Error("repair did not see yurthub healthy again")
	}
	if err := c.WaitNodeReady(ctx, n.Name, 2*time.Minute); err != nil {
		t.Errorf("after repair: %v", err)
	}
}

// cacheFilesOf are the host paths of yurthub's cached copies of
// namespace/name (the object and, for a Service, its EndpointSlices).
func cacheFilesOf(root, namespace, name string) []string {
	var out []string
	base := filepath.Join(root, "etc/kubernetes/cache")
	_ = filepath.WalkDir(base, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return nil
		}
		if filepath.Base(filepath.Dir(p)) == namespace && (e.Name() == name || strings.HasPrefix(e.Name(), name+"-")) {
			rel, _ := filepath.Rel(root, p)
			out = append(out, "/"+rel)
		}
		return nil
	})
	return out
}

func cacheFileCount(root string) int {
	n := 0
	_ = filepath.WalkDir(filepath.Join(root, "etc/kubernetes/cache"), func(_ string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// waitFor polls cond every half second for up to d and says whether it held.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			t.Logf("not within %s: %s", d, what)
			return false
		}
		time.Sleep(500 * time.Millisecond)
	}
}
