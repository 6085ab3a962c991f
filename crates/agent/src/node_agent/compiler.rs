//! The compiler kept up to date: the topology it compiles for (this node and its bridge), the
//! cluster view it last reflected, and the panic guard around its update.

use super::pass::PassError;
use super::{NodeAgent, TUNNEL_PORT, report};
use pipeline::{FlowKey, NodeCompiler, Topology};
use policy::Cluster;
use std::collections::BTreeSet;
use std::time::Instant;
use tracing::{info, warn};

impl NodeAgent {
    pub(super) fn topology(&self) -> Option<Topology> {
        let node = self.cluster.nodes.get(&self.settings.node);
        let mut host_interfaces = crate::external_node::host_interfaces(&self.interfaces);
        // An ExternalNode's interface is its ExternalEntity; a Kubernetes node's uplink, its Node.
        let this_node = (self.settings.node_policy_ovs).then(|| policy::Endpoint::Node(self.settings.node.clone()));
        for h in &mut host_interfaces {
            let entity = self.cluster.external_entity_on(&self.settings.node, &h.name).map(policy::Endpoint::ExternalEntity);
            h.endpoint = entity.or_else(|| this_node.clone());
        }
        // An ExternalNode has no pod network: its host interfaces are all there is to forward.
        let gateway_ip = match node.and_then(pipeline::compile::gateway_for) {
            Some(ip) => ip,
            None if !host_interfaces.is_empty() => std::net::Ipv4Addr::UNSPECIFIED,
            None => return None,
        };
        Some(Topology {
            node: self.settings.node.clone(),
            gateway_ip,
            gateway_mac: Topology::gateway_mac_for(gateway_ip),
            node_ips: node.map(pipeline::compile::node_ips).unwrap_or_default(),
            tunnel_ofport: self.ports_by_name.get(TUNNEL_PORT).copied(),
            gateway_ofport: self.ports_by_name.get(ovsdb::cni::GATEWAY_PORT).copied(),
            local_pods: self.ports.pods.clone(),
            remote_nodes: pipeline::compile::remote_nodes(&self.cluster, &self.settings.node),
            ports: self.ports_by_name.clone(),
            service_cidrs: self.settings.service_cidrs.clone(),
            host_interfaces,
            host_bypass: self.settings.host_bypass.clone(),
            node_policy: self.settings.node_policy_ovs,
            tunnel_udp_port: self.settings.tunnel_udp_port,
        })
    }

    /// Brings the compiler up to the cluster view and the topology. Returns the flow keys
    /// that may have changed, or `None` when everything must be compared (a fresh compiler,
    /// or no compiler: without this node's Node object (or its pod CIDR) there is no
    /// forwarding to compile, only the table-miss flows are desired, so everything drops
    /// (fail closed) and the status says why).
    pub(super) fn update_compiler(&mut self) -> Result<Option<BTreeSet<FlowKey>>, PassError> {
        let Some(topo) = self.topology() else {
            let why = format!("node {:?} is not in the cluster view or has no IPv4 pod CIDR: all traffic is dropped", self.settings.node);
            warn!("{why}");
            self.status.warnings = vec![why];
            self.compiler = None;
            self.compiled_from = None;
            return Ok(None);
        };
        let reported = std::mem::take(&mut self.status.warnings);
        let (cluster, old, compiler) = (&self.cluster, self.compiled_from.take(), self.compiler.take());
        #[cfg(test)]
        let fail = std::mem::take(&mut self.fail_next_compile);
        // A compiler bug must not take the agent (and the node's policy) down: the installed
        // flows stay as they are, the status says what happened, and the next change
        // compiles from scratch.
        let updated = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            #[cfg(test)]
            if fail {
                panic!("injected compiler fault");
            }
            match (compiler, old) {
                (Some(mut c), Some(old)) => {
                    c.update(&old, cluster, topo);
                    let keys = c.take_changed();
                    (c, Some(keys))
                }
                (Some(mut c), None) => {
                    c.set_topology(cluster, topo);
                    let keys = c.take_changed();
                    (c, Some(keys))
                }
                (None, _) => {
                    // The clock is read for the log only.
                    let started = Instant::now();
                    let c = NodeCompiler::new(cluster, topo);
                    info!(flows = c.flows().len(), elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "compiled from scratch");
                    (c, None)
                }
            }
        }));
        match updated {
            Ok((c, keys)) => {
                // Orders the fixed priority mapping cannot keep (see `pipeline::placement`).
                self.status.warnings.extend(c.order_conflicts().into_iter().map(|o| {
                    format!("rules {} and {} share one OpenFlow priority: the switch may not consult {} first", o.first, o.second, o.first)
                }));
                // Objects in force that protect nothing (a node policy selecting no node).
                self.status.warnings.extend(self.cluster.warnings.iter().map(ToString::to_string));
                let unrealized = if self.settings.node_firewall || self.settings.node_policy_ovs {
                    Vec::new()
                } else {
                    report::host_policy_warnings(&c, &self.settings.node)
                };
                for w in unrealized {
                    if !reported.contains(&w) {
                        warn!("{w}");
                    }
                    self.status.warnings.push(w);
                }
                self.compiler = Some(c);
                Ok(keys)
            }
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Err(PassError::Compile(format!("internal compiler error, installed flows kept: {what}")))
            }
        }
    }

    /// Takes a new cluster view, remembering the one the compiler reflects so the next
    /// update can compare them.
    pub(super) fn set_cluster(&mut self, cluster: Cluster) {
        let old = std::mem::replace(&mut self.cluster, cluster);
        if self.compiler.is_some() && self.compiled_from.is_none() {
            self.compiled_from = Some(old);
        }
    }
}
