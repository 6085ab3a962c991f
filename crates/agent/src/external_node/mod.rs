//! ExternalNode host interfaces on the integration bridge (`weir agent --external-node NAME
//! --external-interface IF`): the host's NIC becomes the bridge's uplink and an OVS internal
//! port takes its place, so every IPv4 packet of the host crosses weir's pipeline (conntrack,
//! then the host endpoint's policy) while the host keeps its name, MAC, MTU, addresses and
//! routes.
//!
//! The move ([`take_over`]), for interface `eth0`:
//! 1. The NIC's state (name, MAC, MTU, up, its IPv4 addresses with their flags and remaining
//!    lifetimes, the routes of every table through it) goes to the state directory
//!    ([`saved`]), before anything is touched.
//! 2. The NIC is renamed `eth0~` (renaming takes the link down, and the kernel drops its routes
//!    with it: they come back from the saved state).
//! 3. One OVSDB transaction adds `eth0~` (system port) and `eth0` (internal port with the NIC's
//!    MAC and MTU, `external_ids` naming the uplink and the ExternalNode: see
//!    [`ovsdb::cni::HOST_INTERFACE_UPLINK`]).
//! 4. The addresses (from the NIC, with what remains of their lifetimes) and the routes go to
//!    the internal port, replacing equal ones; then they leave the NIC.
//!
//! The DHCP client keeps working: its leases are bound to the MAC, which the internal port
//! carries, and it finds its interface by name. Every step can be run again: a restarted
//! agent finds the interface moved and adds nothing (no duplicate address or route, and the
//! internal port's addresses, which a DHCP renewal may have changed since, are left as they
//! are); an agent killed midway completes the move on its next start from the saved state.
//!
//! [`give_back`] reverses it (`weir agent --restore`, or the ExternalNode removed): the
//! internal port's current configuration is saved, both ports leave the bridge, the NIC gets
//! its name, MAC and MTU back and the configuration, and the saved state goes.
//!
//! Every link change goes through rtnetlink, every port change through OVSDB.
pub mod ip_config;
pub mod kernel_copy;
pub mod saved;

use futures::TryStreamExt;
use ip_config::IpConfig;
use openflow::Mac;
use ovsdb::cni::{EXTERNAL_NODE, HOST_INTERFACE_UPLINK, IP_ADDRESS};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::{Handle, LinkUnspec};
use saved::Saved;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

/// What marks the NIC's new name: `eth0` becomes `eth0~` (Antrea's convention).
pub const UPLINK_SUFFIX: char = '~';

/// The longest interface name Linux takes (IFNAMSIZ less the terminating NUL).
const IFNAMSIZ: usize = 15;

/// How long ovs-vswitchd may take to make the internal port's device, or remove it.
const DEVICE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a host interface could not be moved or given back; always names the interface.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("host interface {interface:?}: {what}")]
pub struct Error {
    /// The interface.
    pub interface: String,
    /// What went wrong.
    pub what: String,
}

/// The name of a host interface weir may move: one that leaves room for [`UPLINK_SUFFIX`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IfName(String);

impl IfName {
    /// Checks `name`: 1 to 14 characters (the uplink's name adds one, and Linux takes 15), no
    /// `/`, `:`, whitespace or [`UPLINK_SUFFIX`], not `.` or `..`.
    pub fn new(name: &str) -> Result<IfName, Error> {
        let bad = |why: String| Err(Error { interface: name.to_string(), what: why });
        if name.is_empty() || name.len() > IFNAMSIZ - 1 {
            return bad(format!(
                "a name of 1 to {} characters is needed (the uplink {name}{UPLINK_SUFFIX} must fit Linux's {IFNAMSIZ})",
                IFNAMSIZ - 1
            ));
        }
        if name == "." || name == ".." || name.chars().any(|c| c == '/' || c == ':' || c == UPLINK_SUFFIX || c.is_whitespace()) {
            return bad("is not a valid interface name".into());
        }
        Ok(IfName(name.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The NIC's name once moved.
    pub fn uplink(&self) -> String {
        format!("{}{UPLINK_SUFFIX}", self.0)
    }
}

impl std::fmt::Display for IfName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A host interface on the bridge, as the internal port's `external_ids` tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedInterface {
    /// The internal port (the interface's name).
    pub name: String,
    /// The uplink port (the NIC).
    pub uplink: String,
    /// The ExternalNode it belongs to.
    pub external_node: String,
    /// The MAC both carry.
    pub mac: Mac,
    /// Its IPv4 addresses when it was moved.
    pub ips: Vec<Ipv4Addr>,
    /// The internal port's device index (0 when read from OVSDB).
    pub internal_index: u32,
}

/// Where and for whom interfaces are moved.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    /// The OVSDB manager.
    pub manager: &'a ovsdb::Manager,
    /// The integration bridge.
    pub bridge: &'a str,
    /// The agent's state directory.
    pub state_dir: &'a Path,
    /// The ExternalNode's name.
    pub external_node: &'a str,
    /// Whether the bridge runs on the userspace datapath (`--datapath netdev`): the kernel's
    /// copy of the uplink's packets is then dropped ([`kernel_copy`]).
    pub userspace: bool,
}

/// Moves `iface` onto the bridge (see the module documentation), or completes a move begun
/// before; does nothing to an interface already moved. `configured` is the index of the
/// internal port's device the caller last saw configured, if any: that device without
/// addresses lost them on purpose (a DHCP lease ran out, an administrator) and is left so,
/// while a new device (ovs-vswitchd made it again) gets the saved configuration.
pub async fn take_over(handle: &Handle, place: Place<'_>, iface: &IfName, configured: Option<u32>) -> Result<MovedInterface, Error> {
    let err = |what: String| Error { interface: iface.to_string(), what };
    let (name, uplink) = (iface.as_str(), iface.uplink());
    let file = saved::path(place.state_dir, name);
    let mut saved = match saved::read(&file).map_err(|e| err(format!("reading its saved state: {e}")))? {
        Some(s) => s,
        None => save_before_move(handle, place, iface).await?,
    };
    if link(handle, &uplink).await.map_err(err)?.is_none() {
        let Some(nic) = link(handle, name).await.map_err(err)? else {
            return Err(err(format!("neither it nor its uplink {uplink} exists (the saved state is in {})", file.display())));
        };
        if is_internal_port(place, name) {
            return Err(err(format!("is the bridge's internal port, but its uplink {uplink} is gone")));
        }
        rename(handle, nic.header.index, &uplink).await.map_err(err)?;
    }
    let up = link(handle, &uplink).await.map_err(err)?.ok_or_else(|| err(format!("its uplink {uplink} vanished")))?;
    set_up(handle, up.header.index, &uplink).await.map_err(err)?;
    // Again on every start and new internal port: nft's state does not outlive a reboot.
    if place.userspace && configured.is_none() {
        // A move saved by an earlier build lacks the mark; the give-back needs it.
        if !saved.kernel_copy_dropped {
            saved.kernel_copy_dropped = true;
            saved::write(&file, &saved).map_err(|e| err(format!("saving its state: {e}")))?;
        }
        kernel_copy::drop_on(&uplink).await.map_err(err)?;
    }
    let ips = saved.config.ips();
    place
        .manager
        .ensure_ports(place.bridge, &port_specs(&saved, place.external_node, &ips))
        .await
        .map_err(|e| err(format!("ovsdb: {e}")))?;
    let internal = wait_for_device(handle, name).await.map_err(err)?;
    let index = internal.header.index;
    let mac = parse_mac(&saved.mac).ok_or_else(|| err(format!("the saved MAC {:?} is not a MAC", saved.mac)))?;
    let set = LinkUnspec::new_with_index(index).address(mac.0.to_vec()).mtu(saved.mtu).up().build();
    handle.link().set(set).execute().await.map_err(|e| err(format!("set the MAC, MTU and up state of the internal port: {e}")))?;
    if configured != Some(index) {
        move_config(handle, &saved, up.header.index, index).await.map_err(|e| err(e.to_string()))?;
    }
    Ok(MovedInterface { name: name.to_string(), uplink, external_node: place.external_node.to_string(), mac, ips, internal_index: index })
}

/// Saves the NIC's state before the move; the NIC must exist and not be weir's port already.
async fn save_before_move(handle: &Handle, place: Place<'_>, iface: &IfName) -> Result<Saved, Error> {
    let err = |what: String| Error { interface: iface.to_string(), what };
    let name = iface.as_str();
    let Some(nic) = link(handle, name).await.map_err(err)? else {
        return Err(err("does not exist: nothing was changed".into()));
    };
    if is_internal_port(place, name) {
        return Err(err(format!(
            "is already an internal port of bridge {} and no saved state says what it was (was the state directory changed?)",
            place.bridge
        )));
    }
    let config = IpConfig::read(handle, nic.header.index, name).await.map_err(|e| err(e.to_string()))?;
    let saved = Saved {
        interface: name.to_string(),
        uplink: iface.uplink(),
        mac: link_mac(&nic).map(|m| m.to_string()).ok_or_else(|| err("has no Ethernet MAC".into()))?,
        mtu: link_mtu(&nic).ok_or_else(|| err("has no MTU".into()))?,
        up: nic.header.flags.contains(LinkFlags::Up),
        config,
        kernel_copy_dropped: place.userspace,
    };
    saved::write(&saved::path(place.state_dir, name), &saved).map_err(|e| err(format!("saving its state: {e}")))?;
    Ok(saved)
}

/// The configuration goes from the uplink to the internal port, unless the move was done
/// before: the addresses still on the uplink (else, if the internal port has none either,
/// the saved ones) and the saved routes (the rename dropped the uplink's).
async fn move_config(handle: &Handle, saved: &Saved, uplink: u32, internal: u32) -> Result<(), ip_config::NetlinkError> {
    let on_uplink = IpConfig::read(handle, uplink, &saved.uplink).await?;
    let on_internal = IpConfig::read(handle, internal, &saved.interface).await?;
    if on_uplink.is_empty() && !on_internal.is_empty() {
        return Ok(());
    }
    let addresses = if on_uplink.is_empty() { saved.config.clone() } else { on_uplink.labelled_as(&saved.config, &saved.interface) };
    let wanted = IpConfig { routes: saved.config.routes.clone(), ..addresses };
    wanted.put(handle, internal, &saved.interface).await?;
    on_uplink.remove(handle, &saved.uplink).await
}

/// Gives `iface` back to the host as it was (see the module documentation); `false` when
/// there is no saved state (weir never moved it, or gave it back already).
pub async fn give_back(handle: &Handle, place: Place<'_>, iface: &str) -> Result<bool, Error> {
    let err = |what: String| Error { interface: iface.to_string(), what };
    let file = saved::path(place.state_dir, iface);
    let Some(mut saved) = saved::read(&file).map_err(|e| err(format!("reading its saved state: {e}")))? else {
        return Ok(false);
    };
    let uplink = link(handle, &saved.uplink).await.map_err(err)?;
    if let (Some(_), Some(internal)) = (&uplink, link(handle, iface).await.map_err(err)?) {
        let now = IpConfig::read(handle, internal.header.index, iface).await.map_err(|e| err(e.to_string()))?;
        if !now.is_empty() {
            saved.config = now;
            saved::write(&file, &saved).map_err(|e| err(format!("saving its current configuration: {e}")))?;
        }
    }
    if saved.kernel_copy_dropped {
        kernel_copy::keep_on(&saved.uplink).await.map_err(err)?;
    }
    for port in [iface, saved.uplink.as_str()] {
        place.manager.delete_port(place.bridge, port).await.map_err(|e| err(format!("removing port {port} from {}: {e}", place.bridge)))?;
    }
    if let Some(up) = uplink {
        wait_for_removal(handle, iface).await.map_err(err)?;
        rename(handle, up.header.index, iface).await.map_err(err)?;
    }
    let nic = link(handle, iface).await.map_err(err)?.ok_or_else(|| err("the NIC vanished".into()))?;
    let mac = parse_mac(&saved.mac).ok_or_else(|| err(format!("the saved MAC {:?} is not a MAC", saved.mac)))?;
    let mut set = LinkUnspec::new_with_index(nic.header.index).address(mac.0.to_vec()).mtu(saved.mtu);
    set = if saved.up { set.up() } else { set.down() };
    handle.link().set(set.build()).execute().await.map_err(|e| err(format!("set the MAC, MTU and up state: {e}")))?;
    // A move cut short leaves the addresses on the NIC, labelled after its names since
    // (`eth0~:2` is `eth0:2` once renamed back), and a replaced address keeps its label:
    // what the NIC holds goes, the saved configuration comes.
    let held = IpConfig::read(handle, nic.header.index, iface).await.map_err(|e| err(e.to_string()))?;
    held.remove(handle, iface).await.map_err(|e| err(e.to_string()))?;
    saved.config.put(handle, nic.header.index, iface).await.map_err(|e| err(e.to_string()))?;
    saved::remove(&file).map_err(|e| err(format!("removing its saved state: {e}")))?;
    Ok(true)
}

/// The two ports of a moved interface, as one OVSDB transaction adds them.
fn port_specs(saved: &Saved, external_node: &str, ips: &[Ipv4Addr]) -> [ovsdb::PortSpec; 2] {
    let uplink = ovsdb::PortSpec::new(&saved.uplink, ovsdb::PortKind::System);
    let mut internal = ovsdb::PortSpec::new(&saved.interface, ovsdb::PortKind::Internal);
    internal.mtu = Some(saved.mtu);
    internal.mac = Some(saved.mac.clone());
    let ips: Vec<String> = ips.iter().map(Ipv4Addr::to_string).collect();
    internal.external_ids = BTreeMap::from([
        (HOST_INTERFACE_UPLINK.to_string(), saved.uplink.clone()),
        (EXTERNAL_NODE.to_string(), external_node.to_string()),
        (IP_ADDRESS.to_string(), ips.join(",")),
    ]);
    [uplink, internal]
}

/// The moved interfaces on the bridge: internal ports whose `external_ids` name an uplink.
pub fn moved_interfaces(interfaces: &BTreeMap<String, ovsdb::tables::Interface>) -> Vec<MovedInterface> {
    interfaces
        .values()
        .filter(|i| i.iface_type == "internal")
        .filter_map(|i| {
            let uplink = i.external_ids.get(HOST_INTERFACE_UPLINK)?;
            let mac = i.mac.as_deref().and_then(parse_mac)?;
            let ips = i.external_ids.get(IP_ADDRESS).map_or_else(Vec::new, |v| v.split(',').filter_map(|s| s.parse().ok()).collect());
            let external_node = i.external_ids.get(EXTERNAL_NODE).cloned().unwrap_or_default();
            Some(MovedInterface { name: i.name.clone(), uplink: uplink.clone(), external_node, mac, ips, internal_index: 0 })
        })
        .collect()
}

/// [`moved_interfaces`] with both OpenFlow ports known, as the pipeline takes them.
pub fn host_interfaces(interfaces: &BTreeMap<String, ovsdb::tables::Interface>) -> Vec<pipeline::HostInterface> {
    let ofport = |name: &str| interfaces.get(name).and_then(|i| i.ofport).filter(|p| *p > 0).map(|p| p as u32);
    moved_interfaces(interfaces)
        .into_iter()
        .filter_map(|m| {
            Some(pipeline::HostInterface {
                internal_ofport: ofport(&m.name)?,
                uplink_ofport: ofport(&m.uplink)?,
                name: m.name,
                mac: m.mac,
                ips: m.ips,
                endpoint: None,
            })
        })
        .collect()
}

fn is_internal_port(place: Place<'_>, name: &str) -> bool {
    place.manager.with_view(|db| {
        use ovsdb::tables::{Interface, TableRow};
        Interface::named(db, name).is_some_and(|i| i.iface_type == "internal")
    })
}

/// The link named `name`, if there is one.
async fn link(handle: &Handle, name: &str) -> Result<Option<LinkMessage>, String> {
    match handle.link().get().match_name(name.to_string()).execute().try_next().await {
        Ok(l) => Ok(l),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code().abs() == 19 => Ok(None),
        Err(e) => Err(format!("looking up link {name}: {e}")),
    }
}

/// Renames a link (Linux renames only links that are down; it is brought up again after).
async fn rename(handle: &Handle, index: u32, to: &str) -> Result<(), String> {
    let set = |m| async { handle.link().set(m).execute().await };
    set(LinkUnspec::new_with_index(index).down().build()).await.map_err(|e| format!("take link {index} down: {e}"))?;
    set(LinkUnspec::new_with_index(index).name(to.to_string()).build()).await.map_err(|e| format!("rename link {index} to {to}: {e}"))?;
    set_up(handle, index, to).await
}

async fn set_up(handle: &Handle, index: u32, name: &str) -> Result<(), String> {
    handle.link().set(LinkUnspec::new_with_index(index).up().build()).execute().await.map_err(|e| format!("bring {name} up: {e}"))
}

/// Waits for ovs-vswitchd to make the internal port's device.
async fn wait_for_device(handle: &Handle, name: &str) -> Result<LinkMessage, String> {
    let deadline = Instant::now() + DEVICE_TIMEOUT;
    loop {
        if let Some(l) = link(handle, name).await? {
            return Ok(l);
        }
        if Instant::now() > deadline {
            return Err(format!("ovs-vswitchd made no device for the internal port within {} s", DEVICE_TIMEOUT.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for ovs-vswitchd to remove the internal port's device.
async fn wait_for_removal(handle: &Handle, name: &str) -> Result<(), String> {
    let deadline = Instant::now() + DEVICE_TIMEOUT;
    while link(handle, name).await?.is_some() {
        if Instant::now() > deadline {
            return Err(format!("ovs-vswitchd did not remove the internal port's device within {} s", DEVICE_TIMEOUT.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn link_mac(l: &LinkMessage) -> Option<Mac> {
    l.attributes.iter().find_map(|a| match a {
        LinkAttribute::Address(b) => <[u8; 6]>::try_from(b.as_slice()).ok().map(Mac),
        _ => None,
    })
}

fn link_mtu(l: &LinkMessage) -> Option<u32> {
    l.attributes.iter().find_map(|a| match a {
        LinkAttribute::Mtu(m) => Some(*m),
        _ => None,
    })
}

fn parse_mac(s: &str) -> Option<Mac> {
    s.parse().ok()
}

/// An ExternalNode as the agent runs for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalNode {
    /// Its name.
    pub name: String,
    /// The host interfaces to move onto the bridge.
    pub interfaces: Vec<IfName>,
}

/// How often the interfaces are checked again: a failed move is tried again (the interface
/// may appear later), and a moved one whose internal port lost its configuration gets it back
/// (a userspace ovs-vswitchd that restarts makes its internal ports' devices anew).
const RECHECK: Duration = Duration::from_secs(5);

/// Interfaces that could not be moved (or kept) on the bridge, by name, with why.
pub type MoveFailures = BTreeMap<String, String>;

/// Moves the ExternalNode's interfaces onto the bridge on a task of its own and keeps them
/// there (see [`RECHECK`]); a missing interface is reported (in the log and through the
/// returned receiver, which holds `None` until every interface has been tried once), and the
/// host is left as it is. First gives back the interfaces weir moved before that the
/// ExternalNode no longer names. The task ends with the runtime.
pub fn spawn(
    manager: std::sync::Arc<ovsdb::Manager>,
    bridge: String,
    datapath: ovsdb::DatapathType,
    state_dir: std::path::PathBuf,
    node: ExternalNode,
) -> tokio::sync::watch::Receiver<Option<MoveFailures>> {
    let (report, failures) = tokio::sync::watch::channel(None);
    tokio::spawn(async move {
        let Some(handle) = crate::netlink::connect(&format!("external node {}", node.name)) else { return };
        let userspace = datapath == ovsdb::DatapathType::Netdev;
        let place = Place { manager: &manager, bridge: &bridge, state_dir: &state_dir, external_node: &node.name, userspace };
        for old in saved::interfaces(&state_dir).into_iter().filter(|n| !node.interfaces.iter().any(|i| i.as_str() == n)) {
            match give_back(&handle, place, &old).await {
                Ok(_) => tracing::info!(interface = old, "host interface no longer in the external node: given back"),
                Err(e) => tracing::error!("{e}"),
            }
        }
        let mut failing: BTreeMap<IfName, String> = BTreeMap::new();
        // The internal port's device each interface was last configured on.
        let mut configured: BTreeMap<IfName, u32> = BTreeMap::new();
        loop {
            for iface in &node.interfaces {
                let started = Instant::now();
                match take_over(&handle, place, iface, configured.get(iface).copied()).await {
                    Ok(m) => {
                        failing.remove(iface);
                        if configured.insert(iface.clone(), m.internal_index) != Some(m.internal_index) {
                            let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
                            tracing::info!(interface = m.name, uplink = m.uplink, mac = %m.mac, ips = ?m.ips, elapsed_ms, "host interface on the bridge");
                        }
                    }
                    Err(e) => {
                        // Once per streak of the same error: it is tried again every few seconds.
                        if failing.insert(iface.clone(), e.what.clone()).as_ref() != Some(&e.what) {
                            tracing::error!(external_node = node.name, "{e}; trying again every {} s", RECHECK.as_secs());
                        }
                    }
                }
            }
            let now: MoveFailures = failing.iter().map(|(i, what)| (i.as_str().to_string(), what.clone())).collect();
            report.send_if_modified(|have| have.as_ref() != Some(&now) && { *have = Some(now); true });
            tokio::time::sleep(RECHECK).await;
        }
    });
    failures
}

/// `weir agent --restore`: gives every interface with saved state in `state_dir` back to the
/// host; returns their names. Stops at the first failure (the others keep their saved state).
pub async fn restore(manager: &ovsdb::Manager, bridge: &str, state_dir: &Path) -> Result<Vec<String>, Error> {
    let (conn, handle, _) =
        rtnetlink::new_connection().map_err(|e| Error { interface: "*".into(), what: format!("cannot open a netlink socket: {e}") })?;
    let conn = tokio::spawn(conn);
    let place = Place { manager, bridge, state_dir, external_node: "", userspace: false };
    let mut restored = vec![];
    for iface in saved::interfaces(state_dir) {
        let result = give_back(&handle, place, &iface).await;
        if let Err(e) = result {
            conn.abort();
            return Err(e);
        }
        restored.push(iface);
    }
    conn.abort();
    Ok(restored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interface_name_must_leave_room_for_the_uplinks() {
        assert_eq!(IfName::new("eth0").unwrap().uplink(), "eth0~");
        assert_eq!(IfName::new("enp0s31f6abcde").unwrap().uplink().len(), 15);
        for bad in ["", "enp0s31f6abcdef", "a/b", "eth0~", "eth 0", "..", "eth0:1"] {
            let e = IfName::new(bad).unwrap_err();
            assert_eq!(e.interface, bad, "{e}");
        }
    }

    #[test]
    fn macs_read_back_as_written() {
        let m = parse_mac("02:42:ac:11:00:02").unwrap();
        assert_eq!(m.to_string(), "02:42:ac:11:00:02");
        assert_eq!(parse_mac("02:42:ac:11:00"), None);
    }
}
