//! Per-node status in the API server: each agent writes, on every TrafficControl and cluster
//! policy, one condition `realized.weir.io/<node>` saying whether the object is realized on
//! its node, or why not: a rejected object's field error, a missing port, a switch that is down.
//!
//! Written with server-side apply to the status subresource under the field manager
//! `weir-agent-<node>`, so each agent owns its own condition and agents never overwrite each
//! other (the conditions are a list-map keyed by type, see `policy::crd`). Only a condition
//! that differs from the one last written is sent: an unchanged status, the idle agent's
//! heartbeat, an API server relist write nothing. A restarted agent first lists what it wrote
//! before, so it does not write it all again.

use super::kinds::{Report, WATCHED, WatchedKind};
use super::view::object_of_source;
use crate::status::Status;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use policy::crd::{Condition, realized_type};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;
use tracing::{debug, warn};

/// The kind reported on: the TrafficControl of `WATCHED`.
const TRAFFIC_CONTROL: &str = "TrafficControl";
/// Condition reasons.
const REALIZED: &str = "Realized";
const NOT_REALIZED: &str = "NotRealized";
const REJECTED: &str = "Rejected";

/// An object this node reports on: a custom kind of [`WATCHED`] and the object's name (they
/// are all cluster-scoped).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    /// The kind.
    pub kind: &'static str,
    /// The name.
    pub name: String,
}

/// What this node says about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether it is realized here.
    pub realized: bool,
    /// `Realized`, `NotRealized` or `Rejected`.
    pub reason: &'static str,
    /// For a human.
    pub message: String,
}

/// The field manager of `node`'s agent.
pub fn field_manager(node: &str) -> String {
    format!("weir-agent-{node}")
}

/// The kind `kind` of those reported on in status (one per kind name).
fn watched(kind: &str) -> Option<&'static WatchedKind> {
    WATCHED.iter().find(|k| k.report == Report::Conditions && k.kind == kind)
}

/// What the agent's status says about each object it reports on. Nothing before the agent's
/// first realization: "not realized yet" on every object would be a write storm at every start.
pub fn verdicts(status: &Status) -> BTreeMap<Target, Verdict> {
    let mut out = BTreeMap::new();
    if !status.realized && status.generation == 0 {
        return out;
    }
    let in_force = |errors: &[String]| match (errors, status.realized) {
        ([], true) => Verdict { realized: true, reason: REALIZED, message: format!("realized on node {}", status.node) },
        ([], false) => Verdict {
            realized: false,
            reason: NOT_REALIZED,
            message: status.last_error.clone().unwrap_or_else(|| "the switch does not hold the flows".into()),
        },
        (errors, _) => Verdict { realized: false, reason: NOT_REALIZED, message: errors.join("; ") },
    };
    for (name, tc) in &status.traffic_controls {
        out.insert(Target { kind: TRAFFIC_CONTROL, name: name.clone() }, in_force(&tc.errors));
    }
    for p in status.cluster_policies.iter().filter_map(|p| Some((watched(&p.kind)?, &p.name))) {
        out.insert(Target { kind: p.0.kind, name: p.1.clone() }, in_force(&[]));
    }
    rejections(status, &mut out);
    out
}

/// Every rejected object of a reported kind: `Rejected`, with each field error.
fn rejections(status: &Status, out: &mut BTreeMap<Target, Verdict>) {
    let mut errors: BTreeMap<Target, Vec<String>> = BTreeMap::new();
    for e in &status.errors {
        let Some((kind, key)) = object_of_source(&e.source).filter(|(k, _)| k.report == Report::Conditions) else { continue };
        let field = if e.field.is_empty() || e.field == "-" { String::new() } else { format!("{}: ", e.field) };
        errors.entry(Target { kind: kind.kind, name: key.name }).or_default().push(format!("{field}{}", e.message));
    }
    for (target, errors) in errors {
        // A rejected edit leaves the last valid version in force (and realized).
        let kept = if out.contains_key(&target) { "; the last valid version stays in force" } else { "" };
        let message = format!("rejected: {}{kept}", errors.join("; "));
        out.insert(target, Verdict { realized: false, reason: REJECTED, message });
    }
}

/// How many status writes were sent; shared with whoever wants to count them.
#[derive(Debug, Clone, Default)]
pub struct WriteCount(Arc<AtomicU64>);

impl WriteCount {
    /// Writes sent so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Writes one node's conditions.
pub struct StatusWriter {
    client: kube::Client,
    node: String,
    condition_type: String,
    /// The conditions this node's agent last wrote (or found written), by object.
    written: BTreeMap<Target, Condition>,
    writes: WriteCount,
}

impl StatusWriter {
    /// A writer for `node`; call [`StatusWriter::seed`] before the first update.
    pub fn new(client: kube::Client, node: &str) -> Self {
        StatusWriter {
            client,
            node: node.to_string(),
            condition_type: realized_type(node),
            written: BTreeMap::new(),
            writes: WriteCount::default(),
        }
    }

    /// The counter of writes sent.
    pub fn write_count(&self) -> WriteCount {
        self.writes.clone()
    }

    fn api(&self, kind: &WatchedKind) -> Api<DynamicObject> {
        Api::all_with(self.client.clone(), &kind.resource())
    }

    /// Learns the conditions this node wrote before (a restarted agent): one list per kind. A
    /// kind that cannot be listed (its CRD missing) has none.
    pub async fn seed(&mut self) {
        for kind in WATCHED.iter().filter(|k| k.report == Report::Conditions) {
            let list = match self.api(kind).list(&ListParams::default()).await {
                Ok(list) => list,
                Err(e) => {
                    debug!("status of {}: not listed ({e})", kind.kind);
                    continue;
                }
            };
            for object in list {
                let mine = conditions_of(&object).into_iter().find(|c| c.type_ == self.condition_type);
                if let (Some(c), Some(name)) = (mine, object.metadata.name) {
                    self.written.insert(Target { kind: kind.kind, name }, c);
                }
            }
        }
    }

    /// Writes every condition of `status` that differs from what was written; returns how
    /// many writes it sent. A failed write is retried at the next update.
    pub async fn update(&mut self, status: &Status) -> usize {
        let verdicts = verdicts(status);
        self.written.retain(|target, _| verdicts.contains_key(target));
        // The generation of each object in the view the agent realized.
        let generations = status.source_token.as_deref().and_then(super::generations::of);
        let mut sent = 0;
        for (target, verdict) in verdicts {
            let generation = generations.as_ref().and_then(|g| g.get(&(target.kind, target.name.clone())).copied());
            let condition = self.condition(&target, verdict, generation);
            if self.written.get(&target) == Some(&condition) {
                continue;
            }
            sent += 1;
            self.writes.0.fetch_add(1, Ordering::Relaxed);
            match self.apply(&target, &condition).await {
                Ok(()) => {
                    self.written.insert(target, condition);
                }
                // Deleted meanwhile: nothing to report on.
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                // The server is unreachable or refuses this node: the next update (at the
                // latest the agent's next heartbeat) tries again, one request at a time.
                Err(e) => {
                    warn!("status of {} {}: {e}; retrying with the next status", target.kind, target.name);
                    break;
                }
            }
        }
        sent
    }

    /// The condition for `verdict`, keeping the last transition time while the status stays.
    fn condition(&self, target: &Target, verdict: Verdict, observed_generation: Option<i64>) -> Condition {
        let status = if verdict.realized { "True" } else { "False" };
        let last_transition_time = match self.written.get(target) {
            Some(before) if before.status == status => before.last_transition_time.clone(),
            _ => now(),
        };
        Condition {
            type_: self.condition_type.clone(),
            status: status.into(),
            observed_generation,
            last_transition_time,
            reason: verdict.reason.into(),
            message: bounded(verdict.message),
        }
    }

    async fn apply(&self, target: &Target, condition: &Condition) -> Result<(), kube::Error> {
        let kind = watched(target.kind).expect("targets are of watched kinds");
        let body = serde_json::json!({
            "apiVersion": kind.api_version(),
            "kind": kind.kind,
            "status": {"conditions": [condition]},
        });
        let params = PatchParams::apply(&field_manager(&self.node)).force();
        self.api(kind).patch_status(&target.name, &params, &Patch::Apply(body)).await.map(drop)
    }
}

/// The longest message written: the schema's bound is 32768, and a condition is for a
/// human reading `kubectl describe` (`weir status` on the node has every error).
const MAX_MESSAGE: usize = 4096;

/// `message`, cut to [`MAX_MESSAGE`] bytes (at a character boundary) with a note saying so.
fn bounded(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str(" ... (cut; see `weir status` on the node)");
    }
    message
}

/// The conditions in an object's status (none if it has no readable ones).
pub fn conditions_of(object: &DynamicObject) -> Vec<Condition> {
    let conditions = object.data.get("status").and_then(|s| s.get("conditions")).cloned();
    conditions.and_then(|c| serde_json::from_value(c).ok()).unwrap_or_default()
}

/// Now, to the second, as Kubernetes writes times.
fn now() -> String {
    Timestamp::from_second(Timestamp::now().as_second()).map(|t| t.to_string()).unwrap_or_default()
}

/// Runs a writer for `node` on every status `statuses` sends, until the sender is dropped.
pub fn spawn(client: kube::Client, node: &str, mut statuses: watch::Receiver<Status>) -> (tokio::task::JoinHandle<()>, WriteCount) {
    let mut events = super::events::EventWriter::new(client.clone(), node);
    let mut writer = StatusWriter::new(client, node);
    let count = writer.write_count();
    let task = tokio::spawn(async move {
        writer.seed().await;
        while statuses.changed().await.is_ok() {
            let status = statuses.borrow_and_update().clone();
            writer.update(&status).await;
            events.update(&status).await;
        }
    });
    (task, count)
}

#[cfg(test)]
mod tests;
