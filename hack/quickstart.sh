#!/usr/bin/env bash
# `make quickstart` / `make quickstart-down`.
#
#   hack/quickstart.sh up     install what is missing, build, start a local
#                             control plane (etcd, kube-apiserver,
#                             kube-controller-manager, kube-scheduler,
#                             yurt-manager) and containerd, prepare the cluster
#                             with `yurtctl convert phase control-plane`, then
#                             `yurtadm join` this machine as an edge node and
#                             show the node, yurthub's health and the files.
#   hack/quickstart.sh down   tear all of it down; nothing is left.
#
# Run as root on a disposable Debian machine (it starts containerd and
# kubelet, changes iptables and /proc/sys/net/ipv4/ip_forward). Everything
# of the harness lives in /var/lib/yurtadm-e2e (YURTADM_E2E_DIR) and the
# node's usual paths. See docs/e2e.md.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "=== [quickstart] $*" >&2; }

cmd=${1:-up}
if [ "$(id -u)" -ne 0 ]; then
  echo "quickstart: run as root (it starts containerd and kubelet on this machine)" >&2
  exit 1
fi
work=${YURTADM_E2E_DIR:-/var/lib/yurtadm-e2e}
mkdir -p "$work"
harness=$work/quickstart-harness

case $cmd in
up)
  log "install dependencies (hack/install-deps.sh)"
  bash hack/install-deps.sh
  log "build Kubernetes, crictl, yurthub, yurt-manager (hack/tools.sh; cached after the first run)"
  YURTADM_TOOLS_BIN=$(bash hack/tools.sh | tail -n 1)
  export YURTADM_TOOLS_BIN
  go build -o "$harness" ./test/e2e/cmd/harness
  log "bring up containerd and the control plane; prepare the cluster for edge nodes"
  "$harness" up
  log "yurtadm join this machine"
  if ! "$harness" join; then
    log "the join failed: look at /var/log/systemctl-standin/kubelet.log and $work/cluster/logs; tear down with: make quickstart-down"
    exit 1
  fi
  echo
  "$harness" status
  ;;
down)
  YURTADM_TOOLS_BIN=$(bash hack/tools.sh | tail -n 1)
  export YURTADM_TOOLS_BIN
  if [ ! -x "$harness" ]; then
    go build -o "$harness" ./test/e2e/cmd/harness
  fi
  "$harness" down
  ;;
*)
  echo "usage: hack/quickstart.sh up|down" >&2
  exit 2
  ;;
esac
