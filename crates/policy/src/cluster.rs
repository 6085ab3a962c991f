//! The in-memory cluster view: namespaces, pods, nodes and policies, built from manifests.
//!
//! Building never fails: invalid objects are already errors in [`Manifests`]; duplicates
//! (same kind, namespace and name), pods that claim another pod's address, and host endpoints
//! that claim another's (two ExternalNodes on one host) are rejected here, the first one seen
//! wins, and everything else is kept.
//!
//! Endpoints are pods and host endpoints: Kubernetes Nodes (by their InternalIPs) and
//! ExternalEntities (each interface of an ExternalNode, or written directly). An address is a
//! pod's if a pod (not hostNetwork) has it, else an ExternalEntity's, else a Node's
//! ([`Cluster::endpoint_at`]).
use crate::cluster_policy::{AntreaTier, ClusterGroup, ClusterPolicy, RejectedClusterPolicy};
use crate::external_node::{ExternalEntity, ExternalEntityKey, ExternalNode};
use crate::manifest::{self, Manifests, Object, ObjectError, RejectedPolicy};
use crate::rules::{Endpoint, PolicyKind};
use crate::netpol::NetworkPolicy;
use crate::objects::{Labels, Namespace, Node, Pod, PodKey};
use crate::selector::Selector;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

/// The cluster as policy sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cluster {
    /// Namespaces by name, including implicit ones (a pod's namespace with no manifest).
    pub namespaces: BTreeMap<String, Namespace>,
    /// Pods by key.
    pub pods: BTreeMap<PodKey, Pod>,
    /// Nodes by name.
    pub nodes: BTreeMap<String, Node>,
    /// ExternalNodes by (namespace, name).
    pub external_nodes: BTreeMap<(String, String), ExternalNode>,
    /// ExternalEntities by key: those derived from the ExternalNodes and those written directly.
    pub external_entities: BTreeMap<ExternalEntityKey, ExternalEntity>,
    /// NetworkPolicies by (namespace, name).
    pub policies: BTreeMap<(String, String), NetworkPolicy>,
    /// TrafficControls by name.
    pub traffic_controls: BTreeMap<String, crate::traffic_control::TrafficControl>,
    /// Cluster policies (admin and baseline tiers) by kind and name.
    pub cluster_policies: BTreeMap<(PolicyKind, String), ClusterPolicy>,
    /// Antrea's custom tiers by name (the default ones are built in).
    pub tiers: BTreeMap<String, AntreaTier>,
    /// Antrea's ClusterGroups by name.
    pub groups: BTreeMap<String, ClusterGroup>,
    /// Rejected NetworkPolicies; the pods they select fail closed.
    pub rejected_policies: Vec<RejectedPolicy>,
    /// Rejected cluster policies; the pods they apply to fail closed.
    pub rejected_cluster_policies: Vec<RejectedClusterPolicy>,
    /// Every rejected object.
    pub errors: Vec<ObjectError>,
    /// Objects in force that may not do what their author meant (a node policy that selects no
    /// node), each naming the object and field.
    pub warnings: Vec<ObjectError>,
    /// Skipped documents and implicit namespaces.
    pub notes: Vec<String>,
    /// Address → pod, for pods with their own network namespace (not hostNetwork).
    by_ip: BTreeMap<IpAddr, PodKey>,
    /// Address → host endpoint: ExternalEntities' addresses, then Nodes' InternalIPs.
    host_by_ip: BTreeMap<IpAddr, Endpoint>,
}

impl Cluster {
    /// Parses and builds from `(source name, text)` pairs, each source a file: a broken one
    /// contributes only its errors and fail-closed policies ([`manifest::file`]).
    pub fn from_sources<'a>(sources: impl IntoIterator<Item = (&'a str, &'a str)>) -> Cluster {
        let mut m = Manifests::default();
        for (source, text) in sources {
            m.append(manifest::file::parse_file(source, text).unwrap_or_else(manifest::file::BrokenFile::alone));
        }
        Cluster::from_manifests(m)
    }

    /// Builds the view from parsed manifests.
    pub fn from_manifests(m: Manifests) -> Cluster {
        let (sources, objects): (Vec<String>, Vec<Object>) = m.objects.into_iter().unzip();
        let head = Cluster {
            errors: m.unusable.into_iter().chain(m.errors).collect(),
            notes: m.notes,
            rejected_policies: m.rejected_policies,
            rejected_cluster_policies: m.rejected_cluster_policies,
            ..Cluster::default()
        };
        head.with_objects(&sources.iter().map(String::as_str).collect::<Vec<_>>(), objects.into_iter().map(Cow::Owned))
    }

    /// The view of several sources' manifests, as [`Cluster::from_manifests`] of them appended
    /// in order, without copying them first (only the objects that end up in the view are).
    pub fn from_parts(parts: &[&Manifests]) -> Cluster {
        let head = Cluster {
            errors: parts.iter().flat_map(|p| &p.unusable).chain(parts.iter().flat_map(|p| &p.errors)).cloned().collect(),
            notes: parts.iter().flat_map(|p| &p.notes).cloned().collect(),
            rejected_policies: parts.iter().flat_map(|p| &p.rejected_policies).cloned().collect(),
            rejected_cluster_policies: parts.iter().flat_map(|p| &p.rejected_cluster_policies).cloned().collect(),
            ..Cluster::default()
        };
        let sources: Vec<&str> = parts.iter().flat_map(|p| p.objects.iter().map(|(s, _)| s.as_str())).collect();
        head.with_objects(&sources, parts.iter().flat_map(|p| p.objects.iter().map(|(_, o)| Cow::Borrowed(o))))
    }

    /// Adds `objects` (from `sources`, one per object): duplicates (same kind, namespace and
    /// name) and pods that claim another pod's address are rejected, the first one wins.
    fn with_objects<'a>(mut self, sources: &[&str], objects: impl Iterator<Item = Cow<'a, Object>>) -> Cluster {
        let c = &mut self;
        let objects: Vec<Cow<'a, Object>> = objects.collect();
        // The first object of each identity, by index; later ones are duplicates.
        let mut first: HashMap<(u8, &str, &str), usize> = HashMap::with_capacity(objects.len());
        let mut duplicate_of: Vec<Option<usize>> = vec![None; objects.len()];
        for (i, object) in objects.iter().enumerate() {
            let id = match &**object {
                Object::Namespace(ns) => (0, "", ns.name.as_str()),
                Object::Pod(p) => (1, p.key.namespace.as_str(), p.key.name.as_str()),
                Object::Node(n) => (2, "", n.name.as_str()),
                Object::NetworkPolicy(p) => (3, p.namespace.as_str(), p.name.as_str()),
                Object::TrafficControl(t) => (4, "", t.name.as_str()),
                Object::ClusterPolicy(p) => (5 + p.kind as u8, "", p.name.as_str()),
                Object::Tier(t) => (20, "", t.name.as_str()),
                Object::ClusterGroup(g) => (21, "", g.name.as_str()),
                Object::ExternalNode(n) => (22, n.namespace.as_str(), n.name.as_str()),
                Object::ExternalEntity(e) => (23, e.key.namespace.as_str(), e.key.name.as_str()),
            };
            if let Some(&f) = first.get(&id) {
                duplicate_of[i] = Some(f);
            } else {
                first.insert(id, i);
            }
        }
        drop(first);
        let mut pods = Vec::new();
        let (mut antrea, mut groups) = (Vec::new(), Vec::new());
        let (mut external_nodes, mut entities) = (Vec::new(), Vec::new());
        for (i, object) in objects.into_iter().enumerate() {
            let source = sources.get(i).copied().unwrap_or_default();
            if let Some(f) = duplicate_of[i] {
                let what = object.describe();
                let first = sources.get(f).copied().unwrap_or_default();
                c.errors.push(ObjectError {
                    object: what.clone(),
                    field: "metadata.name".into(),
                    message: format!("duplicate {what}: already defined in {first}; this one is ignored"),
                    source: source.to_string(),
                });
                continue;
            }
            match object.into_owned() {
                Object::Namespace(ns) => {
                    c.namespaces.insert(ns.name.clone(), ns);
                }
                Object::Node(n) => {
                    c.nodes.insert(n.name.clone(), n);
                }
                Object::NetworkPolicy(p) => {
                    c.policies.insert((p.namespace.clone(), p.name.clone()), p);
                }
                Object::TrafficControl(t) => {
                    c.traffic_controls.insert(t.name.clone(), t);
                }
                Object::ClusterPolicy(p) => {
                    if p.antrea_tier.is_some() {
                        antrea.push((source, p.name.clone()));
                    }
                    c.cluster_policies.insert((p.kind, p.name.clone()), p);
                }
                Object::Tier(t) => {
                    c.tiers.insert(t.name.clone(), t);
                }
                Object::ClusterGroup(g) => {
                    groups.push((source, g.name.clone()));
                    c.groups.insert(g.name.clone(), g);
                }
                Object::Pod(p) => pods.push((source, p)),
                Object::ExternalNode(n) => external_nodes.push((source, n)),
                Object::ExternalEntity(e) => entities.push((source, e)),
            }
        }
        for (source, mut pod) in pods {
            if pod.host_network && pod.ips.is_empty() {
                // A hostNetwork pod's address is its node's.
                if let Some(node) = pod.node.as_ref().and_then(|n| c.nodes.get(n)) {
                    pod.ips = node.internal_ips.clone();
                }
            }
            if !pod.host_network {
                if let Some(owner) = pod.ips.iter().find_map(|ip| c.by_ip.get(ip)) {
                    c.errors.push(ObjectError {
                        object: format!("Pod {}", pod.key),
                        field: "status.podIP".into(),
                        message: format!("address already belongs to pod {owner}; this pod is ignored"),
                        source: source.to_string(),
                    });
                    continue;
                }
                for ip in &pod.ips {
                    c.by_ip.insert(*ip, pod.key.clone());
                }
            }
            if !c.namespaces.contains_key(&pod.key.namespace) {
                c.notes.push(format!("namespace {} has no manifest; pod {} implies it", pod.key.namespace, pod.key));
                c.namespaces.insert(pod.key.namespace.clone(), Namespace::new(&pod.key.namespace, Labels::new()));
            }
            c.pods.insert(pod.key.clone(), pod);
        }
        c.add_external_nodes(external_nodes);
        c.add_external_entities(entities);
        c.imply_entity_namespaces();
        c.index_hosts();
        c.check_groups(&groups);
        c.resolve_antrea_policies(&antrea);
        c.warn_about_host_policies(&antrea);
        self
    }

    /// Adds the ExternalNodes and the entities derived from them. An ExternalNode is rejected
    /// when another one (first seen) is the same host: it has the same name (the name
    /// `weir agent --external-node NAME` claims), or one of its addresses.
    fn add_external_nodes(&mut self, nodes: Vec<(&str, ExternalNode)>) {
        let mut owner: BTreeMap<IpAddr, (String, String)> = BTreeMap::new();
        let mut by_name: BTreeMap<String, String> = BTreeMap::new();
        for (source, node) in nodes {
            let object = format!("ExternalNode {}/{}", node.namespace, node.name);
            let reject = |field: String, message: String| ObjectError { object: object.clone(), field, message, source: source.to_string() };
            if let Some(ns) = by_name.get(&node.name) {
                let message = format!("ExternalNode {ns}/{} already claims the host {:?}; this one is ignored", node.name, node.name);
                self.errors.push(reject("metadata.name".into(), message));
                continue;
            }
            let taken = node.interfaces.iter().enumerate().find_map(|(i, interface)| {
                interface.ips.iter().enumerate().find_map(|(j, ip)| owner.get(ip).map(|o| (format!("spec.interfaces[{i}].ips[{j}]"), *ip, o)))
            });
            if let Some((field, ip, (ns, name))) = taken {
                let message = format!("{ip} already belongs to ExternalNode {ns}/{name}: two ExternalNodes on one host; this one is ignored");
                self.errors.push(reject(field, message));
                continue;
            }
            for ip in node.interfaces.iter().flat_map(|i| &i.ips) {
                owner.insert(*ip, (node.namespace.clone(), node.name.clone()));
            }
            by_name.insert(node.name.clone(), node.namespace.clone());
            for entity in node.entities() {
                self.external_entities.insert(entity.key.clone(), entity);
            }
            self.external_nodes.insert((node.namespace.clone(), node.name.clone()), node);
        }
    }

    /// Adds the ExternalEntities written directly: one with the key of a derived entity, or
    /// with another entity's address, is rejected.
    fn add_external_entities(&mut self, entities: Vec<(&str, ExternalEntity)>) {
        let mut owner: BTreeMap<IpAddr, ExternalEntityKey> =
            self.external_entities.values().flat_map(|e| e.ips.iter().map(|ip| (*ip, e.key.clone()))).collect();
        for (source, entity) in entities {
            let reject = |field: String, message: String| ObjectError {
                object: format!("ExternalEntity {}", entity.key),
                field,
                message,
                source: source.to_string(),
            };
            if let Some(derived) = self.external_entities.get(&entity.key) {
                let from = derived.external_node.as_deref().unwrap_or_default();
                if entity.external_node.is_some() && entity.external_node == derived.external_node {
                    // The copy Antrea's controller writes of an entity it derived, as weir
                    // derives it: the derived one (the ExternalNode's current interfaces) holds.
                    self.notes.push(format!("{source}: ExternalEntity {} is derived from ExternalNode {}/{from}: the derived one is used", entity.key, entity.key.namespace));
                    continue;
                }
                let message = format!("ExternalEntity {} is derived from ExternalNode {}/{from}; this one is ignored", entity.key, entity.key.namespace);
                self.errors.push(reject("metadata.name".into(), message));
                continue;
            }
            if let Some((i, ip, other)) = entity.ips.iter().enumerate().find_map(|(i, ip)| owner.get(ip).map(|o| (i, ip, o))) {
                let message = format!("{ip} already belongs to ExternalEntity {other}; this one is ignored");
                self.errors.push(reject(format!("spec.endpoints[{i}].ip"), message));
                continue;
            }
            for ip in &entity.ips {
                owner.insert(*ip, entity.key.clone());
            }
            self.external_entities.insert(entity.key.clone(), entity);
        }
    }

    /// Adds the namespace of each ExternalEntity that has no manifest, as pods imply theirs.
    fn imply_entity_namespaces(&mut self) {
        let missing: BTreeSet<ExternalEntityKey> =
            self.external_entities.keys().filter(|k| !self.namespaces.contains_key(&k.namespace)).cloned().collect();
        for key in missing {
            if !self.namespaces.contains_key(&key.namespace) {
                self.notes.push(format!("namespace {} has no manifest; external entity {key} implies it", key.namespace));
                self.namespaces.insert(key.namespace.clone(), Namespace::new(&key.namespace, Labels::new()));
            }
        }
    }

    /// Builds the address index of host endpoints: an entity's address before a node's (an
    /// ExternalNode that is also a Kubernetes Node is governed as the ExternalNode).
    fn index_hosts(&mut self) {
        self.host_by_ip.clear();
        for node in self.nodes.values() {
            for ip in &node.internal_ips {
                self.host_by_ip.entry(*ip).or_insert_with(|| Endpoint::Node(node.name.clone()));
            }
        }
        for entity in self.external_entities.values() {
            for ip in &entity.ips {
                self.host_by_ip.insert(*ip, Endpoint::ExternalEntity(entity.key.clone()));
            }
        }
    }

    /// The view as JSON for [`Cluster::from_stored`], its maps as lists in key order.
    pub fn to_stored(&self) -> serde_json::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.write_stored(&mut out)?;
        Ok(out)
    }

    /// [`Cluster::to_stored`] into a writer.
    pub fn write_stored(&self, out: impl std::io::Write) -> serde_json::Result<()> {
        serde_json::to_writer(out, &StoredRef {
            namespaces: self.namespaces.values().collect(),
            pods: self.pods.values().collect(),
            nodes: self.nodes.values().collect(),
            external_nodes: self.external_nodes.values().collect(),
            external_entities: self.external_entities.values().collect(),
            policies: self.policies.values().collect(),
            traffic_controls: self.traffic_controls.values().collect(),
            cluster_policies: self.cluster_policies.values().collect(),
            tiers: self.tiers.values().collect(),
            groups: self.groups.values().collect(),
            rejected_policies: &self.rejected_policies,
            rejected_cluster_policies: &self.rejected_cluster_policies,
            errors: &self.errors,
            warnings: &self.warnings,
            notes: &self.notes,
        })
    }

    /// A view written by [`Cluster::to_stored`]. Bytes that are not such a view (two objects
    /// with one key, two pods with one address, a pod without its namespace) are refused.
    pub fn from_stored(bytes: &[u8]) -> Result<Cluster, String> {
        let s: Stored = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let lens = |c: &Cluster| {
            [c.namespaces.len(), c.pods.len(), c.nodes.len(), c.policies.len(), c.traffic_controls.len()]
                .into_iter()
                .chain([c.cluster_policies.len(), c.tiers.len(), c.groups.len(), c.external_nodes.len(), c.external_entities.len()])
                .collect::<Vec<_>>()
        };
        let n = [s.namespaces.len(), s.pods.len(), s.nodes.len(), s.policies.len(), s.traffic_controls.len()]
            .into_iter()
            .chain([s.cluster_policies.len(), s.tiers.len(), s.groups.len(), s.external_nodes.len(), s.external_entities.len()])
            .collect::<Vec<_>>();
        let mut c = Cluster {
            namespaces: s.namespaces.into_iter().map(|o| (o.name.clone(), o)).collect(),
            pods: s.pods.into_iter().map(|o| (o.key.clone(), o)).collect(),
            nodes: s.nodes.into_iter().map(|o| (o.name.clone(), o)).collect(),
            external_nodes: s.external_nodes.into_iter().map(|o| ((o.namespace.clone(), o.name.clone()), o)).collect(),
            external_entities: s.external_entities.into_iter().map(|o| (o.key.clone(), o)).collect(),
            policies: s.policies.into_iter().map(|o| ((o.namespace.clone(), o.name.clone()), o)).collect(),
            traffic_controls: s.traffic_controls.into_iter().map(|o| (o.name.clone(), o)).collect(),
            cluster_policies: s.cluster_policies.into_iter().map(|o| ((o.kind, o.name.clone()), o)).collect(),
            tiers: s.tiers.into_iter().map(|o| (o.name.clone(), o)).collect(),
            groups: s.groups.into_iter().map(|o| (o.name.clone(), o)).collect(),
            rejected_policies: s.rejected_policies,
            rejected_cluster_policies: s.rejected_cluster_policies,
            errors: s.errors,
            warnings: s.warnings,
            notes: s.notes,
            by_ip: BTreeMap::new(),
            host_by_ip: BTreeMap::new(),
        };
        if n != lens(&c) {
            return Err("two objects with one key".into());
        }
        for pod in c.pods.values() {
            if !c.namespaces.contains_key(&pod.key.namespace) {
                return Err(format!("pod {} without its namespace", pod.key));
            }
            if pod.host_network {
                continue;
            }
            for ip in &pod.ips {
                if c.by_ip.insert(*ip, pod.key.clone()).is_some() {
                    return Err(format!("two pods with address {ip}"));
                }
            }
        }
        let mut entity_ips = BTreeSet::new();
        for ip in c.external_entities.values().flat_map(|e| &e.ips) {
            if !entity_ips.insert(*ip) {
                return Err(format!("two external entities with address {ip}"));
            }
        }
        c.index_hosts();
        Ok(c)
    }

    /// The pod (with its own network namespace) that owns `ip`.
    pub fn pod_by_ip(&self, ip: IpAddr) -> Option<&Pod> {
        self.by_ip.get(&ip).and_then(|k| self.pods.get(k))
    }

    /// A pod by key.
    pub fn pod(&self, key: &PodKey) -> Option<&Pod> {
        self.pods.get(key)
    }

    /// The endpoint that owns `ip`: a pod (not hostNetwork), else an ExternalEntity, else a
    /// Node (a hostNetwork pod's address is its node's).
    pub fn endpoint_at(&self, ip: IpAddr) -> Option<Endpoint> {
        match self.by_ip.get(&ip) {
            Some(pod) => Some(Endpoint::Pod(pod.clone())),
            None => self.host_by_ip.get(&ip).cloned(),
        }
    }

    /// The ExternalEntity of the ExternalNode `node` (in any namespace: its name is unique)
    /// for its host interface `interface`: the entity of the interface of that name, or of
    /// the only interface when that one has no name (Antrea's API allows it).
    pub fn external_entity_on(&self, node: &str, interface: &str) -> Option<ExternalEntityKey> {
        let en = self.external_nodes.values().find(|en| en.name == node)?;
        let named = en.interfaces.iter().find(|i| i.name == interface);
        let only_unnamed = matches!(en.interfaces.as_slice(), [only] if only.name.is_empty());
        let iface = named.or(only_unnamed.then(|| &en.interfaces[0]))?;
        Some(ExternalEntityKey::new(en.namespace.clone(), en.entity_name(&iface.name)))
    }

    /// The host endpoint (Node or ExternalEntity) that owns `ip`, if no pod does.
    pub fn host_at(&self, ip: IpAddr) -> Option<&Endpoint> {
        if self.by_ip.contains_key(&ip) { None } else { self.host_by_ip.get(&ip) }
    }

    /// The addresses of an endpoint (none for one the cluster does not have).
    pub fn endpoint_ips(&self, endpoint: &Endpoint) -> &[IpAddr] {
        match endpoint {
            Endpoint::Pod(k) => self.pods.get(k).map_or(&[], |p| &p.ips),
            Endpoint::Node(n) => self.nodes.get(n).map_or(&[], |n| &n.internal_ips),
            Endpoint::ExternalEntity(k) => self.external_entities.get(k).map_or(&[], |e| &e.ips),
        }
    }

    /// The labels of an endpoint, if the cluster has it.
    pub fn endpoint_labels(&self, endpoint: &Endpoint) -> Option<&Labels> {
        match endpoint {
            Endpoint::Pod(k) => self.pods.get(k).map(|p| &p.labels),
            Endpoint::Node(n) => self.nodes.get(n).map(|n| &n.labels),
            Endpoint::ExternalEntity(k) => self.external_entities.get(k).map(|e| &e.labels),
        }
    }

    /// The Nodes whose labels match `selector`, in name order.
    pub fn select_nodes<'a>(&'a self, selector: &'a Selector) -> impl Iterator<Item = &'a Node> + 'a {
        self.nodes.values().filter(move |n| selector.matches(&n.labels))
    }

    /// ExternalEntities of the namespaces `namespaces` selects whose labels match `entities`,
    /// in key order.
    pub fn select_entities<'a>(&'a self, namespaces: &'a Selector, entities: &'a Selector) -> impl Iterator<Item = &'a ExternalEntity> + 'a {
        self.external_entities.values().filter(move |e| {
            entities.matches(&e.labels) && self.namespaces.get(&e.key.namespace).is_some_and(|ns| namespaces.matches(&ns.labels))
        })
    }

    /// The pods NetworkPolicy can select: every pod that is not hostNetwork.
    pub fn policy_pods(&self) -> impl Iterator<Item = &Pod> {
        self.pods.values().filter(|p| !p.host_network)
    }

    /// Pods of `namespace` (or of every namespace whose labels match `namespaces`) whose labels
    /// match `pods`; hostNetwork pods never match. In key order.
    pub fn select<'a>(
        &'a self,
        namespace: NamespaceScope<'a>,
        pods: Option<&'a Selector>,
    ) -> impl Iterator<Item = &'a Pod> + 'a {
        // Pods are keyed by (namespace, name): each namespace is one range of the map, so a
        // selection never looks at the pods of other namespaces.
        let namespaces: Vec<&'a str> = match namespace {
            NamespaceScope::Named(ns) => vec![ns],
            NamespaceScope::Matching(sel) => {
                self.namespaces.values().filter(|ns| sel.matches(&ns.labels)).map(|ns| ns.name.as_str()).collect()
            }
        };
        namespaces
            .into_iter()
            .flat_map(move |ns| self.pods_in(ns))
            .filter(move |p| !p.host_network && pods.is_none_or(|s| s.matches(&p.labels)))
    }

    /// Every pod of one namespace, in name order.
    pub fn pods_in<'a>(&'a self, namespace: &'a str) -> impl Iterator<Item = &'a Pod> + 'a {
        self.pods
            .range(PodKey::new(namespace, "")..)
            .take_while(move |(k, _)| k.namespace == namespace)
            .map(|(_, p)| p)
    }
}

/// A cluster view as stored (JSON map keys must be strings: maps are lists of their values).
#[derive(Serialize)]
struct StoredRef<'a> {
    namespaces: Vec<&'a Namespace>,
    pods: Vec<&'a Pod>,
    nodes: Vec<&'a Node>,
    external_nodes: Vec<&'a ExternalNode>,
    external_entities: Vec<&'a ExternalEntity>,
    policies: Vec<&'a NetworkPolicy>,
    traffic_controls: Vec<&'a crate::traffic_control::TrafficControl>,
    cluster_policies: Vec<&'a ClusterPolicy>,
    tiers: Vec<&'a AntreaTier>,
    groups: Vec<&'a ClusterGroup>,
    rejected_policies: &'a [RejectedPolicy],
    rejected_cluster_policies: &'a [RejectedClusterPolicy],
    errors: &'a [ObjectError],
    warnings: &'a [ObjectError],
    notes: &'a [String],
}

/// [`StoredRef`] read back.
#[derive(Deserialize)]
struct Stored {
    namespaces: Vec<Namespace>,
    pods: Vec<Pod>,
    nodes: Vec<Node>,
    #[serde(default)]
    external_nodes: Vec<ExternalNode>,
    #[serde(default)]
    external_entities: Vec<ExternalEntity>,
    policies: Vec<NetworkPolicy>,
    traffic_controls: Vec<crate::traffic_control::TrafficControl>,
    cluster_policies: Vec<ClusterPolicy>,
    tiers: Vec<AntreaTier>,
    groups: Vec<ClusterGroup>,
    rejected_policies: Vec<RejectedPolicy>,
    rejected_cluster_policies: Vec<RejectedClusterPolicy>,
    errors: Vec<ObjectError>,
    #[serde(default)]
    warnings: Vec<ObjectError>,
    notes: Vec<String>,
}

/// Which namespaces a selection looks in.
#[derive(Debug, Clone, Copy)]
pub enum NamespaceScope<'a> {
    /// One namespace by name.
    Named(&'a str),
    /// Every namespace whose labels match.
    Matching(&'a Selector),
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: x, labels: {team: a}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x}\nstatus: {podIP: 10.0.0.1}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: n1}\nstatus: {addresses: [{type: InternalIP, address: 192.168.0.1}]}\n";
    /// A duplicate pod and node, a pod claiming x/a's address, a hostNetwork pod, a pod of a
    /// namespace without manifest, an invalid pod, an ignored kind.
    const B: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x}\nstatus: {podIP: 10.0.0.9}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: n1}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: x}\nstatus: {podIP: 10.0.0.1}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: h, namespace: x}\nspec: {hostNetwork: true, nodeName: n1}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: c, namespace: y}\nstatus: {podIP: 10.0.0.3}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: d, namespace: y}\nstatus: {podIP: nope}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: x}\n";
    const C: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {}}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {matchLabels: {a: b}}}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: q, namespace: x}\nspec: {podSelector: {}, ingress: [{ports: [{port: 0}]}]}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n";

    #[test]
    fn from_parts_equals_from_manifests_of_the_parts_appended() {
        let parts: Vec<Manifests> = [("a.yaml", A), ("b.yaml", B), ("c.yaml", C)]
            .iter()
            .map(|(s, t)| manifest::file::parse_file(s, t).unwrap())
            .collect();
        let mut all = Manifests::default();
        for p in &parts {
            all.append(p.clone());
        }
        let refs: Vec<&Manifests> = parts.iter().collect();
        let c = Cluster::from_parts(&refs);
        assert_eq!(c, Cluster::from_manifests(all));
        let errors: Vec<String> = c.errors.iter().map(ToString::to_string).collect();
        assert!(errors.contains(&"b.yaml: Pod x/a: metadata.name: duplicate Pod x/a: already defined in a.yaml; this one is ignored".to_string()), "{errors:#?}");
        assert!(errors.iter().any(|e| e.starts_with("b.yaml: Node n1: metadata.name: duplicate Node n1: already defined in a.yaml")), "{errors:#?}");
        assert!(errors.iter().any(|e| e.starts_with("c.yaml: NetworkPolicy x/p: metadata.name: duplicate")), "{errors:#?}");
        assert!(errors.iter().any(|e| e.starts_with("c.yaml: Namespace x: metadata.name: duplicate")), "{errors:#?}");
        assert!(errors.contains(&"b.yaml: Pod x/b: status.podIP: address already belongs to pod x/a; this pod is ignored".to_string()), "{errors:#?}");
        assert_eq!(c.pods[&PodKey::new("x", "h")].ips, vec!["192.168.0.1".parse::<IpAddr>().unwrap()]);
        assert!(c.namespaces.contains_key("y"));
        assert_eq!(c.policies.len(), 1);
        assert_eq!(c.rejected_policies.len(), 1);
        assert_eq!(c.pod_by_ip("10.0.0.1".parse().unwrap()).unwrap().key, PodKey::new("x", "a"));
        assert_eq!(Cluster::from_parts(&[]), Cluster::default());
    }

    #[test]
    fn a_stored_view_reads_back_equal_and_an_inconsistent_one_is_refused() {
        let parts: Vec<Manifests> = [("a.yaml", A), ("b.yaml", B), ("c.yaml", C)]
            .iter()
            .map(|(s, t)| manifest::file::parse_file(s, t).unwrap())
            .collect();
        let c = Cluster::from_parts(&parts.iter().collect::<Vec<_>>());
        let bytes = c.to_stored().unwrap();
        assert_eq!(Cluster::from_stored(&bytes).unwrap(), c);
        let text = String::from_utf8(bytes).unwrap();
        // x/c claims x/a's address; a pod loses its namespace; a pod appears twice.
        let ip_taken = text.replacen("10.0.0.3", "10.0.0.1", 1);
        assert!(Cluster::from_stored(ip_taken.as_bytes()).unwrap_err().contains("two pods with address 10.0.0.1"));
        assert!(text.contains("\"key\":\"y/c\""), "{text}");
        let no_ns = text.replacen("\"key\":\"y/c\"", "\"key\":\"z/c\"", 1);
        assert_eq!(Cluster::from_stored(no_ns.as_bytes()).unwrap_err(), "pod z/c without its namespace");
        let twice = text.replacen("\"key\":\"y/c\"", "\"key\":\"x/a\"", 1);
        assert_eq!(Cluster::from_stored(twice.as_bytes()).unwrap_err(), "two objects with one key");
        assert!(Cluster::from_stored(b"{}").is_err());
        assert!(Cluster::from_stored(b"\xff garbage").is_err());
    }
}
