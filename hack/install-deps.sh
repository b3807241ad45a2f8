#!/usr/bin/env bash
# Installs the Debian packages the tests need, and nothing else:
#   etcd-server                  the real etcd under the integration tests' kube-apiserver
#   containerd runc conntrack iptables socat ebtables containernetworking-plugins iproute2
#                                the node harness (kubelet's runtime, networking and kubeadm's checks)
#   time                         GNU time: the e2e measures yurtadm join's peak RSS with it
#   procps                       sysctl: the multi-node harness sets and restores host sysctls
# kmod is deliberately absent: this machine loads no kernel modules, what is
# needed (overlay, bridge, veth, nf_tables) is built into the kernel.
#
# Idempotent: when every package is installed it touches nothing (no
# apt-get update, no network). It never starts a service: a policy-rc.d that
# denies every start is in place while apt runs (unless the host has its own).
# Usage: bash hack/install-deps.sh     (as root)
set -euo pipefail

PACKAGES=(
  etcd-server
  containerd
  runc
  conntrack
  iptables
  socat
  ebtables
  containernetworking-plugins
  iproute2
  time
  procps
)

log() { echo "[install-deps] $*" >&2; }

installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  log "all present: ${PACKAGES[*]}"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  log "missing ${missing[*]} and not root: install them with apt-get as root"
  exit 1
fi

# Deny service starts from maintainer scripts while apt runs.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi

export DEBIAN_FRONTEND=noninteractive
log "missing: ${missing[*]}"
log "apt-get update"
apt-get update -qq >&2
log "apt-get install ${missing[*]}"
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2

for p in "${missing[@]}"; do
  installed "$p" || { log "$p still not installed"; exit 1; }
done
log "installed: ${missing[*]}"
