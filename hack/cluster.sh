#!/usr/bin/env bash
# The multi-node harness (test/cluster) from the command line:
#   hack/cluster.sh up [--config FILE]   install what is missing, build, bring a cluster up
#   hack/cluster.sh down [--name NAME]   take it down (nothing left); NAME: a cluster of
#                                        another name, e.g. kadm, the e2e convert package's
#   hack/cluster.sh status|exec|partition|heal|poweroff|boot ...   see test/cluster/cmd/ycluster
# Run as root on a disposable machine. The node image's base comes from
# hack/node-image.sh, the binaries from hack/tools.sh (both cached).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "=== [cluster] $*" >&2; }
[ "$(id -u)" -eq 0 ] || { echo "hack/cluster.sh: run as root" >&2; exit 1; }

work=${YURTADM_NODE_CACHE:-/var/cache/yurtadm-nodes}/build
mkdir -p "$work/bin"
cmd=${1:-}
case $cmd in
up)
  shift
  bash hack/install-deps.sh
  YURTADM_NODE_ROOTFS=$(bash hack/node-image.sh | tail -n 1)
  YURTADM_TOOLS_BIN=$(bash hack/tools.sh | tail -n 1)
  export YURTADM_NODE_ROOTFS YURTADM_TOOLS_BIN
  log "build yurtadm and ycluster"
  make -s build BIN="$work/bin" >&2
  go build -o "$work/bin/ycluster" ./test/cluster/cmd/ycluster
  exec "$work/bin/ycluster" up --yurtadm "$work/bin/yurtadm" "$@"
  ;;
"" | -h | --help)
  sed -n 2,8p "$0" | sed 's/^# \{0,1\}//'
  exit 2
  ;;
*)
  [ -x "$work/bin/ycluster" ] || go build -o "$work/bin/ycluster" ./test/cluster/cmd/ycluster
  exec "$work/bin/ycluster" "$@"
  ;;
esac
