package integration

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	"k8s.io/cluster-bootstrap/token/jws"

	"github.com/yurtadm/yurtadm/test/framework"
)

// TestControlPlaneSmoke checks that the framework's control plane is what
// `yurtadm join` expects of a kubeadm cluster.
func TestControlPlaneSmoke(t *testing.T) {
	cp := framework.StartControlPlane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("cluster-info points at the endpoint with the CA", func(t *testing.T) {
		cm, err := cp.Client.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get kube-public/cluster-info: %v", err)
		}
		kubeconfig, err := clientcmd.Load([]byte(cm.Data[bootstrapapi.KubeConfigKey]))
		if err != nil {
			t.Fatalf("cluster-info kubeconfig: %v", err)
		}
		if len(kubeconfig.Clusters) != 1 {
			t.Fatalf("cluster-info has %d clusters, want 1", len(kubeconfig.Clusters))
		}
		for _, c := range kubeconfig.Clusters {
			if c.Server != cp.Endpoint {
				t.Errorf("cluster-info server = %s, want %s", c.Server, cp.Endpoint)
			}
			if !bytes.Equal(c.CertificateAuthorityData, cp.CACertPEM) {
				t.Errorf("cluster-info CA differs from pki/ca.crt")
			}
		}
	})

	t.Run("a new token is signed and an expired one is not", func(t *testing.T) {
		expired := cp.CreateToken(t, -time.Hour)
		token := cp.CreateToken(t, time.Hour)
		sig := cp.WaitForTokenSigned(t, token, time.Minute)

		cm, err := cp.Client.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		id, secret, _ := strings.Cut(token, ".")
		if !jws.DetachedTokenIsValid(sig, cm.Data[bootstrapapi.KubeConfigKey], id, secret) {
			t.Errorf("jws-kubeconfig-%s does not verify with the token", id)
		}
		// The signer signs every valid token in one pass: by now the expired one
		// would be signed if it were going to be.
		expiredID, _, _ := strings.Cut(expired, ".")
		if s, ok := cm.Data[bootstrapapi.JWSSignatureKeyPrefix+expiredID]; ok {
			t.Errorf("expired token %s is signed: %q", expiredID, s)
		}
	})

	t.Run("kubeadm's ConfigMaps exist", func(t *testing.T) {
		for _, name := range []string{"kubeadm-config", "kubelet-config"} {
			cm, err := cp.Client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Errorf("get kube-system/%s: %v", name, err)
				continue
			}
			if len(cm.Data) == 0 {
				t.Errorf("kube-system/%s is empty", name)
			}
		}
	})

	t.Run("kubeadm prints the same CA hash", func(t *testing.T) {
		out, err := exec.CommandContext(ctx, cp.Tools.Kubeadm, "token", "create", "--print-join-command",
			"--kubeconfig", cp.AdminKubeconfig).CombinedOutput()
		if err != nil {
			t.Fatalf("kubeadm token create: %v\n%s", err, out)
		}
		m := regexp.MustCompile(`--discovery-token-ca-cert-hash (sha256:[0-9a-f]{64})`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("no CA hash in kubeadm's join command: %s", out)
		}
		if got := string(m[1]); got != cp.CACertHash {
			t.Errorf("kubeadm's CA hash %s, framework's %s", got, cp.CACertHash)
		}
		if want := strings.TrimPrefix(cp.Endpoint, "https://"); !bytes.Contains(out, []byte("kubeadm join "+want+" ")) {
			t.Errorf("kubeadm's join command does not target %s: %s", want, out)
		}
	})
}
