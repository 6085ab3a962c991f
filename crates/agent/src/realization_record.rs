//! The realization record: a digest of the inputs a realization was compiled from (the cluster
//! view, the node's topology, the build) and a digest of the flows it made of them, kept across
//! agent restarts.
//!
//! A restarted agent whose inputs have the record's digest, facing a switch whose flows have
//! the record's flow digest, knows the switch already holds what it would compile: it reports
//! the node realized as soon as the installed flows are read, and compiles afterwards (its
//! compiler is needed for the next change, not for this answer). Any difference (a manifest
//! changed while it was down, a pod moved, ovs-vswitchd restarted empty, someone deleted a flow,
//! another build) makes the digests differ, and the agent compiles and sends the difference as
//! before. The record is a cache of a pure function, so it is never stale: a record for other
//! inputs simply does not match, and one that cannot be read is ignored.
//!
//! The file is JSON (`{"format", "inputs", "flows"}`, digests in hex), written atomically. The
//! inputs digest covers the build (see [`crate::manifest_store`]'s build identity), so a record
//! written by another build never matches: its compiler may make other flows of the same view.

use pipeline::{FlowSet, Topology};
use policy::Cluster;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::hash::{Hash, Hasher};
use std::path::Path;

/// The record's file name in the agent's state directory.
pub const FILE: &str = "realization.json";

/// Bumped whenever what a digest covers changes.
const FORMAT: u32 = 1;

/// A SHA-256 digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest(pub [u8; 32]);

/// What a realization was made of, and what it made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// [`inputs_digest`] of the cluster view and topology compiled.
    pub inputs: Digest,
    /// [`flows_digest`] of the flows the compiler made of them.
    pub flows: Digest,
}

/// The digest of everything a node's compile depends on.
pub fn inputs_digest(cluster: &Cluster, topology: &Topology) -> Digest {
    let mut w = DigestWriter::default();
    w.write(crate::manifest_store::build_id().as_bytes());
    // The view as the manifest store keeps it; its writer (a digest) cannot fail.
    cluster.write_stored(&mut w).expect("a cluster view serializes");
    topology.hash(&mut w);
    w.finish_digest()
}

/// The digest of a flow set, over every field of every flow in key order: two sets have one
/// digest only if they hold the same flows (the diff's notion of equal, and stricter).
pub fn flows_digest(flows: &FlowSet) -> Digest {
    let mut w = DigestWriter::default();
    w.write_usize(flows.len());
    for f in flows.iter() {
        f.hash(&mut w);
    }
    w.finish_digest()
}

/// The record stored at `path`, or `None` when there is none or it cannot be read (ignored:
/// the agent then compiles, as without one).
pub fn read(path: &Path) -> Option<Record> {
    let bytes = std::fs::read(path).ok()?;
    let stored: Stored = serde_json::from_slice(&bytes).ok()?;
    (stored.format == FORMAT).then_some(())?;
    Some(Record { inputs: Digest(from_hex(&stored.inputs)?), flows: Digest(from_hex(&stored.flows)?) })
}

/// Writes `record` to `path` atomically (a temporary file renamed over it).
pub fn write(path: &Path, record: &Record) -> Result<(), String> {
    let stored = Stored { format: FORMAT, inputs: hex(&record.inputs.0), flows: hex(&record.flows.0) };
    let bytes = serde_json::to_vec(&stored).map_err(|e| e.to_string())?;
    crate::state_file::write_atomic(path, &bytes)
}

#[derive(Serialize, Deserialize)]
struct Stored {
    format: u32,
    inputs: String,
    flows: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    for (k, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * k..2 * k + 2], 16).ok()?;
    }
    Some(out)
}

/// Feeds SHA-256 through `Hash` and `io::Write`, buffered: derived `Hash` impls write a few
/// bytes at a time, and 20k flows are about a million such writes.
#[derive(Default)]
struct DigestWriter {
    sha: Sha256,
    buf: Vec<u8>,
}

impl DigestWriter {
    const CHUNK: usize = 64 * 1024;

    fn finish_digest(mut self) -> Digest {
        self.sha.update(&self.buf);
        Digest(self.sha.finalize().into())
    }
}

impl Hasher for DigestWriter {
    fn write(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= Self::CHUNK {
            self.sha.update(&self.buf);
            self.buf.clear();
        }
    }

    /// Not a digest: `Hasher` needs it, nothing here calls it.
    fn finish(&self) -> u64 {
        0
    }
}

impl std::io::Write for DigestWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        Hasher::write(self, bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openflow::Flow;

    fn flows(priorities: &[u16]) -> FlowSet {
        priorities.iter().map(|&priority| Flow { table_id: 3, priority, ..Flow::default() }).collect()
    }

    fn topology(tunnel: Option<u32>) -> Topology {
        Topology {
            node: "n1".into(),
            gateway_ip: "10.244.1.1".parse().unwrap(),
            gateway_mac: Topology::gateway_mac_for("10.244.1.1".parse().unwrap()),
            node_ips: Vec::new(),
            tunnel_ofport: tunnel,
            gateway_ofport: None,
            local_pods: Default::default(),
            remote_nodes: Vec::new(),
            ports: Default::default(),
            service_cidrs: Vec::new(),
            host_interfaces: Vec::new(),
            host_bypass: Vec::new(),
            node_policy: false,
            tunnel_udp_port: 6081,
        }
    }

    #[test]
    fn flow_sets_have_one_digest_exactly_when_they_hold_the_same_flows() {
        assert_eq!(flows_digest(&flows(&[1, 2])), flows_digest(&flows(&[2, 1])));
        assert_ne!(flows_digest(&flows(&[1, 2])), flows_digest(&flows(&[1, 3])));
        assert_ne!(flows_digest(&flows(&[1, 2])), flows_digest(&flows(&[1])));
        let mut other_cookie = flows(&[1, 2]);
        other_cookie.insert(Flow { table_id: 3, priority: 4, cookie: 9, ..Flow::default() });
        let mut same_key = flows(&[1, 2]);
        same_key.insert(Flow { table_id: 3, priority: 4, cookie: 8, ..Flow::default() });
        assert_ne!(flows_digest(&other_cookie), flows_digest(&same_key), "a field outside the key counts");
    }

    #[test]
    fn inputs_differ_when_the_view_or_the_topology_does() {
        let cluster = Cluster::default();
        let base = inputs_digest(&cluster, &topology(Some(1)));
        assert_eq!(base, inputs_digest(&cluster.clone(), &topology(Some(1))));
        assert_ne!(base, inputs_digest(&cluster, &topology(Some(2))));
        let mut noted = cluster.clone();
        noted.notes.push("a note".into());
        assert_ne!(base, inputs_digest(&noted, &topology(Some(1))));
    }

    #[test]
    fn a_record_round_trips_and_anything_unreadable_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        assert_eq!(read(&path), None, "no file");
        let record = Record { inputs: inputs_digest(&Cluster::default(), &topology(None)), flows: flows_digest(&flows(&[7])) };
        write(&path, &record).unwrap();
        assert_eq!(read(&path), Some(record));
        let text = std::fs::read_to_string(&path).unwrap();
        for broken in [&text[..text.len() / 2], &text.replace("\"format\":1", "\"format\":0"), &text.replacen('0', "g", 1), ""] {
            std::fs::write(&path, broken).unwrap();
            assert_eq!(read(&path), None, "{broken:?}");
        }
    }
}
