package doctor

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/host/hosttest"
)

func init() { stuckListDelay = 10 * time.Millisecond }

// TestHealthyNode: a node as yurtadm join leaves it reports no warning
// and no failure, exits 0, and doctor ran only read-only commands.
func TestHealthyNode(t *testing.T) {
	f := newFixture(t)
	before := hosttest.Tree(t, f.h)
	rep, code, out := f.run()
	if code != cmdutil.ExitOK || !rep.Healthy {
		t.Fatalf("exit %d, healthy %v:\n%s", code, rep.Healthy, out)
	}
	for _, fd := range rep.Findings {
		if fd.Status != StatusOK {
			t.Errorf("%s: %s %q %v", fd.Name, fd.Status, fd.Summary, fd.Evidence)
		}
	}
	if want := len(checks()) + len(hostChecks); len(rep.Findings) != want {
		t.Errorf("%d findings, want %d", len(rep.Findings), want)
	}
	if rep.Node != testNode {
		t.Errorf("node %q, want %q (from --hostname-override)", rep.Node, testNode)
	}
	if got := hosttest.Tree(t, f.h); strings.Join(got, "\n") != strings.Join(before, "\n") {
		t.Errorf("doctor changed the host")
	}
	for _, line := range f.sc.Ran {
		if strings.Contains(line, " rm") || strings.Contains(line, " stop") || strings.Contains(line, "rmp") {
			t.Errorf("doctor ran a command that changes something: %s", line)
		}
	}
	if len(f.cloudHosts) == 0 || !strings.HasPrefix(f.cloudHosts[0], "http://127.0.0.1:") {
		t.Errorf("the cloud checks should go through yurthub's proxy first, went %v", f.cloudHosts)
	}
	tr, _ := rep.finding(CheckTraffic)
	if !strings.Contains(tr.Summary, "top talker kubelet 2.8 MiB (97%)") || !strings.Contains(strings.Join(tr.Evidence, " "), "kube-proxy 97.7 KiB") {
		t.Errorf("traffic: %q %v", tr.Summary, tr.Evidence)
	}
}

// TestFindings breaks one thing at a time on a healthy node and checks
// the finding that names it: its status, what it says and its fix.
func TestFindings(t *testing.T) {
	otherCA := func(f *fixture) *testCA { return newCA(t, "kubernetes-old", f.now) }
	refused := "E0601 12:00:00 reflector.go:1 Failed to watch *v1.Pod: Get \"http://127.0.0.1:10261/api/v1/pods\": dial tcp 127.0.0.1:10261: connect: connection refused\n"
	tests := []struct {
		name    string
		args    []string
		break_  func(f *fixture)
		check   string
		status  Status
		summary string // substring of the summary
		fix     string // substring of the fix
		// evidence is a substring of the evidence
		evidence string
	}{
		{name: "manifest missing", check: CheckYurthubManifest, status: StatusFail, summary: "is missing", fix: "yurtadm join",
			break_: func(f *fixture) { f.remove(constants.YurthubManifest) }},
		{name: "manifest without nodepool", check: CheckYurthubManifest, status: StatusFail, summary: "--nodepool-name", fix: "--nodepool-name",
			break_: func(f *fixture) {
				b, _ := f.h.FS.ReadFile(constants.YurthubManifest)
				f.write(constants.YurthubManifest, strings.Replace(string(b), `- "--nodepool-name=edge"`+"\n", "", 1))
			}},
		{name: "no yurthub container", check: CheckYurthubContainer, status: StatusFail, summary: "no yurt-hub container", fix: "staticPodPath",
			break_: func(f *fixture) { f.containers = f.containers[1:] }},
		{name: "yurthub exited waiting for its CSR", check: CheckYurthubContainer, status: StatusFail,
			summary: "waits for its certificate signing request", fix: "yurt-manager", evidence: "exited with code 1, reason Error, at 2025-06-01T11:59:00Z",
			break_: func(f *fixture) {
				f.containers[0].state, f.containers[0].exitCode, f.containers[0].reason = stateExited, 1, "Error"
				f.containers[0].log = "I0601 waiting for the controller-manager to sign the yurthub client certificate\nE0601 hub certificates preparation failed, timed out\n"
				f.healthz = nil
			}},
		{name: "yurthub exited with a stale certificate", check: CheckYurthubContainer, status: StatusFail,
			summary: "another cluster's CA", fix: "yurtadm reset",
			break_: func(f *fixture) {
				f.containers[0].state, f.containers[0].exitCode = stateExited, 255
				f.containers[0].log = "E0601 tls: failed to verify certificate: x509: certificate signed by unknown authority\n"
				f.healthz = nil
			}},
		{name: "yurthub exits on a flag it does not know", check: CheckYurthubContainer, status: StatusFail,
			summary: "a flag it does not know", fix: "yurthub --help",
			break_: func(f *fixture) {
				f.containers[0].state, f.containers[0].exitCode = stateExited, 1
				f.containers[0].log = "Error: unknown flag: --no-such-flag\nUsage:\n  yurthub [flags]\n" + strings.Repeat("      --some-flag string   what it does\n", 30)
				f.healthz = nil
			}},
		{name: "yurthub restarting", check: CheckYurthubContainer, status: StatusWarn, summary: "restarted 4 times", fix: "crictl logs --previous",
			break_: func(f *fixture) {
				f.containers[0].attempt = 4
				f.containers = append(f.containers, container{id: "hub0000000000000000", name: "yurt-hub", pod: "kube-system/yurt-hub-edge-1",
					state: stateExited, attempt: 3, exitCode: 2, log: "panic: boom\n"})
			}},
		{name: "yurthub not listening", check: CheckYurthubHealthz, status: StatusFail, summary: "it is not running", fix: "yurthub-container",
			break_: func(f *fixture) { f.healthz = nil }},
		{name: "readyz skipped without healthz", check: CheckYurthubReadyz, status: StatusSkip, summary: "not healthy",
			break_: func(f *fixture) { f.healthz = nil }},
		{name: "healthz not OK", check: CheckYurthubHealthz, status: StatusFail, summary: "HTTP 500",
			fix: "crictl logs", break_: func(f *fixture) {
				f.healthz = func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) }
			}},
		{name: "readyz: yurt-hub-cfg not synced", check: CheckYurthubReadyz, status: StatusFail,
			summary: "yurt-hub-cfg configmap is not synced", fix: "yurtctl convert",
			break_: func(f *fixture) {
				f.readyz = func(w http.ResponseWriter, _ *http.Request) {
					http.Error(w, "yurt-hub-cfg configmap is not synced", http.StatusInternalServerError)
				}
			}},
		{name: "readyz: filters not synced", check: CheckYurthubReadyz, status: StatusFail,
			summary: "resources needed by filters", fix: "NodePool",
			break_: func(f *fixture) {
				f.readyz = func(w http.ResponseWriter, _ *http.Request) {
					http.Error(w, "resources needed by filters are not synced", http.StatusInternalServerError)
				}
			}},
		{name: "kubelet pointed away from yurthub", check: CheckKubeletKubeconf, status: StatusFail,
			summary: "talks to " + testServer + " directly", fix: "--kubeconfig=/var/lib/openyurt/kubelet.conf",
			break_: func(f *fixture) {
				f.write(constants.KubeletFlagsEnvFile, `KUBELET_KUBEADM_ARGS="--hostname-override=edge-1"`+"\n")
			}},
		{name: "kubelet's kubeconfig missing", check: CheckKubeletKubeconf, status: StatusFail, summary: "does not exist", fix: "restart kubelet",
			break_: func(f *fixture) { f.remove(constants.OpenYurtKubeletConfig) }},
		{name: "kubelet extra args win", check: CheckKubeletKubeconf, status: StatusFail, summary: "directly",
			break_: func(f *fixture) {
				f.write("/etc/default/kubelet", `KUBELET_EXTRA_ARGS="--kubeconfig=/etc/kubernetes/kubelet.conf"`+"\n")
			}},
		{name: "kubelet not restarted", check: CheckKubeletKubeconf, status: StatusWarn, summary: "running kubelet", fix: "systemctl restart kubelet",
			break_: func(f *fixture) {
				f.write("/proc/100/cmdline", "/usr/bin/kubelet\x00--kubeconfig\x00/etc/kubernetes/kubelet.conf\x00")
			}},
		{name: "kubelet log: connection refused, yurthub down", check: CheckKubeletLog, status: StatusFail,
			summary: "yurthub is not running", fix: "yurthub-container",
			break_: func(f *fixture) {
				f.healthz = nil
				if err := os.WriteFile(f.kubeletLog, []byte(refused+refused), 0o644); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "kubelet log: connection refused earlier", check: CheckKubeletLog, status: StatusWarn, summary: "earlier",
			break_: func(f *fixture) {
				if err := os.WriteFile(f.kubeletLog, []byte(refused+"I0601 all good\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "stale certificate from an earlier cluster", check: CheckYurthubCerts, status: StatusFail,
			summary: "stale, from an earlier cluster", fix: "yurtadm reset",
			break_: func(f *fixture) {
				f.write(constants.YurthubServerCert, string(otherCA(f).issue(t, "system:node:"+testNode, f.now.Add(-time.Hour), f.now.Add(300*24*time.Hour))))
			}},
		{name: "certificate of another node", check: CheckYurthubCerts, status: StatusFail, summary: `belongs to "system:node:edge-0"`, fix: "yurtadm reset",
			break_: func(f *fixture) {
				f.write(constants.YurthubServerCert, string(f.ca.issue(t, "system:node:edge-0", f.now.Add(-time.Hour), f.now.Add(300*24*time.Hour))))
			}},
		{name: "expired client certificate", check: CheckYurthubCerts, status: StatusFail, summary: "expired on 2025-05-31", fix: "must join again",
			break_: func(f *fixture) {
				f.write(constants.KubeletClientCert, string(f.ca.issue(t, "system:node:"+testNode, f.now.Add(-400*24*time.Hour), f.now.Add(-24*time.Hour))))
			}},
		{name: "certificate near its end", check: CheckYurthubCerts, status: StatusWarn, summary: "expires in 5 days", fix: "kubelet renews",
			break_: func(f *fixture) {
				f.write(constants.KubeletClientCert, string(f.ca.issue(t, "system:node:"+testNode, f.now.Add(-360*24*time.Hour), f.now.Add(5*24*time.Hour+time.Hour))))
			}},
		{name: "kubeletcertificate mode without kubelet.conf", check: CheckYurthubCerts, status: StatusFail,
			summary: "/etc/kubernetes/kubelet.conf is missing", fix: "yurtadm reset",
			break_: func(f *fixture) { f.remove(constants.KubeletKubeconfig) }},
		{name: "token mode: stale CA copy", check: CheckYurthubCerts, status: StatusFail, summary: "not this cluster's CA", fix: "yurtadm reset",
			break_: func(f *fixture) {
				f.manifest(constants.YurthubBootstrapModeToken)
				f.write(constants.YurthubClientCert, string(f.ca.issue(t, "system:node:"+testNode, f.now.Add(-time.Hour), f.now.Add(300*24*time.Hour))))
				f.write(constants.YurthubCACert, string(otherCA(f).pem))
			}},
		{name: "serving certificate missing, CSR pending", check: CheckYurthubCSR, status: StatusFail, summary: "Pending", fix: "kubectl certificate approve csr-hub",
			break_: func(f *fixture) {
				f.remove(constants.YurthubServerCert)
				f.cloudCSR("csr-kubelet", certificatesv1.KubeletServingSignerName, csrPEM(t, "system:node:"+testNode, []string{"system:nodes"}, []net.IP{net.ParseIP("10.0.0.5")}))
				f.cloudCSR("csr-hub", certificatesv1.KubeletServingSignerName, csrPEM(t, "system:node:"+testNode, []string{"system:nodes"}, []net.IP{net.ParseIP("169.254.2.1"), net.ParseIP("127.0.0.1")}))
			}},
		{name: "serving certificate missing is a certificate failure", check: CheckYurthubCerts, status: StatusFail, summary: "is missing", fix: "yurthub-csr",
			break_: func(f *fixture) { f.remove(constants.YurthubServerCert) }},
		{name: "token mode: no CSR, the token is bad", check: CheckYurthubCSR, status: StatusFail, summary: "never created", fix: "yurtadm token renew",
			break_: func(f *fixture) {
				f.manifest(constants.YurthubBootstrapModeToken)
				f.cloudCSR("csr-other", certificatesv1.KubeAPIServerClientSignerName, csrPEM(t, "system:node:edge-9", []string{"openyurt:yurthub"}, nil))
			}},
		{name: "token mode: client CSR denied", check: CheckYurthubCSR, status: StatusFail, summary: "denied",
			break_: func(f *fixture) {
				f.manifest(constants.YurthubBootstrapModeToken)
				f.cloudCSR("csr-hub", certificatesv1.KubeAPIServerClientSignerName, csrPEM(t, "system:node:"+testNode, []string{"openyurt:yurthub", "system:nodes"}, nil),
					certificatesv1.CertificateSigningRequestCondition{Type: certificatesv1.CertificateDenied})
			}},
		{name: "CSR with the cloud unreachable", check: CheckYurthubCSR, status: StatusWarn, summary: "cannot be reached",
			break_: func(f *fixture) { f.remove(constants.YurthubServerCert); f.unreachable() }},
		{name: "cloud unreachable", check: CheckCloud, status: StatusWarn, summary: "cannot be reached", fix: "network",
			break_: func(f *fixture) { f.unreachable() }},
		{name: "no cloud client at all", check: CheckCloud, status: StatusWarn, summary: "cannot be reached",
			break_: func(f *fixture) { f.cloudErr = fmt.Errorf("dial tcp 10.0.0.1:6443: connect: no route to host") }},
		{name: "stuck list without its watch", check: CheckInFlight, status: StatusWarn,
			summary: "stuck: kube-proxy endpointslices has a list", fix: "apps.openyurt.io/nodepool",
			break_: func(f *fixture) {
				f.metrics = []string{healthyMetrics + `node_yurthub_in_flight_requests_collector{client="kube-proxy",resource="endpointslices",subresources="",verb="list"} 1` + "\n"}
			}},
		{name: "a list that ends is not stuck", check: CheckInFlight, status: StatusOK, summary: "none stuck",
			break_: func(f *fixture) {
				f.metrics = []string{healthyMetrics + `node_yurthub_in_flight_requests_collector{client="kube-proxy",resource="endpointslices",subresources="",verb="list"} 1` + "\n", healthyMetrics}
			}},
		{name: "a list next to its watch is not stuck", check: CheckInFlight, status: StatusOK,
			break_: func(f *fixture) {
				f.metrics = []string{healthyMetrics + `node_yurthub_in_flight_requests_collector{client="kubelet",resource="pods",subresources="",verb="list"} 1` + "\n"}
				f.metrics[0] = strings.Replace(f.metrics[0], `client="kubelet",resource="pods",subresources="",verb="list"} 0`, `client="kubelet",resource="configmaps",subresources="",verb="get"} 0`, 1)
			}},
		{name: "metrics unreadable", check: CheckTraffic, status: StatusSkip, summary: "cannot be read",
			break_: func(f *fixture) { f.healthz = nil }},
		{name: "no cache at all", check: CheckCacheComponents, status: StatusFail, summary: "does not exist", fix: "kubelet-kubeconfig",
			break_: func(f *fixture) { f.remove(constants.YurthubCacheDir) }},
		{name: "no cache for kubelet", check: CheckCacheComponents, status: StatusFail, summary: "no cache for kubelet",
			break_: func(f *fixture) { f.remove(constants.YurthubCacheDir + "/kubelet") }},
		{name: "kube-proxy runs without a cache", check: CheckCacheComponents, status: StatusWarn, summary: "kube-proxy (container kube-proxy)",
			fix: "recreate their pods",
			break_: func(f *fixture) {
				f.containers = append(f.containers, container{id: "kp00000000000000001", name: "kube-proxy", pod: "kube-system/kube-proxy-x", state: stateRunning})
			}},
		{name: "kubelet gets the real kubernetes service", check: CheckCacheKubeService, status: StatusFail,
			summary: "kubelet gets default/kubernetes as 10.96.0.1:443, not yurthub's 169.254.2.1:10268", fix: "masterservice",
			break_: func(f *fixture) { f.kubeletSvc = "10.96.0.1:443" }},
		{name: "older yurthub cached kubelet's copy unrewritten", check: CheckCacheKubeService, status: StatusFail,
			summary: "kubelet's cached default/kubernetes Service is 10.96.0.1:443", fix: "masterservice",
			break_: func(f *fixture) {
				f.remove("/etc/kubernetes/cache/multiplexer-proxy-edge-1")
				f.write("/etc/kubernetes/cache/kubelet/services/default/kubernetes", serviceJSON("10.96.0.1", 443))
			}},
		{name: "older yurthub cached kubelet's copy rewritten", check: CheckCacheKubeService, status: StatusOK,
			break_: func(f *fixture) {
				f.remove("/etc/kubernetes/cache/multiplexer-proxy-edge-1")
				f.write("/etc/kubernetes/cache/kubelet/services.v1.core/default/kubernetes", serviceJSON("169.254.2.1", 10268))
			}},
		{name: "kubernetes service not cached", check: CheckCacheKubeService, status: StatusFail, summary: "has not cached",
			break_: func(f *fixture) { f.remove("/etc/kubernetes/cache/multiplexer-proxy-edge-1") }},
		{name: "kubernetes service cached, yurthub down", check: CheckCacheKubeService, status: StatusWarn, summary: "cannot be checked",
			break_: func(f *fixture) { f.healthz = nil }},
		{name: "dummy interface off: the proxy address is expected", check: CheckCacheKubeService, status: StatusFail, summary: "not yurthub's 127.0.0.1:10268",
			break_: func(f *fixture) { f.manifest(constants.YurthubBootstrapModeKCE, "--enable-dummy-if=false") }},
		{name: "dummy interface off and rewritten accordingly", check: CheckCacheKubeService, status: StatusOK,
			break_: func(f *fixture) {
				f.manifest(constants.YurthubBootstrapModeKCE, "--enable-dummy-if=false")
				f.kubeletSvc = "127.0.0.1:10268"
			}},
		{name: "pod with the wrong service env", check: CheckPodsBypass, status: StatusFail,
			summary: "1 pod on this node reach", fix: "kubectl delete pod -n default app-1",
			break_: func(f *fixture) {
				f.containers[1].env["KUBERNETES_SERVICE_HOST"], f.containers[1].env["KUBERNETES_SERVICE_PORT"] = "10.96.0.1", "443"
			}},
		{name: "one pod among several bypasses", check: CheckPodsBypass, status: StatusFail, summary: "1 pod",
			break_: func(f *fixture) {
				f.containers = append(f.containers,
					container{id: "bad0000000000000001", name: "web", pod: "shop/web-1", state: stateRunning,
						env: map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}},
					container{id: "old0000000000000001", name: "web", pod: "shop/web-0", state: stateExited,
						env: map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}})
			}},
		{name: "no yurthub manifest: the address pods should get is unknown", check: CheckPodsBypass, status: StatusSkip,
			summary: "without yurthub's manifest (see the yurthub-manifest check)",
			break_: func(f *fixture) {
				// The pods got yurthub's proxy address of a manifest with
				// the dummy interface off; the manifest is gone since.
				f.containers[1].env["KUBERNETES_SERVICE_HOST"], f.containers[1].env["KUBERNETES_SERVICE_PORT"] = "127.0.0.1", "10268"
				f.remove(constants.YurthubManifest)
			}},
		{name: "nodepool: no NodePool API", check: CheckNodePool, status: StatusWarn, summary: "no NodePool API", fix: "yurtctl convert",
			break_: func(f *fixture) { f.nodePools = nil }},
		{name: "nodepool: the labelled pool does not exist", check: CheckNodePool, status: StatusFail, summary: "there is no NodePool edge", fix: "kubectl label node edge-1",
			break_: func(f *fixture) { delete(f.nodePools, "edge") }},
		{name: "nodepool: the pool does not list the node", check: CheckNodePool, status: StatusWarn, summary: "does not list node edge-1",
			fix: "yurt-manager", evidence: "status.nodes of NodePool edge: [other]",
			break_: func(f *fixture) { f.nodePools["edge"] = []string{"other"} }},
		{name: "nodepool: node in no pool", check: CheckNodePool, status: StatusOK, summary: "in no node pool",
			break_: func(f *fixture) { f.updateNode(func(n *corev1.Node) { delete(n.Labels, constants.LabelNodePool) }) }},
		{name: "nodepool: no Node object", check: CheckNodePool, status: StatusSkip, summary: "the cluster has no Node edge-1",
			break_: func(f *fixture) {
				_ = f.cloud.Tracker().Delete(schema.GroupVersionResource{Version: "v1", Resource: "nodes"}, "", testNode)
			}},
		{name: "nodepool: cloud unreachable", check: CheckNodePool, status: StatusSkip, summary: "cannot be reached",
			break_: func(f *fixture) { f.cloudErr = errors.New("dial tcp: connection refused") }},
		{name: "pod-binding: a pod keeps the default 300s", check: CheckPodBinding, status: StatusFail,
			summary: "2 tolerations of its pods are evicted", fix: "podbinding", evidence: "pod default/app-1 tolerates node.kubernetes.io/unreachable for 300s, want unset (never evicted)",
			break_: func(f *fixture) { f.updatePod("app-1", func(p *corev1.Pod) { setTolerationSeconds(p, 300) }) }},
		{name: "pod-binding: a young pod not yet bound", check: CheckPodBinding, status: StatusWarn, summary: "younger than 30s", fix: "again",
			break_: func(f *fixture) {
				f.updatePod("app-1", func(p *corev1.Pod) {
					setTolerationSeconds(p, 300)
					p.CreationTimestamp = metav1.NewTime(f.now.Add(-5 * time.Second))
				})
			}},
		{name: "pod-binding: autonomy for 10m wants 600s", check: CheckPodBinding, status: StatusFail, summary: "autonomy-duration=10m",
			evidence: "for unset (never evicted), want 600s",
			break_: func(f *fixture) {
				f.updateNode(func(n *corev1.Node) { n.Annotations[constants.AnnotationAutonomyDur] = "10m" })
			}},
		{name: "pod-binding: 600s with autonomy for 10m", check: CheckPodBinding, status: StatusOK, summary: "are 600s",
			break_: func(f *fixture) {
				f.updateNode(func(n *corev1.Node) { n.Annotations[constants.AnnotationAutonomyDur] = "10m" })
				f.updatePod("app-1", func(p *corev1.Pod) { setTolerationSeconds(p, 600) })
			}},
		{name: "pod-binding: the old binding annotation", check: CheckPodBinding, status: StatusOK, summary: "apps.openyurt.io/binding=true",
			break_: func(f *fixture) {
				f.updateNode(func(n *corev1.Node) { n.Annotations = map[string]string{"apps.openyurt.io/binding": "true"} })
			}},
		{name: "pod-binding: not autonomous", check: CheckPodBinding, status: StatusOK, summary: "is not autonomous",
			break_: func(f *fixture) {
				f.updateNode(func(n *corev1.Node) { n.Annotations = nil })
				f.updatePod("app-1", func(p *corev1.Pod) { setTolerationSeconds(p, 300) })
			}},
		{name: "pod-binding: DaemonSet and static pods are left alone", check: CheckPodBinding, status: StatusOK, summary: "the 2 not-ready/unreachable tolerations",
			break_: func(f *fixture) {
				for i, p := range []*corev1.Pod{
					{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-proxy-x", OwnerReferences: []metav1.OwnerReference{{Kind: "DaemonSet", Name: "kube-proxy"}}}},
					{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "yurt-hub-edge-1", Annotations: map[string]string{corev1.MirrorPodAnnotationKey: "h"}}},
				} {
					p.UID = types.UID(fmt.Sprint("uid-", i))
					p.Spec.NodeName = testNode
					p.Spec.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}
					setTolerationSeconds(p, 300)
					if err := f.cloud.Tracker().Add(p); err != nil {
						t.Fatal(err)
					}
				}
			}},
		{name: "pod-binding: a cloud node", check: CheckPodBinding, status: StatusSkip, summary: "is not an edge node",
			break_: func(f *fixture) { f.updateNode(func(n *corev1.Node) { n.Labels[constants.LabelEdgeWorker] = "false" }) }},
		{name: "no crictl", check: CheckPodsBypass, status: StatusSkip, summary: "cannot read the container runtime",
			break_: func(f *fixture) { delete(f.sc.Path, "crictl") }},
		{name: "host: crictl missing", check: HostPrefix + "FileExisting-crictl", status: StatusFail, summary: "crictl not found in system path", fix: "cri-tools",
			break_: func(f *fixture) { delete(f.sc.Path, "crictl") }},
		{name: "host: conntrack missing", check: HostPrefix + "FileExisting-conntrack", status: StatusFail, summary: "conntrack not found", fix: "install conntrack",
			break_: func(f *fixture) { delete(f.sc.Path, "conntrack") }},
		{name: "host: no d_type", check: HostPrefix + "OverlayDType", status: StatusFail, summary: "d_type", fix: "ftype=1",
			break_: func(f *fixture) { f.env.DType = func(string) (bool, error) { return false, nil } }},
		{name: "host: too many nameservers", check: HostPrefix + "ResolvConf", status: StatusWarn, summary: "4 nameserver lines", fix: "1 to 3",
			break_: func(f *fixture) {
				f.write("/etc/resolv.conf", "nameserver 1.1.1.1\nnameserver 1.1.1.2\nnameserver 1.1.1.3\nnameserver 1.1.1.4\n")
			}},
		{name: "host: no nameserver", check: HostPrefix + "ResolvConf", status: StatusFail, summary: "no nameserver",
			break_: func(f *fixture) { f.write("/etc/resolv.conf", "search example.com\n") }},
		{name: "host: no pids cgroup", check: HostPrefix + "PidsCgroup", status: StatusFail, summary: "pids cgroup controller", fix: "CONFIG_CGROUP_PIDS",
			break_: func(f *fixture) {
				f.write("/proc/cgroups", "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t2\t10\t1\n")
			}},
		{name: "host: upper-case host name without a node name", check: HostPrefix + "Hostname", status: StatusFail, summary: "upper-case", fix: "lower case",
			break_: func(f *fixture) {
				f.write(constants.KubeletFlagsEnvFile, `KUBELET_KUBEADM_ARGS="--kubeconfig=/var/lib/openyurt/kubelet.conf"`+"\n")
				f.remove(constants.KubeletClientCert)
				f.env.Hostname = func() (string, error) { return "Edge-1", nil }
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.break_(f)
			rep, code, out := f.run(tc.args...)
			got, found := rep.finding(tc.check)
			if !found {
				t.Fatalf("no finding %s:\n%s", tc.check, out)
			}
			if got.Status != tc.status || !strings.Contains(got.Summary, tc.summary) || !strings.Contains(got.Fix, tc.fix) {
				t.Fatalf("%s: got %s %q fix %q evidence %q\nwant %s, summary with %q, fix with %q",
					tc.check, got.Status, got.Summary, got.Fix, got.Evidence, tc.status, tc.summary, tc.fix)
			}
			if ev := strings.Join(got.Evidence, "\n"); !strings.Contains(ev, tc.evidence) || strings.Contains(ev, "crictl.yaml") {
				t.Errorf("evidence %q, want it with %q and without crictl's own warnings", got.Evidence, tc.evidence)
			}
			if (got.Status == StatusFail || got.Status == StatusWarn) && got.Fix == "" {
				t.Errorf("a %s finding must say how to fix it", got.Status)
			}
			wantCode := cmdutil.ExitOK
			if rep.Summary[StatusFail] > 0 {
				wantCode = cmdutil.ExitUnhealthy
			}
			if code != wantCode || rep.Healthy != (wantCode == cmdutil.ExitOK) {
				t.Errorf("exit %d, healthy %v; want exit %d with %d failures", code, rep.Healthy, wantCode, rep.Summary[StatusFail])
			}
		})
	}
}

// TestTokensRedacted: a bootstrap token in yurthub's log (yurthub prints
// its configuration at start-up) never reaches doctor's output.
func TestTokensRedacted(t *testing.T) {
	f := newFixture(t)
	f.containers[0].state = stateExited
	f.containers[0].log = "I0601 yurthub cfg: &{JoinToken:abcdef.0123456789abcdef ...}\n"
	rep, code, out := f.run()
	if code != cmdutil.ExitUnhealthy {
		t.Fatalf("exit %d", code)
	}
	if strings.Contains(out, "0123456789abcdef") {
		t.Fatalf("the token's secret is in the output:\n%s", out)
	}
	c, _ := rep.finding(CheckYurthubContainer)
	if !strings.Contains(strings.Join(c.Evidence, "\n"), "JoinToken:abcdef.<redacted>") {
		t.Fatalf("the log line should be shown with the secret redacted: %q", c.Evidence)
	}
}

// TestTextReport: without -o json the report is for people: a line per
// check, the fix under failures, a summary; the exit code is 6.
func TestTextReport(t *testing.T) {
	f := newFixture(t)
	f.healthz = nil
	var out, errOut bytes.Buffer
	cmd := newCommand(cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, f.deps())
	cmd.SetArgs([]string{"--host-root", f.h.FS.Root, "--kubelet-log", f.kubeletLog})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	if cmdutil.ExitCode(err) != cmdutil.ExitUnhealthy || !strings.Contains(err.Error(), "yurthub-healthz") {
		t.Fatalf("err %v (exit %d)", err, cmdutil.ExitCode(err))
	}
	text := out.String()
	for _, want := range []string{"yurtadm doctor: node edge-1", "[FAIL] yurthub-healthz", "fix: see the yurthub-container check",
		"[ok]   yurthub-manifest", "[skip] yurthub-readyz", "checks:", "failed"} {
		if !strings.Contains(text, want) {
			t.Errorf("text report lacks %q:\n%s", want, text)
		}
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"unknown check in --skip", []string{"--skip", "frob"}, cmdutil.ExitUsage, `unknown check "frob"`},
		{"bad output", []string{"-o", "yaml"}, cmdutil.ExitUsage, "unknown output format"},
		{"bad timeout", []string{"--timeout", "0s"}, cmdutil.ExitUsage, "not positive"},
		{"bad cri socket", []string{"--cri-socket", "tcp://x"}, cmdutil.ExitUsage, "only unix sockets"},
		{"bad node name", []string{"--node-name", "Edge_1"}, cmdutil.ExitUsage, "upper-case"},
		{"missing kubeconfig", []string{"--kubeconfig", "/nonexistent/kubeconfig"}, cmdutil.ExitUsage, "--kubeconfig"},
		{"kubeconfig is a directory", []string{"--kubeconfig", os.TempDir()}, cmdutil.ExitUsage, "is a directory"},
		{"kubelet log is a directory", []string{"--kubelet-log", os.TempDir()}, cmdutil.ExitUsage, "is a directory"},
		{"argument", []string{"now"}, cmdutil.ExitUsage, "unexpected argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			var out, errOut bytes.Buffer
			cmd := newCommand(cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, f.deps())
			cmd.SetArgs(append([]string{"--host-root", f.h.FS.Root}, tc.args...))
			cmd.SetOut(&out)
			cmd.SetErr(&errOut)
			cmd.SilenceUsage, cmd.SilenceErrors = true, true
			err := cmd.Execute()
			if cmdutil.ExitCode(err) != tc.code || err == nil || !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("err %v (exit %d), want exit %d with %q", err, cmdutil.ExitCode(err), tc.code, tc.contains)
			}
			if len(f.sc.Ran) > 0 || out.Len() > 0 {
				t.Errorf("a usage error must stop before any check: ran %v, printed %q", f.sc.Ran, out.String())
			}
		})
	}
}

func TestSkip(t *testing.T) {
	f := newFixture(t)
	f.remove(constants.YurthubManifest)
	rep, code, _ := f.run("--skip", "yurthub-manifest,HOST", "--skip", "proxy-traffic")
	if code != cmdutil.ExitOK {
		t.Fatalf("exit %d: the only failing check was skipped", code)
	}
	for _, fd := range rep.Findings {
		if fd.Name == CheckYurthubManifest || fd.Name == CheckTraffic || strings.HasPrefix(fd.Name, HostPrefix) {
			t.Errorf("%s ran although skipped", fd.Name)
		}
	}
	rep, _, _ = f.run("--skip", "host/Swap")
	if _, found := rep.finding("host/Swap"); found {
		t.Errorf("host/Swap ran although skipped")
	}
	if _, found := rep.finding("host/ResolvConf"); !found {
		t.Errorf("host/ResolvConf should still run")
	}
}

// TestKubeconfigFlag: --kubeconfig is the only way to the cloud when given.
func TestKubeconfigFlag(t *testing.T) {
	f := newFixture(t)
	kc := t.TempDir() + "/admin.conf"
	admin := strings.Replace(kubeconfig(t, "https://192.0.2.9:6443"), "client-certificate: "+constants.KubeletClientCert, "token: not-a-bootstrap-token", 1)
	admin = strings.Replace(admin, "client-key: "+constants.KubeletClientCert, "", 1)
	if err := os.WriteFile(kc, []byte(admin), 0o600); err != nil {
		t.Fatal(err)
	}
	f.remove(constants.YurthubServerCert) // makes the CSR check ask the cloud
	rep, _, _ := f.run("--kubeconfig", kc)
	if len(f.cloudHosts) != 1 || f.cloudHosts[0] != "https://192.0.2.9:6443" {
		c, _ := rep.finding(CheckCloud)
		t.Fatalf("cloud clients built for %v, want only the --kubeconfig server: %v", f.cloudHosts, c)
	}
	c, _ := rep.finding(CheckCloud)
	if c.Status != StatusOK || !strings.Contains(c.Summary, kc) {
		t.Fatalf("cloud: %s %q", c.Status, c.Summary)
	}
}

func TestParseFlagsEnv(t *testing.T) {
	got := parseFlagsEnv("# comment\nKUBELET_KUBEADM_ARGS=\"--a=1 --kubeconfig=/x --b --kubeconfig=/y\"\nOTHER='--c=3'\n")
	if got["kubeconfig"] != "/y" || got["a"] != "1" || got["b"] != "true" || got["c"] != "3" {
		t.Fatalf("%v", got)
	}
	if v := flagInText(`Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"`, "kubeconfig"); v != "/etc/kubernetes/kubelet.conf" {
		t.Fatalf("drop-in: %q", v)
	}
}

func TestBytesString(t *testing.T) {
	for in, want := range map[float64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 2.5e6: "2.4 MiB", 3 << 30: "3.0 GiB"} {
		if got := bytesString(in); got != want {
			t.Errorf("%g: %q, want %q", in, got, want)
		}
	}
}

// updateNode changes this node's Node in the fake cloud.
func (f *fixture) updateNode(change func(*corev1.Node)) {
	f.t.Helper()
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "nodes"}
	o, err := f.cloud.Tracker().Get(gvr, "", testNode)
	if err != nil {
		f.t.Fatal(err)
	}
	n := o.(*corev1.Node).DeepCopy()
	change(n)
	if err := f.cloud.Tracker().Update(gvr, n, ""); err != nil {
		f.t.Fatal(err)
	}
}

// updatePod changes default/name in the fake cloud.
func (f *fixture) updatePod(name string, change func(*corev1.Pod)) {
	f.t.Helper()
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	o, err := f.cloud.Tracker().Get(gvr, "default", name)
	if err != nil {
		f.t.Fatal(err)
	}
	p := o.(*corev1.Pod).DeepCopy()
	change(p)
	if err := f.cloud.Tracker().Update(gvr, p, "default"); err != nil {
		f.t.Fatal(err)
	}
}

// setTolerationSeconds sets every NoExecute toleration of p to s seconds.
func setTolerationSeconds(p *corev1.Pod, s int64) {
	for i := range p.Spec.Tolerations {
		if p.Spec.Tolerations[i].Effect == corev1.TaintEffectNoExecute {
			p.Spec.Tolerations[i].TolerationSeconds = &s
		}
	}
}
