#!/usr/bin/env bash
# `make quickstart` / `make quickstart-down`.
#
#   hack/quickstart.sh up     install what is missing, build, and bring up a
#                             local edge cluster (test/cluster): a control-plane
#                             node from `kubeadm init`, two edge nodes in the
#                             pools hangzhou and shanghai and a cloud node, each
#                             a Debian 12 node booted with systemd as PID 1 and
#                             joined by `yurtadm join` run inside it; a web
#                             workload on every worker; then a summary.
#   hack/quickstart.sh down   take all of it down; nothing is left.
#
# Run as root on a disposable Debian 12 machine (it creates a bridge, veths,
# cgroups and iptables rules, all removed again by down). State lives in
# /var/lib/yurtadm-cluster (YURTADM_CLUSTER_DIR); the node image and the
# binaries are cached in /var/cache/yurtadm-nodes and /var/cache/yurtadm-tools.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "=== [quickstart] $*" >&2; }
if [ "$(id -u)" -ne 0 ]; then
  echo "quickstart: run as root (it boots nodes with systemd-nspawn)" >&2
  exit 1
fi

case ${1:-up} in
up)
  start=$SECONDS
  log "bring the cluster up (hack/cluster.sh up; the first run builds the node image and the binaries)"
  if ! bash hack/cluster.sh up; then
    log "bring-up failed: logs in /var/lib/yurtadm-cluster/nodes/*/log; tear down with: make quickstart-down"
    exit 1
  fi
  log "a workload on every worker"
  bash hack/cluster.sh workloads
  echo
  bash hack/cluster.sh status
  log "ready in $((SECONDS - start))s"
  ;;
down)
  bash hack/cluster.sh down
  ;;
*)
  echo "usage: hack/quickstart.sh up|down" >&2
  exit 2
  ;;
esac
