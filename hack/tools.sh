#!/usr/bin/env bash
# Builds the real binaries the tests run, from the pinned Go modules in
# test/tools (and test/tools/coredns), into a cache outside the repository:
#
#   ${YURTADM_TOOLS_CACHE:-/var/cache/yurtadm-tools}/<key>/bin/NAME
#
# <key> hashes the go.mod and go.sum of NAME's module, RECIPE below and the
# target platform, so a later run (a later CI run on the same machine) reuses
# what is there and a change of version builds afresh; bump RECIPE when a
# change here changes what a build produces. The bin directory printed last
# holds a link to every binary asked for (view-<hash>/bin). Each binary is
# built once and moved into place only when complete; concurrent runs wait
# for each other.
#
# Usage: hack/tools.sh [NAME...]      (no NAME: all but yurtadm-upstream)
#   kube-apiserver kube-controller-manager kube-scheduler kubelet kubeadm
#                      Kubernetes, at the k8s.io/kubernetes version in test/tools/go.mod
#   kube-proxy         for the multi-node harness's kube-proxy DaemonSet
#   crictl             cri-tools, at the sigs.k8s.io/cri-tools version
#   coredns            CoreDNS with kubeadm's Corefile plugins (test/tools/coredns)
#   helm               the Helm CLI (test/tools/helm): convert installs OpenYurt's charts with it
#   yurthub yurt-manager yurt-node-servant
#                      OpenYurt, at the github.com/openyurtio/openyurt version
#                      (node-servant runs the YurtStaticSets' AdvancedRollingUpdate workers)
#   yurtadm-upstream   OpenYurt's own yurtadm (for hack/bench.sh comparisons)
# Progress goes to stderr; the last line on stdout is the bin directory.
# Builds are sequential (this project's machines have 2 cores).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MOD_DIR=$ROOT/test/tools
DEFAULT_NAMES=(kube-apiserver kube-controller-manager kubeadm kubelet kube-scheduler kube-proxy crictl yurthub yurt-manager yurt-node-servant coredns helm)
RECIPE=1

log() { echo "[tools] $*" >&2; }
die() { log "error: $*"; exit 1; }

# package NAME: the Go main package that builds NAME.
package() {
  case $1 in
    kube-apiserver | kube-controller-manager | kube-scheduler | kube-proxy | kubelet | kubeadm) echo "k8s.io/kubernetes/cmd/$1" ;;
    coredns) echo github.com/yurtadm/yurtadm/test/tools/coredns ;;
    helm) echo helm.sh/helm/v3/cmd/helm ;;
    crictl) echo sigs.k8s.io/cri-tools/cmd/crictl ;;
    yurthub | yurt-manager | yurt-node-servant) echo "github.com/openyurtio/openyurt/cmd/$1" ;;
    yurtadm-upstream) echo github.com/openyurtio/openyurt/cmd/yurtadm ;;
    *) return 1 ;;
  esac
}

# module NAME: the module whose version NAME reports.
module() {
  case $1 in
    kube-*| kubelet | kubeadm) echo k8s.io/kubernetes ;;
    crictl) echo sigs.k8s.io/cri-tools ;;
    yurt*) echo github.com/openyurtio/openyurt ;;
    coredns) echo github.com/coredns/coredns ;;
    helm) echo helm.sh/helm/v3 ;;
  esac
}

# moddir NAME: the tools module NAME is built from.
moddir() {
  case $1 in
    coredns) echo "$MOD_DIR/coredns" ;;
    helm) echo "$MOD_DIR/helm" ;;
    *) echo "$MOD_DIR" ;;
  esac
}

names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${DEFAULT_NAMES[@]}")
for n in "${names[@]}"; do
  package "$n" >/dev/null || die "unknown binary '$n' (known: ${DEFAULT_NAMES[*]} yurtadm-upstream)"
done

command -v go >/dev/null || die "go not found in PATH"
export GOOS=linux GOARCH=${GOARCH:-$(go env GOARCH)}
# cri-tools' checksum is not in the checksum database as seen from here; its
# go.sum line (test/tools/go.sum) is what verifies it.
export GONOSUMDB=${GONOSUMDB:+$GONOSUMDB,}sigs.k8s.io/cri-tools
export CGO_ENABLED=0

cache=${YURTADM_TOOLS_CACHE:-/var/cache/yurtadm-tools}
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/yurtadm-tools
  mkdir -p "$cache"
fi

# key NAME: the cache key of NAME's module.
key() {
  local d
  d=$(moddir "$1")
  (cat "$d/go.mod" "$d/go.sum"; echo "recipe $RECIPE $GOOS/$GOARCH") | sha256sum | cut -c1-16
}

exec 9>"$cache/.lock"
if ! flock -n 9; then
  log "waiting for another hack/tools.sh building into $cache"
  flock 9
fi

# Caches unused for 30 days are the leftovers of older pins.
find "$cache" -mindepth 1 -maxdepth 1 -type d -mtime +30 -exec rm -rf {} + 2>/dev/null || true

# modinfo MODULE DIR: "version|tag time|commit" of MODULE as DIR/go.mod pins it.
# The commit is known when the proxy reported the tag's origin; only --version shows it.
modinfo() {
  local v t commit
  IFS='|' read -r v t < <(cd "$2" && go list -mod=readonly -m -f '{{.Version}}|{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' "$1")
  commit=$(cd "$2" && go mod download -json "$1@$v" | sed -n 's/^[[:space:]]*"Hash": "\([0-9a-f]\{40\}\)".*/\1/p' | head -1)
  echo "$v|$t|$commit"
}

# ldflags NAME: -s -w plus the version variables NAME reports.
ldflags() {
  local v t commit flags="-s -w"
  IFS='|' read -r v t commit <<<"$(modinfo "$(module "$1")" "$(moddir "$1")")"
  case $1 in
    kube-* | kubelet | kubeadm)
      local major=${v#v} minor
      minor=${major#*.} minor=${minor%%.*} major=${major%%.*}
      for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        flags+=" -X $p.gitVersion=$v -X $p.gitMajor=$major -X $p.gitMinor=$minor"
        flags+=" -X $p.gitTreeState=clean -X $p.buildDate=$t"
        [ -z "$commit" ] || flags+=" -X $p.gitCommit=$commit"
      done
      ;;
    crictl)
      flags+=" -X sigs.k8s.io/cri-tools/pkg/version.Version=$v"
      ;;
    coredns)
      flags+=" -X github.com/coredns/coredns/coremain.GitCommit=${commit:-unknown}"
      ;;
    helm)
      flags+=" -X helm.sh/helm/v3/internal/version.version=$v -X helm.sh/helm/v3/internal/version.gitCommit=${commit:-unknown} -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
      ;;
    yurt*)
      local p=github.com/openyurtio/openyurt/pkg/projectinfo
      flags+=" -X $p.gitVersion=$v -X $p.buildDate=$t -X $p.gitCommit=${commit:-unknown}"
      ;;
  esac
  echo "$flags"
}

# check NAME PATH: the built binary runs and reports the pinned version.
check() {
  local v out
  IFS='|' read -r v _ <<<"$(modinfo "$(module "$1")" "$(moddir "$1")")"
  case $1 in
    kubeadm) out=$("$2" version -o short) ;;
    kube-* | kubelet) out=$("$2" --version) ;;
    helm) out=$("$2" version --short) ;;
    *) return 0 ;;
  esac
  [[ $out == *"$v"* ]] || die "$1 reports '$out', want $v"
}

view=$cache/view-$(for n in "${names[@]}"; do echo "$n $(key "$n")"; done | sha256sum | cut -c1-16)/bin
mkdir -p "$view"
for n in "${names[@]}"; do
  k=$(key "$n")
  dir=$cache/$k
  mkdir -p "$dir/bin"
  touch "$dir"
  out=$dir/bin/$n
  if [ -x "$out" ]; then
    log "$n: cached ($dir)"
  else
    log "$n: building $(package "$n")"
    start=$SECONDS
    tmp=$out.tmp.$$
    flags=$(ldflags "$n")
    if ! (cd "$(moddir "$n")" && go build -mod=readonly -buildvcs=false -trimpath -ldflags "$flags" -o "$tmp" "$(package "$n")"); then
      rm -f "$tmp"
      die "$n: build failed"
    fi
    check "$n" "$tmp"
    mv -f "$tmp" "$out"
    took=$((SECONDS - start))
    echo "$n $took" >>"$dir/build-times"
    log "$n: built in ${took}s ($(du -m "$out" | cut -f1) MB)"
  fi
  ln -sfn "$out" "$view/$n"
done
touch "$(dirname "$view")"

echo "$view"
