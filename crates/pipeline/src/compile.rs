//! The whole compile: cluster + topology → the desired flows of every table.

use crate::conjunction::RuleInfo;
use crate::flow::FlowSet;
use crate::node_compiler::NodeCompiler;
use crate::topology::{LocalPod, RemoteNode, Topology};
use openflow::Mac;
use policy::Cluster;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The compiler's output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compiled {
    /// Every desired flow.
    pub flows: FlowSet,
    /// What each conj_id stands for: the rules sharing it.
    pub rules: BTreeMap<u32, Vec<RuleInfo>>,
    /// How each TrafficControl fared on this node.
    pub traffic_controls: BTreeMap<String, crate::traffic_control::TcStatus>,
}

/// Compiles the cluster's policy for the node described by `topo`.
pub fn compile(cluster: &Cluster, topo: &Topology) -> Compiled {
    NodeCompiler::new(cluster, topo.clone()).into_compiled()
}

/// The OpenFlow port of the tunnel when compiling without a switch.
pub const OFFLINE_TUNNEL_OFPORT: u32 = 1;
/// The host gateway's OpenFlow port in an offline topology.
pub const OFFLINE_GATEWAY_OFPORT: u32 = 2;

/// A pod's MAC as the testbed CNI assigns it: `02:00:` + its IPv4 address.
pub fn pod_mac_for(ip: std::net::Ipv4Addr) -> Mac {
    let o = ip.octets();
    Mac([0x02, 0x00, o[0], o[1], o[2], o[3]])
}

/// The topology of `node` as far as the cluster view tells it, for compiling without a
/// switch (`weir compile`): local pods are the pods scheduled on the node, numbered from
/// OpenFlow port 10 in name order, with MACs as the testbed CNI assigns them. `None` if the
/// node is unknown or has no IPv4 pod CIDR.
pub fn offline_topology(cluster: &Cluster, node: &str) -> Option<Topology> {
    let this = cluster.nodes.get(node)?;
    let gateway_ip = gateway_for(this)?;
    let mut local_pods = BTreeMap::new();
    let mut next_port = 10;
    for pod in cluster.pods.values() {
        if pod.node.as_deref() != Some(node) || pod.host_network {
            continue;
        }
        let Some(IpAddr::V4(ip)) = pod.ips.iter().copied().find(IpAddr::is_ipv4) else { continue };
        local_pods.insert(pod.key.clone(), LocalPod { ofport: next_port, ip, mac: pod_mac_for(ip) });
        next_port += 1;
    }
    Some(Topology {
        node: node.to_string(),
        gateway_ip,
        gateway_mac: Topology::gateway_mac_for(gateway_ip),
        node_ips: node_ips(this),
        tunnel_ofport: Some(OFFLINE_TUNNEL_OFPORT),
        gateway_ofport: Some(OFFLINE_GATEWAY_OFPORT),
        local_pods,
        remote_nodes: remote_nodes(cluster, node),
        ports: BTreeMap::new(),
        service_cidrs: Vec::new(),
        host_interfaces: Vec::new(),
        host_bypass: Vec::new(),
        node_policy: false,
        tunnel_udp_port: 6081,
    })
}

/// The pod gateway of a node: the first address of its first IPv4 pod CIDR
/// ([`ovsdb::cni::pod_gateway`]).
pub fn gateway_for(node: &policy::Node) -> Option<std::net::Ipv4Addr> {
    node.ipv4_pod_cidrs().next().map(|c| ovsdb::cni::pod_gateway(c.network()))
}

/// A node's IPv4 internal addresses.
pub fn node_ips(node: &policy::Node) -> Vec<std::net::Ipv4Addr> {
    node.ipv4_internal_ips().collect()
}

/// Every other node with an IPv4 pod CIDR and an IPv4 internal address.
pub fn remote_nodes(cluster: &Cluster, this: &str) -> Vec<RemoteNode> {
    cluster
        .nodes
        .values()
        .filter(|n| n.name != this)
        .filter_map(|n| {
            let ip = n.ipv4_internal_ips().next()?;
            let pod_cidrs: Vec<_> = n.ipv4_pod_cidrs().collect();
            (!pod_cidrs.is_empty()).then(|| RemoteNode { name: n.name.clone(), pod_cidrs, ip })
        })
        .collect()
}
