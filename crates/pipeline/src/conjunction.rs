//! Policy rules as conjunctive matches.
//!
//! A rule becomes one conjunction `conj_id` with up to three clauses:
//! 1. applied-to: the local endpoints (egress: `in_port`; ingress: the output port in reg1),
//! 2. peers: the peer address blocks, exceptions subtracted into plain CIDRs,
//! 3. services: protocol and destination port ranges as value/mask pairs.
//!
//! A clause that would match everything is left out; a rule left with one clause becomes plain
//! flows at [`priority::DIRECT`]. Clause flows with the same match are one flow carrying every
//! rule's `conjunction` action (an address set shared by rules is emitted once), so the flow
//! count grows with endpoints + peers + services, never with their product.
//!
//! conj_ids come from a hash of the rule's identity, so an unchanged rule keeps its id and
//! compiles to identical flows across recompiles and restarts.

use crate::address::subtract;
use crate::cookie::Category;
use crate::flow::FlowKey;
use crate::port_range::port_masks;
use crate::table::Table;
use crate::topology::Topology;
use ipnetwork::IpNetwork;
use openflow::{Action, Field, Flow, Match, PortNo};
use policy::{
    ConcreteRule, ConcreteServices, Direction, Endpoint, Isolation, Origin, PeerAddrs, Protocol, RuleId,
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Priorities in the policy tables.
pub mod priority {
    /// Clause flows and the `conj_id` action flow.
    pub const CONJUNCTION: u16 = 200;
    /// Rules with a single clause (no conjunction needed).
    pub const DIRECT: u16 = 205;
    /// Isolation drops in the default tables.
    pub const ISOLATION: u16 = 200;
}

/// What a conj_id stands for (for `weir trace` and `weir status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleInfo {
    /// The normalized rule.
    pub rule: RuleId,
    /// Which part of it.
    pub part: u32,
    /// Policy and rule label.
    pub origin: Origin,
    /// Direction.
    pub direction: Direction,
}

/// Stable conj_ids for a set of concrete rules: FNV-1a of `rule#part`, 31 bits, probing
/// upwards on collision in the rules' sorted order.
pub fn allocate_conj_ids(rules: &[ConcreteRule]) -> BTreeMap<(RuleId, u32), u32> {
    let mut keys: Vec<(RuleId, u32)> = rules.iter().map(|r| (r.rule.clone(), r.part)).collect();
    keys.sort();
    keys.dedup();
    let mut used = BTreeSet::new();
    let mut out = BTreeMap::new();
    for k in keys {
        let mut id = fnv1a(format!("{}#{}", k.0, k.1).as_bytes()) & 0x7fff_ffff;
        while id == 0 || !used.insert(id) {
            id = (id + 1) & 0x7fff_ffff;
        }
        out.insert(k, id);
    }
    out
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

/// The table a direction's rules, and its isolation drops, live in; and where allowed
/// packets continue.
fn tables(direction: Direction) -> (Table, Table, Table) {
    match direction {
        Direction::Egress => (Table::EgressRule, Table::EgressDefault, Table::L3Forwarding),
        Direction::Ingress => (Table::IngressRule, Table::IngressDefault, Table::ConntrackCommit),
    }
}

/// Matches the local endpoint a rule applies to.
fn applied_to_match(direction: Direction, ofport: u32) -> Match {
    match direction {
        Direction::Egress => Match::new().ipv4().in_port(PortNo(ofport)),
        Direction::Ingress => crate::reg::OUT_PORT.matches(Match::new().ipv4(), ofport),
    }
}

fn peer_matches(direction: Direction, blocks: &[policy::IpBlock]) -> Vec<Match> {
    let field = match direction {
        Direction::Egress => Field::Ipv4Dst,
        Direction::Ingress => Field::Ipv4Src,
    };
    let mut cidrs = BTreeSet::new();
    for b in blocks {
        cidrs.extend(subtract(b.cidr, &b.except));
    }
    cidrs
        .into_iter()
        .filter_map(|c| match c {
            IpNetwork::V4(v4) if v4.prefix() == 0 => Some(Match::new().ipv4()),
            IpNetwork::V4(v4) => Some(Match::new().ipv4().with_ipv4_prefix(field, v4.network(), v4.prefix())),
            // The datapath is IPv4-only: SpoofGuard drops IPv6, so v6 peers can never match.
            IpNetwork::V6(_) => None,
        })
        .collect()
}

fn service_matches(services: &[policy::PortRange]) -> Vec<Match> {
    let mut out = BTreeSet::new();
    for s in services {
        let (base, port_field) = match s.protocol {
            Protocol::Tcp => (Match::new().tcp(), Field::TcpDst),
            Protocol::Udp => (Match::new().udp(), Field::UdpDst),
            Protocol::Sctp => (Match::new().sctp(), Field::SctpDst),
        };
        if s.is_any_port() {
            out.insert(base);
            continue;
        }
        for pm in port_masks(s.lo, s.hi) {
            out.insert(if pm.mask == u16::MAX {
                base.clone().with(port_field, pm.value)
            } else {
                base.clone().with_masked(port_field, pm.value, pm.mask)
            });
        }
    }
    out.into_iter().collect()
}

/// The policy flows of this node: conjunctions for every rule that applies to a local
/// endpoint, and isolation drops. Returns the flows and what each conj_id stands for.
pub fn policy_flows(
    rules: &[ConcreteRule],
    isolated: &Isolation,
    topo: &Topology,
) -> (Vec<Flow>, BTreeMap<u32, RuleInfo>) {
    let ids = allocate_conj_ids(rules);
    let np = Category::NetworkPolicy;
    let mut flows = Vec::new();
    // Clause flows, merged by key: one flow carries every rule's conjunction action.
    let mut clauses: BTreeMap<FlowKey, BTreeSet<(u32, u8, u8)>> = BTreeMap::new();
    // Single-clause rules, by key: two rules allowing everything for one endpoint give one
    // flow, carrying the lowest conj_id in its cookie so the choice is stable.
    let mut direct: BTreeMap<FlowKey, (u32, Table, Table)> = BTreeMap::new();
    let mut index = BTreeMap::new();

    for rule in rules {
        // NetworkPolicy rules only allow; other actions arrive with the admin tables.
        if rule.action != policy::Action::Allow {
            continue;
        }
        let (table, _, next) = tables(rule.direction);
        let applied: Vec<Match> = rule
            .applied_to
            .iter()
            .filter_map(|e| match e {
                Endpoint::Pod(k) => topo.local_pods.get(k),
                Endpoint::Host(_) => None,
            })
            .map(|p| applied_to_match(rule.direction, p.ofport))
            .collect();
        if applied.is_empty() {
            continue;
        }
        let mut dims = vec![applied];
        if let PeerAddrs::Blocks(blocks) = &rule.peers {
            dims.push(peer_matches(rule.direction, blocks));
        }
        if let ConcreteServices::List(services) = &rule.services {
            dims.push(service_matches(services));
        }
        if dims.iter().any(Vec::is_empty) {
            continue; // some clause matches nothing, so the rule allows nothing
        }
        let id = ids[&(rule.rule.clone(), rule.part)];
        index.insert(
            id,
            RuleInfo { rule: rule.rule.clone(), part: rule.part, origin: rule.origin.clone(), direction: rule.direction },
        );
        if dims.len() == 1 {
            for m in dims.remove(0) {
                let entry = direct.entry((table.id(), priority::DIRECT, m)).or_insert((id, table, next));
                entry.0 = entry.0.min(id);
            }
            continue;
        }
        let n = dims.len() as u8;
        for (k, dim) in dims.into_iter().enumerate() {
            for m in dim {
                clauses.entry((table.id(), priority::CONJUNCTION, m)).or_default().insert((id, k as u8 + 1, n));
            }
        }
        flows.push(
            table
                .flow(priority::CONJUNCTION, Match::new().with(Field::ConjId, id), np)
                .object(id)
                .goto(next)
                .build(),
        );
    }
    for ((_, prio, m), (id, table, next)) in direct {
        flows.push(table.flow(prio, m, np).object(id).goto(next).build());
    }
    for ((table_id, prio, m), conj) in clauses {
        let table = Table::from_id(table_id).expect("clause tables are declared");
        let actions = conj.into_iter().map(|(id, clause, n_clauses)| Action::Conjunction { id, clause, n_clauses });
        flows.push(table.flow(prio, m, np).actions(actions).build());
    }
    for direction in [Direction::Egress, Direction::Ingress] {
        let (_, default_table, _) = tables(direction);
        for endpoint in isolated.get(direction).keys() {
            let Endpoint::Pod(k) = endpoint else { continue };
            if let Some(p) = topo.local_pods.get(k) {
                flows.push(default_table.flow(priority::ISOLATION, applied_to_match(direction, p.ofport), np).build());
            }
        }
    }
    (flows, index)
}
