#!/usr/bin/env bash
# The end-to-end scenarios (`make e2e`): a real cluster on this machine and
# `yurtadm join` / reset / rejoin / bad input / cloud node / autonomy /
# join time against `kubeadm join` (test/e2e, docs/e2e.md).
#   1. the Debian packages                        hack/install-deps.sh
#   2. Kubernetes, crictl, yurthub, yurt-manager  hack/tools.sh (cached)
#   3. go test ./test/e2e with YURTADM_E2E=1      (brings the machine up,
#      runs the scenarios, tears everything down, also after a failure)
# Run as root on a disposable machine: it starts containerd and kubelet and
# changes iptables. Extra arguments go to `go test` (e.g. -run TestJoin).
# YURTADM_E2E_MEASURE_OUT=FILE writes the join-time table there.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { echo "=== [e2e.sh] $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  echo "hack/e2e.sh: run as root (the scenarios start containerd and kubelet on this machine)" >&2
  exit 1
fi

step "install dependencies"
bash hack/install-deps.sh

step "build the tools (hack/tools.sh)"
YURTADM_TOOLS_BIN=$(bash hack/tools.sh | tail -n 1)
export YURTADM_TOOLS_BIN YURTADM_E2E=1
step "YURTADM_TOOLS_BIN=$YURTADM_TOOLS_BIN"

step "end-to-end scenarios"
go test -count=1 -v -timeout 45m ./test/e2e/ "$@"
