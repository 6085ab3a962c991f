//! Building flows against the table declaration.
//!
//! Every flow starts from [`Table::flow`]; continuing to another table goes through
//! [`FlowBuilder::goto`] or [`FlowBuilder::ct`], which check that the declaration allows it
//! (as Faucet's `goto()` does), so a wrong continuation fails in tests, not on a live switch.

use crate::cookie::{Category, cookie};
use crate::table::Table;
use openflow::{Action, Ct, CtZone, Flow, Match};
use std::collections::BTreeMap;

/// A flow under construction in one table.
#[derive(Debug, Clone)]
#[must_use]
pub struct FlowBuilder {
    table: Table,
    flow: Flow,
}

impl Table {
    /// Starts a flow of this table.
    pub fn flow(self, priority: u16, matches: Match, category: Category) -> FlowBuilder {
        FlowBuilder { table: self, flow: Flow::new(self.id(), priority, matches).cookie(cookie(category, 0)) }
    }
}

impl FlowBuilder {
    /// Sets the object part of the cookie (a rule's conj_id).
    pub fn object(mut self, object: u32) -> Self {
        self.flow.cookie = (self.flow.cookie & !0xffff_ffff) | u64::from(object);
        self
    }

    /// Appends actions.
    pub fn actions(mut self, actions: impl IntoIterator<Item = Action>) -> Self {
        self.flow = self.flow.actions(actions);
        self
    }

    /// Continues in `next`, which the declaration must allow.
    pub fn goto(mut self, next: Table) -> Self {
        assert!(self.table.may_continue_to(next), "{} may not continue to {next}", self.table);
        self.flow = self.flow.goto(next.id());
        self
    }

    /// Processes the packet in `table` first and comes back (`resubmit(,table)`).
    pub fn resubmit(self, table: Table) -> Self {
        assert!(self.table.may_continue_to(table), "{} may not resubmit to {table}", self.table);
        self.actions([Action::resubmit_table(table.id())])
    }

    /// Sends the packet through conntrack in weir's zone and continues in `next` (with the
    /// connection state known), committing it first if `commit`.
    pub fn ct(self, commit: bool, next: Option<Table>) -> Self {
        if let Some(next) = next {
            assert!(self.table.may_continue_to(next), "{} may not continue to {next}", self.table);
        }
        let ct = Ct {
            commit,
            zone: CtZone::Imm(crate::reg::CT_ZONE),
            table: next.map(Table::id),
            ..Ct::default()
        };
        self.actions([Action::Ct(ct)])
    }

    /// The finished flow. No actions and no goto means drop.
    pub fn build(self) -> Flow {
        self.flow
    }
}

/// Identifies a flow entry on the switch: table, priority and match.
pub type FlowKey = (u8, u16, Match);

/// The key of a flow.
pub fn key(flow: &Flow) -> FlowKey {
    (flow.table_id, flow.priority, flow.matches.clone())
}

/// A set of flows with unique keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowSet {
    flows: BTreeMap<FlowKey, Flow>,
}

impl FlowSet {
    /// Adds a flow. Two different flows with one key are a compiler bug.
    pub fn insert(&mut self, flow: Flow) {
        let k = key(&flow);
        if let Some(old) = self.flows.get(&k) {
            assert_eq!(old, &flow, "two different flows with the same table, priority and match");
            return;
        }
        self.flows.insert(k, flow);
    }

    /// Adds a flow or replaces the one with its key.
    pub fn replace(&mut self, flow: Flow) {
        self.flows.insert(key(&flow), flow);
    }

    /// Removes the flow with this key.
    pub fn remove(&mut self, key: &FlowKey) -> Option<Flow> {
        self.flows.remove(key)
    }

    /// The flow with this key.
    pub fn get(&self, key: &FlowKey) -> Option<&Flow> {
        self.flows.get(key)
    }

    /// All flows, ordered by key.
    pub fn iter(&self) -> impl Iterator<Item = &Flow> {
        self.flows.values()
    }

    /// The map from key to flow.
    pub fn as_map(&self) -> &BTreeMap<FlowKey, Flow> {
        &self.flows
    }

    /// How many flows.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Flow counts per table.
    pub fn counts(&self) -> BTreeMap<Table, usize> {
        let mut counts = BTreeMap::new();
        for f in self.iter() {
            if let Some(t) = Table::from_id(f.table_id) {
                *counts.entry(t).or_default() += 1;
            }
        }
        counts
    }
}

impl FromIterator<Flow> for FlowSet {
    /// Sorts and builds the set at once (a node's 20k flows come mostly in key order, where
    /// inserting one by one searches the tree for each). Two different flows with one key
    /// are a compiler bug, as in [`FlowSet::insert`].
    fn from_iter<I: IntoIterator<Item = Flow>>(iter: I) -> Self {
        let mut flows: Vec<(FlowKey, Flow)> = iter.into_iter().map(|f| (key(&f), f)).collect();
        flows.sort_by(|a, b| a.0.cmp(&b.0));
        flows.dedup_by(|later, first| {
            let same_key = later.0 == first.0;
            if same_key {
                assert_eq!(later.1, first.1, "two different flows with the same table, priority and match");
            }
            same_key
        });
        FlowSet { flows: BTreeMap::from_iter(flows) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "may not continue to")]
    fn goto_outside_the_declaration_panics() {
        let _ = Table::Classifier.flow(1, Match::new(), Category::Pipeline).goto(Table::Output);
    }

    /// A classifier flow going on to SpoofGuard, or dropping.
    fn classifier(priority: u16, on: bool) -> Flow {
        let flow = Table::Classifier.flow(priority, Match::new(), Category::Pipeline);
        if on { flow.goto(Table::SpoofGuard).build() } else { flow.build() }
    }

    #[test]
    fn a_set_collected_in_any_order_keeps_one_of_each_equal_flow() {
        let (a, b) = (classifier(2, true), classifier(1, true));
        let set: FlowSet = [a.clone(), b.clone(), a.clone()].into_iter().collect();
        assert_eq!(set.len(), 2);
        assert_eq!(set, [b, a].into_iter().collect());
    }

    #[test]
    #[should_panic(expected = "two different flows with the same table, priority and match")]
    fn collecting_two_different_flows_with_one_key_panics() {
        let _: FlowSet = [classifier(1, true), classifier(1, false)].into_iter().collect();
    }

    #[test]
    fn declared_goto_is_allowed() {
        let f = Table::Classifier.flow(1, Match::new(), Category::Pipeline).goto(Table::SpoofGuard).build();
        assert_eq!(f.table_id, Table::Classifier.id());
    }
}
