#!/usr/bin/env bash
# The multi-node end-to-end scenarios (test/e2e/multinode) on the harness
# of test/cluster: nodes booted by systemd-nspawn with systemd as PID 1, a
# control plane from kubeadm init, faults with the cloud still running.
#   1. the Debian packages                hack/install-deps.sh
#   2. the node image's base              hack/node-image.sh (cached)
#   3. the binaries                       hack/tools.sh (cached)
#   4. go test ./test/e2e/multinode with YURTADM_E2E=1 (brings the cluster
#      up, runs the scenarios, takes it down, checks nothing is left)
# Run as root on a disposable machine. Extra arguments go to `go test`.
# YURTADM_E2E_MEASURE_OUT=FILE appends the figures there.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { echo "=== [e2e-multinode.sh] $*" >&2; }
[ "$(id -u)" -eq 0 ] || { echo "hack/e2e-multinode.sh: run as root" >&2; exit 1; }

step "install dependencies"
bash hack/install-deps.sh
step "node image (hack/node-image.sh)"
YURTADM_NODE_ROOTFS=$(bash hack/node-image.sh | tail -n 1)
step "tools (hack/tools.sh)"
YURTADM_TOOLS_BIN=$(bash hack/tools.sh | tail -n 1)
export YURTADM_NODE_ROOTFS YURTADM_TOOLS_BIN YURTADM_E2E=1
step "multi-node scenarios"
# The two packages (the edge cluster's scenarios, and convert's on a plain
# kubeadm cluster) run at once, each on its own cluster: most of their time
# is waiting on timeouts, grace periods and roll-outs, not the 2 cores.
# YURTADM_E2E_SERIAL=1 runs them one after the other.
par=2
[ "${YURTADM_E2E_SERIAL:-}" = 1 ] && par=1
go test -p "$par" -count=1 -v -timeout 40m ./test/e2e/multinode/... "$@"
