//! The host gateway (`weir-gw0`, [`ovsdb::cni::GATEWAY_PORT`]): an OVS internal port on the
//! integration bridge that joins the node's own network stack to its pods.
//!
//! The agent owns it (with `--host-gateway`): it adds the port through OVSDB as it sets up the
//! bridge ([`port_spec`]), and once the cluster view names this node's pod CIDR it configures
//! the device through rtnetlink ([`HostNetwork::apply`]): the gateway MAC the pipeline answers
//! pods' ARP with, the pod gateway address, a route through it to every pod CIDR, this node's
//! and the others' (the host reaches its pods, and remote pods and Services DNATed to them
//! through the tunnel), with the node's address as source, IPv4 forwarding on, and the
//! masquerade of what pods send out of the cluster ([`crate::masquerade`]).
//!
//! Why the agent and not `weir-cni`: the device needs the pod CIDR's gateway and the other
//! nodes' pod CIDRs, which the agent learns from the cluster view and keeps current (nodes
//! join and leave); the plugin sees one pod at a time and runs only when pods come and go.
use crate::masquerade::Masquerade;
use futures::TryStreamExt;
use ipnetwork::Ipv4Network;
use ovsdb::cni::GATEWAY_PORT;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::route::{RouteAttribute, RouteProtocol, RouteScope};
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tracing::{info, warn};

/// The routing protocol number weir's routes carry, so it removes only its own.
const ROUTE_PROTOCOL: u8 = 0xb7;

/// How long to wait before configuring again after a failure (the device may not exist yet:
/// ovs-vswitchd creates it after the OVSDB transaction).
const RETRY: Duration = Duration::from_secs(1);

/// The gateway port as weir wants it in OVSDB.
pub fn port_spec(mtu: u32) -> ovsdb::PortSpec {
    let mut spec = ovsdb::PortSpec::new(GATEWAY_PORT, ovsdb::PortKind::Internal);
    spec.mtu = Some(mtu);
    spec
}

/// What the host side should look like, from the cluster view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostNetwork {
    /// This node's pod CIDR (its first address is the gateway).
    pub pod_cidr: Ipv4Network,
    /// The other nodes' pod CIDRs, routed through the gateway.
    pub remote_cidrs: Vec<Ipv4Network>,
    /// This node's address (its first IPv4 InternalIP): the source of what the host sends to
    /// pods, so a pod's connection to the node's address is answered from that address (a
    /// UDP server bound to the wildcard address answers from the route's source).
    pub node_ip: Option<Ipv4Addr>,
    /// Every ExternalEntity's IPv4 address: hosts of the policy domain, which must see pods'
    /// own addresses (not masqueraded, see [`crate::masquerade`]).
    pub policy_hosts: Vec<Ipv4Addr>,
}

impl HostNetwork {
    /// The host network of `node` in `cluster`; `None` while the node or its IPv4 pod CIDR is
    /// unknown.
    pub fn of(cluster: &policy::Cluster, node: &str) -> Option<HostNetwork> {
        let this = cluster.nodes.get(node)?;
        let pod_cidr = this.ipv4_pod_cidrs().next()?;
        let mut remote_cidrs: Vec<Ipv4Network> =
            pipeline::compile::remote_nodes(cluster, node).into_iter().flat_map(|n| n.pod_cidrs).collect();
        remote_cidrs.sort();
        remote_cidrs.dedup();
        let node_ip = this.ipv4_internal_ips().next();
        let mut policy_hosts: Vec<Ipv4Addr> = cluster
            .external_entities
            .values()
            .flat_map(|e| &e.ips)
            .filter_map(|ip| match ip {
                IpAddr::V4(v4) => Some(*v4),
                IpAddr::V6(_) => None,
            })
            .collect();
        policy_hosts.sort();
        policy_hosts.dedup();
        Some(HostNetwork { pod_cidr, remote_cidrs, node_ip, policy_hosts })
    }

    /// The pod gateway address.
    pub fn gateway(&self) -> Ipv4Addr {
        ovsdb::cni::pod_gateway(self.pod_cidr.network())
    }

    /// Every pod CIDR of the cluster: what is not masqueraded.
    pub fn cluster_cidrs(&self) -> Vec<Ipv4Network> {
        let mut all = self.remote_cidrs.clone();
        all.push(self.pod_cidr);
        all.sort();
        all
    }

    /// Brings the device, its address and routes, forwarding and the masquerade to this.
    pub async fn apply(&self, handle: &Handle, mtu: u32) -> Result<(), String> {
        let index = link_index(handle).await?;
        let mac = pipeline::Topology::gateway_mac_for(self.gateway()).0.to_vec();
        handle
            .link()
            .set(LinkUnspec::new_with_index(index).address(mac).mtu(mtu).up().build())
            .execute()
            .await
            .map_err(|e| format!("set the MAC, MTU and up state of {GATEWAY_PORT}: {e}"))?;
        self.set_address(handle, index).await?;
        self.set_routes(handle, index).await?;
        forwarding_on()?;
        Masquerade { pod_cidr: self.pod_cidr, cluster_cidrs: self.cluster_cidrs(), policy_hosts: self.policy_hosts.clone() }.apply().await
    }

    /// The gateway address alone (a /32: the route to the pod CIDR is weir's, with the node's
    /// address as source), and no other IPv4 address.
    async fn set_address(&self, handle: &Handle, index: u32) -> Result<(), String> {
        let (gw, prefix) = (self.gateway(), 32);
        let mut existing = handle.address().get().set_link_index_filter(index).execute();
        let mut stale = vec![];
        while let Some(msg) = existing.try_next().await.map_err(|e| format!("list the addresses of {GATEWAY_PORT}: {e}"))? {
            let ip = msg.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(IpAddr::V4(ip)) => Some(*ip),
                _ => None,
            });
            if ip.is_some_and(|ip| ip != gw || msg.header.prefix_len != prefix) {
                stale.push(msg);
            }
        }
        for msg in stale {
            handle.address().del(msg).execute().await.map_err(|e| format!("remove a stale address of {GATEWAY_PORT}: {e}"))?;
        }
        handle
            .address()
            .add(index, IpAddr::V4(gw), prefix)
            .replace()
            .execute()
            .await
            .map_err(|e| format!("add {gw}/{prefix} to {GATEWAY_PORT}: {e}"))
    }

    /// A link-scope route through the gateway to every pod CIDR (the ARP responder answers
    /// for every address behind it), from the node's address; weir's routes to CIDRs no
    /// longer there go.
    async fn set_routes(&self, handle: &Handle, index: u32) -> Result<(), String> {
        let routed = self.cluster_cidrs();
        let mut existing = handle.route().get(RouteMessageBuilder::<Ipv4Addr>::new().build()).execute();
        let mut stale = vec![];
        while let Some(r) = existing.try_next().await.map_err(|e| format!("list routes: {e}"))? {
            let ours = r.header.protocol == RouteProtocol::Other(ROUTE_PROTOCOL)
                && r.attributes.iter().any(|a| matches!(a, RouteAttribute::Oif(i) if *i == index));
            let dst = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(rtnetlink::packet_route::route::RouteAddress::Inet(d)) => Some(*d),
                _ => None,
            });
            let wanted = dst.and_then(|d| Ipv4Network::new(d, r.header.destination_prefix_length).ok());
            if ours && !wanted.is_some_and(|w| routed.contains(&w)) {
                stale.push(r);
            }
        }
        for r in stale {
            handle.route().del(r).execute().await.map_err(|e| format!("remove a stale route: {e}"))?;
        }
        for cidr in &routed {
            let mut route = RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(cidr.network(), cidr.prefix())
                .output_interface(index)
                .scope(RouteScope::Link)
                .protocol(RouteProtocol::Other(ROUTE_PROTOCOL));
            if let Some(src) = self.node_ip {
                route = route.pref_source(src);
            }
            let route = route.build();
            handle.route().add(route).replace().execute().await.map_err(|e| format!("route {cidr} via {GATEWAY_PORT}: {e}"))?;
        }
        Ok(())
    }
}

/// IPv4 forwarding on in this namespace. Read first: in a container `/proc/sys` is read-only,
/// and a kubeadm node has it on already (its preflight checks demand it).
fn forwarding_on() -> Result<(), String> {
    const PATH: &str = "/proc/sys/net/ipv4/ip_forward";
    if std::fs::read_to_string(PATH).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    std::fs::write(PATH, "1").map_err(|e| format!("turn IPv4 forwarding on ({PATH}): {e}"))
}

async fn link_index(handle: &Handle) -> Result<u32, String> {
    let found = handle.link().get().match_name(GATEWAY_PORT.to_string()).execute().try_next().await;
    match found {
        Ok(Some(l)) => Ok(l.header.index),
        Ok(None) | Err(_) => Err(format!("{GATEWAY_PORT} does not exist (yet): ovs-vswitchd creates it")),
    }
}

/// Keeps the host network equal to the last [`HostNetwork`] sent on the returned channel, on
/// a task of its own (netlink and `nft` must not hold the agent's loop); retries failures.
pub fn spawn(mtu: u32) -> tokio::sync::watch::Sender<Option<HostNetwork>> {
    let (tx, mut rx) = tokio::sync::watch::channel::<Option<HostNetwork>>(None);
    tokio::spawn(async move {
        let Some(handle) = crate::netlink::connect("host gateway") else { return };
        let mut applied: Option<HostNetwork> = None;
        loop {
            let want = rx.borrow_and_update().clone();
            if let Some(want) = want.filter(|w| applied.as_ref() != Some(w)) {
                match want.apply(&handle, mtu).await {
                    Ok(()) => {
                        info!(gateway = %want.gateway(), pod_cidr = %want.pod_cidr, remote = want.remote_cidrs.len(), "host gateway configured");
                        applied = Some(want);
                    }
                    Err(e) => {
                        warn!("host gateway: {e}; retrying");
                        tokio::time::sleep(RETRY).await;
                        continue;
                    }
                }
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    });
    tx
}
