//! Node policy in nftables: the rules that apply to this host (a Kubernetes Node, an
//! ExternalNode's interfaces) realized in one table of weir's own, `table inet weir-node`, for
//! hosts whose uplink stays off the bridge (the realization Antrea's node policy chose with
//! iptables and ipset, here with nftables sets, verdict maps and one transaction per change).
//!
//! - [`plan`]: per endpoint of the host, which rules apply (`RuleSet::host_concrete`), their
//!   peers as address ranges, the endpoint's addresses (`Cluster::endpoint_ips`).
//! - [`ruleset`]: the plan as the table (one chain per tier, a named counter per rule).
//! - [`NodeFirewall`]: replaces the table in one `nft -j` transaction when the plan changed,
//!   sends nothing when it did not; a table nftables refuses closes a direction (everything but
//!   the bypass list and established connections is dropped); [`counters`] reads the counters.
//! - [`Bypass`]: connections never cut (Antrea's `policyBypassRules`, the agent's
//!   `--policy-bypass DIRECTION:PROTOCOL:CIDR:PORT`, shared with the OVS realization), loopback
//!   always.
pub mod addresses;
pub mod plan;
pub mod ruleset;

/// Connections never cut: the agent's `--policy-bypass` entries, as the OVS realization reads them.
pub use pipeline::host_interface::Bypass;
pub use plan::{DirectionPlan, EndpointPlan, Host, Plan};
pub use ruleset::{TABLE, counter_name, layer_counter};

use policy::netpol::Direction;
use std::collections::BTreeMap;

/// What one counter counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// What [`NodeFirewall::apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The plan equals the one in place: nothing was sent.
    Unchanged,
    /// The table was replaced (one transaction).
    Replaced,
}

/// The host's firewall as this process last wrote it.
#[derive(Debug, Default)]
pub struct NodeFirewall {
    /// The last transaction applied, as sent.
    applied: Option<String>,
}

impl NodeFirewall {
    /// A firewall that has written nothing yet (the first apply replaces whatever table a
    /// previous run left).
    pub fn new() -> NodeFirewall {
        NodeFirewall::default()
    }

    /// Realizes `plan`. If nftables refuses the table, the direction it cannot take is closed
    /// (bypass list and established connections still pass) and the error is returned.
    pub async fn apply(&mut self, plan: &Plan) -> Result<Applied, String> {
        match self.send(plan).await {
            Ok(applied) => Ok(applied),
            Err(why) => Err(self.close(plan, why).await),
        }
    }

    async fn send(&mut self, plan: &Plan) -> Result<Applied, String> {
        let rs = ruleset::ruleset(plan);
        let text = serde_json::to_string(&rs).map_err(|e| e.to_string())?;
        if self.applied.as_deref() == Some(text.as_str()) {
            return Ok(Applied::Unchanged);
        }
        nftables::helper::apply_ruleset_async(&rs).await.map_err(|e| e.to_string())?;
        self.applied = Some(text);
        Ok(Applied::Replaced)
    }

    /// After nftables refused `plan`: nft does not say which rule, so close ingress, else
    /// egress, else both, keeping the other direction's policy when that is accepted.
    async fn close(&mut self, plan: &Plan, why: String) -> String {
        let refused = format!("nft refused table inet {TABLE}: {why}");
        for closed in [&[Direction::Ingress][..], &[Direction::Egress], &[Direction::Ingress, Direction::Egress]] {
            if self.send(&plan.closing(closed, &refused)).await.is_ok() {
                let names: Vec<&str> = closed.iter().map(|d| d.lower()).collect();
                return format!("{refused}; {} closed but for the bypass list", names.join(" and "));
            }
        }
        self.applied = None;
        format!("{refused}; closing the host failed too")
    }

    /// Removes the table (the host is open again).
    pub async fn remove(&mut self) -> Result<(), String> {
        self.applied = None;
        nftables::helper::apply_ruleset_async(&ruleset::removal()).await.map_err(|e| format!("nft: removing table inet {TABLE}: {e}"))
    }
}

/// Which host a firewall protects, as the cluster view names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThisHost<'a> {
    /// A Kubernetes node: its Node. The tunnel to and from every other node (UDP
    /// `tunnel_port`) is never cut: pods' traffic between nodes rides it, and pod policy
    /// already judges that.
    Node {
        /// The Node's name.
        name: &'a str,
        /// The tunnel's UDP port.
        tunnel_port: u16,
    },
    /// The host of the ExternalNode of this name (a VM or bare-metal host whose interfaces
    /// stay off the bridge): each of its ExternalEntities, one per interface.
    ExternalNode(&'a str),
}

impl ThisHost<'_> {
    /// Its endpoints in `cluster` (none while the cluster view lacks its object).
    pub fn endpoints(&self, cluster: &policy::Cluster) -> Vec<policy::Endpoint> {
        match *self {
            ThisHost::Node { name, .. } => vec![policy::Endpoint::Node(name.to_string())],
            ThisHost::ExternalNode(name) => cluster
                .external_nodes
                .values()
                .filter(|en| en.name == name)
                .flat_map(|en| en.entities())
                .map(|e| policy::Endpoint::ExternalEntity(e.key))
                .collect(),
        }
    }

    /// What no policy on it may cut besides the configured bypass list.
    fn never_cut(&self, cluster: &policy::Cluster) -> Vec<Bypass> {
        let ThisHost::Node { name, tunnel_port } = *self else { return Vec::new() };
        let others = cluster.nodes.values().filter(|n| n.name != name).flat_map(|n| n.ipv4_internal_ips());
        others
            .flat_map(|ip| {
                let peer = ipnetwork::IpNetwork::from(std::net::IpAddr::V4(ip));
                [Direction::Ingress, Direction::Egress]
                    .map(|direction| Bypass { direction, protocol: policy::Protocol::Udp, peer, port: tunnel_port })
            })
            .collect()
    }
}

/// The plan of `host`'s firewall: the rules applied to its endpoints, with `bypass` and what
/// the kind of host never cuts ([`ThisHost`]).
pub fn plan_for(cluster: &policy::Cluster, host: ThisHost<'_>, bypass: &[Bypass]) -> Plan {
    let endpoints = host.endpoints(cluster);
    let host = Host { endpoints, bypass: bypass.iter().cloned().chain(host.never_cut(cluster)).collect() };
    Plan::new(&host, &cluster.host_rule_set(), cluster)
}

/// How long to wait before sending a plan again after nftables refused it (the direction it
/// could not take stays closed meanwhile).
pub(crate) const RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// Keeps the host's firewall equal to the latest plan sent, on a task of its own (so `nft`
/// never holds the realization loop).
pub fn spawn() -> tokio::sync::watch::Sender<Option<Plan>> {
    let (tx, mut rx) = tokio::sync::watch::channel::<Option<Plan>>(None);
    tokio::spawn(async move {
        let mut firewall = NodeFirewall::new();
        loop {
            let want = rx.borrow_and_update().clone();
            if let Some(plan) = want {
                match firewall.apply(&plan).await {
                    Ok(Applied::Replaced) => tracing::info!(endpoints = plan.endpoints.len(), "node firewall: table inet {TABLE} replaced"),
                    Ok(Applied::Unchanged) => {}
                    Err(e) => {
                        tracing::warn!("node firewall: {e}; trying again in {} s", RETRY.as_secs());
                        tokio::time::sleep(RETRY).await;
                        rx.mark_changed();
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

/// Every counter of the table by name (rule ids, see [`counter_name`], and the layers').
pub async fn counters() -> Result<BTreeMap<String, Count>, String> {
    let raw = nftables::helper::get_current_ruleset_raw_async(None::<&str>, ["list", "counters", "table", "inet", TABLE])
        .await
        .map_err(|e| format!("nft: listing the counters of table inet {TABLE}: {e}"))?;
    parse_counters(&raw)
}

/// Counters from `nft -j list counters` (read as JSON values: the crate's counter type holds
/// 32 bits, a busy host's byte count does not fit).
fn parse_counters(raw: &str) -> Result<BTreeMap<String, Count>, String> {
    let v: serde_json::Value = serde_json::from_str(raw).map_err(|e| format!("nft -j list counters: {e}"))?;
    let items = v["nftables"].as_array().ok_or("nft -j list counters: no \"nftables\" array")?;
    Ok(items
        .iter()
        .filter_map(|i| i.get("counter"))
        .filter(|c| c["table"] == TABLE)
        .filter_map(|c| {
            let count = Count { packets: c["packets"].as_u64()?, bytes: c["bytes"].as_u64()? };
            Some((c["name"].as_str()?.to_string(), count))
        })
        .collect())
}

#[cfg(test)]
mod tests;
