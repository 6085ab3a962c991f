#!/usr/bin/env bash
# Every VM: containerd, kubeadm/kubelet/kubectl from pkgs.k8s.io, Debian's Open vSwitch on the
# kernel datapath, the kernel modules and sysctls a node needs, and the kubelet's node IP.
# Usage: K8S_MINOR=v1.37 common.sh NODE_IP   (run as root by Vagrant, which sets K8S_MINOR)
set -euo pipefail
node_ip=${1:?usage: common.sh NODE_IP}
: "${K8S_MINOR:?K8S_MINOR (e.g. v1.37): the Kubernetes minor release to install}"
export DEBIAN_FRONTEND=noninteractive

swapoff -a
sed -i '/\sswap\s/d' /etc/fstab
cat >/etc/modules-load.d/weir.conf <<MODULES
overlay
br_netfilter
openvswitch
geneve
MODULES
while read -r module; do modprobe "$module"; done </etc/modules-load.d/weir.conf
cat >/etc/sysctl.d/90-weir.conf <<SYSCTL
net.ipv4.ip_forward = 1
net.bridge.bridge-nf-call-iptables = 1
SYSCTL
sysctl --system >/dev/null

apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  ca-certificates curl gpg containerd openvswitch-switch iptables conntrack socat
mkdir -p /etc/containerd
containerd config default | sed 's/SystemdCgroup = false/SystemdCgroup = true/' >/etc/containerd/config.toml
systemctl restart containerd

keyring=/etc/apt/keyrings/kubernetes.gpg
mkdir -p "$(dirname "$keyring")"
curl -fsSL "https://pkgs.k8s.io/core:/stable:/${K8S_MINOR}/deb/Release.key" | gpg --dearmor --yes -o "$keyring"
echo "deb [signed-by=$keyring] https://pkgs.k8s.io/core:/stable:/${K8S_MINOR}/deb/ /" >/etc/apt/sources.list.d/kubernetes.list
apt-get update -qq
apt-get install -y -qq --no-install-recommends kubelet kubeadm kubectl
apt-mark hold kubelet kubeadm kubectl
# The private network's address, not the NAT interface's (the same on every VM).
echo "KUBELET_EXTRA_ARGS=--node-ip=$node_ip" >/etc/default/kubelet
systemctl enable --now openvswitch-switch
