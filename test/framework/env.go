package framework

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Environment variables the framework reads.
const (
	// EnvToolsBin names the directory with the Kubernetes binaries.
	EnvToolsBin = "YURTADM_TOOLS_BIN"
	// EnvEtcd overrides the etcd binary.
	EnvEtcd = "YURTADM_ETCD"
	// EnvHostIP overrides the address kube-apiserver advertises.
	EnvHostIP = "YURTADM_TEST_HOST_IP"
)

// Tools are the binaries a control plane runs.
type Tools struct {
	Etcd                  string
	KubeAPIServer         string
	KubeControllerManager string
	Kubeadm               string
}

// errToolsMissing marks a missing binary, as opposed to a broken one.
var errToolsMissing = errors.New("control-plane binaries missing")

// FindTools locates the binaries from the environment (see the package doc).
func FindTools() (Tools, error) {
	dir := os.Getenv(EnvToolsBin)
	if dir == "" {
		return Tools{}, fmt.Errorf("%w: %s is not set (run `make test`, or export %s=$(hack/tools.sh kube-apiserver kube-controller-manager kubeadm | tail -1))",
			errToolsMissing, EnvToolsBin, EnvToolsBin)
	}
	t := Tools{
		KubeAPIServer:         filepath.Join(dir, "kube-apiserver"),
		KubeControllerManager: filepath.Join(dir, "kube-controller-manager"),
		Kubeadm:               filepath.Join(dir, "kubeadm"),
	}
	for _, p := range []string{t.KubeAPIServer, t.KubeControllerManager, t.Kubeadm} {
		if err := executable(p); err != nil {
			return Tools{}, fmt.Errorf("%w: %v (build it with hack/tools.sh)", errToolsMissing, err)
		}
	}
	etcd, err := findEtcd()
	if err != nil {
		return Tools{}, err
	}
	t.Etcd = etcd
	return t, nil
}

func findEtcd() (string, error) {
	if p := os.Getenv(EnvEtcd); p != "" {
		if err := executable(p); err != nil {
			return "", fmt.Errorf("%w: %s: %v", errToolsMissing, EnvEtcd, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("etcd"); err == nil {
		return p, nil
	}
	if err := executable("/usr/bin/etcd"); err == nil {
		return "/usr/bin/etcd", nil
	}
	return "", fmt.Errorf("%w: etcd not found in PATH nor /usr/bin (install it with hack/install-deps.sh)", errToolsMissing)
}

func executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

// RequireTools returns the binaries, or ends the test when they are missing:
// with t.Skip on a developer's machine, with t.Fatal when CI=true, so that CI
// never passes by skipping the real-cluster tests.
func RequireTools(t testing.TB) Tools {
	t.Helper()
	tools, err := FindTools()
	if err == nil {
		return tools
	}
	if InCI() || !errors.Is(err, errToolsMissing) {
		t.Fatalf("real control plane unavailable: %v", err)
	}
	t.Skipf("skipping real-cluster test: %v", err)
	return Tools{}
}

// InCI reports whether the tests run in CI (CI=true, as CI systems set it).
func InCI() bool {
	return strings.EqualFold(os.Getenv("CI"), "true")
}

// HostIP returns this machine's own non-loopback IPv4 address: the source
// address of the default route. kube-apiserver must advertise a
// non-loopback address (the kubernetes Endpoints reject 127.0.0.0/8).
// `ip route get` only consults the routing table; no packet is sent.
func HostIP() (net.IP, error) {
	if s := os.Getenv(EnvHostIP); s != "" {
		ip := net.ParseIP(s)
		if ip == nil || ip.To4() == nil {
			return nil, fmt.Errorf("%s=%q is not an IPv4 address", EnvHostIP, s)
		}
		return ip, nil
	}
	if out, err := exec.Command("ip", "-4", "-o", "route", "get", "1.1.1.1").Output(); err == nil {
		if ip := routeSource(string(out)); ip != nil {
			return ip, nil
		}
	}
	// No default route: the first global IPv4 address of an interface that is up.
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	for _, iface := range ifaces {
		if iface.Flags&net.FlagUp == 0 || iface.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
				return n.IP.To4(), nil
			}
		}
	}
	return nil, fmt.Errorf("no non-loopback IPv4 address found (set %s)", EnvHostIP)
}

// routeSource returns the address after "src" in `ip route get` output.
func routeSource(out string) net.IP {
	fields := strings.Fields(out)
	for i := 0; i+1 < len(fields); i++ {
		if fields[i] == "src" {
			if ip := net.ParseIP(fields[i+1]); ip != nil && ip.To4() != nil && !ip.IsLoopback() {
				return ip.To4()
			}
		}
	}
	return nil
}

// freePort returns a TCP port that is free on host at the time of the call.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
