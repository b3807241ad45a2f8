package framework

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	"k8s.io/kubernetes/cmd/kubeadm/app/util/pubkeypin"
)

// Time limits of a start on a loaded 2-core machine (a cold start takes
// about 10 s there).
const (
	etcdTimeout      = 60 * time.Second
	apiserverTimeout = 2 * time.Minute
	signerTimeout    = 2 * time.Minute
	stopGrace        = 10 * time.Second
)

// ControlPlane is a running etcd, kube-apiserver and kube-controller-manager
// set up by kubeadm's phases. Its fields are read-only.
type ControlPlane struct {
	// Endpoint is kube-apiserver's URL: https://<this machine's IPv4>:<port>,
	// also the controlPlaneEndpoint in cluster-info and kubeadm-config.
	Endpoint string
	// HostIP and Port make up Endpoint.
	HostIP string
	Port   int
	// CACertPEM is the cluster CA certificate (pki/ca.crt).
	CACertPEM []byte
	// CACertHash pins the CA the way `kubeadm join
	// --discovery-token-ca-cert-hash` takes it: "sha256:<hex>" of the
	// certificate's SubjectPublicKeyInfo.
	CACertHash string
	// AdminConfig authenticates as kubeadm's admin.conf (group
	// kubeadm:cluster-admins, bound to cluster-admin).
	AdminConfig *rest.Config
	// Client is a clientset for AdminConfig.
	Client kubernetes.Interface

	// Dir holds everything: pki/, kubeconfig/ (admin.conf, super-admin.conf,
	// controller-manager.conf), kubeadm.yaml, etcd/ and logs/.
	Dir string
	// AdminKubeconfig is the path of admin.conf.
	AdminKubeconfig string
	// KubeadmConfig is the path of the kubeadm configuration the phases ran with.
	KubeadmConfig string
	// Tools are the binaries that run the control plane.
	Tools Tools

	logDir   string
	procs    []*process
	stopOnce sync.Once
}

// StartControlPlane starts a control plane in a temporary directory of t and
// stops it when t ends, printing the processes' logs first if t failed. It
// skips t when the binaries are missing, or fails it under CI=true (see
// RequireTools). A cold start takes about 10 to 20 seconds.
func StartControlPlane(t testing.TB) *ControlPlane {
	t.Helper()
	tools := RequireTools(t)
	start := time.Now()
	cp, err := Start(tools, t.TempDir())
	if err != nil {
		t.Fatalf("start control plane: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("control plane logs (%s):\n%s", cp.Dir, cp.LogTails(60))
		}
		cp.Stop()
	})
	t.Logf("control plane at %s ready in %s (dir %s)", cp.Endpoint, time.Since(start).Round(time.Millisecond), cp.Dir)
	return cp
}

// Start starts a control plane with tools in dir (which must exist and is
// removed by Stop). It returns when kube-apiserver is ready, kubeadm's
// upload-config and bootstrap-token phases have run, and
// kube-controller-manager has signed cluster-info for kubeadm's default
// token. On error nothing is left running and the error carries the tails
// of the logs.
func Start(tools Tools, dir string) (cp *ControlPlane, err error) {
	ip, err := HostIP()
	if err != nil {
		return nil, err
	}
	cp = &ControlPlane{
		HostIP:          ip.String(),
		Dir:             dir,
		Tools:           tools,
		logDir:          filepath.Join(dir, "logs"),
		AdminKubeconfig: filepath.Join(dir, "kubeconfig", "admin.conf"),
		KubeadmConfig:   filepath.Join(dir, "kubeadm.yaml"),
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, cp.LogTails(40))
			cp.stopProcesses()
		}
	}()
	for _, d := range []string{"pki", "kubeconfig", "etcd", "logs", "dryrun"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return cp, err
		}
	}

	etcdURL, err := cp.startEtcd()
	if err != nil {
		return cp, err
	}
	if cp.Port, err = freePort(cp.HostIP); err != nil {
		return cp, fmt.Errorf("free port for kube-apiserver: %w", err)
	}
	cp.Endpoint = "https://" + net.JoinHostPort(cp.HostIP, strconv.Itoa(cp.Port))

	nodeName, err := os.Hostname()
	if err != nil {
		return cp, err
	}
	cfg, err := kubeadmConfig{
		NodeName:         strings.ToLower(nodeName),
		AdvertiseAddress: cp.HostIP,
		Port:             cp.Port,
		CertificatesDir:  filepath.Join(dir, "pki"),
		EtcdEndpoint:     etcdURL,
		Version:          KubernetesVersion,
		ServiceSubnet:    "10.96.0.0/12",
		PodSubnet:        "10.244.0.0/16",
	}.render()
	if err != nil {
		return cp, err
	}
	if err := os.WriteFile(cp.KubeadmConfig, cfg, 0o600); err != nil {
		return cp, err
	}

	// PKI, kubeconfigs and the exact control-plane command lines, from kubeadm.
	kubeconfigDir := filepath.Join(dir, "kubeconfig")
	dryRunDir := filepath.Join(dir, "dryrun")
	for _, phase := range [][]string{
		{"certs", "all"},
		{"kubeconfig", "admin", "--kubeconfig-dir", kubeconfigDir},
		{"kubeconfig", "super-admin", "--kubeconfig-dir", kubeconfigDir},
		{"kubeconfig", "controller-manager", "--kubeconfig-dir", kubeconfigDir},
		{"control-plane", "all", "--dry-run"},
	} {
		if err := cp.kubeadm([]string{"KUBEADM_INIT_DRYRUN_DIR=" + dryRunDir}, phase...); err != nil {
			return cp, err
		}
	}
	if err := cp.loadCA(); err != nil {
		return cp, err
	}

	if err := cp.startAPIServer(kubeconfigDir, dryRunDir); err != nil {
		return cp, err
	}
	if err := cp.connect(); err != nil {
		return cp, err
	}
	for _, phase := range [][]string{
		{"upload-config", "all"},
		{"bootstrap-token"},
	} {
		if err := cp.kubeadm(nil, append(phase, "--kubeconfig", cp.AdminKubeconfig)...); err != nil {
			return cp, err
		}
	}
	if err := cp.startControllerManager(kubeconfigDir, dryRunDir); err != nil {
		return cp, err
	}
	return cp, nil
}

// kubeadm runs `kubeadm init phase <args> --config kubeadm.yaml`.
func (cp *ControlPlane) kubeadm(env []string, args ...string) error {
	args = append(append([]string{"init", "phase"}, args...), "--config", cp.KubeadmConfig, "--v=1")
	return runLogged(filepath.Join(cp.logDir, "kubeadm.log"), env, cp.Tools.Kubeadm, args...)
}

func (cp *ControlPlane) startEtcd() (string, error) {
	clientPort, err := freePort("127.0.0.1")
	if err != nil {
		return "", err
	}
	peerPort, err := freePort("127.0.0.1")
	if err != nil {
		return "", err
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	p, err := cp.startProcess("etcd", cp.logDir, cp.Tools.Etcd,
		"--name=default",
		"--data-dir="+filepath.Join(cp.Dir, "etcd"),
		"--listen-client-urls="+clientURL,
		"--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		"--logger=zap",
		"--log-outputs=stderr",
	)
	if err != nil {
		return "", err
	}
	cp.procs = append(cp.procs, p)

	hc := &http.Client{Timeout: 2 * time.Second}
	err = poll(etcdTimeout, func() (bool, error) {
		if err := p.exited(); err != nil {
			return false, err
		}
		resp, err := hc.Get(clientURL + "/health")
		if err != nil {
			return false, nil
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"health":"true"`), nil
	})
	if err != nil {
		return "", fmt.Errorf("etcd at %s not healthy: %w", clientURL, err)
	}
	return clientURL, nil
}

func (cp *ControlPlane) startAPIServer(kubeconfigDir, dryRunDir string) error {
	command, err := staticPodCommand(filepath.Join(dryRunDir, "kube-apiserver.yaml"))
	if err != nil {
		return err
	}
	p, err := cp.startProcess("kube-apiserver", cp.logDir, cp.Tools.KubeAPIServer, hostArgs(command, kubeconfigDir, nil)...)
	if err != nil {
		return err
	}
	cp.procs = append(cp.procs, p)

	// super-admin.conf (system:masters) is authorized before RBAC exists.
	superAdmin, err := restConfig(filepath.Join(kubeconfigDir, "super-admin.conf"))
	if err != nil {
		return err
	}
	superClient, err := kubernetes.NewForConfig(superAdmin)
	if err != nil {
		return err
	}
	err = poll(apiserverTimeout, func() (bool, error) {
		if err := p.exited(); err != nil {
			return false, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := superClient.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("kube-apiserver at %s not ready: %w", cp.Endpoint, err)
	}

	// What `kubeadm init` does before admin.conf may be used.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = superClient.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "kubeadm:cluster-admins"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: "kubeadm:cluster-admins"}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create ClusterRoleBinding kubeadm:cluster-admins: %w", err)
	}
	return nil
}

func (cp *ControlPlane) connect() error {
	cfg, err := restConfig(cp.AdminKubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	cp.AdminConfig, cp.Client = cfg, client
	return nil
}

func (cp *ControlPlane) startControllerManager(kubeconfigDir, dryRunDir string) error {
	command, err := staticPodCommand(filepath.Join(dryRunDir, "kube-controller-manager.yaml"))
	if err != nil {
		return err
	}
	p, err := cp.startProcess("kube-controller-manager", cp.logDir, cp.Tools.KubeControllerManager, hostArgs(command, kubeconfigDir, nil)...)
	if err != nil {
		return err
	}
	cp.procs = append(cp.procs, p)

	// The bootstrap signer signing cluster-info for kubeadm's token shows
	// that the controllers discovery depends on are running.
	err = poll(signerTimeout, func() (bool, error) {
		if err := p.exited(); err != nil {
			return false, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cm, err := cp.Client.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for k := range cm.Data {
			if strings.HasPrefix(k, bootstrapapi.JWSSignatureKeyPrefix) {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("kube-controller-manager did not sign cluster-info: %w", err)
	}
	return nil
}

func (cp *ControlPlane) loadCA() error {
	pemBytes, err := os.ReadFile(filepath.Join(cp.Dir, "pki", "ca.crt"))
	if err != nil {
		return err
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE" {
		return errors.New("pki/ca.crt: no PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("pki/ca.crt: %w", err)
	}
	cp.CACertPEM = pemBytes
	cp.CACertHash = pubkeypin.Hash(cert)
	return nil
}

// Stop ends the processes (SIGTERM, SIGKILL after a grace period) and removes
// Dir. It is safe to call more than once.
func (cp *ControlPlane) Stop() {
	cp.stopOnce.Do(func() {
		cp.stopProcesses()
		_ = os.RemoveAll(cp.Dir)
	})
}

func (cp *ControlPlane) stopProcesses() {
	var wg sync.WaitGroup
	// kube-controller-manager and kube-apiserver first, etcd last.
	for i := len(cp.procs) - 1; i >= 0; i-- {
		p := cp.procs[i]
		if p.name == "etcd" {
			wg.Wait()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stop(stopGrace)
		}()
	}
	wg.Wait()
	cp.procs = nil
}

func (cp *ControlPlane) startProcess(name, logDir, path string, args ...string) (*process, error) {
	return startProcess(name, logDir, path, args...)
}

// LogTails returns the last lines of every log of the control plane (its
// processes and the kubeadm commands).
func (cp *ControlPlane) LogTails(lines int) string {
	entries, err := os.ReadDir(cp.logDir)
	if err != nil {
		return fmt.Sprintf("(no logs: %v)", err)
	}
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "----- %s -----\n%s\n", e.Name(), tail(filepath.Join(cp.logDir, e.Name()), lines))
	}
	return b.String()
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", kubeconfig, err)
	}
	cfg.Timeout = 30 * time.Second
	return cfg, nil
}

// poll calls cond every 250ms until it is done, fails, or timeout passes.
func poll(timeout time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(context.Context) (bool, error) {
		return cond()
	})
}
