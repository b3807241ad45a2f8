// Command coredns is CoreDNS v1.12.1 with the plugins kubeadm's Corefile
// uses (errors, health, ready, kubernetes, prometheus, forward, cache, loop,
// reload, loadbalance) and log, and no others: the cloud-DNS plugins of the
// full build bring in the AWS, Azure and Google SDKs, which the harness
// does not need. hack/tools.sh builds it; the harness wraps it into the
// image kubeadm's Deployment runs (/coredns).
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

func main() { coremain.Run() }
