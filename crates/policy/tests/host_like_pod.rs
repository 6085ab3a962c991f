//! A host endpoint is decided exactly like a pod: random tiered Antrea policies applied to a
//! Kubernetes Node by `nodeSelector` give the node the verdicts the same policies give a pod
//! when applied to it by `podSelector`, for every peer, port and protocol, both directions.
mod common;
use common::{base_manifests, ip};
use policy::{Cluster, Packet, Protocol, evaluate};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::net::IpAddr;

/// Node n1 (role: guarded, the subject), n2 (role: other), and pod x/h (role: guarded, the
/// subject's stand-in).
fn hosts() -> String {
    format!(
        "---\napiVersion: v1\nkind: Node\nmetadata: {{name: n1, labels: {{role: guarded}}}}\nstatus: {{addresses: [{{type: InternalIP, address: {N1}}}]}}\n---\napiVersion: v1\nkind: Node\nmetadata: {{name: n2, labels: {{role: other}}}}\nstatus: {{addresses: [{{type: InternalIP, address: 192.168.0.2}}]}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: h, namespace: x, labels: {{role: guarded}}}}\nstatus: {{podIP: {}}}\n",
        ip("x/h")
    )
}

const N1: &str = "192.168.0.1";

fn peer() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec!["a", "b", "zz"]).prop_map(|p| json!({"podSelector": {"matchLabels": {"pod": p}}})),
        prop::sample::select(vec!["x", "y"]).prop_map(|n| json!({"namespaceSelector": {"matchLabels": {"ns": n}}})),
        prop::sample::select(vec!["guarded", "other"]).prop_map(|r| json!({"nodeSelector": {"matchLabels": {"role": r}}})),
        prop::sample::select(vec!["10.0.0.0/16", "10.0.1.2/32", "192.168.0.0/24", "0.0.0.0/0"])
            .prop_map(|c| json!({"ipBlock": {"cidr": c}})),
    ]
}

fn rule(peer_key: &'static str, baseline: bool) -> impl Strategy<Value = Value> {
    // Antrea forbids Pass in the baseline tier.
    let actions = if baseline { vec!["Allow", "Drop", "Reject"] } else { vec!["Allow", "Drop", "Reject", "Pass"] };
    (prop::sample::select(actions), prop::collection::vec(peer(), 0..3), prop::option::of(prop::sample::select(vec![80u16, 81]))).prop_map(
        move |(action, peers, port)| {
            let mut r = json!({"action": action});
            if !peers.is_empty() {
                r[peer_key] = json!(peers);
            }
            if let Some(p) = port {
                r["ports"] = json!([{"protocol": "TCP", "port": p}]);
            }
            r
        },
    )
}

/// A policy's tier, priority and rules; applied to the subject later.
fn policy() -> impl Strategy<Value = (String, f64, Vec<Value>, Vec<Value>)> {
    prop::sample::select(vec!["emergency", "application", "baseline"]).prop_flat_map(|tier| {
        let baseline = tier == "baseline";
        (
            Just(tier.to_string()),
            prop::sample::select(vec![1.0, 2.0, 5.5]),
            prop::collection::vec(rule("from", baseline), 0..3),
            prop::collection::vec(rule("to", baseline), 0..3),
        )
    })
}

fn cluster(policies: &[(String, f64, Vec<Value>, Vec<Value>)], applied_to: &Value) -> Cluster {
    let mut text = base_manifests() + &hosts();
    for (i, (tier, priority, ingress, egress)) in policies.iter().enumerate() {
        let doc = json!({"apiVersion": "crd.antrea.io/v1beta1", "kind": "ClusterNetworkPolicy", "metadata": {"name": format!("p{i}")},
            "spec": {"priority": priority, "tier": tier, "appliedTo": [applied_to], "ingress": ingress, "egress": egress}});
        text.push_str(&format!("---\n{doc}\n"));
    }
    let c = Cluster::from_sources([("all.yaml", text.as_str())]);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    c
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn a_node_gets_the_verdicts_a_pod_gets_from_the_same_rules(policies in prop::collection::vec(policy(), 1..4)) {
        let on_node = cluster(&policies, &json!({"nodeSelector": {"matchLabels": {"role": "guarded"}}}));
        let on_pod = cluster(&policies, &json!({"podSelector": {"matchLabels": {"role": "guarded"}}}));
        let (node_rules, pod_rules) = (on_node.rules(), on_pod.rules());
        let (node, pod): (IpAddr, IpAddr) = (N1.parse().unwrap(), ip("x/h"));
        let others: Vec<IpAddr> = ["x/a", "x/b", "y/a", "z/c"].iter().map(|p| ip(p))
            .chain(["192.168.0.2", "192.0.2.1"].iter().map(|a| a.parse().unwrap())).collect();
        for other in others {
            for dst_port in [80, 81, 443] {
                for (to_subject, from_subject) in [(true, false), (false, true)] {
                    let packet = |subject: IpAddr| {
                        let (src, dst) = if to_subject { (other, subject) } else { (subject, other) };
                        Packet { src, dst, protocol: Protocol::Tcp, dst_port }
                    };
                    let n = evaluate(&on_node, &node_rules, &packet(node));
                    let p = evaluate(&on_pod, &pod_rules, &packet(pod));
                    prop_assert_eq!(n.allowed, p.allowed, "{} subject, peer {}, port {}\nnode: {}\npod: {}\npolicies {:?}",
                        if from_subject { "from" } else { "to" }, other, dst_port, n, p, policies);
                }
            }
        }
    }
}
