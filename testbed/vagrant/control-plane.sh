#!/usr/bin/env bash
# The control plane: kubeadm init (with the bootstrap token the workers join with), then weir
# from deploy/ (CRDs, RBAC, ConfigMap, DaemonSet).
# Usage: control-plane.sh ADVERTISE_ADDRESS BOOTSTRAP_TOKEN
set -euo pipefail
address=${1:?usage: control-plane.sh ADVERTISE_ADDRESS BOOTSTRAP_TOKEN}
token=${2:?usage: control-plane.sh ADVERTISE_ADDRESS BOOTSTRAP_TOKEN}
sed -e "s/ADVERTISE_ADDRESS/$address/g" -e "s/BOOTSTRAP_TOKEN/$token/g" \
  /vagrant/testbed/vagrant/kubeadm.yaml >/etc/kubeadm-weir.yaml
if [[ ! -f /etc/kubernetes/admin.conf ]]; then
  kubeadm init --config /etc/kubeadm-weir.yaml
fi
mkdir -p /root/.kube
cp /etc/kubernetes/admin.conf /root/.kube/config

kubectl apply -f /vagrant/deploy/crds/
kubectl apply -f /vagrant/deploy/
kubectl -n weir-system rollout status daemonset/weir-agent --timeout=5m
