//! CHECK: the attachment is still as ADD made it: the address reservation, the port on the
//! bridge with the contract and an OpenFlow port, the host end up, and in the pod the
//! interface with the address of `prevResult`, the MTU, the MAC and the default route.
use crate::commands::store;
use crate::config::NetConf;
use crate::link::{self, VethNames};
use crate::port::Ovs;
use crate::protocol::{CniError, Code, Env};
use ipnetwork::Ipv4Network;
use ovsdb::cni::IP_ADDRESS;
use rtnetlink::packet_route::link::LinkFlags;

fn broken(what: impl std::fmt::Display) -> CniError {
    CniError::new(Code::Interface, "attachment not as ADD made it", what.to_string())
}

/// The address `prevResult` recorded for the pod's interface.
fn expected_address(conf: &NetConf) -> Result<Ipv4Network, CniError> {
    let invalid = |why: String| CniError::new(Code::InvalidConfig, "invalid network configuration", why);
    let prev =
        conf.prev_result.as_ref().ok_or_else(|| invalid("prevResult: missing (CHECK needs the ADD result)".into()))?;
    let text = prev
        .pointer("/ips/0/address")
        .and_then(|v| v.as_str())
        .ok_or_else(|| invalid("prevResult.ips[0].address: missing".into()))?;
    text.parse().map_err(|e| invalid(format!("prevResult.ips[0].address: {text:?}: {e}")))
}

/// Runs CHECK.
pub async fn check(env: &Env, conf: &NetConf) -> Result<(), CniError> {
    let attachment = env.attachment()?;
    let netns = env.netns()?;
    let want = expected_address(conf)?;
    let alloc = store(conf).lock()?.find(&attachment)?;
    match alloc {
        None => return Err(broken(format!("no address is reserved for {attachment}"))),
        Some(a) if a.address() != want.ip() => {
            return Err(broken(format!("{attachment} holds {}, prevResult says {}", a.address(), want.ip())));
        }
        Some(a) if a.pending.is_some() => return Err(broken(format!("the ADD of {attachment} has not finished"))),
        Some(_) => {}
    }
    let names = VethNames::of(&attachment);
    let ovs = Ovs::connect(conf).await?;
    let port =
        ovs.cni_port(&names.host).ok_or_else(|| broken(format!("port {} is not on {}", names.host, conf.bridge)))?;
    if port.attachment.as_ref() != Some(&attachment)
        || port.external_ids.get(IP_ADDRESS) != Some(&want.ip().to_string())
    {
        return Err(broken(format!("port {} has external_ids {:?}", names.host, port.external_ids)));
    }
    if port.ofport.is_none_or(|p| p <= 0) {
        return Err(broken(format!("port {} has no OpenFlow port (ofport {:?})", names.host, port.ofport)));
    }
    let host = link::connect()?;
    let host_link =
        link::link(&host, &names.host).await?.ok_or_else(|| broken(format!("link {} is gone", names.host)))?;
    if !host_link.header.flags.contains(LinkFlags::Up) {
        return Err(broken(format!("link {} is down", names.host)));
    }
    let ifname = attachment.ifname.as_str().to_string();
    let state = link::in_netns(&netns, async move |h| link::inspect_pod(h, &ifname).await)?
        .ok_or_else(|| broken(format!("{} does not exist in {}", attachment.ifname.as_str(), netns.display())))?;
    let problems = [
        (!state.up).then(|| "is down".to_string()),
        (!state.addresses.contains(&(want.ip(), want.prefix())))
            .then(|| format!("lacks {want} (has {:?})", state.addresses)),
        (state.mtu != conf.mtu).then(|| format!("has MTU {} instead of {}", state.mtu, conf.mtu)),
        (state.mac != link::mac_for(want.ip())).then(|| format!("has MAC {}", link::mac_text(&state.mac))),
        (state.default_gateway != Some(conf.pool.gateway))
            .then(|| format!("has default gateway {:?} instead of {}", state.default_gateway, conf.pool.gateway)),
    ];
    let problems: Vec<String> = problems.into_iter().flatten().collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(broken(format!("{} in {}: {}", attachment.ifname.as_str(), netns.display(), problems.join("; "))))
    }
}
