//! What the pipeline needs to know about this node and the others, besides policy.

use openflow::Mac;
use policy::{Endpoint, PodKey};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The MAC every packet sent into a tunnel carries as destination; the receiving node
/// rewrites it to the destination pod's MAC.
pub const TUNNEL_MAC: Mac = Mac([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);

/// The MAC the ARP responder gives the host (asking through the gateway port) for any address
/// behind `br-int`, local pod or remote: all is routed, L3Forwarding rewrites it to the real
/// next hop. Not the gateway's own MAC, which the host's gateway device carries.
pub const POD_NETWORK_MAC: Mac = Mac([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xfe]);

/// A pod whose port is on this node's bridge (learned from OVSDB, see the CNI contract).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LocalPod {
    /// The OpenFlow port.
    pub ofport: u32,
    /// Its IPv4 address.
    pub ip: Ipv4Addr,
    /// Its MAC.
    pub mac: Mac,
}

/// A host interface on this node's bridge (an ExternalNode's NIC moved onto it, see
/// `agent::external_node`): the NIC is the uplink port, an internal port carries the
/// interface's name, MAC and addresses. Both ports carry the same MAC, so the pipeline pairs
/// them by port, not by address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostInterface {
    /// The interface's (and the internal port's) name.
    pub name: String,
    /// The OpenFlow port of the internal port (the host's side).
    pub internal_ofport: u32,
    /// The OpenFlow port of the uplink (the NIC, the network's side).
    pub uplink_ofport: u32,
    /// The MAC both carry.
    pub mac: Mac,
    /// Its IPv4 addresses (as known when it was moved; a DHCP lease may change them, so no
    /// forwarding decision depends on them).
    pub ips: Vec<Ipv4Addr>,
    /// The host endpoint policy knows it as: the ExternalNode's ExternalEntity for this
    /// interface (once the cluster view names the ExternalNode), or this Kubernetes node's Node
    /// (its uplink moved onto the bridge, `--node-policy ovs`). Rules applied to it are
    /// realized on the internal port, as a pod's on its port.
    pub endpoint: Option<Endpoint>,
}

/// Another node, reached through the tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoteNode {
    /// Node name.
    pub name: String,
    /// Its pod CIDRs (IPv4).
    pub pod_cidrs: Vec<ipnetwork::Ipv4Network>,
    /// Its tunnel endpoint address.
    pub ip: Ipv4Addr,
}

/// This node's forwarding facts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Topology {
    /// This node's name.
    pub node: String,
    /// The pods' default gateway address (answered by the ARP responder).
    pub gateway_ip: Ipv4Addr,
    /// The MAC the gateway answers with.
    pub gateway_mac: Mac,
    /// This node's own IPv4 addresses (its InternalIPs): with [`Topology::gateway_ip`], the
    /// sources of the node's own connections through the host gateway, which skip ingress
    /// policy.
    pub node_ips: Vec<Ipv4Addr>,
    /// The OpenFlow port of the tunnel (remote_ip=flow), if there is one.
    pub tunnel_ofport: Option<u32>,
    /// The OpenFlow port of the host gateway (`ovsdb::cni::GATEWAY_PORT`), if there is one.
    /// Without it pods reach only pods.
    pub gateway_ofport: Option<u32>,
    /// Local pods by key.
    pub local_pods: BTreeMap<PodKey, LocalPod>,
    /// Other nodes.
    pub remote_nodes: Vec<RemoteNode>,
    /// Every port on the bridge by name, with its OpenFlow port (TrafficControl targets).
    pub ports: BTreeMap<String, u32>,
    /// The cluster's Service (ClusterIP) ranges: a pod's connections to them go to the host
    /// gateway unjudged and meet egress policy after the host's DNAT (see
    /// `forwarding::service_path_flows`).
    pub service_cidrs: Vec<ipnetwork::Ipv4Network>,
    /// Host interfaces moved onto the bridge (an ExternalNode's), by name order.
    pub host_interfaces: Vec<HostInterface>,
    /// Connections of the host's own endpoints (host interfaces, and the Node with
    /// [`Topology::node_policy`]) that skip their policy.
    pub host_bypass: Vec<crate::host_interface::Bypass>,
    /// This Kubernetes node's own policy (rules applied to its Node) is realized on the bridge
    /// (`weir agent --node-policy ovs`): the host gateway port is the Node's applied-to port,
    /// beside its uplink if that was moved onto the bridge (see [`crate::node_policy`]).
    pub node_policy: bool,
    /// The tunnel's UDP port (6081 GENEVE, 4789 VXLAN): the tunnel to and from the other
    /// nodes through a host interface (the node's uplink on the bridge) is never judged.
    pub tunnel_udp_port: u16,
}

impl Topology {
    /// The OpenFlow port of a pod on this node.
    pub fn ofport(&self, pod: &PodKey) -> Option<u32> {
        self.local_pods.get(pod).map(|p| p.ofport)
    }

    /// The local pods of `namespace`, in name order.
    pub fn local_pods_in<'a>(&'a self, namespace: &'a str) -> impl Iterator<Item = (&'a PodKey, &'a LocalPod)> + 'a {
        self.local_pods.range(PodKey::new(namespace, "")..).take_while(move |(k, _)| k.namespace == namespace)
    }

    /// The OpenFlow ports of an endpoint whose traffic crosses this bridge, sorted: a pod on
    /// this node (its port); an ExternalEntity whose interface was moved onto it (the internal
    /// port); this node's Node with [`Topology::node_policy`] (the host gateway port, and the
    /// internal port of its uplink if moved). Other nodes have none, nor does this one without
    /// `node_policy`: their rules are the node firewall's.
    pub fn endpoint_ofports(&self, endpoint: &Endpoint) -> Vec<u32> {
        let moved = self.host_interfaces.iter().filter(|h| h.endpoint.as_ref() == Some(endpoint)).map(|h| h.internal_ofport);
        let mut out: Vec<u32> = match endpoint {
            Endpoint::Pod(k) => self.ofport(k).into_iter().collect(),
            Endpoint::ExternalEntity(_) => moved.collect(),
            Endpoint::Node(n) if *n == self.node && self.node_policy => self.gateway_ofport.into_iter().chain(moved).collect(),
            Endpoint::Node(_) => Vec::new(),
        };
        out.sort_unstable();
        out
    }

    /// Whether `endpoint` has a port on this bridge ([`Topology::endpoint_ofports`]).
    pub fn is_local(&self, endpoint: &Endpoint) -> bool {
        match endpoint {
            Endpoint::Pod(k) => self.local_pods.contains_key(k),
            _ => !self.endpoint_ofports(endpoint).is_empty(),
        }
    }

    /// The host endpoints whose policy this bridge realizes: the Node (with
    /// [`Topology::node_policy`]) and the endpoints of the host interfaces.
    pub fn host_endpoints(&self) -> impl Iterator<Item = Endpoint> + '_ {
        let node = self.node_policy.then(|| Endpoint::Node(self.node.clone()));
        node.into_iter().chain(self.host_interfaces.iter().filter_map(|h| h.endpoint.clone()))
    }

    /// The ports of those `endpoints` that cross this bridge, sorted, each once.
    pub fn local_ofports<'a>(&self, endpoints: impl IntoIterator<Item = &'a Endpoint>) -> Vec<u32> {
        let mut out: Vec<u32> = endpoints.into_iter().flat_map(|e| self.endpoint_ofports(e)).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The gateway MAC derived from the gateway address: `0a:00:` + the address, a locally
    /// administered unicast MAC that no pod MAC (`02:00:` + pod address) can equal.
    pub fn gateway_mac_for(ip: Ipv4Addr) -> Mac {
        let o = ip.octets();
        Mac([0x0a, 0x00, o[0], o[1], o[2], o[3]])
    }
}

/// Node n1 of the unit tests: pod gateway 10.244.1.1 (host gateway port 7), address
/// 192.168.77.11, tunnel port 1, no pods, no policy of its own.
#[cfg(test)]
pub(crate) fn test_node() -> Topology {
    let gateway_ip = Ipv4Addr::new(10, 244, 1, 1);
    Topology {
        node: "n1".into(),
        gateway_ip,
        gateway_mac: Topology::gateway_mac_for(gateway_ip),
        node_ips: vec![Ipv4Addr::new(192, 168, 77, 11)],
        tunnel_ofport: Some(1),
        gateway_ofport: Some(7),
        local_pods: Default::default(),
        remote_nodes: Vec::new(),
        ports: Default::default(),
        service_cidrs: Vec::new(),
        host_interfaces: Vec::new(),
        host_bypass: Vec::new(),
        node_policy: false,
        tunnel_udp_port: 6081,
    }
}
