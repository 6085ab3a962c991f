//! Before the first cluster view, a host interface moved onto a bridge that holds nothing of
//! weir's forwards (its first view may come through it); a bridge holding an earlier run's
//! realization keeps it until that view.

use super::*;
use crate::node_agent::bootstrap::FORWARDING_WITHOUT_POLICY;
use crate::node_agent::pass::miss_flows;
use ovsdb::cni::{EXTERNAL_NODE, HOST_INTERFACE_UPLINK, IP_ADDRESS};

/// ExternalNode vms/vm1 with eth0 at 192.168.77.5, and a policy dropping what reaches it.
const VM: &str = "\
apiVersion: v1
kind: Namespace
metadata: {name: vms}
---
apiVersion: crd.antrea.io/v1alpha1
kind: ExternalNode
metadata: {name: vm1, namespace: vms, labels: {role: db}}
spec: {interfaces: [{name: eth0, ips: [192.168.77.5]}]}
---
apiVersion: crd.antrea.io/v1beta1
kind: ClusterNetworkPolicy
metadata: {name: lockdown}
spec:
  priority: 5
  appliedTo: [{externalEntitySelector: {matchLabels: {role: db}}, namespaceSelector: {}}]
  ingress: [{action: Drop}]
";

/// vm1's bridge once eth0 is moved: the NIC `eth0~` and the internal port `eth0`.
fn moved_eth0() -> Event {
    let (_, mut internal) =
        interface(1, "eth0", 2, &[(HOST_INTERFACE_UPLINK, "eth0~"), (EXTERNAL_NODE, "vm1"), (IP_ADDRESS, "192.168.77.5")]);
    internal.iface_type = "internal".into();
    internal.mac = Some("02:00:c0:a8:4d:05".into());
    Event::Interfaces(Arc::new([interface(2, "eth0~", 1, &[]), ("eth0".to_string(), internal)].into_iter().collect()))
}

fn vm_agent(switch: Switch) -> World {
    World::with_settings(switch, |s| s.node = "vm1".into())
}

/// What the agent compiles for its bridge from `cluster`.
fn compiled(w: &World, cluster: &Cluster) -> FlowSet {
    pipeline::NodeCompiler::new(cluster, w.agent.topology().expect("a host interface to forward")).flows().clone()
}

#[test]
fn a_moved_interface_forwards_without_policy_until_the_first_view_then_meets_its_policy() {
    let mut w = vm_agent(Switch::fixed());
    w.input(moved_eth0());
    w.advance(ms(10));
    assert_eq!(w.steps_since(0), ["status", "connect", "read-switch", "bundle", "flow-restore", "status"]);
    assert_eq!(w.switch.flows, compiled(&w, &Cluster::default()), "the flows of an empty view");
    assert!(w.switch.flows.len() > miss_flows().len());
    assert!(!w.status().realized, "nothing of the cluster is realized");
    assert_eq!(w.status().last_error.as_deref(), Some(FORWARDING_WITHOUT_POLICY));

    let mark = w.mark();
    w.input(manifests(VM, "t1"));
    w.advance(ms(10));
    assert_eq!(w.steps_since(mark), ["bundle", "status"]);
    let view = Cluster::from_sources([("vm.yaml", VM)]);
    assert_eq!(w.switch.flows, compiled(&w, &view), "the policy replaces the bootstrap");
    assert!(w.status().realized);
    assert_eq!(w.status().source_token.as_deref(), Some("t1"));
}

#[test]
fn a_bridge_left_with_only_table_miss_flows_is_bootstrapped_too() {
    let mut switch = Switch::fixed();
    switch.flows = miss_flows();
    let mut w = vm_agent(switch);
    w.input(moved_eth0());
    w.advance(ms(10));
    assert_eq!(w.switch.flows, compiled(&w, &Cluster::default()));
}

#[test]
fn an_earlier_runs_realization_stays_in_force_until_the_first_view() {
    let mut earlier = vm_agent(Switch::fixed());
    earlier.input(moved_eth0());
    earlier.input(manifests(VM, "t0"));
    earlier.advance(ms(10));
    assert!(earlier.status().realized);
    let enforced = earlier.switch.flows.clone();
    let mut switch = Switch::fixed();
    switch.flows = enforced.clone();

    let mut w = vm_agent(switch);
    w.input(moved_eth0());
    w.advance(Duration::from_secs(10));
    assert!(!w.steps_since(0).contains(&"bundle"), "{:?}", w.steps_since(0));
    assert_eq!(w.switch.flows, enforced);
    assert!(!w.status().realized);
    assert_ne!(w.status().last_error.as_deref(), Some(FORWARDING_WITHOUT_POLICY));

    let mark = w.mark();
    w.input(moved_eth0());
    w.advance(ms(10));
    assert!(!w.steps_since(mark).contains(&"read-switch"), "declined once, for good: {:?}", w.steps_since(mark));
    w.input(manifests(VM, "t1"));
    w.advance(ms(10));
    assert_eq!(w.switch.flows, enforced);
    assert_eq!(w.status().source_token.as_deref(), Some("t1"));
}
