//! Which pod changes can change a policy's rules (what the node compiler recompiles).

use policy::{Cluster, Dependence, Direction, Labels, NetworkPolicy, Pod, PodKey};

/// Whether a change of `pod` can change the policy's rules at all.
fn depends_on(p: &NetworkPolicy, pod: &Pod, namespace_labels: &Labels) -> bool {
    p.dependence(pod, namespace_labels) != Dependence::None
}
use std::net::IpAddr;

fn policy(yaml: &str) -> NetworkPolicy {
    let c = Cluster::from_sources([("p.yaml", yaml)]);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    c.policies.into_values().next().expect("one policy")
}

fn pod(ns: &str, app: &str, ip: &str) -> Pod {
    Pod {
        key: PodKey::new(ns, "p"),
        labels: Labels::from([("app".to_string(), app.to_string())]),
        node: None,
        host_network: false,
        ips: vec![ip.parse::<IpAddr>().unwrap()],
        ports: vec![],
    }
}

fn team(t: &str) -> Labels {
    Labels::from([("team".to_string(), t.to_string())])
}

const INGRESS_FROM_TEAM_A: &str = "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: x}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: a}}, podSelector: {matchLabels: {app: client}}}]
  - from: [{ipBlock: {cidr: 10.0.0.0/8}}]
";

#[test]
fn a_pod_the_policy_applies_to_is_a_dependency() {
    assert!(depends_on(&policy(INGRESS_FROM_TEAM_A), &pod("x", "web", "10.0.0.1"), &team("b")));
}

#[test]
fn a_pod_a_peer_selects_is_a_dependency() {
    assert!(depends_on(&policy(INGRESS_FROM_TEAM_A), &pod("y", "client", "10.0.0.1"), &team("a")));
}

#[test]
fn a_pod_no_selector_matches_is_not_a_dependency_even_inside_a_peer_block() {
    let p = policy(INGRESS_FROM_TEAM_A);
    assert!(!depends_on(&p, &pod("y", "client", "10.0.0.1"), &team("b")));
    assert!(!depends_on(&p, &pod("x", "db", "10.0.0.1"), &team("a")));
}

#[test]
fn a_host_network_pod_is_never_a_dependency() {
    let mut web = pod("x", "web", "10.0.0.1");
    web.host_network = true;
    assert!(!depends_on(&policy(INGRESS_FROM_TEAM_A), &web, &team("a")));
}

#[test]
fn any_pod_is_a_dependency_of_an_egress_rule_with_named_ports_to_anywhere() {
    let p = policy(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: out, namespace: x}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress:
  - ports: [{port: http}]
",
    );
    assert!(depends_on(&p, &pod("elsewhere", "db", "192.168.0.1"), &team("b")));
}

#[test]
fn a_pod_inside_a_block_is_a_dependency_of_an_egress_rule_with_named_ports_to_it() {
    let p = policy(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: out, namespace: x}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}]
    ports: [{port: http}]
",
    );
    assert!(depends_on(&p, &pod("y", "db", "10.0.0.1"), &team("b")));
    assert!(!depends_on(&p, &pod("y", "db", "10.1.0.1"), &team("b")));
    assert!(!depends_on(&p, &pod("y", "db", "192.168.0.1"), &team("b")));
}

#[test]
fn a_pod_only_a_peer_selects_is_a_peer_dependence_of_the_selecting_rules() {
    let p = policy(INGRESS_FROM_TEAM_A);
    assert_eq!(
        p.dependence(&pod("y", "client", "10.0.0.1"), &team("a")),
        Dependence::Peer(vec![(Direction::Ingress, 0)])
    );
}

#[test]
fn a_pod_the_policy_applies_to_is_a_full_dependence() {
    assert_eq!(policy(INGRESS_FROM_TEAM_A).dependence(&pod("x", "web", "10.0.0.1"), &team("a")), Dependence::Full);
}
