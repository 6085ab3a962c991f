//! Cluster-scoped, tiered policy in its checked form: network-policy-api's
//! ClusterNetworkPolicy (`policy.networking.k8s.io/v1alpha2`, tiers Admin and Baseline), its
//! predecessors AdminNetworkPolicy and BaselineAdminNetworkPolicy (`v1alpha1`), and Antrea's
//! tiered ClusterNetworkPolicy (`crd.antrea.io/v1beta1`, with [`AntreaTier`]s and
//! [`ClusterGroup`]s), all normalized into one [`ClusterPolicy`] shape, and that shape's
//! [`Rule`]s.
//!
//! Antrea's tiers sit between the Admin tier and NetworkPolicy, in the order of their
//! priorities, except its `baseline` tier, which is the Baseline tier; Pass in any of them
//! goes on to NetworkPolicy (Antrea's semantics).
//!
//! Semantics (network-policy-api's API documentation): the Admin tier is evaluated before
//! NetworkPolicy and the Baseline tier after it; within a tier a lower `priority` goes first,
//! and within a policy the rules go in the order written. Accept (v1alpha1: Allow) and Deny
//! decide the direction; Pass skips the rest of its tier. Subjects and `namespaces`/`pods`
//! peers never include hostNetwork pods; `nodes` peers are the selected nodes' addresses,
//! `networks` peers are address blocks that also match in-cluster pods. A peer list that
//! selects nothing matches nothing.
use crate::cluster::{Cluster, NamespaceScope};
use crate::manifest::ObjectError;
use crate::netpol::{Direction, IpBlock, Service};
use crate::rules::{Action, AuditLog, Endpoint, Origin, Peers, PolicyKind, PolicyRef, Rule, RuleId, RuleSet, Services, Tier};
use crate::objects::{Labels, PodKey};
use crate::selector::Selector;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Rules per direction a policy may have (v1alpha1 allows 100, v1alpha2 25): the rule index
/// fits below this in [`Rule::priority`].
pub const MAX_RULES: u32 = 100;

/// A checked cluster policy, whatever API it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterPolicy {
    /// Which API kind it is (names it in errors and verdicts).
    pub kind: PolicyKind,
    /// Its name (cluster-scoped: no namespace).
    pub name: String,
    /// Admin or Baseline.
    pub tier: Tier,
    /// Precedence within the tier, lower first: 0-1000 (a BaselineAdminNetworkPolicy has 0);
    /// Antrea's priorities (1.0-10000.0) times [`ANTREA_PRIORITY_SCALE`].
    pub priority: u32,
    /// Antrea: the tier it names, resolved into `tier` when the cluster view is built.
    #[serde(default)]
    pub antrea_tier: Option<String>,
    /// The pods it applies to (Antrea: unless a rule names its own).
    pub subject: Subject,
    /// Ingress rules, in precedence order.
    pub ingress: Vec<ClusterRule>,
    /// Egress rules, in precedence order.
    pub egress: Vec<ClusterRule>,
}

/// The pods a cluster policy applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Subject {
    /// Every pod of the namespaces whose labels match.
    Namespaces(Selector),
    /// The pods whose labels match, in the namespaces whose labels match.
    Pods {
        /// Namespaces by label.
        namespaces: Selector,
        /// Pods by label.
        pods: Selector,
    },
    /// Antrea: the pods of a [`ClusterGroup`], by name.
    Group(String),
    /// Antrea (`appliedTo.nodeSelector`): the Kubernetes Nodes whose labels match, as host
    /// endpoints (their own network stack, not their pods).
    Nodes(Selector),
    /// Antrea (`appliedTo.externalEntitySelector`): the ExternalEntities whose labels match, in
    /// the namespaces whose labels match.
    ExternalEntities {
        /// Namespaces by label.
        namespaces: Selector,
        /// ExternalEntities by label.
        entities: Selector,
    },
    /// Antrea: the endpoints of any of these.
    AnyOf(Vec<Subject>),
}

/// One rule of a cluster policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRule {
    /// Its name (or `ingress[i]` when the manifest gave none).
    pub name: String,
    /// Allow, Deny or Pass.
    pub action: Action,
    /// Whom it matches; at least one.
    pub peers: Vec<ClusterPeer>,
    /// Protocols and destination ports; `None`: all.
    pub services: Option<Vec<Service>>,
    /// Antrea: the pods this rule applies to, instead of the policy's subject.
    #[serde(default)]
    pub applied_to: Option<Subject>,
    /// Audit logging of the connections it decides (Antrea's `enableLogging`).
    #[serde(default)]
    pub audit: Option<AuditLog>,
}

/// One peer of a cluster policy rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterPeer {
    /// Every pod (not hostNetwork) of the namespaces whose labels match.
    Namespaces(Selector),
    /// The pods whose labels match, in the namespaces whose labels match.
    Pods {
        /// Namespaces by label.
        namespaces: Selector,
        /// Pods by label.
        pods: Selector,
    },
    /// The addresses of the nodes whose labels match (egress).
    Nodes(Selector),
    /// Address blocks, pods' addresses included (egress).
    Networks(Vec<IpBlock>),
    /// Domain names (egress): not supported yet, so the peer matches nothing (reported as a
    /// warning when the object is read).
    DomainNames(Vec<String>),
    /// Antrea: the members of a [`ClusterGroup`], by name.
    Group(String),
    /// Antrea (`externalEntitySelector`): the addresses of the ExternalEntities whose labels
    /// match, in the namespaces whose labels match.
    ExternalEntities {
        /// Namespaces by label.
        namespaces: Selector,
        /// ExternalEntities by label.
        entities: Selector,
    },
}

/// Antrea's priorities are floats with up to three decimals: scaled to an integer order.
pub const ANTREA_PRIORITY_SCALE: f64 = 1000.0;

/// An Antrea tier (`crd.antrea.io/v1beta1` Tier, or one of [`DEFAULT_TIERS`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AntreaTier {
    /// Its name.
    pub name: String,
    /// 0-255, lower first.
    pub priority: u32,
}

/// Antrea's built-in tiers and their priorities; `baseline` is evaluated after NetworkPolicy.
pub const DEFAULT_TIERS: [(&str, u32); 6] =
    [("emergency", 50), ("securityops", 100), ("networkops", 150), ("platform", 200), ("application", 250), ("baseline", 253)];

/// The tier a policy that names none is in.
pub const DEFAULT_TIER: &str = "application";

impl AntreaTier {
    /// Where this tier's rules are evaluated.
    pub fn tier(&self) -> Tier {
        if self.name == "baseline" { Tier::BASELINE } else { Tier(Tier::ADMIN_TIERED_BASE.0 + self.priority) }
    }
}

/// An Antrea ClusterGroup: pods by selectors, address blocks, or other groups' members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterGroup {
    /// Its name.
    pub name: String,
    /// What it holds.
    pub members: GroupMembers,
}

/// What a [`ClusterGroup`] holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupMembers {
    /// Pods (not hostNetwork) chosen by selectors.
    Pods {
        /// Namespaces by label (`None`: every namespace).
        namespaces: Option<Selector>,
        /// Pods by label (`None`: every pod).
        pods: Option<Selector>,
    },
    /// Address blocks.
    Blocks(Vec<IpBlock>),
    /// The members of these groups (which hold no groups themselves).
    Children(Vec<String>),
}

/// What is left of a rejected cluster policy: enough to fail closed for the pods it meant to
/// apply to. It denies all traffic of its subjects (every pod when its subject was unusable)
/// in the directions it had rules for, at its own tier and priority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedClusterPolicy {
    /// `Kind name`.
    pub object: String,
    /// Its kind.
    pub kind: PolicyKind,
    /// Its name.
    pub name: String,
    /// Its tier (Admin when unreadable).
    pub tier: Tier,
    /// Its priority (0 when unreadable: first in its tier).
    pub priority: u32,
    /// Its subject, when that part was valid.
    pub subject: Option<Subject>,
    /// The directions it meant to govern.
    pub directions: BTreeSet<Direction>,
}

impl ClusterPolicy {
    /// This policy as a [`PolicyRef`].
    pub fn policy_ref(&self) -> PolicyRef {
        PolicyRef { kind: self.kind, namespace: None, name: self.name.clone() }
    }

    /// The rules of one direction.
    pub fn rules(&self, direction: Direction) -> &[ClusterRule] {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }

    /// The id of rule `index` of `direction`, e.g. `ClusterNetworkPolicy/egress-tcp/egress/0`.
    pub fn rule_id(&self, direction: Direction, index: usize) -> RuleId {
        RuleId(format!("{}/{}/{}/{index}", self.kind, self.name, direction.lower()))
    }
}

impl Subject {
    /// The endpoints it selects: pods with their own network namespace, Nodes and
    /// ExternalEntities.
    pub fn endpoints(&self, cluster: &Cluster) -> BTreeSet<Endpoint> {
        match self {
            Subject::Namespaces(ns) => selected(cluster, Some(ns), None).into_iter().map(Endpoint::Pod).collect(),
            Subject::Pods { namespaces, pods } => selected(cluster, Some(namespaces), Some(pods)).into_iter().map(Endpoint::Pod).collect(),
            Subject::Group(name) => cluster.group_members(name).0.into_iter().map(Endpoint::Pod).collect(),
            Subject::Nodes(sel) => cluster.select_nodes(sel).map(|n| Endpoint::Node(n.name.clone())).collect(),
            Subject::ExternalEntities { namespaces, entities } => {
                cluster.select_entities(namespaces, entities).map(|e| Endpoint::ExternalEntity(e.key.clone())).collect()
            }
            Subject::AnyOf(list) => list.iter().flat_map(|s| s.endpoints(cluster)).collect(),
        }
    }

    /// The groups it names.
    pub fn groups(&self) -> Vec<&str> {
        match self {
            Subject::Group(name) => vec![name.as_str()],
            Subject::AnyOf(list) => list.iter().flat_map(Subject::groups).collect(),
            _ => Vec::new(),
        }
    }
}

/// Pods (not hostNetwork) of the namespaces `namespaces` selects (all without one) that `pods`
/// selects (all without one).
fn selected(cluster: &Cluster, namespaces: Option<&Selector>, pods: Option<&Selector>) -> BTreeSet<PodKey> {
    let everything = Selector::everything();
    let scope = NamespaceScope::Matching(namespaces.unwrap_or(&everything));
    cluster.select(scope, pods).map(|p| p.key.clone()).collect()
}

impl Cluster {
    /// The members of the ClusterGroup `name`: pods and address blocks (none when there is no
    /// such group: the cluster view rejects policies that name a missing group).
    pub fn group_members(&self, name: &str) -> (BTreeSet<PodKey>, Vec<IpBlock>) {
        match self.groups.get(name).map(|g| &g.members) {
            None => (BTreeSet::new(), Vec::new()),
            Some(GroupMembers::Pods { namespaces, pods }) => (selected(self, namespaces.as_ref(), pods.as_ref()), Vec::new()),
            Some(GroupMembers::Blocks(blocks)) => (BTreeSet::new(), blocks.clone()),
            Some(GroupMembers::Children(children)) => {
                let (mut pods, mut blocks) = (BTreeSet::new(), Vec::new());
                for child in children {
                    // Children hold no groups (checked when the view is built): no recursion.
                    if !matches!(self.groups.get(child).map(|g| &g.members), Some(GroupMembers::Children(_))) {
                        let (p, b) = self.group_members(child.as_str());
                        pods.extend(p);
                        blocks.extend(b);
                    }
                }
                (pods, blocks)
            }
        }
    }
}

/// The order of rule `index` of a policy with `priority` within its tier ([`Rule::priority`]).
fn rule_priority(priority: u32, index: usize) -> u32 {
    priority * MAX_RULES + index as u32
}

/// A cluster policy rule's [`Rule::priority`] split back into its policy's priority (Antrea's
/// scaled by [`ANTREA_PRIORITY_SCALE`]) and the rule's index in its direction.
pub fn order_parts(priority: u32) -> (u32, u32) {
    (priority / MAX_RULES, priority % MAX_RULES)
}

fn peers_of(cluster: &Cluster, list: &[ClusterPeer]) -> Peers {
    let mut pods = BTreeSet::new();
    let mut blocks = Vec::new();
    for peer in list {
        match peer {
            ClusterPeer::Namespaces(ns) => pods.extend(selected(cluster, Some(ns), None)),
            ClusterPeer::Pods { namespaces, pods: sel } => pods.extend(selected(cluster, Some(namespaces), Some(sel))),
            ClusterPeer::Group(name) => {
                let (p, b) = cluster.group_members(name);
                pods.extend(p);
                blocks.extend(b);
            }
            ClusterPeer::Nodes(sel) => blocks.extend(
                cluster.nodes.values().filter(|n| sel.matches(&n.labels)).flat_map(|n| n.internal_ips.iter().map(|ip| IpBlock::host(*ip))),
            ),
            ClusterPeer::Networks(nets) => blocks.extend(nets.iter().cloned()),
            ClusterPeer::ExternalEntities { namespaces, entities } => {
                blocks.extend(cluster.select_entities(namespaces, entities).flat_map(|e| e.ips.iter().map(|ip| IpBlock::host(*ip))))
            }
            ClusterPeer::DomainNames(_) => {}
        }
    }
    blocks.sort();
    blocks.dedup();
    Peers::Set { pods, blocks }
}

impl Cluster {
    /// The rules of one cluster policy, as [`Cluster::rules`] gathers them.
    pub fn cluster_policy_rules(&self, policy: &ClusterPolicy, out: &mut RuleSet) {
        let applied_to = policy.subject.endpoints(self);
        let policy_ref = policy.policy_ref();
        for direction in [Direction::Ingress, Direction::Egress] {
            for (i, rule) in policy.rules(direction).iter().enumerate() {
                let applied_to = rule.applied_to.as_ref().map_or_else(|| applied_to.clone(), |s| s.endpoints(self));
                out.rules.push(Rule {
                    id: policy.rule_id(direction, i),
                    origin: Origin { policy: policy_ref.clone(), rule: rule.name.clone() },
                    direction,
                    tier: policy.tier,
                    priority: rule_priority(policy.priority, i),
                    action: rule.action,
                    applied_to,
                    peers: peers_of(self, &rule.peers),
                    services: rule.services.clone().map_or(Services::Any, Services::List),
                    audit: rule.audit.clone(),
                });
            }
        }
    }

    /// The deny-all rules a rejected cluster policy leaves in its place (fail closed), for the
    /// pods it meant to apply to. Never for a host: a bad object must not lock a node or an
    /// ExternalNode out of the network (it is reported, and the host's other policies stay).
    pub fn rejected_cluster_policy_rules(&self, rejected: &RejectedClusterPolicy, out: &mut RuleSet) {
        let applied_to: BTreeSet<Endpoint> = match &rejected.subject {
            Some(subject) => subject.endpoints(self).into_iter().filter(|e| !e.is_host()).collect(),
            None => self.policy_pods().map(|p| Endpoint::Pod(p.key.clone())).collect(),
        };
        let policy = PolicyRef { kind: rejected.kind, namespace: None, name: rejected.name.clone() };
        for &direction in &rejected.directions {
            out.rules.push(Rule {
                id: RuleId(format!("{}/{}/{}/rejected", rejected.kind, rejected.name, direction.lower())),
                origin: Origin { policy: policy.clone(), rule: "rejected: fails closed".into() },
                direction,
                tier: rejected.tier,
                priority: rule_priority(rejected.priority, 0),
                action: Action::Deny,
                applied_to: applied_to.clone(),
                peers: Peers::Any,
                services: Services::Any,
                audit: None,
            });
        }
    }
}

impl Cluster {
    /// Drops every ClusterGroup (from `named`: source and name) whose child groups are missing
    /// or have children themselves (Antrea allows one level), with an error naming it.
    pub(crate) fn check_groups(&mut self, named: &[(&str, String)]) {
        for (source, name) in named {
            let Some(GroupMembers::Children(children)) = self.groups.get(name).map(|g| &g.members) else { continue };
            let bad = children.iter().enumerate().find_map(|(i, child)| match self.groups.get(child).map(|g| &g.members) {
                None => Some((i, format!("ClusterGroup {child} does not exist"))),
                Some(GroupMembers::Children(_)) => Some((i, format!("ClusterGroup {child} has child groups itself: one level only"))),
                Some(_) => None,
            });
            if let Some((i, message)) = bad {
                self.groups.remove(name);
                let field = format!("spec.childGroups[{i}]");
                self.errors.push(ObjectError { object: format!("ClusterGroup {name}"), field, message, source: source.to_string() });
            }
        }
    }

    /// Gives each Antrea policy (from `named`: source and name) its tier, and checks the groups
    /// it names. A policy whose tier or groups do not exist is rejected, naming the field, and
    /// fails closed for the pods it applies to.
    pub(crate) fn resolve_antrea_policies(&mut self, named: &[(&str, String)]) {
        for (source, name) in named {
            let key = (PolicyKind::AntreaClusterNetworkPolicy, name.clone());
            let Some(policy) = self.cluster_policies.get(&key) else { continue };
            match self.antrea_problem(policy) {
                Ok(tier) => {
                    self.cluster_policies.get_mut(&key).expect("present").tier = tier;
                }
                Err((field, message)) => {
                    let policy = self.cluster_policies.remove(&key).expect("present");
                    let object = format!("{} {name}", policy.kind);
                    self.rejected_cluster_policies.push(crate::manifest::file::applied_by(&policy));
                    self.errors.push(ObjectError { object, field, message, source: source.to_string() });
                }
            }
        }
    }

    /// The tier of an Antrea policy, or the field and why it cannot be realized.
    fn antrea_problem(&self, policy: &ClusterPolicy) -> Result<Tier, (String, String)> {
        let name = policy.antrea_tier.as_deref().unwrap_or(DEFAULT_TIER);
        let tier = DEFAULT_TIERS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, p)| AntreaTier { name: n.to_string(), priority: *p })
            .or_else(|| self.tiers.get(name).cloned())
            .ok_or_else(|| ("spec.tier".to_string(), format!("tier {name:?} does not exist")))?;
        let subjects = std::iter::once(&policy.subject).chain(policy.ingress.iter().chain(&policy.egress).filter_map(|r| r.applied_to.as_ref()));
        for group in subjects.flat_map(Subject::groups) {
            match self.groups.get(group).map(|g| &g.members) {
                None => return Err(("spec.appliedTo".into(), format!("ClusterGroup {group} does not exist"))),
                Some(GroupMembers::Blocks(_)) => {
                    return Err(("spec.appliedTo".into(), format!("ClusterGroup {group} holds ipBlocks: it cannot be applied to")));
                }
                Some(_) => {}
            }
        }
        for (direction, rules) in [("ingress", &policy.ingress), ("egress", &policy.egress)] {
            for (i, rule) in rules.iter().enumerate() {
                for peer in &rule.peers {
                    if let ClusterPeer::Group(g) = peer
                        && !self.groups.contains_key(g)
                    {
                        return Err((format!("spec.{direction}[{i}]"), format!("ClusterGroup {g} does not exist")));
                    }
                }
            }
        }
        Ok(tier.tier())
    }
}

impl Subject {
    /// The entries of the `appliedTo` list it was read from, in order (a single entry is a
    /// list of one; a policy whose rules name their own has none).
    fn entries(&self) -> Vec<&Subject> {
        match self {
            Subject::AnyOf(list) => list.iter().collect(),
            one => vec![one],
        }
    }
}

impl Cluster {
    /// Warns about each host selector in the `appliedTo` of the Antrea policies (from `named`:
    /// source and name) that selects nothing: a node policy selecting no node is in force but
    /// protects nothing, which its author should hear about (by object and field), while every
    /// other policy stays as it is.
    pub(crate) fn warn_about_host_policies(&mut self, named: &[(&str, String)]) {
        let mut warnings = Vec::new();
        for (source, name) in named {
            let Some(policy) = self.cluster_policies.get(&(PolicyKind::AntreaClusterNetworkPolicy, name.clone())) else { continue };
            let mut lists = vec![("spec.appliedTo".to_string(), &policy.subject)];
            for (direction, rules) in [("ingress", &policy.ingress), ("egress", &policy.egress)] {
                lists.extend(rules.iter().enumerate().filter_map(|(i, r)| Some((format!("spec.{direction}[{i}].appliedTo"), r.applied_to.as_ref()?))));
            }
            for (at, subject) in lists {
                for (i, entry) in subject.entries().into_iter().enumerate() {
                    let (field, what) = match entry {
                        Subject::Nodes(sel) if self.select_nodes(sel).next().is_none() => ("nodeSelector", "Node"),
                        Subject::ExternalEntities { namespaces, entities } if self.select_entities(namespaces, entities).next().is_none() => {
                            ("externalEntitySelector", "ExternalEntity")
                        }
                        _ => continue,
                    };
                    warnings.push(ObjectError {
                        object: format!("{} {name}", policy.kind),
                        field: format!("{at}[{i}].{field}"),
                        message: format!("selects no {what}: the policy applies to no host here"),
                        source: source.to_string(),
                    });
                }
            }
        }
        self.warnings.extend(warnings);
    }
}

impl Cluster {
    /// The admin and baseline rules of every cluster policy (and of every rejected one, which
    /// fails closed), by policy: what the pipeline compiles beside the NetworkPolicies.
    pub fn tiered_rules(&self) -> std::collections::BTreeMap<PolicyRef, Vec<Rule>> {
        let valid = self.cluster_policies.values().map(ClusterPolicy::policy_ref);
        let rejected = self.rejected_cluster_policies.iter().map(RejectedClusterPolicy::policy_ref);
        let keys: BTreeSet<PolicyRef> = valid.chain(rejected).collect();
        keys.into_iter().map(|key| (key.clone(), self.tiered_rules_of(&key))).collect()
    }

    /// The admin and baseline rules of one cluster policy, as [`Cluster::tiered_rules`] gives
    /// them (none when there is no such policy).
    pub fn tiered_rules_of(&self, policy: &PolicyRef) -> Vec<Rule> {
        let mut set = RuleSet::default();
        if let Some(p) = self.cluster_policies.get(&(policy.kind, policy.name.clone())) {
            self.cluster_policy_rules(p, &mut set);
        }
        for rejected in self.rejected_cluster_policies.iter().filter(|r| r.policy_ref() == *policy) {
            self.rejected_cluster_policy_rules(rejected, &mut set);
        }
        set.rules
    }
}

impl RejectedClusterPolicy {
    /// The policy it was, as a [`PolicyRef`].
    pub fn policy_ref(&self) -> PolicyRef {
        PolicyRef { kind: self.kind, namespace: None, name: self.name.clone() }
    }
}

impl ClusterPolicy {
    /// Whether a pod (in a namespace labelled `ns_labels`) may be among the pods its subjects
    /// or peers select, so that the pod appearing, leaving or changing labels may change its
    /// [`Rule`]s. Conservative: a policy naming a ClusterGroup may select any pod; `nodes`,
    /// `networks` and `domainNames` peers select no pod by name (addresses are compiled from
    /// the pods' addresses later, see [`crate::concrete`]).
    pub fn may_select(&self, pod_labels: &Labels, ns_labels: &Labels) -> bool {
        let rules = self.ingress.iter().chain(&self.egress);
        self.subject.may_select(pod_labels, ns_labels)
            || rules.clone().any(|r| r.applied_to.as_ref().is_some_and(|s| s.may_select(pod_labels, ns_labels)))
            || rules.flat_map(|r| &r.peers).any(|peer| match peer {
                ClusterPeer::Namespaces(ns) => ns.matches(ns_labels),
                ClusterPeer::Pods { namespaces, pods } => namespaces.matches(ns_labels) && pods.matches(pod_labels),
                ClusterPeer::Group(_) => true,
                ClusterPeer::Nodes(_) | ClusterPeer::Networks(_) | ClusterPeer::DomainNames(_) | ClusterPeer::ExternalEntities { .. } => false,
            })
    }
}

impl Subject {
    fn may_select(&self, pod_labels: &Labels, ns_labels: &Labels) -> bool {
        match self {
            Subject::Namespaces(ns) => ns.matches(ns_labels),
            Subject::Pods { namespaces, pods } => namespaces.matches(ns_labels) && pods.matches(pod_labels),
            Subject::Group(_) => true,
            Subject::Nodes(_) | Subject::ExternalEntities { .. } => false,
            Subject::AnyOf(list) => list.iter().any(|s| s.may_select(pod_labels, ns_labels)),
        }
    }
}
