//! The bridge ports TrafficControls need: created through the OVSDB manager when a
//! TrafficControl applies to a local pod, shared by equal specs, and removed when no
//! TrafficControl uses them any more. Ports weir created carry `external_ids:weir-owner`.

use ovsdb::{ErspanDir, ErspanVersion, Flowable, PortKind, PortSpec, TunnelKind, TunnelSpec};
use pipeline::traffic_control::port_name;
use policy::Cluster;
use policy::traffic_control::TcPort;
use std::collections::{BTreeMap, BTreeSet};

/// `external_ids` key marking a port as created by weir for TrafficControl.
pub const OWNER_KEY: &str = "weir-owner";
/// Its value.
pub const OWNER: &str = "traffic-control";

/// The OVSDB port for a TrafficControl port.
pub fn port_spec(port: &TcPort) -> PortSpec {
    let kind = match port {
        TcPort::OvsInternal { .. } => PortKind::Internal,
        TcPort::Device { .. } => PortKind::System,
        TcPort::Vxlan { remote_ip, vni, dst_port } | TcPort::Geneve { remote_ip, vni, dst_port } => {
            let kind = if matches!(port, TcPort::Vxlan { .. }) { TunnelKind::Vxlan } else { TunnelKind::Geneve };
            let mut t = TunnelSpec::new(kind, Flowable::Fixed(*remote_ip));
            t.key = Some(Flowable::Fixed(*vni));
            t.dst_port = Some(*dst_port);
            PortKind::Tunnel(t)
        }
        TcPort::Gre { remote_ip, key } => {
            let mut t = TunnelSpec::new(TunnelKind::Gre, Flowable::Fixed(*remote_ip));
            t.key = key.map(Flowable::Fixed);
            PortKind::Tunnel(t)
        }
        TcPort::Erspan { remote_ip, session_id, version, index, dir, hardware_id } => {
            let kind = TunnelKind::Erspan {
                version: if *version == 1 { ErspanVersion::V1 } else { ErspanVersion::V2 },
                index: *index,
                dir: dir.map(|d| if d == 0 { ErspanDir::Ingress } else { ErspanDir::Egress }),
                hwid: *hardware_id,
            };
            let mut t = TunnelSpec::new(kind, Flowable::Fixed(*remote_ip));
            t.key = Some(Flowable::Fixed(*session_id));
            PortKind::Tunnel(t)
        }
    };
    let mut spec = PortSpec::new(&port_name(port), kind);
    spec.external_ids.insert(OWNER_KEY.into(), OWNER.into());
    spec
}

/// One port to ensure, and who needs it (TrafficControl name and field, for errors).
#[derive(Debug, Clone)]
pub struct WantedPort {
    /// The port.
    pub port: TcPort,
    /// `(TrafficControl, field)` of every use.
    pub users: Vec<(String, &'static str)>,
}

/// The ports the TrafficControls applying to local pods need, by port name.
pub fn wanted_ports(cluster: &Cluster, local: &BTreeSet<policy::PodKey>) -> BTreeMap<String, WantedPort> {
    let mut wanted: BTreeMap<String, WantedPort> = BTreeMap::new();
    for tc in cluster.traffic_controls.values() {
        if !tc.selected(cluster).any(|p| local.contains(p)) {
            continue;
        }
        let roles = [(Some(&tc.target), "spec.targetPort"), (tc.return_port.as_ref(), "spec.returnPort")];
        for (port, field) in roles {
            let Some(port) = port else { continue };
            wanted
                .entry(port_name(port))
                .or_insert_with(|| WantedPort { port: port.clone(), users: Vec::new() })
                .users
                .push((tc.name.clone(), field));
        }
    }
    wanted
}

/// How long to wait for ovs-vswitchd to give a new port its OpenFlow number.
const OFPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What a reconciliation did.
#[derive(Debug, Default)]
pub struct Reconciled {
    /// Errors per TrafficControl, each naming the field whose port failed.
    pub errors: BTreeMap<String, Vec<String>>,
    /// The OpenFlow port of every wanted port, waited for, so the flows that use a new port
    /// are installed in the same realization (and the sync token means "realized").
    pub ofports: BTreeMap<String, u32>,
}

/// Ensures the wanted ports and removes weir's TrafficControl ports nobody wants.
pub async fn reconcile(
    manager: &ovsdb::Manager,
    bridge: &str,
    wanted: &BTreeMap<String, WantedPort>,
    interfaces: &BTreeMap<String, ovsdb::tables::Interface>,
) -> Reconciled {
    let mut out = Reconciled::default();
    let errors = &mut out.errors;
    for (name, w) in wanted {
        let spec = port_spec(&w.port);
        let result = manager.ensure_port(bridge, &spec).await;
        match result {
            Ok(outcome) => {
                let down = interfaces.get(name).is_none_or(|i| i.link_state.as_deref() != Some("up"));
                let bring_up = matches!(w.port, TcPort::OvsInternal { .. }) && (outcome == ovsdb::Outcome::Created || down);
                match manager.wait_ofport(name, OFPORT_TIMEOUT).await {
                    Ok(p) => {
                        // An internal port's device starts down; captures and mirrors need it
                        // up. It exists once the port has its ofport.
                        if bring_up && let Err(e) = set_link_up(name).await {
                            tracing::warn!("TrafficControl port {name}: {e}");
                        }
                        out.ofports.insert(name.clone(), p);
                    }
                    Err(e) => {
                        for (tc, field) in &w.users {
                            errors.entry(tc.clone()).or_default().push(format!("{field}: port {name}: {e}"));
                        }
                    }
                }
            }
            Err(e) => {
                for (tc, field) in &w.users {
                    errors.entry(tc.clone()).or_default().push(format!("{field}: port {name}: {e}"));
                }
            }
        }
    }
    for (name, iface) in interfaces {
        let ours = iface.external_ids.get(OWNER_KEY).is_some_and(|v| v == OWNER);
        if ours
            && !wanted.contains_key(name)
            && let Err(e) = manager.delete_port(bridge, name).await
        {
            tracing::warn!("removing TrafficControl port {name}: {e}");
        }
    }
    out
}

/// Brings the link `name` up through rtnetlink.
async fn set_link_up(name: &str) -> Result<(), String> {
    let handle = crate::netlink::connect("TrafficControl ports").ok_or("no netlink socket")?;
    let up = rtnetlink::LinkUnspec::new_with_name(name).up().build();
    handle.link().set(up).execute().await.map_err(|e| format!("bring {name} up: {e}"))
}
