//! The pod's link through rtnetlink: a veth pair whose host end stays in the node's namespace
//! (the one the plugin runs in, where ovs-vswitchd runs) and whose other end becomes the pod's
//! interface, with its MAC, MTU, address and default route; and transmit checksum offload off
//! through the `SIOCETHTOOL` ioctl.
//!
//! A netlink socket belongs to the namespace of the thread that opened it, so the pod side is
//! configured from a dedicated thread that `setns()`ed into the pod's namespace first.
use crate::protocol::{Attachment, CniError, Code};
use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{Handle, LinkUnspec, LinkVeth, RouteMessageBuilder};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

/// The names of an attachment's veth ends on the node: derived from the attachment, so DEL
/// and cleanup find them without state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethNames {
    /// The host end (also the OVS port and interface name).
    pub host: String,
    /// The pod end until it is moved and renamed in the pod.
    pub peer: String,
}

impl VethNames {
    /// `w` / `t` and 14 hex digits of a stable hash of the attachment (15 bytes, the limit).
    pub fn of(attachment: &Attachment) -> VethNames {
        let h = fnv1a(attachment.to_string().as_bytes()) & 0x00ff_ffff_ffff_ffff;
        VethNames { host: format!("w{h:014x}"), peer: format!("t{h:014x}") }
    }
}

/// FNV-1a, 64 bits: stable across builds (std's hasher promises no such thing).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// The pod's MAC, derived from its address like the testbed's (`02:00:` + the IPv4 octets).
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x02, 0x00, a, b, c, d]
}

/// `xx:xx:xx:xx:xx:xx`, lower case.
pub fn mac_text(mac: &[u8]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// How the pod's interface is to be configured.
#[derive(Debug, Clone)]
pub struct PodIface {
    /// `CNI_IFNAME`.
    pub name: String,
    /// Its address and prefix length.
    pub ip: Ipv4Addr,
    /// Prefix length of the pod CIDR.
    pub prefix: u8,
    /// Default gateway.
    pub gateway: Ipv4Addr,
    /// MTU.
    pub mtu: u32,
    /// Leave transmit checksum offload on.
    pub tx_checksum_offload: bool,
}

/// What the pod's interface looks like (for CHECK).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodIfaceState {
    /// MAC.
    pub mac: Vec<u8>,
    /// MTU.
    pub mtu: u32,
    /// Administratively up.
    pub up: bool,
    /// IPv4 addresses with prefix lengths.
    pub addresses: Vec<(Ipv4Addr, u8)>,
    /// The default route's gateway.
    pub default_gateway: Option<Ipv4Addr>,
}

pub(crate) fn netlink_error(what: impl std::fmt::Display, e: impl std::fmt::Display) -> CniError {
    CniError::new(Code::Interface, "pod interface failure", format!("{what}: {e}"))
}

/// A netlink handle in the calling thread's namespace, its connection driven on the current
/// (current-thread) runtime.
pub fn connect() -> Result<Handle, CniError> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| netlink_error("open a netlink socket", e))?;
    tokio::spawn(conn);
    Ok(handle)
}

fn is_enodev(e: &rtnetlink::Error) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -libc::ENODEV)
}

/// The link named `name`, if it exists.
pub async fn link(handle: &Handle, name: &str) -> Result<Option<LinkMessage>, CniError> {
    match handle.link().get().match_name(name.to_string()).execute().try_next().await {
        Ok(link) => Ok(link),
        Err(e) if is_enodev(&e) => Ok(None),
        Err(e) => Err(netlink_error(format!("look up link {name}"), e)),
    }
}

/// Creates the veth pair `names` (replacing a leftover of the same attachment), moves the
/// peer into the namespace `netns`, and brings the host end up with `mtu`.
pub async fn create_veth(handle: &Handle, names: &VethNames, netns: &Path, mtu: u32) -> Result<(), CniError> {
    delete(handle, &names.host).await?;
    delete(handle, &names.peer).await?;
    let ns = std::fs::File::open(netns).map_err(|e| netlink_error(format!("open {}", netns.display()), e))?;
    handle
        .link()
        .add(LinkVeth::new(&names.host, &names.peer).mtu(mtu).build())
        .execute()
        .await
        .map_err(|e| netlink_error(format!("create veth {}", names.host), e))?;
    let peer = index(handle, &names.peer).await?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(peer).setns_by_fd(ns.as_raw_fd()).build())
        .execute()
        .await
        .map_err(|e| netlink_error(format!("move {} into {}", names.peer, netns.display()), e))?;
    let host = index(handle, &names.host).await?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(host).up().build())
        .execute()
        .await
        .map_err(|e| netlink_error(format!("bring {} up", names.host), e))
}

async fn index(handle: &Handle, name: &str) -> Result<u32, CniError> {
    let l = link(handle, name).await?.ok_or_else(|| netlink_error(format!("link {name}"), "does not exist"))?;
    Ok(l.header.index)
}

/// Deletes link `name`; `Ok(false)` if there was none. Deleting one veth end deletes both.
pub async fn delete(handle: &Handle, name: &str) -> Result<bool, CniError> {
    let Some(l) = link(handle, name).await? else { return Ok(false) };
    match handle.link().del(l.header.index).execute().await {
        Ok(()) => Ok(true),
        Err(e) if is_enodev(&e) => Ok(false),
        Err(e) => Err(netlink_error(format!("delete link {name}"), e)),
    }
}

/// Runs `f` with a netlink handle inside the network namespace `netns`, on a thread of its
/// own (the namespace switch must not leak into the caller's threads).
pub fn in_netns<R: Send>(
    netns: &Path,
    f: impl AsyncFnOnce(Handle) -> Result<R, CniError> + Send,
) -> Result<R, CniError> {
    let ns = std::fs::File::open(netns).map_err(|e| netlink_error(format!("open {}", netns.display()), e))?;
    std::thread::scope(|s| {
        s.spawn(move || {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| netlink_error(format!("enter {}", netns.display()), e))?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| netlink_error("start a runtime", e))?;
            rt.block_on(async move { f(connect()?).await })
        })
        .join()
        .unwrap_or_else(|_| Err(netlink_error(format!("configure {}", netns.display()), "the thread panicked")))
    })
}

/// Inside the pod: renames `peer` to the pod's interface and configures it.
pub async fn configure_pod(handle: Handle, peer: &str, iface: &PodIface) -> Result<(), CniError> {
    let idx = index(&handle, peer).await?;
    let mac = mac_for(iface.ip).to_vec();
    handle
        .link()
        .set(LinkUnspec::new_with_index(idx).name(iface.name.clone()).address(mac).mtu(iface.mtu).build())
        .execute()
        .await
        .map_err(|e| netlink_error(format!("rename {peer} to {} in the pod", iface.name), e))?;
    if !iface.tx_checksum_offload {
        tx_checksum_off(&iface.name)?;
    }
    handle
        .link()
        .set(LinkUnspec::new_with_index(idx).up().build())
        .execute()
        .await
        .map_err(|e| netlink_error(format!("bring {} up", iface.name), e))?;
    handle
        .address()
        .add(idx, IpAddr::V4(iface.ip), iface.prefix)
        .execute()
        .await
        .map_err(|e| netlink_error(format!("add {}/{} to {}", iface.ip, iface.prefix, iface.name), e))?;
    let route = RouteMessageBuilder::<Ipv4Addr>::new().gateway(iface.gateway).output_interface(idx).build();
    handle
        .route()
        .add(route)
        .execute()
        .await
        .map_err(|e| netlink_error(format!("add the default route via {}", iface.gateway), e))
}

/// Inside the pod: the interface `name` as it is, `None` if it does not exist.
pub async fn inspect_pod(handle: Handle, name: &str) -> Result<Option<PodIfaceState>, CniError> {
    let Some(l) = link(&handle, name).await? else { return Ok(None) };
    let idx = l.header.index;
    let mut state = PodIfaceState {
        mac: vec![],
        mtu: 0,
        up: l.header.flags.contains(LinkFlags::Up),
        addresses: vec![],
        default_gateway: None,
    };
    for a in &l.attributes {
        match a {
            LinkAttribute::Address(m) => state.mac = m.clone(),
            LinkAttribute::Mtu(m) => state.mtu = *m,
            _ => {}
        }
    }
    let mut addrs = handle.address().get().set_link_index_filter(idx).execute();
    while let Some(msg) = addrs.try_next().await.map_err(|e| netlink_error(format!("list addresses of {name}"), e))? {
        for a in &msg.attributes {
            if let AddressAttribute::Address(IpAddr::V4(ip)) = a {
                state.addresses.push((*ip, msg.header.prefix_len));
            }
        }
    }
    let mut routes = handle.route().get(RouteMessageBuilder::<Ipv4Addr>::new().build()).execute();
    while let Some(r) = routes.try_next().await.map_err(|e| netlink_error("list routes", e))? {
        let oif = r.attributes.iter().any(|a| matches!(a, RouteAttribute::Oif(i) if *i == idx));
        let gw = r.attributes.iter().find_map(|a| match a {
            RouteAttribute::Gateway(RouteAddress::Inet(g)) => Some(*g),
            _ => None,
        });
        if r.header.destination_prefix_length == 0 && oif {
            state.default_gateway = gw;
        }
    }
    Ok(Some(state))
}

/// `ethtool -K <name> tx off` through `SIOCETHTOOL` / `ETHTOOL_STXCSUM`, in the calling
/// thread's namespace.
fn tx_checksum_off(name: &str) -> Result<(), CniError> {
    const ETHTOOL_STXCSUM: u32 = 0x17;
    #[repr(C)]
    struct EthtoolValue {
        cmd: u32,
        data: u32,
    }
    #[repr(C)]
    struct IfReq {
        name: [u8; libc::IFNAMSIZ],
        data: *mut EthtoolValue,
        _pad: [u8; 16],
    }
    let mut value = EthtoolValue { cmd: ETHTOOL_STXCSUM, data: 0 };
    let mut req = IfReq { name: [0; libc::IFNAMSIZ], data: &mut value, _pad: [0; 16] };
    req.name[..name.len()].copy_from_slice(name.as_bytes()); // IfName holds at most 15 bytes
    // SAFETY: a datagram socket only used for the ioctl and closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(netlink_error("open a socket for ethtool", std::io::Error::last_os_error()));
    }
    // SAFETY: `req` is a valid ifreq whose data points at a live ethtool_value.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCETHTOOL, &mut req as *mut IfReq) };
    let err = std::io::Error::last_os_error();
    // SAFETY: closing the socket opened above.
    unsafe { libc::close(fd) };
    if rc < 0 {
        return Err(netlink_error(format!("turn transmit checksum offload off on {name}"), err));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ContainerId, IfName};

    #[test]
    fn veth_names_are_stable_distinct_and_fit_ifnamsiz() {
        let att = |c: &str, i: &str| Attachment {
            container_id: ContainerId::try_from(c.to_string()).unwrap(),
            ifname: IfName::try_from(i.to_string()).unwrap(),
        };
        let a = VethNames::of(&att("abc", "eth0"));
        assert_eq!(a, VethNames::of(&att("abc", "eth0")));
        assert_eq!((a.host.len(), a.peer.len()), (15, 15));
        assert!(a.host.starts_with('w') && a.host[1..].chars().all(|c| c.is_ascii_hexdigit()), "{a:?}");
        assert_eq!(a.host[1..], a.peer[1..]);
        assert_ne!(a.host, VethNames::of(&att("abc", "eth1")).host);
        assert_ne!(a.host, VethNames::of(&att("abd", "eth0")).host);
        assert_eq!(mac_text(&mac_for(Ipv4Addr::new(10, 244, 1, 10))), "02:00:0a:f4:01:0a");
    }
}
