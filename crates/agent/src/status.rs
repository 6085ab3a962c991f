//! The agent's status, written as JSON to a file (atomically, by rename) at start, after every
//! realization and every [`HEARTBEAT`] while idle, and read back by `weir status` and
//! `weir testbed apply`. Its `heartbeat_unix_ms` is the time of the write: a file that stops
//! getting fresher means the agent's loop has stopped turning.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often an idle agent rewrites its status.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// An object the agent rejected, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectErrorReport {
    /// `Kind namespace/name` of the rejected object, `document N (line L)` when it could not
    /// be identified, or empty when the whole file is at fault.
    pub object: String,
    /// The field path, e.g. `spec.ingress[0].ports[1].port` (`-` when there is none).
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// The file the object came from (empty for errors that come from no file).
    #[serde(default)]
    pub source: String,
}

impl From<&policy::manifest::ObjectError> for ObjectErrorReport {
    fn from(e: &policy::manifest::ObjectError) -> Self {
        ObjectErrorReport { object: e.object.clone(), field: e.field.clone(), message: e.message.clone(), source: e.source.clone() }
    }
}

impl std::fmt::Display for ObjectErrorReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&policy::manifest::error_line(&self.source, &self.object, &self.field, &self.message))
    }
}

/// A cluster-scoped object: its kind (as errors name it) and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectName {
    /// The kind, e.g. `AdminNetworkPolicy`.
    pub kind: String,
    /// The name.
    pub name: String,
}

/// How one TrafficControl is realized on this node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficControlReport {
    /// Every local pod it applies to has its flows, with every port on the bridge.
    pub realized: bool,
    /// Local pods it applies to.
    pub pods: Vec<String>,
    /// The bridge ports it uses.
    pub ports: Vec<String>,
    /// What keeps it from being realized (missing ports, conflicts with other TrafficControls).
    pub errors: Vec<String>,
}

/// What the agent has realized.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The node this agent runs for.
    pub node: String,
    /// Increases by one with every realized change of desired flows.
    pub generation: u64,
    /// The `.weir-sync` token of the snapshot whose flows are installed.
    pub source_token: Option<String>,
    /// Objects seen, by kind.
    pub objects: BTreeMap<String, usize>,
    /// Local pods learned from the switch (CNI contract ports).
    pub local_pods: usize,
    /// Rejected objects.
    pub errors: Vec<ObjectErrorReport>,
    /// TrafficControls by name.
    #[serde(default)]
    pub traffic_controls: BTreeMap<String, TrafficControlReport>,
    /// The cluster policies (admin and baseline tiers) in the cluster view, realized with
    /// the rest when `realized` is true (unless `errors` names them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_policies: Vec<ObjectName>,
    /// Installed flows per table name.
    pub flows: BTreeMap<String, usize>,
    /// flow_mods sent by the last realization.
    pub last_flow_mods: usize,
    /// Whether the switch connection is up and the last realization succeeded.
    pub realized: bool,
    /// Conditions that keep the agent from forwarding as the cluster view says.
    pub warnings: Vec<String>,
    /// Why the switch may not hold the desired flows: the last realization error, or what a
    /// starting agent still waits for.
    pub last_error: Option<String>,
    /// The switch's OVS version and datapath, and the known OVS bugs that apply to it.
    #[serde(default)]
    pub switch: Option<crate::ovs_bugs::SwitchReport>,
    /// How many times the agent purged the datapath's cached flows (see `switch`).
    #[serde(default)]
    pub datapath_cache_purges: u64,
    /// What is wrong with the source itself (the manifests directory is missing or cannot
    /// be read); the last snapshot read stays in force meanwhile.
    #[serde(default)]
    pub source_warning: Option<String>,
    /// What is wrong with parts of the source while the rest works (a kind the API server
    /// does not serve, a watch that keeps failing and retrying).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_warnings: Vec<String>,
    /// When this status was written, in milliseconds since the Unix epoch (UTC).
    #[serde(default)]
    pub heartbeat_unix_ms: u64,
}

impl Status {
    /// Writes the status to `path` via a temporary file and rename, so readers never see a
    /// partial file.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
        std::fs::rename(tmp, path)
    }

    /// Stamps the heartbeat and writes the status; a failure is logged, not fatal: the agent
    /// enforces policy whether or not anyone can read about it.
    pub fn publish(&mut self, path: &Path) {
        self.heartbeat_unix_ms = unix_ms(SystemTime::now());
        if let Err(e) = self.write(path) {
            tracing::warn!("writing status {}: {e}", path.display());
        }
    }

    /// How long ago the heartbeat was, as of `now` (zero if it is in the future).
    pub fn heartbeat_age(&self, now: SystemTime) -> Duration {
        Duration::from_millis(unix_ms(now).saturating_sub(self.heartbeat_unix_ms))
    }

    /// Reads a status file.
    pub fn read(path: &Path) -> std::io::Result<Status> {
        serde_json::from_slice(&std::fs::read(path)?).map_err(std::io::Error::other)
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The objects of `cluster` by kind, as [`Status::objects`] counts them: namespaces, pods,
/// nodes and NetworkPolicies always, each kind of cluster policy present, and tiers, groups
/// and ExternalNodes when there are some.
pub fn object_counts(cluster: &policy::Cluster) -> BTreeMap<String, usize> {
    let mut objects = BTreeMap::new();
    objects.insert("Namespace".to_string(), cluster.namespaces.len());
    objects.insert("Pod".to_string(), cluster.pods.len());
    objects.insert("Node".to_string(), cluster.nodes.len());
    objects.insert("NetworkPolicy".to_string(), cluster.policies.len());
    for (kind, _) in cluster.cluster_policies.keys() {
        *objects.entry(kind.to_string()).or_default() += 1;
    }
    let optional = [("Tier", cluster.tiers.len()), ("ClusterGroup", cluster.groups.len()), ("ExternalNode", cluster.external_nodes.len())];
    for (kind, n) in optional.into_iter().filter(|(_, n)| *n > 0) {
        objects.insert(kind.to_string(), n);
    }
    objects
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_survives_a_write_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status.json");
        let s = Status { node: "n1".into(), generation: 3, source_token: Some("t".into()), ..Default::default() };
        s.write(&path).unwrap();
        assert_eq!(Status::read(&path).unwrap(), s);
    }

    #[test]
    fn publish_stamps_the_heartbeat_and_its_age_grows_with_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status.json");
        let mut s = Status::default();
        s.publish(&path);
        let read = Status::read(&path).unwrap();
        let now = SystemTime::now();
        assert!(read.heartbeat_age(now) < Duration::from_secs(5));
        assert_eq!(read.heartbeat_age(now + Duration::from_secs(30)).as_secs(), read.heartbeat_age(now).as_secs() + 30);
    }

    #[test]
    fn a_status_without_the_newer_fields_still_reads() {
        let old = r#"{"node":"n1","generation":1,"source_token":null,"objects":{},"local_pods":0,
            "errors":[{"object":"Pod x/a","field":"status.podIP","message":"bad"}],"flows":{},"last_flow_mods":0,
            "realized":true,"warnings":[],"last_error":null}"#;
        let s: Status = serde_json::from_str(old).unwrap();
        assert_eq!(s.heartbeat_unix_ms, 0);
        assert_eq!(s.errors[0].to_string(), "Pod x/a: status.podIP: bad");
    }
}
