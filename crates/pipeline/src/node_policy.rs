//! A Kubernetes node's own policy on the bridge (`weir agent --node-policy ovs`): rules applied
//! to this node's Node are realized like a pod's, on the Node's ports
//! ([`Topology::endpoint_ofports`]), in the same tables, tiers and conjunctions.
//!
//! - The host gateway port stands for the Node on the pod side: what reaches the host through it
//!   (a local pod's packets, another node's pod's through the tunnel) meets the Node's ingress
//!   policy when it is addressed to one of the node's own addresses (its InternalIPs); what the
//!   host sends from those addresses meets its egress policy (reg3 = the gateway port). What
//!   the host only routes (to the outside, a Service's backend) is not the host's own traffic
//!   and is judged as before. The gateway address is not the Node's: a Node is its InternalIPs,
//!   as the oracle (`policy::evaluate`) and the nftables realization have it, so what a pod
//!   sends to it meets only the pod's own egress policy (the host's routes to the pods take
//!   the InternalIP as their source, so the host's own connections leave from it).
//! - The node's uplink, moved onto the bridge as an ExternalNode's NIC is
//!   ([`crate::host_interface`], its endpoint the Node), stands for it on the network side.
//! - The bypass list skips the Node's policy on both, as on a host interface; the tunnel to
//!   other nodes never meets it.
//!
//! Replies skip policy and established packets meet the admin tiers again, as a pod's do.
use crate::cookie::Category;
use crate::flow::FlowBuilder;
use crate::reg::{ESTABLISHED, FROM_GATEWAY, OUT_PORT, SENDER, SOURCE, ct_match, ct_state};
use crate::table::Table;
use crate::topology::Topology;
use openflow::{Field, Flow, Match};

/// Priorities of the node policy flows.
mod priority {
    /// Packets to the node's addresses, above the gateway's own output flow.
    pub(super) const TO_HOST: u16 = 201;
    /// The host's own connections, above the gateway's other connections (disjoint from the
    /// Service path's, which match a pod's source address).
    pub(super) const FROM_HOST: u16 = 202;
}

/// The flows that put the Node's policy on the host gateway; none without
/// [`Topology::node_policy`] or a gateway port.
pub fn node_policy_flows(topo: &Topology) -> Vec<Flow> {
    let Some(gw) = topo.gateway_ofport.filter(|_| topo.node_policy) else { return Vec::new() };
    let addresses = &topo.node_ips;
    let to_host = addresses.iter().map(|&ip| {
        Table::L2Forwarding
            .flow(
                priority::TO_HOST,
                Match::new().ipv4().with(Field::EthDst, topo.gateway_mac).with(Field::Ipv4Dst, ip),
                Category::Forwarding,
            )
            .actions([OUT_PORT.load(gw)])
            .goto(Table::IngressAdmin)
    });
    let from_host = addresses.iter().flat_map(|&ip| {
        let from = |set: u32, clear: u32| SOURCE.matches(ct_match(Match::new().ipv4(), set, clear), FROM_GATEWAY).with(Field::Ipv4Src, ip);
        [
            Table::ConntrackState
                .flow(priority::FROM_HOST, from(ct_state::TRK | ct_state::NEW, ct_state::RPL), Category::Forwarding)
                .actions([SENDER.load(gw)])
                .goto(Table::EgressAdmin),
            Table::ConntrackState
                .flow(priority::FROM_HOST, from(ct_state::TRK, ct_state::NEW | ct_state::RPL), Category::Forwarding)
                .actions([ESTABLISHED.load(1), SENDER.load(gw)])
                .goto(Table::EgressAdmin),
        ]
    });
    let bypass = topo.host_bypass.iter().filter_map(|b| crate::host_interface::bypass_flow(gw, b));
    to_host.chain(from_host).chain(bypass).map(FlowBuilder::build).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy::Endpoint;
    use std::net::Ipv4Addr;

    fn topology(node_policy: bool) -> Topology {
        Topology { host_bypass: vec!["ingress:tcp:10.0.0.0/8:22".parse().unwrap()], node_policy, ..crate::topology::test_node() }
    }

    #[test]
    fn without_node_policy_on_ovs_the_node_has_no_port_and_the_gateway_no_policy() {
        let topo = topology(false);
        assert!(node_policy_flows(&topo).is_empty());
        assert!(topo.endpoint_ofports(&Endpoint::Node("n1".into())).is_empty());
    }

    #[test]
    fn the_gateway_is_the_nodes_port_for_what_is_addressed_to_the_node_and_what_it_sends() {
        let topo = topology(true);
        assert_eq!(topo.endpoint_ofports(&Endpoint::Node("n1".into())), [7]);
        assert!(topo.endpoint_ofports(&Endpoint::Node("n2".into())).is_empty(), "another node's policy is that node's");
        let flows = node_policy_flows(&topo);
        let of = |t: Table| flows.iter().filter(move |f| f.table_id == t.id());
        let to_host: Vec<u128> = of(Table::L2Forwarding).filter_map(|f| f.matches.exact(Field::Ipv4Dst)).collect();
        assert_eq!(to_host, [u128::from(u32::from(Ipv4Addr::new(192, 168, 77, 11)))], "the InternalIP, not the gateway's");
        assert!(of(Table::L2Forwarding).all(|f| f.to_string().contains(&format!("goto_table:{}", Table::IngressAdmin.id()))));
        let from_host: Vec<&Flow> = of(Table::ConntrackState).collect();
        assert_eq!(from_host.len(), 2, "new and established, from the InternalIP");
        assert!(from_host.iter().all(|f| f.matches.exact(Field::Ipv4Src) == Some(u128::from(u32::from(Ipv4Addr::new(192, 168, 77, 11))))));
        assert!(from_host.iter().all(|f| f.to_string().contains("set_field:0x7->reg3")), "{from_host:?}");
        let bypass: Vec<&Flow> = of(Table::IngressAdmin).collect();
        assert_eq!(bypass.len(), 1);
        assert_eq!(bypass[0].matches.exact(Field::Reg(1)), Some(7));
    }
}
