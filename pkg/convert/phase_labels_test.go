package convert

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/yurtadm/yurtadm/pkg/kube/kubetest"
)

// yurt-manager's Node webhook, before its cache has the new pool, denies
// the label; patchNode tries again until it takes, and returns any other
// refusal at once.
func TestPatchNodeWaitsForYurtManagerToSeeThePool(t *testing.T) {
	poolRetry, poolWait = time.Millisecond, time.Second
	defer func() { poolRetry, poolWait = time.Second, time.Minute }()
	notSeen := errors.New(`admission webhook "mutate.core.v1.node.openyurt.io" denied the request: NodePool.apps.openyurt.io "edge" not found`)
	body := []byte(`{"metadata":{"labels":{"apps.openyurt.io/nodepool":"edge"}}}`)
	for _, c := range []struct {
		name    string
		denials int
		deny    error
		want    string // "" for the label set
		calls   int
	}{
		{"seen at the third try", 2, notSeen, "", 3},
		{"never seen", 1 << 30, notSeen, "not found", 0},
		{"another refusal", 1 << 30, errors.New(`admission webhook denied the request: node pool can not be changed`), "can not be changed", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			cs := fake.NewSimpleClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "edge-1"}})
			calls := 0
			cs.PrependReactor("patch", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
				calls++
				if calls <= c.denials {
					return true, nil, c.deny
				}
				return false, nil, nil
			})
			err := patchNode(context.Background(), kubetest.Wrap(cs), "edge-1", body)
			if c.want != "" {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("err %v, want one saying %q", err, c.want)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if c.calls > 0 && calls != c.calls {
				t.Errorf("%d patches, want %d", calls, c.calls)
			}
			if c.calls == 0 && calls < 3 {
				t.Errorf("%d patches: not retried", calls)
			}
			n, _ := cs.CoreV1().Nodes().Get(context.Background(), "edge-1", metav1.GetOptions{})
			if got := n.Labels["apps.openyurt.io/nodepool"]; (got == "edge") != (c.want == "") {
				t.Errorf("label %q after %v", got, err)
			}
		})
	}
}
