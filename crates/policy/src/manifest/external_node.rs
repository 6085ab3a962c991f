//! ExternalNode (`crd.antrea.io/v1alpha1`, or `weir.io/v1alpha1`) and ExternalEntity
//! (`crd.antrea.io/v1alpha2`, or `weir.io/v1alpha1`) as manifest shapes, and their checks.
//! Conflicts between objects (two ExternalNodes on one host, an address claimed twice) are
//! found when the cluster view is built ([`crate::Cluster`]).
use super::meta::{NameRule, ObjectMeta};
use crate::external_node::{ExternalEntity, ExternalEntityKey, ExternalNode, HostInterface};
use crate::selector::FieldError;
use crate::syntax;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::IpAddr;

/// The API versions ExternalNode is read under.
pub const EXTERNAL_NODE_API_VERSIONS: [&str; 2] = ["crd.antrea.io/v1alpha1", "weir.io/v1alpha1"];
/// The API versions ExternalEntity is read under.
pub const EXTERNAL_ENTITY_API_VERSIONS: [&str; 2] = ["crd.antrea.io/v1alpha2", "weir.io/v1alpha1"];

/// Longest interface name Linux takes (`IFNAMSIZ` less the terminating NUL).
const MAX_INTERFACE_NAME: usize = 15;

/// An ExternalNode document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalNodeDoc {
    /// API version.
    pub api_version: String,
    /// `ExternalNode`.
    pub kind: String,
    /// Name, namespace, labels.
    pub metadata: ObjectMeta,
    /// Its interfaces.
    pub spec: ExternalNodeSpec,
    /// Written by controllers; not read.
    #[serde(default)]
    pub status: Option<Value>,
}

/// `spec` of an ExternalNode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema, kube::CustomResource))]
#[cfg_attr(feature = "crd", kube(
    group = "weir.io",
    version = "v1alpha1",
    kind = "ExternalNode",
    root = "ExternalNodeObject",
    doc = "Antrea's ExternalNode (the fields of crd.antrea.io/v1alpha1) under weir's group: a host outside the cluster whose interfaces policy governs",
    plural = "externalnodes",
    namespaced,
))]
pub struct ExternalNodeSpec {
    /// The host's interfaces policy governs; at least one.
    pub interfaces: Vec<InterfaceSpec>,
}

/// `spec.interfaces[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
pub struct InterfaceSpec {
    /// The interface's name on the host (may be empty, as in Antrea).
    #[serde(default)]
    pub name: Option<String>,
    /// Its addresses; at least one.
    #[serde(default)]
    pub ips: Option<Vec<String>>,
}

/// An ExternalEntity document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalEntityDoc {
    /// API version.
    pub api_version: String,
    /// `ExternalEntity`.
    pub kind: String,
    /// Name, namespace, labels (owner references and the rest are ignored).
    pub metadata: ObjectMeta,
    /// Its endpoints.
    pub spec: ExternalEntitySpec,
    /// Written by controllers; not read.
    #[serde(default)]
    pub status: Option<Value>,
}

/// `spec` of an ExternalEntity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema, kube::CustomResource))]
#[cfg_attr(feature = "crd", kube(
    group = "weir.io",
    version = "v1alpha1",
    kind = "ExternalEntity",
    root = "ExternalEntityObject",
    doc = "Antrea's ExternalEntity (the fields of crd.antrea.io/v1alpha2) under weir's group: addresses of a host outside the cluster",
    plural = "externalentities",
    namespaced,
))]
pub struct ExternalEntitySpec {
    /// Its addresses; at least one.
    #[serde(default)]
    pub endpoints: Option<Vec<EntityEndpointSpec>>,
    /// Named ports: not supported yet.
    #[serde(default)]
    #[cfg_attr(feature = "crd", schemars(extend("x-kubernetes-preserve-unknown-fields" = true)))]
    pub ports: Option<Value>,
    /// The ExternalNode it belongs to.
    #[serde(default)]
    pub external_node: Option<String>,
}

/// `spec.endpoints[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
pub struct EntityEndpointSpec {
    /// The address.
    pub ip: String,
    /// The interface it is on.
    #[serde(default)]
    pub name: Option<String>,
}

fn parse_ip(s: &str, field: &str) -> Result<IpAddr, FieldError> {
    s.parse::<IpAddr>().map_err(|_| FieldError::new(field, format!("{s:?} is not a valid IP address")))
}

fn interface_name(name: &str, field: &str) -> Result<(), FieldError> {
    let bad = name.len() > MAX_INTERFACE_NAME || name.contains(['/', ' ', '\0']) || name == "." || name == "..";
    if bad {
        return Err(FieldError::new(
            field,
            format!("{name:?} is not a network interface name (at most {MAX_INTERFACE_NAME} bytes, no '/' or space)"),
        ));
    }
    Ok(())
}

impl ExternalNodeDoc {
    /// Validates into an ExternalNode: at least one interface, each with a distinct name and at
    /// least one address, no address twice.
    pub fn check(&self) -> Result<ExternalNode, FieldError> {
        let name = self.metadata.checked_name(NameRule::Subdomain)?;
        let namespace = self.metadata.checked_namespace()?;
        let labels = self.metadata.checked_labels()?;
        if self.spec.interfaces.is_empty() {
            return Err(FieldError::new("spec.interfaces", "must have at least one interface"));
        }
        let (mut names, mut seen) = (BTreeSet::new(), BTreeSet::new());
        let mut interfaces = Vec::new();
        for (i, interface) in self.spec.interfaces.iter().enumerate() {
            let at = format!("spec.interfaces[{i}]");
            let if_name = interface.name.clone().unwrap_or_default();
            interface_name(&if_name, &format!("{at}.name"))?;
            if !names.insert(if_name.clone()) {
                return Err(FieldError::new(format!("{at}.name"), format!("interface {if_name:?} is listed twice")));
            }
            let ips = interface.ips.as_deref().unwrap_or_default();
            if ips.is_empty() {
                return Err(FieldError::new(format!("{at}.ips"), "the interface has no address: policy could not tell its traffic"));
            }
            let mut checked = Vec::new();
            for (j, ip) in ips.iter().enumerate() {
                let field = format!("{at}.ips[{j}]");
                let ip = parse_ip(ip, &field)?;
                if !seen.insert(ip) {
                    return Err(FieldError::new(field, format!("{ip} is listed twice")));
                }
                checked.push(ip);
            }
            interfaces.push(HostInterface { name: if_name, ips: checked });
        }
        let node = ExternalNode { namespace, name, labels, interfaces };
        for (i, e) in node.entities().iter().enumerate() {
            syntax::dns1123_subdomain(&e.key.name).map_err(|m| {
                FieldError::new(
                    "metadata.name",
                    format!("the ExternalEntity of spec.interfaces[{i}] would be called {:?}: {m}", e.key.name),
                )
            })?;
        }
        Ok(node)
    }
}

impl ExternalEntityDoc {
    /// Validates into an ExternalEntity: at least one endpoint, valid distinct addresses.
    pub fn check(&self) -> Result<ExternalEntity, FieldError> {
        let name = self.metadata.checked_name(NameRule::Subdomain)?;
        let namespace = self.metadata.checked_namespace()?;
        let labels = self.metadata.checked_labels()?;
        if self.spec.ports.is_some() {
            return Err(FieldError::new(
                "spec.ports",
                "named ports of an ExternalEntity are not supported by weir yet: this object is not enforced",
            ));
        }
        let endpoints = self.spec.endpoints.as_deref().unwrap_or_default();
        if endpoints.is_empty() {
            return Err(FieldError::new("spec.endpoints", "must have at least one endpoint: policy could not tell its traffic"));
        }
        let mut ips = Vec::new();
        let mut interface = None;
        for (i, e) in endpoints.iter().enumerate() {
            let field = format!("spec.endpoints[{i}].ip");
            let ip = parse_ip(&e.ip, &field)?;
            if ips.contains(&ip) {
                return Err(FieldError::new(field, format!("{ip} is listed twice")));
            }
            ips.push(ip);
            if let Some(n) = e.name.as_deref().filter(|n| !n.is_empty()) {
                interface_name(n, &format!("spec.endpoints[{i}].name"))?;
                interface.get_or_insert_with(|| n.to_string());
            }
        }
        if let Some(n) = &self.spec.external_node {
            syntax::dns1123_subdomain(n).map_err(|m| FieldError::new("spec.externalNode", m))?;
        }
        Ok(ExternalEntity {
            key: ExternalEntityKey::new(namespace, name),
            labels,
            ips,
            interface,
            external_node: self.spec.external_node.clone(),
        })
    }
}
