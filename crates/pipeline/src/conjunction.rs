//! Policy rules as conjunctive matches.
//!
//! A rule becomes one conjunction `conj_id` with up to three clauses:
//! 1. applied-to: the local endpoints (egress: the sender in reg3; ingress: the output port in reg1),
//! 2. peers: the peer address blocks, exceptions subtracted into plain CIDRs,
//! 3. services: protocol and destination port ranges as value/mask pairs.
//!
//! A clause that would match everything is left out; a rule left with one clause becomes plain
//! flows at its direct priority. Its table, priorities and verdict come from [`Placement`], so
//! the same machinery serves the admin, NetworkPolicy and baseline tiers. Clause flows with
//! the same match are one flow carrying every rule's `conjunction` action (an address set shared by rules is emitted once), so the flow
//! count grows with endpoints + peers + services, never with their product.
//!
//! conj_ids come from a hash of the rule's identity, so an unchanged rule keeps its id and
//! compiles to identical flows across recompiles and restarts.

use crate::address::subtract;
use crate::cookie::Category;
use crate::flow::FlowKey;
use crate::placement::{Conn, Placement, Verdict, is_tiered, isolation_table};
use crate::port_range::port_masks;
use crate::table::Table;
use crate::topology::Topology;
use ipnetwork::{IpNetwork, Ipv4Network};
use openflow::{Action, Field, Flow, Match};
use policy::{ConcreteRule, ConcreteServices, Direction, Origin, PeerAddrs, Protocol, RuleId};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

pub use crate::placement::network_policy as priority;

/// What a conj_id stands for (for `weir trace`, `weir status` and the audit log).
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
    /// What a match does.
    pub action: policy::Action,
    /// Its audit logging, if on.
    pub audit: Option<policy::AuditLog>,
}

impl RuleInfo {
    /// The info of a concrete rule.
    pub fn of(rule: &ConcreteRule) -> RuleInfo {
        RuleInfo {
            rule: rule.rule.clone(),
            part: rule.part,
            origin: rule.origin.clone(),
            direction: rule.direction,
            action: rule.action,
            audit: rule.audit.clone(),
        }
    }
}

/// conj_ids handed out to conjunctions: FNV-1a of the conjunction's key, 31 bits, probing
/// upwards past ids in use. A conjunction rebuilt after its old id was released gets the same
/// id back unless another took it meanwhile (a hash collision), so ids are stable in practice,
/// across recompiles and restarts.
#[derive(Debug, Clone, Default)]
pub struct ConjIds {
    used: BTreeSet<u32>,
}

impl ConjIds {
    /// An id for the conjunction named `key`.
    pub fn allocate(&mut self, key: &str) -> u32 {
        let mut id = fnv1a(key.as_bytes()) & 0x7fff_ffff;
        while id == 0 || !self.used.insert(id) {
            id = (id + 1) & 0x7fff_ffff;
        }
        id
    }

    /// Gives `id` back.
    pub fn release(&mut self, id: u32) {
        self.used.remove(&id);
    }
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

/// Matches the local endpoint a rule applies to.
fn applied_to_match(direction: Direction, ofport: u32) -> Match {
    match direction {
        Direction::Egress => crate::reg::SENDER.matches(Match::new().ipv4(), ofport),
        Direction::Ingress => crate::reg::OUT_PORT.matches(Match::new().ipv4(), ofport),
    }
}

/// Peer blocks as plain IPv4 CIDRs, exceptions subtracted; sorted and deduplicated. The
/// datapath is IPv4-only (SpoofGuard drops IPv6), so IPv6 peers can never match.
pub(crate) fn peer_cidrs(blocks: &[policy::IpBlock]) -> Vec<Ipv4Network> {
    let mut cidrs = BTreeSet::new();
    for b in blocks {
        cidrs.extend(subtract(b.cidr, &b.except).into_iter().filter_map(|c| match c {
            IpNetwork::V4(v4) => Some(v4),
            IpNetwork::V6(_) => None,
        }));
    }
    cidrs.into_iter().collect()
}

fn peer_matches(direction: Direction, cidrs: &[Ipv4Network]) -> Vec<Match> {
    let field = match direction {
        Direction::Egress => Field::Ipv4Dst,
        Direction::Ingress => Field::Ipv4Src,
    };
    cidrs
        .iter()
        .map(|c| match c.prefix() {
            0 => Match::new().ipv4(),
            prefix => Match::new().ipv4().with_ipv4_prefix(field, c.network(), prefix),
        })
        .collect()
}

/// Services as protocol + port value/mask pairs, ranges split into masks; sorted, deduplicated.
fn service_values(services: &[policy::PortRange]) -> Vec<ServiceMatch> {
    let mut out = BTreeSet::new();
    for s in services {
        if s.is_any_port() {
            out.insert((s.protocol, 0, 0));
            continue;
        }
        out.extend(port_masks(s.lo, s.hi).into_iter().map(|pm| (s.protocol, pm.value, pm.mask)));
    }
    out.into_iter().collect()
}

fn service_matches(services: &[ServiceMatch]) -> Vec<Match> {
    services
        .iter()
        .map(|&(protocol, value, mask)| {
            let (base, port_field) = match protocol {
                Protocol::Tcp => (Match::new().tcp(), Field::TcpDst),
                Protocol::Udp => (Match::new().udp(), Field::UdpDst),
                Protocol::Sctp => (Match::new().sctp(), Field::SctpDst),
            };
            match mask {
                0 => base,
                u16::MAX => base.with(port_field, value),
                _ => base.with_masked(port_field, value, mask),
            }
        })
        .collect()
}

/// A service clause value: protocol and destination port under a mask (mask 0: any port).
type ServiceMatch = (Protocol, u16, u16);

/// One concrete rule reduced to what its flows need on this node: its conj_id and each
/// clause's values (`None`: the clause matches everything and is left out). Kept per rule so
/// its flows can be taken back out of the merged tables when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleClauses {
    /// The conj_id.
    pub id: u32,
    placement: Placement,
    applied: Vec<u32>,
    peers: Option<Vec<Ipv4Network>>,
    services: Option<Vec<ServiceMatch>>,
    /// New connections it decides go to the agent to be logged.
    audit: bool,
}

impl RuleClauses {
    /// The clauses of `rule` on this node, or `None` if the rule decides nothing here (it
    /// applies to no local endpoint, some clause is empty, or its action decides nothing in
    /// its tier: see [`Placement::new`]).
    pub fn new(rule: &ConcreteRule, topo: &Topology) -> Option<RuleClauses> {
        RuleClauses::in_slots(rule, topo, &crate::placement::Slots::default())
    }

    /// [`RuleClauses::new`] for an admin or baseline rule among those `slots` was made of.
    pub fn in_slots(rule: &ConcreteRule, topo: &Topology, slots: &crate::placement::Slots) -> Option<RuleClauses> {
        let placement = Placement::in_slots(rule.direction, rule.tier, rule.priority, rule.action, slots)?;
        let applied = topo.local_ofports(&rule.applied_to);
        let peers = match &rule.peers {
            PeerAddrs::Any => None,
            PeerAddrs::Blocks(blocks) => Some(peer_cidrs(blocks)),
        };
        let services = match &rule.services {
            ConcreteServices::Any => None,
            ConcreteServices::List(list) => Some(service_values(list)),
        };
        let empty = applied.is_empty() || peers.as_ref().is_some_and(Vec::is_empty) || services.as_ref().is_some_and(Vec::is_empty);
        (!empty).then_some(RuleClauses { id: 0, placement, applied, peers, services, audit: rule.audit.is_some() })
    }

    /// The same clauses under conj_id `id`.
    pub fn with_id(self, id: u32) -> RuleClauses {
        RuleClauses { id, ..self }
    }

    /// [`RuleClauses::match_name`] without the peers: rules whose names are equal differ at
    /// most in their peers (and applied-to clause and id).
    pub fn match_name_without_peers(&self) -> String {
        format!("{:?}|{:?}|{}", self.placement, self.services, if self.audit { "audit" } else { "" })
    }

    /// The local ports of the applied-to clause, sorted.
    pub fn applied(&self) -> &[u32] {
        &self.applied
    }

    /// Whether `other` has the same placement, peers and services (the applied-to clause
    /// and the id may differ).
    pub fn same_match(&self, other: &RuleClauses) -> bool {
        (self.placement, &self.peers, &self.services, self.audit) == (other.placement, &other.peers, &other.services, other.audit)
    }

    /// A name for everything but the applied-to clause and the id: rules with equal names
    /// can share one conjunction.
    pub fn match_name(&self) -> String {
        format!("{:?}|{:?}|{:?}|{}", self.placement, self.peers, self.services, if self.audit { "audit" } else { "" })
    }

    /// The applied-to clause's part for one local port: a conjunction clause, or a plain
    /// verdict flow when it is the only clause.
    pub fn applied_part(&self, ofport: u32) -> Vec<(FlowKey, Part)> {
        let Placement { direction, table, conjunction, direct, .. } = self.placement;
        let m = applied_to_match(direction, ofport);
        if self.peers.is_none() && self.services.is_none() {
            return self.verdict_parts(direct, m, |conn| Part::Direct {
                id: self.id,
                verdict: self.placement.verdict,
                audit: self.audit,
                conn,
            });
        }
        let n_clauses = 1 + u8::from(self.peers.is_some()) + u8::from(self.services.is_some());
        vec![((table.id(), conjunction, m), Part::Clause { id: self.id, clause: 1, n_clauses })]
    }

    /// The verdict flows of match `m` at `priority`: one per kind of packet the table tells
    /// apart ([`Conn::of_table`]).
    fn verdict_parts(&self, priority: u16, m: Match, part: impl Fn(Conn) -> Part) -> Vec<(FlowKey, Part)> {
        let table = self.placement.table;
        Conn::of_table(table).iter().map(|&conn| ((table.id(), priority, conn.restrict(m.clone())), part(conn))).collect()
    }

    /// Adds a local port to the applied-to clause; whether it was new.
    pub fn insert_applied(&mut self, ofport: u32) -> bool {
        insert_sorted(&mut self.applied, ofport)
    }

    /// Removes a local port from the applied-to clause; whether it was there.
    pub fn remove_applied(&mut self, ofport: u32) -> bool {
        remove_sorted(&mut self.applied, ofport)
    }

    /// The rule's contributions to the policy tables: with one clause, plain flows; with
    /// more, a conjunction action per clause value plus the `conj_id` flow.
    pub fn parts(&self) -> Vec<(FlowKey, Part)> {
        let Placement { direction, table, conjunction, direct, verdict } = self.placement;
        let key = |prio, m| (table.id(), prio, m);
        let mut dims: Vec<Vec<Match>> = vec![self.applied.iter().map(|p| applied_to_match(direction, *p)).collect()];
        if let Some(peers) = &self.peers {
            dims.push(peer_matches(direction, peers));
        }
        if let Some(services) = &self.services {
            dims.push(service_matches(services));
        }
        let (id, audit) = (self.id, self.audit);
        if dims.len() == 1 {
            let part = |conn| Part::Direct { id, verdict, audit, conn };
            return dims.remove(0).into_iter().flat_map(|m| self.verdict_parts(direct, m, part)).collect();
        }
        let n_clauses = dims.len() as u8;
        let mut out =
            self.verdict_parts(conjunction, Match::new().with(Field::ConjId, id), |conn| Part::ConjAction { id, verdict, audit, conn });
        for (k, dim) in dims.into_iter().enumerate() {
            let clause = Part::Clause { id, clause: k as u8 + 1, n_clauses };
            out.extend(dim.into_iter().map(|m| (key(conjunction, m), clause)));
        }
        out
    }
}

impl RuleClauses {
    /// The peer clause's part for one peer CIDR (`None` if the rule has no peer clause).
    pub fn peer_part(&self, cidr: Ipv4Network) -> Option<(FlowKey, Part)> {
        self.peers.as_ref()?;
        let Placement { direction, table, conjunction, .. } = self.placement;
        let n_clauses = 2 + u8::from(self.services.is_some());
        let m = peer_matches(direction, &[cidr]).pop()?;
        Some(((table.id(), conjunction, m), Part::Clause { id: self.id, clause: 2, n_clauses }))
    }

    /// The peer CIDRs, sorted (`None`: any peer).
    pub fn peers(&self) -> Option<&[Ipv4Network]> {
        self.peers.as_deref()
    }

    /// Adds a peer CIDR; whether it was new.
    pub fn insert_peer(&mut self, cidr: Ipv4Network) -> bool {
        self.peers.as_mut().is_some_and(|peers| insert_sorted(peers, cidr))
    }

    /// Removes a peer CIDR; whether it was there.
    pub fn remove_peer(&mut self, cidr: Ipv4Network) -> bool {
        self.peers.as_mut().is_some_and(|peers| remove_sorted(peers, cidr))
    }
}

/// Inserts into a sorted vector; whether `x` was new.
fn insert_sorted<T: Ord>(v: &mut Vec<T>, x: T) -> bool {
    match v.binary_search(&x) {
        Ok(_) => false,
        Err(at) => {
            v.insert(at, x);
            true
        }
    }
}

/// Removes from a sorted vector; whether `x` was there.
fn remove_sorted<T: Ord>(v: &mut Vec<T>, x: T) -> bool {
    match v.binary_search(&x) {
        Ok(at) => {
            v.remove(at);
            true
        }
        Err(_) => false,
    }
}

/// The isolation drop of a local endpoint (a port) in one direction.
pub fn isolation_part(direction: Direction, ofport: u32) -> (FlowKey, Part) {
    let default_table = isolation_table(direction);
    ((default_table.id(), priority::ISOLATION, applied_to_match(direction, ofport)), Part::Isolation)
}

/// What one rule (or one isolating policy) puts into one policy-table flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    /// The flow that turns a completed conjunction into a verdict.
    ConjAction {
        /// conj_id.
        id: u32,
        /// What a match does.
        verdict: Verdict,
        /// New connections go to the agent to be logged.
        audit: bool,
        /// The packets this flow decides.
        conn: Conn,
    },
    /// A single-clause rule deciding whatever the flow matches.
    Direct {
        /// The rule's conj_id (the cookie carries the lowest of those sharing the flow).
        id: u32,
        /// What a match does.
        verdict: Verdict,
        /// New connections go to the agent to be logged.
        audit: bool,
        /// The packets this flow decides.
        conn: Conn,
    },
    /// One clause value of a conjunction.
    Clause {
        /// conj_id.
        id: u32,
        /// Which clause (from 1).
        clause: u8,
        /// How many clauses.
        n_clauses: u8,
    },
    /// The endpoint is isolated: drop what no rule allowed.
    Isolation,
}

/// The policy tables as the merge of every rule's parts: one flow per key carries every
/// rule's conjunction action there, so an address shared by rules is one flow.
#[derive(Debug, Clone, Default)]
pub struct PolicyTables {
    entries: BTreeMap<FlowKey, BTreeMap<Part, u32>>,
}

impl PolicyTables {
    /// Adds parts, noting in `touched` the keys whose flow may change.
    pub fn add(&mut self, parts: Vec<(FlowKey, Part)>, mut touched: Option<&mut BTreeSet<FlowKey>>) {
        for (key, part) in parts {
            if let Some(t) = touched.as_deref_mut() {
                t.insert(key.clone());
            }
            *self.entries.entry(key).or_default().entry(part).or_default() += 1;
        }
    }

    /// Takes back parts added before, noting in `touched` the keys whose flow may change.
    pub fn remove(&mut self, parts: Vec<(FlowKey, Part)>, mut touched: Option<&mut BTreeSet<FlowKey>>) {
        for (key, part) in parts {
            let Some(entry) = self.entries.get_mut(&key) else { continue };
            if let Some(n) = entry.get_mut(&part) {
                *n -= 1;
                if *n == 0 {
                    entry.remove(&part);
                }
            }
            if entry.is_empty() {
                self.entries.remove(&key);
            }
            if let Some(t) = touched.as_deref_mut() {
                t.insert(key);
            }
        }
    }

    /// The flow at `key`, if any part is there.
    pub fn flow(&self, key: &FlowKey) -> Option<Flow> {
        self.entries.get(key).map(|parts| merged_flow(key, parts))
    }

    /// Every flow.
    pub fn flows(&self) -> impl Iterator<Item = Flow> + '_ {
        self.entries.iter().map(|(key, parts)| merged_flow(key, parts))
    }
}

/// The flow of one key from its parts. Kinds share a key only in the admin and baseline
/// tables, where one priority holds rules of one action (see [`crate::placement`]): there a
/// Direct part (ordered first) decides the key alone, which is what any clause there would
/// lead to.
fn merged_flow((table_id, prio, m): &FlowKey, parts: &BTreeMap<Part, u32>) -> Flow {
    let table = Table::from_id(*table_id).expect("policy tables are declared");
    let category = if is_tiered(table) { Category::ClusterPolicy } else { Category::NetworkPolicy };
    let flow = table.flow(*prio, m.clone(), category);
    match parts.keys().next().expect("empty entries are removed") {
        // Parts are ordered, so for Direct this is the lowest conj_id: a stable choice.
        Part::ConjAction { id, verdict, audit, conn } | Part::Direct { id, verdict, audit, conn } => {
            // Established packets are not logged again: one line per connection.
            let audit = *audit && *conn != Conn::Established;
            match *verdict {
                Verdict::Continue(next) if audit => flow.object(*id).actions(crate::audit::audit_actions()).goto(next).build(),
                Verdict::Continue(next) => flow.object(*id).goto(next).build(),
                Verdict::Drop { reject: false } if audit => flow.object(*id).actions(crate::audit::audit_actions()).build(),
                Verdict::Drop { reject: false } => flow.object(*id).build(),
                Verdict::Drop { reject: true } => flow.object(*id).actions(crate::reject::reject_actions(audit)).build(),
            }
        }
        Part::Clause { .. } => flow
            .actions(parts.keys().filter_map(|p| match *p {
                Part::Clause { id, clause, n_clauses } => Some(Action::Conjunction { id, clause, n_clauses }),
                _ => None,
            }))
            .build(),
        Part::Isolation => flow.build(),
    }
}
