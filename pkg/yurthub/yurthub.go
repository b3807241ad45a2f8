// Package yurthub holds what join and convert share to put yurthub in front
// of a node's kubelet: kubelet's kubeconfig for yurthub's local proxy, the
// edit of kubeadm-flags.env that points kubelet at it, and the waits for
// yurthub's health and for the Node to be Ready through it.
package yurthub

import (
	"context"
	"fmt"
	"io"
	"k8s.io/apimachinery/pkg/util/wait"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/kube"
)

// KubeletKubeconfig points kubelet at yurthub's local proxy. It names
// kubelet's rotated client certificate so that kubelet's certificate manager
// keeps rotating it, but over plain HTTP client-go drops TLS settings and the
// certificate is never sent (yurthub adds its own credentials); for the same
// reason kubelet would see no valid certificate in this kubeconfig and
// bootstrap again unless TLS bootstrap is off, which SetKubeconfigFlag does.
func KubeletKubeconfig() ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["yurthub"] = &clientcmdapi.Cluster{Server: constants.YurthubProxyURL}
	cfg.AuthInfos["default-auth"] = &clientcmdapi.AuthInfo{
		ClientCertificate: constants.KubeletClientCert,
		ClientKey:         constants.KubeletClientCert,
	}
	cfg.Contexts["default-auth@yurthub"] = &clientcmdapi.Context{Cluster: "yurthub", AuthInfo: "default-auth"}
	cfg.CurrentContext = "default-auth@yurthub"
	return clientcmd.Write(*cfg)
}

// Poll calls cond every interval until it is true, returns an error, or ctx
// ends (then it returns ctx's error).
// It is apimachinery's wait.PollUntilContextCancel, first call at once.
func Poll(ctx context.Context, interval time.Duration, cond func(context.Context) (bool, error)) error {
	return wait.PollUntilContextCancel(ctx, interval, true, cond)
}

// get asks url once: its status and the start of its body, or the error
// when nothing answered.
func get(ctx context.Context, hc *http.Client, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return resp.StatusCode, strings.TrimSpace(string(body)), nil
}

// Healthy asks yurthub's healthz once. It returns whether it answered 200
// and what it said (or the connection error).
func Healthy(ctx context.Context, hc *http.Client, url string) (bool, string) {
	code, body, err := get(ctx, hc, url)
	if err != nil {
		return false, err.Error()
	}
	return code == http.StatusOK, fmt.Sprintf("HTTP %d %s", code, body)
}

// Answers reports whether anything answers HTTP at url, whatever the
// status: a yurthub that is still starting or waiting for its certificate
// answers (and writes its directories) without being healthy.
func Answers(ctx context.Context, hc *http.Client, url string) bool {
	_, _, err := get(ctx, hc, url)
	return err == nil
}

// WaitHealthy waits until yurthub's healthz at url answers 200 or ctx ends.
// It returns the last answer, for the error message.
func WaitHealthy(ctx context.Context, hc *http.Client, url string, interval time.Duration) (string, error) {
	last := "no answer yet"
	err := Poll(ctx, interval, func(ctx context.Context) (bool, error) {
		ok, state := Healthy(ctx, hc, url)
		// An answer cut short by the deadline says less than the one before.
		if ctx.Err() == nil || last == "no answer yet" {
			last = state
		}
		return ok, nil
	})
	return last, err
}

// WaitNodeReady waits until Node name is Ready as client sees it. With
// since non-zero, the Ready condition must also have been reported at or
// after since (second precision, as the API stores it): a kubelet that was
// just restarted has then reported through the path client uses. It returns
// the last state seen, for the error message.
func WaitNodeReady(ctx context.Context, client kube.Interface, name string, since time.Time, interval time.Duration) (string, error) {
	last := "not found yet"
	var readySince time.Time // first of the checks in a row that found it Ready
	err := Poll(ctx, interval, func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			last, readySince = err.Error(), time.Time{}
			return false, nil
		}
		ok, state := NodeReady(n, since)
		last = state
		if !ok {
			readySince = time.Time{}
			return false, nil
		}
		// Ready must hold: a kubelet just restarted can report Ready and
		// then, a moment later, NotReady (seen on the multi-node harness:
		// Ready=False 110 ms after a join said Ready). It holds when every
		// check over readyHoldIntervals intervals found it Ready: at the
		// join's 100 ms, 4 checks on a fast link, 2 when each read takes
		// a 300 ms round trip (a 4G link), not 4 of 400 ms.
		now := time.Now()
		if readySince.IsZero() {
			readySince = now
		}
		if held, hold := now.Sub(readySince), readyHoldIntervals*interval; held < hold {
			last = state + fmt.Sprintf(" (held %s of %s)", held.Round(time.Millisecond), hold)
			return false, nil
		}
		return true, nil
	})
	return last, err
}

// readyHoldIntervals is how many poll intervals the checks in a row must
// find the Node Ready for.
const readyHoldIntervals = 3

// readySettle is how long after kubelet's restart an ambiguous Ready (see
// NodeReadyAt) is taken as holding: a restarted kubelet's NotReady comes
// within about a second.
const readySettle = 3 * time.Second

// NodeReady is NodeReadyAt now.
func NodeReady(n *corev1.Node, since time.Time) (bool, string) {
	return NodeReadyAt(n, since, time.Now())
}

// NodeReadyAt reports whether n is Ready as the kubelet running since
// since (zero: any kubelet) reported it, looked at at now, and describes
// its state. Heartbeats have a resolution of a second, and a restarted
// kubelet's first report is often NotReady ("CSINode is not yet
// initialized") for a moment: a Ready heartbeat in the very second of the
// restart may be the old kubelet's. So a Ready counts when it became Ready
// in or after that second, when its heartbeat is from a later second, or,
// still Ready, once readySettle has passed since the restart (kubelet
// reports an unchanged status only every few minutes).
func NodeReadyAt(n *corev1.Node, since, now time.Time) (bool, string) {
	for _, c := range n.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		state := fmt.Sprintf("Ready=%s %s", c.Status, c.Message)
		if c.Status != corev1.ConditionTrue {
			return false, state
		}
		if since.IsZero() {
			return true, state
		}
		sec := since.Truncate(time.Second)
		if c.LastHeartbeatTime.Time.Before(sec) {
			return false, fmt.Sprintf("Ready=True but last reported %s, before kubelet's restart at %s",
				c.LastHeartbeatTime.UTC().Format(time.RFC3339), since.UTC().Format(time.RFC3339))
		}
		if c.LastTransitionTime.Time.Before(sec) && !c.LastHeartbeatTime.Time.After(sec) && now.Before(since.Add(readySettle)) {
			return false, fmt.Sprintf("Ready=True since %s, before kubelet's restart at %s: waiting for the restarted kubelet's own report",
				c.LastTransitionTime.UTC().Format(time.RFC3339), since.UTC().Format(time.RFC3339))
		}
		return true, state
	}
	return false, "no Ready condition yet"
}
