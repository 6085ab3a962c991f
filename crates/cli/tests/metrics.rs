//! The agent's metrics endpoint on a live node: scraped while policies change and traffic
//! flows, its families move as the agent works (flow_mods with a change, a rule's counters
//! with the packets it decided, rejected objects, connection losses and reconnects when OVS
//! restarts), `/healthz` and `/readyz` answer, and
//! `promtool check metrics` (Prometheus's own linter; `scripts/promtool.sh`) accepts the text.
mod common;

use common::Running;
use common::scrape::{get, get_accepting, promtool_check, scrape, value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use testbed::Tunnel;

const SYNC: Duration = Duration::from_secs(30);

/// Scrapes `node` until `series` exceeds `floor` (the rule counters are read every 0.2 s).
fn wait_above(r: &Running, node: &str, series: &str, floor: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = value(&scrape(r, node), series);
        if v > floor || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls `f` every 50 ms for up to 15 s; whether it came true.
fn poll(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn tcp80(r: &Running, from: &str, to: &str) -> bool {
    r.tcp_allowed(from, to)
}

const ADMIN_DENY: &str = "\
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: deny-x-to-z}
spec:
  priority: 5
  subject: {pods: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}, podSelector: {matchLabels: {pod: a}}}}
  ingress:
  - name: no-x
    action: Deny
    from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: x}}}]
  - name: yes-z
    action: Allow
    from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: z}}}]
";

const ALLOW_Y: &str = "\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-y, namespace: z}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}], ports: [{protocol: TCP, port: 80}]}]
";

const BROKEN: &str = "\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: broken, namespace: y}
spec:
  podSelector: {}
  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [192.168.0.0/16]}}]}]
";

#[test]
fn metrics_move_with_policy_changes_traffic_and_rejected_objects_and_promtool_accepts_them() {
    let r = Running::up_with('m', Tunnel::Geneve, &["agent", "--rule-stats-interval", "0.2"]);
    let node = r.tb.pod("z/a").unwrap().node.clone();
    assert_eq!(get(&r, &node, "/healthz").0, 200);
    assert_eq!(get(&r, &node, "/readyz"), (200, "ok\n".to_string()));
    assert_eq!(get(&r, &node, "/nothing").0, 404);
    let before = scrape(&r, &node);
    assert_eq!(value(&before, "weir_openflow_connected"), 1.0);
    assert_eq!(value(&before, "weir_ovsdb_connected"), 1.0);
    assert_eq!(value(&before, r#"weir_objects{kind="Pod"}"#), 9.0);
    assert!(value(&before, "weir_realizations_total") >= 1.0);

    // A change: flow_mods rise, a realization is timed from the manifests to the switch's ack.
    let files = [("deny.yaml", ADMIN_DENY), ("allow.yaml", ALLOW_Y)].map(|(name, text)| {
        let path = r.tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    });
    r.tb.apply(&files, SYNC).unwrap();
    let after = scrape(&r, &node);
    assert!(value(&after, "weir_flow_mods_sent_total") > value(&before, "weir_flow_mods_sent_total"));
    assert!(value(&after, "weir_realizations_total") > value(&before, "weir_realizations_total"));
    assert!(value(&after, "weir_realization_latency_seconds_count") > value(&before, "weir_realization_latency_seconds_count"));
    assert_eq!(value(&after, "weir_flow_mods_failed_total"), 0.0);
    let mean = |m: &BTreeMap<String, f64>, h: &str| value(m, &format!("{h}_sum")) / value(m, &format!("{h}_count"));
    eprintln!(
        "realization latency: mean {:.1} ms over {} realizations; bundle: mean {:.1} ms over {} bundles",
        mean(&after, "weir_realization_latency_seconds") * 1e3,
        value(&after, "weir_realization_latency_seconds_count"),
        mean(&after, "weir_bundle_duration_seconds") * 1e3,
        value(&after, "weir_bundle_duration_seconds_count"),
    );
    assert_eq!(value(&after, r#"weir_objects{kind="AdminNetworkPolicy"}"#), 1.0);
    assert_eq!(value(&after, r#"weir_policy_rules{table="IngressAdmin"}"#), 2.0);
    assert_eq!(value(&after, r#"weir_policy_rules{table="IngressRule"}"#), 1.0);
    assert!(value(&after, r#"weir_flows{table="IngressAdmin"}"#) > value(&before, r#"weir_flows{table="IngressAdmin"}"#));

    // Traffic: a denied probe raises the Deny rule's counter, an allowed one the Allow rule's.
    let deny = r#"weir_rule_packets_total{tier="admin",kind="AdminNetworkPolicy",policy="deny-x-to-z",rule="no-x"}"#;
    let allow = r#"weir_rule_packets_total{tier="networkpolicy",kind="NetworkPolicy",policy="z/from-y",rule="ingress[0]"}"#;
    let (deny0, allow0) = (value(&after, deny), value(&after, allow));
    assert!(!tcp80(&r, "x/b", "z/a"), "the admin Deny holds");
    assert!(wait_above(&r, &node, deny, deny0) > deny0, "the denied probe counts on {deny}");
    assert!(tcp80(&r, "y/b", "z/a"), "the NetworkPolicy allows y");
    assert!(wait_above(&r, &node, allow, allow0) > allow0, "the allowed probe counts on {allow}");
    let bytes = scrape(&r, &node);
    assert!(value(&bytes, &allow.replace("packets", "bytes")) >= 40.0 * value(&bytes, allow), "at least an IPv4+TCP header a packet");
    // New connections: every packet a Deny or a NetworkPolicy rule decides is one (the
    // NetworkPolicy tables never see established packets); an admin Allow also sees its
    // connections' established packets, which are not.
    let new = |series: &str| series.replace("weir_rule_packets_total", "weir_rule_new_connections_total");
    for series in [deny, allow] {
        assert_eq!(value(&bytes, &new(series)), value(&bytes, series), "{series}: every packet opens a connection");
    }
    let admin_allow = r#"weir_rule_packets_total{tier="admin",kind="AdminNetworkPolicy",policy="deny-x-to-z",rule="yes-z"}"#;
    assert!(tcp80(&r, "z/b", "z/a"), "the admin Allow lets z in");
    let packets = wait_above(&r, &node, admin_allow, 1.0);
    let opened = value(&scrape(&r, &node), &new(admin_allow));
    eprintln!("admin Allow after one connection: {packets} packets, {opened} new-connection packets");
    assert!(opened >= 1.0 && packets > opened, "{admin_allow}: {packets} packets, {opened} of them new");
    // The audit log's families are there (no rule logs here).
    assert_eq!(value(&bytes, "weir_audit_log_lines_total"), 0.0);
    assert!(bytes.contains_key(r#"weir_audit_log_lines_dropped_total{reason="rate_limit"}"#), "{bytes:?}");

    // A rejected object shows in the rejected count.
    let broken = r.tmp.path().join("broken.yaml");
    std::fs::write(&broken, BROKEN).unwrap();
    r.tb.apply(&[broken], SYNC).unwrap();
    let rejected = scrape(&r, &node);
    assert_eq!(value(&rejected, r#"weir_rejected_objects{kind="NetworkPolicy"}"#), 1.0);

    // ovs-vswitchd and ovsdb-server die and come back: the agent is not ready meanwhile, and
    // each connection counts its loss and its reconnect.
    let mut sw = r.tb.switch(&node).unwrap();
    for daemon in ["ovs-vswitchd", "ovsdb-server"] {
        assert!(sw.kill(daemon), "{daemon} was running");
    }
    assert!(poll(|| get(&r, &node, "/readyz").0 == 503), "not ready while the switch is down");
    assert_eq!(get(&r, &node, "/healthz").0, 200, "the agent's loop still turns");
    sw.restart_missing().expect("restart OVS");
    assert!(poll(|| get(&r, &node, "/readyz").0 == 200), "ready again");
    let back = scrape(&r, &node);
    for (series, before) in [
        ("weir_openflow_connection_losses_total", 0.0),
        ("weir_openflow_connections_total", value(&rejected, "weir_openflow_connections_total")),
        ("weir_ovsdb_connections_total", value(&rejected, "weir_ovsdb_connections_total")),
    ] {
        assert!(value(&back, series) > before, "{series}: {} after, {before} before", value(&back, series));
    }
    assert_eq!((value(&back, "weir_openflow_connected"), value(&back, "weir_ovsdb_connected")), (1.0, 1.0));

    // Prometheus asks for OpenMetrics and gets it, with its end marker.
    let (code, openmetrics) = get_accepting(&r, &node, "/metrics", "application/openmetrics-text;version=1.0.0,text/plain;q=0.5");
    assert_eq!(code, 200);
    assert!(openmetrics.ends_with("# EOF\n") && openmetrics.contains("# TYPE weir_realizations counter"), "{openmetrics}");

    // Prometheus's linter accepts the text format served to everyone else.
    let (_, text) = get(&r, &node, "/metrics");
    promtool_check(&text);
}
