//! The CNI network configuration list the agent writes for its node (`weir agent
//! --cni-conf-dir`, `/etc/cni/net.d` in a cluster): weir-cni on the node's bridge, allocating
//! from the node's pod CIDR with the gateway weir's flows answer for.
//!
//! The agent writes it after its first realization, so the container runtime (which reports
//! the node's network not ready while the directory holds no configuration) starts no pod
//! before the node's policy is in force; and again when the node's pod CIDR changes. The
//! keys are those weir-cni reads (`crates/cni/src/config.rs`); a test there parses this file
//! with weir-cni's own parser.

use ipnetwork::Ipv4Network;
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::path::Path;

/// The file's name: sorted before other plugins' files, as the runtime uses the first.
pub const FILE: &str = "10-weir.conflist";

/// The network's name (also the subdirectory of weir-cni's allocations).
pub const NETWORK: &str = "weir";

/// The CNI version the list declares (weir-cni speaks 1.0.0 and 1.1.0).
pub const CNI_VERSION: &str = "1.1.0";

/// The plugin's `type`: the binary's name in the runtime's plugin directory.
pub const PLUGIN: &str = "weir-cni";

/// What the configuration says of the node's pod network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodNetwork {
    /// The node's IPv4 pod CIDR.
    pub subnet: Ipv4Network,
    /// The pods' default gateway ([`ovsdb::cni::pod_gateway`]).
    pub gateway: Ipv4Addr,
}

impl PodNetwork {
    /// The pod network of `node`: its first IPv4 pod CIDR, if it has one.
    pub fn of(node: &policy::Node) -> Option<PodNetwork> {
        let subnet = node.ipv4_pod_cidrs().next()?;
        Some(PodNetwork { subnet, gateway: ovsdb::cni::pod_gateway(subnet.network()) })
    }
}

/// The configuration list for a node whose bridge is `bridge`, reached at `ovsdb`.
pub fn conflist(net: &PodNetwork, bridge: &str, ovsdb: &str) -> Value {
    json!({
        "cniVersion": CNI_VERSION,
        "name": NETWORK,
        "plugins": [{
            "type": PLUGIN,
            "bridge": bridge,
            "ovsdb": ovsdb,
            "ipam": {"type": PLUGIN, "subnet": net.subnet.to_string(), "gateway": net.gateway.to_string()},
        }],
    })
}

/// Writes `list` as [`FILE`] in `dir` atomically (the runtime may read it at any moment).
pub fn write(dir: &Path, list: &Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(list).map_err(|e| e.to_string())? + "\n";
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // The temporary file ends in .tmp, which the runtime does not read as a configuration.
    crate::state_file::write_atomic(&dir.join(FILE), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(cidrs: &[&str]) -> policy::Node {
        policy::Node {
            name: "n1".into(),
            labels: Default::default(),
            pod_cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
            internal_ips: Vec::new(),
        }
    }

    #[test]
    fn the_pod_network_is_the_first_ipv4_cidr_with_weirs_gateway() {
        let net = PodNetwork::of(&node(&["fd00::/64", "10.244.3.0/24"])).unwrap();
        assert_eq!((net.subnet.to_string(), net.gateway.to_string()), ("10.244.3.0/24".into(), "10.244.3.1".into()));
        assert_eq!(PodNetwork::of(&node(&["fd00::/64"])), None);
        assert_eq!(PodNetwork::of(&node(&[])), None);
    }

    #[test]
    fn the_list_is_written_whole_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("net.d");
        let net = PodNetwork::of(&node(&["10.244.3.0/24"])).unwrap();
        write(&conf, &conflist(&net, "br-int", "unix:/run/db.sock")).unwrap();
        let other = PodNetwork::of(&node(&["10.244.9.0/24"])).unwrap();
        write(&conf, &conflist(&other, "br-int", "unix:/run/db.sock")).unwrap();
        let files: Vec<_> = std::fs::read_dir(&conf).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(files, [FILE], "no temporary file left");
        let read: Value = serde_json::from_slice(&std::fs::read(conf.join(FILE)).unwrap()).unwrap();
        assert_eq!(read["plugins"][0]["ipam"]["subnet"], "10.244.9.0/24");
        assert_eq!(read["name"], NETWORK);
    }
}
