//! Inputs that cannot be used (a compiler panic, no Node object, unreadable manifests, rejected
//! objects, policy the node does not realize): what stays in force and what the status says.

use super::*;
use crate::node_agent::pass::miss_flows;
use pipeline::diff;

#[test]
fn a_compiler_panic_keeps_the_installed_flows_and_waits_for_the_next_change() {
    let mut w = World::realized(Switch::fixed(), BASE);
    let before = w.switch.flows.clone();
    w.agent.fail_next_compile = true;
    let mark = w.mark();
    w.input(manifests(&format!("{BASE}{}", policy("p", 80)), "t1"));
    w.advance(ms(10));
    assert_eq!(w.steps_since(mark), ["status"]);
    assert!(!w.status().realized);
    assert_eq!(w.status().last_error.as_deref(), Some("internal compiler error, installed flows kept: injected compiler fault"));
    assert_eq!(w.switch.flows, before, "installed flows kept");
    w.advance(Duration::from_secs(10));
    assert!(w.bundles_since(mark).is_empty(), "no retry: the same input would panic again");

    // The next change compiles from scratch and sends only what differs from the switch.
    let docs = format!("{BASE}{}", policy("p", 80)) + &policy("q", 81);
    w.input(manifests(&docs, "t2"));
    w.advance(ms(10));
    assert!(w.status().realized);
    assert_eq!(w.status().source_token.as_deref(), Some("t2"));
    assert_eq!(w.switch.flows, flows_of(&docs));
    let expected = diff(&flows_of(&docs), &before);
    assert_eq!(w.bundles_since(mark), [expected.as_slice()]);
}

#[test]
fn without_its_node_object_the_node_fails_closed_and_says_why() {
    let no_node = BASE.replacen("apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nspec: {podCIDR: 10.0.1.0/24}\nstatus: {addresses: [{type: InternalIP, address: 192.168.1.1}]}\n---\n", "", 1);
    assert!(!no_node.contains("name: n1}"));
    let mut w = World::realized(Switch::fixed(), &no_node);
    assert_eq!(w.switch.flows, miss_flows(), "only the table-miss flows: everything drops");
    assert_eq!(w.status().warnings, ["node \"n1\" is not in the cluster view or has no IPv4 pod CIDR: all traffic is dropped"]);

    // The Node appears: forwarding and policy come back, the warning goes.
    w.input(manifests(BASE, "t1"));
    w.advance(ms(10));
    assert_eq!(w.switch.flows, flows_of(BASE));
    assert!(w.status().warnings.is_empty());
}

#[test]
fn an_interface_that_cannot_be_moved_is_in_the_status_until_it_is_moved() {
    let mut w = World::realized(Switch::fixed(), BASE);
    w.input(Event::InterfaceMoveFailures(BTreeMap::from([("eth7".into(), "no such interface".into())])));
    let e = &w.status().errors[0];
    assert_eq!((e.object.as_str(), e.field.as_str()), ("Node n1", "--external-interface"), "{e}");
    assert!(e.message.contains("\"eth7\"") && e.message.contains("no such interface"), "{e}");
    assert!(w.status().realized, "the rest stays enforced");
    w.input(Event::InterfaceMoveFailures(BTreeMap::new()));
    assert!(w.status().errors.is_empty());
}

/// An Antrea node policy (appliedTo.nodeSelector) dropping port 22 to nodes labelled `role`.
fn node_policy(name: &str, role: &str) -> String {
    format!(
        "---\napiVersion: crd.antrea.io/v1beta1\nkind: ClusterNetworkPolicy\nmetadata: {{name: {name}}}\nspec:\n  priority: 5\n  \
         appliedTo: [{{nodeSelector: {{matchLabels: {{role: {role}}}}}}}]\n  ingress: [{{action: Drop, ports: [{{protocol: TCP, port: 22}}]}}]\n"
    )
}

#[test]
fn a_node_policy_is_reported_as_not_realized_without_a_node_policy_realization_and_leaves_the_pod_flows_alone() {
    let worker = BASE.replacen("metadata: {name: n1}", "metadata: {name: n1, labels: {role: worker}}", 1);
    let docs = format!("{worker}{}{}", policy("p", 80), node_policy("ssh", "worker"));
    let w = World::realized(Switch::fixed(), &docs);
    assert_eq!(w.switch.flows, flows_of(&format!("{worker}{}", policy("p", 80))), "no flow for the node's rules");
    assert_eq!(
        w.status().warnings,
        [
            "ClusterNetworkPolicy.crd.antrea.io ssh applies to node n1: node policy is not realized (run the agent with --node-policy nftables or ovs)"
        ]
    );
    // With the node firewall the policy is realized there: no warning, the same flows.
    let w = World::with_settings_realized(Switch::fixed(), &docs, |s| s.node_firewall = true);
    assert_eq!(w.switch.flows, flows_of(&format!("{worker}{}", policy("p", 80))));
    assert!(w.status().warnings.is_empty(), "{:?}", w.status().warnings);
    // On the bridge (--node-policy ovs) the node's rules are compiled on its gateway port.
    let with_gateway = |s: &mut Settings| s.node_policy_ovs = true;
    let mut w = World::with_settings_realized(Switch::fixed(), &docs, with_gateway);
    assert!(w.status().warnings.is_empty(), "{:?}", w.status().warnings);
    let pods_only: std::collections::BTreeSet<String> = w.switch.flows.iter().map(ToString::to_string).collect();
    let mut ports = match bridge() {
        Event::Interfaces(i) => (*i).clone(),
        _ => unreachable!(),
    };
    let (name, row) = interface(9, ovsdb::cni::GATEWAY_PORT, 7, &[]);
    ports.insert(name, row);
    w.input(Event::Interfaces(Arc::new(ports)));
    w.advance(ms(10));
    let on_gateway: Vec<String> = w.switch.flows.iter().map(ToString::to_string).filter(|f| !pods_only.contains(f)).collect();
    assert!(
        on_gateway.iter().any(|f| f.contains("reg1=0x7") && f.contains("conjunction(")),
        "the rule's applied-to clause: {on_gateway:#?}"
    );
    assert!(on_gateway.iter().any(|f| f.contains("tp_dst=22") && f.contains("conjunction(")), "its port clause: {on_gateway:#?}");
    let nowhere = format!("{worker}{}", node_policy("gpu", "gpu"));
    let w = World::realized(Switch::fixed(), &nowhere);
    assert_eq!(
        w.status().warnings,
        [
            "cluster.yaml: ClusterNetworkPolicy.crd.antrea.io gpu: spec.appliedTo[0].nodeSelector: selects no Node: the policy applies to no host here"
        ]
    );
}

#[test]
fn an_unreadable_manifests_directory_keeps_the_last_snapshot_in_force() {
    let mut w = World::new(Switch::fixed());
    w.input(Event::ManifestsUnreadable("manifests directory /m does not exist".into()));
    assert_eq!(
        w.status().source_warning.as_deref(),
        Some("manifests directory /m does not exist: nothing is realized until it can be read")
    );

    let mut w = World::realized(Switch::fixed(), BASE);
    let before = w.switch.flows.clone();
    let mark = w.mark();
    let at = w.elapsed();
    w.input(Event::ManifestsUnreadable("manifests directory /m does not exist".into()));
    assert_eq!(w.statuses_since(mark).len(), 1);
    assert_eq!(w.statuses_since(mark)[0].0, at, "reported at once");
    assert_eq!(w.status().source_warning.as_deref(), Some("manifests directory /m does not exist: the last snapshot read stays in force"));
    assert!(w.status().realized);
    w.advance(Duration::from_secs(3));
    assert!(w.bundles_since(mark).is_empty());
    assert_eq!(w.switch.flows, before);

    w.input(manifests(BASE, "t1"));
    w.advance(ms(10));
    assert_eq!(w.status().source_warning, None, "readable again");
}

#[test]
fn rejected_objects_and_contract_violations_are_in_the_status() {
    let bad_pod = "---\napiVersion: v1\nkind: Pod\nmetadata: {name: d, namespace: x}\nspec: {nodeName: n1}\nstatus: {podIP: not-an-ip}\n";
    let cluster = Cluster::from_sources([("cluster.yaml", format!("{BASE}{bad_pod}").as_str())]);
    let mut w = World::new(Switch::fixed());
    w.input(Event::Manifests { cluster: Box::new(cluster), token: None });
    let mut ports = match bridge() {
        Event::Interfaces(i) => (*i).clone(),
        _ => unreachable!(),
    };
    let (name, row) = interface(9, "veth-e", 5, &[("iface-id", "x/e")]);
    ports.insert(name, row);
    w.input(Event::Interfaces(Arc::new(ports)));
    w.advance(ms(10));
    let errors: Vec<String> = w.status().errors.iter().map(ToString::to_string).collect();
    assert!(errors.iter().any(|e| e.contains("Pod x/d") && e.contains("status.podIP")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("Interface veth-e")), "{errors:?}");
    assert!(w.status().realized, "the rest is enforced");
}
