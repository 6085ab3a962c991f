//! Histories: long sequences of changes on one cluster, each step probed on every pod pair and
//! expected as the oracle decides ([`super::runner::with_oracle_matrices`]).
//!
//! A switch can hold the right tables and still forward wrongly when what it cached from
//! earlier tables survives a change (OVS's userspace datapath before 3.1.3 did exactly that).
//! Cases that start from a clean cluster cannot see this; a history changes one thing at a
//! time, for many steps, and checks every cell after every change.

use super::{CaseSpec, ProbeSpec, StepSpec};
use crate::model::{ClusterModel, LabelUpdate, ModelPods, ModelUpdates};
use crate::protocol::Protocol;
use crate::synthetic::Rng;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// What every step of a history probes: the ports and protocols policies here vary over.
const PROBES: [(u16, Protocol); 3] = [(80, Protocol::Tcp), (80, Protocol::Udp), (81, Protocol::Tcp)];

/// The standard model (namespaces x, y, z × pods a, b, c; ports 80 and 81 on TCP, UDP, SCTP).
pub fn standard_model() -> ClusterModel {
    let ns = |n: &str| BTreeMap::from([("ns".to_string(), n.to_string())]);
    let pod = |p: &str| BTreeMap::from([("pod".to_string(), p.to_string())]);
    ClusterModel {
        namespaces: ["x", "y", "z"].iter().map(|n| (n.to_string(), ns(n))).collect(),
        pods: ModelPods::Standard(["a", "b", "c"].iter().map(|p| (p.to_string(), pod(p))).collect()),
        ports: vec![80, 81],
        protocols: vec![Protocol::Tcp, Protocol::Udp, Protocol::Sctp],
        placement: BTreeMap::new(),
        host_network_ports: Vec::new(),
        nodes: None,
        external_nodes: Vec::new(),
        host_ports: Vec::new(),
    }
}

fn step(n: usize, change: String, policies: Vec<Value>, probes: &[(u16, Protocol)]) -> StepSpec {
    StepSpec {
        step: u32::try_from(n + 1).unwrap_or(u32::MAX),
        name: None,
        change: Some(change),
        changes: None,
        model_updates: None,
        policies,
        warnings: Vec::new(),
        probes: probes
            .iter()
            .map(|&(port, protocol)| ProbeSpec { port, protocol, matrix: None, from: None, to: None, expect: None })
            .collect(),
    }
}

fn spec(name: String, notes: String, steps: Vec<StepSpec>) -> CaseSpec {
    CaseSpec {
        name,
        source: Some("weir".into()),
        description: None,
        upstream: None,
        ignore_loopback: true,
        probe_semantics: None,
        sequential: Some(true),
        model: standard_model(),
        notes: Some(notes),
        steps,
    }
}

fn network_policy(namespace: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": name, "namespace": namespace}, "spec": spec})
}

/// The sequence that exposed OVS's "dpif_netdev_flow_put" bug (weir issue 12), `rounds` times:
/// in namespace x, `p` selects pod b for Ingress and allows only pod a on TCP 80; `p` is
/// deleted; `p` comes back as deny-all ingress for b; `p` is deleted. Probes TCP/80 and UDP/80.
pub fn overlapping_flows_regression(rounds: usize) -> CaseSpec {
    let b = json!({"matchLabels": {"pod": "b"}});
    let allow_a = network_policy(
        "x",
        "p",
        json!({"podSelector": b, "policyTypes": ["Ingress"],
               "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "a"}}}], "ports": [{"protocol": "TCP", "port": 80}]}]}),
    );
    let deny_all = network_policy("x", "p", json!({"podSelector": b, "policyTypes": ["Ingress"]}));
    let phases = [
        ("p: x/b accepts only pod a on TCP 80", vec![allow_a]),
        ("p deleted", vec![]),
        ("p: x/b denies all ingress", vec![deny_all]),
        ("p deleted", vec![]),
    ];
    let probes = [(80, Protocol::Tcp), (80, Protocol::Udp)];
    let steps = (0..rounds)
        .flat_map(|r| phases.iter().map(move |(what, p)| (format!("round {}: {what}", r + 1), p.clone())))
        .enumerate()
        .map(|(n, (change, policies))| step(n, change, policies, &probes))
        .collect();
    spec(
        format!("overlapping cached datapath flows keep no stale verdict ({rounds} rounds)"),
        "OVS before 3.1.3 (userspace datapath) lets a revalidator update the wrong one of two overlapping \
         cached flows; see weir issue 12 and agent::ovs_bugs."
            .into(),
        steps,
    )
}

/// A seeded random history of `changes` steps over the standard model. Each step changes one
/// thing: adds a NetworkPolicy, replaces one (same name, new spec), deletes one, or adds a label
/// to a pod or namespace (label changes persist); up to four policies are in force at once.
/// Every step probes TCP/80, UDP/80 and TCP/81. Equal seeds give equal histories.
pub fn random_history(seed: u64, changes: usize) -> CaseSpec {
    let mut rng = Rng::new(seed);
    let mut policies: BTreeMap<(String, String), Value> = BTreeMap::new();
    let mut next_name = 0usize;
    let mut steps = Vec::with_capacity(changes);
    for n in 0..changes {
        let mut updates = None;
        let change = match (rng.below(10), policies.len()) {
            (0..=3, 0..=3) | (_, 0) => {
                let (ns, name) = (pick(&mut rng, &["x", "y", "z"]).to_string(), format!("p{next_name}"));
                next_name += 1;
                policies.insert((ns.clone(), name.clone()), random_policy(&mut rng, &ns, &name));
                format!("add {ns}/{name}")
            }
            (4..=6, _) => {
                let key = policies.keys().nth(rng.below(policies.len())).cloned().expect("not empty");
                policies.insert(key.clone(), random_policy(&mut rng, &key.0, &key.1));
                format!("replace {}/{}", key.0, key.1)
            }
            (7..=8, _) => {
                let key = policies.keys().nth(rng.below(policies.len())).cloned().expect("not empty");
                policies.remove(&key);
                format!("delete {}/{}", key.0, key.1)
            }
            _ => {
                let (what, u) = random_label_update(&mut rng);
                updates = Some(u);
                what
            }
        };
        let mut s = step(n, change, policies.values().cloned().collect(), &PROBES);
        s.model_updates = updates;
        steps.push(s);
    }
    spec(
        format!("random history, seed {seed}, {changes} changes"),
        "generated by policy::conformance::history::random_history; expectations are the oracle's".into(),
        steps,
    )
}

fn pick<'a>(rng: &mut Rng, options: &[&'a str]) -> &'a str {
    options[rng.below(options.len())]
}

fn random_label_update(rng: &mut Rng) -> (String, ModelUpdates) {
    let mut u = ModelUpdates::default();
    let value = pick(rng, &["a", "b", "c", "x", "y", "z"]).to_string();
    let labels = BTreeMap::from([(pick(rng, &["pod", "ns", "extra"]).to_string(), value)]);
    let what = if rng.below(2) == 0 {
        let key = format!("{}/{}", pick(rng, &["x", "y", "z"]), pick(rng, &["a", "b", "c"]));
        let what = format!("label pod {key} with {labels:?}");
        u.pods.insert(key, LabelUpdate { add_labels: labels });
        what
    } else {
        let ns = pick(rng, &["x", "y", "z"]).to_string();
        let what = format!("label namespace {ns} with {labels:?}");
        u.namespaces.insert(ns, LabelUpdate { add_labels: labels });
        what
    };
    (what, u)
}

fn random_selector(rng: &mut Rng, key: &str, values: &[&str]) -> Value {
    match rng.below(5) {
        0 => json!({}),
        1 => json!({"matchExpressions": [{"key": key, "operator": pick(rng, &["In", "NotIn"]),
                                           "values": [pick(rng, values), pick(rng, values)]}]}),
        2 => json!({"matchExpressions": [{"key": "extra", "operator": pick(rng, &["Exists", "DoesNotExist"])}]}),
        _ => json!({"matchLabels": {key: pick(rng, values)}}),
    }
}

fn random_peer(rng: &mut Rng) -> Value {
    let pods = |rng: &mut Rng| random_selector(rng, "pod", &["a", "b", "c", "x"]);
    let namespaces = |rng: &mut Rng| random_selector(rng, "ns", &["x", "y", "z", "a"]);
    match rng.below(6) {
        0 | 1 => json!({"podSelector": pods(rng)}),
        2 => json!({"namespaceSelector": namespaces(rng)}),
        3 => json!({"podSelector": pods(rng), "namespaceSelector": namespaces(rng)}),
        4 => {
            let pod = format!("{}/{}", pick(rng, &["x", "y", "z"]), pick(rng, &["a", "b", "c"]));
            json!({"ipBlock": {"cidr": format!("{{{{hostcidr {pod}}}}}")}})
        }
        _ => {
            let (pod, except) = ("x/a", format!("{}/{}", pick(rng, &["x", "y", "z"]), pick(rng, &["a", "b", "c"])));
            json!({"ipBlock": {"cidr": format!("{{{{cidr {pod} 16}}}}"), "except": [format!("{{{{hostcidr {except}}}}}")]}})
        }
    }
}

fn random_port(rng: &mut Rng) -> Value {
    let protocol = pick(rng, &["TCP", "UDP", "SCTP"]);
    let number = [80, 81][rng.below(2)];
    match rng.below(4) {
        0 => json!({"protocol": protocol, "port": number}),
        1 => json!({"protocol": protocol, "port": format!("serve-{number}-{}", protocol.to_lowercase())}),
        2 => json!({"protocol": protocol, "port": 80, "endPort": 81}),
        _ => json!({"protocol": protocol}),
    }
}

fn random_rules(rng: &mut Rng, peer_key: &str) -> Value {
    let rules: Vec<Value> = (0..rng.below(3))
        .map(|_| {
            let mut rule = json!({});
            if rng.below(4) > 0 {
                rule[peer_key] = (0..1 + rng.below(2)).map(|_| random_peer(rng)).collect();
            }
            if rng.below(3) > 0 {
                rule["ports"] = (0..1 + rng.below(2)).map(|_| random_port(rng)).collect();
            }
            rule
        })
        .collect();
    Value::Array(rules)
}

fn random_policy(rng: &mut Rng, namespace: &str, name: &str) -> Value {
    let types: &[&str] = match rng.below(4) {
        0 => &["Egress"],
        1 => &["Ingress", "Egress"],
        _ => &["Ingress"],
    };
    let mut spec = json!({"podSelector": random_selector(rng, "pod", &["a", "b", "c"]), "policyTypes": types});
    if types.contains(&"Ingress") {
        spec["ingress"] = random_rules(rng, "from");
    }
    if types.contains(&"Egress") {
        spec["egress"] = random_rules(rng, "to");
    }
    network_policy(namespace, name, spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::runner::with_oracle_matrices;

    #[test]
    fn equal_seeds_give_equal_histories_and_other_seeds_differ() {
        assert_eq!(random_history(7, 40), random_history(7, 40));
        assert_ne!(random_history(7, 40).steps, random_history(8, 40).steps);
    }

    #[test]
    fn a_random_history_changes_policies_and_labels_and_the_oracle_can_play_every_step() {
        let spec = random_history(42, 60);
        let changes: Vec<&str> = spec.steps.iter().filter_map(|s| s.change.as_deref()).collect();
        for kind in ["add ", "replace ", "delete ", "label "] {
            assert!(changes.iter().any(|c| c.starts_with(kind)), "no {kind:?} change in {changes:?}");
        }
        let case = with_oracle_matrices("random", spec).unwrap();
        assert_eq!(case.probes.len(), 60);
        assert!(case.probes.iter().all(|p| p.len() == PROBES.len()));
    }

    #[test]
    fn the_regression_sequence_denies_x_b_exactly_in_its_policy_phases() {
        let case = with_oracle_matrices("regression", overlapping_flows_regression(2)).unwrap();
        let (xa, xb, yc) = ("x/a".parse().unwrap(), "x/b".parse().unwrap(), "y/c".parse().unwrap());
        let tcp = |step: usize| match &case.probes[step][0].expect {
            super::super::Expectation::Matrix(t) => (t.get(&xa, &xb).unwrap(), t.get(&yc, &xb).unwrap()),
            other => panic!("{other:?}"),
        };
        // allow-a phase, deleted, deny-all, deleted; twice.
        assert_eq!((0..8).map(tcp).collect::<Vec<_>>(), [
            (true, false), (true, true), (false, false), (true, true),
            (true, false), (true, true), (false, false), (true, true),
        ]);
    }
}
