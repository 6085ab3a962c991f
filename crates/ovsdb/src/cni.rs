//! The **CNI contract**: the `Interface.external_ids` keys by which a pod's port on `br-int`
//! tells weir which pod it belongs to. One set of names for every side of the contract: the
//! agent reads them (`agent::local_ports`), `weir-cni` and the testbed write them.
//!
//! | key | value | example |
//! |---|---|---|
//! | `iface-id` | `<namespace>/<pod name>` | `x/a` |
//! | `pod-namespace` | the pod's namespace | `x` |
//! | `pod-name` | the pod's name | `a` |
//! | `ip-address` | the pod's IPs on this interface, comma-separated, no prefix length | `10.244.1.10` |
//! | `attached-mac` | the MAC of the pod's end of the link, lower-case `xx:xx:xx:xx:xx:xx` | `02:00:0a:f4:01:0a` |
//!
//! The keys are written in the same transaction that inserts the port, so weir never sees a
//! pod port without its identity. `weir-cni` adds [`CNI_CONTAINER_ID`] and [`CNI_IFNAME`]
//! (the CNI attachment the port belongs to, for DEL and GC); weir itself ignores them.
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// `external_ids` key naming the pod as `namespace/name`.
pub const IFACE_ID: &str = "iface-id";
/// `external_ids` key holding the pod's namespace.
pub const POD_NAMESPACE: &str = "pod-namespace";
/// `external_ids` key holding the pod's name.
pub const POD_NAME: &str = "pod-name";
/// `external_ids` key holding the pod's IPs, comma-separated.
pub const IP_ADDRESS: &str = "ip-address";
/// `external_ids` key holding the pod interface's MAC.
pub const ATTACHED_MAC: &str = "attached-mac";
/// `external_ids` key of a port `weir-cni` made: the CNI container ID (`CNI_CONTAINERID`).
pub const CNI_CONTAINER_ID: &str = "weir-cni-container-id";
/// `external_ids` key of a port `weir-cni` made: the interface name in the pod (`CNI_IFNAME`).
pub const CNI_IFNAME: &str = "weir-cni-ifname";

/// A host interface moved onto the bridge (an ExternalNode's, `weir agent --external-node`):
/// the `external_ids` key of its internal port (which carries the interface's name, MAC and
/// configuration) that names its uplink port (the NIC, renamed `<name>~`). The agent writes it
/// with [`EXTERNAL_NODE`] and [`IP_ADDRESS`] (the addresses when it was moved) in the
/// transaction that adds both ports, and pairs the two ports by it.
pub const HOST_INTERFACE_UPLINK: &str = "weir-uplink";
/// `external_ids` key of a moved host interface's internal port: its ExternalNode's name.
pub const EXTERNAL_NODE: &str = "weir-external-node";

/// The host gateway: an OVS internal port on `br-int` that the agent creates (with
/// `--host-gateway`) and gives the node's pod gateway address ([`pod_gateway`]). The host reaches
/// its pods through it and pods reach the host, the outside (masqueraded) and Services (the
/// host's DNAT) through it. It carries no `iface-id`: it is not a pod.
pub const GATEWAY_PORT: &str = "weir-gw0";

/// The pods' default gateway in a node's pod CIDR whose network address is `network`: the
/// first address after it. The one definition: `weir-cni` routes pods through it, the agent
/// answers ARP for it and puts it on [`GATEWAY_PORT`].
pub fn pod_gateway(network: Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(network).wrapping_add(1))
}

/// The contract's five keys for a pod, in the order of the table above.
pub fn pod_external_ids(namespace: &str, name: &str, ips: &[Ipv4Addr], mac: &str) -> Vec<(&'static str, String)> {
    let ips: Vec<String> = ips.iter().map(|ip| ip.to_string()).collect();
    vec![
        (IFACE_ID, format!("{namespace}/{name}")),
        (POD_NAMESPACE, namespace.to_string()),
        (POD_NAME, name.to_string()),
        (IP_ADDRESS, ips.join(",")),
        (ATTACHED_MAC, mac.to_ascii_lowercase()),
    ]
}

/// [`pod_external_ids`] as the map a [`crate::PortSpec`] takes.
pub fn pod_external_ids_map(namespace: &str, name: &str, ips: &[Ipv4Addr], mac: &str) -> BTreeMap<String, String> {
    pod_external_ids(namespace, name, ips, mac).into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
