#!/usr/bin/env bash
# Prints the directory to put first on PATH for `promtool` (empty when one is on PATH already):
# Debian's `prometheus` package is downloaded (not installed: it brings a web UI and a daemon)
# and only its promtool is unpacked into a cache outside the work tree. Run as root.
#
# Usage: PATH="$(bash scripts/promtool.sh)$PATH"   (the printed directory ends with ':')
set -euo pipefail
command -v promtool >/dev/null && exit 0
cache=${WEIR_CACHE:-/var/cache/weir}/promtool
if [[ -x $cache/usr/bin/promtool ]]; then
  echo "$cache/usr/bin:"
  exit 0
fi
mkdir -p "$cache/deb"
apt-cache show prometheus >/dev/null 2>&1 || apt-get update -qq >&2
(cd "$cache/deb" && apt-get download -qq prometheus >&2 2>/dev/null)
dpkg-deb --fsys-tarfile "$cache"/deb/prometheus_*.deb | tar -x -C "$cache" ./usr/bin/promtool
rm -rf "$cache/deb"
echo "$cache/usr/bin:"
