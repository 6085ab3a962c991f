//! TrafficControl flows: mirror copies, redirect replaces the output, returned packets skip
//! TrafficControl.

use openflow::{Action, PortNo};
use pipeline::{Table, compile, offline_topology};
use policy::Cluster;

const CLUSTER: &str = "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nspec: {podCIDR: 10.244.1.0/24}\nstatus: {addresses: [{type: InternalIP, address: 192.168.77.11}]}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: n2}\nspec: {podCIDR: 10.244.2.0/24}\nstatus: {addresses: [{type: InternalIP, address: 192.168.77.12}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {pod: a}}\nspec: {nodeName: n1}\nstatus: {podIP: 10.244.1.10}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: x, labels: {pod: b}}\nspec: {nodeName: n1}\nstatus: {podIP: 10.244.1.11}\n";

fn tc(name: &str, direction: &str, action: &str, ports: &str) -> String {
    format!("---\napiVersion: weir.io/v1alpha1\nkind: TrafficControl\nmetadata: {{name: {name}}}\nspec:\n  appliedTo: {{podSelector: {{matchLabels: {{pod: a}}}}}}\n  direction: {direction}\n  action: {action}\n{ports}")
}

fn compiled(tcs: &str) -> (pipeline::Compiled, pipeline::Topology) {
    let cluster = Cluster::from_sources([("c.yaml", CLUSTER), ("t.yaml", tcs)]);
    assert!(cluster.errors.is_empty(), "{:?}", cluster.errors);
    let mut topo = offline_topology(&cluster, "n1").unwrap();
    for (name, ofport) in [("tap0", 50), ("tap1", 51), ("fw-out", 60), ("fw-ret", 61)] {
        topo.ports.insert(name.into(), ofport);
    }
    (compile(&cluster, &topo), topo)
}

fn flows_in(c: &pipeline::Compiled, t: Table) -> Vec<openflow::Flow> {
    c.flows.iter().filter(|f| f.table_id == t.id()).cloned().collect()
}

#[test]
fn two_mirrors_of_egress_each_get_a_copy_and_the_packet_goes_on() {
    let tcs = [tc("m1", "Egress", "Mirror", "  targetPort: {ovsInternal: {name: tap0}}\n"), tc("m2", "Egress", "Mirror", "  targetPort: {ovsInternal: {name: tap1}}\n")].concat();
    let (c, topo) = compiled(&tcs);
    let a = topo.local_pods[&policy::PodKey::new("x", "a")].ofport;
    let egress = flows_in(&c, Table::TrafficControlEgress);
    let pod_flow = egress.iter().find(|f| f.matches.exact(openflow::Field::InPort) == Some(u128::from(a))).expect("a flow for x/a");
    assert_eq!(pod_flow.apply_actions(), [Action::output(PortNo(50)), Action::output(PortNo(51))]);
    assert!(pod_flow.instructions.contains(&openflow::Instruction::GotoTable(Table::TrafficControlIngress.id())));
    assert!(flows_in(&c, Table::TrafficControlIngress).iter().all(|f| f.priority == 0), "no ingress TrafficControl");
    assert!(c.traffic_controls["m1"].realized() && c.traffic_controls["m2"].realized());
}

#[test]
fn redirect_outputs_only_to_the_target_and_the_return_port_re_enters_at_l3_forwarding() {
    let (c, _) = compiled(&tc("r", "Ingress", "Redirect", "  targetPort: {device: {name: fw-out}}\n  returnPort: {device: {name: fw-ret}}\n"));
    let ingress = flows_in(&c, Table::TrafficControlIngress);
    let redirect = ingress.iter().find(|f| f.priority > 0).expect("redirect flow");
    assert_eq!(redirect.apply_actions(), [Action::output(PortNo(60))]);
    assert!(!redirect.instructions.iter().any(|i| matches!(i, openflow::Instruction::GotoTable(_))), "no output to reg1");
    let classifier = flows_in(&c, Table::Classifier);
    let ret = classifier.iter().find(|f| f.matches.exact(openflow::Field::InPort) == Some(61)).expect("return port flow");
    assert!(ret.instructions.contains(&openflow::Instruction::GotoTable(Table::L3Forwarding.id())));
    let skip = flows_in(&c, Table::TrafficControlEgress).into_iter().find(|f| f.priority == 210).expect("returned packets skip");
    assert!(skip.instructions.contains(&openflow::Instruction::GotoTable(Table::Output.id())));
}

#[test]
fn a_target_port_not_yet_on_the_bridge_is_reported_and_a_redirect_fails_closed() {
    let (c, _) = compiled(&tc("r", "Egress", "Redirect", "  targetPort: {ovsInternal: {name: nothere}}\n"));
    assert!(!c.traffic_controls["r"].realized());
    assert!(c.traffic_controls["r"].errors[0].contains("nothere"));
    let egress = flows_in(&c, Table::TrafficControlEgress);
    let f = egress.iter().find(|f| f.priority == 200).unwrap();
    assert!(f.instructions.is_empty() || f.apply_actions().is_empty() && !f.instructions.iter().any(|i| matches!(i, openflow::Instruction::GotoTable(_))), "dropped: {f:?}");
}
