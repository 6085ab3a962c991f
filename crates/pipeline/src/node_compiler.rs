//! The node's compiler, kept between events.
//!
//! It remembers what every policy contributed to the merged policy tables
//! ([`PolicyTables`]), so an event recompiles only the policies it can change: a pod event
//! the policies that select it, have it as a peer, or resolve named ports on it
//! ([`NetworkPolicy::depends_on`]); a policy event that policy; a local port appearing or
//! leaving the policies applied to that pod. Policies that apply to no local endpoint
//! contribute nothing and are not normalized further than their applied-to selection.
//!
//! Building from scratch ([`NodeCompiler::new`]) and updating give the same flows: the
//! full compile is the same per-policy code run for every policy (tested by
//! `tests/incremental.rs` over random event sequences).

use crate::compile::Compiled;
use crate::conjunction::{ConjIds, PolicyTables, RuleClauses, RuleInfo, isolation_part};
use crate::flow::{FlowKey, FlowSet};
use crate::forwarding::{forwarding_flows, miss_flows};
use crate::topology::Topology;
use crate::traffic_control::{TcStatus, traffic_control_flows};
use policy::cluster::NamespaceScope;
use policy::{Cluster, Direction, Endpoint, Pod};
use std::collections::{BTreeMap, BTreeSet};

/// Where policy-table parts come from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    /// A NetworkPolicy, by namespace and name.
    Policy(String, String),
    /// A rejected policy (fails closed), by its index in the cluster's list; the list
    /// changing rebuilds the compiler, so indexes stay valid.
    Rejected(usize),
}

/// What one source put into the policy tables.
#[derive(Debug, Clone, Default)]
struct Contribution {
    rules: Vec<RuleClauses>,
    isolation: Vec<(Direction, u32)>,
}

impl Contribution {
    fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.isolation.is_empty()
    }
}

/// A node's desired flows, updated in place as the cluster view and the local ports change.
#[derive(Debug, Clone)]
pub struct NodeCompiler {
    topo: Topology,
    ids: ConjIds,
    contributions: BTreeMap<Source, Contribution>,
    tables: PolicyTables,
    /// Flows outside the policy tables: table misses, forwarding, TrafficControl.
    fixed: FlowSet,
    traffic_controls: BTreeMap<String, TcStatus>,
    desired: FlowSet,
    rules: BTreeMap<u32, RuleInfo>,
    changed: BTreeSet<FlowKey>,
}

impl NodeCompiler {
    /// Compiles the cluster's policy for the node described by `topo`.
    pub fn new(cluster: &Cluster, topo: Topology) -> NodeCompiler {
        let (fixed, traffic_controls) = fixed_flows(cluster, &topo);
        let mut c = NodeCompiler {
            topo,
            ids: ConjIds::default(),
            contributions: BTreeMap::new(),
            tables: PolicyTables::default(),
            fixed,
            traffic_controls,
            desired: FlowSet::default(),
            rules: BTreeMap::new(),
            changed: BTreeSet::new(),
        };
        for source in sources(cluster) {
            c.contribute(cluster, source, false);
        }
        c.desired = c.fixed.iter().cloned().chain(c.tables.flows()).collect();
        c
    }

    /// Every desired flow.
    pub fn flows(&self) -> &FlowSet {
        &self.desired
    }

    /// What each conj_id stands for.
    pub fn rules(&self) -> &BTreeMap<u32, RuleInfo> {
        &self.rules
    }

    /// How each TrafficControl fared on this node.
    pub fn traffic_controls(&self) -> &BTreeMap<String, TcStatus> {
        &self.traffic_controls
    }

    /// The topology compiled for.
    pub fn topology(&self) -> &Topology {
        &self.topo
    }

    /// The keys whose desired flow may have changed since the last call (added, changed or
    /// removed), for diffing only those against the switch.
    pub fn take_changed(&mut self) -> BTreeSet<FlowKey> {
        std::mem::take(&mut self.changed)
    }

    /// The compiler's output as one value.
    pub fn into_compiled(self) -> Compiled {
        Compiled { flows: self.desired, rules: self.rules, traffic_controls: self.traffic_controls }
    }

    /// Follows the cluster view from `old` (what was compiled) to `new`, and the topology to
    /// `topo`. Namespace labels and rejected policies changing rebuild everything (they are
    /// rare and touch many policies); pods and policies are compared one by one.
    pub fn update(&mut self, old: &Cluster, new: &Cluster, topo: Topology) {
        if old.namespaces != new.namespaces || old.rejected_policies != new.rejected_policies {
            let before: BTreeSet<FlowKey> = self.desired.as_map().keys().cloned().collect();
            let mut changed = std::mem::take(&mut self.changed);
            *self = NodeCompiler::new(new, topo);
            changed.extend(before);
            changed.extend(self.desired.as_map().keys().cloned());
            self.changed = changed;
            return;
        }
        let mut stale = BTreeSet::new();
        for (k, p) in &new.policies {
            if old.policies.get(k) != Some(p) {
                stale.insert(Source::Policy(k.0.clone(), k.1.clone()));
            }
        }
        for k in old.policies.keys().filter(|k| !new.policies.contains_key(*k)) {
            stale.insert(Source::Policy(k.0.clone(), k.1.clone()));
        }
        for (k, p) in &new.pods {
            let before = old.pods.get(k);
            if before != Some(p) {
                stale.extend(dependents(new, before, Some(p)));
            }
        }
        for (k, p) in &old.pods {
            if !new.pods.contains_key(k) {
                stale.extend(dependents(new, Some(p), None));
            }
        }
        stale.extend(self.local_changes(new, &topo));
        self.topo = topo;
        self.refresh(new, stale);
    }

    /// A pod changed from `old` to `new` (`None`: absent); `cluster` already has the change.
    pub fn pod_changed(&mut self, cluster: &Cluster, old: Option<&Pod>, new: Option<&Pod>) {
        let stale = dependents(cluster, old, new);
        self.refresh(cluster, stale);
    }

    /// The NetworkPolicy `namespace/name` was added, changed or removed; `cluster` already
    /// has the change.
    pub fn policy_changed(&mut self, cluster: &Cluster, namespace: &str, name: &str) {
        self.refresh(cluster, [Source::Policy(namespace.to_string(), name.to_string())].into());
    }

    /// The node's ports, pods or neighbours changed.
    pub fn set_topology(&mut self, cluster: &Cluster, topo: Topology) {
        let stale = self.local_changes(cluster, &topo);
        self.topo = topo;
        self.refresh(cluster, stale);
    }

    /// Sources applied to a pod whose local port appears, leaves or changes in `topo`.
    fn local_changes(&self, cluster: &Cluster, topo: &Topology) -> BTreeSet<Source> {
        let (old, new) = (&self.topo.local_pods, &topo.local_pods);
        let moved = new
            .iter()
            .filter(|(k, p)| old.get(*k).map(|o| o.ofport) != Some(p.ofport))
            .map(|(k, _)| k)
            .chain(old.keys().filter(|k| !new.contains_key(*k)));
        let mut stale = BTreeSet::new();
        for k in moved {
            if let Some(pod) = cluster.pod(k) {
                stale.extend(dependents(cluster, None, Some(pod)));
            }
        }
        stale
    }

    /// Recompiles `stale` sources and the fixed flows, and brings the desired set up to date.
    fn refresh(&mut self, cluster: &Cluster, stale: BTreeSet<Source>) {
        let mut touched = BTreeSet::new();
        for source in stale {
            self.withdraw(&source, &mut touched);
            self.contribute(cluster, source, true);
        }
        touched.append(&mut self.changed);
        for k in &touched {
            match self.tables.flow(k).or_else(|| self.fixed.get(k).cloned()) {
                Some(f) => self.desired.replace(f),
                None => {
                    self.desired.remove(k);
                }
            }
        }
        let (fixed, traffic_controls) = fixed_flows(cluster, &self.topo);
        self.traffic_controls = traffic_controls;
        if fixed != self.fixed {
            for k in self.fixed.as_map().keys().filter(|k| fixed.get(k).is_none()) {
                if self.tables.flow(k).is_none() {
                    self.desired.remove(k);
                }
                touched.insert(k.clone());
            }
            for (k, f) in fixed.as_map() {
                if self.fixed.get(k) != Some(f) {
                    self.desired.replace(f.clone());
                    touched.insert(k.clone());
                }
            }
            self.fixed = fixed;
        }
        self.changed = touched;
    }

    fn withdraw(&mut self, source: &Source, touched: &mut BTreeSet<FlowKey>) {
        let Some(c) = self.contributions.remove(source) else { return };
        for rule in c.rules {
            self.tables.remove(rule.parts(), Some(touched));
            self.ids.release(rule.id);
            self.rules.remove(&rule.id);
        }
        self.tables.remove(c.isolation.into_iter().map(|(d, p)| isolation_part(d, p)).collect(), Some(touched));
    }

    fn contribute(&mut self, cluster: &Cluster, source: Source, track: bool) {
        let c = self.contribution(cluster, &source);
        if c.is_empty() {
            return;
        }
        let mut touched = BTreeSet::new();
        let mut t = track.then_some(&mut touched);
        for rule in &c.rules {
            self.tables.add(rule.parts(), t.as_deref_mut());
        }
        self.tables.add(c.isolation.iter().map(|&(d, p)| isolation_part(d, p)).collect(), t);
        self.changed.append(&mut touched);
        self.contributions.insert(source, c);
    }

    fn contribution(&mut self, cluster: &Cluster, source: &Source) -> Contribution {
        let mut c = Contribution::default();
        let local_pods = &self.topo.local_pods;
        let ofport = |e: &Endpoint| match e {
            Endpoint::Pod(k) => local_pods.get(k).map(|p| p.ofport),
            Endpoint::Host(_) => None,
        };
        match source {
            Source::Rejected(i) => {
                let Some(r) = cluster.rejected_policies.get(*i) else { return c };
                c.isolation = cluster.rejected_isolation(r).iter().filter_map(|(d, e)| Some((*d, ofport(e)?))).collect();
            }
            Source::Policy(ns, name) => {
                let Some(policy) = cluster.policies.get(&(ns.clone(), name.clone())) else { return c };
                // Only policies applied to a local pod have flows here: find that out before
                // selecting peers, the expensive part.
                let applied: Vec<u32> = cluster
                    .select(NamespaceScope::Named(ns), Some(&policy.pod_selector))
                    .filter_map(|p| local_pods.get(&p.key).map(|l| l.ofport))
                    .collect();
                if applied.is_empty() {
                    return c;
                }
                c.isolation = policy.policy_types.iter().flat_map(|d| applied.iter().map(move |p| (*d, *p))).collect();
                let rules = cluster.policy_rules(policy);
                for rule in rules.concrete(cluster) {
                    let id = self.ids.allocate(&rule.rule, rule.part);
                    match RuleClauses::new(&rule, id, &self.topo) {
                        Some(clauses) => {
                            self.rules.insert(
                                id,
                                RuleInfo { rule: rule.rule, part: rule.part, origin: rule.origin, direction: rule.direction },
                            );
                            c.rules.push(clauses);
                        }
                        None => self.ids.release(id),
                    }
                }
            }
        }
        c
    }
}

/// Every source of the cluster, in order.
fn sources(cluster: &Cluster) -> impl Iterator<Item = Source> + '_ {
    cluster
        .policies
        .keys()
        .map(|(ns, name)| Source::Policy(ns.clone(), name.clone()))
        .chain((0..cluster.rejected_policies.len()).map(Source::Rejected))
}

/// The sources a change of one pod (from `old` to `new`) can change.
fn dependents(cluster: &Cluster, old: Option<&Pod>, new: Option<&Pod>) -> BTreeSet<Source> {
    let no_labels = policy::Labels::new();
    let depends = |pod: &Pod, p: &policy::NetworkPolicy| {
        let ns_labels = cluster.namespaces.get(&pod.key.namespace).map_or(&no_labels, |n| &n.labels);
        p.depends_on(pod, ns_labels)
    };
    let pods: Vec<&Pod> = old.into_iter().chain(new).collect();
    let mut out = BTreeSet::new();
    for ((ns, name), p) in &cluster.policies {
        if pods.iter().any(|pod| depends(pod, p)) {
            out.insert(Source::Policy(ns.clone(), name.clone()));
        }
    }
    for (i, r) in cluster.rejected_policies.iter().enumerate() {
        if pods.iter().any(|pod| r.depends_on(pod)) {
            out.insert(Source::Rejected(i));
        }
    }
    out
}

/// Table misses, forwarding and TrafficControl flows: small, recomputed on every change.
fn fixed_flows(cluster: &Cluster, topo: &Topology) -> (FlowSet, BTreeMap<String, TcStatus>) {
    let (tc, status) = traffic_control_flows(&cluster.traffic_control_plan(), topo);
    (miss_flows().into_iter().chain(forwarding_flows(topo)).chain(tc).collect(), status)
}
