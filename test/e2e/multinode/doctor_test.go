package multinode

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
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/test/cluster"
)

// doctorReport is `yurtadm doctor -o json`.
type doctorReport struct {
	Node     string `json:"node"`
	Healthy  bool   `json:"healthy"`
	Findings []struct {
		Name, Status, Summary, Fix string
		Evidence                   []string
	} `json:"findings"`
}

// doctorOn runs `yurtadm doctor -o json` on n (the host checks left out:
// an nspawn node is no device) and parses its report.
func doctorOn(ctx context.Context, t *testing.T, n *cluster.Node) (doctorReport, cluster.Result) {
	t.Helper()
	r, err := n.Run(ctx, "yurtadm", "doctor", "-o", "json", "--skip", "host")
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
func wantFinding(t *testing.T, rep doctorReport, r cluster.Result, name, status string, summary, fix []string) {
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
func wantExit(t *testing.T, rep doctorReport, r cluster.Result, code int) {
	t.Helper()
	if r.ExitCode != code || rep.Healthy != (code == 0) {
		t.Errorf("doctor exited %d (healthy %v), want %d\n%s", r.ExitCode, rep.Healthy, code, r)
	}
}

// wantFails asserts that exactly the named checks fail, besides those in
// maybe (which may fail or not).
func wantFails(t *testing.T, rep doctorReport, maybe []string, names ...string) {
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

// TestDoctorNamesEachFault: yurtadm doctor on a joined edge node under
// real systemd, healthy, then with one fault planted at a time and the
// node restored after each: stale PKI from an earlier cluster, yurthub
// stopped, kubelet pointed away from yurthub, a pod started while kubelet
// bypassed yurthub. Each time exactly the fault's check fails, exit 6,
// with the fix the FAQ gives; restored, nothing fails.
func TestDoctorNamesEachFault(t *testing.T) {
	c := need(t)
	n := node(t, edge2Name)
	ctx := timeout(t, 12*time.Minute)
	defer rejoinAtEnd(t, c, n)
	host := n.HostPath

	t.Run("healthy node", func(t *testing.T) {
		rep, r := doctorOn(ctx, t, n)
		wantExit(t, rep, r, 0)
		if rep.Node != n.Name {
			t.Errorf("doctor's node %q, want %q", rep.Node, n.Name)
		}
		wantFails(t, rep, nil)
		for _, name := range []string{"yurthub-manifest", "yurthub-container", "yurthub-healthz", "yurthub-readyz",
			"kubelet-kubeconfig", "yurthub-certificates", "cache-components", "pods-bypassing-yurthub"} {
			wantFinding(t, rep, r, name, "ok", nil, nil)
		}
		measure(t, "yurtadm doctor on a healthy edge node: %s", r.Took.Round(time.Millisecond))
	})

	t.Run("stale PKI", func(t *testing.T) {
		// yurthub-server-current.pem is a symlink to the dated file;
		// doctor follows it. A regular file from another CA takes its
		// place; yurthub keeps the certificate it loaded in memory.
		link := host("/var/lib/yurthub/pki/yurthub-server-current.pem")
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
		if err := os.WriteFile(link, throwawayCert(t, n.Name), 0o600); err != nil {
			t.Fatal(err)
		}
		rep, r := doctorOn(ctx, t, n)
		wantExit(t, rep, r, 6)
		wantFails(t, rep, nil, "yurthub-certificates")
		wantFinding(t, rep, r, "yurthub-certificates", "fail", []string{"stale, from an earlier cluster"}, []string{"yurtadm reset"})
	})

	t.Run("yurthub stopped", func(t *testing.T) {
		manifest, aside := host(constants.YurthubManifest), host("/root/yurthub.yaml.doctor")
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
		if !waitFor(t, 90*time.Second, "yurthub's container gone", func() bool {
			_, err := n.Output(ctx, "ynode-web", "-get", constants.YurthubHealthzURL)
			return err != nil && runningContainer(ctx, n, "yurt-hub") == ""
		}) {
			t.Fatal("yurthub still runs without its manifest")
		}
		rep, r := doctorOn(ctx, t, n)
		wantExit(t, rep, r, 6)
		wantFinding(t, rep, r, "yurthub-manifest", "fail", []string{"missing"}, []string{"yurtadm join"})
		wantFinding(t, rep, r, "yurthub-healthz", "fail", nil, nil)
		// kubelet-log fails too once kubelet has logged a refused
		// connection to yurthub's proxy, which depends on timing.
		wantFails(t, rep, []string{"kubelet-log"}, "yurthub-manifest", "yurthub-container", "yurthub-healthz")
		restore()
		if !waitFor(t, 2*time.Minute, "yurthub healthy and ready again", func() bool {
			h, err1 := n.Output(ctx, "ynode-web", "-get", constants.YurthubHealthzURL)
			_, err2 := n.Output(ctx, "ynode-web", "-get", constants.YurthubReadyzURL)
			return err1 == nil && strings.TrimSpace(h) == "OK" && err2 == nil
		}) {
			t.Fatal("yurthub did not come back with its manifest")
		}
		if err := c.WaitNodeReady(ctx, n.Name, 2*time.Minute); err != nil {
			t.Fatalf("node not Ready again after yurthub's return: %v", err)
		}
	})

	flags := host("/var/lib/kubelet/kubeadm-flags.env")
	t.Run("kubelet pointed away from yurthub", func(t *testing.T) {
		restore := saveFile(t, flags)
		defer restore()
		dropKubeconfigFlag(t, flags)
		rep, r := doctorOn(ctx, t, n)
		wantExit(t, rep, r, 6)
		wantFails(t, rep, nil, "kubelet-kubeconfig")
		wantFinding(t, rep, r, "kubelet-kubeconfig", "fail", []string{"directly, not through yurthub"},
			[]string{"--kubeconfig=/var/lib/openyurt/kubelet.conf", "kubeadm-flags.env", "systemctl restart kubelet"})
	})

	const pod = "web-doctor-bypass"
	deletePod := func() {
		_ = c.Client.CoreV1().Pods("default").Delete(context.Background(), pod, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	}
	defer deletePod()
	t.Run("pod with the API server's service env", func(t *testing.T) {
		// A pod kubelet started while it talked to kube-apiserver
		// directly carries the real kubernetes Service address.
		restore := saveFile(t, flags)
		restartKubelet := func() {
			if r, err := n.Run(ctx, "systemctl", "restart", "kubelet"); err != nil || r.ExitCode != 0 {
				t.Fatalf("systemctl restart kubelet: %v\n%s", err, r)
			}
		}
		dropKubeconfigFlag(t, flags)
		restartKubelet()
		kubeletBack := false
		defer func() {
			if !kubeletBack {
				restore()
				restartKubelet()
			}
		}()
		if server, err := waitKubeletServer(ctx, n, "https://"); err != nil {
			t.Fatalf("kubelet did not restart on its direct kubeconfig: %v (server %q)", err, server)
		}
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: "default"}, Spec: cluster.WebPodSpec(n.Name)}
		if _, err := c.Client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if !waitFor(t, 2*time.Minute, "the pod running", func() bool { return podContainers(ctx, n, pod) != "" }) {
			t.Fatal("the pod did not start while kubelet talked to kube-apiserver directly")
		}
		restore()
		restartKubelet()
		kubeletBack = true
		if server, err := waitKubeletServer(ctx, n, constants.YurthubProxyURL); err != nil {
			t.Fatalf("kubelet did not come back through yurthub: %v (server %q)", err, server)
		}
		if err := c.WaitNodeReady(ctx, n.Name, 2*time.Minute); err != nil {
			t.Fatalf("node not Ready after kubelet's restart: %v", err)
		}
		rep, r := doctorOn(ctx, t, n)
		wantExit(t, rep, r, 6)
		wantFails(t, rep, nil, "pods-bypassing-yurthub")
		wantFinding(t, rep, r, "pods-bypassing-yurthub", "fail", []string{"1 pod ", "bypassing yurthub"},
			[]string{"recreate the pods", fmt.Sprintf("kubectl delete pod -n default %s", pod)})
		wantFinding(t, rep, r, "kubelet-kubeconfig", "ok", nil, nil)
	})

	t.Run("restored node", func(t *testing.T) {
		// The faults are undone and the pod is gone: nothing fails.
		deletePod()
		waitFor(t, time.Minute, "the pod's container gone", func() bool { return podContainers(ctx, n, pod) == "" })
		rep, r := doctorOn(ctx, t, n)
		wantFails(t, rep, nil)
		wantExit(t, rep, r, 0)
	})
}

// podContainers are the IDs of the running containers of the pod called
// name on n.
func podContainers(ctx context.Context, n *cluster.Node, name string) string {
	out, _ := n.Output(ctx, "crictl", "ps", "-q", "--label", "io.kubernetes.pod.name="+name)
	return strings.TrimSpace(out)
}

// throwawayCert is a certificate and key for node from a CA of no
// cluster: what an earlier cluster's yurthub leaves behind.
func throwawayCert(t *testing.T, node string) []byte {
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
		Subject:   pkix.Name{CommonName: "system:node:" + node, Organization: []string{"system:nodes"}},
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

// saveFile saves path's bytes and mode and returns the function that puts
// them back, failing t unless they are back byte for byte.
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

// dropKubeconfigFlag removes --kubeconfig=/var/lib/openyurt/kubelet.conf
// from kubeadm-flags.env (a path seen from the host), so that kubelet's
// --kubeconfig is the drop-in's /etc/kubernetes/kubelet.conf: the API
// server directly.
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

// waitKubeletServer waits until the running kubelet's effective
// kubeconfig has a server starting with prefix and returns the server.
func waitKubeletServer(ctx context.Context, n *cluster.Node, prefix string) (string, error) {
	var server string
	var err error
	for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		server, err = kubeletServer(ctx, n)
		if err == nil && strings.HasPrefix(server, prefix) {
			return server, nil
		}
	}
	if err == nil {
		err = fmt.Errorf("kubelet's server is %s, want %s...", server, prefix)
	}
	return server, err
}

// kubeletServer is the server of the kubeconfig the running kubelet
// service uses (its last --kubeconfig flag).
func kubeletServer(ctx context.Context, n *cluster.Node) (string, error) {
	pid, err := n.Output(ctx, "systemctl", "show", "-p", "MainPID", "--value", "kubelet.service")
	if err != nil || strings.TrimSpace(pid) == "0" {
		return "", fmt.Errorf("kubelet.service has no main process (%q %v)", pid, err)
	}
	cmdline, err := n.Output(ctx, "cat", "/proc/"+strings.TrimSpace(pid)+"/cmdline")
	if err != nil {
		return "", err
	}
	kc := lastFlag(strings.Split(strings.TrimRight(cmdline, "\x00"), "\x00"), "--kubeconfig")
	if kc == "" {
		return "", fmt.Errorf("kubelet runs without --kubeconfig")
	}
	b, err := n.Output(ctx, "cat", kc)
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(b, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "server:"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("%s has no server", kc)
}
