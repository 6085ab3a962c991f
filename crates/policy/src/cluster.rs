//! The in-memory cluster view: namespaces, pods, nodes and policies, built from manifests.
//!
//! Building never fails: invalid objects are already errors in [`Manifests`]; duplicates
//! (same kind, namespace and name) and pods that claim another pod's address are rejected
//! here, the first one seen wins, and everything else is kept.
use crate::manifest::{self, Manifests, Object, ObjectError, RejectedPolicy};
use crate::netpol::NetworkPolicy;
use crate::objects::{Labels, Namespace, Node, Pod, PodKey};
use crate::selector::Selector;
use serde::Serialize;
use std::collections::BTreeMap;
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
    /// NetworkPolicies by (namespace, name).
    pub policies: BTreeMap<(String, String), NetworkPolicy>,
    /// TrafficControls by name.
    pub traffic_controls: BTreeMap<String, crate::traffic_control::TrafficControl>,
    /// Rejected NetworkPolicies; the pods they select fail closed.
    pub rejected_policies: Vec<RejectedPolicy>,
    /// Every rejected object.
    pub errors: Vec<ObjectError>,
    /// Skipped documents and implicit namespaces.
    pub notes: Vec<String>,
    /// Address → pod, for pods with their own network namespace (not hostNetwork).
    by_ip: BTreeMap<IpAddr, PodKey>,
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
        let mut c = Cluster {
            errors: m.unusable.into_iter().chain(m.errors).collect(),
            notes: m.notes,
            rejected_policies: m.rejected_policies,
            ..Cluster::default()
        };
        let mut first_source: BTreeMap<String, String> = BTreeMap::new();
        let mut pods = Vec::new();
        for (source, object) in m.objects {
            let what = object.describe();
            if let Some(first) = first_source.get(&what) {
                c.errors.push(ObjectError {
                    object: what.clone(),
                    field: "metadata.name".into(),
                    message: format!("duplicate {what}: already defined in {first}; this one is ignored"),
                    source,
                });
                continue;
            }
            first_source.insert(what, source.clone());
            match object {
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
                Object::Pod(p) => pods.push((source, p)),
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
                        source,
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
        c
    }

    /// The pod (with its own network namespace) that owns `ip`.
    pub fn pod_by_ip(&self, ip: IpAddr) -> Option<&Pod> {
        self.by_ip.get(&ip).and_then(|k| self.pods.get(k))
    }

    /// A pod by key.
    pub fn pod(&self, key: &PodKey) -> Option<&Pod> {
        self.pods.get(key)
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

/// Which namespaces a selection looks in.
#[derive(Debug, Clone, Copy)]
pub enum NamespaceScope<'a> {
    /// One namespace by name.
    Named(&'a str),
    /// Every namespace whose labels match.
    Matching(&'a Selector),
}
