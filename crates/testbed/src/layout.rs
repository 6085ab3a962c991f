//! Names and addresses of everything the testbed creates, derived from its prefix and the
//! node and pod numbers, so `down` can find exactly what `up` made.
//!
//! | object | name / address |
//! |---|---|
//! | node i (1-based) | Kubernetes name `node-i`, netns `<prefix>-node-i` |
//! | node underlay IP | `192.168.77.(10+i)/24` on `br-phy`'s LOCAL port, MAC `02:00` + IPv4 bytes |
//! | node pod CIDR | `10.244.i.0/24`, gateway `10.244.i.1` |
//! | underlay veth | node end `<prefix>-ul<i>` in the node netns (with 2 nodes and no VM, its peer is the other node's) |
//! | underlay switch (> 2 nodes, or any VM) | netns `<prefix>-underlay`, Linux bridge `br-underlay`, veth ends `<prefix>-ul<i>-b` |
//! | pod | netns `<prefix>-pod-<namespace>-<name>`, IP `10.244.i.(10+k)`, MAC `02:00` + IPv4 bytes |
//! | pod veth | pod end `eth0`; node end `<prefix>-p<host byte>` on `br-int` |
//! | VM k (1-based, a model's `external_nodes` in order; [`crate::external_hosts`]) | netns `<prefix>-vm-<namespace>-<name>`, `eth0` with `192.168.77.(100+k)/24` (below the collector, above the nodes: fewer than 90 nodes), MAC `02:00` + IPv4 bytes; underlay end `<prefix>-vm<k>` on `br-underlay`; routes to node i's pod CIDR via node i's underlay IP; in OVS mode its switch's state in `<dir>/vm-<namespace>-<name>/ovs`, `eth0` moved onto its `br-int` (`eth0~` the veth) |
//! | collector ([`crate::collector`]) | netns `<prefix>-collector`, `eth0` with `192.168.77.200/24`; node end `<prefix>-col` on the last node's `br-phy` |
//! | inline firewall ([`crate::firewall`]) | netns `<prefix>-fw<i>-<out device>`, ends `out` and `ret`; node ends named by the caller |
//!
//! Interface names stay within Linux's 15 characters: the prefix is at most 6.
use crate::error::Error;
use std::net::Ipv4Addr;

/// Longest prefix allowed; keeps `<prefix>-ul<i>-b` within 15 characters for 999 nodes.
pub const MAX_PREFIX_LEN: usize = 6;
/// Linux's limit on interface names (IFNAMSIZ - 1).
pub const MAX_IFNAME_LEN: usize = 15;
/// MTU of pod interfaces: 1500 on the underlay minus the 50 bytes of GENEVE/VXLAN overhead
/// (userspace tunnel push does not fragment).
pub const POD_MTU: u16 = 1450;
/// The underlay bridge on every node that holds the node IP (native tunnelling needs it).
pub const PHY_BRIDGE: &str = "br-phy";
/// The integration bridge weir programs.
pub const INT_BRIDGE: &str = "br-int";
/// The cluster's Service (ClusterIP) range: the API server's `--service-cluster-ip-range`, the
/// agents' `--service-cidr`, and where tests put the ClusterIPs they DNAT as kube-proxy would.
pub const SERVICE_CIDR: &str = "10.96.0.0/16";
/// The Linux bridge that joins more than two nodes (or nodes and VMs), inside the underlay netns.
pub const UNDERLAY_BRIDGE: &str = "br-underlay";
/// The pod end of every pod veth.
pub const POD_IFACE: &str = "eth0";
/// Host part of a node's pod CIDR where pod addresses start.
pub const FIRST_POD_HOST: u8 = 10;
/// Most nodes a testbed may have (node i uses 192.168.77.(10+i) and 10.244.i.0/24).
pub const MAX_NODES: usize = 245;

/// Names and addresses of one testbed, from its prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    prefix: String,
}

impl Layout {
    /// Checks the prefix: 1 to 6 characters, lower-case letters and digits, starting with a
    /// letter.
    pub fn new(prefix: &str) -> Result<Self, Error> {
        let ok = !prefix.is_empty()
            && prefix.len() <= MAX_PREFIX_LEN
            && prefix.starts_with(|c: char| c.is_ascii_lowercase())
            && prefix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !ok {
            return Err(Error::Invalid {
                object: "testbed".into(),
                field: "prefix".into(),
                message: format!(
                    "{prefix:?} must be 1 to {MAX_PREFIX_LEN} lower-case letters or digits, starting with a letter"
                ),
            });
        }
        Ok(Layout { prefix: prefix.to_string() })
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Kubernetes name of node `i` (1-based).
    pub fn node_name(&self, i: usize) -> String {
        format!("node-{i}")
    }

    /// Network namespace of node `i`.
    pub fn node_netns(&self, i: usize) -> String {
        format!("{}-node-{i}", self.prefix)
    }

    /// The netns holding the Linux bridge that joins more than two nodes, or nodes and VMs.
    pub fn underlay_netns(&self) -> String {
        format!("{}-underlay", self.prefix)
    }

    /// Node `i`'s end of its underlay veth (inside the node netns).
    pub fn uplink(&self, i: usize) -> String {
        format!("{}-ul{i}", self.prefix)
    }

    /// The underlay-switch end of node `i`'s underlay veth.
    pub fn uplink_peer(&self, i: usize) -> String {
        format!("{}-ul{i}-b", self.prefix)
    }

    /// Network namespace of a pod.
    pub fn pod_netns(&self, namespace: &str, name: &str) -> String {
        format!("{}-pod-{namespace}-{name}", self.prefix)
    }

    /// The collector's network namespace.
    pub fn collector_netns(&self) -> String {
        format!("{}-collector", self.prefix)
    }

    /// The node end of the collector's veth (a port of that node's `br-phy`).
    pub fn collector_veth(&self) -> String {
        format!("{}-col", self.prefix)
    }

    /// The network namespace of an inline firewall on node `i` whose out-side device is `out`.
    pub fn firewall_netns(&self, i: usize, out: &str) -> String {
        format!("{}-fw{i}-{out}", self.prefix)
    }

    /// Network namespace of the VM standing for the ExternalNode `namespace/name`.
    pub fn vm_netns(&self, namespace: &str, name: &str) -> String {
        format!("{}-vm-{namespace}-{name}", self.prefix)
    }

    /// The underlay end of VM `k`'s veth (1-based; a port of `br-underlay`).
    pub fn vm_veth(&self, k: usize) -> String {
        format!("{}-vm{k}", self.prefix)
    }

    /// The most VMs a testbed may have (their addresses stay below the collector's).
    pub const MAX_VMS: usize = 99;

    /// VM `k`'s underlay IP (1-based): `192.168.77.(100+k)`.
    pub fn vm_ip(k: usize) -> Option<Ipv4Addr> {
        (1..=Self::MAX_VMS).contains(&k).then(|| Ipv4Addr::new(192, 168, 77, 100 + k as u8))
    }

    /// The collector's underlay IP, above every node's (nodes use `.11` up to `.(10+nodes)`).
    pub const COLLECTOR_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 200);

    /// Node `i`'s underlay IP.
    pub fn underlay_ip(i: usize) -> Ipv4Addr {
        Ipv4Addr::new(192, 168, 77, 10 + i as u8)
    }

    /// Prefix length of the underlay network.
    pub const UNDERLAY_PREFIX_LEN: u8 = 24;

    /// Node `i`'s pod CIDR network address (a /24).
    pub fn pod_network(i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 244, i as u8, 0)
    }

    /// Prefix length of a node's pod CIDR.
    pub const POD_PREFIX_LEN: u8 = 24;

    /// Node `i`'s pod gateway (answered by the agent).
    pub fn pod_gateway(i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 244, i as u8, 1)
    }

    /// The `k`-th pod (0-based) of node `i`.
    pub fn pod_ip(i: usize, k: usize) -> Option<Ipv4Addr> {
        let host = usize::from(FIRST_POD_HOST) + k;
        (host < 255).then(|| Ipv4Addr::new(10, 244, i as u8, host as u8))
    }
}

/// The MAC the testbed gives an address: `02:00` followed by the four IPv4 bytes.
pub fn mac_for(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("02:00:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interface_name_fits_the_kernel_limit_at_the_longest_prefix() {
        let l = Layout::new("abcdef").unwrap();
        for name in [l.uplink(999), l.uplink_peer(999), l.collector_veth(), l.vm_veth(Layout::MAX_VMS)] {
            assert!(name.len() <= MAX_IFNAME_LEN, "{name} is {} characters", name.len());
        }
        assert!(UNDERLAY_BRIDGE.len() <= MAX_IFNAME_LEN);
    }

    #[test]
    fn prefixes_that_could_clash_or_overflow_are_refused() {
        for bad in ["", "abcdefg", "WB", "1wb", "w-b", "w b"] {
            let err = Layout::new(bad).unwrap_err().to_string();
            assert!(err.contains("prefix"), "{bad:?}: {err}");
        }
        assert_eq!(Layout::new("wb").unwrap().node_netns(2), "wb-node-2");
    }

    #[test]
    fn pod_macs_are_derived_from_their_ips() {
        assert_eq!(mac_for(Ipv4Addr::new(10, 244, 1, 10)), "02:00:0a:f4:01:0a");
        assert_eq!(mac_for(Layout::underlay_ip(2)), "02:00:c0:a8:4d:0c");
    }

    #[test]
    fn pod_addresses_run_from_ten_to_the_end_of_the_node_cidr() {
        assert_eq!(Layout::pod_ip(1, 0), Some(Ipv4Addr::new(10, 244, 1, 10)));
        assert_eq!(Layout::pod_ip(3, 244), Some(Ipv4Addr::new(10, 244, 3, 254)));
        assert_eq!(Layout::pod_ip(3, 245), None);
    }
}
