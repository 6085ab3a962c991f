//! Flows of host interfaces moved onto the bridge (an ExternalNode's NIC: see
//! [`HostInterface`]). The uplink and the internal port are paired by port (they share a MAC):
//! what enters one leaves through the other.
//!
//! - Non-IPv4 traffic (ARP, LLDP, IPv6) passes straight between them in the Classifier: the
//!   host's neighbours and link-layer protocols work as before the move.
//! - DHCP (UDP 68 to 67 from the host, 67 to 68 to it) passes the same way, before conntrack
//!   and policy: the host's lease never depends on policy (the bypass that can never be cut).
//! - IPv4 goes through conntrack in weir's zone like pods' traffic, tagged with its source
//!   ([`FROM_HOST_INTERFACE`] from the internal port, [`FROM_UPLINK`] from the network):
//!   ```text
//!   internal → Conntrack → egress policy (EgressAdmin…EgressBaseline) → L3/L2 (reg1 = uplink)  → ConntrackCommit → Output
//!   uplink   → Conntrack → (no egress policy)                          → L3/L2 (reg1 = internal) → ingress policy (IngressAdmin…) → ConntrackCommit → Output
//!   ```
//!   So policy on the host endpoint sits where a pod's does: egress rules match the packets
//!   the internal port sends (reg3, the sender, is its port), ingress rules the packets to it
//!   (reg1). Replies skip
//!   policy (ConntrackState), as pods' do.
//! - The configured bypass list ([`Bypass`], Antrea's `policyBypassRules`) skips the host's
//!   policy at the top of the admin tables, for connections that must never be cut (the
//!   management SSH of a VM, say).
//! - On a Kubernetes node whose uplink is on the bridge (`--node-policy ovs`), the tunnel to and
//!   from every other node (UDP to the tunnel port) passes straight between the two ports,
//!   before conntrack and policy, like DHCP. OVS's userspace tunnelling routes encapsulated
//!   packets out of the device that holds the underlay address, the internal port here, so
//!   they enter the bridge from it and would otherwise meet the Node's egress policy; received
//!   ones are decapsulated as they are output to it. Pod policy already judged what they carry.
use crate::cookie::Category;
use crate::flow::FlowBuilder;
use crate::reg::{ESTABLISHED, FROM_HOST_INTERFACE, FROM_UPLINK, OUT_PORT, SENDER, SOURCE, ct_match, ct_state};
use crate::table::Table;
use crate::topology::{HostInterface, Topology};
use ipnetwork::IpNetwork;
use openflow::{Action, Field, Flow, Match, PortNo};
use policy::{Direction, Protocol};

/// Priorities of the host interface flows.
mod priority {
    /// DHCP and the tunnel between the ports, above everything else in the Classifier.
    pub(super) const DHCP: u16 = 220;
    pub(super) const IP: u16 = 200;
    /// Below the IP flows: what is not IPv4.
    pub(super) const NON_IP: u16 = 100;
    /// Routes and output ports of host traffic: below pods' (a packet from the uplink to a
    /// local pod is routed to the pod).
    pub(super) const FORWARD: u16 = 150;
}

/// The DHCP server and client ports.
const DHCP_SERVER: u16 = 67;
const DHCP_CLIENT: u16 = 68;

/// Connections of a host interface that skip its policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bypass {
    /// Ingress: connections to the host from `peer` to `port`; egress: from the host to
    /// `peer` port `port`.
    pub direction: Direction,
    /// The protocol.
    pub protocol: Protocol,
    /// The other end's addresses. The switch takes IPv4 entries only (IPv6 passes the bridge's
    /// host interfaces without policy); the node firewall takes both.
    pub peer: IpNetwork,
    /// The destination port.
    pub port: u16,
}

impl std::str::FromStr for Bypass {
    type Err = String;

    /// `DIRECTION:PROTOCOL:CIDR:PORT`, e.g. `ingress:tcp:10.0.0.0/8:22`; an IPv6 CIDR may be
    /// bracketed, `egress:tcp:[fd00::/64]:6443`.
    fn from_str(s: &str) -> Result<Bypass, String> {
        let fields = s.splitn(3, ':').collect::<Vec<_>>();
        let [direction, protocol, rest] = fields[..] else {
            return Err(format!("{s:?}: expected DIRECTION:PROTOCOL:CIDR:PORT, e.g. ingress:tcp:10.0.0.0/8:22"));
        };
        let Some((peer, port)) = rest.rsplit_once(':') else {
            return Err(format!("{s:?}: expected DIRECTION:PROTOCOL:CIDR:PORT, e.g. ingress:tcp:10.0.0.0/8:22"));
        };
        let peer = peer.strip_prefix('[').and_then(|p| p.strip_suffix(']')).unwrap_or(peer);
        let direction = match direction.to_ascii_lowercase().as_str() {
            "ingress" => Direction::Ingress,
            "egress" => Direction::Egress,
            other => return Err(format!("{s:?}: direction {other:?} is neither ingress nor egress")),
        };
        let protocol = match protocol.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            other => return Err(format!("{s:?}: protocol {other:?} is not tcp, udp or sctp")),
        };
        let peer: IpNetwork = peer.parse().map_err(|e| format!("{s:?}: CIDR {peer:?}: {e}"))?;
        let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or_else(|| format!("{s:?}: port {port:?} is not 1..65535"))?;
        Ok(Bypass { direction, protocol, peer, port })
    }
}

/// Every host interface's flows.
pub fn host_interface_flows(topo: &Topology) -> Vec<Flow> {
    topo.host_interfaces.iter().flat_map(|h| one_interface(h, &topo.host_bypass).into_iter().chain(tunnel_flows(topo, h))).map(FlowBuilder::build).collect()
}

/// The tunnel to and from every other node passes between the two ports unjudged (only where
/// there is a tunnel: a Kubernetes node, see the module documentation).
fn tunnel_flows<'a>(topo: &'a Topology, h: &HostInterface) -> impl Iterator<Item = FlowBuilder> + 'a {
    let (uplink, internal) = (PortNo(h.uplink_ofport), PortNo(h.internal_ofport));
    let port = topo.tunnel_udp_port;
    let nodes = topo.tunnel_ofport.is_some().then_some(&topo.remote_nodes).into_iter().flatten();
    nodes.flat_map(move |node| {
        let tunnel = |from: PortNo, peer: Field| Match::new().udp().in_port(from).with(Field::UdpDst, port).with(peer, node.ip);
        [
            Table::Classifier.flow(priority::DHCP, tunnel(internal, Field::Ipv4Dst), Category::Forwarding).actions([Action::output(uplink)]),
            Table::Classifier.flow(priority::DHCP, tunnel(uplink, Field::Ipv4Src), Category::Forwarding).actions([Action::output(internal)]),
        ]
    })
}

fn one_interface(h: &HostInterface, bypass: &[Bypass]) -> Vec<FlowBuilder> {
    let fwd = Category::Forwarding;
    let (uplink, internal) = (PortNo(h.uplink_ofport), PortNo(h.internal_ofport));
    let dhcp = |from: PortNo, src: u16, dst: u16| Match::new().udp().in_port(from).with(Field::UdpSrc, src).with(Field::UdpDst, dst);
    let original = |source| SOURCE.matches(ct_match(Match::new().ipv4(), ct_state::TRK, ct_state::NEW | ct_state::RPL), source);
    let mut flows = vec![
        // The lease never depends on policy.
        Table::Classifier.flow(priority::DHCP, dhcp(internal, DHCP_CLIENT, DHCP_SERVER), fwd).actions([Action::output(uplink)]),
        Table::Classifier.flow(priority::DHCP, dhcp(uplink, DHCP_SERVER, DHCP_CLIENT), fwd).actions([Action::output(internal)]),
        // IPv4 through conntrack and policy, tagged with where it came from.
        Table::Classifier
            .flow(priority::IP, Match::new().ipv4().in_port(internal), fwd)
            .actions([SOURCE.load(FROM_HOST_INTERFACE), SENDER.load(h.internal_ofport)])
            .goto(Table::Conntrack),
        Table::Classifier
            .flow(priority::IP, Match::new().ipv4().in_port(uplink), fwd)
            .actions([SOURCE.load(FROM_UPLINK)])
            .goto(Table::Conntrack),
        // Everything else passes between the two.
        Table::Classifier.flow(priority::NON_IP, Match::new().in_port(internal), fwd).actions([Action::output(uplink)]),
        Table::Classifier.flow(priority::NON_IP, Match::new().in_port(uplink), fwd).actions([Action::output(internal)]),
        // What the host sends meets its egress policy; established packets of its own
        // connections only the admin tiers (as a pod's).
        Table::ConntrackState
            .flow(priority::FORWARD, original(FROM_HOST_INTERFACE), fwd)
            .actions([ESTABLISHED.load(1)])
            .goto(Table::EgressAdmin),
        // What the network sends skips egress policy (it is nobody's egress here).
        Table::ConntrackState.flow(priority::FORWARD, original(FROM_UPLINK), fwd).actions([ESTABLISHED.load(1)]).goto(Table::L3Forwarding),
        Table::ConntrackState.flow(priority::FORWARD - 1, SOURCE.matches(Match::new().ipv4(), FROM_UPLINK), fwd).goto(Table::L3Forwarding),
        Table::L3Forwarding
            .flow(priority::FORWARD, SOURCE.matches(Match::new().ipv4(), FROM_HOST_INTERFACE), fwd)
            .goto(Table::L2Forwarding),
        Table::L3Forwarding.flow(priority::FORWARD, SOURCE.matches(Match::new().ipv4(), FROM_UPLINK), fwd).goto(Table::L2Forwarding),
        // To the network: no ingress policy (the uplink is nobody's ingress).
        Table::L2Forwarding
            .flow(priority::FORWARD, SOURCE.matches(Match::new().ipv4(), FROM_HOST_INTERFACE), fwd)
            .actions([OUT_PORT.load(h.uplink_ofport)])
            .goto(Table::ConntrackCommit),
        // To the host: its ingress policy (rules applied to it match reg1).
        Table::L2Forwarding
            .flow(priority::FORWARD, SOURCE.matches(Match::new().ipv4(), FROM_UPLINK), fwd)
            .actions([OUT_PORT.load(h.internal_ofport)])
            .goto(Table::IngressAdmin),
    ];
    flows.extend(bypass.iter().filter_map(|b| bypass_flow(h.internal_ofport, b)));
    flows
}

/// A bypass at the top of the admin table of its direction, for the host endpoint's port
/// `port` (the sender of its egress, the output port of its ingress): past all of its policy.
/// None for an IPv6 entry: the switch judges IPv4 only.
pub(crate) fn bypass_flow(port: u32, b: &Bypass) -> Option<FlowBuilder> {
    let IpNetwork::V4(peer) = b.peer else { return None };
    let (base, dst_port) = match b.protocol {
        Protocol::Tcp => (Match::new().tcp(), Field::TcpDst),
        Protocol::Udp => (Match::new().udp(), Field::UdpDst),
        Protocol::Sctp => (Match::new().sctp(), Field::SctpDst),
    };
    let base = base.with(dst_port, b.port);
    Some(match b.direction {
        Direction::Egress => Table::EgressAdmin
            .flow(
                crate::placement::FIXED,
                SENDER.matches(base, port).with_ipv4_prefix(Field::Ipv4Dst, peer.network(), peer.prefix()),
                Category::Forwarding,
            )
            .goto(Table::L3Forwarding),
        Direction::Ingress => Table::IngressAdmin
            .flow(
                crate::placement::FIXED,
                OUT_PORT.matches(base, port).with_ipv4_prefix(
                    Field::Ipv4Src,
                    peer.network(),
                    peer.prefix(),
                ),
                Category::Forwarding,
            )
            .goto(Table::ConntrackCommit),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn topology(bypass: Vec<Bypass>) -> Topology {
        Topology {
            node: "vm-1".into(),
            gateway_ip: Ipv4Addr::UNSPECIFIED,
            gateway_mac: Topology::gateway_mac_for(Ipv4Addr::UNSPECIFIED),
            node_ips: vec![],
            tunnel_ofport: None,
            gateway_ofport: None,
            local_pods: Default::default(),
            remote_nodes: vec![],
            ports: Default::default(),
            service_cidrs: vec![],
            host_interfaces: vec![HostInterface {
                name: "eth0".into(),
                internal_ofport: 20,
                uplink_ofport: 21,
                mac: "02:00:00:00:00:01".parse().unwrap(),
                ips: vec![Ipv4Addr::new(192, 168, 100, 10)],
                endpoint: None,
            }],
            host_bypass: bypass,
            node_policy: false,
            tunnel_udp_port: 6081,
        }
    }

    fn in_table(flows: &[Flow], table: Table) -> Vec<&Flow> {
        flows.iter().filter(|f| f.table_id == table.id()).collect()
    }

    #[test]
    fn the_two_ports_are_paired_by_port_and_ip_is_tagged_for_conntrack() {
        let flows = host_interface_flows(&topology(vec![]));
        let text: Vec<String> = in_table(&flows, Table::Classifier).iter().map(|f| f.to_string()).collect();
        let text = text.join("\n");
        for (from, to) in [(20, 21), (21, 20)] {
            assert!(text.contains(&format!("priority=100,in_port={from} actions=output:{to}")), "{text}");
        }
        assert!(text.contains("priority=200,ip,in_port=20 actions=set_field:0x5/0xf->reg0,set_field:0x14->reg3,goto_table:3"), "{text}");
        assert!(text.contains("priority=200,ip,in_port=21 actions=set_field:0x4/0xf->reg0,goto_table:3"), "{text}");
        assert!(text.contains("priority=220,udp,in_port=20,tp_src=68,tp_dst=67 actions=output:21"), "{text}");
    }

    #[test]
    fn packets_to_the_host_meet_its_ingress_policy_and_packets_from_it_leave_by_the_uplink() {
        let flows = host_interface_flows(&topology(vec![]));
        let l2: Vec<String> = in_table(&flows, Table::L2Forwarding).iter().map(|f| f.to_string()).collect();
        assert_eq!(l2.len(), 2);
        let to_host = format!("set_field:0x14->reg1,goto_table:{}", Table::IngressAdmin.id());
        let to_net = format!("set_field:0x15->reg1,goto_table:{}", Table::ConntrackCommit.id());
        assert!(l2.iter().any(|f| f.contains("reg0=0x4/0xf") && f.contains(&to_host)), "{l2:?}");
        assert!(l2.iter().any(|f| f.contains("reg0=0x5/0xf") && f.contains(&to_net)), "{l2:?}");
    }

    #[test]
    fn a_bypass_skips_the_hosts_policy_in_its_direction_only() {
        let ssh: Bypass = "ingress:tcp:10.0.0.0/8:22".parse().unwrap();
        let dns: Bypass = "egress:udp:192.168.100.1/32:53".parse().unwrap();
        let flows = host_interface_flows(&topology(vec![ssh, dns]));
        let admin_in = in_table(&flows, Table::IngressAdmin);
        let admin_out = in_table(&flows, Table::EgressAdmin);
        assert_eq!((admin_in.len(), admin_out.len()), (1, 1));
        assert_eq!(admin_in[0].matches.exact(Field::TcpDst), Some(22));
        assert_eq!(admin_in[0].matches.exact(Field::Reg(1)), Some(20));
        assert_eq!(admin_out[0].matches.exact(Field::UdpDst), Some(53));
        assert_eq!(admin_out[0].matches.exact(Field::Reg(3)), Some(20), "the host's egress: its internal port sends");
        assert_eq!(admin_out[0].matches.exact(Field::Ipv4Dst), Some(u128::from(u32::from(Ipv4Addr::new(192, 168, 100, 1)))));
    }

    #[test]
    fn the_tunnel_to_other_nodes_passes_between_the_ports_before_conntrack_where_there_is_one() {
        let mut topo = topology(vec![]);
        let without_tunnel = host_interface_flows(&topo);
        topo.remote_nodes = vec![crate::topology::RemoteNode {
            name: "n2".into(),
            pod_cidrs: vec!["10.244.2.0/24".parse().unwrap()],
            ip: Ipv4Addr::new(192, 168, 100, 12),
        }];
        assert_eq!(host_interface_flows(&topo), without_tunnel, "no tunnel port (an ExternalNode): nothing passes unjudged");
        topo.tunnel_ofport = Some(1);
        let flows = host_interface_flows(&topo);
        let text: Vec<String> = in_table(&flows, Table::Classifier).iter().map(|f| f.to_string()).collect();
        let text = text.join("\n");
        assert!(text.contains("priority=220,udp,in_port=20,nw_dst=192.168.100.12,tp_dst=6081 actions=output:21"), "{text}");
        assert!(text.contains("priority=220,udp,in_port=21,nw_src=192.168.100.12,tp_dst=6081 actions=output:20"), "{text}");
        assert_eq!(flows.len(), without_tunnel.len() + 2);
    }

    #[test]
    fn an_ipv6_bypass_is_read_bracketed_or_not_and_left_to_the_node_firewall() {
        let bracketed: Bypass = "egress:tcp:[fd00::/64]:6443".parse().unwrap();
        assert_eq!(bracketed, "egress:tcp:fd00::/64:6443".parse().unwrap());
        assert_eq!((bracketed.peer.to_string().as_str(), bracketed.port), ("fd00::/64", 6443));
        let ssh: Bypass = "ingress:tcp:10.0.0.0/8:22".parse().unwrap();
        assert_eq!(host_interface_flows(&topology(vec![ssh, bracketed])), host_interface_flows(&topology(vec![ssh])), "the switch judges IPv4 only");
    }

    #[test]
    fn a_bad_bypass_names_what_is_wrong() {
        for (text, needle) in [
            ("ingress:tcp:10.0.0.0/8", "expected DIRECTION"),
            ("inbound:tcp:10.0.0.0/8:22", "direction"),
            ("ingress:icmp:10.0.0.0/8:22", "protocol"),
            ("ingress:tcp:10.0.0.0/33:22", "CIDR"),
            ("ingress:tcp:[fd00::/129]:22", "CIDR"),
            ("ingress:tcp:10.0.0.0/8:0", "port"),
        ] {
            let e = text.parse::<Bypass>().unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
