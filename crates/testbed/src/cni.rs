//! The **CNI contract**: how a pod's port on `br-int` tells weir which pod it belongs to (the
//! key names live in `ovsdb::cni`, shared with the agent and `weir-cni`).
//!
//! A CNI add-on (here: the testbed) attaches each pod's host-side interface to the bridge and
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
use crate::layout::INT_BRIDGE;
use std::net::Ipv4Addr;

pub use ovsdb::cni::{ATTACHED_MAC, IFACE_ID, IP_ADDRESS, POD_NAME, POD_NAMESPACE};

/// A pod port as the contract describes it.
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
