//! What the watchers have seen, per kind and object, parsed: the reflector stores of the
//! Kubernetes source, and whether the cluster view they make changed.
//!
//! Each object is parsed by `policy::manifest::add_value` with the source `kube:<Kind>/<ns>/<name>`,
//! so its errors name object and field exactly as in file mode. An object is parsed again only
//! when its `resourceVersion` changed, and a change counts only when what it parses to changed:
//! a relist (after `410 Gone` or an API server restart) that finds the same objects changes
//! nothing. As in file mode, an object whose edit is rejected keeps its last valid version in
//! force, with the error reported; a new object that is rejected contributes its error and its
//! fail-closed remnant.

use super::kinds::{Report, WATCHED, WatchedKind};
use kube::api::DynamicObject;
use kube::runtime::watcher;
use policy::Cluster;
use policy::manifest::Manifests;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use tracing::{debug, info};

/// An object's identity within its kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectKey {
    /// Its namespace (none for cluster-scoped kinds).
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

impl ObjectKey {
    fn of(object: &DynamicObject) -> ObjectKey {
        ObjectKey { namespace: object.metadata.namespace.clone(), name: object.metadata.name.clone().unwrap_or_default() }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// One object as last seen.
#[derive(Debug, Clone)]
struct Entry {
    resource_version: Option<String>,
    /// `metadata.generation` (the spec's version).
    generation: Option<i64>,
    /// What it contributes to the cluster view.
    in_force: Arc<Manifests>,
    /// Its last version without errors.
    last_good: Option<Arc<Manifests>>,
}

/// Where a kind's watcher is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Listed {
    /// Not listed yet.
    No,
    /// Listed whole at least once.
    Yes,
    /// Never listed because the API server does not serve it (404: its CRD is not installed):
    /// it has no objects.
    NotServed,
}

#[derive(Debug)]
struct KindView {
    kind: WatchedKind,
    objects: BTreeMap<ObjectKey, Entry>,
    /// A relist in progress: the objects listed so far.
    relist: Option<BTreeMap<ObjectKey, Entry>>,
    listed: Listed,
    /// The watcher's last error, until it recovers.
    failing: Option<String>,
}

/// Every watched kind's objects.
#[derive(Debug)]
pub struct View {
    kinds: Vec<KindView>,
}

impl Default for View {
    fn default() -> Self {
        let kinds = WATCHED
            .iter()
            .map(|&kind| KindView { kind, objects: BTreeMap::new(), relist: None, listed: Listed::No, failing: None })
            .collect();
        View { kinds }
    }
}

impl View {
    /// Takes what the watcher of `WATCHED[kind]` reported; returns whether the cluster view
    /// changed.
    pub fn handle(&mut self, kind: usize, event: Result<watcher::Event<DynamicObject>, watcher::Error>) -> bool {
        let k = &mut self.kinds[kind];
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                k.failed(&e);
                return false;
            }
        };
        k.failing = None;
        match event {
            watcher::Event::Init => {
                k.relist = Some(BTreeMap::new());
                false
            }
            watcher::Event::InitApply(object) => {
                let key = ObjectKey::of(&object);
                let entry = k.entry(object);
                k.relist.get_or_insert_default().insert(key, entry);
                false
            }
            watcher::Event::InitDone => {
                let listed = k.relist.take().unwrap_or_default();
                let changed = !same(&k.objects, &listed);
                if k.listed == Listed::Yes {
                    info!(kind = k.kind.kind, objects = listed.len(), changed, "relisted (a watch expired with 410 Gone, or could not resume)");
                }
                k.objects = listed;
                k.listed = Listed::Yes;
                changed
            }
            watcher::Event::Apply(object) => {
                let key = ObjectKey::of(&object);
                let entry = k.entry(object);
                let before = k.objects.insert(key, entry.clone());
                before.is_none_or(|b| b.in_force != entry.in_force)
            }
            watcher::Event::Delete(object) => k.objects.remove(&ObjectKey::of(&object)).is_some(),
        }
    }

    /// Whether every kind was listed (or is not served): until then a view would lack objects
    /// that exist, and a pod's policies missing is a hole, not a smaller cluster.
    pub fn complete(&self) -> bool {
        self.kinds.iter().all(|k| k.listed != Listed::No)
    }

    /// The cluster view of every object in force.
    pub fn cluster(&self) -> Cluster {
        let parts: Vec<&Manifests> = self.kinds.iter().flat_map(|k| k.objects.values().map(|e| &*e.in_force)).collect();
        Cluster::from_parts(&parts)
    }

    /// The generation of every object reported on in its status (they are cluster-scoped), by
    /// kind and name.
    pub fn generations(&self) -> super::generations::Generations {
        let custom = self.kinds.iter().filter(|k| k.kind.report == Report::Conditions);
        custom.flat_map(|k| k.objects.iter().filter_map(|(key, e)| Some(((k.kind.kind, key.name.clone()), e.generation?)))).collect()
    }

    /// Whether the view holds `expected`: its object at that resourceVersion or later, or (with
    /// none) no such object. A kind the agent does not watch is no part of the view: held.
    /// Without an apiVersion, the kind is the first watched one of that kind.
    pub fn holds(&self, expected: &super::sync::Expected) -> bool {
        let Some(kind) = super::kinds::find(&expected.kind, expected.api_version.as_deref()) else { return true };
        let Some(k) = self.kinds.iter().find(|k| k.kind == *kind) else { return true };
        let key = ObjectKey { namespace: expected.namespace.clone(), name: expected.name.clone() };
        if k.listed == Listed::No {
            return false;
        }
        match (k.objects.get(&key).and_then(|e| e.resource_version.as_deref()), &expected.resource_version) {
            (Some(have), Some(want)) => super::sync::at_least(have, want),
            (None, None) => !k.objects.contains_key(&key),
            (Some(_), None) | (None, Some(_)) => false,
        }
    }

    /// What is wrong with the watchers: kinds not served, watches failing.
    pub fn warnings(&self) -> Vec<String> {
        self.kinds.iter().filter_map(KindView::warning).collect()
    }
}

impl KindView {
    /// The entry for `object`: the one held if its resourceVersion is the same, else parsed.
    fn entry(&self, object: DynamicObject) -> Entry {
        let key = ObjectKey::of(&object);
        let held = self.objects.get(&key);
        let version = object.metadata.resource_version.clone();
        let generation = object.metadata.generation;
        if let Some(held) = held.filter(|h| version.is_some() && h.resource_version == version) {
            return held.clone();
        }
        let parsed = parse(&self.kind, &key, object);
        let last_good = held.and_then(|h| h.last_good.clone());
        if parsed.errors.is_empty() && parsed.unusable.is_empty() {
            let good = Arc::new(parsed);
            return Entry { resource_version: version, generation, in_force: good.clone(), last_good: Some(good) };
        }
        let in_force = match &last_good {
            // The edit is rejected: the last valid version stays in force, with the error.
            Some(good) => Manifests { objects: good.objects.clone(), errors: parsed.errors, unusable: parsed.unusable, ..Manifests::default() },
            None => parsed,
        };
        Entry { resource_version: version, generation, in_force: Arc::new(in_force), last_good }
    }

    fn failed(&mut self, e: &watcher::Error) {
        if expired(e) {
            // The API server's way of saying "relist" (its watch cache moved past the version
            // asked for, e.g. just after a CRD was established): the watcher relists at once,
            // the objects held stay in force meanwhile, and nothing is wrong.
            debug!(kind = self.kind.kind, "{e}; relisting");
            return;
        }
        if self.listed == Listed::No && not_served(e) {
            self.listed = Listed::NotServed;
        }
        self.failing = Some(e.to_string());
    }

    fn warning(&self) -> Option<String> {
        let what = format!("{} ({})", self.kind.kind, self.kind.api_version());
        match (&self.listed, &self.failing) {
            (Listed::NotServed, _) => Some(format!("{what}: not served by the API server ({}); none are enforced; retrying", self.kind.install_hint())),
            // Cleared by the watcher's next event: a resumed watch of a quiet kind says nothing
            // until its next bookmark (about a minute).
            (Listed::Yes, Some(e)) => Some(format!("{what}: {e}; the last objects seen stay in force; retrying")),
            (Listed::No, Some(e)) => Some(format!("{what}: {e}; nothing is realized until it is listed; retrying")),
            (_, None) => None,
        }
    }
}

/// Whether a watch ended with 410 Gone (Expired): part of the watch protocol, not a failure.
fn expired(e: &watcher::Error) -> bool {
    matches!(e, watcher::Error::WatchError(s) if s.code == 410)
}

/// Whether the API server said it has no such resource. Only a kind never listed is taken as
/// having no objects then: a served kind can answer 404 for a moment while a restarted API
/// server rebuilds its CRD handlers, and dropping its policies meanwhile would open a hole.
fn not_served(e: &watcher::Error) -> bool {
    match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s)) | watcher::Error::WatchStartFailed(kube::Error::Api(s)) => {
            s.code == 404
        }
        _ => false,
    }
}

/// Whether two stores put the same objects in force.
fn same(a: &BTreeMap<ObjectKey, Entry>, b: &BTreeMap<ObjectKey, Entry>) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((ka, ea), (kb, eb))| ka == kb && (Arc::ptr_eq(&ea.in_force, &eb.in_force) || ea.in_force == eb.in_force))
}

/// What the errors of an object from the API server name as their source:
/// `kube:<Kind>/<ns>/<name>` (`kube:<Kind>/<name>` for cluster-scoped kinds), where `<Kind>`
/// is the kind's [`WatchedKind::name`] (`Tier.crd.antrea.io`, ...).
pub fn source_name(kind: &WatchedKind, key: &ObjectKey) -> String {
    format!("{SOURCE_PREFIX}{}/{key}", kind.name)
}

const SOURCE_PREFIX: &str = "kube:";

/// The watched kind and object a [`source_name`] names, if it names one.
pub fn object_of_source(source: &str) -> Option<(&'static WatchedKind, ObjectKey)> {
    let (kind, key) = source.strip_prefix(SOURCE_PREFIX)?.split_once('/')?;
    let kind = WATCHED.iter().find(|k| k.name == kind)?;
    let key = match key.split_once('/') {
        Some((ns, name)) => ObjectKey { namespace: Some(ns.to_string()), name: name.to_string() },
        None => ObjectKey { namespace: None, name: key.to_string() },
    };
    Some((kind, key))
}

/// `object` parsed as file mode parses a document, named by [`source_name`].
fn parse(kind: &WatchedKind, key: &ObjectKey, object: DynamicObject) -> Manifests {
    let source = source_name(kind, key);
    let mut value = serde_json::to_value(object).unwrap_or_default();
    // A list's items carry no apiVersion and kind; managedFields is bookkeeping, and big.
    value["apiVersion"] = kind.api_version().into();
    value["kind"] = kind.kind.into();
    if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.remove("managedFields");
    }
    // A custom object's status is what the agents report on it (status_writer), never what
    // is wanted; a pod's is read (its addresses).
    if kind.custom
        && let Some(object) = value.as_object_mut()
    {
        object.remove("status");
    }
    let mut out = Manifests::default();
    policy::manifest::add_value(&source, "object", value, &mut out);
    out
}

#[cfg(test)]
mod tests;
