//! Flow counts grow with endpoints + peers + services, never with their product.

use pipeline::{compile, offline_topology};
use policy::Cluster;
use std::fmt::Write;

/// A cluster of `namespaces` × `pods` pods on one node, where every namespace has
/// `policies` policies, each selecting a third of the namespace's pods and allowing ingress
/// from the pods of another namespace and a CIDR on two ports.
fn synthetic(namespaces: usize, pods: usize, policies: usize) -> String {
    let mut y = String::new();
    writeln!(y, "apiVersion: v1\nkind: Node\nmetadata: {{name: n1}}\nspec: {{podCIDR: 10.0.0.0/8}}\nstatus: {{addresses: [{{type: InternalIP, address: 192.168.1.1}}]}}").unwrap();
    for n in 0..namespaces {
        writeln!(y, "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: ns{n}, labels: {{team: t{}}}}}", n % 3).unwrap();
        for p in 0..pods {
            let ip = 10 << 24 | (n as u32) << 12 | (p as u32 + 2);
            writeln!(
                y,
                "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{p}, namespace: ns{n}, labels: {{app: a{}, tier: t{}}}}}\nspec: {{nodeName: n1, containers: [{{name: c, ports: [{{name: http, containerPort: 8080}}]}}]}}\nstatus: {{podIP: {}}}",
                p % 3,
                p % 2,
                std::net::Ipv4Addr::from(ip)
            )
            .unwrap();
        }
        for k in 0..policies {
            writeln!(
                y,
                "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: np{k}, namespace: ns{n}}}\nspec:\n  podSelector: {{matchLabels: {{app: a{}}}}}\n  ingress:\n  - from:\n    - namespaceSelector: {{matchLabels: {{team: t{}}}}}\n    - ipBlock: {{cidr: 172.16.{k}.0/24, except: [172.16.{k}.128/25]}}\n    ports:\n    - {{port: {}, protocol: TCP}}\n    - {{port: 9000, endPort: 9100, protocol: UDP}}",
                k % 3,
                (k + n) % 3,
                80 + k
            )
            .unwrap();
        }
    }
    y
}

#[test]
fn flow_count_is_linear_in_endpoints_peers_and_services_not_their_product() {
    let cluster = Cluster::from_sources([("synthetic.yaml", synthetic(6, 30, 5).as_str())]);
    assert!(cluster.errors.is_empty(), "{:?}", cluster.errors);
    let topo = offline_topology(&cluster, "n1").expect("node n1");
    let compiled = compile(&cluster, &topo);
    let rules = cluster.rules();
    let concrete = rules.concrete(&cluster);
    let (mut sum, mut product) = (0usize, 0usize);
    for r in &concrete {
        let applied = r.applied_to.len();
        let peers = match &r.peers {
            policy::PeerAddrs::Any => 1,
            policy::PeerAddrs::Blocks(b) => b.len(),
        };
        let services = match &r.services {
            policy::ConcreteServices::Any => 1,
            policy::ConcreteServices::List(l) => l.len() * 8, // a range is at most a few masks
        };
        sum += applied + peers + services + 1;
        product += applied * peers * services;
    }
    let policy_flows: usize = compiled
        .flows
        .counts()
        .iter()
        .filter(|(t, _)| matches!(t, pipeline::Table::IngressRule | pipeline::Table::EgressRule))
        .map(|(_, n)| n)
        .sum();
    assert!(policy_flows <= sum, "{policy_flows} policy flows for a sum bound of {sum}");
    assert!(product >= 10 * policy_flows, "cross product {product} vs {policy_flows} flows");
}

#[test]
fn recompiling_an_unchanged_cluster_gives_identical_flows() {
    let text = synthetic(3, 10, 4);
    let a = Cluster::from_sources([("s.yaml", text.as_str())]);
    let b = Cluster::from_sources([("s.yaml", text.as_str())]);
    let topo = offline_topology(&a, "n1").unwrap();
    assert_eq!(compile(&a, &topo), compile(&b, &topo));
}

#[test]
fn adding_one_pod_changes_only_a_few_flows() {
    let base = synthetic(3, 10, 4);
    let extra = "---\napiVersion: v1\nkind: Pod\nmetadata: {name: new, namespace: ns1, labels: {app: a0, tier: t0}}\nspec: {nodeName: n1, containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}\nstatus: {podIP: 10.0.31.200}\n";
    let before = Cluster::from_sources([("s.yaml", base.as_str())]);
    let after = Cluster::from_sources([("s.yaml", base.as_str()), ("new.yaml", extra)]);
    // The agent learns the new pod's port; every other pod keeps its port.
    let tb = offline_topology(&before, "n1").unwrap();
    let mut ta = tb.clone();
    let next = ta.local_pods.values().map(|p| p.ofport).max().unwrap() + 1;
    let ip = "10.0.31.200".parse().unwrap();
    ta.local_pods.insert(
        policy::PodKey::new("ns1", "new"),
        pipeline::LocalPod { ofport: next, ip, mac: pipeline::compile::pod_mac_for(ip) },
    );
    let (cb, ca) = (compile(&before, &tb), compile(&after, &ta));
    let mods = pipeline::diff(&ca.flows, &cb.flows);
    assert!(!mods.is_empty());
    assert!(mods.len() <= 16, "{} flow_mods for one pod", mods.len());
}

/// 100 policies in other namespaces all allow ingress from namespace `src`; one pod joins
/// `src`. Its address is one new clause flow carrying the 100 rules' conjunction actions, plus
/// its own forwarding flows; nothing else is touched.
#[test]
fn a_pod_joining_a_namespace_selected_by_100_policies_costs_a_few_flow_mods() {
    let mut y = String::from(
        "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nspec: {podCIDR: 10.1.0.0/16}\nstatus: {addresses: [{type: InternalIP, address: 192.168.1.1}]}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: src, labels: {role: client}}\n",
    );
    for n in 0..100 {
        writeln!(y, "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: dst{n}}}").unwrap();
        writeln!(y, "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: server, namespace: dst{n}}}\nspec: {{nodeName: n1}}\nstatus: {{podIP: 10.1.1.{}}}", n + 10).unwrap();
        writeln!(y, "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: from-clients, namespace: dst{n}}}\nspec:\n  podSelector: {{}}\n  ingress:\n  - from: [{{namespaceSelector: {{matchLabels: {{role: client}}}}}}]\n    ports: [{{port: {}, protocol: TCP}}]", 8000 + n).unwrap();
    }
    writeln!(y, "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: c0, namespace: src}}\nspec: {{nodeName: n1}}\nstatus: {{podIP: 10.1.2.10}}").unwrap();
    let joining = "apiVersion: v1\nkind: Pod\nmetadata: {name: c1, namespace: src}\nspec: {nodeName: n1}\nstatus: {podIP: 10.1.2.11}\n";
    let before = Cluster::from_sources([("c.yaml", y.as_str())]);
    let after = Cluster::from_sources([("c.yaml", y.as_str()), ("join.yaml", joining)]);
    assert!(before.errors.is_empty() && after.errors.is_empty());
    let tb = offline_topology(&before, "n1").unwrap();
    let mut ta = tb.clone();
    let ip = "10.1.2.11".parse().unwrap();
    let ofport = ta.local_pods.values().map(|p| p.ofport).max().unwrap() + 1;
    ta.local_pods.insert(policy::PodKey::new("src", "c1"), pipeline::LocalPod { ofport, ip, mac: pipeline::compile::pod_mac_for(ip) });
    let (cb, ca) = (compile(&before, &tb), compile(&after, &ta));
    let mods = pipeline::diff(&ca.flows, &cb.flows);
    println!("flow_mods for one pod joining a namespace selected by 100 policies: {}", mods.len());
    // Classifier, 2 × SpoofGuard, L3Forwarding, L2Forwarding, 2 × ConntrackState (its
    // connections the host gateway forwards after a Service DNAT), and the peer clause flow.
    assert_eq!(mods.len(), 8, "{mods:#?}");
    let clause = mods.iter().find(|m| m.flow.table_id == pipeline::Table::IngressRule.id()).expect("a clause flow");
    assert_eq!(clause.flow.apply_actions().len(), 100, "one conjunction action per policy");
    assert!(mods.iter().all(|m| m.command == openflow::FlowModCommand::Add), "nothing unrelated is rewritten or deleted");
}
