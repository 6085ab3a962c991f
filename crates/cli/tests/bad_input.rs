//! Bad input on a live testbed: rejected objects are reported with object and field, every
//! other object stays enforced, the agents keep running, and a policy that cannot be realized
//! fails closed for the pods it selects.

mod common;

use common::Running;
use std::time::Duration;
use testbed::Tunnel;

#[test]
fn a_bad_policy_is_reported_fails_closed_and_leaves_the_others_enforced() {
    let r = Running::up('b', Tunnel::Geneve);
    let good = r.tmp.path().join("good.yaml");
    std::fs::write(
        &good,
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: only-from-y, namespace: z}\nspec:\n  podSelector: {}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}]}]\n",
    )
    .unwrap();
    let bad = r.tmp.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: broken, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [192.168.0.0/16]}}]}]\n---\nthis: [is not, valid\n",
    )
    .unwrap();
    let (_, report) = r.tb.apply(&[good, bad], Duration::from_secs(30)).unwrap();
    for (node, status) in report.unwrap() {
        let fields: Vec<String> = status.errors.iter().map(|e| format!("{}: {}", e.object, e.field)).collect();
        assert!(
            fields.iter().any(|f| f.contains("NetworkPolicy x/broken") && f.contains("except")),
            "{node}: the bad except is reported with object and field: {fields:?}"
        );
        assert!(status.errors.len() >= 2, "{node}: the unparsable document is reported too: {fields:?}");
    }
    // The good policy is enforced...
    assert!(r.tcp_allowed("y/a", "z/a"));
    assert!(!r.tcp_allowed("x/b", "z/a"));
    // ...the pod the broken policy selects fails closed for ingress...
    assert!(!r.tcp_allowed("y/a", "x/a"));
    // ...and everything else is untouched.
    assert!(r.tcp_allowed("y/a", "x/b"));
    for node in r.tb.nodes() {
        assert!(node.agent.as_ref().is_some_and(|a| testbed::ovs::process_alive(a.pid)), "{} agent runs", node.name);
    }
}
