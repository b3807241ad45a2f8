#!/usr/bin/env bash
# Measures what matters on a small edge device: stripped binary size,
# `yurtadm version` start-up time and peak RSS, and a full preflight's wall
# time and peak RSS. With UPSTREAM=<path to OpenYurt's yurtadm>
# (`bash hack/tools.sh yurtadm-upstream` builds v1.7.0's) the same figures are
# taken for it in the same run, and the ratios printed.
#
# Start-up times are medians of RUNS runs, the two binaries interleaved run by
# run, so that load from elsewhere on the machine hits both alike.
# Usage: make bench   (or: UPSTREAM=... RUNS=40 bash hack/bench.sh [path/to/yurtadm])
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-bin/yurtadm}
RUNS=${RUNS:-40}
[ -x "$BIN" ] || make build >/dev/null
command -v /usr/bin/time >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
UP=""
if [ -n "${UPSTREAM:-}" ]; then
  [ -x "$UPSTREAM" ] || { echo "UPSTREAM=$UPSTREAM is not an executable" >&2; exit 2; }
  UP=$UPSTREAM
fi

size_mb() { # stripped size of a copy of $1, in MiB
  local tmp; tmp=$(mktemp)
  cp "$1" "$tmp"; strip "$tmp" 2>/dev/null || true
  awk -v b="$(stat -c %s "$tmp")" 'BEGIN{printf "%.1f", b/1048576}'
  rm -f "$tmp"
}

# peak_rss_mb CMD...: the largest peak RSS (MiB) over 5 runs.
peak_rss_mb() {
  local max=0 kb
  for _ in 1 2 3 4 5; do
    kb=$(/usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1)
    [ "$kb" -gt "$max" ] && max=$kb
  done
  awk -v k="$max" 'BEGIN{printf "%.1f", k/1024}'
}

# Interleaved start-up timings: lines "<name> <microseconds>".
times=$(mktemp)
trap 'rm -f "$times"' EXIT
for _ in $(seq "$RUNS"); do
  for pair in "yurtadm:$BIN" ${UP:+"upstream:$UP"}; do
    name=${pair%%:*} bin=${pair#*:}
    s=$(date +%s%N); "$bin" version >/dev/null 2>&1 || true; e=$(date +%s%N)
    echo "$name $(((e - s) / 1000))" >>"$times"
  done
done
median_ms() { grep "^$1 " "$times" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END{printf "%.1f", a[int((NR+1)/2)]/1000}'; }

echo "# $(date -u +%Y-%m-%d) on $(uname -m), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg); version: median of $RUNS interleaved runs"
y_size=$(size_mb "$BIN") y_ms=$(median_ms yurtadm) y_rss=$(peak_rss_mb "$BIN" version)
printf '%-17s size %6s MB (stripped)  version: %6s ms, peak RSS %5s MB\n' yurtadm "$y_size" "$y_ms" "$y_rss"
if [ -n "$UP" ]; then
  u_size=$(size_mb "$UP") u_ms=$(median_ms upstream) u_rss=$(peak_rss_mb "$UP" version)
  printf '%-17s size %6s MB (stripped)  version: %6s ms, peak RSS %5s MB\n' upstream-yurtadm "$u_size" "$u_ms" "$u_rss"
  awk -v a="$y_size" -v b="$u_size" -v c="$y_ms" -v d="$u_ms" -v e="$y_rss" -v f="$u_rss" \
    'BEGIN{printf "ratio yurtadm/upstream: size %.2f, version time %.2f, peak RSS %.2f\n", a/b, c/d, e/f}'
fi
pf_start=$(date +%s%N)
"$BIN" preflight --ignore-preflight-errors=all >/dev/null 2>&1 || true
pf_end=$(date +%s%N)
awk -v s="$pf_start" -v e="$pf_end" 'BEGIN{printf "yurtadm preflight (all checks, once): %.1f ms\n", (e-s)/1e6}'
printf 'yurtadm preflight peak RSS: %s MB\n' "$(peak_rss_mb "$BIN" preflight --ignore-preflight-errors=all)"
