#!/usr/bin/env bash
# The project's test command (`make test`; CI runs it through .ci/run):
#   1. the Debian packages the tests need      hack/install-deps.sh
#   2. the real control-plane binaries         hack/tools.sh (cached outside the repo)
#   3. go vet ./...
#   4. unit tests: go test on every package but test/integration, then each
#      fuzz target for a bounded time
#   5. real-cluster tests: go test -count=1 -v ./test/integration/...
#      (etcd, kube-apiserver and kube-controller-manager on this machine,
#      set up by kubeadm; see test/framework)
#   6. end-to-end scenarios: hack/e2e-multinode.sh (nodes booted by
#      systemd-nspawn with systemd as PID 1, kubeadm init, yurtadm join,
#      reset, doctor, convert and revert, partitions and reboots with the
#      cloud running; see docs/e2e.md). Needs root; YURTADM_SKIP_E2E=1
#      leaves it out.
# It stops at the first failure with a non-zero exit. The output ends with
# go test's own summary of the multi-node scenarios.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { echo "=== [test.sh] $*" >&2; }

step "install dependencies"
bash hack/install-deps.sh

step "build kube-apiserver, kube-controller-manager, kubeadm (hack/tools.sh)"
YURTADM_TOOLS_BIN=$(bash hack/tools.sh kube-apiserver kube-controller-manager kubeadm | tail -n 1)
export YURTADM_TOOLS_BIN
step "YURTADM_TOOLS_BIN=$YURTADM_TOOLS_BIN"

step "go vet ./..."
go vet ./...

step "unit tests"
mapfile -t unit < <(go list ./... | grep -v '/test/integration$')
go test "${unit[@]}"

# The fuzz targets (their corpus is checked in under testdata/fuzz), each
# for a bounded time: YURTADM_FUZZTIME (default 10s).
for target in "./templates FuzzRenderYurthub" "./pkg/cmdutil FuzzReadConfigFile" "./pkg/yurthub FuzzSetKubeconfigFlag" "./pkg/convert/nodestep FuzzDirectClientConfig"; do
  set -- $target
  step "fuzz $2 ($1) for ${YURTADM_FUZZTIME:-10s}"
  go test -run '^$' -fuzz "^$2\$" -fuzztime "${YURTADM_FUZZTIME:-10s}" "$1"
done

step "integration tests against a real control plane"
go test -count=1 -v -timeout 20m ./test/integration/...

if [ "${YURTADM_SKIP_E2E:-}" = 1 ]; then
  step "end-to-end scenarios skipped (YURTADM_SKIP_E2E=1)"
  exit 0
fi
step "multi-node scenarios (hack/e2e-multinode.sh)"
bash hack/e2e-multinode.sh
