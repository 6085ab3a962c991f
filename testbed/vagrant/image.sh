#!/usr/bin/env bash
# Builds the weir image from deploy/Dockerfile with buildah (from Debian) straight into
# containerd's k8s.io namespace, where the kubelet finds it: the DaemonSet's imagePullPolicy is
# IfNotPresent, so no registry is needed.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends buildah
buildah bud --quiet -f /vagrant/deploy/Dockerfile -t weir:0.1.0 /vagrant
archive=$(mktemp --suffix=.tar)
trap 'rm -f "$archive"' EXIT
rm -f "$archive"
buildah push --quiet weir:0.1.0 "oci-archive:$archive:weir:0.1.0"
ctr -n k8s.io images import "$archive"
