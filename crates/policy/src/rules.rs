//! Normalized rules: every policy kind becomes [`Rule`]s of one shape, which the pipeline
//! compiles and the evaluator interprets.
//!
//! A rule says: for traffic in `direction` of the endpoints in `applied_to`, to or from
//! `peers`, on `services`, take `action`. Rules are ordered by `(tier, priority, id)`:
//! admin tiers first (first match decides; `Pass` skips to the NetworkPolicy tier), then the
//! NetworkPolicy tier (allow-only; an endpoint in [`RuleSet::isolated`] for the direction is
//! denied unless some rule allows), then the baseline tier (consulted only for endpoints the
//! NetworkPolicy tier does not isolate). No match anywhere means allowed.
use crate::cluster::{Cluster, NamespaceScope};
use crate::external_node::ExternalEntityKey;
use crate::manifest::RejectedPolicy;
use crate::netpol::{Direction, IpBlock, NetworkPolicy, Peer, PolicyRule, Service};
use crate::objects::{Labels, Pod, PodKey};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A rule's stable identity, e.g. `NetworkPolicy/x/allow-80/ingress/0`. Equal input gives
/// equal ids, so the pipeline can derive conj_ids, cookies and priorities from it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RuleId(pub String);

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kinds of policy a rule can come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PolicyKind {
    /// policy.networking.k8s.io AdminNetworkPolicy.
    AdminNetworkPolicy,
    /// policy.networking.k8s.io/v1alpha2 ClusterNetworkPolicy (tier Admin or Baseline).
    ClusterNetworkPolicy,
    /// crd.antrea.io ClusterNetworkPolicy (Antrea's tiers).
    AntreaClusterNetworkPolicy,
    /// networking.k8s.io/v1 NetworkPolicy.
    NetworkPolicy,
    /// policy.networking.k8s.io BaselineAdminNetworkPolicy.
    BaselineAdminNetworkPolicy,
}

impl fmt::Display for PolicyKind {
    /// The kind as objects are named in errors: Antrea's ClusterNetworkPolicy with its API
    /// group, so it is not taken for network-policy-api's.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyKind::AntreaClusterNetworkPolicy => f.write_str(ANTREA_CLUSTER_NETWORK_POLICY),
            other => fmt::Debug::fmt(other, f),
        }
    }
}

/// How Antrea's ClusterNetworkPolicy is named (kind and API group, as kubectl names a resource).
pub const ANTREA_CLUSTER_NETWORK_POLICY: &str = "ClusterNetworkPolicy.crd.antrea.io";

/// A policy object: kind, namespace (for namespaced kinds) and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PolicyRef {
    /// Its kind.
    pub kind: PolicyKind,
    /// Its namespace, for namespaced kinds.
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

impl fmt::Display for PolicyRef {
    /// `NetworkPolicy x/allow-80`, `AdminNetworkPolicy egress-tcp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Where a rule came from: the policy and the rule's place in it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Origin {
    /// The policy.
    pub policy: PolicyRef,
    /// The rule within it, e.g. `ingress[0]` (or an ANP rule's name).
    pub rule: String,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.policy, self.rule)
    }
}

/// Evaluation layer: lower tiers are consulted first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Tier(pub u32);

impl Tier {
    /// AdminNetworkPolicy (before every tiered ClusterNetworkPolicy tier).
    pub const ADMIN: Tier = Tier(10);
    /// Tiered ClusterNetworkPolicy tiers use `Tier(ADMIN_TIERED_BASE.0 + tier priority)`
    /// (Antrea's Emergency 50 … Application 250).
    pub const ADMIN_TIERED_BASE: Tier = Tier(100);
    /// Kubernetes NetworkPolicy.
    pub const NETWORK_POLICY: Tier = Tier(1000);
    /// BaselineAdminNetworkPolicy and the baseline tier.
    pub const BASELINE: Tier = Tier(2000);
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Action {
    /// Let the packet through.
    Allow,
    /// Drop it silently.
    Deny,
    /// Drop it and answer (TCP RST / ICMP unreachable).
    Reject,
    /// Skip the remaining admin rules; let NetworkPolicy decide.
    Pass,
}

impl Action {
    /// The order of rules of one tier and priority (different policies at one priority, which
    /// the APIs leave undefined): Deny and Reject before Pass before Allow. The pipeline gives
    /// them OpenFlow priorities in this order, so the oracle and the switch agree.
    pub fn tie_rank(self) -> u32 {
        match self {
            Action::Deny | Action::Reject => 0,
            Action::Pass => 1,
            Action::Allow => 2,
        }
    }
}

/// Audit logging of the connections a rule decides (Antrea's `enableLogging`): the agent writes
/// a line per new connection, tagged with `label` (Antrea's `logLabel`, empty when none).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AuditLog {
    /// The rule's log label.
    pub label: String,
}

/// Something a rule applies to: a pod, or a host endpoint (a Kubernetes Node, or an
/// ExternalEntity: one interface of an ExternalNode). The oracle decides each the same way.
///
/// Serialized explicitly, one key naming the kind: `{"Pod": "x/a"}`, `{"Node": "n1"}`,
/// `{"ExternalEntity": "vms/vm1-3e616"}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Endpoint {
    /// A pod.
    #[serde(rename = "Pod")]
    Pod(PodKey),
    /// A Kubernetes Node by name: its host network stack (its InternalIP addresses).
    #[serde(rename = "Node")]
    Node(String),
    /// An ExternalEntity by namespace and name (an ExternalNode's interface).
    #[serde(rename = "ExternalEntity")]
    ExternalEntity(ExternalEntityKey),
}

impl Endpoint {
    /// Whether it is a host endpoint (a node or an external entity), realized on the host's
    /// network stack rather than on a pod's port.
    pub fn is_host(&self) -> bool {
        !matches!(self, Endpoint::Pod(_))
    }
}

impl fmt::Display for Endpoint {
    /// `x/a` for a pod (as pods are named everywhere), `node n1`, `externalentity vms/vm1-3e616`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Pod(k) => write!(f, "{k}"),
            Endpoint::Node(n) => write!(f, "node {n}"),
            Endpoint::ExternalEntity(k) => write!(f, "externalentity {k}"),
        }
    }
}

/// The other side of the traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Peers {
    /// Every address.
    Any,
    /// These pods (by their addresses) and these blocks.
    Set {
        /// Pods chosen by selectors.
        pods: BTreeSet<PodKey>,
        /// Address blocks, sorted.
        blocks: Vec<IpBlock>,
    },
}

/// Protocols and ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Services {
    /// Every protocol and port.
    Any,
    /// Any of these, sorted.
    List(Vec<Service>),
}

/// One normalized rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// Stable identity.
    pub id: RuleId,
    /// The policy and rule it came from.
    pub origin: Origin,
    /// The direction, from the applied-to endpoint's side.
    pub direction: Direction,
    /// Layer.
    pub tier: Tier,
    /// Order within the tier (lower first); 0 for NetworkPolicy, where order does not matter.
    pub priority: u32,
    /// What a match does.
    pub action: Action,
    /// The endpoints whose traffic it governs.
    pub applied_to: BTreeSet<Endpoint>,
    /// The other side.
    pub peers: Peers,
    /// Protocols and destination ports.
    pub services: Services,
    /// Whether (and how) the connections it decides are logged.
    pub audit: Option<AuditLog>,
}

/// Endpoints the NetworkPolicy tier isolates, per direction, each with the policies that
/// isolate it (a rejected policy fails closed this way, with no rules of its own).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Isolation {
    /// Isolated for ingress.
    pub ingress: BTreeMap<Endpoint, BTreeSet<PolicyRef>>,
    /// Isolated for egress.
    pub egress: BTreeMap<Endpoint, BTreeSet<PolicyRef>>,
}

impl Isolation {
    /// The map for one direction.
    pub fn get(&self, direction: Direction) -> &BTreeMap<Endpoint, BTreeSet<PolicyRef>> {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }

    fn get_mut(&mut self, direction: Direction) -> &mut BTreeMap<Endpoint, BTreeSet<PolicyRef>> {
        match direction {
            Direction::Ingress => &mut self.ingress,
            Direction::Egress => &mut self.egress,
        }
    }

    /// Whether `endpoint` is isolated in `direction`.
    pub fn contains(&self, direction: Direction, endpoint: &Endpoint) -> bool {
        self.get(direction).contains_key(endpoint)
    }
}

/// Every rule of the cluster, in evaluation order, and the isolation sets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuleSet {
    /// Rules sorted by `(tier, priority, id)`.
    pub rules: Vec<Rule>,
    /// Endpoints isolated by the NetworkPolicy tier.
    pub isolated: Isolation,
}

impl RuleSet {
    /// Puts the rules in evaluation order: tier, priority, then the action's tie rank and the
    /// rule's id (rules of one priority in different policies: undefined upstream, fixed here).
    fn sort(&mut self) {
        self.rules.sort_by(|a, b| (a.tier, a.priority, a.action.tie_rank(), &a.id).cmp(&(b.tier, b.priority, b.action.tie_rank(), &b.id)));
    }

    /// Rules of one direction, in evaluation order.
    pub fn direction(&self, direction: Direction) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(move |r| r.direction == direction)
    }

    /// A rule by id.
    pub fn get(&self, id: &RuleId) -> Option<&Rule> {
        self.rules.iter().find(|r| &r.id == id)
    }

    /// The rules that apply to `endpoint`, in evaluation order: for a host endpoint, what a
    /// host realization (the nftables node firewall, or OVS for an interface on the bridge)
    /// enforces. No NetworkPolicy selects a host, so a host is never in [`RuleSet::isolated`]:
    /// these rules (admin tiers, then baseline) are all that decide its traffic.
    pub fn host_rules<'a>(&'a self, endpoint: &'a Endpoint) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules.iter().filter(move |r| r.applied_to.contains(endpoint))
    }

    /// Every host endpoint some rule applies to, each once, in order.
    pub fn host_endpoints(&self) -> BTreeSet<&Endpoint> {
        self.rules.iter().flat_map(|r| r.applied_to.iter()).filter(|e| e.is_host()).collect()
    }
}

fn peers_of(cluster: &Cluster, policy: &NetworkPolicy, rule: &PolicyRule) -> Peers {
    let Some(list) = &rule.peers else { return Peers::Any };
    // Collected, then built at once: selections come in key order, which the set's bulk
    // build takes in linear time where inserting one by one searches the tree each time.
    let mut pods = Vec::new();
    let mut blocks = Vec::new();
    for peer in list {
        match peer {
            Peer::Block(b) => blocks.push(b.clone()),
            Peer::Pods { pod, namespace } => {
                let scope = match namespace {
                    Some(sel) => NamespaceScope::Matching(sel),
                    None => NamespaceScope::Named(&policy.namespace),
                };
                pods.extend(cluster.select(scope, pod.as_ref()).map(|p| p.key.clone()));
            }
        }
    }
    blocks.sort();
    blocks.dedup();
    Peers::Set { pods: BTreeSet::from_iter(pods), blocks }
}

fn network_policy_rules(cluster: &Cluster, policy: &NetworkPolicy, out: &mut RuleSet) {
    network_policy_rules_where(cluster, policy, |_, _| true, true, out);
}

/// The rules of `policy` for which `wanted(direction, index)` holds, and its isolation.
fn network_policy_rules_where(
    cluster: &Cluster,
    policy: &NetworkPolicy,
    wanted: impl Fn(Direction, usize) -> bool,
    resolve_peers: bool,
    out: &mut RuleSet,
) {
    let policy_ref = policy.policy_ref();
    let applied_to: BTreeSet<Endpoint> = cluster
        .select(NamespaceScope::Named(&policy.namespace), Some(&policy.pod_selector))
        .map(|p| Endpoint::Pod(p.key.clone()))
        .collect();
    for &direction in &policy.policy_types {
        for e in &applied_to {
            out.isolated.get_mut(direction).entry(e.clone()).or_default().insert(policy_ref.clone());
        }
        for (i, rule) in policy.rules(direction).iter().enumerate().filter(|(i, _)| wanted(direction, *i)) {
            out.rules.push(Rule {
                id: policy.rule_id(direction, i),
                origin: policy.rule_origin(direction, i),
                direction,
                tier: Tier::NETWORK_POLICY,
                priority: 0,
                action: Action::Allow,
                applied_to: applied_to.clone(),
                peers: if resolve_peers {
                    peers_of(cluster, policy, rule)
                } else {
                    Peers::Set { pods: BTreeSet::new(), blocks: Vec::new() }
                },
                services: match &rule.ports {
                    None => Services::Any,
                    Some(list) => Services::List(list.clone()),
                },
                audit: None,
            });
        }
    }
}

/// How a pod matters to a policy's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dependence {
    /// Not at all.
    None,
    /// Only as one address among the peers of these rules (direction, index in that
    /// direction): pod peers select it, and none of these rules resolves named ports on it.
    Peer(Vec<(Direction, usize)>),
    /// Otherwise: the policy applies to it, or named ports resolve on it.
    Full,
}

impl NetworkPolicy {
    /// The id of rule `index` of `direction`, e.g. `NetworkPolicy/x/allow-80/ingress/0`.
    pub fn rule_id(&self, direction: Direction, index: usize) -> RuleId {
        RuleId(format!("NetworkPolicy/{}/{}/{}/{index}", self.namespace, self.name, direction.lower()))
    }

    /// This policy as a [`PolicyRef`].
    pub fn policy_ref(&self) -> PolicyRef {
        PolicyRef { kind: PolicyKind::NetworkPolicy, namespace: Some(self.namespace.clone()), name: self.name.clone() }
    }

    /// Where rule `index` of `direction` comes from, e.g. `NetworkPolicy x/allow-80 ingress[0]`.
    pub fn rule_origin(&self, direction: Direction, index: usize) -> Origin {
        Origin { policy: self.policy_ref(), rule: format!("{}[{index}]", direction.lower()) }
    }

    /// How adding, removing or changing `pod` (in a namespace labelled `namespace_labels`)
    /// can change this policy's rules: not at all, by adding or removing its address in the
    /// peers of some rules, or in any way (the policy selects it, or an egress rule with
    /// named ports may send to it: named ports resolve on the destination). A hostNetwork
    /// pod never matters.
    pub fn dependence(&self, pod: &Pod, namespace_labels: &Labels) -> Dependence {
        if pod.host_network {
            return Dependence::None;
        }
        let ns = pod.key.namespace.as_str();
        if ns == self.namespace && self.pod_selector.matches(&pod.labels) {
            return Dependence::Full;
        }
        let selects = |peer: &Peer| match peer {
            Peer::Pods { pod: sel, namespace } => {
                let in_scope = match namespace {
                    Some(nsel) => nsel.matches(namespace_labels),
                    None => ns == self.namespace,
                };
                in_scope && sel.as_ref().is_none_or(|s| s.matches(&pod.labels))
            }
            Peer::Block(b) => pod.ips.iter().any(|ip| b.contains(*ip)),
        };
        let mut peer_of = Vec::new();
        for direction in [Direction::Ingress, Direction::Egress] {
            for (i, rule) in self.rules(direction).iter().enumerate() {
                let named = direction == Direction::Egress
                    && rule.ports.iter().flatten().any(|s| matches!(s.port, crate::netpol::PortMatch::Named(_)));
                let (selected, resolves) = match &rule.peers {
                    // Any peer: only named-port resolution looks at the pods.
                    None => (false, named),
                    Some(peers) => {
                        let selected = peers.iter().any(|p| matches!(p, Peer::Pods { .. }) && selects(p));
                        // A block's addresses do not change with pods, but named ports
                        // resolve on the pods inside it.
                        (selected, named && peers.iter().any(selects))
                    }
                };
                if resolves {
                    return Dependence::Full;
                }
                if selected {
                    peer_of.push((direction, i));
                }
            }
        }
        if peer_of.is_empty() { Dependence::None } else { Dependence::Peer(peer_of) }
    }
}

impl RejectedPolicy {
    /// Whether a change of `pod` can change whom this rejected policy isolates.
    pub fn depends_on(&self, pod: &Pod) -> bool {
        !pod.host_network && pod.key.namespace == self.namespace && self.selector.as_ref().is_none_or(|s| s.matches(&pod.labels))
    }
}

impl Cluster {
    /// The rules and isolation of one policy, as [`Cluster::rules`] gathers them for all.
    pub fn policy_rules(&self, policy: &NetworkPolicy) -> RuleSet {
        let mut out = RuleSet::default();
        network_policy_rules(self, policy, &mut out);
        out
    }

    /// Like [`Cluster::policy_rules`], for only the rules where `wanted(direction, index)`
    /// holds (peers are the costly part to select).
    pub fn policy_rules_where(&self, policy: &NetworkPolicy, wanted: impl Fn(Direction, usize) -> bool) -> RuleSet {
        let mut out = RuleSet::default();
        network_policy_rules_where(self, policy, wanted, true, &mut out);
        out
    }

    /// Like [`Cluster::policy_rules_where`] with the peers left empty (not selected), for
    /// callers that need only what the rules apply to and their services.
    pub fn policy_rule_shapes_where(&self, policy: &NetworkPolicy, wanted: impl Fn(Direction, usize) -> bool) -> RuleSet {
        let mut out = RuleSet::default();
        network_policy_rules_where(self, policy, wanted, false, &mut out);
        out
    }

    /// The endpoints a rejected policy isolates (fail closed), and in which directions.
    pub fn rejected_isolation(&self, rejected: &RejectedPolicy) -> Vec<(Direction, Endpoint)> {
        let selected: Vec<Endpoint> = self
            .select(NamespaceScope::Named(&rejected.namespace), rejected.selector.as_ref())
            .map(|p| Endpoint::Pod(p.key.clone()))
            .collect();
        rejected.directions.iter().flat_map(|d| selected.iter().map(move |e| (*d, e.clone()))).collect()
    }

    /// The rules that can apply to host endpoints, for the host realizations: the cluster
    /// policies' (NetworkPolicy never selects a host, and a rejected policy never closes one),
    /// in evaluation order as [`Cluster::rules`] gives them.
    pub fn host_rule_set(&self) -> RuleSet {
        let mut out = RuleSet::default();
        for policy in self.cluster_policies.values() {
            self.cluster_policy_rules(policy, &mut out);
        }
        out.sort();
        out
    }

    /// Normalizes every policy of the cluster into rules.
    pub fn rules(&self) -> RuleSet {
        let mut out = RuleSet::default();
        for policy in self.policies.values() {
            network_policy_rules(self, policy, &mut out);
        }
        for policy in self.cluster_policies.values() {
            self.cluster_policy_rules(policy, &mut out);
        }
        for rejected in &self.rejected_cluster_policies {
            self.rejected_cluster_policy_rules(rejected, &mut out);
        }
        for rejected in &self.rejected_policies {
            // Fail closed: the pods it meant to select are isolated, and it allows nothing.
            let policy_ref =
                PolicyRef { kind: PolicyKind::NetworkPolicy, namespace: Some(rejected.namespace.clone()), name: rejected.name.clone() };
            for (direction, e) in self.rejected_isolation(rejected) {
                out.isolated.get_mut(direction).entry(e).or_default().insert(policy_ref.clone());
            }
        }
        out.sort();
        out
    }
}
