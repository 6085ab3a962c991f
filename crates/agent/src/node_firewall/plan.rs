//! What the host's firewall must do, derived from the normalized rules that apply to each of
//! this host's endpoints and the addresses of their peers: per endpoint and direction, the
//! admin tiers in evaluation order, then the baseline. The rules come in their concrete form
//! ([`RuleSet::host_concrete`]: peer pods as addresses, named ports as numbers); here they
//! become address ranges, so the ruleset is a pure rendering.
use super::Bypass;
use super::addresses::AddressRanges;
use policy::netpol::Direction;
use policy::rules::{Action, Endpoint, Origin, RuleId, RuleSet, Tier};
use policy::{Cluster, ConcreteRule, ConcreteServices, PeerAddrs, PortRange};
use std::net::IpAddr;

/// This host: the rule endpoints it realizes (a Node; an ExternalNode's ExternalEntities, one
/// per interface) and what is never cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Its endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Traffic no policy cuts (loopback is always part of it).
    pub bypass: Vec<Bypass>,
}

/// One rule as the firewall realizes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRule {
    /// The rule's identity, also the name of its nftables counter (shared by its parts).
    pub id: RuleId,
    /// The policy and rule it comes from (the labels of its counter's metrics).
    pub origin: Origin,
    /// Which part of the rule (a rule whose named ports resolve differently on different pods
    /// has several, each with its own peers and ports; see [`RuleSet::host_concrete`]).
    pub part: u32,
    /// What a match does.
    pub action: Action,
    /// Peer addresses; `None` is every address.
    pub peers: Option<AddressRanges>,
    /// Destination ports; `None` is every protocol and port.
    pub services: Option<Vec<PortRange>>,
}

/// The realization of one direction of one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectionPlan {
    /// Tiers in evaluation order; no match anywhere is allowed. (No NetworkPolicy selects a
    /// host, so none isolates it: its admin and baseline rules are all that decide.)
    Layers {
        /// Admin tiers (first match decides, Pass goes on to the baseline).
        admin: Vec<(Tier, Vec<HostRule>)>,
        /// Baseline rules (first match decides).
        baseline: Vec<HostRule>,
    },
    /// The direction could not be realized (nftables refused it): everything but the bypass
    /// list and established connections is dropped in this direction.
    FailClosed {
        /// Why.
        reasons: Vec<String>,
    },
}

/// One endpoint of the host: its addresses (what its ingress traffic is sent to and its
/// egress traffic sent from) and both directions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointPlan {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Its addresses, as the cluster knows them.
    pub addresses: Vec<IpAddr>,
    /// Traffic to it.
    pub ingress: DirectionPlan,
    /// Traffic from it.
    pub egress: DirectionPlan,
}

impl EndpointPlan {
    /// The plan of one direction.
    pub fn direction(&self, direction: Direction) -> &DirectionPlan {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }
}

/// The whole firewall of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Traffic no policy cuts.
    pub bypass: Vec<Bypass>,
    /// Each endpoint, in the host's order.
    pub endpoints: Vec<EndpointPlan>,
}

impl Plan {
    /// The plan for `host` from every rule of the cluster ([`RuleSet::host_concrete`]: peers as
    /// addresses, ports as numbers) and the endpoints' addresses.
    pub fn new(host: &Host, rules: &RuleSet, cluster: &Cluster) -> Plan {
        let endpoints = host
            .endpoints
            .iter()
            .map(|e| {
                let concrete = rules.host_concrete(cluster, e);
                EndpointPlan {
                    endpoint: e.clone(),
                    addresses: cluster.endpoint_ips(e).to_vec(),
                    ingress: direction_plan(&concrete, Direction::Ingress),
                    egress: direction_plan(&concrete, Direction::Egress),
                }
            })
            .collect();
        Plan { bypass: host.bypass.clone(), endpoints }
    }

    /// This plan with `directions` of every endpoint closed for `why`.
    pub fn closing(&self, directions: &[Direction], why: &str) -> Plan {
        let mut out = self.clone();
        for e in &mut out.endpoints {
            for d in directions {
                let closed = DirectionPlan::FailClosed { reasons: vec![why.to_string()] };
                match d {
                    Direction::Ingress => e.ingress = closed,
                    Direction::Egress => e.egress = closed,
                }
            }
        }
        out
    }
}

fn direction_plan(concrete: &[ConcreteRule], direction: Direction) -> DirectionPlan {
    let mut admin: Vec<(Tier, Vec<HostRule>)> = Vec::new();
    let mut baseline = Vec::new();
    for rule in concrete.iter().filter(|r| r.direction == direction) {
        let realized = host_rule(rule);
        match rule.tier {
            t if t < Tier::NETWORK_POLICY => match admin.last_mut() {
                Some((last, list)) if *last == t => list.push(realized),
                _ => admin.push((t, vec![realized])),
            },
            // Allow-only and never isolating a host: it changes nothing there.
            Tier::NETWORK_POLICY => {}
            _ => baseline.push(realized),
        }
    }
    DirectionPlan::Layers { admin, baseline }
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
    HostRule { id: rule.rule.clone(), origin: rule.origin.clone(), part: rule.part, action: rule.action, peers, services }
}
