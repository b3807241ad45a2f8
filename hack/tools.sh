#!/usr/bin/env bash
# Builds the real binaries the tests run, from the pinned Go module in
# test/tools, into a cache outside the repository:
#
#   ${YURTADM_TOOLS_CACHE:-/var/cache/yurtadm-tools}/<key>/bin
#
# <key> hashes test/tools/go.mod, test/tools/go.sum, this script and the
# target platform, so a later run (a later CI run on the same machine) reuses
# what is there and a change of version builds afresh. Each binary is built
# once and moved into place only when complete; concurrent runs wait for each
# other.
#
# Usage: hack/tools.sh [NAME...]      (no NAME: all but yurtadm-upstream)
#   kube-apiserver kube-controller-manager kube-scheduler kubelet kubeadm
#                      Kubernetes, at the k8s.io/kubernetes version in test/tools/go.mod
#   crictl             cri-tools, at the sigs.k8s.io/cri-tools version
#   yurthub yurt-manager
#                      OpenYurt, at the github.com/openyurtio/openyurt version
#   yurtadm-upstream   OpenYurt's own yurtadm (for hack/bench.sh comparisons)
# Progress goes to stderr; the last line on stdout is the bin directory.
# Builds are sequential (this project's machines have 2 cores).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MOD_DIR=$ROOT/test/tools
DEFAULT_NAMES=(kube-apiserver kube-controller-manager kubeadm kubelet kube-scheduler crictl yurthub yurt-manager)

log() { echo "[tools] $*" >&2; }
die() { log "error: $*"; exit 1; }

# package NAME: the Go main package that builds NAME.
package() {
  case $1 in
    kube-apiserver | kube-controller-manager | kube-scheduler | kubelet | kubeadm) echo "k8s.io/kubernetes/cmd/$1" ;;
    crictl) echo sigs.k8s.io/cri-tools/cmd/crictl ;;
    yurthub | yurt-manager) echo "github.com/openyurtio/openyurt/cmd/$1" ;;
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

key=$( (cat "$MOD_DIR/go.mod" "$MOD_DIR/go.sum" "$ROOT/hack/tools.sh"; echo "$GOOS/$GOARCH") | sha256sum | cut -c1-16)
cache=${YURTADM_TOOLS_CACHE:-/var/cache/yurtadm-tools}
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/yurtadm-tools
  mkdir -p "$cache"
fi
dir=$cache/$key
bin=$dir/bin
mkdir -p "$bin"
touch "$dir"

exec 9>"$dir/.lock"
if ! flock -n 9; then
  log "waiting for another hack/tools.sh building into $dir"
  flock 9
fi

# Caches of other keys unused for 30 days are the leftovers of older pins.
find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -mtime +30 -exec rm -rf {} + 2>/dev/null || true

# modinfo MODULE: "version|tag time|commit" of MODULE as test/tools/go.mod pins it.
# The commit is known when the proxy reported the tag's origin; only --version shows it.
modinfo() {
  local v t commit
  IFS='|' read -r v t < <(cd "$MOD_DIR" && go list -mod=readonly -m -f '{{.Version}}|{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' "$1")
  commit=$(cd "$MOD_DIR" && go mod download -json "$1@$v" | sed -n 's/^[[:space:]]*"Hash": "\([0-9a-f]\{40\}\)".*/\1/p' | head -1)
  echo "$v|$t|$commit"
}

# ldflags NAME: -s -w plus the version variables NAME reports.
ldflags() {
  local v t commit flags="-s -w"
  IFS='|' read -r v t commit <<<"$(modinfo "$(module "$1")")"
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
  IFS='|' read -r v _ <<<"$(modinfo "$(module "$1")")"
  case $1 in
    kubeadm) out=$("$2" version -o short) ;;
    kube-* | kubelet) out=$("$2" --version) ;;
    *) return 0 ;;
  esac
  [[ $out == *"$v"* ]] || die "$1 reports '$out', want $v"
}

log "cache: $dir"
for n in "${names[@]}"; do
  out=$bin/$n
  if [ -x "$out" ]; then
    log "$n: cached"
    continue
  fi
  log "$n: building $(package "$n")"
  start=$SECONDS
  tmp=$out.tmp.$$
  flags=$(ldflags "$n")
  if ! (cd "$MOD_DIR" && go build -mod=readonly -buildvcs=false -trimpath -ldflags "$flags" -o "$tmp" "$(package "$n")"); then
    rm -f "$tmp"
    die "$n: build failed"
  fi
  check "$n" "$tmp"
  mv -f "$tmp" "$out"
  took=$((SECONDS - start))
  echo "$n $took" >>"$dir/build-times"
  log "$n: built in ${took}s ($(du -m "$out" | cut -f1) MB)"
done

echo "$bin"
