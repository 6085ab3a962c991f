//! ADD: an address from the pool, the veth pair, the pod's interface, then the port on the
//! bridge with the contract, in that order, so the port (what weir forwards to) exists only
//! once the pod's side is ready. A failure undoes what was done; a crash (the process killed
//! midway) leaves a *pending* allocation that the next ADD, DEL or GC cleans up.
use crate::commands::{clean_crashed, store};
use crate::config::NetConf;
use crate::ipam::Owner;
use crate::link::{self, PodIface, VethNames};
use crate::port::Ovs;
use crate::protocol::{Attachment, CniError, Code, Env, PodRef};
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::path::Path;

/// Environment variable naming a step at which ADD stops and waits to be killed: `allocated`,
/// `veth` or `attached`. Only for the crash tests (`crates/cni/tests`); unset, it costs one
/// lookup.
pub const STALL_VAR: &str = "WEIR_CNI_STALL_AT";

fn stall(step: &str) {
    if std::env::var(STALL_VAR).is_ok_and(|s| s == step) {
        eprintln!("weir-cni: stalled at {step}");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// Runs ADD and returns the result object.
pub async fn add(env: &Env, conf: &NetConf) -> Result<Value, CniError> {
    let attachment = env.attachment()?;
    let netns = env.netns()?;
    let pod = env.pod()?;
    let ovs = Ovs::connect(conf).await?;
    ovs.require_bridge(Code::TryAgainLater)?;
    let host = link::connect()?;
    let store = store(conf);
    let ip = {
        let locked = store.lock()?;
        clean_crashed(&locked, &ovs, &host).await?;
        let ifname = attachment.ifname.as_str().to_string();
        let exists = link::in_netns(&netns, async move |h| Ok(link::link(&h, &ifname).await?.is_some()))?;
        if exists && locked.find(&attachment)?.is_none() {
            return Err(CniError::new(
                Code::Interface,
                "interface exists",
                format!("CNI_IFNAME: {} already exists in {}", attachment.ifname.as_str(), netns.display()),
            ));
        }
        locked.allocate(&attachment, Owner::me(), env.requested_ip()?)?
    };
    stall("allocated");
    let names = VethNames::of(&attachment);
    let host_mac = match wire(conf, &ovs, &host, &attachment, &pod, &netns, ip).await {
        Ok(mac) => mac,
        Err(e) => {
            undo(&ovs, &host, &attachment, &store, ip).await;
            return Err(e);
        }
    };
    stall("attached");
    store.lock()?.complete(ip, &attachment)?;
    Ok(result(conf, &names.host, &host_mac, &attachment, &netns, ip))
}

/// The veth, the pod's interface and the port; returns the host end's MAC.
async fn wire(
    conf: &NetConf,
    ovs: &Ovs,
    host: &rtnetlink::Handle,
    attachment: &Attachment,
    pod: &PodRef,
    netns: &Path,
    ip: Ipv4Addr,
) -> Result<String, CniError> {
    let names = VethNames::of(attachment);
    link::create_veth(host, &names, netns, conf.mtu).await?;
    stall("veth");
    let iface = PodIface {
        name: attachment.ifname.as_str().to_string(),
        ip,
        prefix: conf.pool.subnet.prefix(),
        gateway: conf.pool.gateway,
        mtu: conf.mtu,
        tx_checksum_offload: conf.tx_checksum_offload,
    };
    let peer = names.peer.clone();
    link::in_netns(netns, async move |h| link::configure_pod(h, &peer, &iface).await)?;
    let pod_mac = link::mac_text(&link::mac_for(ip));
    ovs.attach(&names.host, attachment, pod, ip, &pod_mac).await?;
    let host_link = link::link(host, &names.host).await?;
    let mac = host_link
        .iter()
        .flat_map(|l| &l.attributes)
        .find_map(|a| match a {
            rtnetlink::packet_route::link::LinkAttribute::Address(m) => Some(link::mac_text(m)),
            _ => None,
        })
        .unwrap_or_default();
    Ok(mac)
}

/// Best-effort undo of a failed ADD; what it cannot undo stays pending for the next cleanup.
async fn undo(ovs: &Ovs, host: &rtnetlink::Handle, attachment: &Attachment, store: &crate::ipam::Store, ip: Ipv4Addr) {
    match crate::commands::teardown(ovs, host, attachment).await {
        Ok(()) => {
            if let Err(e) = store.lock().and_then(|l| l.release(ip)) {
                eprintln!("weir-cni: releasing {ip} after a failed ADD: {e}");
            }
        }
        Err(e) => eprintln!("weir-cni: undoing a failed ADD of {attachment}: {e}"),
    }
}

/// The spec's ADD result: the host end and the pod's interface, the address, the route.
fn result(conf: &NetConf, host_name: &str, host_mac: &str, att: &Attachment, netns: &Path, ip: Ipv4Addr) -> Value {
    let mut host_if = json!({ "name": host_name, "mac": host_mac });
    let mut pod_if = json!({
        "name": att.ifname.as_str(),
        "mac": link::mac_text(&link::mac_for(ip)),
        "sandbox": netns.display().to_string(),
    });
    if conf.cni_version != "1.0.0" {
        // `mtu` in interfaces is new in 1.1.0.
        host_if["mtu"] = json!(conf.mtu);
        pod_if["mtu"] = json!(conf.mtu);
    }
    let gw = conf.pool.gateway.to_string();
    json!({
        "cniVersion": conf.cni_version,
        "interfaces": [host_if, pod_if],
        "ips": [{ "address": format!("{ip}/{}", conf.pool.subnet.prefix()), "gateway": gw, "interface": 1 }],
        "routes": [{ "dst": "0.0.0.0/0", "gw": gw }],
        "dns": {},
    })
}
