//! The reference evaluator (the oracle): what the rules say about one packet.
//!
//! It interprets [`RuleSet`] directly — peers by pod membership and address blocks, named
//! ports resolved on the destination pod at evaluation time — and shares no code with
//! [`RuleSet::concrete`], so comparing the compiled pipeline against it is meaningful.
//!
//! A packet passes when the source's egress and the destination's ingress both allow it.
//! Each direction is decided for the endpoint on that side (the source for egress, the
//! destination for ingress): a pod, or a host endpoint (a Node by its InternalIPs, an
//! ExternalEntity by its addresses; a hostNetwork pod's address is its node's), each decided
//! the same way. No NetworkPolicy selects a host, so the NetworkPolicy tier never isolates
//! one: admin tiers and the baseline tier decide its traffic. An address outside the cluster
//! is never isolated. A pod's ingress from its own node is always allowed
//! ([`Outcome::FromOwnNode`]).
use crate::cluster::Cluster;
use crate::netpol::Direction;
use crate::objects::Pod;
use crate::protocol::Protocol;
use crate::rules::{Action, Endpoint, Origin, Peers, PolicyRef, Rule, RuleId, RuleSet, Services, Tier};
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

/// A packet, as far as policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Packet {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Transport protocol.
    pub protocol: Protocol,
    /// Destination port.
    pub dst_port: u16,
}

/// The outcome in one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// A rule allowed it.
    Allowed,
    /// A rule denied it, or the endpoint is isolated and no rule allowed it.
    Denied,
    /// Nothing isolates the endpoint in this direction and no rule matched.
    NotIsolated,
    /// Ingress of a pod from its own node (an address of the Node it runs on): always allowed,
    /// whatever the policies, so kubelet's probes work (Kubernetes' expectation, and Antrea's
    /// "Node to local Pod traffic is always allowed").
    FromOwnNode,
}

/// The rule that decided, by id and origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    /// Stable id.
    pub id: RuleId,
    /// Policy and rule label.
    pub origin: Origin,
    /// Its action.
    pub action: Action,
}

impl RuleRef {
    fn of(rule: &Rule) -> Self {
        RuleRef { id: rule.id.clone(), origin: rule.origin.clone(), action: rule.action }
    }
}

/// How one direction was decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The outcome.
    pub outcome: Outcome,
    /// The endpoint this direction was decided for (`None` for an address outside the cluster).
    pub endpoint: Option<Endpoint>,
    /// The rule that decided, if one did.
    pub rule: Option<RuleRef>,
    /// For a default deny: the policies that isolate the endpoint.
    pub isolated_by: Vec<PolicyRef>,
}

impl Decision {
    /// Whether this direction lets the packet through.
    pub fn allows(&self) -> bool {
        self.outcome != Outcome::Denied
    }

    fn not_isolated(endpoint: Option<Endpoint>) -> Self {
        Decision { outcome: Outcome::NotIsolated, endpoint, rule: None, isolated_by: Vec::new() }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = self.endpoint.as_ref().map_or("the address".to_string(), |e| e.to_string());
        match (&self.outcome, &self.rule) {
            (Outcome::Allowed, Some(r)) => write!(f, "allowed by {} ({})", r.origin, r.id),
            (Outcome::Denied, Some(r)) => write!(f, "denied by {} ({:?}, {})", r.origin, r.action, r.id),
            (Outcome::Denied, None) => {
                let by: Vec<String> = self.isolated_by.iter().map(ToString::to_string).collect();
                write!(f, "denied: {who} is isolated by {} and no rule allows it", by.join(", "))
            }
            (Outcome::NotIsolated, _) => write!(f, "allowed: no policy isolates {who}"),
            (Outcome::FromOwnNode, _) => write!(f, "allowed: from the node {who} runs on (always allowed)"),
            (Outcome::Allowed, None) => write!(f, "allowed"),
        }
    }
}

/// The verdict for a packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Whether the packet is delivered.
    pub allowed: bool,
    /// The source's egress decision.
    pub egress: Decision,
    /// The destination's ingress decision.
    pub ingress: Decision,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", if self.allowed { "ALLOWED" } else { "DENIED" })?;
        writeln!(f, "  egress:  {}", self.egress)?;
        write!(f, "  ingress: {}", self.ingress)
    }
}

struct View<'a> {
    cluster: &'a Cluster,
    packet: &'a Packet,
    dst_pod: Option<&'a Pod>,
}

impl View<'_> {
    fn peer_matches(&self, rule: &Rule) -> bool {
        let peer_ip = match rule.direction {
            Direction::Egress => self.packet.dst,
            Direction::Ingress => self.packet.src,
        };
        match &rule.peers {
            Peers::Any => true,
            Peers::Set { pods, blocks } => {
                self.cluster.pod_by_ip(peer_ip).is_some_and(|p| pods.contains(&p.key))
                    || blocks.iter().any(|b| b.contains(peer_ip))
            }
        }
    }

    fn service_matches(&self, rule: &Rule) -> bool {
        match &rule.services {
            Services::Any => true,
            Services::List(list) => {
                list.iter().any(|s| s.matches(self.packet.protocol, self.packet.dst_port, self.dst_pod))
            }
        }
    }

    fn matches(&self, rule: &Rule, endpoint: &Endpoint) -> bool {
        rule.applied_to.contains(endpoint) && self.peer_matches(rule) && self.service_matches(rule)
    }

    fn decide(&self, rules: &RuleSet, direction: Direction, endpoint: Option<Endpoint>) -> Decision {
        let Some(endpoint) = endpoint else { return Decision::not_isolated(None) };
        let mut in_direction = rules.direction(direction).peekable();
        // Admin tiers: first match decides; Pass goes on to NetworkPolicy.
        while let Some(rule) = in_direction.next_if(|r| r.tier < Tier::NETWORK_POLICY) {
            if !self.matches(rule, &endpoint) {
                continue;
            }
            match rule.action {
                Action::Allow => return self.decided(Outcome::Allowed, endpoint, rule),
                Action::Deny | Action::Reject => return self.decided(Outcome::Denied, endpoint, rule),
                Action::Pass => break,
            }
        }
        let mut in_direction = in_direction.skip_while(|r| r.tier < Tier::NETWORK_POLICY).peekable();
        let isolated_by = rules.isolated.get(direction).get(&endpoint);
        let mut first_allow = None;
        while let Some(rule) = in_direction.next_if(|r| r.tier == Tier::NETWORK_POLICY) {
            if first_allow.is_none() && rule.action == Action::Allow && self.matches(rule, &endpoint) {
                first_allow = Some(rule);
            }
        }
        if let Some(isolated_by) = isolated_by {
            return match first_allow {
                Some(rule) => self.decided(Outcome::Allowed, endpoint, rule),
                None => Decision {
                    outcome: Outcome::Denied,
                    endpoint: Some(endpoint),
                    rule: None,
                    isolated_by: isolated_by.iter().cloned().collect(),
                },
            };
        }
        // Baseline: only for endpoints NetworkPolicy leaves unisolated; Pass skips the rest of
        // the tier, to the default (allowed).
        for rule in in_direction {
            if !self.matches(rule, &endpoint) {
                continue;
            }
            match rule.action {
                Action::Allow => return self.decided(Outcome::Allowed, endpoint, rule),
                Action::Deny | Action::Reject => return self.decided(Outcome::Denied, endpoint, rule),
                Action::Pass => break,
            }
        }
        Decision::not_isolated(Some(endpoint))
    }

    fn decided(&self, outcome: Outcome, endpoint: Endpoint, rule: &Rule) -> Decision {
        Decision { outcome, endpoint: Some(endpoint), rule: Some(RuleRef::of(rule)), isolated_by: Vec::new() }
    }
}

/// Evaluates `packet` against `rules` in `cluster`.
pub fn evaluate(cluster: &Cluster, rules: &RuleSet, packet: &Packet) -> Verdict {
    let src_pod = cluster.pod_by_ip(packet.src);
    let dst_pod = cluster.pod_by_ip(packet.dst);
    let view = View { cluster, packet, dst_pod };
    let endpoint = |pod: Option<&Pod>, ip| pod.map(|p| Endpoint::Pod(p.key.clone())).or_else(|| cluster.host_at(ip).cloned());
    let egress = view.decide(rules, Direction::Egress, endpoint(src_pod, packet.src));
    let ingress = match dst_pod {
        Some(pod) if from_own_node(cluster, pod, packet.src) => {
            Decision { outcome: Outcome::FromOwnNode, endpoint: Some(Endpoint::Pod(pod.key.clone())), rule: None, isolated_by: Vec::new() }
        }
        _ => view.decide(rules, Direction::Ingress, endpoint(dst_pod, packet.dst)),
    };
    Verdict { allowed: egress.allows() && ingress.allows(), egress, ingress }
}

/// Whether `src` is an address of the node `pod` runs on.
fn from_own_node(cluster: &Cluster, pod: &Pod, src: IpAddr) -> bool {
    pod.node.as_ref().and_then(|n| cluster.nodes.get(n)).is_some_and(|n| n.internal_ips.contains(&src))
}

/// Every policy the verdict names (deciding rules and isolating policies), for reports.
pub fn policies_named(v: &Verdict) -> BTreeSet<PolicyRef> {
    [&v.egress, &v.ingress]
        .into_iter()
        .flat_map(|d| d.rule.iter().map(|r| r.origin.policy.clone()).chain(d.isolated_by.iter().cloned()))
        .collect()
}
