//! Cluster-scoped, tiered policy in its checked form: network-policy-api's
//! ClusterNetworkPolicy (`policy.networking.k8s.io/v1alpha2`, tiers Admin and Baseline) and
//! its predecessors AdminNetworkPolicy and BaselineAdminNetworkPolicy (`v1alpha1`), all
//! normalized into one [`ClusterPolicy`] shape, and that shape's [`Rule`]s.
//!
//! Semantics (network-policy-api's API documentation): the Admin tier is evaluated before
//! NetworkPolicy and the Baseline tier after it; within a tier a lower `priority` goes first,
//! and within a policy the rules go in the order written. Accept (v1alpha1: Allow) and Deny
//! decide the direction; Pass skips the rest of its tier. Subjects and `namespaces`/`pods`
//! peers never include hostNetwork pods; `nodes` peers are the selected nodes' addresses,
//! `networks` peers are address blocks that also match in-cluster pods. A peer list that
//! selects nothing matches nothing.
use crate::cluster::{Cluster, NamespaceScope};
use crate::netpol::{Direction, IpBlock, Service};
use crate::rules::{Action, Endpoint, Origin, Peers, PolicyKind, PolicyRef, Rule, RuleId, RuleSet, Services, Tier};
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
    /// Precedence within the tier, 0-1000, lower first (a BaselineAdminNetworkPolicy has 0).
    pub priority: u32,
    /// The pods it applies to.
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
    /// The endpoints it selects: pods with their own network namespace.
    pub fn endpoints(&self, cluster: &Cluster) -> BTreeSet<Endpoint> {
        let (namespaces, pods) = match self {
            Subject::Namespaces(ns) => (ns, None),
            Subject::Pods { namespaces, pods } => (namespaces, Some(pods)),
        };
        cluster.select(NamespaceScope::Matching(namespaces), pods).map(|p| Endpoint::Pod(p.key.clone())).collect()
    }
}

/// The order of rule `index` of a policy with `priority` within its tier.
fn rule_priority(priority: u32, index: usize) -> u32 {
    priority * MAX_RULES + index as u32
}

fn peers_of(cluster: &Cluster, list: &[ClusterPeer]) -> Peers {
    let mut pods = BTreeSet::new();
    let mut blocks = Vec::new();
    for peer in list {
        match peer {
            ClusterPeer::Namespaces(ns) => pods.extend(cluster.select(NamespaceScope::Matching(ns), None).map(|p| p.key.clone())),
            ClusterPeer::Pods { namespaces, pods: sel } => {
                pods.extend(cluster.select(NamespaceScope::Matching(namespaces), Some(sel)).map(|p| p.key.clone()))
            }
            ClusterPeer::Nodes(sel) => blocks.extend(
                cluster.nodes.values().filter(|n| sel.matches(&n.labels)).flat_map(|n| n.internal_ips.iter().map(|ip| IpBlock::host(*ip))),
            ),
            ClusterPeer::Networks(nets) => blocks.extend(nets.iter().cloned()),
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
                out.rules.push(Rule {
                    id: policy.rule_id(direction, i),
                    origin: Origin { policy: policy_ref.clone(), rule: rule.name.clone() },
                    direction,
                    tier: policy.tier,
                    priority: rule_priority(policy.priority, i),
                    action: rule.action,
                    applied_to: applied_to.clone(),
                    peers: peers_of(self, &rule.peers),
                    services: rule.services.clone().map_or(Services::Any, Services::List),
                });
            }
        }
    }

    /// The deny-all rules a rejected cluster policy leaves in its place (fail closed).
    pub fn rejected_cluster_policy_rules(&self, rejected: &RejectedClusterPolicy, out: &mut RuleSet) {
        let applied_to = match &rejected.subject {
            Some(subject) => subject.endpoints(self),
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
            });
        }
    }
}
