//! The plan rendered as one nftables table, replaced whole in one transaction (`e<i>` is the
//! host's i-th endpoint, e.g. its Node, or one ExternalEntity per interface):
//!
//! ```text
//! table inet weir-node {
//!     counter <rule id> {}                      # one per rule, named by its id
//!     set e<i>-v4 / e<i>-v6                     # the endpoint's addresses
//!     set e<i>-ingress-peers-<n>-v4 / -v6       # each rule's peers (interval sets)
//!     chain input  { hook input;  ct established,related accept; iif lo accept; <bypass> accept;
//!                    <egress bypass connections' packets back, TCP without SYN> accept;
//!                    ct invalid drop; ip daddr @e<i>-v4 goto e<i>-ingress }
//!     chain output { hook output; ... ip saddr @e<i>-v4 goto e<i>-egress }
//!     chain e<i>-ingress { jump e<i>-ingress-tier-<t> (each admin tier, in order); goto e<i>-ingress-baseline }
//!     chain e<i>-ingress-tier-<t> { meta l4proto tcp th dport vmap { 22 : goto e<i>-ingress-tier-<t>-<k>, ... };
//!                                   meta l4proto tcp th dport vmap { 81-90 : goto ..., ... };
//!                                   (single ports, then ranges; the same for udp and sctp)
//!                                   <rules of every port, in order> }
//!     chain e<i>-ingress-tier-<t>-<k> { <the tier's rules that match those ports, in order> }
//!     chain e<i>-ingress-baseline { <baseline rules>; accept }
//! }
//! ```
//!
//! A tier's rules are dispatched on protocol and destination port by a verdict map, so a new
//! connection meets only the rules that can match it, however many the tier holds; what remains
//! linear is the rules for every port. Allow accepts, Deny drops, Reject answers (TCP reset,
//! else ICMP port unreachable), Pass goes to the baseline, which always ends in a verdict (so a
//! goto never falls back into the admin tiers).
use super::Bypass;
use super::plan::{DirectionPlan, HostRule, Plan};
use nftables::batch::Batch;
use nftables::expr::{BinaryOperation, CT, Expression, Meta, MetaKey, NamedExpression, Payload, PayloadField, Prefix, Range, SetItem, Verdict};
use nftables::schema::{Chain, Counter, NfListObject, Nftables, Rule, Set, SetFlag, SetType, SetTypeValue, Table};
use nftables::stmt::{self, JumpTarget, Match, Operator, Reject, RejectType, Statement, VerdictMap};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook, RejectCode};
use policy::netpol::Direction;
use policy::protocol::Protocol;
use policy::rules::{Action, Endpoint, RuleId};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::IpAddr;

/// The table weir's node firewall owns (beside `table ip weir`, the masquerade).
pub const TABLE: &str = "weir-node";
const FAMILY: NfFamily = NfFamily::INet;
/// The filter hooks' standard priority.
const FILTER_PRIORITY: i32 = 0;
/// Above this many rule copies over a tier's port chains, the tier stays one linear chain
/// (a rule for every port is copied into each port chain).
const DISPATCH_LIMIT: usize = 50_000;

type Stmts = Vec<Statement<'static>>;

/// The transaction that replaces the table with `plan`.
pub fn ruleset(plan: &Plan) -> Nftables<'static> {
    let mut t = Tables::default();
    for (i, e) in plan.endpoints.iter().enumerate() {
        t.address_sets(i, &e.addresses);
    }
    for direction in [Direction::Ingress, Direction::Egress] {
        t.base_chain(direction, &plan.bypass, plan.endpoints.len());
        for (i, e) in plan.endpoints.iter().enumerate() {
            let side = Side { direction, scope: format!("e{i}-{}", direction.lower()) };
            t.direction(&side, &e.endpoint, e.direction(direction));
        }
    }
    t.batch()
}

/// One direction of one endpoint: chain and set names start with `scope` (`e<i>-ingress`,
/// the host's i-th endpoint).
struct Side {
    direction: Direction,
    scope: String,
}

/// The transaction that removes the table (adding it first, so the delete cannot fail).
pub fn removal() -> Nftables<'static> {
    let mut batch = Batch::new();
    batch.add(NfListObject::Table(table()));
    batch.delete(NfListObject::Table(table()));
    batch.to_nftables()
}

/// The name of a rule's counter: its id (truncated with a digest past nftables' 255 bytes).
pub fn counter_name(id: &RuleId) -> String {
    use sha2::Digest;
    if id.0.len() <= 250 {
        return id.0.clone();
    }
    let cut = (0..=230).rev().find(|&i| id.0.is_char_boundary(i)).unwrap_or(0);
    let digest = sha2::Sha256::digest(id.0.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}~{hex}", &id.0[..cut])
}

/// Counters of the layers rather than of rules, e.g. `weir:Node n1:ingress:fail-closed`.
pub fn layer_counter(endpoint: &Endpoint, direction: Direction, what: &str) -> String {
    format!("weir:{endpoint}:{}:{what}", direction.lower())
}

fn table() -> Table<'static> {
    Table { family: FAMILY, name: TABLE.into(), handle: None }
}

#[derive(Default)]
struct Tables {
    /// Counters and sets, declared first.
    objects: Vec<NfListObject<'static>>,
    chains: Vec<Chain<'static>>,
    rules: Vec<Rule<'static>>,
    counters: HashSet<String>,
    /// Each rule's peer matches (one per address family), by scope, id and part.
    peers: BTreeMap<(String, RuleId, u32), Vec<Stmts>>,
}

impl Tables {
    fn batch(self) -> Nftables<'static> {
        let mut batch = Batch::new();
        batch.add(NfListObject::Table(table()));
        batch.delete(NfListObject::Table(table()));
        batch.add(NfListObject::Table(table()));
        let objects = self.objects.into_iter();
        let chains = self.chains.into_iter().map(NfListObject::Chain);
        for object in objects.chain(chains).chain(self.rules.into_iter().map(NfListObject::Rule)) {
            batch.add(object);
        }
        batch.to_nftables()
    }

    fn chain(&mut self, name: &str, hook: Option<NfHook>) {
        let base = hook.is_some();
        self.chains.push(Chain {
            family: FAMILY,
            table: TABLE.into(),
            name: name.to_string().into(),
            _type: base.then_some(NfChainType::Filter),
            hook,
            prio: base.then_some(FILTER_PRIORITY),
            policy: base.then_some(NfChainPolicy::Accept),
            ..Chain::default()
        });
    }

    fn rule(&mut self, chain: &str, expr: Stmts) {
        self.rules.push(Rule {
            family: FAMILY,
            table: TABLE.into(),
            chain: chain.to_string().into(),
            expr: Cow::Owned(expr),
            ..Rule::default()
        });
    }

    fn counter(&mut self, name: String) -> Statement<'static> {
        if self.counters.insert(name.clone()) {
            self.objects.push(NfListObject::Counter(Counter {
                family: FAMILY,
                table: TABLE.into(),
                name: name.clone().into(),
                handle: None,
                packets: None,
                bytes: None,
            }));
        }
        Statement::Counter(stmt::Counter::Named(name.into()))
    }

    fn set(&mut self, name: &str, v6: bool, elems: Vec<Expression<'static>>) {
        self.objects.push(NfListObject::Set(Box::new(Set {
            family: FAMILY,
            table: TABLE.into(),
            name: name.to_string().into(),
            set_type: SetTypeValue::Single(if v6 { SetType::Ipv6Addr } else { SetType::Ipv4Addr }),
            flags: Some(HashSet::from([SetFlag::Interval])),
            elem: (!elems.is_empty()).then(|| Cow::Owned(elems)),
            ..Set::default()
        })));
    }

    /// `e<i>-v4` / `e<i>-v6`: the addresses of endpoint i.
    fn address_sets(&mut self, i: usize, addresses: &[IpAddr]) {
        let (v6, v4): (Vec<IpAddr>, Vec<IpAddr>) = addresses.iter().partition(|a| a.is_ipv6());
        self.set(&format!("e{i}-v4"), false, v4.iter().map(|a| string(a.to_string())).collect());
        self.set(&format!("e{i}-v6"), true, v6.iter().map(|a| string(a.to_string())).collect());
    }

    /// `input` or `output`: conntrack, loopback, the bypass list, then each endpoint's traffic
    /// (by its addresses) to its chain of the direction.
    fn base_chain(&mut self, direction: Direction, bypass: &[Bypass], endpoints: usize) {
        let (name, hook, iface, host_field) = match direction {
            Direction::Ingress => ("input", NfHook::Input, MetaKey::Iifname, "daddr"),
            Direction::Egress => ("output", NfHook::Output, MetaKey::Oifname, "saddr"),
        };
        self.chain(name, Some(hook));
        self.rule(name, vec![ct_state(&["established", "related"]), Statement::Accept(None)]);
        self.rule(name, vec![eq(meta(iface), string("lo")), Statement::Accept(None)]);
        for b in bypass.iter().filter(|b| b.direction == direction) {
            self.rule(name, bypass_match(b));
        }
        for b in bypass.iter().filter(|b| b.direction != direction && b.protocol == Protocol::Tcp) {
            self.rule(name, bypass_reply_match(b));
        }
        self.rule(name, vec![ct_state(&["invalid"]), Statement::Drop(None)]);
        for i in 0..endpoints {
            for (family, set) in [("ip", "v4"), ("ip6", "v6")] {
                let chain = format!("e{i}-{}", direction.lower());
                self.rule(name, vec![eq(payload(family, host_field), string(format!("@e{i}-{set}"))), goto(&chain)]);
            }
        }
    }

    fn direction(&mut self, side: &Side, endpoint: &Endpoint, plan: &DirectionPlan) {
        let dir = side.scope.as_str();
        self.chain(dir, None);
        let (admin, baseline) = match plan {
            DirectionPlan::FailClosed { .. } => {
                let counter = self.counter(layer_counter(endpoint, side.direction, "fail-closed"));
                return self.rule(dir, vec![counter, Statement::Drop(None)]);
            }
            DirectionPlan::Layers { admin, baseline } => (admin, baseline),
        };
        let lower = format!("{dir}-baseline");
        for (tier, rules) in admin {
            let chain = format!("{dir}-tier-{}", tier.0);
            self.rule(dir, vec![jump(&chain)]);
            self.chain(&chain, None);
            self.tier(side, &chain, rules, Some(&lower));
        }
        self.rule(dir, vec![goto(&lower)]);
        self.chain(&lower, None);
        // A baseline Pass skips the rest of the baseline: to the default, allowed.
        self.tier(side, &lower, baseline, None);
        self.rule(&lower, vec![Statement::Accept(None)]);
    }

    /// One tier's rules into `chain`, dispatched by port when that pays. `pass` is where Pass
    /// goes: the baseline from an admin tier; `None` in the baseline (to the default, allowed).
    fn tier(&mut self, side: &Side, chain: &str, rules: &[HostRule], pass: Option<&str>) {
        let dispatch = port_dispatch(rules);
        if let Some(d) = &dispatch {
            for (k, members) in d.chains.iter().enumerate() {
                let sub = format!("{chain}-{k}");
                self.chain(&sub, None);
                for &i in members {
                    self.emit(side, &sub, &rules[i], false, pass);
                }
                // The map goes to its chains: one that ends without a verdict returns to the
                // last jump. From an admin tier that is the next tier, as it should be; the
                // baseline, which an admin Pass reaches from inside a tier, must end in its
                // default there, or the passed packet would meet the tiers after the Pass.
                if pass.is_none() {
                    self.rule(&sub, vec![Statement::Accept(None)]);
                }
            }
            // The segments are disjoint, so a port meets at most one entry of the two maps.
            for protocol in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
                for single in [true, false] {
                    let entries: Vec<_> = d
                        .entries
                        .iter()
                        .filter(|e| e.0 == protocol && (e.1 == e.2) == single)
                        .map(|e| vmap_entry(e.1, e.2, &format!("{chain}-{}", e.3)))
                        .collect();
                    if !entries.is_empty() {
                        self.rule(chain, vec![eq(meta(MetaKey::L4proto), string(l4proto(protocol))), port_vmap(entries)]);
                    }
                }
            }
        }
        for rule in rules.iter().filter(|r| dispatch.is_none() || r.services.is_none()) {
            self.emit(side, chain, rule, true, pass);
        }
    }

    /// The nftables rules of one policy rule: one per peer family × service × action line.
    fn emit(&mut self, side: &Side, chain: &str, rule: &HostRule, with_services: bool, pass: Option<&str>) {
        let peers = self.peer_matches(side, rule);
        let services = if with_services { service_matches(rule) } else { vec![Vec::new()] };
        let counter = self.counter(counter_name(&rule.id));
        let actions = action_lines(rule.action, counter, pass);
        for p in &peers {
            for s in &services {
                for a in &actions {
                    self.rule(chain, [p.clone(), s.clone(), a.clone()].concat());
                }
            }
        }
    }

    /// `ip saddr @<set>` (or daddr for egress) per family that has addresses; one empty match
    /// for every address; none when the peers hold no address (the rule matches nothing).
    fn peer_matches(&mut self, side: &Side, rule: &HostRule) -> Vec<Stmts> {
        let key = (side.scope.clone(), rule.id.clone(), rule.part);
        if let Some(m) = self.peers.get(&key) {
            return m.clone();
        }
        let Some(ranges) = &rule.peers else { return vec![Vec::new()] };
        let field = match side.direction {
            Direction::Ingress => "saddr",
            Direction::Egress => "daddr",
        };
        let n = self.peers.len();
        let mut out = Vec::new();
        let v4: Vec<_> = ranges.v4_addrs().map(|(a, b)| range_elem(a.into(), b.into())).collect();
        let v6: Vec<_> = ranges.v6_addrs().map(|(a, b)| range_elem(a.into(), b.into())).collect();
        for (family, v6_set, elems) in [("ip", false, v4), ("ip6", true, v6)] {
            if elems.is_empty() {
                continue;
            }
            let name = format!("{}-peers-{n}-{}", side.scope, if v6_set { "v6" } else { "v4" });
            self.set(&name, v6_set, elems);
            out.push(vec![eq(payload(family, field), string(format!("@{name}")))]);
        }
        self.peers.insert(key, out.clone());
        out
    }
}

/// The verdict statements of a rule, each line ending the evaluation.
fn action_lines(action: Action, counter: Statement<'static>, pass: Option<&str>) -> Vec<Stmts> {
    match action {
        Action::Allow => vec![vec![counter, Statement::Accept(None)]],
        Action::Deny => vec![vec![counter, Statement::Drop(None)]],
        Action::Pass => vec![vec![counter, pass.map_or(Statement::Accept(None), goto)]],
        Action::Reject => vec![
            vec![eq(meta(MetaKey::L4proto), string("tcp")), counter.clone(), reject(RejectType::TCPReset, None)],
            vec![counter, reject(RejectType::ICMPX, Some(RejectCode::PortUnreach))],
        ],
    }
}

fn service_matches(rule: &HostRule) -> Vec<Stmts> {
    let Some(spans) = &rule.services else { return vec![Vec::new()] };
    spans
        .iter()
        .map(|s| vec![eq(meta(MetaKey::L4proto), string(l4proto(s.protocol))), eq(payload("th", "dport"), ports(s.lo, s.hi))])
        .collect()
}

/// `ip saddr CIDR` (or `ip6`, `daddr`): the peer's addresses of a bypass entry in `field`.
fn bypass_peer(b: &Bypass, field: &'static str) -> Statement<'static> {
    let family = if b.peer.is_ipv4() { "ip" } else { "ip6" };
    eq(payload(family, field), prefix(b.peer.network(), b.peer.prefix()))
}

fn bypass_match(b: &Bypass) -> Stmts {
    let field = if b.direction == Direction::Ingress { "saddr" } else { "daddr" };
    vec![
        bypass_peer(b, field),
        eq(meta(MetaKey::L4proto), string(l4proto(b.protocol))),
        // The host's port for ingress, the peer's for egress: the destination port either way.
        eq(payload("th", "dport"), Expression::Number(u32::from(b.port))),
        Statement::Accept(None),
    ]
}

/// The packets of a bypass connection that travel the other way, TCP without SYN only. A
/// connection opened before the table (the agent's own watch of the API server, whose bypass is
/// derived) is picked up by conntrack mid-stream: its first packet seen is `new`, and when that
/// is the peer's it would meet the policy of the other direction and a deny-all would stall the
/// connection. Without SYN no connection can be opened this way.
fn bypass_reply_match(b: &Bypass) -> Stmts {
    let field = if b.direction == Direction::Ingress { "daddr" } else { "saddr" };
    let flags = Expression::BinaryOperation(Box::new(BinaryOperation::AND(payload("tcp", "flags"), Expression::Number(TCP_SYN))));
    vec![
        bypass_peer(b, field),
        // The bypass's port is the connection's destination port: this way, the source.
        eq(payload("tcp", "sport"), Expression::Number(u32::from(b.port))),
        eq(flags, Expression::Number(0)),
        Statement::Accept(None),
    ]
}

/// The SYN bit of the TCP flags.
const TCP_SYN: u32 = 0x02;

/// How a tier's rules split by protocol and destination port: `entries` are disjoint
/// `(protocol, lo, hi, chain)`; `chains[k]` the rules (indices, in order) a packet in those
/// ports can match, rules for every port included.
struct Dispatch {
    entries: Vec<(Protocol, u16, u16, usize)>,
    chains: Vec<Vec<usize>>,
}

fn port_dispatch(rules: &[HostRule]) -> Option<Dispatch> {
    let any: Vec<usize> = (0..rules.len()).filter(|&i| rules[i].services.is_none()).collect();
    let mut chains: Vec<Vec<usize>> = Vec::new();
    let mut entries = Vec::new();
    let mut copies = 0;
    for protocol in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
        for (lo, hi, members) in segments(rules, protocol, &any) {
            copies += members.len();
            let k = chains.iter().position(|c| *c == members).unwrap_or_else(|| {
                chains.push(members);
                chains.len() - 1
            });
            entries.push((protocol, lo, hi, k));
        }
    }
    (!entries.is_empty() && copies <= DISPATCH_LIMIT).then_some(Dispatch { entries, chains })
}

/// The elementary port ranges of `protocol` some rule names, each with the rules matching
/// it (those naming it and those for every port, in rule order); adjacent ranges with the
/// same rules joined.
fn segments(rules: &[HostRule], protocol: Protocol, any: &[usize]) -> Vec<(u16, u16, Vec<usize>)> {
    let spans: Vec<(u32, u32, usize)> = rules
        .iter()
        .enumerate()
        .flat_map(|(i, r)| r.services.iter().flatten().map(move |s| (s, i)))
        .filter(|(s, _)| s.protocol == protocol)
        .map(|(s, i)| (u32::from(s.lo), u32::from(s.hi), i))
        .collect();
    let bounds: BTreeSet<u32> = spans.iter().flat_map(|&(lo, hi, _)| [lo, hi + 1]).collect();
    let bounds: Vec<u32> = bounds.into_iter().collect();
    let mut out: Vec<(u16, u16, Vec<usize>)> = Vec::new();
    for w in bounds.windows(2) {
        let (lo, hi) = (w[0], w[1] - 1);
        let named: BTreeSet<usize> = spans.iter().filter(|s| s.0 <= lo && s.1 >= lo).map(|s| s.2).collect();
        if named.is_empty() {
            continue;
        }
        let members: Vec<usize> = named.into_iter().chain(any.iter().copied()).collect::<BTreeSet<_>>().into_iter().collect();
        match out.last_mut() {
            Some(last) if u32::from(last.1) + 1 == lo && last.2 == members => last.1 = hi as u16,
            _ => out.push((lo as u16, hi as u16, members)),
        }
    }
    out
}

/// `th dport vmap { ... }`: per protocol, a map of single ports (a hash) and one of port ranges
/// (a binary search over intervals). A `meta l4proto . th dport` key, a concatenation with
/// intervals (nftables' pipapo sets), cost 7-11 % of the connection rate at 1,000 entries (`weir
/// bench node-policy`: its bitmap fill the hottest netfilter function); the binary search over
/// 1,000 single ports still cost about 0.6 % (`nft_array_lookup_cmp`, an indirect call per
/// step).
fn port_vmap(entries: Vec<SetItem<'static>>) -> Statement<'static> {
    Statement::VerdictMap(VerdictMap { key: payload("th", "dport"), data: Expression::Named(NamedExpression::Set(entries)) })
}

fn vmap_entry(lo: u16, hi: u16, chain: &str) -> SetItem<'static> {
    SetItem::Mapping(ports(lo, hi), Expression::Verdict(Verdict::Goto(JumpTarget { target: chain.to_string().into() })))
}

fn l4proto(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

fn ports(lo: u16, hi: u16) -> Expression<'static> {
    if lo == hi {
        Expression::Number(u32::from(lo))
    } else {
        Expression::Range(Box::new(Range { range: [Expression::Number(u32::from(lo)), Expression::Number(u32::from(hi))] }))
    }
}

fn range_elem(a: IpAddr, b: IpAddr) -> Expression<'static> {
    if a == b {
        string(a.to_string())
    } else {
        Expression::Range(Box::new(Range { range: [string(a.to_string()), string(b.to_string())] }))
    }
}

fn prefix(addr: IpAddr, len: u8) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix { addr: Box::new(string(addr.to_string())), len: u32::from(len) }))
}

fn string(s: impl Into<String>) -> Expression<'static> {
    Expression::String(Cow::Owned(s.into()))
}

fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(PayloadField { protocol: protocol.into(), field: field.into() })))
}

fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn eq(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(Match { left, right, op: Operator::EQ })
}

fn ct_state(states: &[&'static str]) -> Statement<'static> {
    let ct = Expression::Named(NamedExpression::CT(CT { key: "state".into(), family: None, dir: None }));
    let right = Expression::List(states.iter().map(|s| string(*s)).collect());
    Statement::Match(Match { left: ct, right, op: Operator::IN })
}

fn reject(kind: RejectType, code: Option<RejectCode>) -> Statement<'static> {
    Statement::Reject(Some(Reject::new(Some(kind), code)))
}

fn jump(chain: &str) -> Statement<'static> {
    Statement::Jump(JumpTarget { target: chain.to_string().into() })
}

fn goto(chain: &str) -> Statement<'static> {
    Statement::Goto(JumpTarget { target: chain.to_string().into() })
}
