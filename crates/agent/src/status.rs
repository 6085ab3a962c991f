//! The agent's status, written as JSON to a file after every realization (atomically, by
//! rename) and read back by `weir status` and `weir testbed apply`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// An object the agent rejected, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectErrorReport {
    /// `Kind namespace/name` of the rejected object (or the file, if it did not parse).
    pub object: String,
    /// The field path, e.g. `spec.ingress[0].ports[1].port`.
    pub field: String,
    /// What is wrong.
    pub message: String,
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
    /// Installed flows per table name.
    pub flows: BTreeMap<String, usize>,
    /// flow_mods sent by the last realization.
    pub last_flow_mods: usize,
    /// Whether the switch connection is up and the last realization succeeded.
    pub realized: bool,
    /// Conditions that keep the agent from forwarding as the cluster view says.
    pub warnings: Vec<String>,
    /// The last realization error, if it failed.
    pub last_error: Option<String>,
    /// The switch's OVS version and datapath, and the known OVS bugs that apply to it.
    #[serde(default)]
    pub switch: Option<crate::ovs_bugs::SwitchReport>,
    /// How many times the agent purged the datapath's cached flows (see `switch`).
    #[serde(default)]
    pub datapath_cache_purges: u64,
}

impl Status {
    /// Writes the status to `path` via a temporary file and rename, so readers never see a
    /// partial file.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
        std::fs::rename(tmp, path)
    }

    /// Reads a status file.
    pub fn read(path: &Path) -> std::io::Result<Status> {
        serde_json::from_slice(&std::fs::read(path)?).map_err(std::io::Error::other)
    }
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
}
