#!/usr/bin/env bash
# Builds the base root file system of the multi-node harness's nodes
# (test/cluster): Debian 12 (bookworm) by debootstrap from the Debian mirror
# apt uses on this machine, with systemd as PID 1, containerd, runc, the CNI
# plugins and the tools kubeadm's preflight wants (conntrack, iptables,
# ebtables, ethtool, socat, iproute2), plus etcd-server for the external etcd
# of the control-plane node. Nothing else comes in: the Kubernetes binaries,
# the units, the harness's configuration and the images are a second layer
# that test/cluster lays over this one at every bring-up.
#
#   ${YURTADM_NODE_CACHE:-/var/cache/yurtadm-nodes}/<key>/rootfs
#
# <key> hashes this script (the package list and the set-up below), so a
# second run reuses the rootfs and a change builds a new one. Other keys
# unused for 30 days are removed. Concurrent runs wait for each other.
# Usage: hack/node-image.sh   (as root; prints the rootfs directory last)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SUITE=bookworm
PACKAGES=systemd,systemd-sysv,dbus,containerd,runc,containernetworking-plugins,iptables,conntrack,ebtables,ethtool,socat,iproute2,ca-certificates,kmod,procps,iputils-ping,netcat-openbsd,etcd-server,util-linux,mount

log() { echo "[node-image] $*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap)"
if ! command -v debootstrap >/dev/null || ! command -v systemd-nspawn >/dev/null; then
  log "installing debootstrap and systemd-container"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends debootstrap systemd-container >&2
fi

# The mirror apt uses here (deb822 sources or the classic list).
mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=$(awk '$1=="deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

key=$( (cat "$ROOT/hack/node-image.sh"; echo "$mirror") | sha256sum | cut -c1-16)
cache=${YURTADM_NODE_CACHE:-/var/cache/yurtadm-nodes}
dir=$cache/$key
mkdir -p "$dir"
touch "$dir"
exec 9>"$dir/.lock"
flock -n 9 || { log "waiting for another hack/node-image.sh"; flock 9; }
find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -mtime +30 -exec rm -rf {} + 2>/dev/null || true

if [ -f "$dir/.complete" ] && [ -d "$dir/rootfs" ]; then
  log "cached: $dir/rootfs"
  echo "$dir/rootfs"
  exit 0
fi

start=$SECONDS
tmp=$dir/rootfs.tmp
rm -rf "$tmp"
log "debootstrap $SUITE from $mirror into $tmp"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$tmp" "$mirror" >"$dir/debootstrap.log" 2>&1 ||
  { tail -20 "$dir/debootstrap.log" >&2; die "debootstrap failed (log: $dir/debootstrap.log)"; }

# A node boots with no login and no timers; the packages' own daemons that a
# node of ours must not run are off (etcd runs as the harness's unit on the
# control-plane node only).
chroot "$tmp" systemctl mask getty@.service serial-getty@.service console-getty.service >/dev/null 2>&1 || true
for t in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer; do
  chroot "$tmp" systemctl disable "$t" >/dev/null 2>&1 || true
done
chroot "$tmp" systemctl disable etcd.service >/dev/null 2>&1 || true
chroot "$tmp" systemctl enable systemd-networkd.service containerd.service >/dev/null
: >"$tmp/etc/machine-id"
rm -f "$tmp/var/lib/dbus/machine-id"
mkdir -p "$tmp/lib/modules"
rm -rf "$tmp/var/cache/apt/archives/"*.deb "$tmp/var/lib/apt/lists/"*

rm -rf "$dir/rootfs"
mv "$tmp" "$dir/rootfs"
touch "$dir/.complete"
log "built $dir/rootfs in $((SECONDS - start))s ($(du -sm "$dir/rootfs" | cut -f1) MB)"
echo "$dir/rootfs"
