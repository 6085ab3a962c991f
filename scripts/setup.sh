#!/usr/bin/env bash
# Installs what weir's tests and testbed need, from Debian's packages, when missing. Run as root.
set -euo pipefail
packages=(openvswitch-switch iproute2 ethtool tcpdump iputils-ping netcat-openbsd procps curl ruby shellcheck nftables
  dnsmasq-base isc-dhcp-client  # the ExternalNode tests: a DHCP server and client
  iperf3 iptables ipset)        # the benches (datapath, node-policy)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
command -v cargo >/dev/null || { echo "cargo (Rust toolchain) is required" >&2; exit 1; }
