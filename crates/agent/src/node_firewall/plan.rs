//! What the host's firewall must do, derived from the normalized rules that apply to this
//! host's endpoints and the addresses of their peers: per direction, the admin tiers in
//! evaluation order, the NetworkPolicy layer (when it isolates the host) and the baseline.
//! The rules come in their concrete form ([`RuleSet::concrete`]: peer pods as addresses, named
//! ports as numbers); here they become address ranges, so the ruleset is a pure rendering.
use super::addresses::AddressRanges;
use super::bypass::Bypass;
use policy::netpol::Direction;
use policy::rules::{Action, Endpoint, RuleId, RuleSet, Tier};
use policy::{Cluster, ConcreteRule, ConcreteServices, PeerAddrs, PortRange};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// This host as a policy endpoint: which endpoints of the rules it is, the addresses its
/// ingress traffic is sent to (and its egress traffic sent from), and what is never cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The rule endpoints this host realizes (a Node, an ExternalNode's interfaces).
    pub endpoints: BTreeSet<Endpoint>,
    /// Its addresses.
    pub addresses: Vec<IpAddr>,
    /// Traffic no policy cuts (loopback is always part of it).
    pub bypass: Vec<Bypass>,
}

/// One rule as the firewall realizes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRule {
    /// The rule's identity, also the name of its nftables counter (shared by its parts).
    pub id: RuleId,
    /// Which part of the rule (a rule whose named ports resolve differently on different pods
    /// has several, each with its own peers and ports; see [`RuleSet::concrete`]).
    pub part: u32,
    /// What a match does.
    pub action: Action,
    /// Peer addresses; `None` is every address.
    pub peers: Option<AddressRanges>,
    /// Destination ports; `None` is every protocol and port.
    pub services: Option<Vec<PortRange>>,
}

/// The realization of one direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectionPlan {
    /// Tiers in evaluation order; no match anywhere is allowed.
    Layers {
        /// Admin tiers (first match decides, Pass goes on to the lower layers).
        admin: Vec<(Tier, Vec<HostRule>)>,
        /// The NetworkPolicy allow rules when the host is isolated (then nothing else is
        /// allowed); `None` when it is not, and the baseline decides.
        isolated: Option<Vec<HostRule>>,
        /// Baseline rules (first match decides).
        baseline: Vec<HostRule>,
    },
    /// The direction could not be realized (nftables refused it): everything but the bypass
    /// list and established connections is dropped in this direction.
    FailClosed {
        /// Why, naming each rule.
        reasons: Vec<String>,
    },
}

/// The whole firewall: the host and both directions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// This host.
    pub host: Host,
    /// Traffic to the host.
    pub ingress: DirectionPlan,
    /// Traffic from the host.
    pub egress: DirectionPlan,
}

impl Plan {
    /// The plan for `host` from every rule of the cluster (rules applying to other endpoints
    /// are ignored) and the pods' addresses.
    pub fn new(host: Host, rules: &RuleSet, cluster: &Cluster) -> Plan {
        let ingress = direction_plan(&host, rules, cluster, Direction::Ingress);
        let egress = direction_plan(&host, rules, cluster, Direction::Egress);
        Plan { host, ingress, egress }
    }

    /// The plan of one direction.
    pub fn direction(&self, direction: Direction) -> &DirectionPlan {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }

    /// This plan with `directions` closed for `why`.
    pub fn closing(&self, directions: &[Direction], why: &str) -> Plan {
        let mut out = self.clone();
        for d in directions {
            let closed = DirectionPlan::FailClosed { reasons: vec![why.to_string()] };
            match d {
                Direction::Ingress => out.ingress = closed,
                Direction::Egress => out.egress = closed,
            }
        }
        out
    }

    /// Why a direction fails closed, if one does.
    pub fn failures(&self) -> Vec<String> {
        [&self.ingress, &self.egress]
            .into_iter()
            .flat_map(|d| match d {
                DirectionPlan::FailClosed { reasons } => reasons.clone(),
                DirectionPlan::Layers { .. } => Vec::new(),
            })
            .collect()
    }
}

fn direction_plan(host: &Host, rules: &RuleSet, cluster: &Cluster, direction: Direction) -> DirectionPlan {
    let mut admin: Vec<(Tier, Vec<HostRule>)> = Vec::new();
    let (mut netpol, mut baseline) = (Vec::new(), Vec::new());
    let applies = |r: &ConcreteRule| r.direction == direction && r.applied_to.iter().any(|e| host.endpoints.contains(e));
    for rule in rules.concrete(cluster).into_iter().filter(applies) {
        let realized = host_rule(&rule);
        match rule.tier {
            t if t < Tier::NETWORK_POLICY => match admin.last_mut() {
                Some((last, list)) if *last == t => list.push(realized),
                _ => admin.push((t, vec![realized])),
            },
            Tier::NETWORK_POLICY => netpol.push(realized),
            _ => baseline.push(realized),
        }
    }
    let isolated = host.endpoints.iter().any(|e| rules.isolated.contains(direction, e));
    // NetworkPolicy rules only allow; they matter only when the host is isolated.
    netpol.retain(|r: &HostRule| r.action == Action::Allow);
    DirectionPlan::Layers { admin, isolated: isolated.then_some(netpol), baseline }
}

fn host_rule(rule: &ConcreteRule) -> HostRule {
    let peers = match &rule.peers {
        PeerAddrs::Any => None,
        PeerAddrs::Blocks(blocks) => Some(AddressRanges::of(blocks, [])),
    };
    let services = match &rule.services {
        ConcreteServices::Any => None,
        ConcreteServices::List(list) => Some(list.clone()),
    };
    HostRule { id: rule.rule.clone(), part: rule.part, action: rule.action, peers, services }
}
