//! Events for rejected objects of the built-in kinds (NetworkPolicy, Pod, Namespace, Node) and
//! of Antrea's kinds (ClusterNetworkPolicy, Tier, ClusterGroup, ExternalNode, ExternalEntity, in
//! `crd.antrea.io` and `weir.io`), whose status weir has no part of: a Warning Event `Rejected` on the object, from
//! `weir-agent` on this node, naming the field (also as the reference's `fieldPath`) and what is
//! wrong, where `kubectl describe` shows it. weir's TrafficControl and the network-policy-api
//! kinds get a status condition instead ([`super::status_writer`]).
//!
//! One Event per node and (object version, field, message) while the agent runs; an error that
//! goes away and comes back is reported again, and so is every error after a restart (as
//! kubelet's Events are).

use super::kinds::{Report, WatchedKind};
use super::view::{ObjectKey, object_of_source};
use crate::status::{ObjectErrorReport, Status};
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use std::collections::BTreeSet;
use tracing::warn;

/// The Event's reason.
pub const REASON: &str = "Rejected";
/// The component Events come from.
pub const COMPONENT: &str = "weir-agent";
/// Where Events about cluster-scoped objects go (as kubelet's about Nodes do).
const CLUSTER_SCOPED_EVENTS: &str = "default";

/// An error as reported: (source, field, message).
type Reported = (String, String, String);

/// Writes this node's Events.
pub struct EventWriter {
    client: kube::Client,
    node: String,
    sent: BTreeSet<Reported>,
}

impl EventWriter {
    /// A writer for `node`.
    pub fn new(client: kube::Client, node: &str) -> Self {
        EventWriter { client, node: node.to_string(), sent: BTreeSet::new() }
    }

    /// Creates an Event for every rejected object of `status` reported by Events, not yet;
    /// returns how many it created. A failed one is tried again with the next status.
    pub async fn update(&mut self, status: &Status) -> usize {
        let now: BTreeSet<Reported> = status.errors.iter().map(reported).collect();
        self.sent.retain(|r| now.contains(r));
        let mut created = 0;
        for error in &status.errors {
            let Some((kind, key)) = object_of_source(&error.source).filter(|(k, _)| k.report == Report::Events) else { continue };
            if self.sent.contains(&reported(error)) {
                continue;
            }
            match self.create(kind, &key, error).await {
                Ok(sent) => {
                    created += usize::from(sent);
                    self.sent.insert(reported(error));
                }
                Err(e) => {
                    warn!("Event for rejected {} {key}: {e}; retrying with the next status", kind.kind);
                    break;
                }
            }
        }
        created
    }

    /// The Event for `error` on the object; false if the object is gone.
    async fn create(&self, kind: &WatchedKind, key: &ObjectKey, error: &ObjectErrorReport) -> Result<bool, kube::Error> {
        // Its uid and version: `kubectl describe` finds Events by uid. Listed by name, as the
        // agent may list but not get.
        let api: Api<DynamicObject> = match &key.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &kind.resource()),
            None => Api::all_with(self.client.clone(), &kind.resource()),
        };
        let found = api.list_metadata(&ListParams::default().fields(&format!("metadata.name={}", key.name))).await?;
        let Some(object) = found.items.into_iter().next() else { return Ok(false) };
        let namespace = key.namespace.clone().unwrap_or_else(|| CLUSTER_SCOPED_EVENTS.to_string());
        let event = self.event(kind, key, object.metadata, error, &namespace);
        Api::<Event>::namespaced(self.client.clone(), &namespace).create(&PostParams::default(), &event).await?;
        Ok(true)
    }

    fn event(&self, kind: &WatchedKind, key: &ObjectKey, meta: ObjectMeta, error: &ObjectErrorReport, namespace: &str) -> Event {
        let now = Time(Timestamp::now());
        let field = (!error.field.is_empty() && error.field != "-").then(|| error.field.clone());
        let what = match &field {
            Some(f) => format!("{f}: {}", error.message),
            None => error.message.clone(),
        };
        Event {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}.", key.name)),
                namespace: Some(namespace.to_string()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some(kind.api_version()),
                kind: Some(kind.kind.to_string()),
                name: Some(key.name.clone()),
                namespace: key.namespace.clone(),
                uid: meta.uid,
                resource_version: meta.resource_version,
                field_path: field,
            },
            reason: Some(REASON.into()),
            message: Some(format!("not enforced by weir on node {}: {what}", self.node)),
            type_: Some("Warning".into()),
            source: Some(EventSource { component: Some(COMPONENT.into()), host: Some(self.node.clone()) }),
            reporting_component: Some(format!("weir.io/{COMPONENT}")),
            reporting_instance: Some(format!("{COMPONENT}-{}", self.node)),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            ..Event::default()
        }
    }
}

fn reported(e: &ObjectErrorReport) -> Reported {
    (e.source.clone(), e.field.clone(), e.message.clone())
}
