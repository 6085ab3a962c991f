//! The forwarding part of the pipeline: classification, spoof guard, ARP, conntrack, routing
//! to local pods and through the tunnel to other nodes, output; and every table's miss flow.

use crate::cookie::Category;
use crate::reg::{
    ARP_SWAP, CT_MARK_FROM_GATEWAY, ESTABLISHED, FROM_GATEWAY, FROM_POD, FROM_TUNNEL, OUT_PORT, REPLY, SENDER, SOURCE,
    TO_GATEWAY, ct_match, ct_state,
};
use crate::table::{Miss, Table};
use crate::topology::{POD_NETWORK_MAC, TUNNEL_MAC, Topology};
use openflow::{Action, Ct, CtZone, Field, FieldRange, Flow, Learn, LearnSpec, LearnSrc, Match, PortNo};

/// Priorities of the forwarding flows.
mod priority {
    pub(super) const HIGH: u16 = 210;
    /// Replies going back to the host gateway: above the per-pod routes, below invalid drops.
    pub(super) const GATEWAY_REPLY: u16 = 205;
    /// Connections the host gateway forwards from a local pod's address, and a pod's own to
    /// Service addresses: above the other connections of their source.
    pub(super) const SERVICE_PATH: u16 = 202;
    pub(super) const NORMAL: u16 = 200;
    pub(super) const LOW: u16 = 190;
    /// A local pod's packets to anything no other route knows: to the host gateway.
    pub(super) const TO_HOST: u16 = 180;
    pub(super) const MISS: u16 = 0;
}

/// Every table's miss flow, from its declaration.
pub fn miss_flows() -> Vec<Flow> {
    Table::ALL
        .iter()
        .map(|&t| {
            let f = t.flow(priority::MISS, Match::new(), Category::Pipeline);
            match t.def().miss {
                Miss::Drop => f,
                Miss::Goto(next) => f.goto(next),
                Miss::OutputToReg1 => f.actions([Action::OutputReg { src: OUT_PORT.range, max_len: 0 }]),
            }
            .build()
        })
        .collect()
}

/// The fixed flows and the flows for each local pod and remote node.
pub fn forwarding_flows(topo: &Topology) -> Vec<Flow> {
    let mut flows = Vec::new();
    let fwd = Category::Forwarding;
    let mut push = |b: crate::flow::FlowBuilder| flows.push(b.build());

    // Classifier: where the packet came from.
    if let Some(tun) = topo.tunnel_ofport {
        push(Table::Classifier
            .flow(priority::NORMAL, Match::new().in_port(PortNo(tun)), fwd)
            .actions([SOURCE.load(FROM_TUNNEL)])
            .goto(Table::Conntrack));
    }
    for pod in topo.local_pods.values() {
        let port = PortNo(pod.ofport);
        push(Table::Classifier
            .flow(priority::NORMAL, Match::new().in_port(port), fwd)
            .actions([SOURCE.load(FROM_POD), SENDER.load(pod.ofport)])
            .goto(Table::SpoofGuard));
        // SpoofGuard: only the pod's own MAC and IP.
        push(Table::SpoofGuard
            .flow(
                priority::NORMAL,
                Match::new().ipv4().in_port(port).with(Field::EthSrc, pod.mac).with(Field::Ipv4Src, pod.ip),
                fwd,
            )
            .goto(Table::Conntrack));
        push(Table::SpoofGuard
            .flow(
                priority::NORMAL,
                Match::new()
                    .arp()
                    .in_port(port)
                    .with(Field::EthSrc, pod.mac)
                    .with(Field::ArpSha, pod.mac)
                    .with(Field::ArpSpa, pod.ip),
                fwd,
            )
            .goto(Table::ArpResponder));
        // L3Forwarding: to a local pod.
        push(Table::L3Forwarding
            .flow(priority::NORMAL, Match::new().ipv4().with(Field::Ipv4Dst, pod.ip), fwd)
            .actions([
                Action::set_field(Field::EthSrc, topo.gateway_mac),
                Action::set_field(Field::EthDst, pod.mac),
            ])
            .goto(Table::L2Forwarding));
        push(Table::L2Forwarding
            .flow(priority::NORMAL, Match::new().with(Field::EthDst, pod.mac), fwd)
            .actions([OUT_PORT.load(pod.ofport)])
            .goto(Table::IngressAdmin));
    }

    // ArpResponder: every request gets the gateway MAC (all traffic is routed).
    let whole = FieldRange::whole;
    push(Table::ArpResponder
        .flow(priority::NORMAL, Match::new().arp().with(Field::ArpOp, 1u16), fwd)
        .actions([
            Action::Move { src: whole(Field::EthSrc), dst: whole(Field::EthDst) },
            Action::set_field(Field::EthSrc, topo.gateway_mac),
            Action::set_field(Field::ArpOp, 2u16),
            Action::Move { src: whole(Field::ArpSha), dst: whole(Field::ArpTha) },
            Action::set_field(Field::ArpSha, topo.gateway_mac),
            Action::Move { src: whole(Field::ArpTpa), dst: ARP_SWAP.range },
            Action::Move { src: whole(Field::ArpSpa), dst: whole(Field::ArpTpa) },
            Action::Move { src: ARP_SWAP.range, dst: whole(Field::ArpSpa) },
            Action::output(PortNo::IN_PORT),
        ]));

    // Conntrack. OVS's userspace conntrack keys SCTP by address pair only (ports 0), so one
    // allowed association would let every later one between the two pods through, in both
    // directions; SCTP is tracked by learned per-association reply flows instead.
    push(Table::Conntrack.flow(priority::NORMAL, Match::new().ipv4(), fwd).ct(false, Some(Table::ConntrackState)));
    push(Table::Conntrack
        .flow(priority::HIGH, Match::new().sctp(), fwd)
        .resubmit(Table::SctpConnections)
        .goto(Table::ConntrackState));
    push(Table::ConntrackState.flow(
        priority::HIGH,
        ct_match(Match::new().ipv4(), ct_state::INV | ct_state::TRK, 0),
        fwd,
    ));
    // Replies of allowed connections skip all policy, here and in IngressAdmin. (SCTP
    // replies are recognized by the learned flows, which mark them established.)
    push(Table::ConntrackState
        .flow(priority::NORMAL, ct_match(Match::new().ipv4(), ct_state::TRK | ct_state::RPL, ct_state::NEW), fwd)
        .actions([ESTABLISHED.load(1), REPLY.load(1)])
        .goto(Table::L3Forwarding));
    push(Table::ConntrackState
        .flow(priority::NORMAL, ESTABLISHED.matches(Match::new().sctp(), 1), fwd)
        .actions([REPLY.load(1)])
        .goto(Table::L3Forwarding));
    // Established packets in the original direction meet the admin tiers again (a Deny added
    // since must stop them, see crate::placement); NetworkPolicy and baseline let them pass.
    let original = |source| {
        SOURCE.matches(ct_match(Match::new().ipv4(), ct_state::TRK, ct_state::NEW | ct_state::RPL), source)
    };
    push(Table::ConntrackState
        .flow(priority::LOW, original(FROM_POD), fwd)
        .actions([ESTABLISHED.load(1)])
        .goto(Table::EgressAdmin));
    // The sending node already applied egress policy to what arrives through the tunnel.
    push(Table::ConntrackState
        .flow(priority::NORMAL, original(FROM_TUNNEL), fwd)
        .actions([ESTABLISHED.load(1)])
        .goto(Table::L3Forwarding));
    push(Table::ConntrackState
        .flow(priority::LOW, SOURCE.matches(Match::new().ipv4(), FROM_TUNNEL), fwd)
        .goto(Table::L3Forwarding));

    // L3Forwarding to other nodes' pods, for packets from local pods and the host only (no
    // transit).
    let senders: &[u32] = if topo.gateway_ofport.is_some() { &[FROM_POD, FROM_GATEWAY] } else { &[FROM_POD] };
    if let Some(tun) = topo.tunnel_ofport {
        for (node, &source) in topo.remote_nodes.iter().flat_map(|n| senders.iter().map(move |s| (n, s))) {
            for cidr in &node.pod_cidrs {
                push(Table::L3Forwarding
                    .flow(
                        priority::LOW,
                        SOURCE.matches(Match::new().ipv4(), source).with_ipv4_prefix(
                            Field::Ipv4Dst,
                            cidr.network(),
                            cidr.prefix(),
                        ),
                        fwd,
                    )
                    .actions([
                        Action::set_field(Field::EthSrc, topo.gateway_mac),
                        Action::set_field(Field::EthDst, TUNNEL_MAC),
                        Action::set_field(Field::TunDst, node.ip),
                    ])
                    .goto(Table::L2Forwarding));
            }
        }
        push(Table::L2Forwarding
            .flow(priority::NORMAL, Match::new().with(Field::EthDst, TUNNEL_MAC), fwd)
            .actions([OUT_PORT.load(tun)])
            .goto(Table::ConntrackCommit));
    }

    // Established packets the admin tiers let through pass NetworkPolicy, which decided them
    // when their connection began; replies skip the admin tiers too.
    push(Table::EgressRule
        .flow(priority::HIGH, ESTABLISHED.matches(Match::new().ipv4(), 1), fwd)
        .goto(Table::L3Forwarding));
    push(Table::IngressAdmin
        .flow(crate::placement::FIXED, REPLY.matches(Match::new().ipv4(), 1), fwd)
        .goto(Table::ConntrackCommit));
    push(Table::IngressRule
        .flow(priority::HIGH, ESTABLISHED.matches(Match::new().ipv4(), 1), fwd)
        .goto(Table::ConntrackCommit));
    push(Table::ConntrackCommit
        .flow(priority::NORMAL, ct_match(Match::new().ipv4(), ct_state::NEW | ct_state::TRK, 0), fwd)
        .ct(true, None)
        .goto(Table::TrafficControlEgress));
    push(Table::ConntrackCommit
        .flow(priority::NORMAL, ESTABLISHED.matches(Match::new().sctp(), 0), fwd)
        .actions([Action::Learn(Box::new(sctp_reply_learn()))])
        .goto(Table::TrafficControlEgress));
    if let Some(gw) = topo.gateway_ofport {
        flows.extend(gateway_flows(topo, gw));
    }
    flows.extend(crate::host_interface::host_interface_flows(topo));
    flows.extend(crate::node_policy::node_policy_flows(topo));
    flows
}

/// The host gateway's flows (port `gw`): the host reaches local pods (and, routed through
/// the gateway, remote ones); pods reach the host and, through its routing and masquerade,
/// everything outside the pod network; connections that came from the host send their
/// replies back to it, so the host can undo a Service DNAT or a masquerade.
///
/// Policy: what the host sends skips egress policy (it is not a pod). Connections from the
/// node itself (source address the gateway's or one of the node's) skip ingress policy too, as Kubernetes expects
/// (kubelet probes); anything else the host forwards to a pod, such as a Service connection
/// it DNATed to a backend, meets the backend's ingress policy with its real source.
fn gateway_flows(topo: &Topology, gw: u32) -> Vec<Flow> {
    let fwd = Category::Forwarding;
    let from_gw = |m: Match| SOURCE.matches(m, FROM_GATEWAY);
    let whole = FieldRange::whole;
    // The node's own connections to its pods skip ingress policy (kubelet probes).
    let node_sources = std::iter::once(topo.gateway_ip).chain(topo.node_ips.iter().copied()).map(|ip| {
        Table::IngressAdmin
            .flow(crate::placement::FIXED, from_gw(Match::new().ipv4()).with(Field::Ipv4Src, ip), fwd)
            .goto(Table::ConntrackCommit)
    });
    let flows = vec![
        Table::Classifier
            .flow(priority::NORMAL, Match::new().ipv4().in_port(PortNo(gw)), fwd)
            .actions([SOURCE.load(FROM_GATEWAY)])
            .goto(Table::Conntrack),
        Table::Classifier
            .flow(priority::NORMAL, Match::new().arp().in_port(PortNo(gw)), fwd)
            .actions([SOURCE.load(FROM_GATEWAY)])
            .goto(Table::ArpResponder),
        // The host asks for addresses behind br-int: all get one MAC, L3Forwarding routes.
        // Never for its own address (it would be a conflict, not a neighbour).
        Table::ArpResponder.flow(
            priority::HIGH + 1,
            from_gw(Match::new().arp()).with(Field::ArpTpa, topo.gateway_ip),
            fwd,
        ),
        Table::ArpResponder
            .flow(priority::HIGH, from_gw(Match::new().arp()).with(Field::ArpOp, 1u16), fwd)
            .actions([
                Action::Move { src: whole(Field::EthSrc), dst: whole(Field::EthDst) },
                Action::set_field(Field::EthSrc, POD_NETWORK_MAC),
                Action::set_field(Field::ArpOp, 2u16),
                Action::Move { src: whole(Field::ArpSha), dst: whole(Field::ArpTha) },
                Action::set_field(Field::ArpSha, POD_NETWORK_MAC),
                Action::Move { src: whole(Field::ArpTpa), dst: ARP_SWAP.range },
                Action::Move { src: whole(Field::ArpSpa), dst: whole(Field::ArpTpa) },
                Action::Move { src: ARP_SWAP.range, dst: whole(Field::ArpSpa) },
                Action::output(PortNo::IN_PORT),
            ]),
        // Connections from the host: new ones pass (no egress policy for the host), the
        // established ones are marked so NetworkPolicy lets them pass.
        Table::ConntrackState
            .flow(
                priority::NORMAL,
                from_gw(ct_match(Match::new().ipv4(), ct_state::TRK, ct_state::NEW | ct_state::RPL)),
                fwd,
            )
            .actions([ESTABLISHED.load(1)])
            .goto(Table::L3Forwarding),
        Table::ConntrackState.flow(priority::LOW, from_gw(Match::new().ipv4()), fwd).goto(Table::L3Forwarding),
        // Replies of connections that came from the host go back to it.
        Table::ConntrackState
            .flow(
                priority::GATEWAY_REPLY,
                ct_match(Match::new().ipv4(), ct_state::TRK | ct_state::RPL, ct_state::NEW)
                    .with(Field::CtMark, CT_MARK_FROM_GATEWAY),
                fwd,
            )
            .actions([ESTABLISHED.load(1), REPLY.load(1), TO_GATEWAY.load(1)])
            .goto(Table::L3Forwarding),
        Table::L3Forwarding
            .flow(priority::HIGH, TO_GATEWAY.matches(Match::new().ipv4(), 1), fwd)
            .actions([
                Action::set_field(Field::EthSrc, POD_NETWORK_MAC),
                Action::set_field(Field::EthDst, topo.gateway_mac),
            ])
            .goto(Table::L2Forwarding),
        // What a local pod sends to an address no route above knows: the host routes it (the
        // node itself, the outside through its masquerade, a Service through its DNAT).
        Table::L3Forwarding
            .flow(priority::TO_HOST, SOURCE.matches(Match::new().ipv4(), FROM_POD), fwd)
            .actions([Action::set_field(Field::EthDst, topo.gateway_mac)])
            .goto(Table::L2Forwarding),
        Table::L2Forwarding
            .flow(priority::NORMAL, Match::new().with(Field::EthDst, topo.gateway_mac), fwd)
            .actions([OUT_PORT.load(gw)])
            .goto(Table::ConntrackCommit),
        // Connections from the host are committed with a mark that sends their replies back.
        Table::ConntrackCommit
            .flow(priority::HIGH, from_gw(ct_match(Match::new().ipv4(), ct_state::NEW | ct_state::TRK, 0)), fwd)
            .actions([Action::Ct(Ct {
                commit: true,
                zone: CtZone::Imm(crate::reg::CT_ZONE),
                exec: vec![Action::set_field(Field::CtMark, CT_MARK_FROM_GATEWAY)],
                ..Ct::default()
            })])
            .goto(Table::TrafficControlEgress),
    ];
    flows
        .into_iter()
        .chain(node_sources)
        .chain(service_path_flows(topo))
        .chain(node_address_flows(topo))
        .map(crate::flow::FlowBuilder::build)
        .collect()
}

/// Pods and other nodes' hosts. What a local pod sends to another node's address goes through
/// the tunnel and enters that node's host through its gateway, so the host (and its node
/// policy) sees the pod's own address, as it would a pod on the node itself; sent through
/// this host's routing it would leave masqueraded to this node's address. Both ends' conntrack
/// see the whole connection, the answer comes back the same way.
fn node_address_flows(topo: &Topology) -> Vec<crate::flow::FlowBuilder> {
    let fwd = Category::Forwarding;
    if topo.tunnel_ofport.is_none() {
        return Vec::new();
    }
    let to_other_hosts = topo.remote_nodes.iter().map(|node| {
        Table::L3Forwarding
            .flow(priority::LOW, SOURCE.matches(Match::new().ipv4(), FROM_POD).with(Field::Ipv4Dst, node.ip), fwd)
            .actions([
                Action::set_field(Field::EthSrc, topo.gateway_mac),
                Action::set_field(Field::EthDst, TUNNEL_MAC),
                Action::set_field(Field::TunDst, node.ip),
            ])
            .goto(Table::L2Forwarding)
    });
    let to_this_host = topo.node_ips.iter().map(|&ip| {
        Table::L3Forwarding
            .flow(priority::LOW, SOURCE.matches(Match::new().ipv4(), FROM_TUNNEL).with(Field::Ipv4Dst, ip), fwd)
            .actions([
                Action::set_field(Field::EthSrc, POD_NETWORK_MAC),
                Action::set_field(Field::EthDst, topo.gateway_mac),
            ])
            .goto(Table::L2Forwarding)
    });
    to_other_hosts.chain(to_this_host).collect()
}

/// The Service path. A pod's connection to a Service address goes to the host without egress
/// policy (the ClusterIP is not what it will reach); the host DNATs it and sends it back
/// through the gateway with the pod's own source address, and there it meets the pod's egress
/// policy ([`SENDER`]) with the real destination, then the destination's ingress policy. So an
/// egress rule naming the backend pods (DNS to kube-dns) admits the Service path, and one
/// excluding them stops it. Without service CIDRs the first leg is judged too, on the
/// ClusterIP (fails closed).
fn service_path_flows(topo: &Topology) -> impl Iterator<Item = crate::flow::FlowBuilder> + '_ {
    let fwd = Category::Forwarding;
    let original = |m: Match| ct_match(m.ipv4(), ct_state::TRK, ct_state::RPL);
    let to_services = topo.service_cidrs.iter().map(move |cidr| {
        Table::ConntrackState
            .flow(
                priority::SERVICE_PATH,
                SOURCE.matches(original(Match::new()), FROM_POD).with_ipv4_prefix(Field::Ipv4Dst, cidr.network(), cidr.prefix()),
                fwd,
            )
            .goto(Table::L3Forwarding)
    });
    let forwarded_for_pods = topo.local_pods.values().flat_map(move |pod| {
        let from_pod_address = |state: u32, not: u32| {
            SOURCE.matches(ct_match(Match::new().ipv4(), state, not), FROM_GATEWAY).with(Field::Ipv4Src, pod.ip)
        };
        [
            Table::ConntrackState
                .flow(priority::SERVICE_PATH, from_pod_address(ct_state::TRK | ct_state::NEW, ct_state::RPL), fwd)
                .actions([SENDER.load(pod.ofport)])
                .goto(Table::EgressAdmin),
            Table::ConntrackState
                .flow(priority::SERVICE_PATH, from_pod_address(ct_state::TRK, ct_state::NEW | ct_state::RPL), fwd)
                .actions([ESTABLISHED.load(1), SENDER.load(pod.ofport)])
                .goto(Table::EgressAdmin),
        ]
    });
    to_services.chain(forwarded_for_pods)
}

/// How long a learned SCTP reply flow outlives the association's last reply.
pub const SCTP_IDLE_TIMEOUT: u16 = 300;

/// The learn action an allowed SCTP packet runs: a flow in SctpConnections that matches the
/// reverse of its addresses and ports and marks such packets established.
fn sctp_reply_learn() -> Learn {
    let whole = FieldRange::whole;
    let copy = |dst: Field, src: Field| LearnSpec::Match { dst: whole(dst), src: LearnSrc::Field(whole(src)) };
    Learn {
        idle_timeout: SCTP_IDLE_TIMEOUT,
        priority: priority::NORMAL,
        cookie: crate::cookie::cookie(Category::Learned, 0),
        table_id: Table::SctpConnections.id(),
        specs: vec![
            LearnSpec::Match { dst: whole(Field::EthType), src: LearnSrc::Imm(0x0800) },
            LearnSpec::Match { dst: whole(Field::IpProto), src: LearnSrc::Imm(132) },
            copy(Field::Ipv4Src, Field::Ipv4Dst),
            copy(Field::Ipv4Dst, Field::Ipv4Src),
            copy(Field::SctpSrc, Field::SctpDst),
            copy(Field::SctpDst, Field::SctpSrc),
            LearnSpec::Load { dst: ESTABLISHED.range, src: LearnSrc::Imm(1) },
        ],
        ..Learn::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openflow::FieldValue;
    use std::net::Ipv4Addr;

    fn topology(gateway_ofport: Option<u32>) -> Topology {
        Topology { gateway_ofport, ..crate::topology::test_node() }
    }

    /// Flows of `table` whose match has `field` exactly `value`.
    fn matching(flows: &[Flow], table: Table, field: Field, value: impl FieldValue) -> Vec<&Flow> {
        let v = value.to_u128();
        flows.iter().filter(|f| f.table_id == table.id() && f.matches.exact(field) == Some(v)).collect()
    }

    #[test]
    fn without_a_gateway_port_nothing_leaves_for_the_host() {
        let topo = topology(None);
        let flows = forwarding_flows(&topo);
        assert!(matching(&flows, Table::L2Forwarding, Field::EthDst, topo.gateway_mac).is_empty());
        assert!(flows.iter().all(|f| f.priority != priority::TO_HOST && f.priority != priority::GATEWAY_REPLY));
    }

    #[test]
    fn only_the_nodes_own_sources_from_the_gateway_skip_ingress_policy() {
        let topo = topology(Some(7));
        let flows = forwarding_flows(&topo);
        let to_gateway = matching(&flows, Table::L2Forwarding, Field::EthDst, topo.gateway_mac);
        assert_eq!(to_gateway.len(), 1);
        let mut skipping: Vec<Ipv4Addr> = flows
            .iter()
            .filter(|f| f.table_id == Table::IngressAdmin.id() && f.priority == crate::placement::FIXED)
            .filter_map(|f| f.matches.exact(Field::Ipv4Src).map(|a| Ipv4Addr::from(a as u32)))
            .collect();
        skipping.sort();
        assert_eq!(skipping, [Ipv4Addr::new(10, 244, 1, 1), Ipv4Addr::new(192, 168, 77, 11)]);
    }
}
