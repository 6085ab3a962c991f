//! The compile-facing form of the rules: addresses and numeric port ranges only.
//!
//! [`RuleSet::concrete`] resolves what the pipeline cannot: peer pods become their addresses
//! (`/32` or `/128`), and named ports become numbers — on the applied-to pod for ingress, on
//! the destination pod for egress. A rule whose named ports resolve to different numbers on
//! different pods splits into parts:
//! - part 0: every applied-to endpoint × the original peers × the numeric services (present
//!   when the rule has numeric services or none at all);
//! - parts 1..: one per distinct resolution of its named ports, numbered in the sorted order
//!   of the resolved services — ingress: the pods resolving that way × the original peers;
//!   egress: every applied-to endpoint × the destination pods resolving that way.
//!
//! Everything is sorted, so equal input gives equal output.
use crate::cluster::Cluster;
use crate::netpol::{Direction, IpBlock, PortMatch, Service};
use crate::objects::{Pod, PodKey};
use crate::protocol::Protocol;
use crate::rules::{Action, Endpoint, Origin, Peers, Rule, RuleId, RuleSet, Services, Tier};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Peer addresses of a concrete rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum PeerAddrs {
    /// Every address.
    Any,
    /// These blocks, sorted and deduplicated (may be empty: matches nothing).
    Blocks(Vec<IpBlock>),
}

/// A protocol with an inclusive destination port range; `0..=65535` means every port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PortRange {
    /// The protocol.
    pub protocol: Protocol,
    /// First port.
    pub lo: u16,
    /// Last port.
    pub hi: u16,
}

impl PortRange {
    /// Whether the range covers every port of the protocol.
    pub fn is_any_port(&self) -> bool {
        self.lo == 0 && self.hi == u16::MAX
    }
}

/// Services of a concrete rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum ConcreteServices {
    /// Every protocol and port.
    Any,
    /// Any of these, sorted and deduplicated.
    List(Vec<PortRange>),
}

/// One part of a rule, ready to compile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConcreteRule {
    /// The rule it comes from.
    pub rule: RuleId,
    /// Which part of that rule (see the module doc).
    pub part: u32,
    /// Policy and rule label.
    pub origin: Origin,
    /// Direction.
    pub direction: Direction,
    /// Layer.
    pub tier: Tier,
    /// Order within the tier.
    pub priority: u32,
    /// What a match does.
    pub action: Action,
    /// Endpoints it governs (never empty).
    pub applied_to: BTreeSet<Endpoint>,
    /// Peer addresses.
    pub peers: PeerAddrs,
    /// Protocols and port ranges.
    pub services: ConcreteServices,
    /// Audit logging of the connections it decides.
    pub audit: Option<crate::rules::AuditLog>,
}

fn numeric(s: &Service) -> Option<PortRange> {
    match s.port {
        PortMatch::Any => Some(PortRange { protocol: s.protocol, lo: 0, hi: u16::MAX }),
        PortMatch::Range(lo, hi) => Some(PortRange { protocol: s.protocol, lo, hi }),
        PortMatch::Named(_) => None,
    }
}

/// The services of part 0 of a rule whose ports are all numeric (`None` for a rule with
/// named ports, whose parts depend on the pods): what [`RuleSet::concrete`] gives it.
pub fn numeric_services(ports: Option<&[Service]>) -> Option<ConcreteServices> {
    let Some(list) = ports else { return Some(ConcreteServices::Any) };
    let mut numbers = list.iter().map(numeric).collect::<Option<Vec<PortRange>>>()?;
    numbers.sort();
    numbers.dedup();
    Some(ConcreteServices::List(numbers))
}

/// The named services of `list` resolved on `pod`, sorted; empty when none resolves.
fn resolve_named(list: &[Service], pod: &Pod) -> Vec<PortRange> {
    let mut out: Vec<PortRange> = list
        .iter()
        .filter_map(|s| match &s.port {
            PortMatch::Named(name) => {
                pod.named_port(name, s.protocol).map(|n| PortRange { protocol: s.protocol, lo: n, hi: n })
            }
            _ => None,
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn pod_blocks<'a>(pods: impl IntoIterator<Item = &'a Pod>) -> Vec<IpBlock> {
    let mut out: Vec<IpBlock> = pods.into_iter().flat_map(|p| p.ips.iter().map(|ip| IpBlock::host(*ip))).collect();
    out.sort();
    out.dedup();
    out
}

fn peer_addrs(cluster: &Cluster, peers: &Peers) -> PeerAddrs {
    match peers {
        Peers::Any => PeerAddrs::Any,
        Peers::Set { pods, blocks } => {
            let mut out = pod_blocks(pods.iter().filter_map(|k| cluster.pod(k)));
            out.extend(blocks.iter().map(|b| IpBlock { cidr: b.cidr, except: b.except.clone() }));
            out.sort();
            out.dedup();
            PeerAddrs::Blocks(out)
        }
    }
}

/// Destination pods an egress rule's peers can reach, for resolving named ports: the pods of
/// the set, pods whose address lies in a block, or every pod for `Any`.
fn egress_destinations<'a>(cluster: &'a Cluster, peers: &Peers) -> Vec<&'a Pod> {
    if let Peers::Set { pods, blocks } = peers
        && blocks.is_empty()
    {
        return pods.iter().filter_map(|k| cluster.pod(k)).filter(|p| !p.host_network).collect();
    }
    cluster
        .policy_pods()
        .filter(|p| match peers {
            Peers::Any => true,
            Peers::Set { pods, blocks } => {
                pods.contains(&p.key) || p.ips.iter().any(|ip| blocks.iter().any(|b| b.contains(*ip)))
            }
        })
        .collect()
}

fn concrete_rule(cluster: &Cluster, rule: &Rule, out: &mut Vec<ConcreteRule>) {
    if rule.applied_to.is_empty() {
        return;
    }
    let part = |part: u32, applied_to: BTreeSet<Endpoint>, peers: PeerAddrs, services: ConcreteServices| ConcreteRule {
        rule: rule.id.clone(),
        part,
        origin: rule.origin.clone(),
        direction: rule.direction,
        tier: rule.tier,
        priority: rule.priority,
        action: rule.action,
        applied_to,
        peers,
        services,
        audit: rule.audit.clone(),
    };
    let list = match &rule.services {
        Services::Any => {
            out.push(part(0, rule.applied_to.clone(), peer_addrs(cluster, &rule.peers), ConcreteServices::Any));
            return;
        }
        Services::List(list) => list,
    };
    let mut numbers: Vec<PortRange> = list.iter().filter_map(numeric).collect();
    numbers.sort();
    numbers.dedup();
    if !numbers.is_empty() {
        out.push(part(0, rule.applied_to.clone(), peer_addrs(cluster, &rule.peers), ConcreteServices::List(numbers)));
    }
    if !list.iter().any(|s| matches!(s.port, PortMatch::Named(_))) {
        return;
    }
    match rule.direction {
        Direction::Ingress => {
            // Resolve on each applied-to pod.
            let mut groups: BTreeMap<Vec<PortRange>, BTreeSet<Endpoint>> = BTreeMap::new();
            for e in &rule.applied_to {
                let Endpoint::Pod(key) = e else { continue };
                let Some(pod) = cluster.pod(key) else { continue };
                let resolved = resolve_named(list, pod);
                if !resolved.is_empty() {
                    groups.entry(resolved).or_default().insert(e.clone());
                }
            }
            let peers = peer_addrs(cluster, &rule.peers);
            for (i, (services, applied_to)) in groups.into_iter().enumerate() {
                out.push(part(i as u32 + 1, applied_to, peers.clone(), ConcreteServices::List(services)));
            }
        }
        Direction::Egress => {
            // Resolve on each destination pod.
            let mut groups: BTreeMap<Vec<PortRange>, BTreeSet<PodKey>> = BTreeMap::new();
            for pod in egress_destinations(cluster, &rule.peers) {
                let resolved = resolve_named(list, pod);
                if !resolved.is_empty() {
                    groups.entry(resolved).or_default().insert(pod.key.clone());
                }
            }
            for (i, (services, pods)) in groups.into_iter().enumerate() {
                let peers = PeerAddrs::Blocks(pod_blocks(pods.iter().filter_map(|k| cluster.pod(k))));
                out.push(part(i as u32 + 1, rule.applied_to.clone(), peers, ConcreteServices::List(services)));
            }
        }
    }
}

impl RuleSet {
    /// The rules in compile-facing form, in evaluation order, then by part.
    pub fn concrete(&self, cluster: &Cluster) -> Vec<ConcreteRule> {
        let mut out = Vec::new();
        for rule in &self.rules {
            concrete_rule(cluster, rule, &mut out);
        }
        out
    }

    /// The rules that apply to the host endpoint `host` ([`RuleSet::host_rules`]) in
    /// compile-facing form, in evaluation order: peer addresses and port numbers, what a host
    /// realization (the nftables node firewall) installs. A host has no named ports, so an
    /// ingress rule's named ports match nothing on it; egress named ports resolve on the
    /// destination pods as for a pod.
    pub fn host_concrete(&self, cluster: &Cluster, host: &Endpoint) -> Vec<ConcreteRule> {
        let mut out = Vec::new();
        for rule in self.host_rules(host) {
            concrete_rule(cluster, rule, &mut out);
        }
        out.retain(|r| r.applied_to.contains(host));
        out
    }
}
