package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/yurtadm/yurtadm/test/e2e/harness"
)

// doctorReport is `yurtadm doctor -o json`.
type doctorReport struct {
	Node     string `json:"node"`
	Healthy  bool   `json:"healthy"`
	Findings []struct {
		Name     string   `json:"name"`
		Status   string   `json:"status"`
		Summary  string   `json:"summary"`
		Evidence []string `json:"evidence"`
		Fix      string   `json:"fix"`
	} `json:"findings"`
}

const kubeletLog = "/var/log/systemctl-standin/kubelet.log"

// doctor runs `yurtadm doctor -o json` on the node and parses its report.
func doctor(t *testing.T) (doctorReport, harness.Result) {
	t.Helper()
	r, err := h.Run(context.Background(), h.Yurtadm(), "doctor", "-o", "json", "--kubelet-log", kubeletLog)
	if err != nil {
		t.Fatal(err)
	}
	var rep doctorReport
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatalf("doctor -o json: %v\n%s", err, r)
	}
	for _, f := range rep.Findings {
		if f.Status != "ok" {
			t.Logf("doctor: %-28s %-4s %s | fix: %s", f.Name, f.Status, f.Summary, f.Fix)
		}
	}
	return rep, r
}

// wantFinding asserts that the report has check name with status, and that
// its summary and fix contain the given texts.
func wantFinding(t *testing.T, rep doctorReport, r harness.Result, name, status string, summary, fix []string) {
	t.Helper()
	for _, f := range rep.Findings {
		if f.Name != name {
			continue
		}
		if f.Status != status {
			t.Errorf("%s: status %q, want %q (summary %q, evidence %q)", name, f.Status, status, f.Summary, f.Evidence)
		}
		for _, s := range summary {
			if !strings.Contains(f.Summary, s) {
				t.Errorf("%s: summary %q does not say %q", name, f.Summary, s)
			}
		}
		for _, s := range fix {
			if !strings.Contains(f.Fix, s) {
				t.Errorf("%s: fix %q does not say %q", name, f.Fix, s)
			}
		}
		return
	}
	t.Errorf("doctor's report has no %s finding:\n%s", name, r.Stdout)
}

// wantExit asserts doctor's exit code and healthy flag.
func wantExit(t *testing.T, rep doctorReport, r harness.Result, code int) {
	t.Helper()
	if r.ExitCode != code || rep.Healthy != (code == 0) {
		t.Errorf("doctor exited %d (healthy %v), want %d\n%s", r.ExitCode, rep.Healthy, code, r)
	}
}

// wantFails asserts that exactly the named checks fail: the planted fault
// and nothing else (the node was restored after the fault before).
func wantFails(t *testing.T, rep doctorReport, names ...string) {
	t.Helper()
	wantFailsBesides(t, rep, nil, names...)
}

// wantFailsBesides is wantFails, but the checks in maybe may fail too.
func wantFailsBesides(t *testing.T, rep doctorReport, maybe []string, names ...string) {
	t.Helper()
	var got []string
	for _, f := range rep.Findings {
		if f.Status == "fail" && !slices.Contains(maybe, f.Name) {
			got = append(got, f.Name)
		}
	}
	sort.Strings(got)
	sort.Strings(names)
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("failing checks %v, want %v", got, names)
	}
}

// waitYurthub waits until yurthub's healthz answers want (200, or 0 for no
// answer at all).
func waitYurthub(t *testing.T, want int, timeout time.Duration) {
	t.Helper()
	waitURL(t, harness.YurthubHealthz, want, timeout)
}

// waitURL waits until url answers want (0: no answer).
func waitURL(t *testing.T, url string, want int, timeout time.Duration) {
	t.Helper()
	var code int
	var err error
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		code, _, err = harness.Get(url)
		if (want == 0 && err != nil) || (want != 0 && err == nil && code == want) {
			return
		}
	}
	t.Fatalf("%s did not turn %d within %s (last %d %v)", url, want, timeout, code, err)
}

// throwawayCert is a certificate and key for the node from a CA of no
// cluster: what an earlier cluster's yurthub leaves behind.
func throwawayCert(t *testing.T) []byte {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "earlier-cluster-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2),
		Subject:   pkix.Name{CommonName: "system:node:" + harness.NodeName(), Organization: []string{"system:nodes"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	_ = pem.Encode(&b, &pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	return b.Bytes()
}

// restoreFile saves path's bytes (and mode) and returns the function that
// puts them back.
func saveFile(t *testing.T, path string) func() {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.WriteFile(path, b, fi.Mode().Perm()); err != nil {
			t.Errorf("restore %s: %v", path, err)
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, b) {
			t.Errorf("%s not restored byte for byte", path)
		}
	}
}

// Scenario: yurtadm doctor on a real joined edge node, healthy, then with
// one fault planted at a time (the node restored after each).
func TestDoctor(t *testing.T) {
	h := machine(t)
	ctx := context.Background()
	join(t)
	checkJoinedNode(t, "edge")

	t.Run("healthy node", func(t *testing.T) {
		rep, r := doctor(t)
		wantExit(t, rep, r, 0)
		if rep.Node != harness.NodeName() {
			t.Errorf("doctor's node %q, want %q", rep.Node, harness.NodeName())
		}
		for _, f := range rep.Findings {
			if f.Status == "fail" {
				t.Errorf("healthy node: %s fails: %s (evidence %q)", f.Name, f.Summary, f.Evidence)
			}
		}
		for _, n := range []string{"yurthub-manifest", "yurthub-container", "yurthub-healthz", "yurthub-readyz",
			"kubelet-kubeconfig", "yurthub-certificates", "cache-components", "pods-bypassing-yurthub"} {
			wantFinding(t, rep, r, n, "ok", nil, nil)
		}
		t.Logf("doctor on a healthy node took %s", r.Took.Round(time.Millisecond))
	})

	t.Run("stale PKI", func(t *testing.T) {
		// yurthub-server-current.pem is a symlink to the dated file;
		// doctor follows it. Plant a regular file from another CA in its
		// place; yurthub keeps the certificate it loaded in memory.
		link := "/var/lib/yurthub/pki/yurthub-server-current.pem"
		target, err := os.Readlink(link)
		if err != nil {
			t.Fatalf("%s: %v (want a symlink)", link, err)
		}
		if err := os.Remove(link); err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = os.Remove(link)
			if err := os.Symlink(target, link); err != nil {
				t.Errorf("restore %s -> %s: %v", link, target, err)
			}
		}()
		if err := os.WriteFile(link, throwawayCert(t), 0o600); err != nil {
			t.Fatal(err)
		}
		rep, r := doctor(t)
		wantExit(t, rep, r, 6)
		wantFails(t, rep, "yurthub-certificates")
		wantFinding(t, rep, r, "yurthub-certificates", "fail", []string{"stale, from an earlier cluster"}, []string{"yurtadm reset"})
	})

	t.Run("yurthub stopped", func(t *testing.T) {
		manifest := "/etc/kubernetes/manifests/yurthub.yaml"
		aside := filepath.Join(h.Work, "yurthub.yaml.doctor")
		if err := os.Rename(manifest, aside); err != nil {
			t.Fatal(err)
		}
		restored := false
		restore := func() {
			if !restored {
				restored = true
				if err := os.Rename(aside, manifest); err != nil {
					t.Errorf("put back %s: %v", manifest, err)
				}
			}
		}
		defer restore()
		waitYurthub(t, 0, 90*time.Second)
		// and its container has stopped (it closes its listeners first).
		for end := time.Now().Add(90 * time.Second); time.Now().Before(end) && len(h.RunningContainers(ctx, "yurt-hub")) > 0; {
			time.Sleep(250 * time.Millisecond)
		}
		rep, r := doctor(t)
		wantExit(t, rep, r, 6)
		wantFinding(t, rep, r, "yurthub-manifest", "fail", []string{"missing"}, []string{"yurtadm join"})
		wantFinding(t, rep, r, "yurthub-healthz", "fail", nil, nil)
		// No yurthub container (removed) or an exited one: both fail.
		// kubelet-log fails too once kubelet has logged a refused
		// connection to yurthub's proxy, which depends on timing.
		wantFailsBesides(t, rep, []string{"kubelet-log"}, "yurthub-manifest", "yurthub-container", "yurthub-healthz")
		restore()
		waitYurthub(t, 200, 2*time.Minute)
		// Ready too: its filters need their informers synced again.
		waitURL(t, harness.YurthubReadyz, 200, 2*time.Minute)
		if err := h.WaitNodeReady(ctx, 2*time.Minute); err != nil {
			t.Fatalf("node not Ready again after yurthub's return: %v", err)
		}
	})

	t.Run("kubelet pointed away from yurthub", func(t *testing.T) {
		flags := "/var/lib/kubelet/kubeadm-flags.env"
		restore := saveFile(t, flags)
		defer restore()
		dropKubeconfigFlag(t, flags)
		rep, r := doctor(t)
		wantExit(t, rep, r, 6)
		wantFails(t, rep, "kubelet-kubeconfig")
		wantFinding(t, rep, r, "kubelet-kubeconfig", "fail", []string{"directly, not through yurthub"},
			[]string{"--kubeconfig=/var/lib/openyurt/kubelet.conf", "kubeadm-flags.env", "systemctl restart kubelet"})
	})

	t.Run("pod with the API server's service env", func(t *testing.T) {
		// A pod kubelet started while it talked to kube-apiserver
		// directly carries the real kubernetes Service address.
		flags := "/var/lib/kubelet/kubeadm-flags.env"
		restore := saveFile(t, flags)
		restartKubelet := func() {
			if r, err := h.Run(ctx, "systemctl", "restart", "kubelet"); err != nil || r.ExitCode != 0 {
				t.Fatalf("systemctl restart kubelet: %v\n%s", err, r)
			}
		}
		dropKubeconfigFlag(t, flags)
		restartKubelet()
		const pod = "sleeper-doctor"
		defer func() {
			zero := int64(0)
			_ = h.CP.Client.CoreV1().Pods("default").Delete(ctx, pod, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		}()
		kubeletBack := false
		defer func() {
			if !kubeletBack {
				restore()
				restartKubelet()
			}
		}()
		if _, server, err := waitKubeletServer(h, "https://"); err != nil {
			t.Fatalf("kubelet did not restart on its direct kubeconfig: %v (server %q)", err, server)
		}
		p := workloadPod(t, pod)
		restore()
		restartKubelet()
		kubeletBack = true
		if _, server, err := waitKubeletServer(h, harness.YurthubProxy); err != nil {
			t.Fatalf("kubelet did not come back through yurthub: %v (server %q)", err, server)
		}
		if err := h.WaitNodeReady(ctx, 2*time.Minute); err != nil {
			t.Fatalf("node not Ready after kubelet's restart: %v", err)
		}
		rep, r := doctor(t)
		wantExit(t, rep, r, 6)
		wantFails(t, rep, "pods-bypassing-yurthub")
		wantFinding(t, rep, r, "pods-bypassing-yurthub", "fail", []string{"1 pod ", "bypassing yurthub"},
			[]string{"recreate the pods", fmt.Sprintf("kubectl delete pod -n default %s", p.Name)})
		wantFinding(t, rep, r, "kubelet-kubeconfig", "ok", nil, nil)
	})

	t.Run("restored node", func(t *testing.T) {
		// The faults are undone and the pod is gone: nothing fails.
		zero := int64(0)
		_ = h.CP.Client.CoreV1().Pods("default").Delete(ctx, "sleeper-doctor", metav1.DeleteOptions{GracePeriodSeconds: &zero})
		for end := time.Now().Add(time.Minute); time.Now().Before(end) && len(h.RunningContainers(ctx, workloadName)) > 0; {
			time.Sleep(500 * time.Millisecond)
		}
		rep, r := doctor(t)
		wantFails(t, rep)
		wantExit(t, rep, r, 0)
	})
}

// dropKubeconfigFlag removes --kubeconfig=/var/lib/openyurt/kubelet.conf
// from kubeadm-flags.env, so that kubelet's --kubeconfig is the drop-in's
// /etc/kubernetes/kubelet.conf (the API server directly).
func dropKubeconfigFlag(t *testing.T, flags string) {
	t.Helper()
	b, err := os.ReadFile(flags)
	if err != nil {
		t.Fatal(err)
	}
	const flag = "--kubeconfig=/var/lib/openyurt/kubelet.conf"
	if !bytes.Contains(b, []byte(flag)) {
		t.Fatalf("%s has no %s:\n%s", flags, flag, b)
	}
	nb := bytes.ReplaceAll(b, []byte(" "+flag), nil)
	nb = bytes.ReplaceAll(nb, []byte(flag+" "), nil)
	nb = bytes.ReplaceAll(nb, []byte(flag), nil)
	if err := os.WriteFile(flags, nb, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitKubeletServer waits until a single running kubelet's kubeconfig has
// a server starting with prefix.
func waitKubeletServer(h *harness.Harness, prefix string) (string, string, error) {
	var kc, server string
	var err error
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		kc, server, err = h.KubeletKubeconfigServer()
		if err == nil && strings.HasPrefix(server, prefix) {
			return kc, server, nil
		}
	}
	if err == nil {
		err = fmt.Errorf("kubeconfig %s has server %s, want %s...", kc, server, prefix)
	}
	return kc, server, err
}
