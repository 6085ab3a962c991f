//! A NetworkPolicy resolved for one node: which local ports it applies to and each rule
//! part's conjunction, computed from the cluster and the topology alone (not the compiler's
//! state), so that a compile from scratch resolves policies on every core and then joins
//! their parts in policy order, exactly as one thread would.

use crate::conjunction::{RuleClauses, RuleInfo};
use crate::shared_conj::Member;
use crate::topology::Topology;
use policy::concrete::numeric_services;
use policy::{Cluster, ConcreteServices, Direction, NetworkPolicy, RuleId};
use std::collections::{BTreeSet, HashSet};

/// One rule part, ready to join its conjunction.
#[derive(Debug)]
pub(crate) enum Part {
    /// Joins the conjunction `key`, which exists when the resolution is applied, with the
    /// local ports `ofports` (nothing resolved).
    Shared { member: Member, info: RuleInfo, key: String, ofports: Vec<u32> },
    /// Resolved in full: creates the conjunction `key` or joins it.
    Resolved { member: Member, info: RuleInfo, key: String, clauses: RuleClauses },
}

/// What a policy contributes on a node, before it joins the compiler's conjunctions.
#[derive(Debug)]
pub(crate) struct Resolution {
    /// The rule parts in the order they join: shared parts, then resolved ones.
    pub parts: Vec<Part>,
    /// Rules some part of which compiled to nothing.
    pub incomplete: BTreeSet<RuleId>,
    /// The local ports the policy isolates, by direction.
    pub isolation: Vec<(Direction, u32)>,
}

/// Resolves `policy` for the node of `topo`; `known(key)` says whether conjunction `key` will
/// exist when the resolution is applied: a rule whose every part has one joins it without
/// selecting its peers, the expensive part. `None` if the policy applies to no local pod.
pub(crate) fn resolve_policy(
    cluster: &Cluster,
    topo: &Topology,
    policy: &NetworkPolicy,
    known: impl Fn(&str) -> bool,
) -> Option<Resolution> {
    // The node's pods of the namespace, not the cluster's: most policies apply to none here.
    let mut applied: Vec<u32> = topo
        .local_pods_in(&policy.namespace)
        .filter(|(key, _)| cluster.pod(key).is_some_and(|p| !p.host_network && policy.pod_selector.matches(&p.labels)))
        .map(|(_, local)| local.ofport)
        .collect();
    if applied.is_empty() {
        return None;
    }
    applied.sort_unstable();
    let isolation = policy.policy_types.iter().flat_map(|d| applied.iter().map(move |p| (*d, *p))).collect();
    let mut parts = Vec::new();
    let mut shared: BTreeSet<(Direction, usize)> = BTreeSet::new();
    for &direction in &policy.policy_types {
        for i in 0..policy.rules(direction).len() {
            let Some(found) = shared_parts(cluster, topo, policy, direction, i, &applied, &known) else {
                continue;
            };
            let id = policy.rule_id(direction, i);
            for (part, key, ofports) in found {
                let info = RuleInfo {
                    rule: id.clone(),
                    part,
                    origin: policy.rule_origin(direction, i),
                    direction,
                    action: policy::Action::Allow,
                    audit: None,
                };
                parts.push(Part::Shared { member: (id.clone(), part), info, key, ofports });
            }
            shared.insert((direction, i));
        }
    }
    let mut incomplete = BTreeSet::new();
    if shared.len() < policy.policy_types.iter().map(|d| policy.rules(*d).len()).sum::<usize>() {
        for rule in cluster.policy_rules_where(policy, |d, i| !shared.contains(&(d, i))).concrete(cluster) {
            let Some(clauses) = RuleClauses::new(&rule, topo) else {
                incomplete.insert(rule.rule);
                continue;
            };
            let (direction, index) = position(policy, &rule.rule);
            let key = conj_key(policy, direction, index, rule.part, &rule.services);
            let member = (rule.rule.clone(), rule.part);
            let info = RuleInfo::of(&rule);
            parts.push(Part::Resolved { member, info, key, clauses });
        }
    }
    Some(Resolution { parts, incomplete, isolation })
}

/// Resolves `policies` (in this order) on up to `threads` threads. Each thread takes every
/// n-th policy and knows the conjunctions its own earlier policies create, which exist when
/// the resolutions are applied in order (one thread's later policy never comes first).
pub(crate) fn resolve_policies(cluster: &Cluster, topo: &Topology, policies: &[&NetworkPolicy], threads: usize) -> Vec<Option<Resolution>> {
    let threads = threads.clamp(1, policies.len().max(1));
    let resolve_every_nth = |first: usize| {
        let mut created: HashSet<String> = HashSet::new();
        let mut out = Vec::new();
        for (i, policy) in policies.iter().enumerate().skip(first).step_by(threads) {
            let r = resolve_policy(cluster, topo, policy, |key| created.contains(key));
            if let Some(r) = &r {
                created.extend(r.parts.iter().filter_map(|p| match p {
                    Part::Resolved { key, .. } => Some(key.clone()),
                    Part::Shared { .. } => None,
                }));
            }
            out.push((i, r));
        }
        out
    };
    let mut resolved: Vec<(usize, Option<Resolution>)> = if threads == 1 {
        resolve_every_nth(0)
    } else {
        std::thread::scope(|scope| {
            let workers: Vec<_> = (1..threads).map(|first| scope.spawn(move || resolve_every_nth(first))).collect();
            let mut all = resolve_every_nth(0);
            for w in workers {
                all.extend(w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
            }
            all
        })
    };
    resolved.sort_unstable_by_key(|(i, _)| *i);
    resolved.into_iter().map(|(_, r)| r).collect()
}

/// The parts of rule `index` of `direction` as (part, conjunction key, local ports) when
/// every part can join an existing conjunction without resolving its peers: a rule with
/// numeric ports has one part applied to the policy's local ports (`applied`); an ingress
/// rule with named ports has parts by how its local pods resolve them. `None` otherwise
/// (egress named ports resolve on the peers; a part without local ports or without its
/// conjunction needs the full compile).
fn shared_parts(
    cluster: &Cluster,
    topo: &Topology,
    policy: &NetworkPolicy,
    direction: Direction,
    index: usize,
    applied: &[u32],
    known: impl Fn(&str) -> bool,
) -> Option<Vec<(u32, String, Vec<u32>)>> {
    let parts = match numeric_services(policy.rules(direction)[index].ports.as_deref()) {
        Some(services) => vec![(0, conj_key(policy, direction, index, 0, &services), applied.to_vec())],
        None if direction == Direction::Ingress => {
            let shapes = cluster.policy_rule_shapes_where(policy, |d, i| (d, i) == (direction, index));
            shapes
                .concrete(cluster)
                .into_iter()
                .map(|part| {
                    let ofports = topo.local_ofports(&part.applied_to);
                    (part.part, conj_key(policy, direction, index, part.part, &part.services), ofports)
                })
                .collect()
        }
        None => return None,
    };
    let joinable = !parts.is_empty() && parts.iter().all(|(_, key, ofports)| !ofports.is_empty() && known(key));
    joinable.then_some(parts)
}

/// Direction and index of one of `policy`'s rules.
fn position(policy: &NetworkPolicy, rule: &RuleId) -> (Direction, usize) {
    [Direction::Ingress, Direction::Egress]
        .into_iter()
        .find_map(|d| (0..policy.rules(d).len()).find(|i| policy.rule_id(d, *i) == *rule).map(|i| (d, i)))
        .expect("concrete rules come from the policy's rules")
}

/// The name of the conjunction a rule part joins: direction, where its peers come from
/// (selectors and blocks, before resolving) and its services. Egress parts for named ports
/// take their peers from where the ports resolve, so they are not shared.
fn conj_key(policy: &NetworkPolicy, direction: Direction, index: usize, part: u32, services: &ConcreteServices) -> String {
    if direction == Direction::Egress && part > 0 {
        return format!("{}#{part}", policy.rule_id(direction, index));
    }
    let peers = match &policy.rules(direction)[index].peers {
        None => "any".to_string(),
        Some(list) => {
            let mut parts: Vec<String> = list
                .iter()
                .map(|p| match p {
                    // The policy's own namespace, spelled out, so equal selectors of other
                    // namespaces stay apart.
                    policy::netpol::Peer::Pods { pod, namespace: None } => {
                        format!("ns={} pods={pod:?}", policy.namespace)
                    }
                    policy::netpol::Peer::Pods { pod, namespace: Some(sel) } => format!("ns~{sel:?} pods={pod:?}"),
                    policy::netpol::Peer::Block(b) => format!("block={b:?}"),
                })
                .collect();
            parts.sort();
            parts.dedup();
            parts.join(";")
        }
    };
    format!("{direction:?}|{peers}|{services:?}")
}

#[cfg(test)]
mod tests {
    use crate::node_compiler::NodeCompiler;
    use policy::synthetic::{Spec, Synthetic};

    #[test]
    fn policies_resolved_on_several_threads_compile_to_what_one_thread_compiles() {
        for seed in [3, 11] {
            let cluster = Synthetic::generate(Spec { pods: 800, policies: 160, seed }).cluster();
            let topo = crate::offline_topology(&cluster, "syn-1").expect("the synthetic cluster has node syn-1");
            let one = NodeCompiler::from_scratch(&cluster, topo.clone(), cluster.tiered_rules(), 1);
            assert!(one.flows().len() > 1000, "seed {seed}: a policy-heavy node ({} flows)", one.flows().len());
            for threads in [2, 3, 7] {
                let many = NodeCompiler::from_scratch(&cluster, topo.clone(), cluster.tiered_rules(), threads);
                assert_eq!(many.flows(), one.flows(), "seed {seed}, {threads} threads: the flows, conj_ids included");
                assert_eq!(many.rules(), one.rules(), "seed {seed}, {threads} threads: what each conj_id stands for");
            }
        }
    }
}
