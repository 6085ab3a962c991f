#!/usr/bin/env bash
# A worker joins the cluster with the bootstrap token. The CA is not pinned: the cluster lives
# on a private network of throwaway VMs (never do this elsewhere).
# Usage: worker.sh CONTROL_PLANE_ADDRESS BOOTSTRAP_TOKEN
set -euo pipefail
control_plane=${1:?usage: worker.sh CONTROL_PLANE_ADDRESS BOOTSTRAP_TOKEN}
token=${2:?usage: worker.sh CONTROL_PLANE_ADDRESS BOOTSTRAP_TOKEN}
if [[ ! -f /etc/kubernetes/kubelet.conf ]]; then
  kubeadm join "$control_plane:6443" --token "$token" --discovery-token-unsafe-skip-ca-verification \
    --cri-socket unix:///run/containerd/containerd.sock
fi
