//! Random admin and baseline policies for the oracle-vs-switch test, built directly as
//! normalized rules (no manifests): AdminNetworkPolicy, tiered ClusterNetworkPolicy in three
//! tiers and BaselineAdminNetworkPolicy, with Allow, Deny, Reject and Pass, applied to random
//! pods (local and remote), with pod, address-block or any peers and numeric, range, named or
//! any services. Priorities are drawn from a few values, so rules of different policies collide
//! on purpose; Antrea's include some the fixed OpenFlow priority mapping cannot order (20 and
//! 30, 2.25 and 2.5; tiers 45 and 50 share a band), so the ranked slots are checked too.
//!
//! Rules are ordered as the switch orders them (`pipeline::placement`): by tier, priority, then
//! action (Deny and Reject before Pass before Allow) where policies tie, then id.
#![allow(dead_code)]

use crate::random_cluster::{Dice, EXTERNALS, LOCAL_POD_CIDR, REMOTE_POD_CIDR, RandomCluster};
use policy::{
    Action, Cluster, Direction, Endpoint, IpBlock, Origin, Peers, PodKey, PolicyKind, PolicyRef, PortMatch, Protocol, Rule,
    RuleId, RuleSet, Service, Services, Tier,
};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

/// Admin and baseline rules by policy.
pub type Tiered = BTreeMap<PolicyRef, Vec<Rule>>;

const ACTIONS: [Action; 4] = [Action::Allow, Action::Deny, Action::Reject, Action::Pass];
const KINDS: [PolicyKind; 3] =
    [PolicyKind::AdminNetworkPolicy, PolicyKind::AntreaClusterNetworkPolicy, PolicyKind::BaselineAdminNetworkPolicy];
/// A custom tier, Antrea's emergency (in the custom tier's priority band), networkops and
/// application tiers.
const TIERED_TIERS: [u32; 4] = [45, 50, 150, 250];
/// Antrea's policy priorities drawn from: a few small ones, a fraction apart, and past 15.
const ANTREA_PRIORITIES: [f64; 6] = [0.0, 1.0, 2.25, 2.5, 20.0, 30.0];
const NAMED: [(&str, Protocol); 4] =
    [("web", Protocol::Tcp), ("dns", Protocol::Udp), ("sig", Protocol::Sctp), ("metrics", Protocol::Tcp)];

/// Up to five policies of one to three rules each.
pub fn generate(d: &mut Dice, cluster: &Cluster, generated: &RandomCluster) -> Tiered {
    let pods: Vec<PodKey> = cluster.pods.values().filter(|p| !p.host_network).map(|p| p.key.clone()).collect();
    let mut out = Tiered::new();
    if pods.is_empty() || d.chance(10) {
        return out;
    }
    for i in 0..d.between(1, 5) {
        let kind = d.pick(&KINDS);
        let tier = match kind {
            PolicyKind::AdminNetworkPolicy => Tier::ADMIN,
            PolicyKind::AntreaClusterNetworkPolicy => Tier(Tier::ADMIN_TIERED_BASE.0 + d.pick(&TIERED_TIERS)),
            _ => Tier::BASELINE,
        };
        let policy = PolicyRef { kind, namespace: None, name: format!("p{i}") };
        // Antrea's tiers (the tiered tiers) take float priorities, scaled as the producer does.
        let priority = match kind {
            PolicyKind::AntreaClusterNetworkPolicy => (d.pick(&ANTREA_PRIORITIES) * policy::cluster_policy::ANTREA_PRIORITY_SCALE) as u32,
            _ => d.below(3) as u32,
        };
        let applied: BTreeSet<Endpoint> = d.subset(&pods, 1, pods.len()).into_iter().map(Endpoint::Pod).collect();
        let rules = (0..d.between(1, 3))
            .map(|index| {
                let direction = if d.chance(50) { Direction::Ingress } else { Direction::Egress };
                Rule {
                    id: RuleId(format!("{kind}/p{i}/{}/{index}", direction.lower())),
                    origin: Origin { policy: policy.clone(), rule: format!("{}[{index}]", direction.lower()) },
                    direction,
                    tier,
                    // The producer's order: the policy's priority, then the rule's index.
                    priority: priority * policy::cluster_policy::MAX_RULES + index as u32,
                    action: d.pick(&ACTIONS),
                    applied_to: if d.chance(70) { applied.clone() } else { BTreeSet::from([Endpoint::Pod(d.pick(&pods))]) },
                    peers: peers(d, &pods),
                    services: services(d, generated),
                    // Logged rules' flows also send new connections to the agent: they must decide alike.
                    audit: d.chance(30).then(|| policy::AuditLog { label: String::new() }),
                }
            })
            .collect();
        out.insert(policy, rules);
    }
    out
}

fn peers(d: &mut Dice, pods: &[PodKey]) -> Peers {
    if d.chance(25) {
        return Peers::Any;
    }
    let chosen = d.subset(pods, 0, 3).into_iter().collect();
    let mut blocks = Vec::new();
    if d.chance(40) {
        let (net, prefix) = d.pick(&[LOCAL_POD_CIDR, REMOTE_POD_CIDR]);
        let cidr = ipnetwork::IpNetwork::new(IpAddr::V4(net), prefix).expect("valid CIDR");
        let except = if d.chance(50) {
            vec![ipnetwork::IpNetwork::new(IpAddr::V4(Ipv4Addr::from(u32::from(net) | 2)), 31).expect("valid CIDR")]
        } else {
            Vec::new()
        };
        blocks.push(IpBlock { cidr, except });
    }
    if d.chance(30) {
        blocks.push(IpBlock::host(IpAddr::V4(d.pick(&EXTERNALS))));
    }
    blocks.sort();
    Peers::Set { pods: chosen, blocks }
}

fn services(d: &mut Dice, generated: &RandomCluster) -> Services {
    if d.chance(30) || generated.services.is_empty() {
        return Services::Any;
    }
    let mut list: Vec<Service> = (0..d.between(1, 2))
        .map(|_| {
            if d.chance(20) {
                let (name, protocol) = d.pick(&NAMED);
                return Service { protocol, port: PortMatch::Named(name.to_string()) };
            }
            let (protocol, port) = d.pick(&generated.services);
            let hi = if d.chance(25) { port.saturating_add(10) } else { port };
            Service { protocol, port: PortMatch::Range(port, hi) }
        })
        .collect();
    list.sort();
    list.dedup();
    Services::List(list)
}

/// The cluster's rules with the tiered ones, in the switch's order.
pub fn merged(mut rules: RuleSet, tiered: &Tiered) -> RuleSet {
    rules.rules.extend(tiered.values().flatten().cloned());
    let rank = pipeline::placement::action_rank;
    rules.rules.sort_by(|a, b| (a.tier, a.priority, rank(a.action), &a.id).cmp(&(b.tier, b.priority, rank(b.action), &b.id)));
    rules
}

/// Only the admin tiers' rules, without isolation: what an established packet in its
/// connection's original direction is still checked against.
pub fn admin_only(rules: &RuleSet) -> RuleSet {
    RuleSet { rules: rules.rules.iter().filter(|r| r.tier < Tier::NETWORK_POLICY).cloned().collect(), ..RuleSet::default() }
}
