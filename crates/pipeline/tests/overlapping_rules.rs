//! Rules that compile to flows with the same table, priority and match must share one flow
//! (found by the oracle-vs-switch property test: the compiler used to panic on them).

use pipeline::conjunction::priority;
use pipeline::{Table, compile, offline_topology};
use policy::Cluster;

const CLUSTER: &str = "\
apiVersion: v1
kind: Node
metadata: {name: n1}
spec: {podCIDR: 10.0.0.0/24}
status: {addresses: [{type: InternalIP, address: 192.168.1.1}]}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: web}}
spec: {nodeName: n1}
status: {podIP: 10.0.0.10}
";

fn policy(name: &str, selector: &str) -> String {
    format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: x}}\n\
         spec: {{podSelector: {selector}, ingress: [{{}}]}}\n"
    )
}

#[test]
fn two_policies_allowing_all_ingress_to_one_pod_give_one_flow() {
    let text = format!("{CLUSTER}{}{}", policy("all-1", "{}"), policy("all-2", "{matchLabels: {app: web}}"));
    let cluster = Cluster::from_sources([("c.yaml", text.as_str())]);
    assert!(cluster.errors.is_empty(), "{:?}", cluster.errors);
    let topo = offline_topology(&cluster, "n1").expect("topology");
    let compiled = compile(&cluster, &topo);
    let direct: Vec<_> = compiled
        .flows
        .iter()
        .filter(|f| f.table_id == Table::IngressRule.id() && f.priority == priority::DIRECT)
        .collect();
    assert_eq!(direct.len(), 1, "one allow-all flow for the pod: {direct:?}");
    // Recompiling gives the same flows, whichever rule the shared flow's cookie names.
    assert_eq!(compile(&cluster, &topo).flows, compiled.flows);
}
