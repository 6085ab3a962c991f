//! The plan and its rendering without nftables (the real tables are in tests/node_firewall.rs).
use super::plan::HostRule;
use super::*;
use policy::rules::{Action, Origin, PolicyKind, PolicyRef, RuleId};
use policy::{PortRange, Protocol};

fn rule(id: &str, action: Action, ports: Option<&[(u16, u16)]>) -> HostRule {
    HostRule {
        id: RuleId(id.into()),
        origin: Origin {
            policy: PolicyRef { kind: PolicyKind::AdminNetworkPolicy, namespace: None, name: id.into() },
            rule: "ingress[0]".into(),
        },
        part: 0,
        action,
        peers: None,
        services: ports.map(|p| p.iter().map(|&(lo, hi)| PortRange { protocol: Protocol::Tcp, lo, hi }).collect()),
    }
}

fn plan(admin: Vec<HostRule>) -> Plan {
    let ingress = DirectionPlan::Layers { admin: vec![(policy::Tier::ADMIN, admin)], baseline: Vec::new() };
    let endpoint = EndpointPlan {
        endpoint: policy::Endpoint::Node("n1".into()),
        addresses: vec!["10.9.0.1".parse().unwrap()],
        ingress,
        egress: DirectionPlan::Layers { admin: Vec::new(), baseline: Vec::new() },
    };
    Plan { bypass: Vec::new(), endpoints: vec![endpoint] }
}

fn commands(rs: &nftables::schema::Nftables) -> Vec<serde_json::Value> {
    serde_json::to_value(rs).unwrap()["nftables"].as_array().unwrap().clone()
}

fn rules_of<'a>(cmds: &'a [serde_json::Value], chain: &str) -> Vec<&'a serde_json::Value> {
    cmds.iter().filter_map(|c| c["add"].get("rule")).filter(|r| r["chain"] == chain).collect()
}

#[test]
fn the_table_is_deleted_and_added_in_the_same_transaction() {
    let cmds = commands(&ruleset::ruleset(&plan(vec![rule("a", Action::Deny, None)])));
    let heads: Vec<String> = cmds[..3].iter().map(|c| c.as_object().unwrap().keys().next().unwrap().clone()).collect();
    assert_eq!(heads, ["add", "delete", "add"]);
    assert_eq!(cmds[1]["delete"]["table"]["name"], TABLE);
}

#[test]
fn a_tier_dispatches_ports_to_chains_holding_only_the_rules_that_can_match() {
    let rules = vec![
        rule("p80", Action::Allow, Some(&[(80, 80)])),
        rule("p80-90", Action::Deny, Some(&[(80, 90)])),
        rule("all", Action::Reject, None),
        rule("p443", Action::Allow, Some(&[(443, 443)])),
    ];
    let cmds = commands(&ruleset::ruleset(&plan(rules)));
    let tier = rules_of(&cmds, "e0-ingress-tier-10");
    assert_eq!(tier[0]["expr"][0]["match"]["right"], "tcp", "maps per protocol, keyed on the port alone");
    let singles = tier[0]["expr"][1]["vmap"]["data"]["set"].to_string();
    let ranges = tier[1]["expr"][1]["vmap"]["data"]["set"].to_string();
    // 80 → p80, p80-90, all; 81-90 → p80-90, all; 443 → all, p443.
    assert!(singles.contains(r#"[80,{"goto":{"target":"e0-ingress-tier-10-0"}}]"#), "{singles}");
    assert!(singles.contains(r#"[443,{"goto":{"target":"e0-ingress-tier-10-2"}}]"#), "{singles}");
    assert!(!singles.contains("range"), "single ports in a hash: {singles}");
    assert_eq!(ranges, r#"[[{"range":[81,90]},{"goto":{"target":"e0-ingress-tier-10-1"}}]]"#);
    let counters_in = |chain: &str| -> Vec<String> {
        rules_of(&cmds, chain)
            .iter()
            .filter_map(|r| r["expr"].as_array().unwrap().iter().find_map(|e| e["counter"].as_str().map(String::from)))
            .collect()
    };
    assert_eq!(counters_in("e0-ingress-tier-10-0"), ["p80", "p80-90", "all", "all"], "reject is a TCP line and an ICMP line");
    assert_eq!(counters_in("e0-ingress-tier-10-1"), ["p80-90", "all", "all"]);
    assert_eq!(counters_in("e0-ingress-tier-10-2"), ["all", "all", "p443"]);
    // Other protocols and ports miss the map and meet only the rule for every port.
    assert_eq!(counters_in("e0-ingress-tier-10"), ["all", "all"]);
}

#[test]
fn pass_goes_to_the_baseline_and_it_always_ends_in_a_verdict() {
    let cmds = commands(&ruleset::ruleset(&plan(vec![rule("pass", Action::Pass, None)])));
    let tier = rules_of(&cmds, "e0-ingress-tier-10");
    assert_eq!(tier[0]["expr"][1]["goto"]["target"], "e0-ingress-baseline");
    let lower = rules_of(&cmds, "e0-ingress-baseline");
    assert_eq!(lower.last().unwrap()["expr"][0], serde_json::json!({"accept": null}));
}

#[test]
fn a_long_rule_id_names_its_counter_within_nftables_limits() {
    let long = RuleId("x".repeat(400));
    let name = counter_name(&long);
    assert!(name.len() <= 255, "{}", name.len());
    assert_ne!(counter_name(&RuleId(format!("{}y", "x".repeat(399)))), name);
    assert_eq!(counter_name(&RuleId("AdminNetworkPolicy/a/ingress/0".into())), "AdminNetworkPolicy/a/ingress/0");
}

#[test]
fn counters_are_read_from_nft_json_beyond_32_bits() {
    let raw = r#"{"nftables":[{"metainfo":{}},{"counter":{"family":"inet","name":"r","table":"weir-node","packets":5,"bytes":8589934592}},
        {"counter":{"family":"inet","name":"other","table":"t","packets":1,"bytes":1}}]}"#;
    let c = parse_counters(raw).unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c["r"], Count { packets: 5, bytes: 8589934592 });
}

#[test]
fn the_parts_of_one_rule_keep_their_own_peers_and_share_its_counter() {
    let peers = |cidr: &str| Some(addresses::AddressRanges::of(&[policy::IpBlock { cidr: cidr.parse().unwrap(), except: Vec::new() }], []));
    let part =
        |part: u32, cidr: &str, port: u16| HostRule { part, peers: peers(cidr), ..rule("named", Action::Allow, Some(&[(port, port)])) };
    let cmds = commands(&ruleset::ruleset(&plan(vec![part(1, "10.1.0.0/16", 80), part(2, "10.2.0.0/16", 8080)])));
    let sets: Vec<String> = cmds.iter().filter_map(|c| c["add"].get("set")).map(|s| s["elem"].to_string()).collect();
    assert!(sets.iter().any(|s| s.contains("10.1.0.0")) && sets.iter().any(|s| s.contains("10.2.0.0")), "{sets:?}");
    let counters = cmds.iter().filter_map(|c| c["add"].get("counter")).filter(|c| c["name"] == "named").count();
    assert_eq!(counters, 1);
}

#[test]
fn a_nodes_plan_never_cuts_the_tunnel_to_and_from_the_other_nodes() {
    let yaml = "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nstatus: {addresses: [{type: InternalIP, address: 192.168.77.11}]}\n---\n\
                apiVersion: v1\nkind: Node\nmetadata: {name: n2}\nstatus: {addresses: [{type: InternalIP, address: 192.168.77.12}]}\n";
    let cluster = policy::Cluster::from_sources([("c.yaml", yaml)]);
    let plan = super::plan_for(&cluster, super::ThisHost::Node { name: "n1", tunnel_port: 6081 }, &[]);
    let tunnel: Vec<String> = plan.bypass.iter().map(|b| format!("{:?} {:?} {} {}", b.direction, b.protocol, b.peer, b.port)).collect();
    assert_eq!(tunnel, ["Ingress Udp 192.168.77.12/32 6081", "Egress Udp 192.168.77.12/32 6081"]);
    assert_eq!(plan.endpoints.len(), 1, "the node itself");
}

#[test]
fn an_external_nodes_plan_holds_each_of_its_interfaces_and_no_tunnel() {
    let yaml = "apiVersion: v1\nkind: Namespace\nmetadata: {name: vms}\n---\n\
                apiVersion: v1\nkind: Node\nmetadata: {name: n2}\nstatus: {addresses: [{type: InternalIP, address: 192.168.77.12}]}\n---\n\
                apiVersion: crd.antrea.io/v1alpha1\nkind: ExternalNode\nmetadata: {name: vm1, namespace: vms}\n\
                spec: {interfaces: [{name: eth0, ips: [192.168.77.101]}, {name: eth1, ips: [10.9.0.5]}]}\n---\n\
                apiVersion: crd.antrea.io/v1alpha1\nkind: ExternalNode\nmetadata: {name: vm2, namespace: vms}\n\
                spec: {interfaces: [{name: eth0, ips: [192.168.77.102]}]}\n";
    let cluster = policy::Cluster::from_sources([("c.yaml", yaml)]);
    assert!(cluster.errors.is_empty(), "{:?}", cluster.errors);
    let plan = super::plan_for(&cluster, super::ThisHost::ExternalNode("vm1"), &[]);
    let addresses: Vec<String> = plan.endpoints.iter().flat_map(|e| e.addresses.iter().map(ToString::to_string)).collect();
    assert_eq!(addresses, ["192.168.77.101", "10.9.0.5"]);
    assert!(plan.endpoints.iter().all(|e| matches!(e.endpoint, policy::Endpoint::ExternalEntity(_))), "{plan:?}");
    assert!(plan.bypass.is_empty(), "an ExternalNode rides no tunnel: {:?}", plan.bypass);
    assert!(super::plan_for(&cluster, super::ThisHost::ExternalNode("vm9"), &[]).endpoints.is_empty(), "no such ExternalNode");
}
