//! The node's compiler, kept between events.
//!
//! It remembers what every policy contributed to the merged policy tables
//! ([`PolicyTables`]), so an event recompiles only what it can change
//! ([`policy::NetworkPolicy::dependence`]):
//! - a pod that is only a peer of some rules adds or removes its address in those rules'
//!   peer clauses: one clause flow each, nothing recompiled;
//! - a pod a policy applies to, or that named ports resolve on, recompiles that policy, as
//!   does a policy event and a local port appearing or leaving for the pods it applies to.
//!
//! Policies that apply to no local endpoint contribute nothing and are not normalized
//! further than their applied-to selection. Rules join shared conjunctions
//! ([`SharedConjunctions`]); a rule whose conjunction already exists joins it without
//! resolving its peers.
//!
//! Admin and baseline policies (tiered rules, [`NodeCompiler::set_tiered_policy`]) are
//! sources too: each policy's rules are compiled on their own, each rule part its own
//! conjunction whose conj_id comes from the rule's identity (not its peers), and a change to
//! one policy, or to a pod one of its rules may select, recompiles that policy alone: its
//! conj_ids stay, so only the flows whose match changed are rewritten (a pod joining a rule's
//! peers adds its address flow, it does not renumber the rule). Their OpenFlow priorities come
//! from each rule's own tier and priority ([`crate::placement`]), so no other policy's flows
//! move; unless that fixed mapping would misorder the rules present, when priorities are
//! ranked ([`Slots`]) and a change of the ranks recompiles every admin and baseline policy.
//!
//! Building from scratch ([`NodeCompiler::new`]) and updating give the same flows: the
//! full compile is the same per-policy code run for every policy (tested by
//! `tests/incremental.rs` over random event sequences).

use crate::compile::Compiled;
use crate::conjunction::{PolicyTables, RuleClauses, RuleInfo, isolation_part, peer_cidrs};
use crate::flow::{FlowKey, FlowSet};
use crate::forwarding::{forwarding_flows, miss_flows};
use crate::placement::Slots;
use crate::resolution::{Part, Resolution, resolve_policies, resolve_policy};
use crate::shared_conj::{Member, SharedConjunctions};
use crate::topology::Topology;
use crate::traffic_control::{TcStatus, traffic_control_flows};
use ipnetwork::Ipv4Network;
use policy::{Cluster, Dependence, Direction, Endpoint, Peers, Pod, PolicyRef, Rule, RuleId, RuleSet, Services};
use std::collections::{BTreeMap, BTreeSet};

mod tiered_peers;

/// Where policy-table parts come from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    /// A NetworkPolicy, by namespace and name.
    Policy(String, String),
    /// A rejected policy (fails closed), by its index in the cluster's list; the list
    /// changing rebuilds the compiler, so indexes stay valid.
    Rejected(usize),
    /// An admin or baseline policy, whose rules come in through
    /// [`NodeCompiler::set_tiered_policy`].
    Tiered(PolicyRef),
}

/// What one source put into the policy tables.
#[derive(Debug, Clone, Default)]
struct Contribution {
    /// Each rule part and the conj_id it joined.
    rules: Vec<(Member, u32)>,
    /// Rules some part of which compiled to nothing (e.g. no peer yet): a peer appearing may
    /// bring it to life, so their peers are not patched in place.
    incomplete: BTreeSet<RuleId>,
    isolation: Vec<(Direction, u32)>,
}

impl Contribution {
    fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.isolation.is_empty()
    }
}

/// A NetworkPolicy rule by its place: direction and index.
type RulePosition = (Direction, usize);

/// Threads resolving policies in a compile from scratch.
const MAX_THREADS: usize = 4;

/// Peer addresses to take out of and put into one rule's peer clauses.
#[derive(Debug, Default)]
struct PeerPatch {
    remove: BTreeSet<Ipv4Network>,
    add: BTreeSet<Ipv4Network>,
}

/// A node's desired flows, updated in place as the cluster view and the local ports change.
#[derive(Debug, Clone)]
pub struct NodeCompiler {
    topo: Topology,
    /// Admin and baseline rules, by policy.
    tiered: BTreeMap<PolicyRef, Vec<Rule>>,
    /// Their OpenFlow priority slots ([`Slots::of`] the rules of `tiered`).
    slots: Slots,
    conjs: SharedConjunctions,
    contributions: BTreeMap<Source, Contribution>,
    tables: PolicyTables,
    /// Flows outside the policy tables: table misses, forwarding, TrafficControl.
    fixed: FlowSet,
    traffic_controls: BTreeMap<String, TcStatus>,
    /// Whether the fixed flows were last computed with TrafficControls.
    had_traffic_controls: bool,
    desired: FlowSet,
    changed: BTreeSet<FlowKey>,
}

impl NodeCompiler {
    /// Compiles the cluster's policy for the node described by `topo`: its NetworkPolicies
    /// and its cluster policies' admin and baseline rules ([`Cluster::tiered_rules`]).
    pub fn new(cluster: &Cluster, topo: Topology) -> NodeCompiler {
        NodeCompiler::with_tiered(cluster, topo, cluster.tiered_rules())
    }

    /// Compiles the cluster's NetworkPolicies and the admin and baseline rules of `tiered`
    /// (each policy's rules, with applied-to and peers selected from `cluster`).
    pub fn with_tiered(cluster: &Cluster, topo: Topology, tiered: BTreeMap<PolicyRef, Vec<Rule>>) -> NodeCompiler {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS));
        NodeCompiler::from_scratch(cluster, topo, tiered, threads)
    }

    /// [`NodeCompiler::with_tiered`], resolving policies on `threads` threads.
    pub(crate) fn from_scratch(cluster: &Cluster, topo: Topology, tiered: BTreeMap<PolicyRef, Vec<Rule>>, threads: usize) -> NodeCompiler {
        let (fixed, traffic_controls) = fixed_flows(cluster, &topo);
        let mut c = NodeCompiler {
            topo,
            slots: Slots::of(tiered.values().flatten()),
            tiered,
            conjs: SharedConjunctions::default(),
            contributions: BTreeMap::new(),
            tables: PolicyTables::default(),
            fixed,
            traffic_controls,
            had_traffic_controls: !cluster.traffic_controls.is_empty(),
            desired: FlowSet::default(),
            changed: BTreeSet::new(),
        };
        // Policies resolve on every core; their parts join in policy order, as in an update.
        let policies: Vec<&policy::NetworkPolicy> = cluster.policies.values().collect();
        let resolutions = resolve_policies(cluster, &c.topo, &policies, threads);
        for (key, resolution) in cluster.policies.keys().zip(resolutions) {
            let Some(resolution) = resolution else { continue };
            let contribution = c.join_resolution(resolution, None);
            if !contribution.is_empty() {
                c.contributions.insert(Source::Policy(key.0.clone(), key.1.clone()), contribution);
            }
        }
        let rejected = (0..cluster.rejected_policies.len()).map(Source::Rejected);
        let tiered: Vec<Source> = c.tiered.keys().cloned().map(Source::Tiered).collect();
        for source in rejected.chain(tiered) {
            c.contribute(cluster, source, false);
        }
        c.desired = c.fixed.iter().cloned().chain(c.tables.flows()).collect();
        c
    }

    /// Every desired flow.
    pub fn flows(&self) -> &FlowSet {
        &self.desired
    }

    /// What each conj_id stands for: the rules sharing it.
    pub fn rules(&self) -> BTreeMap<u32, Vec<RuleInfo>> {
        self.conjs.rules()
    }

    /// How each TrafficControl fared on this node.
    pub fn traffic_controls(&self) -> &BTreeMap<String, TcStatus> {
        &self.traffic_controls
    }

    /// The keys whose desired flow may have changed since the last call (added, changed or
    /// removed), for diffing only those against the switch.
    pub fn take_changed(&mut self) -> BTreeSet<FlowKey> {
        std::mem::take(&mut self.changed)
    }

    /// The compiler's output as one value.
    pub fn into_compiled(self) -> Compiled {
        Compiled { rules: self.conjs.rules(), flows: self.desired, traffic_controls: self.traffic_controls }
    }

    /// Checks every policy's shared conjunctions against resolving that policy in full:
    /// each rule part that joined one must resolve to its peers and services, with its local
    /// ports in its applied-to clause; a part left out must compile to nothing. Slow: for
    /// tests, after updates and after shortcuts that joined without resolving.
    pub fn verify_shared(&self, cluster: &Cluster) -> Result<(), String> {
        for (source, c) in &self.contributions {
            let Source::Policy(ns, name) = source else { continue };
            let policy = cluster.policies.get(&(ns.clone(), name.clone())).ok_or(format!("{ns}/{name}: gone but contributing"))?;
            for rule in cluster.policy_rules(policy).concrete(cluster) {
                let joined = c.rules.iter().find(|((r, p), _)| *r == rule.rule && *p == rule.part).map(|(_, id)| *id);
                let full = RuleClauses::new(&rule, &self.topo);
                match (joined, full) {
                    (None, None) => {}
                    (Some(id), Some(full)) => {
                        let conj = self.conjs.clauses(id).ok_or(format!("{}#{}: conjunction {id} missing", rule.rule, rule.part))?;
                        if !conj.same_match(&full) {
                            return Err(format!("{}#{}: conjunction {id} has other peers or services", rule.rule, rule.part));
                        }
                        if !full.applied().iter().all(|p| conj.applied().contains(p)) {
                            return Err(format!("{}#{}: a local port is missing from conjunction {id}", rule.rule, rule.part));
                        }
                    }
                    (joined, _) => return Err(format!("{}#{}: joined {joined:?} but a full compile disagrees", rule.rule, rule.part)),
                }
            }
        }
        Ok(())
    }

    /// Follows the cluster view from `old` (what was compiled) to `new`, and the topology to
    /// `topo`. Namespace labels and rejected policies changing rebuild everything (they are
    /// rare and touch many policies); pods and policies are compared one by one.
    pub fn update(&mut self, old: &Cluster, new: &Cluster, topo: Topology) {
        // A host interface moved, or named by an ExternalNode, changes which rules apply here.
        let hosts_changed = self.topo.host_interfaces != topo.host_interfaces;
        if old.namespaces != new.namespaces || old.rejected_policies != new.rejected_policies || hosts_changed {
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
        let mut changes: Vec<(Option<&Pod>, Option<&Pod>)> = Vec::new();
        for (k, p) in &new.pods {
            let before = old.pods.get(k);
            if before != Some(p) {
                changes.push((before, Some(p)));
            }
        }
        changes.extend(old.pods.iter().filter(|(k, _)| !new.pods.contains_key(*k)).map(|(_, p)| (Some(p), None)));
        // Cluster policies' rules first: a pod that left their peers is then no longer named by
        // them, so the pod changes below do not recompile them (they were patched).
        self.update_tiered(old, new, &changes);
        self.apply(new, stale, &changes, Some(topo));
    }

    /// Brings the cluster policies' rules up to `new`. Their rules follow the pods they
    /// select: only the policies that changed, and those a changed pod may be selected by
    /// ([`policy::cluster_policy::ClusterPolicy::may_select`]), are derived again (and
    /// recompiled if their rules differ). Tiers, ClusterGroups, nodes, ExternalEntities or
    /// rejected cluster policies changing (rare) derive every policy again.
    fn update_tiered(&mut self, old: &Cluster, new: &Cluster, changes: &[(Option<&Pod>, Option<&Pod>)]) {
        let none = |c: &Cluster| c.cluster_policies.is_empty() && c.rejected_cluster_policies.is_empty();
        if none(old) && none(new) {
            return;
        }
        // Nodes and ExternalEntities are peers by address (nodeSelector, externalEntitySelector).
        fn global(c: &Cluster) -> impl PartialEq + '_ {
            (&c.tiers, &c.groups, &c.nodes, &c.external_entities, &c.rejected_cluster_policies)
        }
        if global(old) != global(new) {
            return self.set_tiered(new, new.tiered_rules());
        }
        let mut stale: BTreeSet<PolicyRef> = BTreeSet::new();
        for (key, p) in &new.cluster_policies {
            if old.cluster_policies.get(key) != Some(p) {
                stale.insert(p.policy_ref());
            }
        }
        stale.extend(old.cluster_policies.iter().filter(|(k, _)| !new.cluster_policies.contains_key(*k)).map(|(_, p)| p.policy_ref()));
        stale.extend(selecting(new, changes));
        self.rederive_tiered(new, stale);
    }

    /// Derives the rules of `policies` again from `cluster` (recompiling those that differ).
    fn rederive_tiered(&mut self, cluster: &Cluster, policies: BTreeSet<PolicyRef>) {
        let rules = policies.into_iter().map(|p| {
            let rules = cluster.tiered_rules_of(&p);
            (p, rules)
        });
        self.set_tiered_some(cluster, rules.collect());
    }

    /// Pods changed (each from the first version to the second, `None`: absent) and, if
    /// given, the topology with them (ports of local pods); `cluster` already has the
    /// changes.
    pub fn pods_changed(&mut self, cluster: &Cluster, changes: &[(Option<&Pod>, Option<&Pod>)], topo: Option<Topology>) {
        self.rederive_tiered(cluster, selecting(cluster, changes));
        self.apply(cluster, BTreeSet::new(), changes, topo);
    }

    /// A pod changed from `old` to `new` (`None`: absent); `cluster` already has the change.
    pub fn pod_changed(&mut self, cluster: &Cluster, old: Option<&Pod>, new: Option<&Pod>) {
        self.pods_changed(cluster, &[(old, new)], None);
    }

    /// The NetworkPolicy `namespace/name` was added, changed or removed; `cluster` already
    /// has the change.
    pub fn policy_changed(&mut self, cluster: &Cluster, namespace: &str, name: &str) {
        self.apply(cluster, [Source::Policy(namespace.to_string(), name.to_string())].into(), &[], None);
    }

    /// The admin or baseline policy `policy` now has `rules` (none: it is gone); `cluster` is
    /// the view they were selected from. Only this policy's flows change.
    pub fn set_tiered_policy(&mut self, cluster: &Cluster, policy: PolicyRef, rules: Vec<Rule>) {
        if self.tiered.get(&policy).is_some_and(|old| *old == rules) {
            return;
        }
        if rules.is_empty() {
            self.tiered.remove(&policy);
        } else {
            self.tiered.insert(policy.clone(), rules);
        }
        let stale = self.reslot([Source::Tiered(policy)].into());
        self.apply(cluster, stale, &[], None);
    }

    /// Every admin and baseline policy's rules, as selected from `cluster` (which the
    /// compiler already follows): policies whose rules differ from before are recompiled,
    /// policies absent from `tiered` removed, the others left alone.
    pub fn set_tiered(&mut self, cluster: &Cluster, tiered: BTreeMap<PolicyRef, Vec<Rule>>) {
        let gone = self.tiered.keys().filter(|p| !tiered.contains_key(*p));
        let changed = tiered.iter().filter(|(p, rules)| self.tiered.get(*p) != Some(*rules)).map(|(p, _)| p);
        let stale: BTreeSet<Source> = gone.chain(changed).cloned().map(Source::Tiered).collect();
        self.tiered = tiered.into_iter().filter(|(_, rules)| !rules.is_empty()).collect();
        let stale = self.reslot(stale);
        self.apply(cluster, stale, &[], None);
    }

    /// The rules of some admin and baseline policies (none: the policy is gone), as selected
    /// from `cluster`; the other policies are left alone.
    fn set_tiered_some(&mut self, cluster: &Cluster, rules: BTreeMap<PolicyRef, Vec<Rule>>) {
        let mut stale = BTreeSet::new();
        for (policy, rules) in rules {
            if self.tiered.get(&policy).map_or(rules.is_empty(), |old| *old == rules) {
                continue;
            }
            if self.patch_tiered_peers(cluster, &policy, &rules) {
                continue;
            }
            stale.insert(Source::Tiered(policy.clone()));
            if rules.is_empty() {
                self.tiered.remove(&policy);
            } else {
                self.tiered.insert(policy, rules);
            }
        }
        if !stale.is_empty() {
            let stale = self.reslot(stale);
            self.apply(cluster, stale, &[], None);
        }
    }

    /// The slots of the tiered rules as they now are; when they moved, every tiered policy
    /// joins `stale` (its flows' priorities may have changed).
    fn reslot(&mut self, mut stale: BTreeSet<Source>) -> BTreeSet<Source> {
        let slots = Slots::of(self.tiered.values().flatten());
        if slots != self.slots {
            self.slots = slots;
            stale.extend(self.contributions.keys().filter(|s| matches!(s, Source::Tiered(_))).cloned());
            stale.extend(self.tiered.keys().cloned().map(Source::Tiered));
        }
        stale
    }

    /// Admin and baseline rules the fixed priority mapping cannot keep in order (see
    /// [`crate::placement::order_conflicts`]), for reporting. Rules applied only to endpoints
    /// without a port here (other nodes' hosts) have no flows here, so they are no part of it.
    pub fn order_conflicts(&self) -> Vec<crate::placement::OrderConflict> {
        let local = self.tiered.values().flatten().filter(|r| r.applied_to.iter().any(|e| self.topo.is_local(e)));
        crate::placement::order_conflicts(local, &self.slots)
    }

    /// The admin and baseline policies with rules applied to the host endpoint `host` (this
    /// node's Node, or an ExternalEntity of its ExternalNode). Without a port on the bridge
    /// ([`Topology::endpoint_ofports`]) the pipeline compiles no flow for it, so these rules are
    /// the host realization's (see [`policy::RuleSet::host_rules`]); the agent reports them.
    pub fn host_policies(&self, host: &Endpoint) -> Vec<&PolicyRef> {
        self.tiered.iter().filter(|(_, rules)| rules.iter().any(|r| r.applied_to.contains(host))).map(|(p, _)| p).collect()
    }

    /// The node's ports, pods or neighbours changed.
    pub fn set_topology(&mut self, cluster: &Cluster, topo: Topology) {
        self.apply(cluster, BTreeSet::new(), &[], Some(topo));
    }

    /// Sorts pod changes into patches of peer clauses and sources to recompile, then
    /// brings the tables and the desired set up to date.
    fn apply(&mut self, cluster: &Cluster, mut stale: BTreeSet<Source>, changes: &[(Option<&Pod>, Option<&Pod>)], topo: Option<Topology>) {
        // Fixed flows depend on the topology and the TrafficControls (and the pods they
        // select): recomputed only when those could have changed.
        let mut fixed_stale = !cluster.traffic_controls.is_empty() || self.had_traffic_controls;
        if let Some(topo) = topo
            && topo != self.topo
        {
            stale.extend(self.local_changes(cluster, &topo));
            self.topo = topo;
            fixed_stale = true;
        }
        let mut patches = BTreeMap::new();
        for &(old, new) in changes {
            self.classify(cluster, old, new, &mut stale, &mut patches);
        }
        self.refresh(cluster, stale, patches, fixed_stale);
    }

    /// What a change of one pod does to each source: nothing, a peer patch of some rules,
    /// or a recompile.
    fn classify(
        &self,
        cluster: &Cluster,
        old: Option<&Pod>,
        new: Option<&Pod>,
        stale: &mut BTreeSet<Source>,
        patches: &mut BTreeMap<(Source, RulePosition), PeerPatch>,
    ) {
        let Some(ns) = old.or(new).map(|p| p.key.namespace.as_str()) else { return };
        let no_labels = policy::Labels::new();
        let ns_labels = cluster.namespaces.get(ns).map_or(&no_labels, |n| &n.labels);
        for ((pns, name), p) in &cluster.policies {
            let dependence = |pod: Option<&Pod>| pod.map_or(Dependence::None, |pod| p.dependence(pod, ns_labels));
            let (before, after) = (dependence(old), dependence(new));
            let peer_rules = |d: &Dependence| match d {
                Dependence::Peer(rules) => rules.clone(),
                _ => Vec::new(),
            };
            let source = Source::Policy(pns.clone(), name.clone());
            match (&before, &after) {
                (Dependence::None, Dependence::None) => continue,
                (Dependence::Full, _) | (_, Dependence::Full) => {
                    stale.insert(source);
                    continue;
                }
                _ => {}
            }
            // Only a peer: without local endpoints the policy has no flows to patch.
            let Some(c) = self.contributions.get(&source) else { continue };
            let (rules_before, rules_after) = (peer_rules(&before), peer_rules(&after));
            for &(direction, i) in rules_before.iter().chain(&rules_after) {
                if c.incomplete.contains(&p.rule_id(direction, i)) {
                    stale.insert(source.clone());
                    break;
                }
                let patch = patches.entry((source.clone(), (direction, i))).or_default();
                if rules_before.contains(&(direction, i)) {
                    patch.remove.extend(old.into_iter().flat_map(host_cidrs));
                }
                if rules_after.contains(&(direction, i)) {
                    patch.add.extend(new.into_iter().flat_map(host_cidrs));
                }
            }
        }
        for (i, r) in cluster.rejected_policies.iter().enumerate() {
            if old.into_iter().chain(new).any(|pod| r.depends_on(pod)) {
                stale.insert(Source::Rejected(i));
            }
        }
        // A pod that appeared or left has already changed the rules that select it (derived
        // again before, see `pods_changed`); only named ports resolving on any destination
        // still depend on it. A pod that stayed may have a new address.
        let stayed = old.is_some() && new.is_some();
        for (policy, rules) in &self.tiered {
            let depends = |r: &Rule, pod: &Pod| if stayed { names_pod(r, pod) } else { resolves_named_ports_anywhere(r) };
            if old.into_iter().chain(new).any(|pod| rules.iter().any(|r| depends(r, pod))) {
                stale.insert(Source::Tiered(policy.clone()));
            }
        }
    }

    /// Sources applied to a pod whose local port appears, leaves or changes in `topo`, or to
    /// a host endpoint (the Node, an ExternalEntity) whose ports change.
    fn local_changes(&self, cluster: &Cluster, topo: &Topology) -> BTreeSet<Source> {
        let mut stale = self.pod_port_changes(cluster, topo);
        let hosts: BTreeSet<Endpoint> = self.topo.host_endpoints().chain(topo.host_endpoints()).collect();
        for host in hosts.iter().filter(|e| self.topo.endpoint_ofports(e) != topo.endpoint_ofports(e)) {
            let applied = self.tiered.iter().filter(|(_, rules)| rules.iter().any(|r| r.applied_to.contains(host)));
            stale.extend(applied.map(|(p, _)| Source::Tiered(p.clone())));
        }
        stale
    }

    fn pod_port_changes(&self, cluster: &Cluster, topo: &Topology) -> BTreeSet<Source> {
        let (old, new) = (&self.topo.local_pods, &topo.local_pods);
        let moved = new
            .iter()
            .filter(|(k, p)| old.get(*k).map(|o| o.ofport) != Some(p.ofport))
            .map(|(k, _)| k)
            .chain(old.keys().filter(|k| !new.contains_key(*k)));
        let mut stale = BTreeSet::new();
        for k in moved {
            if let Some(pod) = cluster.pod(k) {
                stale.extend(applied_to(cluster, pod));
            }
            let endpoint = Endpoint::Pod(k.clone());
            stale.extend(
                self.tiered
                    .iter()
                    .filter(|(_, rules)| rules.iter().any(|r| r.applied_to.contains(&endpoint)))
                    .map(|(p, _)| Source::Tiered(p.clone())),
            );
        }
        stale
    }

    /// Applies peer patches, recompiles `stale` sources and the fixed flows, and brings the
    /// desired set up to date.
    fn refresh(
        &mut self,
        cluster: &Cluster,
        mut stale: BTreeSet<Source>,
        patches: BTreeMap<(Source, RulePosition), PeerPatch>,
        fixed_stale: bool,
    ) {
        let mut touched = BTreeSet::new();
        for ((source, rule), patch) in patches {
            if stale.contains(&source) {
                continue; // recompiled below from the new view anyway
            }
            self.patch_peers(cluster, &source, rule, patch, &mut touched, &mut stale);
        }
        // Every stale source out first: a source coming back may join a shared conjunction
        // without resolving its peers, which is only right once no stale member is left in it.
        for source in &stale {
            self.withdraw(source, &mut touched);
        }
        for source in stale {
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
        if !fixed_stale {
            self.changed = touched;
            return;
        }
        let (fixed, traffic_controls) = fixed_flows(cluster, &self.topo);
        self.traffic_controls = traffic_controls;
        self.had_traffic_controls = !cluster.traffic_controls.is_empty();
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

    /// Patches the peers of the conjunctions of every part of `rule` in place. A patch that
    /// would leave a conjunction without peers (its rules would allow nothing and vanish)
    /// marks every policy sharing it for recompiling instead.
    fn patch_peers(
        &mut self,
        cluster: &Cluster,
        source: &Source,
        (direction, index): RulePosition,
        mut patch: PeerPatch,
        touched: &mut BTreeSet<FlowKey>,
        stale: &mut BTreeSet<Source>,
    ) {
        let Source::Policy(ns, name) = source else { return };
        let Some(policy) = cluster.policies.get(&(ns.clone(), name.clone())) else { return };
        let Some(c) = self.contributions.get(source) else { return };
        let rule = policy.rule_id(direction, index);
        // Addresses the rule's ipBlocks give stay whatever the pods do.
        let blocks: Vec<policy::IpBlock> = policy
            .rules(direction)
            .get(index)
            .and_then(|r| r.peers.as_ref())
            .map(|peers| peers.iter().filter_map(|p| if let policy::netpol::Peer::Block(b) = p { Some(b.clone()) } else { None }).collect())
            .unwrap_or_default();
        for kept in peer_cidrs(&blocks) {
            patch.remove.remove(&kept);
        }
        patch.remove.retain(|c| !patch.add.contains(c));
        let ids: Vec<u32> = c.rules.iter().filter(|((r, _), _)| *r == rule).map(|(_, id)| *id).collect();
        for id in ids {
            let peers = self.conjs.peers(id).unwrap_or(&[]);
            if patch.add.is_empty() && peers.iter().all(|p| patch.remove.contains(p)) {
                stale.extend(self.conjs.member_policies(id).filter_map(|p| Some(Source::Policy(p.namespace.clone()?, p.name.clone()))));
                continue;
            }
            self.conjs.patch_peers(id, &patch.remove, &patch.add, &mut self.tables, Some(touched));
        }
    }

    fn withdraw(&mut self, source: &Source, touched: &mut BTreeSet<FlowKey>) {
        let Some(c) = self.contributions.remove(source) else { return };
        for (member, id) in c.rules {
            self.conjs.leave(id, &member, &mut self.tables, Some(touched));
        }
        self.tables.remove(c.isolation.into_iter().map(|(d, p)| isolation_part(d, p)).collect(), Some(touched));
    }

    fn contribute(&mut self, cluster: &Cluster, source: Source, track: bool) {
        let mut touched = BTreeSet::new();
        let c = self.contribution(cluster, &source, track.then_some(&mut touched));
        self.changed.append(&mut touched);
        if !c.is_empty() {
            self.contributions.insert(source, c);
        }
    }

    /// Computes what `source` contributes and adds it to the tables.
    fn contribution(&mut self, cluster: &Cluster, source: &Source, mut touched: Option<&mut BTreeSet<FlowKey>>) -> Contribution {
        let mut c = Contribution::default();
        match source {
            Source::Tiered(policy) => {
                let Some(rules) = self.tiered.get(policy) else { return c };
                // Only rules applied to a local endpoint have flows here.
                let local: Vec<Rule> = rules.iter().filter(|r| r.applied_to.iter().any(|e| self.topo.is_local(e))).cloned().collect();
                for rule in (RuleSet { rules: local, ..RuleSet::default() }).concrete(cluster) {
                    let Some(clauses) = RuleClauses::in_slots(&rule, &self.topo, &self.slots) else { continue };
                    let member = (rule.rule.clone(), rule.part);
                    let info = RuleInfo::of(&rule);
                    // Keyed by the rule, so recompiling it with other peers keeps its conj_id.
                    let key = format!("tiered|{}#{}", rule.rule, rule.part);
                    let id = self.conjs.join(key, member.clone(), info, clauses, &mut self.tables, touched.as_deref_mut());
                    c.rules.push((member, id));
                }
            }
            Source::Rejected(i) => {
                let Some(r) = cluster.rejected_policies.get(*i) else { return c };
                c.isolation = cluster
                    .rejected_isolation(r)
                    .iter()
                    .flat_map(|(d, e)| self.topo.endpoint_ofports(e).into_iter().map(|p| (*d, p)))
                    .collect();
            }
            Source::Policy(ns, name) => {
                let Some(policy) = cluster.policies.get(&(ns.clone(), name.clone())) else { return c };
                let known = |key: &str| self.conjs.contains(key);
                let Some(resolution) = resolve_policy(cluster, &self.topo, policy, known) else { return c };
                return self.join_resolution(resolution, touched);
            }
        }
        self.finish(c, touched)
    }

    /// Joins a policy's resolved parts to their conjunctions, and adds its isolation.
    fn join_resolution(&mut self, resolution: Resolution, mut touched: Option<&mut BTreeSet<FlowKey>>) -> Contribution {
        let mut c = Contribution { incomplete: resolution.incomplete, isolation: resolution.isolation, ..Contribution::default() };
        for part in resolution.parts {
            let (member, id) = match part {
                Part::Shared { member, info, key, ofports } => {
                    let id = self.conjs.join_existing(&key, member.clone(), info, ofports, &mut self.tables, touched.as_deref_mut());
                    (member, id.expect("a shared part's conjunction exists"))
                }
                Part::Resolved { member, info, key, clauses } => {
                    (member.clone(), self.conjs.join(key, member, info, clauses, &mut self.tables, touched.as_deref_mut()))
                }
            };
            c.rules.push((member, id));
        }
        self.finish(c, touched)
    }

    /// Adds the isolation drops of a contribution.
    fn finish(&mut self, c: Contribution, touched: Option<&mut BTreeSet<FlowKey>>) -> Contribution {
        self.tables.add(c.isolation.iter().map(|&(d, p)| isolation_part(d, p)).collect(), touched);
        c
    }
}

/// The cluster policies whose rules a change of these pods may change: those whose subjects or
/// peers may select the pod before or after ([`policy::cluster_policy::ClusterPolicy::may_select`]),
/// and every rejected one (it fails closed for every pod its subject selected, or all of them).
fn selecting(cluster: &Cluster, changes: &[(Option<&Pod>, Option<&Pod>)]) -> BTreeSet<PolicyRef> {
    let mut out = BTreeSet::new();
    let no_labels = policy::Labels::new();
    for pod in changes.iter().flat_map(|(a, b)| [a, b]).flatten() {
        let ns_labels = cluster.namespaces.get(&pod.key.namespace).map_or(&no_labels, |n| &n.labels);
        out.extend(cluster.cluster_policies.values().filter(|p| p.may_select(&pod.labels, ns_labels)).map(|p| p.policy_ref()));
        out.extend(cluster.rejected_cluster_policies.iter().map(|r| r.policy_ref()));
    }
    out
}

/// The sources that apply to `pod` (or resolve named ports on it): its port appearing or
/// leaving changes what they compile to on this node.
fn applied_to(cluster: &Cluster, pod: &Pod) -> BTreeSet<Source> {
    let no_labels = policy::Labels::new();
    let ns_labels = cluster.namespaces.get(&pod.key.namespace).map_or(&no_labels, |n| &n.labels);
    let policies = cluster
        .policies
        .iter()
        .filter(|(_, p)| p.dependence(pod, ns_labels) == Dependence::Full)
        .map(|((ns, name), _)| Source::Policy(ns.clone(), name.clone()));
    let rejected = cluster.rejected_policies.iter().enumerate().filter(|(_, r)| r.depends_on(pod)).map(|(i, _)| Source::Rejected(i));
    policies.chain(rejected).collect()
}

/// Whether a change of `pod` can change what `rule` compiles to: it applies to the pod, names
/// it as a peer, or has named ports that may resolve on it (egress: on any destination its
/// peers reach beyond a plain pod set).
fn names_pod(rule: &Rule, pod: &Pod) -> bool {
    let peer = match &rule.peers {
        Peers::Any => false,
        Peers::Set { pods, .. } => pods.contains(&pod.key),
    };
    rule.applied_to.contains(&Endpoint::Pod(pod.key.clone())) || peer || resolves_named_ports_anywhere(rule)
}

/// Whether `rule` has egress named ports that resolve on destinations beyond a plain pod set
/// (any address, or address blocks): on any pod.
fn resolves_named_ports_anywhere(rule: &Rule) -> bool {
    let named = matches!(&rule.services, Services::List(list) if list.iter().any(|s| matches!(s.port, policy::PortMatch::Named(_))));
    let beyond_pods = match &rule.peers {
        Peers::Any => true,
        Peers::Set { blocks, .. } => !blocks.is_empty(),
    };
    named && rule.direction == Direction::Egress && beyond_pods
}

/// A pod's IPv4 addresses as host CIDRs (the datapath is IPv4-only).
fn host_cidrs(pod: &Pod) -> impl Iterator<Item = Ipv4Network> + '_ {
    pod.ips.iter().filter_map(|ip| match ip {
        std::net::IpAddr::V4(v4) => Some(Ipv4Network::from(*v4)),
        std::net::IpAddr::V6(_) => None,
    })
}

/// Table misses, forwarding and TrafficControl flows: small, recomputed on every change.
fn fixed_flows(cluster: &Cluster, topo: &Topology) -> (FlowSet, BTreeMap<String, TcStatus>) {
    let (tc, status) = traffic_control_flows(&cluster.traffic_control_plan(), topo);
    (miss_flows().into_iter().chain(forwarding_flows(topo)).chain(tc).collect(), status)
}
