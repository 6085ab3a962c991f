//! The core/v1 kinds weir reads — Namespace, Pod, Node — as manifest shapes, and their checks.
//! Only the fields policy needs are typed; the rest of each object is ignored.
use super::meta::{NameRule, ObjectMeta};
use super::netpol::parse_cidr;
use crate::objects::{ContainerPort, Namespace, Node, Pod, PodKey};
use crate::protocol::Protocol;
use crate::selector::FieldError;
use crate::syntax;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// A Namespace document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceDoc {
    /// Name and labels.
    pub metadata: ObjectMeta,
}

/// A Pod document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodDoc {
    /// Name, namespace, labels.
    pub metadata: ObjectMeta,
    /// Placement, network mode, containers.
    #[serde(default)]
    pub spec: Option<PodSpec>,
    /// Addresses.
    #[serde(default)]
    pub status: Option<PodStatus>,
}

/// The part of `PodSpec` weir reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    /// The node it is scheduled on.
    #[serde(default)]
    pub node_name: Option<String>,
    /// Whether it shares the node's network namespace.
    #[serde(default)]
    pub host_network: Option<bool>,
    /// Its containers.
    #[serde(default)]
    pub containers: Option<Vec<ContainerSpec>>,
}

/// The part of a `Container` weir reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// The container's name.
    #[serde(default)]
    pub name: Option<String>,
    /// Declared ports.
    #[serde(default)]
    pub ports: Option<Vec<ContainerPortSpec>>,
}

/// `ContainerPort`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPortSpec {
    /// An IANA service name, the target of named ports.
    #[serde(default)]
    pub name: Option<String>,
    /// The port number.
    pub container_port: i64,
    /// TCP (default), UDP or SCTP.
    #[serde(default)]
    pub protocol: Option<String>,
}

/// The part of `PodStatus` weir reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodStatus {
    /// The primary address.
    #[serde(default, rename = "podIP")]
    pub pod_ip: Option<String>,
    /// Every address (dual stack).
    #[serde(default, rename = "podIPs")]
    pub pod_ips: Option<Vec<PodIp>>,
}

/// An entry of `status.podIPs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodIp {
    /// The address.
    pub ip: String,
}

/// A Node document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDoc {
    /// Name and labels.
    pub metadata: ObjectMeta,
    /// Pod CIDRs.
    #[serde(default)]
    pub spec: Option<NodeSpec>,
    /// Addresses.
    #[serde(default)]
    pub status: Option<NodeStatus>,
}

/// The part of `NodeSpec` weir reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSpec {
    /// The primary pod CIDR.
    #[serde(default, rename = "podCIDR")]
    pub pod_cidr: Option<String>,
    /// Every pod CIDR.
    #[serde(default, rename = "podCIDRs")]
    pub pod_cidrs: Option<Vec<String>>,
}

/// The part of `NodeStatus` weir reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Addresses by type.
    #[serde(default)]
    pub addresses: Option<Vec<NodeAddress>>,
}

/// `NodeAddress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddress {
    /// `InternalIP`, `ExternalIP`, `Hostname`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The address.
    pub address: String,
}

fn parse_ip(s: &str, field: &str) -> Result<IpAddr, FieldError> {
    s.parse::<IpAddr>().map_err(|_| FieldError::new(field, format!("{s:?} is not a valid IP address")))
}

impl NamespaceDoc {
    /// Validates into a namespace.
    pub fn check(&self) -> Result<Namespace, FieldError> {
        let name = self.metadata.checked_name(NameRule::Label)?;
        Ok(Namespace::new(name, self.metadata.checked_labels()?))
    }
}

impl PodDoc {
    /// Validates into a pod.
    pub fn check(&self) -> Result<Pod, FieldError> {
        let name = self.metadata.checked_name(NameRule::Subdomain)?;
        let namespace = self.metadata.checked_namespace()?;
        let labels = self.metadata.checked_labels()?;
        let spec = self.spec.clone().unwrap_or_default();
        let node = spec.node_name.clone();
        if let Some(n) = &node {
            syntax::dns1123_subdomain(n).map_err(|m| FieldError::new("spec.nodeName", m))?;
        }
        let mut ports = Vec::new();
        let mut names = BTreeSet::new();
        for (c, container) in spec.containers.iter().flatten().enumerate() {
            for (i, p) in container.ports.iter().flatten().enumerate() {
                let at = format!("spec.containers[{c}].ports[{i}]");
                let port = syntax::port_number(p.container_port).map_err(|m| FieldError::new(format!("{at}.containerPort"), m))?;
                let protocol = match p.protocol.as_deref() {
                    None => Protocol::Tcp,
                    Some(s @ ("TCP" | "UDP" | "SCTP")) => s.parse().expect("one of the three spellings"),
                    Some(other) => {
                        return Err(FieldError::new(
                            format!("{at}.protocol"),
                            format!("unsupported protocol {other:?}: expected TCP, UDP or SCTP"),
                        ));
                    }
                };
                if let Some(n) = &p.name {
                    syntax::iana_svc_name(n).map_err(|m| FieldError::new(format!("{at}.name"), m))?;
                    if !names.insert(n.clone()) {
                        return Err(FieldError::new(format!("{at}.name"), format!("duplicate port name {n:?} in the pod")));
                    }
                }
                ports.push(ContainerPort { name: p.name.clone(), port, protocol });
            }
        }
        let status = self.status.clone().unwrap_or_default();
        let mut ips = Vec::new();
        if let Some(ip) = &status.pod_ip {
            ips.push(parse_ip(ip, "status.podIP")?);
        }
        for (i, ip) in status.pod_ips.iter().flatten().enumerate() {
            let ip = parse_ip(&ip.ip, &format!("status.podIPs[{i}].ip"))?;
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
        if ips.len() > 2 {
            return Err(FieldError::new("status.podIPs", "at most one address per IP family is allowed"));
        }
        if ips.len() == 2 && ips[0].is_ipv4() == ips[1].is_ipv4() {
            return Err(FieldError::new("status.podIPs", "two addresses must be of different IP families"));
        }
        Ok(Pod {
            key: PodKey::new(namespace, name),
            labels,
            node,
            host_network: spec.host_network.unwrap_or(false),
            ips,
            ports,
        })
    }
}

impl NodeDoc {
    /// Validates into a node.
    pub fn check(&self) -> Result<Node, FieldError> {
        let name = self.metadata.checked_name(NameRule::Subdomain)?;
        let labels = self.metadata.checked_labels()?;
        let spec = self.spec.clone().unwrap_or_default();
        let mut pod_cidrs = Vec::new();
        if let Some(c) = &spec.pod_cidr {
            pod_cidrs.push(parse_cidr(c, "spec.podCIDR")?);
        }
        for (i, c) in spec.pod_cidrs.iter().flatten().enumerate() {
            let net = parse_cidr(c, &format!("spec.podCIDRs[{i}]"))?;
            if !pod_cidrs.contains(&net) {
                pod_cidrs.push(net);
            }
        }
        let mut internal_ips = Vec::new();
        for (i, a) in self.status.iter().flat_map(|s| s.addresses.iter().flatten()).enumerate() {
            if a.kind == "InternalIP" {
                internal_ips.push(parse_ip(&a.address, &format!("status.addresses[{i}].address"))?);
            }
        }
        Ok(Node { name, labels, pod_cidrs, internal_ips })
    }
}
