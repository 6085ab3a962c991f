//! Which installed flows belong to which policy rule, for per-rule counters (the agent's
//! metrics, `weir get stats`) and `weir get flows --policy`.
//!
//! A rule is a conj_id ([`crate::conjunction`]). Its *verdict* flows carry the conj_id in
//! their cookie's object bits: the `conj_id=N` flow of a conjunction, or the flows of a rule
//! with a single clause. They are what a packet the rule decided hit, so their counters are
//! the rule's. Its *clause* flows carry `conjunction(N,k/n)` actions (one flow may serve
//! several rules) and a zero object. Rules with equal match share one conj_id and so share
//! their counters; a single-clause flow that several rules decide carries the lowest conj_id
//! only (see [`crate::conjunction::Part::Direct`]).

use crate::conjunction::RuleInfo;
use crate::cookie::{Category, category_of};
use crate::flow::FlowSet;
use crate::table::Table;
use openflow::{Action, Field, Flow};
use std::collections::{BTreeMap, BTreeSet};

/// The rules one conj_id stands for, and the table its verdict flows are in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConjRules {
    /// The policy table deciding the rules.
    pub table: Table,
    /// The rules sharing the conj_id.
    pub rules: Vec<RuleInfo>,
}

/// Every installed conj_id with its table and rules: `rules` (the compiler's
/// [`crate::NodeCompiler::rules`]) placed by the verdict flows of `flows`. A conj_id without
/// a verdict flow (no local endpoint to apply to) is left out.
pub fn conj_rules(
    flows: &FlowSet,
    mut rules: BTreeMap<u32, Vec<RuleInfo>>,
) -> BTreeMap<u32, ConjRules> {
    let mut out = BTreeMap::new();
    for flow in flows.iter() {
        let Some(id) = verdict_conj(flow) else {
            continue;
        };
        let Some(table) = Table::from_id(flow.table_id) else {
            continue;
        };
        if let Some(rules) = rules.remove(&id) {
            out.insert(id, ConjRules { table, rules });
        }
    }
    out
}

/// The conj_id whose verdict `flow` is, from its cookie (policy flows only).
pub fn verdict_conj(flow: &Flow) -> Option<u32> {
    cookie_conj(flow.cookie)
}

/// The conj_id a policy verdict flow's cookie names (also a packet-in's, which carries the
/// cookie of the flow that sent it).
pub fn cookie_conj(cookie: u64) -> Option<u32> {
    let policy = matches!(category_of(cookie), Some(Category::NetworkPolicy | Category::ClusterPolicy));
    let object = crate::cookie::object_of(cookie);
    (policy && object != 0).then_some(object)
}

/// Every conj_id `flow` is part of: its verdict (cookie), the `conj_id` it matches and the
/// conjunctions its actions feed.
pub fn conj_ids(flow: &Flow) -> BTreeSet<u32> {
    let mut ids: BTreeSet<u32> = verdict_conj(flow).into_iter().collect();
    if let Some(id) = flow.matches.exact(Field::ConjId) {
        ids.insert(id as u32);
    }
    ids.extend(flow.apply_actions().iter().filter_map(|a| match a {
        Action::Conjunction { id, .. } => Some(*id),
        _ => None,
    }));
    ids
}

/// The policy layer a rule table belongs to, as metrics and `weir get stats` name it:
/// `admin` (AdminNetworkPolicy and the admin tiers of cluster policies), `networkpolicy`, or
/// `baseline`; `other` for a table that holds no rules.
pub fn tier_name(table: Table) -> &'static str {
    match table {
        Table::EgressAdmin | Table::IngressAdmin => "admin",
        Table::EgressRule | Table::IngressRule => "networkpolicy",
        Table::EgressBaseline | Table::IngressBaseline => "baseline",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy::Cluster;

    const CLUSTER: &str = "\
apiVersion: v1
kind: Node
metadata: {name: n1}
spec: {podCIDR: 10.0.1.0/24}
status: {addresses: [{type: InternalIP, address: 192.168.1.1}]}
---
apiVersion: v1
kind: Namespace
metadata: {name: x}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: a}}
spec: {nodeName: n1}
status: {podIP: 10.0.1.10}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x, labels: {app: b}}
spec: {nodeName: n1}
status: {podIP: 10.0.1.11}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: x}
spec:
  podSelector: {matchLabels: {app: a}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: b}}}]
    ports: [{protocol: TCP, port: 80}]
";

    #[test]
    fn every_rule_of_a_policy_has_its_table_and_its_flows_name_its_conj_id() {
        let cluster = Cluster::from_sources([("c.yaml", CLUSTER)]);
        let topo = crate::offline_topology(&cluster, "n1").unwrap();
        let compiled = crate::compile(&cluster, &topo);
        let conjs = conj_rules(&compiled.flows, compiled.rules.clone());
        assert_eq!(conjs.len(), 1, "{conjs:?}");
        let (id, conj) = conjs.iter().next().unwrap();
        assert_eq!(conj.table, Table::IngressRule);
        assert_eq!(tier_name(conj.table), "networkpolicy");
        assert_eq!(
            conj.rules[0].origin.to_string(),
            "NetworkPolicy x/web ingress[0]"
        );
        // The verdict flow and the three clauses (applied-to, peers, services) name it.
        let of_rule: Vec<&Flow> = compiled
            .flows
            .iter()
            .filter(|f| conj_ids(f).contains(id))
            .collect();
        assert_eq!(
            of_rule
                .iter()
                .filter(|f| verdict_conj(f) == Some(*id))
                .count(),
            1
        );
        assert!(of_rule.len() >= 4, "{of_rule:?}");
    }
}
