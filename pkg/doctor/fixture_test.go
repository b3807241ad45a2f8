package doctor

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
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	apiversion "k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/yurtadm/yurtadm/pkg/kube"
	"github.com/yurtadm/yurtadm/pkg/kube/kubetest"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/host"
	"github.com/yurtadm/yurtadm/pkg/host/hosttest"
	"github.com/yurtadm/yurtadm/pkg/preflight"
	"github.com/yurtadm/yurtadm/templates"
)

const (
	testNode   = "edge-1"
	testServer = "https://10.0.0.1:6443"
	socketPath = "/run/containerd/containerd.sock"
)

// testCA is a throw-away certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t testing.TB, cn string, now time.Time) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-365 * 24 * time.Hour), NotAfter: now.Add(9 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate and its key in one PEM, as certificate
// stores write them.
func (ca *testCA) issue(t testing.TB, cn string, notBefore, notAfter time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: []string{"system:nodes"}},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})...)
}

// csrPEM is a certificate request as yurthub makes it.
func csrPEM(t testing.TB, cn string, orgs []string, ips []net.IP) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: cn, Organization: orgs}, IPAddresses: ips}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// container is one entry of the fake runtime.
type container struct {
	id, name, pod, state string
	attempt              int
	env                  map[string]string
	exitCode             int
	reason               string
	log                  string
}

// fixture is a joined node in a temp root with a fake runtime, a fake
// yurthub endpoint and a fake API server. healthy() plants a node on
// which every check passes; each test then breaks one thing.
type fixture struct {
	t          *testing.T
	h          *host.Host
	sc         *hosttest.Script
	now        time.Time
	ca         *testCA
	env        preflight.Env
	kubeletLog string

	containers []container
	healthz    http.HandlerFunc // nil: yurthub does not listen
	readyz     http.HandlerFunc
	metrics    []string // successive /metrics answers; the last repeats
	// kubeletSvc is default/kubernetes as yurthub's proxy lists it to
	// kubelet ("ip:port"); others get 10.96.0.1:443.
	kubeletSvc string
	scrapes    int

	cloud      *fake.Clientset
	cloudErr   error // newCloud fails: the API server is unreachable
	cloudHosts []string
	listErrs   map[string]error
	// nodePools are the cloud's NodePools (apps.openyurt.io/v1beta2) with
	// their status.nodes; nil: the cloud serves no NodePool API.
	nodePools map[string][]string
	// statfs, when set, answers the disk-space check.
	statfs func(string) (uint64, uint64, error)
	// handlers are more paths the fake yurthub answers.
	handlers map[string]http.HandlerFunc
}

func newFixture(t *testing.T) *fixture {
	h, _, sc := hosttest.New(t)
	sc.Path = map[string]bool{"crictl": true, "conntrack": true, "kubelet": true}
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	f := &fixture{t: t, h: h, sc: sc, now: now, ca: newCA(t, "kubernetes", now), cloud: fake.NewSimpleClientset()}
	f.env = preflight.Env{
		Geteuid:  func() int { return 0 },
		Hostname: func() (string, error) { return testNode, nil },
		PortFree: func(int) error { return nil },
		DType:    func(string) (bool, error) { return true, nil },
		DialUnix: func(string) error { return nil },
	}
	f.kubeletLog = filepath.Join(t.TempDir(), "kubelet.log")
	f.healthy()
	return f
}

func (f *fixture) write(p, content string) { hosttest.WriteFile(f.t, f.h, p, content) }

func (f *fixture) remove(p string) {
	if err := os.RemoveAll(f.h.FS.Path(p)); err != nil {
		f.t.Fatal(err)
	}
}

func kubeconfig(t testing.TB, server string) string {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: server}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{ClientCertificate: constants.KubeletClientCert, ClientKey: constants.KubeletClientCert}
	cfg.Contexts["u@c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "u@c"
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (f *fixture) manifest(mode string, extra ...string) {
	b, err := templates.RenderYurthub(templates.Yurthub{Image: "docker.io/openyurt/yurthub:v1.7.0", Namespace: "kube-system",
		ServerAddr: testServer, NodePoolName: "edge", WorkingMode: "edge", BootstrapMode: mode, Verbosity: 2, ExtraArgs: extra})
	if err != nil {
		f.t.Fatal(err)
	}
	f.write(constants.YurthubManifest, string(b))
}

func serviceJSON(ip string, port int32) string {
	b, _ := json.Marshal(corev1.Service{
		TypeMeta:   metav1.TypeMeta{Kind: "Service", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default"},
		Spec: corev1.ServiceSpec{ClusterIP: ip, ClusterIPs: []string{ip},
			Ports: []corev1.ServicePort{{Name: "https", Port: port, Protocol: corev1.ProtocolTCP}}},
	})
	return string(b)
}

const healthyMetrics = `# HELP node_yurthub_in_flight_requests_collector collector of in flight requests handling by hub agent(exclude aggregated in flight requests)
# TYPE node_yurthub_in_flight_requests_collector gauge
node_yurthub_in_flight_requests_collector{client="kubelet/v1.34.4 (linux/amd64) kubernetes/$format",resource="pods",subresources="",verb="list"} 0
node_yurthub_in_flight_requests_collector{client="kubelet/v1.34.4 (linux/amd64) kubernetes/$format",resource="pods",subresources="",verb="watch"} 1
node_yurthub_in_flight_requests_collector{client="kubelet/v1.34.4 (linux/amd64) kubernetes/$format",resource="services",subresources="",verb="watch"} 1
# HELP node_yurthub_proxy_traffic_collector collector of proxy response traffic by hub agent(unit: byte)
# TYPE node_yurthub_proxy_traffic_collector counter
node_yurthub_proxy_traffic_collector{client="kubelet/v1.34.4 (linux/amd64) kubernetes/$format",resource="pods",subresources="",verb="list"} 2.5e+06
node_yurthub_proxy_traffic_collector{client="kubelet/v1.34.4 (linux/amd64) kubernetes/$format",resource="nodes",subresources="status",verb="patch"} 400000
node_yurthub_proxy_traffic_collector{client="kube-proxy/v1.34.4 (linux/amd64) kubernetes/$format",resource="endpointslices",subresources="",verb="list"} 100000
# HELP node_yurthub_server_healthy_status healthy status of remote servers. 1: healthy, 0: unhealthy
# TYPE node_yurthub_server_healthy_status gauge
node_yurthub_server_healthy_status{server="https://10.0.0.1:6443"} 1
`

// healthy plants a node that yurtadm join set up and that works.
func (f *fixture) healthy() {
	f.manifest(constants.YurthubBootstrapModeKCE)
	f.write(constants.KubeletFlagsEnvFile, `KUBELET_KUBEADM_ARGS="--hostname-override=edge-1 --node-labels=openyurt.io/is-edge-worker=true --kubeconfig=/var/lib/openyurt/kubelet.conf"`+"\n")
	f.write(constants.OpenYurtKubeletConfig, kubeconfig(f.t, constants.YurthubProxyURL))
	f.write(constants.KubeletKubeconfig, kubeconfig(f.t, testServer))
	f.write("/proc/100/comm", "kubelet\n")
	f.write("/proc/100/cmdline", "/usr/bin/kubelet\x00--kubeconfig=/var/lib/openyurt/kubelet.conf\x00")
	f.write("/proc/1/comm", "init\n")

	f.write(constants.CACertPath, string(f.ca.pem))
	f.write(constants.KubeletClientCert, string(f.ca.issue(f.t, "system:node:"+testNode, f.now.Add(-30*24*time.Hour), f.now.Add(335*24*time.Hour))))
	f.write(constants.YurthubServerCert, string(f.ca.issue(f.t, "system:node:"+testNode, f.now.Add(-30*24*time.Hour), f.now.Add(335*24*time.Hour))))

	// yurthub v1.7.0 caches Services for kubelet in its multiplexer, as
	// the cloud has them, and rewrites them when it answers kubelet.
	f.write("/etc/kubernetes/cache/multiplexer-proxy-edge-1/services.v1.core/default/kubernetes", serviceJSON("10.96.0.1", 443))
	f.kubeletSvc = "169.254.2.1:10268"
	f.write("/etc/kubernetes/cache/kubelet/pods.v1.core/default/app-1", `{}`)
	f.write("/etc/kubernetes/cache/yurthub/configmaps.v1.core/kube-system/yurt-hub-cfg", `{}`)
	// ... and the cloud has them all.
	for _, o := range []runtime.Object{
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kubernetes"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "app-1", CreationTimestamp: metav1.NewTime(f.now.Add(-time.Hour))},
			Spec: corev1.PodSpec{NodeName: testNode, Tolerations: []corev1.Toleration{ // as pod-binding leaves them on an autonomous node
				{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
				{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
			}}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "yurt-hub-cfg"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: testNode,
			Labels:      map[string]string{constants.LabelEdgeWorker: "true", constants.LabelNodePool: "edge"},
			Annotations: map[string]string{constants.AnnotationAutonomyDur: "0"}}},
	} {
		if err := f.cloud.Tracker().Add(o); err != nil {
			f.t.Fatal(err)
		}
	}

	f.nodePools = map[string][]string{"edge": {testNode}, "cloud": {"master"}}

	f.containers = []container{
		{id: "hub0000000000000001", name: "yurt-hub", pod: "kube-system/yurt-hub-edge-1", state: stateRunning},
		{id: "app0000000000000001", name: "app", pod: "default/app-1", state: stateRunning,
			env: map[string]string{"KUBERNETES_SERVICE_HOST": "169.254.2.1", "KUBERNETES_SERVICE_PORT": "10268", "PATH": "/bin"}},
	}
	okHandler := func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "OK") }
	f.healthz, f.readyz = okHandler, okHandler
	f.metrics = []string{healthyMetrics}
	if err := os.WriteFile(f.kubeletLog, []byte("I0601 12:00:00 kubelet.go:1 Started kubelet\n"), 0o644); err != nil {
		f.t.Fatal(err)
	}

	// What the host checks read.
	f.write(socketPath, "")
	f.write("/proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n")
	f.write("/proc/sys/net/ipv4/ip_forward", "1\n")
	f.write("/proc/sys/net/bridge/bridge-nf-call-iptables", "1\n")
	f.write("/etc/resolv.conf", "nameserver 10.0.0.2\n")
	f.write("/proc/cgroups", "#subsys_name\thierarchy\tnum_cgroups\tenabled\npids\t3\t100\t1\n")
}

func (c container) psJSON() map[string]any {
	ns, pod, _ := strings.Cut(c.pod, "/")
	return map[string]any{"id": c.id, "podSandboxId": "sb-" + c.id,
		"metadata": map[string]any{"name": c.name, "attempt": c.attempt},
		"state":    c.state, "createdAt": fmt.Sprint(1_700_000_000_000_000_000 + int64(c.attempt)),
		"labels": map[string]string{"io.kubernetes.container.name": c.name, "io.kubernetes.pod.name": pod, "io.kubernetes.pod.namespace": ns}}
}

func (c container) inspectJSON() map[string]any {
	finished := "0001-01-01T00:00:00Z"
	if c.state == stateExited {
		finished = "2025-06-01T11:59:00Z"
	}
	var env []string
	var envs []map[string]string
	for k, v := range c.env {
		env = append(env, k+"="+v)
		envs = append(envs, map[string]string{"key": k, "value": v})
	}
	return map[string]any{
		"status": map[string]any{"id": c.id, "state": c.state, "exitCode": c.exitCode, "reason": c.reason,
			// crictl inspect writes these as RFC 3339, unlike crictl ps.
			"startedAt": "2025-06-01T11:00:00.123456789Z", "finishedAt": finished},
		"info": map[string]any{"runtimeSpec": map[string]any{"process": map[string]any{"env": env}},
			"config": map[string]any{"envs": envs}},
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// script answers the read-only commands doctor may run; any other command
// fails the test.
func (f *fixture) script() {
	real := "crictl --runtime-endpoint unix://" + f.h.FS.Path(socketPath) + " "
	var ps []map[string]any
	var batch []string
	var batchJSON []map[string]any
	for _, c := range f.containers {
		ps = append(ps, c.psJSON())
		f.sc.Answers[real+"inspect -o json "+c.id] = hosttest.Answer{Out: mustJSON(c.inspectJSON())}
		f.sc.Answers[real+fmt.Sprintf("logs --tail %d %s", logScanLines, c.id)] = hosttest.Answer{
			Out: `time="2025-06-01T12:00:00Z" level=warning msg="Config \"/etc/crictl.yaml\" does not exist"` + "\n" + c.log}
		if c.state == stateRunning && c.name != constants.YurthubContainerName {
			batch = append(batch, c.id)
			batchJSON = append(batchJSON, c.inspectJSON())
		}
	}
	f.sc.Answers[real+"ps -a -o json"] = hosttest.Answer{Out: mustJSON(map[string]any{"containers": ps})}
	if len(batch) > 1 {
		f.sc.Answers[real+"inspect -o json "+strings.Join(batch, " ")] = hosttest.Answer{Out: mustJSON(batchJSON)}
	}
	f.sc.Answers["crictl --runtime-endpoint unix://"+socketPath+" info"] = hosttest.Answer{
		Out: `{"status":{"conditions":[{"type":"RuntimeReady","status":true}]}}`}
}

// serve starts the fake yurthub endpoint; a nil healthz means yurthub
// does not listen (the URL refuses connections).
func (f *fixture) serve() string {
	if f.healthz == nil {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		return url
	}
	mux := http.NewServeMux()
	for pattern, h := range f.handlers {
		mux.HandleFunc(pattern, h)
	}
	mux.HandleFunc("/v1/healthz", f.healthz)
	mux.HandleFunc("/v1/readyz", f.readyz)
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		i := min(f.scrapes, len(f.metrics)-1)
		f.scrapes++
		fmt.Fprint(w, f.metrics[i])
	})
	mux.HandleFunc("/api/v1/services", func(w http.ResponseWriter, r *http.Request) {
		addr := "10.96.0.1:443"
		if strings.HasPrefix(r.UserAgent(), "kubelet/") {
			addr = f.kubeletSvc
		}
		ip, port, _ := net.SplitHostPort(addr)
		var p int32
		fmt.Sscan(port, &p)
		fmt.Fprintf(w, `{"kind":"ServiceList","apiVersion":"v1","items":[%s]}`, serviceJSON(ip, p))
	})
	srv := httptest.NewServer(mux)
	f.t.Cleanup(srv.Close)
	return srv.URL
}

func (f *fixture) deps() deps {
	f.script()
	serveURL := f.serve()
	return deps{
		newHost:  func(string) *host.Host { return f.h },
		env:      f.env,
		serveURL: serveURL,
		proxyURL: serveURL, // serves /api/v1/services; the fake cloud answers the rest
		http:     &http.Client{},
		newCloud: func(cfg *rest.Config) (CloudClient, error) {
			f.cloudHosts = append(f.cloudHosts, cfg.Host)
			if f.cloudErr != nil {
				return nil, f.cloudErr
			}
			return fakeCloud{f.cloud, f.listErrs, f.nodePools}, nil
		},
		now:      func() time.Time { return f.now },
		hostname: func() (string, error) { return testNode, nil },
		statfs: func(p string) (uint64, uint64, error) {
			if f.statfs != nil {
				return f.statfs(p)
			}
			return 20 << 30, 64 << 30, nil
		},
	}
}

// fakeCloud is the fake API server as a CloudClient.
type fakeCloud struct {
	cs        *fake.Clientset
	listErrs  map[string]error
	nodePools map[string][]string
}

// RawGet answers the NodePool list as kube-apiserver does: 404 without
// the API, else the pools the field selector names.
func (c fakeCloud) RawGet(_ context.Context, absPath string, query map[string]string) ([]byte, error) {
	gr := schema.GroupResource{Group: "apps.openyurt.io", Resource: "nodepools"}
	if absPath != "/apis/apps.openyurt.io/v1beta2/nodepools" || c.nodePools == nil {
		return nil, apierrors.NewNotFound(gr, "")
	}
	want, _ := strings.CutPrefix(query["fieldSelector"], "metadata.name=")
	type pool struct {
		Metadata map[string]string `json:"metadata"`
		Status   map[string]any    `json:"status"`
	}
	items := []pool{}
	for name, nodes := range c.nodePools {
		if want == "" || name == want {
			items = append(items, pool{Metadata: map[string]string{"name": name}, Status: map[string]any{"nodes": nodes}})
		}
	}
	return json.Marshal(map[string]any{"kind": "NodePoolList", "apiVersion": "apps.openyurt.io/v1beta2", "items": items})
}

func (c fakeCloud) ServerVersion(context.Context) (*apiversion.Info, error) {
	return c.cs.Discovery().ServerVersion()
}

// ListMeta lists from the fake API server's tracker; a resource in
// listErrs fails with its error.
func (c fakeCloud) ListMeta(_ context.Context, group, version, resource, namespace, fieldSelector string) ([]kube.ObjectMeta, error) {
	if err := c.listErrs[resource]; err != nil {
		return nil, err
	}
	if group == "core" {
		group = ""
	}
	kinds := map[string]string{"services": "Service", "endpointslices": "EndpointSlice", "pods": "Pod", "configmaps": "ConfigMap", "nodes": "Node"}
	gvr := schema.GroupVersionResource{Group: group, Version: version, Resource: resource}
	obj, err := c.cs.Tracker().List(gvr, gvr.GroupVersion().WithKind(kinds[resource]), namespace)
	if err != nil {
		return nil, err
	}
	items, err := meta.ExtractList(obj)
	if err != nil {
		return nil, err
	}
	var out []kube.ObjectMeta
	for _, it := range items {
		m, _ := meta.Accessor(it)
		if node, found := strings.CutPrefix(fieldSelector, "spec.nodeName="); found {
			if p, isPod := it.(*corev1.Pod); !isPod || p.Spec.NodeName != node {
				continue
			}
		}
		out = append(out, kube.ObjectMeta{Namespace: m.GetNamespace(), Name: m.GetName(), UID: string(m.GetUID())})
	}
	return out, nil
}

func (c fakeCloud) CoreV1() kube.CoreV1Interface { return kubetest.Wrap(c.cs).CoreV1() }

func (c fakeCloud) CertificatesV1() kube.CertificatesV1Interface {
	return kubetest.Wrap(c.cs).CertificatesV1()
}

// run runs doctor with -o json and returns the report and exit code.
func (f *fixture) run(args ...string) (Report, int, string) {
	f.t.Helper()
	var out, errOut bytes.Buffer
	s := cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	cmd := newCommand(s, f.deps())
	cmd.SetArgs(append([]string{"--host-root", f.h.FS.Root, "--kubelet-log", f.kubeletLog, "-o", "json", "--timeout", "5s"}, args...))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	var rep Report
	if out.Len() > 0 {
		if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
			f.t.Fatalf("output is not JSON: %v\n%s", jerr, out.String())
		}
	}
	return rep, cmdutil.ExitCode(err), out.String()
}

func (r Report) finding(name string) (Finding, bool) {
	for _, f := range r.Findings {
		if f.Name == name {
			return f, true
		}
	}
	return Finding{}, false
}

// cloudCSR adds a certificate request to the fake API server.
func (f *fixture) cloudCSR(name, signer string, req []byte, conds ...certificatesv1.CertificateSigningRequestCondition) {
	csr := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(f.now.Add(-10 * time.Minute))},
		Spec:       certificatesv1.CertificateSigningRequestSpec{SignerName: signer, Request: req},
		Status:     certificatesv1.CertificateSigningRequestStatus{Conditions: conds},
	}
	if err := f.cloud.Tracker().Add(csr); err != nil {
		f.t.Fatal(err)
	}
}

// unreachable makes the fake API server refuse /version, as yurthub's
// local proxy does while the cloud is down.
func (f *fixture) unreachable() {
	f.cloud.PrependReactor("get", "version", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, fmt.Errorf("local proxy does not support request(/version)")
	})
}
