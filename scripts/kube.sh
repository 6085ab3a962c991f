#!/usr/bin/env bash
# Installs the real Kubernetes API server that tests (and later the testbed) run on loopback,
# and prints the directory to put first on PATH. Run as root.
#
#   etcd, openssl   Debian's etcd-server and openssl (apt-get, when missing).
#   kube-apiserver  built from the Go module proxy: k8s.io/kubernetes $WEIR_KUBE_VERSION (default
#   kubectl         v1.37.2) with its staging modules (k8s.io/api, apiserver, client-go, ...)
#                   replaced by their published v0.X.Y versions. Debian's kubernetes-client
#                   (1.20) is too old for `kubectl patch --subresource`.
#
# Built once into /var/cache/weir/kube/<version>/bin (outside the work tree; the Go module and
# build caches beside it in /var/cache/weir/kube/go), so later runs and CI only check the cache.
#
# Usage: PATH="$(bash scripts/kube.sh)$PATH"   (the printed directory ends with ':')
set -euo pipefail
version=${WEIR_KUBE_VERSION:-v1.37.2}
root=${WEIR_CACHE:-/var/cache/weir}/kube
bin=$root/$version/bin
log() { echo "kube.sh: $*" >&2; }

# Debian packages, each named by a program it provides: etcd, and openssl for the cluster's
# certificates (crates/testbed/src/kube.rs).
ensure_packages() {
  local missing=() pair
  for pair in etcd:etcd-server openssl:openssl; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
  done
  ((${#missing[@]})) || return 0
  # A fresh machine's package lists may be missing or predate a package: update only then.
  apt-cache show "${missing[@]}" >/dev/null 2>&1 || apt-get update -qq >&2
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The scratch module: k8s.io/kubernetes's go.mod maps every staging module to ./staging/src/...
# at v0.0.0, and replace lines in a dependency are ignored, so this module repeats each of them
# with the published version (v1.37.2 -> v0.37.2).
write_module() {
  local work=$1 gomod staging
  gomod=$(go mod download -json "k8s.io/kubernetes@$version" \
    | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
  [[ -f $gomod ]] || { log "k8s.io/kubernetes@$version: no go.mod from the module proxy"; exit 1; }
  staging=v0.${version#v1.}
  {
    echo "module weir.local/kube-build"
    awk '$1 == "go" { print; exit }' "$gomod"
    echo "require k8s.io/kubernetes $version"
    awk -v v="$staging" '$2 == "=>" && $3 ~ /^\.\/staging\// { print "replace " $1 " => " $1 " " v }' "$gomod"
  } > "$work/go.mod"
  log "$(grep -c '^replace' "$work/go.mod") staging modules replaced by $staging"
}

# This machine's Go, unless the Kubernetes version needs a newer one: then the one newer
# toolchain the module proxy serves here (it downloads it once, about 76 MB).
use_toolchain() {
  local wanted=$1 have
  have=$(go env GOVERSION | sed 's/^go//')
  if [[ $(printf '%s\n%s\n' "$wanted" "$have" | sort -V | tail -1) != "$have" ]]; then
    export GOTOOLCHAIN=go1.27.3
    log "k8s.io/kubernetes $version needs go $wanted: using GOTOOLCHAIN=$GOTOOLCHAIN"
  fi
}

# What `kube-apiserver --version` and /version report; without these they say v0.0.0-master.
# buildDate is the release's time from the proxy, so two builds of a version are alike.
ldflags() {
  local info date minor flags=(-s -w) pkg key_val key val
  info=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^\t"Info": "\(.*\)",$/\1/p')
  date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info")
  minor=$(cut -d. -f2 <<<"$version")
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    for key_val in "gitVersion=$version" gitMajor=1 "gitMinor=$minor" gitTreeState=clean "buildDate=$date"; do
      key=${key_val%%=*} val=${key_val#*=}
      flags+=(-X "$pkg.$key=$val")
    done
  done
  echo "${flags[*]}"
}

build_kube() {
  local work=$root/$version/build start prog
  rm -rf "$work" && mkdir -p "$work" "$root/go"
  # Static binaries as Kubernetes releases them; the caches are kept for the next version.
  export GOMODCACHE=$root/go/mod GOCACHE=$root/go/cache GOFLAGS=-trimpath CGO_ENABLED=0
  export GOTOOLCHAIN=local
  cd "$work"
  write_module "$work"
  use_toolchain "$(awk '$1 == "go" { print $2 }' go.mod)"
  start=$SECONDS
  nice -n 10 go get "k8s.io/kubernetes/cmd/kube-apiserver@$version" "k8s.io/kubernetes/cmd/kubectl@$version" >&2
  log "modules resolved in $((SECONDS - start)) s"
  mkdir -p "$work/out"
  for prog in kube-apiserver kubectl; do
    start=$SECONDS
    nice -n 10 go build -ldflags "$(ldflags)" -o "$work/out/$prog" "k8s.io/kubernetes/cmd/$prog"
    log "built $prog in $((SECONDS - start)) s, $(du -h "$work/out/$prog" | cut -f1)"
  done
  # Into place only when both are built, so an interrupted build is redone, not half-used.
  rm -rf "$bin" && mv "$work/out" "$bin"
  rm -rf "$work"
}

ensure_packages
if [[ ! -x $bin/kube-apiserver || ! -x $bin/kubectl ]]; then
  command -v go >/dev/null || { log "Go is required to build kube-apiserver and kubectl"; exit 1; }
  log "building kube-apiserver and kubectl $version (the first time: many minutes)"
  (build_kube)
fi
log "$("$bin/kube-apiserver" --version), etcd $(etcd --version | awk '/etcd Version/ { print $3 }')"
echo "$bin:"
