#!/usr/bin/env bash
# Measures what matters on a small edge device: stripped binary size,
# `yurtadm version` start-up time and peak RSS, and a full preflight's wall
# time. With UPSTREAM=<path to OpenYurt's yurtadm> (hack/tools.sh yurtadm-upstream
# builds v1.7.0's) the same figures are taken for it in the same run.
# Usage: make bench   (or: bash hack/bench.sh [path/to/yurtadm])
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-bin/yurtadm}
RUNS=${RUNS:-20}
[ -x "$BIN" ] || make build >/dev/null
command -v /usr/bin/time >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }

size_mb() { awk -v b="$(stat -c %s "$1")" 'BEGIN{printf "%.1f", b/1048576}'; }

# mean wall time in ms of RUNS runs of "$@"
wall_ms() {
  local start end
  start=$(date +%s%N)
  for _ in $(seq "$RUNS"); do "$@" >/dev/null 2>&1 || true; done
  end=$(date +%s%N)
  awk -v s="$start" -v e="$end" -v n="$RUNS" 'BEGIN{printf "%.1f", (e-s)/n/1e6}'
}

# max of the peak RSS (MB) over 5 runs of "$@"
peak_rss_mb() {
  local max=0 kb
  for _ in 1 2 3 4 5; do
    kb=$(/usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1)
    [ "$kb" -gt "$max" ] && max=$kb
  done
  awk -v k="$max" 'BEGIN{printf "%.1f", k/1024}'
}

report() { # name binary version-args...
  local name=$1 bin=$2; shift 2
  local tmp; tmp=$(mktemp)
  cp "$bin" "$tmp"; strip "$tmp" 2>/dev/null || true
  printf '%-18s size %6s MB (stripped)  version: %6s ms, peak RSS %5s MB\n' \
    "$name" "$(size_mb "$tmp")" "$(wall_ms "$bin" "$@")" "$(peak_rss_mb "$bin" "$@")"
  rm -f "$tmp"
}

echo "# $(date -u +%Y-%m-%d) on $(uname -m), $(nproc) cores; $RUNS runs each"
report yurtadm "$BIN" version
if [ -n "${UPSTREAM:-}" ] && [ -x "$UPSTREAM" ]; then
  report upstream-yurtadm "$UPSTREAM" version
fi
pf_start=$(date +%s%N)
"$BIN" preflight --ignore-preflight-errors=all >/dev/null 2>&1 || true
pf_end=$(date +%s%N)
awk -v s="$pf_start" -v e="$pf_end" 'BEGIN{printf "yurtadm preflight (all checks, once): %.1f ms\n", (e-s)/1e6}'
printf 'yurtadm preflight peak RSS: %s MB\n' "$(peak_rss_mb "$BIN" preflight --ignore-preflight-errors=all)"
