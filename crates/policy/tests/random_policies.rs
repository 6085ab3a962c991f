//! Random policy sets never panic the parser, normalizer, concrete form or evaluator, and a
//! packet walked through the concrete rules (as the pipeline matches them) gets the oracle's
//! verdict.
mod common;
use common::{base_manifests, ip};
use policy::manifest::{self, Manifests};
use policy::{Cluster, ConcreteRule, ConcreteServices, Direction, Endpoint, Packet, PeerAddrs, Protocol, RuleSet, evaluate};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::net::IpAddr;

fn selector() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({})),
        prop::sample::select(vec!["a", "b", "c", "zz"]).prop_map(|p| json!({"matchLabels": {"pod": p}})),
        prop::sample::select(vec!["x", "y", "z"]).prop_map(|n| json!({"matchLabels": {"ns": n}})),
        (prop::sample::select(vec!["In", "NotIn"]), prop::sample::subsequence(vec!["a", "b", "c", "x", "y"], 1..3))
            .prop_map(|(op, vs)| json!({"matchExpressions": [{"key": "pod", "operator": op, "values": vs}]})),
        prop::sample::select(vec!["Exists", "DoesNotExist"])
            .prop_map(|op| json!({"matchExpressions": [{"key": "pod", "operator": op}]})),
    ]
}

fn peer() -> impl Strategy<Value = Value> {
    prop_oneof![
        selector().prop_map(|s| json!({"podSelector": s})),
        selector().prop_map(|s| json!({"namespaceSelector": s})),
        (selector(), selector()).prop_map(|(p, n)| json!({"podSelector": p, "namespaceSelector": n})),
        prop::sample::select(vec!["10.0.0.0/16", "10.0.1.0/24", "10.0.0.2/32", "0.0.0.0/0", "10.0.0.0/8"])
            .prop_map(|c| json!({"ipBlock": {"cidr": c}})),
        Just(json!({"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.1.0/24", "10.0.2.3/32"]}})),
        Just(json!({"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.0.0/8"]}})), // invalid
    ]
}

fn port() -> impl Strategy<Value = Value> {
    let proto = prop::option::of(prop::sample::select(vec!["TCP", "UDP", "SCTP"]));
    prop_oneof![
        2 => (proto.clone(), prop::sample::select(vec![80, 81, 8080, 9090, 0])).prop_map(|(pr, p)| json!({"protocol": pr, "port": p})),
        3 => (proto.clone(), prop::sample::select(vec!["web", "web", "serve-80-tcp", "serve-81-udp", "serve-80-sctp", "nope"]))
            .prop_map(|(pr, p)| json!({"protocol": pr, "port": p})),
        1 => proto.clone().prop_map(|pr| json!({"protocol": pr})),
        1 => (proto, 79u16..82, 0u16..3).prop_map(|(pr, p, w)| json!({"protocol": pr, "port": p, "endPort": p + w})),
    ]
}

fn list<T: Strategy<Value = Value>>(item: T) -> impl Strategy<Value = Option<Vec<Value>>> {
    prop_oneof![1 => Just(None), 1 => Just(Some(vec![])), 4 => prop::collection::vec(item, 1..3).prop_map(Some)]
}

fn rule(peer_key: &'static str) -> impl Strategy<Value = Value> {
    (list(peer()), list(port())).prop_map(move |(peers, ports)| {
        let mut r = json!({});
        if let Some(p) = peers {
            r[peer_key] = json!(p);
        }
        if let Some(p) = ports {
            r["ports"] = json!(p);
        }
        r
    })
}

fn policy(index: usize) -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["x", "y", "z"]),
        selector(),
        prop::option::of(prop::sample::subsequence(vec!["Ingress", "Egress"], 0..=2)),
        list(rule("from")),
        list(rule("to")),
    )
        .prop_map(move |(ns, sel, types, ingress, egress)| {
            let mut spec = json!({"podSelector": sel});
            if let Some(t) = types {
                spec["policyTypes"] = json!(t);
            }
            if let Some(i) = ingress {
                spec["ingress"] = json!(i);
            }
            if let Some(e) = egress {
                spec["egress"] = json!(e);
            }
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                   "metadata": {"name": format!("p{index}"), "namespace": ns}, "spec": spec})
        })
}

fn policies() -> impl Strategy<Value = Vec<Value>> {
    (1usize..5).prop_flat_map(|n| (0..n).map(policy).collect::<Vec<_>>())
}

fn build(policies: &[Value]) -> Cluster {
    let mut m = Manifests::default();
    manifest::parse_into("base.yaml", &base_manifests(), &mut m);
    for (i, p) in policies.iter().enumerate() {
        manifest::add_value("random", &format!("policy {i}"), p.clone(), &mut m);
    }
    Cluster::from_manifests(m)
}

/// The pipeline's view of one direction: isolation from the rule set, allows from the
/// concrete rules only.
fn concrete_allows(rules: &RuleSet, concrete: &[ConcreteRule], cluster: &Cluster, p: &Packet, d: Direction) -> bool {
    let (me, peer) = match d {
        Direction::Egress => (p.src, p.dst),
        Direction::Ingress => (p.dst, p.src),
    };
    let Some(pod) = cluster.pod_by_ip(me) else { return true };
    let endpoint = Endpoint::Pod(pod.key.clone());
    if !rules.isolated.contains(d, &endpoint) {
        return true;
    }
    concrete.iter().any(|r| {
        r.direction == d
            && r.applied_to.contains(&endpoint)
            && match &r.peers {
                PeerAddrs::Any => true,
                PeerAddrs::Blocks(b) => b.iter().any(|b| b.cidr.contains(peer) && !b.except.iter().any(|e| e.contains(peer))),
            }
            && match &r.services {
                ConcreteServices::Any => true,
                ConcreteServices::List(l) => {
                    l.iter().any(|s| s.protocol == p.protocol && (s.lo..=s.hi).contains(&p.dst_port))
                }
            }
    })
}

fn addresses() -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = ["x", "y", "z"]
        .iter()
        .flat_map(|ns| ["a", "b", "c"].iter().map(move |p| ip(&format!("{ns}/{p}"))))
        .collect();
    v.push("10.0.2.3".parse().unwrap()); // inside an except, no pod
    v.push("192.0.2.1".parse().unwrap());
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn concrete_rules_agree_with_the_oracle_and_nothing_panics(policies in policies()) {
        let cluster = build(&policies);
        let rules = cluster.rules();
        let concrete = rules.concrete(&cluster);
        let addrs = addresses();
        // Every pair of addresses on every port the policies can name, on every protocol.
        let packets = addrs.iter().flat_map(|&src| addrs.iter().flat_map(move |&dst| {
            [Protocol::Tcp, Protocol::Udp, Protocol::Sctp].into_iter().flat_map(move |protocol| {
                [79u16, 80, 81, 82, 8080, 9090, 1234].into_iter().map(move |dst_port| Packet { src, dst, protocol, dst_port })
            })
        }));
        for packet in packets {
            let verdict = evaluate(&cluster, &rules, &packet);
            let pipeline = concrete_allows(&rules, &concrete, &cluster, &packet, Direction::Egress)
                && concrete_allows(&rules, &concrete, &cluster, &packet, Direction::Ingress);
            prop_assert_eq!(verdict.allowed, pipeline, "packet {:?}\nverdict {}\npolicies {}", packet, verdict,
                serde_json::to_string(&policies).unwrap());
        }
    }

    #[test]
    fn arbitrary_yaml_never_panics_the_parser(text in "[-a-z:{}\\[\\], 0-9./\n'\"&*!|>#]{0,300}") {
        let cluster = Cluster::from_sources([("fuzz.yaml", text.as_str())]);
        let rules = cluster.rules();
        let _ = rules.concrete(&cluster);
    }

    #[test]
    fn arbitrary_json_policies_never_panic(spec in arbitrary_json(4)) {
        let doc = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                         "metadata": {"name": "p", "namespace": "x"}, "spec": spec});
        let mut m = Manifests::default();
        manifest::add_value("fuzz", "doc", doc, &mut m);
        let cluster = Cluster::from_manifests(m);
        let rules = cluster.rules();
        let _ = rules.concrete(&cluster);
    }
}

fn arbitrary_json(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec!["podSelector", "ingress", "from", "ports", "port", "10.0.0.0/8", "TCP", "In", "x", ""])
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(depth, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "podSelector", "namespaceSelector", "ipBlock", "cidr", "except", "ingress", "egress", "from", "to",
                    "ports", "port", "endPort", "protocol", "policyTypes", "matchLabels", "matchExpressions", "key",
                    "operator", "values",
                ])
                .prop_map(String::from),
                inner,
                0..5,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
