//! Rules applied to host endpoints (a Kubernetes Node, an ExternalNode's interface) are not
//! the pod pipeline's: they add no flow and change none of the pods' flows, and the compiler
//! names the policies that carry them so the agent can report who realizes them.

use pipeline::{NodeCompiler, offline_topology};
use policy::{Cluster, Endpoint, ExternalEntityKey};

/// Node n1 (worker) with pods x/p0 and x/p1, node n2, ExternalNode vms/vm1 (role: db).
const CLUSTER: &str = "apiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {node-role: worker}}\nspec: {podCIDR: 10.0.0.0/24}\nstatus: {addresses: [{type: InternalIP, address: 192.168.1.1}]}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: n2}\nspec: {podCIDR: 10.0.1.0/24}\nstatus: {addresses: [{type: InternalIP, address: 192.168.1.2}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p0, namespace: x, labels: {app: web}}\nspec: {nodeName: n1}\nstatus: {podIP: 10.0.0.2}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p1, namespace: x}\nspec: {nodeName: n1}\nstatus: {podIP: 10.0.0.3}\n---\napiVersion: crd.antrea.io/v1alpha1\nkind: ExternalNode\nmetadata: {name: vm1, namespace: vms, labels: {role: db}}\nspec: {interfaces: [{name: eth0, ips: [192.168.50.10]}]}\n";

fn acnp(name: &str, applied_to: &str, ingress: &str) -> String {
    format!(
        "---\napiVersion: crd.antrea.io/v1beta1\nkind: ClusterNetworkPolicy\nmetadata: {{name: {name}}}\nspec:\n  priority: 5\n  appliedTo: [{applied_to}]\n  ingress: {ingress}\n"
    )
}

/// The pod policy every cluster here has: x/p0 accepts port 80 only from vm1's entities.
fn pod_policy() -> String {
    acnp(
        "web-from-db",
        "{podSelector: {matchLabels: {app: web}}}",
        "[{action: Allow, from: [{externalEntitySelector: {matchLabels: {role: db}}}], ports: [{protocol: TCP, port: 80}]}, {action: Drop}]",
    )
}

fn compiler(policies: &str) -> (Cluster, NodeCompiler) {
    let c = Cluster::from_sources([("cluster.yaml", CLUSTER), ("policies.yaml", policies)]);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let topo = offline_topology(&c, "n1").expect("node n1");
    let compiler = NodeCompiler::new(&c, topo);
    (c, compiler)
}

#[test]
fn a_node_policy_adds_no_flow_to_the_pod_pipeline_and_is_named_for_the_host_realization() {
    let (_, pods_only) = compiler(&pod_policy());
    let node =
        acnp("node-ssh", "{nodeSelector: {matchLabels: {node-role: worker}}}", "[{action: Drop, ports: [{protocol: TCP, port: 22}]}]");
    let (_, with_node) = compiler(&format!("{}{node}", pod_policy()));
    assert_eq!(with_node.flows(), pods_only.flows(), "the node policy changes no flow");
    let n1 = Endpoint::Node("n1".into());
    let named: Vec<String> = with_node.host_policies(&n1).iter().map(ToString::to_string).collect();
    assert_eq!(named, ["ClusterNetworkPolicy.crd.antrea.io node-ssh"]);
    assert!(with_node.host_policies(&Endpoint::Node("n2".into())).is_empty());
    assert!(pods_only.host_policies(&n1).is_empty());
}

#[test]
fn a_policy_applied_to_pods_and_a_node_compiles_its_pod_part_only() {
    let both = acnp(
        "both",
        "{podSelector: {}, namespaceSelector: {}}, {nodeSelector: {}}",
        "[{action: Drop, from: [{ipBlock: {cidr: 172.16.0.0/12}}]}]",
    );
    let pods = acnp("both", "{podSelector: {}, namespaceSelector: {}}", "[{action: Drop, from: [{ipBlock: {cidr: 172.16.0.0/12}}]}]");
    let (_, mixed) = compiler(&format!("{}{both}", pod_policy()));
    let (_, pod_part) = compiler(&format!("{}{pods}", pod_policy()));
    assert_eq!(mixed.flows(), pod_part.flows());
    assert_eq!(mixed.host_policies(&Endpoint::Node("n1".into())).len(), 1);
    let vm1 = Endpoint::ExternalEntity(ExternalEntityKey::new("vms", "vm1-3e616"));
    assert!(mixed.host_policies(&vm1).is_empty(), "nodeSelector selects Nodes, not ExternalEntities");
}

#[test]
fn an_external_entity_peer_follows_the_external_node_incrementally() {
    let (old, mut c) = compiler(&pod_policy());
    let before = c.flows().clone();
    // vm1 moves to another address: the pod rule's peer must follow.
    let moved = CLUSTER.replace("192.168.50.10", "192.168.50.99");
    let new = Cluster::from_sources([("cluster.yaml", moved.as_str()), ("policies.yaml", pod_policy().as_str())]);
    let topo = offline_topology(&new, "n1").expect("node n1");
    c.update(&old, &new, topo.clone());
    let fresh = NodeCompiler::new(&new, topo);
    assert_ne!(fresh.flows(), &before, "the peer's address is in the flows");
    assert_eq!(c.flows(), fresh.flows(), "an incremental update equals a fresh compile");
}

#[test]
fn on_ovs_a_node_policy_compiles_on_the_nodes_gateway_port_and_follows_it_as_a_fresh_compile_does() {
    let node =
        acnp("node-ssh", "{nodeSelector: {matchLabels: {node-role: worker}}}", "[{action: Drop, ports: [{protocol: TCP, port: 22}]}]");
    let (old, mut c) = compiler(&pod_policy());
    let new = Cluster::from_sources([("cluster.yaml", CLUSTER), ("policies.yaml", format!("{}{node}", pod_policy()).as_str())]);
    let mut topo = offline_topology(&new, "n1").expect("node n1");
    topo.node_policy = true;
    let gateway = topo.gateway_ofport.expect("the offline topology has a gateway port");
    c.update(&old, &new, topo.clone());
    let fresh = NodeCompiler::new(&new, topo.clone());
    assert_eq!(c.flows(), fresh.flows(), "an incremental update equals a fresh compile");
    let applied = |c: &NodeCompiler, port: u32| {
        let reg1 = format!("reg1={port:#x}");
        c.flows().iter().map(ToString::to_string).any(|f| f.contains(&reg1) && f.contains("conjunction("))
    };
    assert!(applied(&fresh, gateway), "the Node's rule is applied on the gateway port");
    // The gateway port is recreated with another number: the rule follows it.
    let mut moved = topo.clone();
    moved.gateway_ofport = Some(gateway + 100);
    c.set_topology(&new, moved.clone());
    assert!(applied(&c, gateway + 100) && !applied(&c, gateway));
    assert_eq!(c.flows(), NodeCompiler::new(&new, moved).flows());
}
