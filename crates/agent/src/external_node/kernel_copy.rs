//! The kernel's copy of a moved NIC's packets, on the userspace datapath.
//!
//! There ovs-vswitchd reads the uplink (`IF~`) through a packet socket, which leaves the kernel
//! its own copy of every packet: the host's stack would take what arrives twice, once through
//! the bridge and its policy and once around them (a UDP datagram the policy drops would still
//! reach a socket on the host). An ingress hook on the uplink drops the kernel's copy: packet
//! sockets see a packet before the hook. Never on the kernel datapath, where OVS takes the NIC's
//! packets after the hook: it would drop them all.
use nftables::batch::Batch;
use nftables::schema::{Chain, NfListObject, Table};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

/// weir's table of uplink hooks: `table netdev weir-uplinks`, one chain per uplink.
pub const TABLE: &str = "weir-uplinks";

fn table() -> Table<'static> {
    Table { family: NfFamily::NetDev, name: TABLE.into(), handle: None }
}

/// The chain of `uplink` (`eth0~` → `eth0_`: nft names take no `~`).
fn chain(uplink: &str) -> Chain<'static> {
    Chain { family: NfFamily::NetDev, table: TABLE.into(), name: uplink.replace('~', "_").into(), ..Chain::default() }
}

/// Drops what the kernel receives on `uplink` (adding what exists already changes nothing).
pub async fn drop_on(uplink: &str) -> Result<(), String> {
    let mut batch = Batch::new();
    batch.add(NfListObject::Table(table()));
    batch.add(NfListObject::Chain(Chain {
        _type: Some(NfChainType::Filter),
        hook: Some(NfHook::Ingress),
        prio: Some(0),
        dev: Some(uplink.to_string().into()),
        policy: Some(NfChainPolicy::Drop),
        ..chain(uplink)
    }));
    let ruleset = batch.to_nftables();
    nftables::helper::apply_ruleset_async(&ruleset).await.map_err(|e| format!("nft: dropping the kernel's copy of {uplink}'s packets: {e}"))
}

/// Gives the kernel `uplink`'s packets back (before the NIC is given back to the host).
pub async fn keep_on(uplink: &str) -> Result<(), String> {
    let mut batch = Batch::new();
    // Added first, so the delete finds it whether or not it was there.
    batch.add(NfListObject::Table(table()));
    batch.add(NfListObject::Chain(chain(uplink)));
    batch.delete(NfListObject::Chain(chain(uplink)));
    let ruleset = batch.to_nftables();
    nftables::helper::apply_ruleset_async(&ruleset).await.map_err(|e| format!("nft: removing the ingress hook of {uplink}: {e}"))
}
