//! Hosts outside the pod network as policy endpoints: Antrea's ExternalNode (a VM or bare-metal
//! host, `spec.interfaces[{name, ips}]`) and the ExternalEntity objects policy selects, one per
//! interface of an ExternalNode (or written directly).
//!
//! Derivation follows Antrea's ExternalNode controller: the entity lives in the ExternalNode's
//! namespace, carries a copy of its labels, names it in `spec.externalNode`, and is called
//! `<externalnode>-<first 5 hex digits of sha1(interface name)>` (just `<externalnode>` for an
//! interface without a name). Antrea derives an entity from `interfaces[0]` only; weir derives
//! one from every interface, so the first interface's entity is the one Antrea would create.
use crate::objects::Labels;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An ExternalEntity's identity: namespace and name, written `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ExternalEntityKey {
    /// Its namespace (the ExternalNode's).
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl ExternalEntityKey {
    /// A key from its two parts.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ExternalEntityKey { namespace: namespace.into(), name: name.into() }
    }
}

impl fmt::Display for ExternalEntityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// An ExternalEntity key that is not `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("external entity {0:?} is not written namespace/name")]
pub struct BadEntityKey(pub String);

impl FromStr for ExternalEntityKey {
    type Err = BadEntityKey;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => Ok(ExternalEntityKey::new(ns, name)),
            _ => Err(BadEntityKey(s.to_string())),
        }
    }
}

impl TryFrom<String> for ExternalEntityKey {
    type Error = BadEntityKey;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ExternalEntityKey> for String {
    fn from(k: ExternalEntityKey) -> String {
        k.to_string()
    }
}

/// One network interface of an ExternalNode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInterface {
    /// The interface's name on the host (`eth0`); may be empty in Antrea's API.
    pub name: String,
    /// Its addresses; at least one.
    pub ips: Vec<IpAddr>,
}

/// A host outside the cluster whose interfaces policy governs (`crd.antrea.io/v1alpha1`
/// ExternalNode, or `weir.io/v1alpha1`). Namespaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalNode {
    /// Its namespace.
    pub namespace: String,
    /// Its name (what `weir agent --external-node NAME` names).
    pub name: String,
    /// Its labels, copied onto each derived ExternalEntity.
    pub labels: Labels,
    /// Its interfaces, in manifest order.
    pub interfaces: Vec<HostInterface>,
}

/// What policy selects on a host: an ExternalNode interface (or an entity written directly).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalEntity {
    /// Namespace and name.
    pub key: ExternalEntityKey,
    /// Its labels (an ExternalNode's, for a derived entity).
    pub labels: Labels,
    /// Its addresses (`spec.endpoints[].ip`).
    pub ips: Vec<IpAddr>,
    /// The host interface the addresses are on (`spec.endpoints[].name`), if named.
    pub interface: Option<String>,
    /// The ExternalNode it belongs to (`spec.externalNode`), if any: the agent of that host
    /// realizes its policy.
    pub external_node: Option<String>,
}

/// Hex digits of the interface name's SHA-1 in a derived entity's name (Antrea's
/// `interfaceNameLength`).
const INTERFACE_HASH_DIGITS: usize = 5;

impl ExternalNode {
    /// The name of the entity derived from the interface called `interface`, as Antrea's
    /// `GenExternalEntityName` computes it.
    pub fn entity_name(&self, interface: &str) -> String {
        if interface.is_empty() {
            return self.name.clone();
        }
        let digest = Sha1::digest(interface.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}-{}", self.name, &hex[..INTERFACE_HASH_DIGITS])
    }

    /// One ExternalEntity per interface, in interface order.
    pub fn entities(&self) -> Vec<ExternalEntity> {
        self.interfaces
            .iter()
            .map(|i| ExternalEntity {
                key: ExternalEntityKey::new(&self.namespace, self.entity_name(&i.name)),
                labels: self.labels.clone(),
                ips: i.ips.clone(),
                interface: (!i.name.is_empty()).then(|| i.name.clone()),
                external_node: Some(self.name.clone()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(interfaces: &[(&str, &str)]) -> ExternalNode {
        ExternalNode {
            namespace: "vms".into(),
            name: "vm1".into(),
            labels: Labels::from([("role".to_string(), "db".to_string())]),
            interfaces: interfaces.iter().map(|(n, ip)| HostInterface { name: n.to_string(), ips: vec![ip.parse().unwrap()] }).collect(),
        }
    }

    #[test]
    fn an_interface_becomes_an_entity_named_as_antrea_names_it_with_the_nodes_labels() {
        // sha1("eth0") = 3e616bf6..., so Antrea calls the entity vm1-3e616.
        let n = vm(&[("eth0", "192.168.1.10"), ("", "192.168.2.10")]);
        let e = n.entities();
        assert_eq!(e[0].key, ExternalEntityKey::new("vms", "vm1-3e616"));
        assert_eq!(e[0].interface.as_deref(), Some("eth0"));
        assert_eq!(e[0].external_node.as_deref(), Some("vm1"));
        assert_eq!(e[0].labels, n.labels);
        assert_eq!(e[0].ips, vec!["192.168.1.10".parse::<IpAddr>().unwrap()]);
        assert_eq!(e[1].key.name, "vm1", "an interface without a name gives the node's own name");
    }

    #[test]
    fn an_entity_key_reads_back_from_its_text() {
        let k = ExternalEntityKey::new("vms", "vm1-3e616");
        assert_eq!(k.to_string().parse::<ExternalEntityKey>().unwrap(), k);
        assert!("nope".parse::<ExternalEntityKey>().is_err());
        assert_eq!(serde_json::to_string(&k).unwrap(), "\"vms/vm1-3e616\"");
    }
}
