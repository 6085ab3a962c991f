//! The cluster objects policy works on, in their checked form: namespaces, pods with their
//! addresses and named container ports, and nodes.
//!
//! These are what remains of a manifest after validation; the serde shapes that mirror the
//! Kubernetes API live in [`crate::manifest`].
use crate::protocol::Protocol;
use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Labels of an object: key → value, sorted.
pub type Labels = BTreeMap<String, String>;

/// The label Kubernetes sets on every namespace to its own name; namespace selectors of the
/// upstream suites select on it.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A pod's identity: namespace and name, written `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PodKey {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
}

impl PodKey {
    /// A key from its two parts.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        PodKey { namespace: namespace.into(), name: name.into() }
    }
}

impl fmt::Display for PodKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A pod key that is not `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pod {0:?} is not written namespace/name")]
pub struct BadPodKey(pub String);

impl FromStr for PodKey {
    type Err = BadPodKey;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(PodKey::new(ns, name))
            }
            _ => Err(BadPodKey(s.to_string())),
        }
    }
}

impl TryFrom<String> for PodKey {
    type Error = BadPodKey;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<PodKey> for String {
    fn from(k: PodKey) -> String {
        k.to_string()
    }
}

/// A port a pod's container declares; the target of named ports in policy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ContainerPort {
    /// The port's name (an IANA service name), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The port number, 1..=65535.
    pub port: u16,
    /// The protocol; TCP when the manifest leaves it out.
    #[serde(default)]
    pub protocol: Protocol,
}

/// A namespace: its name and labels (always including [`NAMESPACE_NAME_LABEL`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    /// The namespace's name.
    pub name: String,
    /// Its labels.
    pub labels: Labels,
}

impl Namespace {
    /// A namespace with the given labels plus the name label Kubernetes adds to every namespace.
    pub fn new(name: impl Into<String>, mut labels: Labels) -> Self {
        let name = name.into();
        labels.insert(NAMESPACE_NAME_LABEL.to_string(), name.clone());
        Namespace { name, labels }
    }
}

/// A pod as policy sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pod {
    /// Namespace and name.
    pub key: PodKey,
    /// Its labels.
    pub labels: Labels,
    /// The node it runs on, if scheduled.
    pub node: Option<String>,
    /// A hostNetwork pod shares its node's addresses; NetworkPolicy never selects it.
    pub host_network: bool,
    /// Its addresses (`status.podIPs`); empty until it runs.
    pub ips: Vec<IpAddr>,
    /// Declared container ports, in manifest order.
    pub ports: Vec<ContainerPort>,
}

impl Pod {
    /// The number of the container port called `name` for `protocol`, if the pod has one.
    /// Named ports in policy resolve this way, on the destination pod.
    pub fn named_port(&self, name: &str, protocol: Protocol) -> Option<u16> {
        self.ports
            .iter()
            .find(|p| p.protocol == protocol && p.name.as_deref() == Some(name))
            .map(|p| p.port)
    }
}

/// A node: labels, pod CIDRs and internal addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// The node's name.
    pub name: String,
    /// Its labels.
    pub labels: Labels,
    /// `spec.podCIDRs` (or `spec.podCIDR`).
    pub pod_cidrs: Vec<IpNetwork>,
    /// `status.addresses` of type InternalIP.
    pub internal_ips: Vec<IpAddr>,
}

impl Node {
    /// Its IPv4 pod CIDRs, in order (weir's datapath is IPv4-only).
    pub fn ipv4_pod_cidrs(&self) -> impl Iterator<Item = ipnetwork::Ipv4Network> + '_ {
        self.pod_cidrs.iter().filter_map(|c| match c {
            IpNetwork::V4(v4) => Some(*v4),
            IpNetwork::V6(_) => None,
        })
    }

    /// Its IPv4 internal addresses, in order.
    pub fn ipv4_internal_ips(&self) -> impl Iterator<Item = std::net::Ipv4Addr> + '_ {
        self.internal_ips.iter().filter_map(|a| match a {
            IpAddr::V4(v4) => Some(*v4),
            IpAddr::V6(_) => None,
        })
    }
}
