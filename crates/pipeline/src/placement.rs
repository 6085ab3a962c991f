//! Where a rule's flows go: its table, its OpenFlow priorities and what a match does, from
//! the rule's tier, priority, action and direction alone.
//!
//! | tier | table (egress / ingress) | a match |
//! |---|---|---|
//! | admin (`tier < NETWORK_POLICY`) | EgressAdmin / IngressAdmin | Allow: on past NetworkPolicy and baseline; Deny: drop; Reject: answered by the agent, dropped; Pass: on to the NetworkPolicy table |
//! | NetworkPolicy | EgressRule / IngressRule | Allow only (isolation drops are EgressDefault's) |
//! | baseline | EgressBaseline / IngressBaseline | Allow: on; Deny: drop; Reject: answered by the agent, dropped; Pass: on, skipping the rest of the tier (the next tier is the default: allow) |
//!
//! # Priorities in the admin and baseline tables
//!
//! A rule's OpenFlow priority is a fixed function of its own `(tier, priority, action)`, so
//! adding, removing or re-prioritizing one policy rewrites that policy's flows and no other's
//! (no re-slotting, unlike Antrea):
//!
//! ```text
//! of_priority = RULE_TOP − 3·slot − rank(action)      rank: Deny, Reject 0 · Pass 1 · Allow 2
//! (policy, index) = policy::cluster_policy::order_parts(priority)   the rule's policy priority and index
//! fold(p, n)      = min(p, n/16 − 1)·16 + min(index, 15)
//! slot (admin)    = fold(policy, 16384)                                  for Tier::ADMIN
//!                 = 16384 + (band − 1)·256 + fold(policy / 1000, 256)    for ADMIN_TIERED_BASE + t,
//!                   band = 1 + t·20/256   (t ≤ 255: bands 1..=20; Antrea's float priority's integral part)
//! slot (baseline) = fold(policy, 21504)
//! ```
//! `RULE_TOP` is 64,600, so rules span 89..=64,600, under the tables' fixed flows (65,000)
//! and above their misses (0). `priority` is the rule's order within its tier, as the oracle
//! reads it: the policy's priority and the rule's index, which the slot folds into 16 slots
//! per policy priority (AdminNetworkPolicy's 0..=1000 then fits Tier::ADMIN's 16,384 slots).
//!
//! The fixed mapping is lossy: a policy's rules past the 16th of a direction, policy
//! priorities past 1,023 (Antrea's tiers: past 15, and their fractions; baseline: 1,343), and
//! Antrea tiers less than 13 apart sharing a band (ordered by policy priority alone).
//!
//! # Ranked slots, when the fixed mapping would misorder
//!
//! [`Slots::of`] checks the fixed mapping against the admin and baseline rules present: if
//! it is strictly increasing over their distinct `(tier, priority)` in evaluation order, it is
//! used. Otherwise (Antrea priorities 20 and 30, or 2.25 and 2.5; tiers 45 and 50) each table's
//! distinct `(tier, policy priority)` are ranked in evaluation order and a rule's slot is
//! `rank·16 + min(index, 15)`: exact for up to 1,344 distinct policy priorities per table.
//! Ranks move when a priority appears or goes, so then every admin and baseline policy is
//! recompiled (the node compiler compares the [`Slots`]); the fixed mode moves no other
//! policy's flows.
//!
//! Collision rule. Distinct slots keep the oracle's order exactly. Two rules share a slot
//! only if they have equal `(tier, priority)` — rules of different policies at one priority,
//! which AdminNetworkPolicy and ClusterNetworkPolicy leave undefined — or past the ranked
//! mapping's capacity (a policy's 17th rule of a direction). Within a slot the action breaks
//! the tie (Deny and Reject before Pass before Allow), so one OpenFlow priority only ever holds
//! rules of one rank, whose conjunctions all do the same thing when they complete: whichever
//! OVS picks among several completing at one priority, the verdict is the same.
//! [`order_conflicts`] names the rules the mapping would misorder, so the input can be
//! reported instead of silently enforced in the wrong order.
//!
//! # Established connections
//!
//! ConntrackCommit commits a new connection once policy allowed it, and later packets are
//! `+est`. Replies skip all policy (reg0 reply bit); the NetworkPolicy and baseline tables let
//! established packets pass as before. Established packets in the original direction still
//! meet the admin tables: their 5-tuple is the one the connection was decided on, so checking
//! them is exactly "would the admin tiers allow this connection now". A Deny added after a
//! connection began therefore drops its next packet, and a new connection of an already
//! committed 5-tuple (UDP within conntrack's timeout) is stopped too. This was preferred to a
//! ct_mark generation, which would have to re-run every tier (changing NetworkPolicy's
//! established-connection behaviour) and rewrite a fixed flow on every admin change.

use crate::table::Table;
use openflow::Match;
use policy::{Action, Direction, Rule, Tier};

/// The highest OpenFlow priority a tiered rule gets.
pub const RULE_TOP: u16 = 64_600;
/// Priority of the fixed flows at the top of the admin tables (the reply bypass).
pub const FIXED: u16 = 65_000;
/// Slots of Tier::ADMIN (AdminNetworkPolicy, ClusterNetworkPolicy's Admin tier).
const ADMIN_SLOTS: u32 = 16_384;
/// Slots per band of the tiered ClusterNetworkPolicy tiers.
const BAND_SLOTS: u32 = 256;
/// Bands of the tiered tiers, after Tier::ADMIN's slots.
const TIERED_BANDS: u32 = 20;
/// Every slot: `3·(SLOTS − 1) + 2` must stay below `RULE_TOP`.
const SLOTS: u32 = ADMIN_SLOTS + TIERED_BANDS * BAND_SLOTS;

/// Priorities in the NetworkPolicy tables.
pub mod network_policy {
    /// Clause flows and the `conj_id` action flow.
    pub const CONJUNCTION: u16 = 200;
    /// Rules with a single clause (no conjunction needed).
    pub const DIRECT: u16 = 205;
    /// Isolation drops in the default tables.
    pub const ISOLATION: u16 = 200;
}

/// What a packet matching a rule gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// Processing continues in this table.
    Continue(Table),
    /// The packet is dropped; from a Reject rule, it goes to the agent, which answers the
    /// client ([`crate::reject`]).
    Drop {
        /// From a Reject rule.
        reject: bool,
    },
}

/// A rule's table, priorities and verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Placement {
    /// Direction, from the applied-to endpoint's side.
    pub direction: Direction,
    /// The table of its flows.
    pub table: Table,
    /// Priority of its clause and `conj_id` flows.
    pub conjunction: u16,
    /// Priority of its flows when it has a single clause.
    pub direct: u16,
    /// What a match does.
    pub verdict: Verdict,
}

/// The packets of a connection one verdict flow of a rule decides. The admin tables see every
/// packet of a connection in its original direction (see "Established connections" above), so
/// each verdict flow there is two: one for the connection's first packets (reg0's
/// established bit clear), one for the rest, and the first one's counters are the rule's new
/// connections; an audit-logged rule sends only those to the agent. The NetworkPolicy and
/// baseline tables never see established packets (the NetworkPolicy tables pass them on
/// first), so their one verdict flow sees only new connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Conn {
    /// Every packet that reaches the table (which sees only new connections).
    All,
    /// Packets of connections not yet established.
    New,
    /// Packets of established connections (original direction).
    Established,
}

impl Conn {
    /// The verdict flows a rule has per match in `table`.
    pub fn of_table(table: Table) -> &'static [Conn] {
        if sees_established(table) { &[Conn::New, Conn::Established] } else { &[Conn::All] }
    }

    /// `m` restricted to these packets.
    pub fn restrict(self, m: Match) -> Match {
        match self {
            Conn::All => m,
            Conn::New => crate::reg::ESTABLISHED.matches(m, 0),
            Conn::Established => crate::reg::ESTABLISHED.matches(m, 1),
        }
    }

    /// Which packets a verdict flow of the policy tables decides, from its match.
    pub fn of_flow(flow: &openflow::Flow) -> Conn {
        let Some(table) = Table::from_id(flow.table_id) else { return Conn::All };
        if !sees_established(table) {
            return Conn::All;
        }
        match crate::reg::ESTABLISHED.value_in(&flow.matches) {
            0 => Conn::New,
            _ => Conn::Established,
        }
    }
}

/// Whether `table` holds rules that see established packets: the admin tables.
pub fn sees_established(table: Table) -> bool {
    [Direction::Egress, Direction::Ingress].iter().any(|d| layers(*d).0[0] == table)
}

/// The three policy layers of a direction: (admin, NetworkPolicy, baseline) tables, and where
/// an allowed packet continues.
fn layers(direction: Direction) -> ([Table; 3], Table) {
    match direction {
        Direction::Egress => ([Table::EgressAdmin, Table::EgressRule, Table::EgressBaseline], Table::L3Forwarding),
        Direction::Ingress => ([Table::IngressAdmin, Table::IngressRule, Table::IngressBaseline], Table::ConntrackCommit),
    }
}

/// The table isolation drops of `direction` live in.
pub fn isolation_table(direction: Direction) -> Table {
    match direction {
        Direction::Egress => Table::EgressDefault,
        Direction::Ingress => Table::IngressDefault,
    }
}

/// Whether `table` holds admin or baseline rules.
pub fn is_tiered(table: Table) -> bool {
    [Direction::Egress, Direction::Ingress].iter().any(|d| {
        let ([admin, _, baseline], _) = layers(*d);
        table == admin || table == baseline
    })
}

impl Placement {
    /// Where `rule` goes, or `None` if it can never decide anything (a non-Allow
    /// NetworkPolicy rule).
    pub fn of(rule: &Rule) -> Option<Placement> {
        Placement::new(rule.direction, rule.tier, rule.priority, rule.action)
    }

    /// Where a rule of this direction, tier, priority and action goes, by the fixed mapping.
    pub fn new(direction: Direction, tier: Tier, priority: u32, action: Action) -> Option<Placement> {
        Placement::in_slots(direction, tier, priority, action, &Slots::default())
    }

    /// Where a rule of this direction, tier, priority and action goes among the admin and
    /// baseline rules `slots` was made of.
    pub fn in_slots(direction: Direction, tier: Tier, priority: u32, action: Action, slots: &Slots) -> Option<Placement> {
        let ([admin, network_policy, baseline], allowed) = layers(direction);
        let verdict = match action {
            Action::Allow => Verdict::Continue(allowed),
            Action::Deny => Verdict::Drop { reject: false },
            Action::Reject => Verdict::Drop { reject: true },
            Action::Pass if tier < Tier::NETWORK_POLICY => Verdict::Continue(network_policy),
            // "Pass skips the rest of its tier": after the Baseline tier comes the default.
            Action::Pass => Verdict::Continue(allowed),
        };
        if tier == Tier::NETWORK_POLICY {
            return (action == Action::Allow).then_some(Placement {
                direction,
                table: network_policy,
                conjunction: network_policy::CONJUNCTION,
                direct: network_policy::DIRECT,
                verdict,
            });
        }
        let table = if tier < Tier::NETWORK_POLICY { admin } else { baseline };
        let of = of_priority(slots.slot(tier, priority), action);
        Some(Placement { direction, table, conjunction: of, direct: of, verdict })
    }
}

/// The slots of the admin and baseline rules: the fixed mapping, or ranks when it would
/// misorder the rules present (see the module doc).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slots {
    /// The rank of each `(baseline table, tier, policy priority)`, in ranked mode.
    ranks: Option<std::collections::BTreeMap<(bool, Tier, u32), u32>>,
}

impl Slots {
    /// The slots for `rules` (NetworkPolicy rules are ignored). A policy's rules past the 16th
    /// of a direction share a slot either way, so they do not call for ranks.
    pub fn of<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> Slots {
        let within_slots = |priority: u32| {
            let (policy, index) = policy::cluster_policy::order_parts(priority);
            policy * policy::cluster_policy::MAX_RULES + index.min(RULE_SLOTS - 1)
        };
        let keys: std::collections::BTreeSet<(bool, Tier, u32)> = rules
            .into_iter()
            .filter(|r| r.tier != Tier::NETWORK_POLICY)
            .map(|r| (r.tier > Tier::NETWORK_POLICY, r.tier, within_slots(r.priority)))
            .collect();
        let misordered = keys.iter().zip(keys.iter().skip(1)).any(|(a, b)| a.0 == b.0 && slot(a.1, a.2) >= slot(b.1, b.2));
        if !misordered {
            return Slots::default();
        }
        // Keys come in evaluation order, a table's together: ranks count up per table.
        let (mut ranks, mut next) = (std::collections::BTreeMap::new(), [0u32; 2]);
        for (baseline, tier, priority) in keys {
            let key = (baseline, tier, policy::cluster_policy::order_parts(priority).0);
            if let std::collections::btree_map::Entry::Vacant(e) = ranks.entry(key) {
                e.insert(next[usize::from(baseline)]);
                next[usize::from(baseline)] += 1;
            }
        }
        Slots { ranks: Some(ranks) }
    }

    /// Whether the ranks are in use (the fixed mapping would misorder the rules).
    pub fn ranked(&self) -> bool {
        self.ranks.is_some()
    }

    /// The slot of a rule of the admin or baseline tier.
    fn slot(&self, tier: Tier, priority: u32) -> u32 {
        let (policy, index) = policy::cluster_policy::order_parts(priority);
        let rank = self.ranks.as_ref().and_then(|r| r.get(&(tier > Tier::NETWORK_POLICY, tier, policy)).copied());
        match rank {
            Some(rank) => rank.min(SLOTS / RULE_SLOTS - 1) * RULE_SLOTS + index.min(RULE_SLOTS - 1),
            None => slot(tier, priority),
        }
    }
}

/// The slot of a rule of the admin or baseline tier (see the module doc).
fn slot(tier: Tier, priority: u32) -> u32 {
    let (policy, index) = policy::cluster_policy::order_parts(priority);
    let fold = |policy: u32, slots: u32| (policy.min(slots / RULE_SLOTS - 1)) * RULE_SLOTS + index.min(RULE_SLOTS - 1);
    if tier > Tier::NETWORK_POLICY {
        return fold(policy, SLOTS);
    }
    match tier.0.checked_sub(Tier::ADMIN_TIERED_BASE.0) {
        None => fold(policy, ADMIN_SLOTS),
        // Antrea's priorities are floats scaled by 1000: their integral part orders policies.
        Some(t) => {
            let antrea = policy / policy::cluster_policy::ANTREA_PRIORITY_SCALE as u32;
            ADMIN_SLOTS + t.min(255) * TIERED_BANDS / 256 * BAND_SLOTS + fold(antrea, BAND_SLOTS)
        }
    }
}

/// Slots per policy priority: a policy's first 16 rules of a direction keep their order.
const RULE_SLOTS: u32 = 16;

/// The order of actions at one slot: Deny and Reject (0) before Pass (1) before Allow (2).
/// Whoever lists rules in the switch's order (a test's oracle input) sorts ties by it.
pub fn action_rank(action: Action) -> u32 {
    action.tie_rank()
}

fn of_priority(slot: u32, action: Action) -> u16 {
    (u32::from(RULE_TOP) - 3 * slot - action_rank(action)) as u16
}

/// Two rules a lossy slot would enforce out of the oracle's order: `first` comes before
/// `second` in `(tier, priority)` but both got one slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderConflict {
    /// The rule that should be consulted first.
    pub first: policy::RuleId,
    /// The rule that should come after it.
    pub second: policy::RuleId,
}

/// The pairs of rules (one per conflicting slot and direction) whose order `slots` loses:
/// equal slot, different `(tier, priority)`. Empty for input inside the ranges of the module
/// doc.
pub fn order_conflicts<'a>(rules: impl IntoIterator<Item = &'a Rule>, slots: &Slots) -> Vec<OrderConflict> {
    use std::collections::BTreeMap;
    let mut by_slot: BTreeMap<(Direction, bool, u32), Vec<&Rule>> = BTreeMap::new();
    for r in rules.into_iter().filter(|r| r.tier != Tier::NETWORK_POLICY) {
        by_slot.entry((r.direction, r.tier > Tier::NETWORK_POLICY, slots.slot(r.tier, r.priority))).or_default().push(r);
    }
    let mut out = Vec::new();
    for rules in by_slot.values_mut() {
        rules.sort_by(|a, b| (a.tier, a.priority, &a.id).cmp(&(b.tier, b.priority, &b.id)));
        let (first, last) = (rules[0], rules[rules.len() - 1]);
        if (first.tier, first.priority) != (last.tier, last.priority) {
            out.push(OrderConflict { first: first.id.clone(), second: last.id.clone() });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prio(tier: Tier, priority: u32, action: Action) -> u16 {
        Placement::new(Direction::Egress, tier, priority, action).expect("placed").conjunction
    }

    #[test]
    fn lower_priority_numbers_get_higher_openflow_priorities() {
        assert!(prio(Tier::ADMIN, 3, Action::Allow) > prio(Tier::ADMIN, 4, Action::Deny));
        assert!(prio(Tier::BASELINE, 0, Action::Allow) > prio(Tier::BASELINE, 1, Action::Deny));
    }

    #[test]
    fn anp_tier_comes_before_every_tiered_tier() {
        let last_anp = prio(Tier::ADMIN, 16_383, Action::Allow);
        let first_tiered = prio(Tier(Tier::ADMIN_TIERED_BASE.0), 0, Action::Deny);
        assert!(last_anp > first_tiered);
        for t in [50, 100, 150, 200] {
            let tier = Tier(Tier::ADMIN_TIERED_BASE.0 + t);
            let next = Tier(Tier::ADMIN_TIERED_BASE.0 + t + 50);
            assert!(prio(tier, 255, Action::Allow) > prio(next, 0, Action::Deny), "tier {t}");
        }
    }

    #[test]
    fn equal_priorities_order_deny_then_pass_then_allow() {
        let deny = prio(Tier::ADMIN, 7, Action::Deny);
        assert_eq!(deny, prio(Tier::ADMIN, 7, Action::Reject));
        assert_eq!(deny - 1, prio(Tier::ADMIN, 7, Action::Pass));
        assert_eq!(deny - 2, prio(Tier::ADMIN, 7, Action::Allow));
        assert!(deny - 2 > prio(Tier::ADMIN, 8, Action::Deny));
    }

    #[test]
    fn every_rule_priority_lies_between_the_fixed_flows_and_the_miss() {
        let lowest = of_priority(SLOTS - 1, Action::Allow);
        assert!(lowest > 0 && RULE_TOP < FIXED);
        assert_eq!(prio(Tier(Tier::ADMIN_TIERED_BASE.0 + 255), u32::MAX, Action::Allow), lowest);
    }

    #[test]
    fn a_baseline_pass_ends_the_tier_like_an_allow_and_network_policy_deny_decides_nothing() {
        let pass = Placement::new(Direction::Ingress, Tier::BASELINE, 0, Action::Pass).expect("placed");
        let allow = Placement::new(Direction::Ingress, Tier::BASELINE, 0, Action::Allow).expect("placed");
        assert_eq!(pass.verdict, allow.verdict);
        assert_eq!(Placement::new(Direction::Ingress, Tier::NETWORK_POLICY, 0, Action::Deny), None);
    }

    /// An egress rule at Antrea tier priority `t` (or `None`: Tier::ADMIN), policy priority
    /// `policy` (Antrea's float, or an AdminNetworkPolicy's integer), rule `index`.
    fn rule(t: Option<u32>, policy: f64, index: u32, action: Action) -> Rule {
        let (tier, scale) = match t {
            Some(t) => (Tier(Tier::ADMIN_TIERED_BASE.0 + t), policy::cluster_policy::ANTREA_PRIORITY_SCALE),
            None => (Tier::ADMIN, 1.0),
        };
        let name = format!("p{t:?}-{policy}-{index}");
        Rule {
            id: policy::RuleId(name.clone()),
            origin: policy::Origin {
                policy: policy::PolicyRef { kind: policy::PolicyKind::AntreaClusterNetworkPolicy, namespace: None, name },
                rule: format!("egress[{index}]"),
            },
            direction: Direction::Egress,
            tier,
            priority: (policy * scale) as u32 * policy::cluster_policy::MAX_RULES + index,
            action,
            applied_to: Default::default(),
            peers: policy::Peers::Any,
            services: policy::Services::Any,
            audit: None,
        }
    }

    fn of_priority_in(r: &Rule, slots: &Slots) -> u16 {
        Placement::in_slots(r.direction, r.tier, r.priority, r.action, slots).expect("placed").conjunction
    }

    #[test]
    fn rules_the_fixed_mapping_keeps_in_order_keep_it() {
        let rules = [rule(None, 1.0, 0, Action::Deny), rule(None, 900.0, 3, Action::Allow), rule(Some(100), 5.0, 0, Action::Allow)];
        let slots = Slots::of(&rules);
        assert!(!slots.ranked());
        for r in &rules {
            assert_eq!(of_priority_in(r, &slots), Placement::of(r).unwrap().conjunction, "{}", r.id);
        }
    }

    #[test]
    fn antrea_priorities_past_fifteen_or_with_fractions_are_ranked_in_order() {
        for (first, second) in [(20.0, 30.0), (2.25, 2.5), (1000.0, 1000.5)] {
            let (allow, drop) = (rule(Some(100), first, 0, Action::Allow), rule(Some(100), second, 0, Action::Deny));
            assert!(Placement::of(&allow).unwrap().conjunction <= Placement::of(&drop).unwrap().conjunction, "fixed: lost");
            let slots = Slots::of([&allow, &drop]);
            assert!(slots.ranked());
            assert!(of_priority_in(&allow, &slots) > of_priority_in(&drop, &slots), "{first} before {second}");
            assert!(order_conflicts([&allow, &drop], &slots).is_empty());
            assert!(!order_conflicts([&allow, &drop], &Slots::default()).is_empty(), "the fixed mapping reports its loss");
        }
    }

    #[test]
    fn a_policy_past_sixteen_rules_does_not_call_for_ranks() {
        let rules: Vec<Rule> = (0..20).map(|i| rule(None, 1.0, i, Action::Allow)).chain([rule(None, 2.0, 0, Action::Deny)]).collect();
        assert!(!Slots::of(&rules).ranked(), "its 17th rule and after share a slot either way");
    }

    #[test]
    fn a_tier_before_another_in_its_band_comes_first_whatever_the_policy_priorities() {
        let (guard, emergency) = (rule(Some(45), 9.0, 0, Action::Deny), rule(Some(50), 1.0, 0, Action::Allow));
        assert!(Placement::of(&guard).unwrap().conjunction < Placement::of(&emergency).unwrap().conjunction, "fixed: one band");
        let slots = Slots::of([&guard, &emergency]);
        assert!(of_priority_in(&guard, &slots) > of_priority_in(&emergency, &slots));
        // The rules of a policy keep their order, and AdminNetworkPolicy's tier comes first.
        let (anp, second_rule) = (rule(None, 999.0, 0, Action::Allow), rule(Some(45), 9.0, 1, Action::Allow));
        let slots = Slots::of([&guard, &emergency, &anp, &second_rule]);
        let order: Vec<u16> = [&anp, &guard, &second_rule, &emergency].iter().map(|r| of_priority_in(r, &slots)).collect();
        assert!(order.windows(2).all(|w| w[0] > w[1]), "{order:?}");
    }

    #[test]
    fn admin_pass_continues_in_the_network_policy_table() {
        let p = Placement::new(Direction::Ingress, Tier::ADMIN, 0, Action::Pass).expect("placed");
        assert_eq!((p.table, p.verdict), (Table::IngressAdmin, Verdict::Continue(Table::IngressRule)));
    }
}
