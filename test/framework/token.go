package framework

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
)

// NodeBootstrapGroup is the extra group of the tokens `kubeadm token create`
// makes; kubeadm's bootstrap RBAC (CSR creation and auto-approval) is bound
// to it.
const NodeBootstrapGroup = "system:bootstrappers:kubeadm:default-node-token"

// CreateToken writes a new bootstrap token Secret for authentication and
// signing, in the group kubeadm's node tokens have, and returns the token
// ("<id>.<secret>"). ttl > 0 expires it after ttl; ttl < 0 makes it already
// expired (the bootstrap signer does not sign it, and the token cleaner
// deletes it soon); ttl == 0 means it never expires.
func (cp *ControlPlane) CreateToken(t testing.TB, ttl time.Duration) string {
	t.Helper()
	token, err := cp.createToken(ttl)
	if err != nil {
		t.Fatalf("create bootstrap token: %v", err)
	}
	return token
}

func (cp *ControlPlane) createToken(ttl time.Duration) (string, error) {
	token, err := bootstraputil.GenerateBootstrapToken()
	if err != nil {
		return "", err
	}
	id, secret, _ := strings.Cut(token, ".")
	data := map[string]string{
		bootstrapapi.BootstrapTokenIDKey:               id,
		bootstrapapi.BootstrapTokenSecretKey:           secret,
		bootstrapapi.BootstrapTokenUsageAuthentication: "true",
		bootstrapapi.BootstrapTokenUsageSigningKey:     "true",
		bootstrapapi.BootstrapTokenExtraGroupsKey:      NodeBootstrapGroup,
		bootstrapapi.BootstrapTokenDescriptionKey:      "yurtadm integration test",
	}
	if ttl != 0 {
		data[bootstrapapi.BootstrapTokenExpirationKey] = time.Now().Add(ttl).UTC().Format(time.RFC3339)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = cp.Client.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: bootstraputil.BootstrapTokenSecretName(id), Namespace: metav1.NamespaceSystem},
		Type:       bootstrapapi.SecretTypeBootstrapToken,
		StringData: data,
	}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return token, nil
}

// WaitForTokenSigned waits until kube-controller-manager's bootstrap signer
// has put the token's JWS signature (jws-kubeconfig-<id>) into cluster-info,
// and returns it. Discovery with the token works from then on.
func (cp *ControlPlane) WaitForTokenSigned(t testing.TB, token string, timeout time.Duration) string {
	t.Helper()
	id, _, _ := strings.Cut(token, ".")
	key := bootstrapapi.JWSSignatureKeyPrefix + id
	var sig string
	err := poll(timeout, func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cm, err := cp.Client.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		sig = cm.Data[key]
		return sig != "", nil
	})
	if err != nil {
		t.Fatalf("cluster-info has no %s after %s: %v", key, timeout, err)
	}
	return sig
}

// CreateTokenErr is CreateToken for callers without a testing.TB (the
// quickstart).
func (cp *ControlPlane) CreateTokenErr(ttl time.Duration) (string, error) {
	return cp.createToken(ttl)
}
