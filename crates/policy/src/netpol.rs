//! Kubernetes NetworkPolicy (networking.k8s.io/v1) in its checked form, plus the vocabulary
//! shared with the normalized rules: [`Direction`], [`IpBlock`], [`Service`], [`PortMatch`].
//!
//! Defaults are already applied: `policyTypes` is filled in (Ingress, plus Egress when
//! `spec.egress` has rules), a port without protocol is TCP, and an absent or empty
//! `from`/`to`/`ports` list is `None` ("everything").
use crate::objects::Pod;
use crate::protocol::Protocol;
use crate::selector::Selector;
use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

/// Traffic direction, seen from the endpoint a policy applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// Traffic arriving at the endpoint.
    Ingress,
    /// Traffic leaving the endpoint.
    Egress,
}

impl Direction {
    /// `ingress` / `egress`, as in rule ids and rule labels.
    pub fn lower(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Ingress => "Ingress",
            Direction::Egress => "Egress",
        })
    }
}

/// An address block with exceptions (`ipBlock`). Networks are canonical (host bits cleared).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IpBlock {
    /// The block.
    pub cidr: IpNetwork,
    /// Sub-blocks of `cidr` that do not match.
    pub except: Vec<IpNetwork>,
}

impl IpBlock {
    /// One address (`/32` or `/128`).
    pub fn host(ip: IpAddr) -> Self {
        let prefix = if ip.is_ipv4() { 32 } else { 128 };
        IpBlock { cidr: IpNetwork::new(ip, prefix).expect("full-length prefix is valid"), except: Vec::new() }
    }

    /// Whether `ip` lies in the block and in none of its exceptions.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.cidr.contains(ip) && !self.except.iter().any(|e| e.contains(ip))
    }
}

impl fmt::Display for IpBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.cidr)?;
        for e in &self.except {
            write!(f, " except {e}")?;
        }
        Ok(())
    }
}

/// Which destination ports a service admits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PortMatch {
    /// Every port of the protocol.
    Any,
    /// An inclusive range (`port` alone is `Range(port, port)`; with `endPort`, up to it).
    Range(u16, u16),
    /// A container port name, resolved on the destination pod.
    Named(String),
}

/// A protocol and the ports it admits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Service {
    /// The protocol.
    pub protocol: Protocol,
    /// The ports.
    pub port: PortMatch,
}

impl Service {
    /// Whether a packet to `dst_port`/`protocol` on `dst` matches. Named ports resolve on
    /// `dst` (the pod the packet is addressed to); with no destination pod they match nothing.
    pub fn matches(&self, protocol: Protocol, dst_port: u16, dst: Option<&Pod>) -> bool {
        if protocol != self.protocol {
            return false;
        }
        match &self.port {
            PortMatch::Any => true,
            PortMatch::Range(lo, hi) => (*lo..=*hi).contains(&dst_port),
            PortMatch::Named(name) => dst.and_then(|p| p.named_port(name, protocol)) == Some(dst_port),
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.port {
            PortMatch::Any => write!(f, "{}", self.protocol),
            PortMatch::Range(lo, hi) if lo == hi => write!(f, "{lo}/{}", self.protocol),
            PortMatch::Range(lo, hi) => write!(f, "{lo}-{hi}/{}", self.protocol),
            PortMatch::Named(n) => write!(f, "{n}/{}", self.protocol),
        }
    }
}

/// One entry of `from`/`to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Peer {
    /// Pods chosen by label. `namespace: None` means the policy's own namespace;
    /// `pod: None` means every pod of the selected namespaces.
    Pods {
        /// `podSelector`, if given.
        pod: Option<Selector>,
        /// `namespaceSelector`, if given.
        namespace: Option<Selector>,
    },
    /// An address block.
    Block(IpBlock),
}

/// One ingress or egress rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRule {
    /// `from`/`to`; `None` when absent or empty (every peer).
    pub peers: Option<Vec<Peer>>,
    /// `ports`; `None` when absent or empty (every port and protocol).
    pub ports: Option<Vec<Service>>,
}

/// A checked NetworkPolicy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkPolicy {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The pods (of its namespace) it applies to.
    pub pod_selector: Selector,
    /// The directions it isolates, defaults applied.
    pub policy_types: BTreeSet<Direction>,
    /// Ingress rules (ignored unless `policy_types` has Ingress).
    pub ingress: Vec<PolicyRule>,
    /// Egress rules (ignored unless `policy_types` has Egress).
    pub egress: Vec<PolicyRule>,
}

impl NetworkPolicy {
    /// The rules of one direction, empty when the policy does not cover it.
    pub fn rules(&self, direction: Direction) -> &[PolicyRule] {
        if !self.policy_types.contains(&direction) {
            return &[];
        }
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }
}
