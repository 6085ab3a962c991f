//! The **CNI contract**: how a pod's port on `br-int` tells weir which pod it belongs to (the
//! key names live in `ovsdb::cni`, shared with the agent and `weir-cni`).
//!
//! A CNI add-on (`weir-cni`, which the testbed runs through the CNI protocol with [`add`])
//! attaches each pod's host-side interface to the bridge and
//! writes these keys into the OVSDB `Interface` row's `external_ids` **in the same
//! transaction** that adds the port, so weir never sees a pod port without its identity:
//!
//! | key | value | example |
//! |---|---|---|
//! | `iface-id` | `<namespace>/<pod name>` | `x/a` |
//! | `pod-namespace` | the pod's namespace | `x` |
//! | `pod-name` | the pod's name | `a` |
//! | `ip-address` | the pod's IPs on this interface, comma-separated, no prefix length | `10.244.1.10` |
//! | `attached-mac` | the MAC of the pod's end of the link (the address its frames come from), lower-case `xx:xx:xx:xx:xx:xx` | `02:00:0a:f4:01:0a` |
//!
//! Rules of the contract:
//! - The interface is an ordinary port (`type` empty: a veth end, tap or NIC), named freely by
//!   the add-on; weir identifies the pod by `iface-id` / `pod-namespace` + `pod-name`, never
//!   by the port name, and learns the OpenFlow port number from `Interface.ofport`.
//! - All five keys are required; a row with `iface-id` but a missing or malformed key is a
//!   bad object (reported by weir, naming the interface and the key) and gets no forwarding.
//! - The pod's interface is configured before the port is added: MTU that fits the tunnel
//!   (1450 for GENEVE/VXLAN over a 1500-byte underlay), IPv4 address, default route via the
//!   node's pod gateway (the first address of the node's pod CIDR, answered by weir's ARP
//!   responder), and, for OVS's userspace datapath, transmit checksum offload off on the pod
//!   side (`ethtool -K eth0 tx off`).
//! - Removing the pod removes the port (`del-port`); weir forgets the pod when the row goes.
//! - Other `external_ids` keys are left alone by weir.
use crate::command::run_with_input;
use crate::error::Error;
use crate::layout::{INT_BRIDGE, POD_IFACE, POD_MTU};
use crate::state::{NodeState, PodState};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Environment variable naming the `weir-cni` binary the testbed attaches pods with.
pub const PLUGIN_VAR: &str = "WEIR_CNI";

/// The `weir-cni` binary: `$WEIR_CNI`, else `weir-cni` beside the running executable or one
/// directory up (cargo puts test executables in `target/<profile>/deps`).
pub fn plugin() -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os(PLUGIN_VAR) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("/proc/self/exe", e))?;
    let dirs = exe.ancestors().skip(1).take(2);
    dirs.map(|d| d.join("weir-cni")).find(|p| p.is_file()).ok_or_else(|| {
        Error::invalid(
            "testbed",
            "weir-cni",
            format!("no weir-cni beside {} (build it: cargo build -p cni), and {PLUGIN_VAR} is not set", exe.display()),
        )
    })
}

/// The CNI container ID of a pod: its network namespace's name (unique, and made of letters,
/// digits and '-', as the spec wants).
fn attachment(pod_netns: &str) -> cni::protocol::Attachment {
    cni::protocol::Attachment {
        container_id: pod_netns.to_string().try_into().expect("namespace names are valid container IDs"),
        ifname: POD_IFACE.to_string().try_into().expect("eth0 is an interface name"),
    }
}

/// The node end of a pod's veth, as `weir-cni` names it for the pod's attachment.
pub fn host_interface(pod_netns: &str) -> String {
    cni::link::VethNames::of(&attachment(pod_netns)).host
}

/// The network configuration `weir-cni` gets on `node`.
fn network_config(node: &NodeState) -> String {
    serde_json::json!({
        "cniVersion": "1.1.0",
        "name": "weir",
        "type": "weir-cni",
        "bridge": INT_BRIDGE,
        "ovsdb": format!("unix:{}", node.dir.join("db.sock").display()),
        "mtu": POD_MTU,
        "ipam": { "subnet": node.pod_cidr, "gateway": node.gateway, "dataDir": node.dir.join("cni") },
    })
    .to_string()
}

/// Runs `weir-cni` in the node's namespace, as a runtime does: `command` in `CNI_COMMAND`, the
/// pod in `CNI_*`, the node's configuration on stdin; returns stdout.
fn call(plugin: &Path, command: &str, node: &NodeState, pod: &PodState) -> Result<String, Error> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &node.netns]).arg(plugin);
    cmd.env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", &pod.netns)
        .env("CNI_NETNS", Path::new("/run/netns").join(&pod.netns))
        .env("CNI_IFNAME", POD_IFACE)
        .env("CNI_PATH", plugin.parent().unwrap_or(Path::new("/")))
        .env("CNI_ARGS", format!("K8S_POD_NAMESPACE={};K8S_POD_NAME={};IP={}", pod.namespace, pod.name, pod.ip));
    Ok(run_with_input(&mut cmd, &network_config(node))?)
}

/// Attaches `pod` through `weir-cni` ADD, with the address the testbed planned for it.
pub fn add(plugin: &Path, node: &NodeState, pod: &PodState) -> Result<(), Error> {
    let out = call(plugin, "ADD", node, pod)?;
    let result: serde_json::Value = serde_json::from_str(&out)
        .map_err(|e| Error::invalid(format!("pod {}", pod.key()), "weir-cni result", e.to_string()))?;
    let want = format!("{}/{}", pod.ip, crate::layout::Layout::POD_PREFIX_LEN);
    if result.pointer("/ips/0/address").and_then(|v| v.as_str()) != Some(want.as_str()) {
        return Err(Error::invalid(format!("pod {}", pod.key()), "weir-cni result", format!("{result} lacks {want}")));
    }
    Ok(())
}

/// Detaches `pod` through `weir-cni` DEL (nothing attached: nothing to do).
pub fn del(plugin: &Path, node: &NodeState, pod: &PodState) -> Result<(), Error> {
    call(plugin, "DEL", node, pod).map(drop)
}

pub use ovsdb::cni::{ATTACHED_MAC, IFACE_ID, IP_ADDRESS, POD_NAME, POD_NAMESPACE};

/// A pod port as the contract describes it (for tools that attach ports without the plugin,
/// e.g. `weir bench restart`'s thousands of ports in one transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodPort<'a> {
    /// Name of the host-side interface to add to `br-int`.
    pub interface: &'a str,
    /// The pod's namespace.
    pub namespace: &'a str,
    /// The pod's name.
    pub name: &'a str,
    /// The pod's IPs.
    pub ips: &'a [Ipv4Addr],
    /// The pod interface's MAC.
    pub mac: &'a str,
}

impl PodPort<'_> {
    /// The contract's `external_ids`, in the order of the table above.
    pub fn external_ids(&self) -> Vec<(&'static str, String)> {
        ovsdb::cni::pod_external_ids(self.namespace, self.name, self.ips, self.mac)
    }

    /// `ovs-vsctl` arguments (one `--` command group) that add the port to `br-int` with its
    /// `external_ids`, idempotently; several pods' groups can be joined in one transaction.
    pub fn vsctl_args(&self) -> Vec<String> {
        let mut args: Vec<String> =
            ["--", "--may-exist", "add-port", INT_BRIDGE, self.interface, "--", "set", "Interface", self.interface]
                .map(String::from)
                .into();
        // Values are quoted: OVSDB's string syntax would otherwise stop at ',' or '/'.
        args.extend(self.external_ids().into_iter().map(|(k, v)| format!("external_ids:{k}=\"{v}\"")));
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_ids_name_the_pod_its_ips_and_its_mac() {
        let ips = [Ipv4Addr::new(10, 244, 1, 10), Ipv4Addr::new(10, 244, 1, 11)];
        let port = PodPort { interface: "wb-p10", namespace: "x", name: "a", ips: &ips, mac: "02:00:0A:F4:01:0A" };
        assert_eq!(
            port.external_ids(),
            vec![
                ("iface-id", "x/a".to_string()),
                ("pod-namespace", "x".to_string()),
                ("pod-name", "a".to_string()),
                ("ip-address", "10.244.1.10,10.244.1.11".to_string()),
                ("attached-mac", "02:00:0a:f4:01:0a".to_string()),
            ]
        );
        let args = port.vsctl_args();
        assert!(args.contains(&"external_ids:ip-address=\"10.244.1.10,10.244.1.11\"".to_string()), "{args:?}");
    }
}
