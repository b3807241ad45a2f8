package harness

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/yurtadm/yurtadm/pkg/convert"
	"github.com/yurtadm/yurtadm/test/cluster"
	"github.com/yurtadm/yurtadm/test/framework"
)

// kubeletUnit is the kubelet.service a kubelet package ships, without a
// drop-in: `yurtadm join` writes 10-kubeadm.conf when none is there.
const kubeletUnit = `[Unit]
Description=kubelet: The Kubernetes Node Agent (yurtadm e2e harness)
Documentation=https://kubernetes.io/docs/

[Service]
ExecStart=%s
Restart=always
RestartSec=2
StartLimitInterval=0

[Install]
WantedBy=multi-user.target
`

// Up brings the whole machine up: Clean, Build, containerd, the control
// plane with kube-scheduler and yurt-manager, the cluster prepared by
// `yurtctl convert phase control-plane`, and the kubelet unit. The node is
// not joined. On error what was started is left for Clean (the caller's
// cleanup), with the logs in Work.
func (h *Harness) Up(ctx context.Context) error {
	start := time.Now()
	if missing := h.Prerequisites(); len(missing) > 0 {
		return fmt.Errorf("this machine lacks: %s", strings.Join(missing, "; "))
	}
	if err := h.Clean(ctx); err != nil {
		return fmt.Errorf("clean before start: %w", err)
	}
	if err := os.MkdirAll(h.Work, 0o755); err != nil {
		return err
	}
	if err := h.Build(ctx); err != nil {
		return err
	}
	if err := h.StartContainerd(ctx); err != nil {
		return err
	}
	if err := h.StartCluster(ctx); err != nil {
		return err
	}
	if err := h.InstallKubeletUnit(); err != nil {
		return err
	}
	h.logf("machine up in %s", time.Since(start).Round(time.Second))
	return nil
}

// StartCluster starts the control plane (in Work/cluster), kube-scheduler
// and yurt-manager, and creates what yurthub reads from the cluster.
func (h *Harness) StartCluster(ctx context.Context) error {
	tools, err := framework.FindTools()
	if err != nil {
		return err
	}
	dir := filepath.Join(h.Work, "cluster")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	cp, err := framework.StartWith(tools, dir, framework.StartOptions{Detach: h.Detach})
	if cp != nil {
		h.CP = cp
		h.recordCP()
	}
	if err != nil {
		return fmt.Errorf("control plane: %w", err)
	}
	if err := cp.StartScheduler(); err != nil {
		h.recordCP()
		return fmt.Errorf("kube-scheduler: %w", err)
	}
	h.logf("control plane at %s (etcd, kube-apiserver, kube-controller-manager, kube-scheduler; dir %s)", cp.Endpoint, dir)
	if err := h.startYurtManager(); err != nil {
		return err
	}
	h.recordCP()
	if err := h.installYurthubObjects(ctx); err != nil {
		return err
	}
	return h.writeClusterEnv()
}

// recordCP writes the control plane's PIDs into the registry (again: the
// registry keeps the last line per name).
func (h *Harness) recordCP() {
	if h.CP == nil {
		return
	}
	have := map[string]int{}
	for _, d := range h.readPIDs() {
		have[d.name] = d.pid
	}
	for name, pid := range h.CP.PIDs() {
		if have[name] != pid {
			_ = h.recordPID(name, pid)
		}
	}
}

// startYurtManager runs OpenYurt's yurt-manager as a host process with only
// its CSR approver: yurthub asks for a kubelet-serving certificate for its
// HTTPS proxy, which kube-controller-manager signs but never approves. It
// cannot run as a pod on the one node, which is not Ready before yurthub.
func (h *Harness) startYurtManager() error {
	if err := h.yurtManagerRBAC(); err != nil {
		return err
	}
	probe, err := freeLoopbackPort()
	if err != nil {
		return err
	}
	pid, err := h.CP.StartExtra("yurt-manager", filepath.Join(h.ToolsBin, "yurt-manager"),
		"--kubeconfig="+h.CP.AdminKubeconfig,
		"--controllers=csr-approver-controller",
		"--disable-independent-webhooks=*",
		"--leader-elect=false",
		"--metrics-addr=0",
		"--health-probe-addr=127.0.0.1:"+strconv.Itoa(probe),
		"--working-namespace=kube-system",
		"--v=2",
	)
	if err != nil {
		return fmt.Errorf("start yurt-manager: %w", err)
	}
	url := "http://127.0.0.1:" + strconv.Itoa(probe) + "/healthz"
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if err := h.CP.Exited("yurt-manager"); err != nil {
			return fmt.Errorf("%w\n%s", err, tailFile(filepath.Join(h.CP.LogDir(), "yurt-manager.log"), 30))
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("yurt-manager not healthy at %s after 2m\n%s", url, tailFile(filepath.Join(h.CP.LogDir(), "yurt-manager.log"), 30))
		}
		time.Sleep(250 * time.Millisecond)
	}
	h.logf("yurt-manager running (pid %d, csr-approver-controller only)", pid)
	return nil
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ClusterEnvFile holds ENDPOINT, CA_CERT_HASH and KUBECONFIG for the shell
// (quickstart).
func (h *Harness) ClusterEnvFile() string { return filepath.Join(h.Work, "cluster.env") }

func (h *Harness) writeClusterEnv() error {
	s := fmt.Sprintf("ENDPOINT=%s\nAPISERVER=%s:%d\nCA_CERT_HASH=%s\nKUBECONFIG=%s\n",
		h.CP.Endpoint, h.CP.HostIP, h.CP.Port, h.CP.CACertHash, h.CP.AdminKubeconfig)
	return os.WriteFile(h.ClusterEnvFile(), []byte(s), 0o644)
}

// InstallKubeletUnit writes kubelet.service for the systemctl stand-in,
// running the tools' kubelet through Bin.
func (h *Harness) InstallKubeletUnit() error {
	if err := os.MkdirAll(filepath.Dir(KubeletUnit), 0o755); err != nil {
		return err
	}
	return os.WriteFile(KubeletUnit, []byte(fmt.Sprintf(kubeletUnit, filepath.Join(h.Bin, "kubelet"))), 0o644)
}

// APIServer is host:port of kube-apiserver, as join takes it.
func (h *Harness) APIServer() string {
	return net.JoinHostPort(h.CP.HostIP, strconv.Itoa(h.CP.Port))
}

// NodeName is the name this machine registers as.
func NodeName() string {
	n, _ := os.Hostname()
	return strings.ToLower(n)
}

// Token makes a fresh bootstrap token and waits for its signature in
// cluster-info.
func (h *Harness) Token(ttl time.Duration) (string, error) {
	tok, err := h.CP.CreateTokenErr(ttl)
	if err != nil {
		return "", err
	}
	if ttl >= 0 {
		// After a kube-apiserver restart (the autonomy scenario)
		// kube-controller-manager's informers back off up to a minute
		// before the bootstrap signer sees new tokens.
		if err := h.CP.WaitForTokenSignedErr(tok, 3*time.Minute); err != nil {
			return "", fmt.Errorf("kube-controller-manager did not sign token %s in cluster-info within 3m: %w", strings.SplitN(tok, ".", 2)[0], err)
		}
	}
	return tok, nil
}

// DeleteNode removes this machine's Node object (between scenarios).
func (h *Harness) DeleteNode(ctx context.Context) {
	_ = h.CP.Client.CoreV1().Nodes().Delete(ctx, NodeName(), metav1.DeleteOptions{})
}

// Attach returns a handle on the control plane an earlier Up (of another
// process) started, from ClusterEnvFile: enough to make tokens and read the
// cluster. Its processes are not this process's children (Clean stops them).
func Attach(h *Harness) (*framework.ControlPlane, error) {
	b, err := os.ReadFile(h.ClusterEnvFile())
	if err != nil {
		return nil, fmt.Errorf("no cluster is up (%v): run `make quickstart`", err)
	}
	env := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			env[k] = v
		}
	}
	host, port, err := net.SplitHostPort(env["APISERVER"])
	if err != nil {
		return nil, fmt.Errorf("%s: APISERVER: %w", h.ClusterEnvFile(), err)
	}
	p, _ := strconv.Atoi(port)
	cfg, err := clientcmd.BuildConfigFromFlags("", env["KUBECONFIG"])
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 30 * time.Second
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &framework.ControlPlane{Endpoint: env["ENDPOINT"], HostIP: host, Port: p, CACertHash: env["CA_CERT_HASH"],
		AdminConfig: cfg, Client: client, AdminKubeconfig: env["KUBECONFIG"], Dir: filepath.Join(h.Work, "cluster")}, nil
}

// yurtManagerRBAC lets the csr-approver controller's service account (which
// yurt-manager authenticates as, per controller, through TokenRequest)
// approve yurthub's CSRs: what OpenYurt's yurt-manager chart binds to it.
func (h *Harness) yurtManagerRBAC() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const name = "yurt-manager-csr-approver-controller"
	rbac := h.CP.Client.RbacV1()
	_, err := rbac.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules:      convert.CSRApproverRules(), // what convert gives the yurt-manager it deploys
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("ClusterRole %s: %w", name, err)
	}
	_, err = rbac.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-binding"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: "kube-system"}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("ClusterRoleBinding %s-binding: %w", name, err)
	}
	return nil
}

// installYurthubObjects creates what yurthub reads from the cluster, from
// OpenYurt's own charts rendered by helm: the CRDs of the yurt-manager
// chart (yurthub watches NodePools) and the yurthub chart's yurt-hub-cfg
// and RBAC. This single-host harness runs yurt-manager as a host process
// with only its CSR approver, so it cannot take the charts' webhooks and
// Deployment (yurtctl convert's control-plane phase installs those on the
// multi-node harness, test/cluster).
func (h *Harness) installYurthubObjects(ctx context.Context) error {
	charts, err := cluster.OpenYurtCharts()
	if err != nil {
		return err
	}
	helm := filepath.Join(os.Getenv(framework.EnvToolsBin), "helm")
	for _, args := range [][]string{
		{"show", "crds", filepath.Join(charts, "yurt-manager")},
		{"template", "yurthub", filepath.Join(charts, "yurthub"), "--namespace", "kube-system", "--show-only", "templates/yurthub-cfg.yaml"},
	} {
		out, err := exec.CommandContext(ctx, helm, args...).Output()
		if err != nil {
			return fmt.Errorf("helm %s: %w", strings.Join(args, " "), err)
		}
		if err := cluster.Apply(ctx, h.CP.AdminConfig, out); err != nil {
			return err
		}
	}
	h.logf("OpenYurt's CRDs and the yurthub chart's yurt-hub-cfg and RBAC created")
	return nil
}
