#!/usr/bin/env bash
# Chooses the Open vSwitch that tests, the demo and the benchmarks run on, and prints the
# directory to put first on PATH (empty for the system's OVS). Run as root.
#
#   WEIR_OVS=fixed  (default) Debian 13's OVS 3.5, unpacked into a cache outside the work tree
#                   and run with its own libc through wrappers. Debian 12's OVS 3.1.0 lacks the
#                   upstream fix "dpif-netdev: Fix dpif_netdev_flow_put" (OVS 3.1.3), which lets
#                   the userspace datapath keep stale cached flows after a policy change.
#   WEIR_OVS=system the OVS on PATH (Debian 12's openvswitch-switch), e.g. to reproduce the next
#                   OVS regression: `WEIR_OVS=system bash scripts/test.sh`.
#
# Usage: PATH="$(bash scripts/ovs.sh)$PATH"   (the printed directory ends with ':')
set -euo pipefail
mode=${WEIR_OVS:-fixed}
case "$mode" in
  system) exit 0 ;;
  fixed) ;;
  *) echo "WEIR_OVS must be 'fixed' or 'system', not '$mode'" >&2; exit 2 ;;
esac

suite=trixie
cache=${WEIR_CACHE:-/var/cache/weir}/ovs-$suite
bin=$cache/bin
if [[ -x $bin/ovs-vswitchd && -f $cache/version ]]; then
  echo "$bin:"
  exit 0
fi

# apt with its own state: Debian 13's package lists, an empty dpkg status (so every library
# comes from trixie, matching its libc) and its own archive cache. Nothing is installed on
# the system.
apt_dir=$cache/apt
rm -rf "$cache"
mkdir -p "$apt_dir"/{lists/partial,archives/partial,preferences.d} "$cache/root"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" \
  > "$apt_dir/sources.list"
: > "$apt_dir/status"
apt_opts=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o Dir::Etc::Preferences=/dev/null -o "Dir::Etc::PreferencesParts=$apt_dir/preferences.d"
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::State::status=$apt_dir/status"
  -o "Dir::Cache=$apt_dir" -o "Dir::Cache::archives=$apt_dir/archives"
  -o APT::Architecture=amd64 -o APT::Install-Recommends=false
)
apt-get "${apt_opts[@]}" update -qq >&2
apt-get "${apt_opts[@]}" install --download-only -y -qq openvswitch-switch openvswitch-common >&2
# The programs and the shared libraries they load; the rest (kmod, procps, systemd) is not run.
for deb in "$apt_dir"/archives/{openvswitch-,lib,zlib}*.deb; do
  dpkg-deb -x "$deb" "$cache/root"
done
root=$cache/root
loader=$root/usr/lib64/ld-linux-x86-64.so.2
libs=$root/usr/lib/x86_64-linux-gnu
mkdir -p "$bin"
for prog in usr/lib/openvswitch-switch/ovs-vswitchd usr/sbin/ovsdb-server \
  usr/bin/{ovsdb-tool,ovsdb-client,ovs-vsctl,ovs-appctl,ovs-ofctl,ovs-dpctl}; do
  name=$(basename "$prog")
  cat > "$bin/$name" <<EOF
#!/bin/sh
# Debian $suite's $name, run by its own loader and libraries (written by scripts/ovs.sh).
: "\${OVS_PKGDATADIR:=$root/usr/share/openvswitch}"
export OVS_PKGDATADIR
exec "$loader" --library-path "$libs" --argv0 "$name" "$root/$prog" "\$@"
EOF
  chmod +x "$bin/$name"
done
"$bin/ovs-vswitchd" --version | head -1 > "$cache/version"
echo "fixed OVS: $(cat "$cache/version") in $cache" >&2
echo "$bin:"
