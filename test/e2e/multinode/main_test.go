// Package multinode holds the end-to-end scenarios that need a real
// multi-node cluster: nodes that boot systemd, a control plane from
// `kubeadm init`, and faults where the cloud keeps running (test/cluster).
// They run under hack/e2e-multinode.sh (YURTADM_E2E=1, as root); without
// it every test skips and says why.
package multinode

import (
	"os"
	"testing"

	"github.com/yurtadm/yurtadm/test/cluster"
	"github.com/yurtadm/yurtadm/test/cluster/clustertest"
)

// Nodes of the scenarios' cluster.
const (
	cpName     = "cp"
	edge1Name  = "edge1"
	edge2Name  = "edge2"
	cloudName  = "cloud1"
	workerName = "worker1"
)

// description is the cluster: a control plane, two edge nodes in two
// pools and a cloud node joined by yurtadm join, a plain worker joined by
// kubeadm join; node lifecycle shortened (Unknown 20 s after the last
// heartbeat, eviction 30 s later) so that partitions take a minute, not
// six.
func description() *cluster.Config {
	cfg := cluster.Default()
	cfg.Nodes = append(cfg.Nodes, cluster.NodeSpec{Name: workerName, Role: cluster.RoleWorker})
	cfg.NodeMonitorGracePeriod, cfg.TolerationSeconds = "20s", 30
	return cfg
}

func TestMain(m *testing.M) { os.Exit(clustertest.Main(m, description())) }

// The package's short names for clustertest's helpers.
var (
	need      = clustertest.Need
	node      = clustertest.Node
	timeout   = clustertest.Timeout
	measure   = clustertest.Measure
	deployWeb = clustertest.DeployWeb
	webPods   = clustertest.WebPods
)
