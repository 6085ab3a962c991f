//! Kubernetes manifests in: multi-document YAML (or JSON) text → checked objects, and an
//! [`ObjectError`] for every object that is not valid, naming the object and the field.
//!
//! Each document becomes a `serde_json::Value`, is dispatched on `apiVersion`/`kind`, and is
//! deserialized into the kind's typed shape through `serde_path_to_error`, so a type error
//! names its field; the typed shape is then validated as the Kubernetes API server would.
//! Documents are split on `---` lines before parsing, so even a YAML syntax error is located
//! in its own document. A document that cannot be identified (not YAML, not an object, no
//! name, or a kind weir neither handles nor knowingly ignores) is *unusable*: it makes its
//! whole file unusable ([`file`]), because it may be a truncated or mistyped version of an
//! object the file defined. Kinds weir knowingly ignores ([`IGNORED_KINDS`]) are skipped with
//! a note; policy kinds it does not enforce yet ([`UNSUPPORTED_KINDS`]) are rejected.
pub mod antrea_policy;
pub mod cluster_policy;
pub mod core;
pub mod external_node;
pub mod file;
pub mod meta;
pub mod netpol;

use crate::netpol::{Direction, NetworkPolicy};
use crate::objects::{Namespace, Node, Pod};
use crate::selector::{FieldError, LabelSelectorSpec, Selector};
use serde::{Deserialize, Serialize};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt;

/// Largest manifest text accepted from one source.
pub const MAX_SOURCE_BYTES: usize = 16 << 20;

/// An object that was rejected, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectError {
    /// `Kind namespace/name` (or `Kind name`, or `document N` when even that is unknown).
    pub object: String,
    /// The field at fault, e.g. `spec.ingress[0].ports[1].endPort`.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// The file (or other source) the object came from.
    pub source: String,
}

// Written by hand: thiserror would take a field called `source` for the underlying error.
impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&error_line(&self.source, &self.object, &self.field, &self.message))
    }
}

/// `source: object: field: message`, leaving out the parts that are empty or `-` (a
/// document that is not YAML has no field; an unreadable file has no object either).
pub fn error_line(source: &str, object: &str, field: &str, message: &str) -> String {
    [source, object, field, message].iter().filter(|p| !p.is_empty() && **p != "-").copied().collect::<Vec<_>>().join(": ")
}

impl std::error::Error for ObjectError {}

/// A valid object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Object {
    /// v1 Namespace.
    Namespace(Namespace),
    /// v1 Pod.
    Pod(Pod),
    /// v1 Node.
    Node(Node),
    /// networking.k8s.io/v1 NetworkPolicy.
    NetworkPolicy(NetworkPolicy),
    /// TrafficControl (weir.io/v1alpha1, or Antrea's crd.antrea.io/v1alpha2).
    TrafficControl(crate::traffic_control::TrafficControl),
    /// A cluster policy: ClusterNetworkPolicy (v1alpha2), AdminNetworkPolicy or
    /// BaselineAdminNetworkPolicy (v1alpha1).
    ClusterPolicy(crate::cluster_policy::ClusterPolicy),
    /// An Antrea Tier (crd.antrea.io/v1beta1 or weir.io/v1alpha1).
    Tier(crate::cluster_policy::AntreaTier),
    /// An Antrea ClusterGroup (crd.antrea.io/v1beta1 or weir.io/v1alpha1).
    ClusterGroup(crate::cluster_policy::ClusterGroup),
    /// An ExternalNode (crd.antrea.io/v1alpha1 or weir.io/v1alpha1): a host outside the
    /// cluster; each interface becomes an ExternalEntity.
    ExternalNode(crate::external_node::ExternalNode),
    /// An ExternalEntity written directly (crd.antrea.io/v1alpha2 or weir.io/v1alpha1).
    ExternalEntity(crate::external_node::ExternalEntity),
}

impl Object {
    /// `Kind namespace/name`, as errors name objects.
    pub fn describe(&self) -> String {
        match self {
            Object::Namespace(n) => format!("Namespace {}", n.name),
            Object::Pod(p) => format!("Pod {}", p.key),
            Object::Node(n) => format!("Node {}", n.name),
            Object::NetworkPolicy(p) => format!("NetworkPolicy {}/{}", p.namespace, p.name),
            Object::TrafficControl(t) => format!("TrafficControl {}", t.name),
            Object::ClusterPolicy(p) => format!("{} {}", p.kind, p.name),
            Object::Tier(t) => format!("Tier {}", t.name),
            Object::ClusterGroup(g) => format!("ClusterGroup {}", g.name),
            Object::ExternalNode(n) => format!("ExternalNode {}/{}", n.namespace, n.name),
            Object::ExternalEntity(e) => format!("ExternalEntity {}", e.key),
        }
    }
}

/// What is left of a rejected NetworkPolicy: enough to fail closed for the pods it meant to
/// select. `selector: None` means its podSelector was unusable, so every pod of the namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedPolicy {
    /// `NetworkPolicy ns/name`.
    pub object: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name (possibly invalid).
    pub name: String,
    /// Its podSelector, if that part was valid.
    pub selector: Option<Selector>,
    /// The directions it meant to isolate.
    pub directions: BTreeSet<Direction>,
}

/// The result of parsing manifests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifests {
    /// Valid objects with their source, in input order.
    pub objects: Vec<(String, Object)>,
    /// Rejected objects.
    pub errors: Vec<ObjectError>,
    /// Rejected NetworkPolicies, to fail closed.
    pub rejected_policies: Vec<RejectedPolicy>,
    /// Rejected cluster policies, to fail closed.
    #[serde(default)]
    pub rejected_cluster_policies: Vec<crate::cluster_policy::RejectedClusterPolicy>,
    /// Skipped documents (kinds weir knowingly ignores).
    pub notes: Vec<String>,
    /// Documents that cannot be identified: each makes its whole source unusable
    /// ([`file::parse_file`]).
    pub unusable: Vec<ObjectError>,
}

impl Manifests {
    /// Appends what `other` parsed (as if its sources came after these).
    pub fn append(&mut self, mut other: Manifests) {
        self.objects.append(&mut other.objects);
        self.errors.append(&mut other.errors);
        self.rejected_policies.append(&mut other.rejected_policies);
        self.rejected_cluster_policies.append(&mut other.rejected_cluster_policies);
        self.notes.append(&mut other.notes);
        self.unusable.append(&mut other.unusable);
    }
}

/// Reads one YAML document as an untyped value, with YAML 1.2 booleans: only `true`/`false`
/// are booleans, so a label value like `y` or `no` stays a string (the "Norway problem").
/// Duplicate keys are an error, as in Kubernetes' strict decoding.
pub fn yaml_value(text: &str) -> Result<Value, serde_saphyr::Error> {
    let options = serde_saphyr::options! { strict_booleans: true };
    serde_saphyr::from_str_with_options(text, options)
}

/// Parses every document of `text` (from `source`, e.g. a file name) into `out`.
pub fn parse_into(source: &str, text: &str, out: &mut Manifests) {
    if text.len() > MAX_SOURCE_BYTES {
        out.unusable.push(ObjectError {
            object: String::new(),
            field: "-".into(),
            message: format!("{} bytes is over the {} byte limit for one manifest source", text.len(), MAX_SOURCE_BYTES),
            source: source.to_string(),
        });
        return;
    }
    let docs: Vec<(usize, (usize, String))> = split_documents(text).into_iter().enumerate().collect();
    // A big source (a whole cluster in one file) is parsed on every core, in contiguous chunks
    // appended in order, so the result is the same as parsing it in one go.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(docs.len() / PARALLEL_MIN_DOCS).max(1);
    if threads == 1 {
        parse_documents(source, &docs, out);
        return;
    }
    let chunk = docs.len().div_ceil(threads);
    let parts: Vec<Manifests> = std::thread::scope(|scope| {
        let handles: Vec<_> = docs
            .chunks(chunk)
            .map(|c| {
                scope.spawn(move || {
                    let mut m = Manifests::default();
                    parse_documents(source, c, &mut m);
                    m
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    });
    for part in parts {
        out.append(part);
    }
}

/// Documents per thread below which parsing stays on one thread.
const PARALLEL_MIN_DOCS: usize = 256;

fn parse_documents(source: &str, docs: &[(usize, (usize, String))], out: &mut Manifests) {
    for (index, (first_line, doc)) in docs {
        match yaml_value(doc) {
            Ok(Value::Null) => {}
            Ok(value) => add_value(source, &format!("document {} (line {first_line})", index + 1), value, out),
            Err(e) => out.unusable.push(yaml_error(source, index + 1, *first_line, &e)),
        }
    }
}

/// A YAML error, located in the file: `document N (line L)` where L is the line of the error
/// in the whole file (the parser counts from the start of the document).
fn yaml_error(source: &str, document: usize, first_line: usize, e: &serde_saphyr::Error) -> ObjectError {
    let text = e.to_string();
    let mut message = first_error_line(&text).trim_start_matches("error: ").to_string();
    let mut line = first_line;
    if let Some(at) = e.location() {
        line += (at.line() as usize).saturating_sub(1);
        let prefix = format!("line {} column {}: ", at.line(), at.column());
        message = format!("{} (column {})", message.strip_prefix(&prefix).unwrap_or(&message), at.column());
    }
    ObjectError {
        object: format!("document {document} (line {line})"),
        field: "-".into(),
        message: format!("not valid YAML: {message}"),
        source: source.to_string(),
    }
}

/// Parses one source on its own.
pub fn parse(source: &str, text: &str) -> Manifests {
    let mut out = Manifests::default();
    parse_into(source, text, &mut out);
    out
}

fn first_error_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// Splits a YAML stream on `---` document markers, keeping each document's first line number.
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        let is_marker = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if is_marker {
            if !current.trim().is_empty() {
                docs.push((start, std::mem::take(&mut current)));
            }
            current.clear();
            start = i + 2;
            // Content after the marker on the same line belongs to the new document.
            let rest = line[3..].trim_start();
            if !rest.is_empty() && !rest.starts_with('#') {
                current.push_str(rest);
                current.push('\n');
                start = i + 1;
            }
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    if !current.trim().is_empty() {
        docs.push((start, current));
    }
    docs
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_str)
}

/// Kinds weir knowingly ignores, whatever their apiVersion: workloads, configuration, storage,
/// RBAC and Services (reached through the host's kube-proxy) say nothing about which pod may
/// reach which. They are skipped with a note; any other kind weir does not handle is an error.
pub const IGNORED_KINDS: &[&str] = &[
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "Service",
    "Endpoints",
    "EndpointSlice",
    "Ingress",
    "IngressClass",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "StorageClass",
    "LimitRange",
    "ResourceQuota",
    "PriorityClass",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
];

/// Policy kinds weir recognises but does not enforce yet: each object is rejected (named, so
/// nobody believes it enforced), without making its file unusable.
pub const UNSUPPORTED_KINDS: &[&str] = &["ClusterNetworkPolicy", "Tier", "ClusterGroup", "Group", "NetworkPolicy"];

/// Adds one parsed document (an object, or a `List` of them).
pub fn add_value(source: &str, where_: &str, value: Value, out: &mut Manifests) {
    let api_version = str_at(&value, &["apiVersion"]).map(str::to_string);
    let kind = str_at(&value, &["kind"]).map(str::to_string);
    let name = str_at(&value, &["metadata", "name"]).unwrap_or("<unnamed>").to_string();
    let namespace = str_at(&value, &["metadata", "namespace"]).unwrap_or("default").to_string();
    let error = |object: String, e: FieldError| ObjectError {
        object,
        field: e.field,
        message: e.message,
        source: source.to_string(),
    };
    let (Some(api_version), Some(kind)) = (api_version, kind) else {
        let field = if value.get("apiVersion").is_none() { "apiVersion" } else { "kind" };
        let object = if value.is_object() { where_.to_string() } else { format!("{where_} ({})", json_type(&value)) };
        out.unusable.push(error(object, FieldError::new(field, "is required (and must be a string)")));
        return;
    };
    let object = match (kind.as_str(), str_at(&value, &["metadata", "namespace"])) {
        ("ClusterNetworkPolicy", _) if antrea_policy::API_VERSIONS.contains(&api_version.as_str()) => {
            format!("{} {name}", crate::rules::ANTREA_CLUSTER_NETWORK_POLICY)
        }
        ("Namespace" | "Node" | "TrafficControl", _) => format!("{kind} {name}"),
        ("Pod" | "NetworkPolicy" | "ExternalNode" | "ExternalEntity", _) | (_, Some(_)) => format!("{kind} {namespace}/{name}"),
        _ => format!("{kind} {name}"),
    };
    if HANDLED_KINDS.contains(&kind.as_str()) && str_at(&value, &["metadata", "name"]).is_none() {
        // Without a name the object cannot be told from a cut-off copy of another one.
        out.unusable.push(error(object, FieldError::new("metadata.name", "is required")));
        return;
    }
    match (api_version.as_str(), kind.as_str()) {
        ("v1", "List") => {
            let items = match value.get("items") {
                Some(Value::Array(items)) => items.clone(),
                _ => {
                    out.unusable.push(error(format!("List {where_}"), FieldError::new("items", "must be a list")));
                    return;
                }
            };
            for (i, item) in items.into_iter().enumerate() {
                add_value(source, &format!("{where_} items[{i}]"), item, out);
            }
        }
        ("v1", "Namespace") => match typed::<core::NamespaceDoc>(value).and_then(|d| d.check()) {
            Ok(ns) => out.objects.push((source.to_string(), Object::Namespace(ns))),
            Err(e) => out.errors.push(error(object, e)),
        },
        ("v1", "Pod") => match typed::<core::PodDoc>(value).and_then(|d| d.check()) {
            Ok(pod) => out.objects.push((source.to_string(), Object::Pod(pod))),
            Err(e) => out.errors.push(error(object, e)),
        },
        ("v1", "Node") => match typed::<core::NodeDoc>(value).and_then(|d| d.check()) {
            Ok(node) => out.objects.push((source.to_string(), Object::Node(node))),
            Err(e) => out.errors.push(error(object, e)),
        },
        ("networking.k8s.io/v1", "NetworkPolicy") => {
            let checked = typed::<netpol::NetworkPolicyDoc>(value.clone()).and_then(|d| {
                let ns = d.metadata.checked_namespace()?;
                let name = d.metadata.checked_name(meta::NameRule::Subdomain)?;
                d.metadata.checked_labels()?;
                d.check(&ns, &name)
            });
            match checked {
                Ok(p) => out.objects.push((source.to_string(), Object::NetworkPolicy(p))),
                Err(e) => reject_policy(out, error(object, e), &namespace, &name, &value),
            }
        }
        (v, k) if let Some(api) = cluster_policy::Api::of(v, k) => {
            match typed::<cluster_policy::ClusterPolicyDoc>(value.clone()).and_then(|d| d.check(api)) {
                Ok(p) => out.objects.push((source.to_string(), Object::ClusterPolicy(p))),
                Err(e) => {
                    out.rejected_cluster_policies.push(cluster_policy::remnant(api, &object, &name, &value));
                    out.errors.push(error(object, e));
                }
            }
        }
        (v, "ClusterNetworkPolicy") if antrea_policy::API_VERSIONS.contains(&v) => {
            let doc = typed::<antrea_policy::AntreaPolicyDoc>(value.clone());
            match doc.as_ref().map_err(Clone::clone).and_then(|d| d.check()) {
                Ok(p) => out.objects.push((source.to_string(), Object::ClusterPolicy(p))),
                Err(e) => {
                    out.rejected_cluster_policies.push(antrea_policy::remnant(&object, &name, &value));
                    out.errors.push(error(object, e));
                }
            }
        }
        (v, "Tier") if antrea_policy::API_VERSIONS.contains(&v) => match typed::<antrea_policy::TierDoc>(value).and_then(|d| d.check()) {
            Ok(t) => out.objects.push((source.to_string(), Object::Tier(t))),
            Err(e) => out.errors.push(error(object, e)),
        },
        (v, "ClusterGroup") if antrea_policy::API_VERSIONS.contains(&v) => {
            match typed::<antrea_policy::GroupDoc>(value).and_then(|d| d.check()) {
                Ok(g) => out.objects.push((source.to_string(), Object::ClusterGroup(g))),
                Err(e) => out.errors.push(error(object, e)),
            }
        }
        (_, "AdminNetworkPolicy" | "BaselineAdminNetworkPolicy") => {
            let e = FieldError::new("apiVersion", format!("unsupported apiVersion {api_version:?} for kind {kind}: use policy.networking.k8s.io/v1alpha1"));
            let api = if kind == "AdminNetworkPolicy" { cluster_policy::Api::AdminNetworkPolicy } else { cluster_policy::Api::BaselineAdminNetworkPolicy };
            out.rejected_cluster_policies.push(cluster_policy::remnant(api, &object, &name, &value));
            out.errors.push(error(object, e));
        }
        ("weir.io/v1alpha1" | "crd.antrea.io/v1alpha2", "TrafficControl") => {
            match typed::<crate::traffic_control::TrafficControlDoc>(value).and_then(|d| d.check()) {
                Ok(t) => out.objects.push((source.to_string(), Object::TrafficControl(t))),
                Err(e) => out.errors.push(error(object, e)),
            }
        }
        (v, "ExternalNode") if external_node::EXTERNAL_NODE_API_VERSIONS.contains(&v) => {
            match typed::<external_node::ExternalNodeDoc>(value).and_then(|d| d.check()) {
                Ok(n) => out.objects.push((source.to_string(), Object::ExternalNode(n))),
                Err(e) => out.errors.push(error(object, e)),
            }
        }
        (v, "ExternalEntity") if external_node::EXTERNAL_ENTITY_API_VERSIONS.contains(&v) => {
            match typed::<external_node::ExternalEntityDoc>(value).and_then(|d| d.check()) {
                Ok(e) => out.objects.push((source.to_string(), Object::ExternalEntity(e))),
                Err(e) => out.errors.push(error(object, e)),
            }
        }
        (_, k @ ("ExternalNode" | "ExternalEntity")) => {
            let versions = if k == "ExternalNode" { external_node::EXTERNAL_NODE_API_VERSIONS } else { external_node::EXTERNAL_ENTITY_API_VERSIONS };
            let e = FieldError::new("apiVersion", format!("unsupported apiVersion {api_version:?} for kind {k}: use {}", versions.join(" or ")));
            out.errors.push(error(object, e));
        }
        (_, "TrafficControl") => out.errors.push(error(
            object,
            FieldError::new("apiVersion", format!("unsupported apiVersion {api_version:?}: use weir.io/v1alpha1 or crd.antrea.io/v1alpha2")),
        )),
        (_, "NetworkPolicy") => {
            let e = FieldError::new("apiVersion", format!("unsupported apiVersion {api_version:?} for kind {kind}: use networking.k8s.io/v1"));
            reject_policy(out, error(object, e), &namespace, &name, &value);
        }
        (_, "Namespace" | "Pod" | "Node") => out.errors.push(error(
            object,
            FieldError::new("apiVersion", format!("unsupported apiVersion {api_version:?} for kind {kind}: use v1")),
        )),
        (_, k) if UNSUPPORTED_KINDS.contains(&k) => out.errors.push(error(
            object,
            FieldError::new("kind", format!("{kind} ({api_version}) is not supported by weir yet: this object is not enforced")),
        )),
        (_, k) if IGNORED_KINDS.contains(&k) => {
            out.notes.push(format!("{source}: {where_}: skipped {object} ({api_version}): kind ignored by weir"))
        }
        _ => out.unusable.push(error(
            object,
            FieldError::new("kind", format!("unknown kind {kind:?} (apiVersion {api_version}): weir neither handles nor knowingly ignores it")),
        )),
    }
}

/// The kinds weir turns into objects.
const HANDLED_KINDS: &[&str] = &[
    "Namespace",
    "Pod",
    "Node",
    "NetworkPolicy",
    "TrafficControl",
    "ClusterNetworkPolicy",
    "AdminNetworkPolicy",
    "BaselineAdminNetworkPolicy",
    "Tier",
    "ClusterGroup",
    "ExternalNode",
    "ExternalEntity",
];

/// Rejects a NetworkPolicy, keeping what it meant to select so its pods fail closed.
fn reject_policy(out: &mut Manifests, e: ObjectError, namespace: &str, name: &str, value: &Value) {
    if let Some(r) = remnant(&e.object, namespace, name, value) {
        out.rejected_policies.push(r);
    }
    out.errors.push(e);
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// Deserializes `value` into `T`, naming the field on error.
fn typed<T: DeserializeOwned>(value: Value) -> Result<T, FieldError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let mut field = e.path().to_string();
        let message = e.inner().to_string();
        // serde reports a missing field at its parent; name the field itself.
        if let Some(key) = message.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()) {
            field = if field == "." { key.to_string() } else { format!("{field}.{key}") };
        }
        FieldError::new(field, message)
    })
}

/// What a rejected policy meant: its namespace, podSelector and directions, read leniently.
fn remnant(object: &str, namespace: &str, name: &str, value: &Value) -> Option<RejectedPolicy> {
    crate::syntax::dns1123_label(namespace).ok()?;
    let spec = value.get("spec");
    let selector = spec
        .and_then(|s| s.get("podSelector"))
        .and_then(|s| serde_json::from_value::<LabelSelectorSpec>(s.clone()).ok())
        .and_then(|s| Selector::from_spec(&s, "spec.podSelector").ok());
    let types: Option<Vec<String>> = spec
        .and_then(|s| s.get("policyTypes"))
        .and_then(|t| t.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect());
    let has_egress = spec.and_then(|s| s.get("egress")).is_some_and(|e| e.as_array().is_none_or(|a| !a.is_empty()));
    let mut directions = match types {
        Some(t) if !t.is_empty() => t
            .iter()
            .filter_map(|s| match s.as_str() {
                "Ingress" => Some(Direction::Ingress),
                "Egress" => Some(Direction::Egress),
                _ => None,
            })
            .collect(),
        _ => BTreeSet::new(),
    };
    if directions.is_empty() {
        // Unknown intent: fail closed for ingress, and for egress if it wrote egress rules.
        directions.insert(Direction::Ingress);
        if has_egress {
            directions.insert(Direction::Egress);
        }
    }
    Some(RejectedPolicy {
        object: object.to_string(),
        namespace: namespace.to_string(),
        name: name.to_string(),
        selector,
        directions,
    })
}

impl fmt::Display for Manifests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rejected = self.errors.len() + self.unusable.len();
        write!(f, "{} objects, {} rejected, {} skipped", self.objects.len(), rejected, self.notes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_big_source_parsed_on_every_core_equals_parsing_it_in_one_go() {
        let mut text = String::new();
        for i in 0..(PARALLEL_MIN_DOCS * 3) {
            // Every 97th pod is invalid, so errors come from every chunk too.
            let ip = if i % 97 == 0 { "bad".to_string() } else { format!("10.1.{}.{}", i / 200, i % 200 + 2) };
            text.push_str(&format!(
                "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: n{}}}\nstatus: {{podIP: {ip}}}\n",
                i % 7
            ));
        }
        let docs: Vec<(usize, (usize, String))> = split_documents(&text).into_iter().enumerate().collect();
        let mut one_go = Manifests::default();
        parse_documents("big.yaml", &docs, &mut one_go);
        let parallel = parse("big.yaml", &text);
        assert_eq!(parallel, one_go);
        assert_eq!(parallel.objects.len() + parallel.errors.len(), PARALLEL_MIN_DOCS * 3);
        assert!(!parallel.errors.is_empty());
    }
}
