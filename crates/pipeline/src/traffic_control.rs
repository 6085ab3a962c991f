//! TrafficControl flows: mirror and redirect, after policy, before output.
//!
//! A packet meets the TrafficControl of its source pod (TrafficControlEgress, by `in_port`)
//! and then that of its destination pod (TrafficControlIngress, by the output port in reg1).
//! A Mirror outputs a copy to its target at that point; a Redirect outputs the packet to its
//! target and ends the pass (so an egress redirect also hides the packet from the destination's
//! TrafficControl). A packet coming back through a return port re-enters at L3Forwarding
//! marked `RETURNED` and `ESTABLISHED`: ingress policy already passed it, and it is delivered
//! without being mirrored or redirected again — no loops.

use crate::cookie::Category;
use crate::reg::{ESTABLISHED, FROM_POD, RETURNED, SOURCE};
use crate::table::Table;
use crate::topology::Topology;
use openflow::{Action, Flow, Match, PortNo};
use policy::traffic_control::{PodTrafficControl, TcPort, TrafficControlPlan};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The bridge port a TrafficControl port is realized as. Internal ports and devices keep their
/// name; tunnels are named from a hash of their spec, so equal specs share one port.
pub fn port_name(port: &TcPort) -> String {
    let kind = match port {
        TcPort::OvsInternal { name } | TcPort::Device { name } => return name.clone(),
        TcPort::Vxlan { .. } => "vxl",
        TcPort::Geneve { .. } => "gnv",
        TcPort::Gre { .. } => "gre",
        TcPort::Erspan { .. } => "ers",
    };
    let spec = format!("{port:?}");
    let hash = spec.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("weir-{kind}-{:06x}", hash & 0xff_ffff)
}

/// How one TrafficControl fared on this node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TcStatus {
    /// Local pods it applies to.
    pub pods: BTreeSet<String>,
    /// The bridge ports it uses.
    pub ports: BTreeSet<String>,
    /// Why it is not (fully) realized: missing ports, conflicts.
    pub errors: Vec<String>,
}

impl TcStatus {
    /// Realized when nothing is missing or conflicting.
    pub fn realized(&self) -> bool {
        self.errors.is_empty()
    }
}

/// The TrafficControl flows of this node and the status of each TrafficControl.
pub fn traffic_control_flows(plan: &TrafficControlPlan, topo: &Topology) -> (Vec<Flow>, BTreeMap<String, TcStatus>) {
    let cat = Category::TrafficControl;
    let mut status: BTreeMap<String, TcStatus> = BTreeMap::new();
    for (name, conflicts) in &plan.conflicts {
        status.entry(name.clone()).or_default().errors.extend(conflicts.iter().cloned());
    }
    let mut flows = Vec::new();
    let mut return_ports = BTreeSet::new();
    // The ofport of a TrafficControl port, noting it (or its absence) in the status.
    let port = |tc: &str, p: &TcPort, status: &mut BTreeMap<String, TcStatus>| -> Option<u32> {
        let name = port_name(p);
        let st = status.entry(tc.to_string()).or_default();
        st.ports.insert(name.clone());
        let ofport = topo.ports.get(&name).copied();
        if ofport.is_none() {
            st.errors.push(format!("port {name} is not on the bridge yet"));
        }
        ofport
    };
    for (key, pod_tc) in &plan.pods {
        let Some(local) = topo.local_pods.get(key) else { continue };
        let PodTrafficControl { egress_mirrors, ingress_mirrors, egress_redirect, ingress_redirect } = pod_tc;
        let names = egress_mirrors.iter().chain(ingress_mirrors).map(|(_, n)| n).chain(
            egress_redirect.iter().chain(ingress_redirect).map(|(_, _, n)| n),
        );
        for n in names {
            status.entry(n.clone()).or_default().pods.insert(key.to_string());
        }
        for (table, mirrors, redirect, m) in [
            (Table::TrafficControlEgress, egress_mirrors, egress_redirect, Match::new().in_port(PortNo(local.ofport))),
            (Table::TrafficControlIngress, ingress_mirrors, ingress_redirect, crate::reg::OUT_PORT.matches(Match::new(), local.ofport)),
        ] {
            if mirrors.is_empty() && redirect.is_none() {
                continue;
            }
            let mut actions = Vec::new();
            for (target, tc) in mirrors {
                if let Some(p) = port(tc, target, &mut status) {
                    actions.push(Action::output(PortNo(p)));
                }
            }
            let next = if table == Table::TrafficControlEgress { Table::TrafficControlIngress } else { Table::Output };
            let f = match redirect {
                Some((target, ret, tc)) => {
                    if let Some(r) = ret
                        && let Some(p) = port(tc, r, &mut status)
                    {
                        return_ports.insert(p);
                    }
                    match port(tc, target, &mut status) {
                        Some(p) => {
                            actions.push(Action::output(PortNo(p)));
                            table.flow(priority::POD, m, cat).actions(actions)
                        }
                        // Fail closed: a redirect whose port is missing drops rather than
                        // letting the traffic bypass the inspection it was meant to get.
                        None => table.flow(priority::POD, m, cat).actions(actions),
                    }
                }
                None => table.flow(priority::POD, m, cat).actions(actions).goto(next),
            };
            flows.push(f.build());
        }
    }
    for p in return_ports {
        flows.push(
            Table::Classifier
                .flow(priority::POD, Match::new().in_port(PortNo(p)), cat)
                .actions([SOURCE.load(FROM_POD), RETURNED.load(1), ESTABLISHED.load(1)])
                .goto(Table::L3Forwarding)
                .build(),
        );
    }
    if !plan.pods.is_empty() {
        flows.push(
            Table::TrafficControlEgress
                .flow(priority::RETURNED, RETURNED.matches(Match::new(), 1), cat)
                .goto(Table::Output)
                .build(),
        );
    }
    (flows, status)
}

mod priority {
    pub(super) const POD: u16 = 200;
    pub(super) const RETURNED: u16 = 210;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnel_ports_are_named_from_their_spec_and_fit_a_device_name() {
        let a = TcPort::Geneve { remote_ip: "192.168.77.200".parse().unwrap(), vni: 1, dst_port: 6081 };
        let b = TcPort::Geneve { remote_ip: "192.168.77.200".parse().unwrap(), vni: 2, dst_port: 6081 };
        assert_eq!(port_name(&a), port_name(&a.clone()));
        assert_ne!(port_name(&a), port_name(&b));
        assert!(port_name(&a).starts_with("weir-gnv-") && port_name(&a).len() <= 15);
        assert_eq!(port_name(&TcPort::OvsInternal { name: "tap0".into() }), "tap0");
    }
}
