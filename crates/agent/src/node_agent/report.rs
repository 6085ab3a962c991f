//! What the node agent reports about itself: the status's objects, errors and
//! TrafficControls, and the realizations the metrics time.

use super::pass::{Pass, desired_flows};
use super::{Action, NodeAgent, Realization};
use crate::status::{ObjectErrorReport, TrafficControlReport};
use pipeline::NodeCompiler;
use policy::Cluster;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// What the status says about each policy applied to this node's own host endpoint (node
/// policy) when no node firewall runs: the pod pipeline compiles no flow for it, so it is not
/// realized, and nobody may believe it is.
pub(super) fn host_policy_warnings(compiler: &NodeCompiler, node: &str) -> Vec<String> {
    let host = policy::Endpoint::Node(node.to_string());
    compiler
        .host_policies(&host)
        .into_iter()
        .map(|p| format!("{p} applies to {host}: node policy is not realized (run the agent with --node-policy nftables or ovs)"))
        .collect()
}

impl NodeAgent {
    pub(super) fn report_realization(&mut self, now: Instant, pass: &Pass) {
        let changed = pass.flow_mods > 0 || pass.changed.is_none() || !self.rules_reported;
        // Without a compiler (a pass that trusted the start's record) the rules are not known
        // yet; the first pass with one reports them even if it sent nothing.
        let rules = (self.settings.report_rules && changed && self.compiler.is_some()).then(|| {
            let rules = self.compiler.as_ref().map(NodeCompiler::rules).unwrap_or_default();
            Arc::new(pipeline::rule_flows::conj_rules(&desired_flows(&self.compiler), rules))
        });
        self.rules_reported |= rules.is_some();
        let acked_at = pass.acked_at.unwrap_or(now);
        let realization = Realization { input_at: pass.input_at, acked_at, flow_mods: pass.flow_mods, rules };
        self.actions.push_back(Action::Realized(Box::new(realization)));
    }

    pub(super) fn report_traffic_controls(&mut self) {
        let mut reports = BTreeMap::new();
        let none = BTreeMap::new();
        let statuses = self.compiler.as_ref().map_or(&none, |c| c.traffic_controls());
        for name in self.cluster.traffic_controls.keys() {
            let st = statuses.get(name).cloned().unwrap_or_default();
            let mut errors = self.tc_port_errors.get(name).cloned().unwrap_or_default();
            errors.extend(st.errors.iter().cloned());
            reports.insert(
                name.clone(),
                TrafficControlReport {
                    realized: errors.is_empty(),
                    pods: st.pods.into_iter().collect(),
                    ports: st.ports.into_iter().collect(),
                    errors,
                },
            );
        }
        self.status.traffic_controls = reports;
    }

    pub(super) fn refresh_status(&mut self) {
        self.status.objects = crate::status::object_counts(&self.cluster);
        self.status.cluster_policies = self
            .cluster
            .cluster_policies
            .keys()
            .map(|(kind, name)| crate::status::ObjectName { kind: kind.to_string(), name: name.clone() })
            .collect();
        self.status.local_pods = self.ports.pods.len();
        self.status.errors = self
            .cluster
            .errors
            .iter()
            .map(ObjectErrorReport::from)
            .chain(self.ports.errors.iter().cloned())
            .chain(move_failures(&self.cluster, &self.settings.node, &self.move_failures))
            .collect();
    }
}

/// The host interfaces that could not be moved onto the bridge, each named by the ExternalNode
/// field that names it (`spec.interfaces[i].name` of the ExternalNode `node`) or, for one it
/// does not name (a Kubernetes node's uplink, or an ExternalNode not in the view yet), by the
/// agent's `--external-interface`.
pub(super) fn move_failures<'a>(
    cluster: &'a Cluster,
    node: &'a str,
    failures: &'a crate::external_node::MoveFailures,
) -> impl Iterator<Item = ObjectErrorReport> + 'a {
    let external_node = cluster.external_nodes.values().find(|en| en.name == node);
    failures.iter().map(move |(interface, why)| {
        let named = external_node.and_then(|en| en.interfaces.iter().position(|i| i.name == *interface).map(|i| (en, i)));
        let (object, field) = match named {
            Some((en, i)) => (format!("ExternalNode {}/{}", en.namespace, en.name), format!("spec.interfaces[{i}].name")),
            None if external_node.is_some() || !cluster.nodes.contains_key(node) => {
                (format!("ExternalNode {node}"), "--external-interface".into())
            }
            None => (format!("Node {node}"), "--external-interface".into()),
        };
        ObjectErrorReport {
            object,
            field,
            message: format!("interface {interface:?} cannot be moved onto the bridge: {why}"),
            source: String::new(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTS: &str = "\
apiVersion: v1
kind: Node
metadata: {name: n1}
status: {addresses: [{type: InternalIP, address: 192.168.1.1}]}
---
apiVersion: crd.antrea.io/v1alpha1
kind: ExternalNode
metadata: {name: vm1, namespace: vms}
spec: {interfaces: [{name: eth0, ips: [10.0.0.5]}, {name: eth7, ips: [10.1.0.5]}]}
";

    fn reports(node: &str, interface: &str) -> Vec<(String, String)> {
        let cluster = Cluster::from_sources([("hosts.yaml", HOSTS)]);
        let failures = BTreeMap::from([(interface.to_string(), "no such interface".to_string())]);
        move_failures(&cluster, node, &failures).map(|r| (r.object, r.field)).collect()
    }

    #[test]
    fn an_interface_that_cannot_be_moved_is_named_by_the_field_that_names_it() {
        assert_eq!(reports("vm1", "eth7"), [("ExternalNode vms/vm1".to_string(), "spec.interfaces[1].name".to_string())]);
        assert_eq!(reports("vm1", "eth9"), [("ExternalNode vm1".to_string(), "--external-interface".to_string())], "not in the object");
        assert_eq!(reports("vm2", "eth0"), [("ExternalNode vm2".to_string(), "--external-interface".to_string())], "no object yet");
        assert_eq!(reports("n1", "eth0"), [("Node n1".to_string(), "--external-interface".to_string())], "a node's uplink");
    }
}
