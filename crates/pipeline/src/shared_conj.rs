//! Conjunctions shared by rules.
//!
//! NetworkPolicy rules only allow, so two rules with the same direction, peers and services
//! are one conjunction whose applied-to clause is the union of theirs. Rules share one when
//! their peers come from the same selectors (and blocks) and their services are equal: the
//! key says so before any address is resolved, so the peers of every member change together
//! when a pod comes or goes, and the conjunction is patched once. Sharing is what keeps a
//! pod's first policy on a node cheap: "allow DNS to every pod" in every namespace is one
//! set of peer flows, and a new local pod adds one applied-to flow to it instead of a
//! `conjunction` action to thousands of peer flows.

use crate::conjunction::{ConjIds, Part, PolicyTables, RuleClauses, RuleInfo};
use crate::flow::FlowKey;
use ipnetwork::Ipv4Network;
use policy::RuleId;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A rule part: the rule and which part of it.
pub type Member = (RuleId, u32);

#[derive(Debug, Clone)]
struct Conj {
    key: String,
    clauses: RuleClauses,
    /// Local port → members applied to it.
    applied: BTreeMap<u32, u32>,
    members: BTreeMap<Member, (RuleInfo, Vec<u32>)>,
}

/// Every conjunction of the node, by conj_id and by key.
#[derive(Debug, Clone, Default)]
pub struct SharedConjunctions {
    ids: ConjIds,
    conjs: BTreeMap<u32, Conj>,
    by_key: HashMap<String, u32>,
}

impl SharedConjunctions {
    /// Adds `member` (whose clauses on this node are `clauses`) to the conjunction named
    /// `key`, creating it if needed; returns its conj_id.
    pub fn join(
        &mut self,
        key: String,
        member: Member,
        info: RuleInfo,
        clauses: RuleClauses,
        tables: &mut PolicyTables,
        mut touched: Option<&mut BTreeSet<FlowKey>>,
    ) -> u32 {
        let ofports = clauses.applied().to_vec();
        let id = match self.by_key.get(&key) {
            Some(&id) => id,
            None => {
                let id = self.ids.allocate(&key);
                let clauses = clauses.clone().with_id(id);
                tables.add(clauses.parts(), touched.as_deref_mut());
                let applied = ofports.iter().map(|p| (*p, 0)).collect();
                self.by_key.insert(key.clone(), id);
                self.conjs.insert(id, Conj { key, clauses, applied, members: BTreeMap::new() });
                id
            }
        };
        let conj = self.conjs.get_mut(&id).expect("indexed");
        if !conj.clauses.same_match(&clauses) {
            // Equal keys resolve to equal peers; should they not, the newest resolution wins.
            let want: BTreeSet<Ipv4Network> = clauses.peers().unwrap_or(&[]).iter().copied().collect();
            let have: BTreeSet<Ipv4Network> = conj.clauses.peers().unwrap_or(&[]).iter().copied().collect();
            patch(conj, &(&have - &want), &(&want - &have), tables, touched.as_deref_mut());
        }
        add_member(conj, member, info, ofports, tables, touched);
        id
    }

    /// Adds `member`, applied to local ports `ofports`, to the conjunction named `key` if
    /// there is one (its peers and services are the key's, so nothing needs resolving);
    /// returns its conj_id.
    pub fn join_existing(
        &mut self,
        key: &str,
        member: Member,
        info: RuleInfo,
        ofports: Vec<u32>,
        tables: &mut PolicyTables,
        touched: Option<&mut BTreeSet<FlowKey>>,
    ) -> Option<u32> {
        let id = *self.by_key.get(key)?;
        add_member(self.conjs.get_mut(&id).expect("indexed"), member, info, ofports, tables, touched);
        Some(id)
    }

    /// Takes `member` out of conjunction `id`; the last member out removes its flows.
    pub fn leave(&mut self, id: u32, member: &Member, tables: &mut PolicyTables, mut touched: Option<&mut BTreeSet<FlowKey>>) {
        let Some(conj) = self.conjs.get_mut(&id) else { return };
        let Some((_, ofports)) = conj.members.remove(member) else { return };
        if conj.members.is_empty() {
            tables.remove(conj.clauses.parts(), touched);
            let conj = self.conjs.remove(&id).expect("present");
            self.by_key.remove(&conj.key);
            self.ids.release(id);
            return;
        }
        for p in ofports {
            let n = conj.applied.get_mut(&p).expect("counted on join");
            *n -= 1;
            if *n == 0 {
                conj.applied.remove(&p);
                let parts = conj.clauses.applied_part(p);
                conj.clauses.remove_applied(p);
                tables.remove(parts, touched.as_deref_mut());
            }
        }
    }

    /// The clauses of conjunction `id`.
    pub fn clauses(&self, id: u32) -> Option<&RuleClauses> {
        self.conjs.get(&id).map(|c| &c.clauses)
    }

    /// Whether a conjunction named `key` exists.
    pub fn contains(&self, key: &str) -> bool {
        self.by_key.contains_key(key)
    }

    /// The peers of conjunction `id` (`None`: any peer, or no such conjunction).
    pub fn peers(&self, id: u32) -> Option<&[Ipv4Network]> {
        self.conjs.get(&id)?.clauses.peers()
    }

    /// The policies of the members of conjunction `id`.
    pub fn member_policies(&self, id: u32) -> impl Iterator<Item = &policy::PolicyRef> {
        self.conjs.get(&id).into_iter().flat_map(|c| c.members.values().map(|(info, _)| &info.origin.policy))
    }

    /// Takes `remove` out of and puts `add` into the peers of conjunction `id`.
    pub fn patch_peers(
        &mut self,
        id: u32,
        remove: &BTreeSet<Ipv4Network>,
        add: &BTreeSet<Ipv4Network>,
        tables: &mut PolicyTables,
        touched: Option<&mut BTreeSet<FlowKey>>,
    ) {
        if let Some(conj) = self.conjs.get_mut(&id) {
            patch(conj, remove, add, tables, touched);
        }
    }

    /// What each conj_id stands for: its member rules, in order.
    pub fn rules(&self) -> BTreeMap<u32, Vec<RuleInfo>> {
        self.conjs.iter().map(|(id, c)| (*id, c.members.values().map(|(info, _)| info.clone()).collect())).collect()
    }
}

fn add_member(
    conj: &mut Conj,
    member: Member,
    info: RuleInfo,
    ofports: Vec<u32>,
    tables: &mut PolicyTables,
    mut touched: Option<&mut BTreeSet<FlowKey>>,
) {
    for &p in &ofports {
        *conj.applied.entry(p).or_default() += 1;
        if conj.clauses.insert_applied(p) {
            tables.add(conj.clauses.applied_part(p), touched.as_deref_mut());
        }
    }
    conj.members.insert(member, (info, ofports));
}

fn patch(
    conj: &mut Conj,
    remove: &BTreeSet<Ipv4Network>,
    add: &BTreeSet<Ipv4Network>,
    tables: &mut PolicyTables,
    mut touched: Option<&mut BTreeSet<FlowKey>>,
) {
    let mut gone: Vec<(FlowKey, Part)> = Vec::new();
    for &cidr in remove {
        if conj.clauses.remove_peer(cidr) {
            gone.extend(conj.clauses.peer_part(cidr));
        }
    }
    tables.remove(gone, touched.as_deref_mut());
    let mut new = Vec::new();
    for &cidr in add {
        if conj.clauses.insert_peer(cidr) {
            new.extend(conj.clauses.peer_part(cidr));
        }
    }
    tables.add(new, touched);
}
