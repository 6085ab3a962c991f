//! The compile-facing form: named ports resolved per pod, peers as addresses, stable output.
mod common;
use common::{cluster, ip, np};
use policy::{ConcreteServices, IpBlock, Direction, Endpoint, PeerAddrs, PodKey, PortRange, Protocol};
use std::collections::BTreeSet;

fn pods(keys: &[&str]) -> BTreeSet<Endpoint> {
    keys.iter().map(|k| Endpoint::Pod(k.parse::<PodKey>().unwrap())).collect()
}

fn tcp(lo: u16, hi: u16) -> PortRange {
    PortRange { protocol: Protocol::Tcp, lo, hi }
}

#[test]
fn ingress_named_port_splits_by_the_number_it_resolves_to_on_each_pod() {
    let c = cluster(&np("x", "p", "{podSelector: {}, ingress: [{ports: [{port: 81}, {port: web}]}]}"));
    let parts = c.rules().concrete(&c);
    let got: Vec<(u32, BTreeSet<Endpoint>, ConcreteServices)> =
        parts.iter().map(|p| (p.part, p.applied_to.clone(), p.services.clone())).collect();
    assert_eq!(
        got,
        [
            (0, pods(&["x/a", "x/b", "x/c"]), ConcreteServices::List(vec![tcp(81, 81)])),
            (1, pods(&["x/b"]), ConcreteServices::List(vec![tcp(8080, 8080)])),
            (2, pods(&["x/c"]), ConcreteServices::List(vec![tcp(9090, 9090)])),
        ]
    );
    assert!(parts.iter().all(|p| p.peers == PeerAddrs::Any && p.rule.0 == "NetworkPolicy/x/p/ingress/0"));
}

#[test]
fn egress_named_port_splits_by_destination_pod() {
    let c = cluster(&np("x", "p", "{podSelector: {matchLabels: {pod: a}}, policyTypes: [Egress], egress: [{to: [{namespaceSelector: {matchLabels: {ns: y}}}], ports: [{port: web}]}]}"));
    let parts = c.rules().concrete(&c);
    assert_eq!(parts.len(), 2, "{parts:#?}");
    assert_eq!(parts[0].peers, PeerAddrs::Blocks(vec![IpBlock::host(ip("y/b"))]));
    assert_eq!(parts[0].services, ConcreteServices::List(vec![tcp(8080, 8080)]));
    assert_eq!(parts[1].peers, PeerAddrs::Blocks(vec![IpBlock::host(ip("y/c"))]));
    assert_eq!(parts[1].services, ConcreteServices::List(vec![tcp(9090, 9090)]));
    assert!(parts.iter().all(|p| p.direction == Direction::Egress && p.applied_to == pods(&["x/a"])));
}

#[test]
fn peer_pods_become_host_blocks_next_to_ip_blocks() {
    let c = cluster(&np("x", "p", "{podSelector: {matchLabels: {pod: a}}, ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}, {ipBlock: {cidr: 172.16.0.0/12, except: [172.16.1.0/24]}}]}]}"));
    let parts = c.rules().concrete(&c);
    assert_eq!(parts.len(), 1);
    let blocks = vec![
        IpBlock::host(ip("x/b")),
        IpBlock { cidr: "172.16.0.0/12".parse().unwrap(), except: vec!["172.16.1.0/24".parse().unwrap()] },
    ];
    assert_eq!(parts[0].peers, PeerAddrs::Blocks(blocks));
    assert_eq!(parts[0].services, ConcreteServices::Any);
}

#[test]
fn protocol_only_service_is_the_full_port_range() {
    let c = cluster(&np("x", "p", "{podSelector: {}, ingress: [{ports: [{protocol: UDP}, {port: 1000, endPort: 1010, protocol: SCTP}]}]}"));
    let parts = c.rules().concrete(&c);
    let ConcreteServices::List(list) = &parts[0].services else { panic!() };
    assert_eq!(list[0], PortRange { protocol: Protocol::Udp, lo: 0, hi: 65535 });
    assert!(list[0].is_any_port());
    assert_eq!(list[1], PortRange { protocol: Protocol::Sctp, lo: 1000, hi: 1010 });
}

#[test]
fn rules_selecting_no_pod_have_no_concrete_parts() {
    let c = cluster(&np("x", "p", "{podSelector: {matchLabels: {pod: nobody}}, ingress: [{}]}"));
    assert_eq!(c.rules().rules.len(), 1);
    assert!(c.rules().concrete(&c).is_empty());
}

#[test]
fn equal_input_gives_equal_concrete_rules_whatever_the_manifest_order() {
    let one = np("x", "p", "{podSelector: {}, ingress: [{from: [{namespaceSelector: {}}], ports: [{port: web}, {port: 80}]}]}");
    let two = np("y", "q", "{podSelector: {}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8}}], ports: [{port: web}]}]}");
    let a = cluster(&(one.clone() + &two));
    let b = cluster(&(two + &one));
    assert_eq!(a.rules().concrete(&a), b.rules().concrete(&b));
}

#[test]
fn adding_a_pod_changes_only_the_parts_that_name_it() {
    let policy = np("x", "p", "{podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}], ports: [{port: 80}]}]}")
        + &np("z", "q", "{podSelector: {}, ingress: [{ports: [{port: 81}]}]}");
    let before = cluster(&policy);
    let extra_pod = "---\napiVersion: v1\nkind: Pod\nmetadata: {name: d, namespace: y, labels: {pod: d}}\nstatus: {podIP: 10.0.1.99}\n";
    let after = cluster(&(policy + extra_pod));
    let (b, a) = (before.rules().concrete(&before), after.rules().concrete(&after));
    assert_eq!(b.len(), a.len());
    assert_eq!(b[1], a[1], "z/q does not involve y/d");
    let PeerAddrs::Blocks(blocks) = &a[0].peers else { panic!() };
    assert!(blocks.contains(&IpBlock::host("10.0.1.99".parse().unwrap())));
}
