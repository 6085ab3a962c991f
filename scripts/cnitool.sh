#!/usr/bin/env bash
# Installs the reference CNI runtime tool `cnitool` (github.com/containernetworking/cni/cnitool,
# the libcni that container runtimes embed) that crates/cni's tests drive weir-cni with, and
# prints the directory to put first on PATH.
#
# Built once from the Go module proxy into /var/cache/weir/cnitool/<version>/bin (the Go module
# and build caches beside it in /var/cache/weir/cnitool/go), so later runs only check the cache.
#
# Usage: PATH="$(bash scripts/cnitool.sh)$PATH"   (the printed directory ends with ':')
set -euo pipefail
version=${WEIR_CNITOOL_VERSION:-v1.3.0}
root=${WEIR_CACHE:-/var/cache/weir}/cnitool
bin=$root/$version/bin
log() { echo "cnitool.sh: $*" >&2; }

if [[ ! -x $bin/cnitool ]]; then
  command -v go >/dev/null || { log "Go is required to build cnitool"; exit 1; }
  log "building cnitool $version"
  (
    export GOMODCACHE=$root/go/mod GOCACHE=$root/go/cache GOFLAGS=-trimpath CGO_ENABLED=0 GOTOOLCHAIN=local
    mkdir -p "$root/$version"
    out=$root/$version/build
    rm -rf "$out"
    GOBIN=$out nice -n 10 go install "github.com/containernetworking/cni/cnitool@$version" >&2
    # Into place only when built, so an interrupted build is redone, not half-used.
    rm -rf "$bin" && mv "$out" "$bin"
  )
fi
echo "$bin:"
