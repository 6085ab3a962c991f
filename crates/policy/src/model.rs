//! The cluster model of the conformance case files: which namespaces and pods exist, their
//! labels, the ports each pod serves and (optionally) the node each pod runs on.
//!
//! Two forms, as `/work/shared/conformance/README.md` describes:
//! - the **standard model**: every namespace holds every pod of `pods` (a map pod name →
//!   labels), and every pod serves each of `ports` × `protocols` on a container port named
//!   `serve-<port>-<tcp|udp|sctp>`; `placement` may pin pods (`x/a: node-1`);
//! - **explicit pods**: `pods` is a list of `{namespace, name, labels, ports, hostNetwork, node}`.
//!
//! Host endpoints (the `node/` cases) come beside the pods: `nodes.named` lists the Kubernetes
//! Nodes by name with their own labels (the pods are spread over them), and `external_nodes`
//! the ExternalNodes, each with one interface; every host endpoint serves the standard model's
//! `ports` × `protocols` (or the explicit model's `host_ports`).
//!
//! [`ClusterModel::expand`] turns either into the list of [`ModelPod`]s a testbed creates, and
//! [`ClusterModel::namespaces`] gives the namespaces with their labels.
use crate::objects::{ContainerPort, Labels, Namespace, PodKey};
use crate::protocol::Protocol;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The `model:` block of a case file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterModel {
    /// Namespace name → labels (the `kubernetes.io/metadata.name` label is added if missing).
    pub namespaces: BTreeMap<String, Labels>,
    /// The pods: a standard map or an explicit list.
    pub pods: ModelPods,
    /// Standard model: the ports every pod serves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u16>,
    /// Standard model: the protocols every pod serves each port on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protocols: Vec<Protocol>,
    /// Standard model: pod (`ns/name`) → node it must run on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub placement: BTreeMap<String, String>,
    /// The host ports hostNetwork pods listen on (`{{ index .HostNetworkPorts i }}` = item i).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_network_ports: Vec<u16>,
    /// Labels every node carries, and the nodes by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<ModelNodes>,
    /// Hosts outside the cluster, as ExternalNodes (probe targets `externalnode:ns/name`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_nodes: Vec<ModelExternalNode>,
    /// Explicit model: the ports every host endpoint serves (a standard model's hosts serve
    /// its `ports` × `protocols`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_ports: Vec<ContainerPort>,
}

/// The `nodes:` entry of a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelNodes {
    /// Labels on every node.
    #[serde(default)]
    pub labels: Labels,
    /// The nodes by name, each with labels of its own (added to `labels`); probe targets
    /// `node:NAME`. Empty: the runner chooses the nodes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub named: BTreeMap<String, Labels>,
}

/// An ExternalNode of the model: a host with one interface on the underlay, whose address the
/// runner assigns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelExternalNode {
    /// Its namespace (one of the model's).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its labels (copied onto its ExternalEntity).
    #[serde(default)]
    pub labels: Labels,
    /// Its interface's name.
    #[serde(default = "default_interface")]
    pub interface: String,
}

fn default_interface() -> String {
    "eth0".to_string()
}

/// The `pods:` entry: a map (standard model) or a list (explicit pods).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ModelPods {
    /// Pod name → labels; every namespace holds each of these pods.
    Standard(BTreeMap<String, Labels>),
    /// Every pod written out.
    Explicit(Vec<ExplicitPod>),
}

/// One pod of an explicit model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplicitPod {
    /// Its namespace (must be one of the model's namespaces).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its labels.
    #[serde(default)]
    pub labels: Labels,
    /// Container ports it serves.
    #[serde(default)]
    pub ports: Vec<ContainerPort>,
    /// Whether it shares its node's network namespace.
    #[serde(default, rename = "hostNetwork")]
    pub host_network: bool,
    /// The node it must run on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// A pod the model asks for, ready to be created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelPod {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: Labels,
    /// The ports it serves; standard-model ports are named `serve-<port>-<protocol>`.
    pub ports: Vec<ContainerPort>,
    /// The node the model pins it to, if any.
    pub node: Option<String>,
    /// Whether it uses the host network.
    pub host_network: bool,
}

impl ModelPod {
    /// `namespace/name`.
    pub fn key(&self) -> PodKey {
        PodKey::new(&self.namespace, &self.name)
    }
}

/// The container port name the standard model (and upstream's model.go) gives a port.
pub fn serve_port_name(port: u16, protocol: Protocol) -> String {
    format!("serve-{port}-{}", protocol.lower())
}

/// A model that contradicts itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model.{field}: {message}")]
pub struct ModelError {
    /// The offending field, e.g. `placement.x/q`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn model_error(field: impl Into<String>, message: impl Into<String>) -> ModelError {
    ModelError { field: field.into(), message: message.into() }
}

impl ClusterModel {
    /// The nodes the model names, with the labels each carries (the common ones and its own).
    pub fn named_nodes(&self) -> BTreeMap<String, Labels> {
        let Some(nodes) = &self.nodes else { return BTreeMap::new() };
        nodes.named.iter().map(|(name, own)| (name.clone(), nodes.labels.clone().into_iter().chain(own.clone()).collect())).collect()
    }

    /// The ports every host endpoint serves.
    pub fn host_endpoint_ports(&self) -> Vec<ContainerPort> {
        match &self.pods {
            ModelPods::Standard(_) => self
                .ports
                .iter()
                .flat_map(|&port| self.protocols.iter().map(move |&protocol| ContainerPort { name: None, port, protocol }))
                .collect(),
            ModelPods::Explicit(_) => self.host_ports.clone(),
        }
    }

    /// The namespaces with their labels, including the name label Kubernetes sets.
    pub fn namespaces(&self) -> Vec<Namespace> {
        self.namespaces.iter().map(|(name, labels)| Namespace::new(name, labels.clone())).collect()
    }

    /// Every pod of the model, sorted by namespace then name.
    pub fn expand(&self) -> Vec<ModelPod> {
        let mut pods = match &self.pods {
            ModelPods::Standard(pods) => {
                let ports: Vec<ContainerPort> = self
                    .ports
                    .iter()
                    .flat_map(|&port| {
                        self.protocols.iter().map(move |&protocol| ContainerPort {
                            name: Some(serve_port_name(port, protocol)),
                            port,
                            protocol,
                        })
                    })
                    .collect();
                let mut out = Vec::new();
                for ns in self.namespaces.keys() {
                    for (name, labels) in pods {
                        let key = format!("{ns}/{name}");
                        out.push(ModelPod {
                            namespace: ns.clone(),
                            name: name.clone(),
                            labels: labels.clone(),
                            ports: ports.clone(),
                            node: self.placement.get(&key).cloned(),
                            host_network: false,
                        });
                    }
                }
                out
            }
            ModelPods::Explicit(pods) => pods
                .iter()
                .map(|p| ModelPod {
                    namespace: p.namespace.clone(),
                    name: p.name.clone(),
                    labels: p.labels.clone(),
                    ports: p.ports.clone(),
                    node: p.node.clone().or_else(|| self.placement.get(&format!("{}/{}", p.namespace, p.name)).cloned()),
                    host_network: p.host_network,
                })
                .collect(),
        };
        pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        pods
    }

    /// Checks that the model is coherent: standard models name ports and protocols, explicit
    /// pods live in declared namespaces and are unique, placements name existing pods.
    pub fn check(&self) -> Result<(), ModelError> {
        if self.namespaces.is_empty() {
            return Err(model_error("namespaces", "at least one namespace is required"));
        }
        match &self.pods {
            ModelPods::Standard(_) => {
                if self.ports.is_empty() {
                    return Err(model_error("ports", "a standard model needs at least one port"));
                }
                if self.protocols.is_empty() {
                    return Err(model_error("protocols", "a standard model needs at least one protocol"));
                }
                if let Some(0) = self.ports.iter().copied().find(|&p| p == 0) {
                    return Err(model_error("ports", "port 0 is not a valid port"));
                }
            }
            ModelPods::Explicit(pods) => {
                let mut seen = BTreeSet::new();
                for (i, p) in pods.iter().enumerate() {
                    if !self.namespaces.contains_key(&p.namespace) {
                        return Err(model_error(
                            format!("pods[{i}].namespace"),
                            format!("namespace {:?} is not declared in model.namespaces", p.namespace),
                        ));
                    }
                    if !seen.insert((&p.namespace, &p.name)) {
                        return Err(model_error(
                            format!("pods[{i}].name"),
                            format!("pod {}/{} is declared twice", p.namespace, p.name),
                        ));
                    }
                    if let Some(j) = p.ports.iter().position(|cp| cp.port == 0) {
                        return Err(model_error(format!("pods[{i}].ports[{j}].port"), "port 0 is not a valid port"));
                    }
                }
            }
        }
        let keys: BTreeSet<String> = self.expand().iter().map(|p| p.key().to_string()).collect();
        for pod in self.placement.keys() {
            if !keys.contains(pod) {
                return Err(model_error(format!("placement.{pod}"), "no such pod in the model"));
            }
        }
        self.check_hosts()
    }

    /// Checks the host endpoints: named nodes are the only nodes pods are placed on, external
    /// nodes live in declared namespaces and are unique.
    fn check_hosts(&self) -> Result<(), ModelError> {
        let named = self.named_nodes();
        if !named.is_empty() {
            let placed = self.expand().into_iter().filter_map(|p| Some((p.key(), p.node?)));
            if let Some((pod, node)) = placed.into_iter().find(|(_, n)| !named.contains_key(n)) {
                return Err(model_error(format!("placement.{pod}"), format!("node {node:?} is not in nodes.named")));
            }
        }
        let mut seen = BTreeSet::new();
        for (i, n) in self.external_nodes.iter().enumerate() {
            if !self.namespaces.contains_key(&n.namespace) {
                return Err(model_error(
                    format!("external_nodes[{i}].namespace"),
                    format!("namespace {:?} is not declared in model.namespaces", n.namespace),
                ));
            }
            if !seen.insert((&n.namespace, &n.name)) {
                return Err(model_error(format!("external_nodes[{i}].name"), format!("external node {}/{} is declared twice", n.namespace, n.name)));
            }
        }
        Ok(())
    }
}

/// Assigns a node to every pod the model leaves unplaced, so that each namespace has both
/// same-node and cross-node pairs: the i-th unplaced pod of a namespace goes to node i mod n.
/// hostNetwork pods are spread the same way. Returns where each pod went.
pub fn spread(pods: &mut [ModelPod], nodes: &[String]) -> BTreeMap<PodKey, String> {
    let mut placed = BTreeMap::new();
    if nodes.is_empty() {
        return placed;
    }
    let mut index_in_namespace: BTreeMap<String, usize> = BTreeMap::new();
    for pod in pods.iter_mut() {
        let i = index_in_namespace.entry(pod.namespace.clone()).or_default();
        if pod.node.is_none() {
            pod.node = Some(nodes[*i % nodes.len()].clone());
        }
        *i += 1;
        placed.insert(pod.key(), pod.node.clone().unwrap_or_default());
    }
    placed
}

/// Label changes a step makes before its probes (`model_updates:`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelUpdates {
    /// Namespace → labels to merge in.
    #[serde(default)]
    pub namespaces: BTreeMap<String, LabelUpdate>,
    /// Pod (`ns/name`) → labels to merge in.
    #[serde(default)]
    pub pods: BTreeMap<String, LabelUpdate>,
}

/// Labels merged into an object's existing labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelUpdate {
    /// Labels added (or overwritten).
    #[serde(default)]
    pub add_labels: Labels,
}

impl ModelUpdates {
    /// Merges the updates into the namespaces and pods; names an update whose target is unknown.
    pub fn apply(&self, namespaces: &mut [Namespace], pods: &mut [ModelPod]) -> Result<(), ModelError> {
        for (name, update) in &self.namespaces {
            let ns = namespaces
                .iter_mut()
                .find(|ns| &ns.name == name)
                .ok_or_else(|| model_error(format!("model_updates.namespaces.{name}"), "no such namespace"))?;
            ns.labels.extend(update.add_labels.clone());
        }
        for (key, update) in &self.pods {
            let pod = pods
                .iter_mut()
                .find(|p| &p.key().to_string() == key)
                .ok_or_else(|| model_error(format!("model_updates.pods.{key}"), "no such pod"))?;
            pod.labels.extend(update.add_labels.clone());
        }
        Ok(())
    }
}

// `pods:` is a map in the standard model and a list otherwise; dispatching on the YAML shape
// gives better errors than serde's untagged "did not match any variant".
impl<'de> Deserialize<'de> for ModelPods {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PodsVisitor;
        impl<'de> Visitor<'de> for PodsVisitor {
            type Value = ModelPods;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of pod name to labels, or a list of pods")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ModelPods, A::Error> {
                Deserialize::deserialize(de::value::MapAccessDeserializer::new(map)).map(ModelPods::Standard)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ModelPods, A::Error> {
                Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(ModelPods::Explicit)
            }
        }
        deserializer.deserialize_any(PodsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STANDARD: &str = r#"
namespaces: {x: {ns: x, kubernetes.io/metadata.name: x}, y: {ns: y}}
pods: {a: {pod: a}, b: {pod: b}}
ports: [80, 81]
protocols: [TCP, SCTP]
placement: {x/a: node-2}
"#;

    #[test]
    fn standard_model_puts_every_pod_in_every_namespace_with_named_ports() {
        let model: ClusterModel = serde_saphyr::from_str(STANDARD).unwrap();
        model.check().unwrap();
        let pods = model.expand();
        let keys: Vec<String> = pods.iter().map(|p| p.key().to_string()).collect();
        assert_eq!(keys, ["x/a", "x/b", "y/a", "y/b"]);
        assert_eq!(pods[0].node.as_deref(), Some("node-2"));
        assert_eq!(pods[1].node, None);
        let names: Vec<&str> = pods[0].ports.iter().map(|p| p.name.as_deref().unwrap()).collect();
        assert_eq!(names, ["serve-80-tcp", "serve-80-sctp", "serve-81-tcp", "serve-81-sctp"]);
        assert_eq!(pods[3].labels.get("pod").map(String::as_str), Some("b"));
    }

    #[test]
    fn namespaces_always_carry_their_name_label() {
        let model: ClusterModel = serde_saphyr::from_str(STANDARD).unwrap();
        let ns = model.namespaces();
        assert_eq!(ns[1].labels.get(crate::objects::NAMESPACE_NAME_LABEL).map(String::as_str), Some("y"));
    }

    #[test]
    fn explicit_model_keeps_host_network_and_unnamed_ports() {
        let text = r#"
namespaces: {n1: {house: a}}
pods:
  - {namespace: n1, name: p-0, labels: {app: p}, ports: [{port: 80, protocol: TCP, name: web}, {port: 53, protocol: UDP}], node: n-1}
  - {namespace: n1, name: h-0, hostNetwork: true, ports: [{port: 34345, protocol: SCTP}]}
"#;
        let model: ClusterModel = serde_saphyr::from_str(text).unwrap();
        model.check().unwrap();
        let pods = model.expand();
        assert_eq!(pods[0].name, "h-0");
        assert!(pods[0].host_network);
        assert_eq!(pods[1].ports[1], ContainerPort { name: None, port: 53, protocol: Protocol::Udp });
        assert_eq!(pods[1].node.as_deref(), Some("n-1"));
    }

    #[test]
    fn explicit_pod_in_undeclared_namespace_is_rejected() {
        let text = "namespaces: {n1: {}}\npods: [{namespace: n2, name: p}]\n";
        let model: ClusterModel = serde_saphyr::from_str(text).unwrap();
        assert_eq!(model.check().unwrap_err().field, "pods[0].namespace");
    }

    #[test]
    fn placement_of_unknown_pod_is_rejected() {
        let text = "namespaces: {x: {}}\npods: {a: {}}\nports: [80]\nprotocols: [TCP]\nplacement: {x/q: n1}\n";
        let model: ClusterModel = serde_saphyr::from_str(text).unwrap();
        assert_eq!(model.check().unwrap_err().field, "placement.x/q");
    }

    #[test]
    fn spread_gives_each_namespace_same_node_and_cross_node_pairs() {
        let model: ClusterModel = serde_saphyr::from_str(
            "namespaces: {x: {}, y: {}}\npods: {a: {}, b: {}, c: {}}\nports: [80]\nprotocols: [TCP]\n",
        )
        .unwrap();
        let mut pods = model.expand();
        let placed = spread(&mut pods, &["n1".into(), "n2".into()]);
        for ns in ["x", "y"] {
            let nodes: Vec<&str> = ["a", "b", "c"].iter().map(|p| placed[&PodKey::new(ns, *p)].as_str()).collect();
            assert_eq!(nodes, ["n1", "n2", "n1"]);
        }
    }

    #[test]
    fn updates_merge_labels_and_name_unknown_targets() {
        let model: ClusterModel = serde_saphyr::from_str(STANDARD).unwrap();
        let mut ns = model.namespaces();
        let mut pods = model.expand();
        let updates: ModelUpdates =
            serde_saphyr::from_str("namespaces: {y: {add_labels: {ns2: updated}}}\npods: {x/b: {add_labels: {pod2: updated}}}\n")
                .unwrap();
        updates.apply(&mut ns, &mut pods).unwrap();
        assert_eq!(ns[1].labels["ns2"], "updated");
        assert_eq!(pods[1].labels["pod2"], "updated");
        assert_eq!(pods[1].labels["pod"], "b");
        let bad: ModelUpdates = serde_saphyr::from_str("pods: {x/q: {add_labels: {a: b}}}\n").unwrap();
        assert_eq!(bad.apply(&mut ns, &mut pods).unwrap_err().field, "model_updates.pods.x/q");
    }
}
