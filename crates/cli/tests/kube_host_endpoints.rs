//! Host endpoints in cluster mode, on a 2-node testbed whose agents read a real kube-apiserver
//! (`weir testbed up --kube`): Antrea's kinds applied through the API server (`crd.antrea.io`
//! and `weir.io`) reach every agent (`testbed apply` returns once each agent realized the
//! view holding them: the sync token names them by apiVersion), the node policy is in the
//! nftables node firewall of the node it selects only, a bad ExternalNode is reported by every
//! agent naming object and field while pod traffic and the other objects stay as they were,
//! and updates and deletions propagate.
//!
//! Skips (saying why) only when the programs are not on PATH and `WEIR_REQUIRE_KUBE` is unset.
mod common;

use common::Running;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use testbed::kube::Binaries;

const SYNC: Duration = Duration::from_secs(60);
/// How long a node firewall may take after the flows of the same view.
const FIREWALL: Duration = Duration::from_secs(10);

/// ExternalNode vms/vm1, a custom weir.io tier with a policy on the database ExternalEntities,
/// and Antrea's node policy on the node `node`.
fn hosts(node: &str) -> String {
    format!(
        "\
apiVersion: v1
kind: Namespace
metadata: {{name: vms, labels: {{kubernetes.io/metadata.name: vms}}}}
---
apiVersion: crd.antrea.io/v1alpha1
kind: ExternalNode
metadata: {{name: vm1, namespace: vms, labels: {{role: db}}}}
spec: {{interfaces: [{{name: eth0, ips: [192.168.50.10]}}]}}
---
apiVersion: weir.io/v1alpha1
kind: Tier
metadata: {{name: hosts}}
spec: {{priority: 20}}
---
apiVersion: weir.io/v1alpha1
kind: ClusterNetworkPolicy
metadata: {{name: db-lock}}
spec:
  priority: 1
  tier: hosts
  appliedTo: [{{externalEntitySelector: {{matchLabels: {{role: db}}}}}}]
  ingress: [{{action: Drop, ports: [{{protocol: TCP, port: 5432}}]}}]
---
apiVersion: crd.antrea.io/v1beta1
kind: ClusterNetworkPolicy
metadata: {{name: node-ssh}}
spec:
  priority: 5
  tier: securityops
  appliedTo: [{{nodeSelector: {{matchLabels: {{kubernetes.io/hostname: {node}}}}}}}]
  ingress:
  - {{action: Allow, from: [{{ipBlock: {{cidr: 10.1.0.0/16}}}}], ports: [{{protocol: TCP, port: 22}}]}}
  - {{action: Drop, ports: [{{protocol: TCP, port: 22}}]}}
"
    )
}

/// An ExternalNode whose interface has no address.
const VM2_NO_ADDRESS: &str = "\
apiVersion: crd.antrea.io/v1alpha1
kind: ExternalNode
metadata: {name: vm2, namespace: vms}
spec: {interfaces: [{name: eth0}]}
";

fn write(r: &Running, name: &str, text: &str) -> PathBuf {
    let path = r.tmp.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Each agent's status file, by node.
fn statuses(r: &Running) -> Vec<(String, serde_json::Value)> {
    r.tb.nodes()
        .iter()
        .map(|n| {
            let text = std::fs::read(testbed::manifests::status_file(n)).unwrap();
            (n.name.clone(), serde_json::from_slice(&text).unwrap())
        })
        .collect()
}

/// Whether `node`'s nftables node firewall (`table inet weir-node`, the testbed's agents run
/// `--node-policy nftables`) holds rules of `policy`.
fn firewall_holds(r: &Running, node: &str, policy: &str) -> bool {
    let out = r.tb.command(node, "nft").unwrap().args(["list", "table", "inet", "weir-node"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).contains(policy)
}

/// The nodes whose node firewall holds `policy`, once that settled (the firewall runs on a task
/// of its own beside the flows the sync waits for).
fn firewalled_nodes(r: &Running, policy: &str, expected: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + FIREWALL;
    loop {
        let nodes: Vec<String> = r.tb.nodes().iter().map(|n| n.name.clone()).filter(|n| firewall_holds(r, n, policy)).collect();
        if nodes == expected || Instant::now() > deadline {
            return nodes;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Each agent's rejected objects as (object, field).
fn errors(r: &Running) -> Vec<Vec<(String, String)>> {
    let error =
        |e: &serde_json::Value| (e["object"].as_str().unwrap_or_default().to_string(), e["field"].as_str().unwrap_or_default().to_string());
    statuses(r).iter().map(|(_, s)| s["errors"].as_array().into_iter().flatten().map(error).collect()).collect()
}

#[test]
fn antrea_host_kinds_applied_through_the_api_server_reach_every_agent_and_a_bad_one_is_named() {
    if !Binaries::available_for_tests() {
        return;
    }
    let r = Running::up_kube('h');
    let node_ssh = "node-ssh";
    assert!(r.tcp_allowed("y/a", "x/a"), "no policy isolates x/a");

    let file = write(&r, "hosts.yaml", &hosts("node-1"));
    r.tb.apply(std::slice::from_ref(&file), SYNC).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(firewalled_nodes(&r, node_ssh, &["node-1"]), ["node-1"], "{:#?}", statuses(&r));
    assert_eq!(errors(&r), [vec![], vec![]]);

    let bad = write(&r, "vm2.yaml", VM2_NO_ADDRESS);
    r.tb.apply(std::slice::from_ref(&bad), SYNC).unwrap_or_else(|e| panic!("{e}"));
    let rejected = vec![("ExternalNode vms/vm2".to_string(), "spec.interfaces[0].ips".to_string())];
    assert_eq!(errors(&r), [rejected.clone(), rejected], "every agent names object and field");
    assert_eq!(firewalled_nodes(&r, node_ssh, &["node-1"]), ["node-1"], "the other objects stay in force");
    assert!(r.tcp_allowed("y/a", "x/a"), "pod traffic is as it was");

    std::fs::write(&file, hosts("node-2")).unwrap();
    r.tb.apply(std::slice::from_ref(&file), SYNC).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(firewalled_nodes(&r, node_ssh, &["node-2"]), ["node-2"], "the node policy moved");

    r.tb.delete(&[file, bad], SYNC).unwrap_or_else(|e| panic!("{e}"));
    assert!(firewalled_nodes(&r, node_ssh, &[]).is_empty());
    assert_eq!(errors(&r), [vec![], vec![]]);
}
