//! Patching a cluster policy's peers in place. A pod joining or leaving the pods a rule's
//! peers select (a new pod in a namespace an "all namespaces" peer selects, say) changes that
//! rule and nothing else; instead of recompiling the policy, the peer clause of each of the
//! rule's conjunctions gains or loses the pod's address flows, as NetworkPolicy rules' do.

use super::{NodeCompiler, Source};
use crate::conjunction::RuleClauses;
use crate::flow::FlowKey;
use ipnetwork::Ipv4Network;
use policy::{Cluster, Peers, PolicyRef, Rule, RuleSet};
use std::collections::BTreeSet;

impl NodeCompiler {
    /// Brings `policy` from its stored rules to `rules` by patching peer clauses, when the
    /// two differ only in their rules' pod peers and every part of each changed rule keeps
    /// its conjunction with non-empty peers. Whether it did (else the policy must be
    /// recompiled; nothing was changed).
    pub(super) fn patch_tiered_peers(&mut self, cluster: &Cluster, policy: &PolicyRef, rules: &[Rule]) -> bool {
        let Some(old) = self.tiered.get(policy) else { return false };
        let only_peers = old.len() == rules.len()
            && old.iter().zip(rules).all(|(a, b)| Rule { peers: b.peers.clone(), ..a.clone() } == *b && pods_only(&a.peers, &b.peers));
        if !only_peers {
            return false;
        }
        let changed: Vec<Rule> = old.iter().zip(rules).filter(|(a, b)| a.peers != b.peers).map(|(_, b)| b.clone()).collect();
        let Some(patches) = self.peer_patches(cluster, policy, changed) else { return false };
        let mut touched = BTreeSet::new();
        for (id, remove, add) in patches {
            self.conjs.patch_peers(id, &remove, &add, &mut self.tables, Some(&mut touched));
        }
        self.tiered.insert(policy.clone(), rules.to_vec());
        self.refresh_keys(touched);
        true
    }

    /// Per conjunction of the changed rules' local parts: the peer addresses to remove and to
    /// add; `None` when a part would not keep its conjunction (it has none, its clauses change
    /// beyond the peers, or its peers become empty).
    #[allow(clippy::type_complexity)]
    fn peer_patches(
        &self,
        cluster: &Cluster,
        policy: &PolicyRef,
        changed: Vec<Rule>,
    ) -> Option<Vec<(u32, BTreeSet<Ipv4Network>, BTreeSet<Ipv4Network>)>> {
        let contribution = self.contributions.get(&Source::Tiered(policy.clone()));
        let ids: Vec<(crate::shared_conj::Member, u32)> = contribution.map(|c| c.rules.clone()).unwrap_or_default();
        let local: Vec<Rule> = changed.into_iter().filter(|r| r.applied_to.iter().any(|e| self.topo.is_local(e))).collect();
        let changed_ids: BTreeSet<&policy::RuleId> = local.iter().map(|r| &r.id).collect();
        let mut out = Vec::new();
        let mut seen = 0;
        for part in (RuleSet { rules: local.clone(), ..RuleSet::default() }).concrete(cluster) {
            let want = RuleClauses::in_slots(&part, &self.topo, &self.slots)?;
            let id = ids.iter().find(|((r, p), _)| *r == part.rule && *p == part.part).map(|(_, id)| *id)?;
            let have = self.conjs.clauses(id)?;
            if want.match_name_without_peers() != have.match_name_without_peers() || want.applied() != have.applied() {
                return None;
            }
            let (want, have): (BTreeSet<Ipv4Network>, BTreeSet<Ipv4Network>) =
                (want.peers()?.iter().copied().collect(), have.peers()?.iter().copied().collect());
            out.push((id, &have - &want, &want - &have));
            seen += 1;
        }
        // Every part the changed rules had must still be there.
        let before = ids.iter().filter(|((r, _), _)| changed_ids.contains(r)).count();
        (seen == before).then_some(out)
    }

    /// Brings the desired flows of `touched` keys up to the tables, and notes them changed.
    fn refresh_keys(&mut self, touched: BTreeSet<FlowKey>) {
        for k in &touched {
            match self.tables.flow(k).or_else(|| self.fixed.get(k).cloned()) {
                Some(f) => self.desired.replace(f),
                None => {
                    self.desired.remove(k);
                }
            }
        }
        self.changed.extend(touched);
    }
}

/// Whether both peer sets are pod sets with the same address blocks (only pods differ).
fn pods_only(a: &Peers, b: &Peers) -> bool {
    match (a, b) {
        (Peers::Set { blocks: x, .. }, Peers::Set { blocks: y, .. }) => x == y,
        _ => false,
    }
}
