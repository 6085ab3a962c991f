//! Audit logging on real traffic: a tiered policy's rules with `enableLogging` write one line
//! per connection they decide (allowed, dropped, rejected) to the agent's audit log, naming
//! the policy, rule, action, addresses, ports and pods; established packets add none; a flood
//! of logged connections is bounded (the switch's meter, then the agent's rate limit), the
//! dropped lines are counted, and the agent realizes changes as fast as without the flood.

mod common;

use common::Running;
use common::scrape::{scrape, value};
use common::traffic::{apply, apply_latency, flood, in_pod, meter_counts};
use serde_json::Value;
use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use testbed::Tunnel;

/// x/a: TCP 80 from y allowed, from z dropped (UDP 80 too), 81 from anyone rejected; every
/// rule logged.
const LOG_X_A: &str = "apiVersion: crd.antrea.io/v1beta1
kind: ClusterNetworkPolicy
metadata: {name: log-x-a}
spec:
  priority: 5
  tier: securityops
  appliedTo: [{podSelector: {matchLabels: {pod: a}}, namespaceSelector: {matchLabels: {ns: x}}}]
  ingress:
  - {action: Allow, name: allow-y, enableLogging: true, logLabel: web, from: [{namespaceSelector: {matchLabels: {ns: y}}}], ports: [{protocol: TCP, port: 80}]}
  - {action: Drop, name: drop-z, enableLogging: true, from: [{namespaceSelector: {matchLabels: {ns: z}}}], ports: [{protocol: TCP, port: 80}, {protocol: UDP, port: 80}]}
  - {action: Reject, name: refuse-81, enableLogging: true, from: [{namespaceSelector: {}}], ports: [{protocol: TCP, port: 81}]}
";

/// How long a probe waits for a connection.
const WAIT: Duration = Duration::from_secs(1);

/// A TCP connect from `from` to x/a:`port` that, once connected, sends a few segments (its
/// established packets); the error kind (`None`: connected).
fn connect(r: &Running, from: &str, port: u16) -> Option<ErrorKind> {
    let addr = SocketAddr::from((r.tb.pod("x/a").unwrap().ip, port));
    in_pod(r, from, move || match TcpStream::connect_timeout(&addr, WAIT) {
        Ok(mut s) => {
            for _ in 0..5 {
                let _ = s.write_all(b"established\n");
                std::thread::sleep(Duration::from_millis(20));
            }
            None
        }
        Err(e) => Some(e.kind()),
    })
}

/// The lines of `node`'s audit log.
fn lines(r: &Running, node: &str) -> Vec<Value> {
    let path = r.tb.node(node).unwrap().dir.join("audit.log");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"))).collect()
}

/// The node of x/a (where its ingress rules are enforced and logged).
fn node_of_x_a(r: &Running) -> String {
    r.tb.pod("x/a").unwrap().node.clone()
}

#[test]
fn allowed_dropped_and_rejected_connections_each_get_one_line_naming_policy_rule_pods_and_ports() {
    let r = Running::up('l', Tunnel::Geneve);
    apply(&r, "log", LOG_X_A);
    let node = node_of_x_a(&r);
    assert_eq!(connect(&r, "y/b", 80), None, "y/b -> x/a:80 is allowed");
    assert_eq!(connect(&r, "z/b", 80), Some(ErrorKind::TimedOut), "z/b -> x/a:80 is dropped");
    assert_eq!(connect(&r, "y/c", 81), Some(ErrorKind::ConnectionRefused), "y/c -> x/a:81 is rejected");
    // Lines are written as the packet-ins arrive; the dropped SYN's retransmissions are the
    // same connection.
    let deadline = Instant::now() + Duration::from_secs(5);
    while lines(&r, &node).len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let got = lines(&r, &node);
    eprintln!("{}", got.iter().map(|l| l.to_string()).collect::<Vec<_>>().join("\n"));
    assert_eq!(got.len(), 3, "one line per connection, none for established packets: {got:#?}");
    let x_a = r.tb.pod("x/a").unwrap().ip.to_string();
    for (rule, action, client, port, label) in
        [("allow-y", "Allow", "y/b", 80, "web"), ("drop-z", "Deny", "z/b", 80, ""), ("refuse-81", "Reject", "y/c", 81, "")]
    {
        let l = got.iter().find(|l| l["rule"] == rule).unwrap_or_else(|| panic!("no line of {rule}: {got:#?}"));
        let client_ip = r.tb.pod(client).unwrap().ip.to_string();
        for (field, want) in [
            ("node", node.as_str()),
            ("tier", "admin"),
            ("table", "IngressAdmin"),
            ("kind", "ClusterNetworkPolicy.crd.antrea.io"),
            ("policy", "log-x-a"),
            ("action", action),
            ("direction", "Ingress"),
            ("label", label),
            ("protocol", "TCP"),
            ("src_ip", client_ip.as_str()),
            ("src_pod", client),
            ("dst_ip", x_a.as_str()),
            ("dst_pod", "x/a"),
        ] {
            assert_eq!(l[field], want, "{field} of {l}");
        }
        assert_eq!(l["dst_port"].as_u64(), Some(port), "{l}");
        assert!(l["src_port"].as_u64().is_some_and(|p| p >= 1024), "{l}");
        assert!(l["time"].as_str().is_some_and(|t| t.starts_with("20") && t.ends_with('Z')), "{l}");
    }
    let m = scrape(&r, &node);
    assert_eq!(value(&m, "weir_audit_log_lines_total"), 3.0);
}

#[test]
fn a_flood_of_logged_connections_writes_bounded_lines_counts_the_drops_and_leaves_realization_on_time() {
    let r = Running::up_with('l', Tunnel::Geneve, &["agent", "--rule-stats-interval", "0.2"]);
    apply(&r, "log", LOG_X_A);
    let node = node_of_x_a(&r);
    let quiet: Vec<Duration> = (0..3).map(|i| apply_latency(&r, &format!("quiet-{i}"))).collect();
    let flood_time = Duration::from_secs(4);
    let (during, sent) = std::thread::scope(|scope| {
        let r = &r;
        // 10,000 dropped datagrams a second from 500 source ports: 500 connections.
        let flooder = scope.spawn(move || flood(r, "z/a", "x/a", 80, 10_000, flood_time, 500));
        std::thread::sleep(Duration::from_millis(500));
        let during: Vec<Duration> = (0..3).map(|i| apply_latency(r, &format!("flood-{i}"))).collect();
        (during, flooder.join().unwrap())
    });
    std::thread::sleep(Duration::from_millis(500));
    let m = scrape(&r, &node);
    let written = value(&m, "weir_audit_log_lines_total");
    let rate_limited = value(&m, "weir_audit_log_lines_dropped_total{reason=\"rate_limit\"}");
    let duplicates = value(&m, "weir_audit_log_duplicates_total");
    let (into_meter, metered) = meter_counts(&r, &node, pipeline::audit::AUDIT_METER);
    let reasons = ["rate_limit", "unknown_rule", "unparsable", "write_error"];
    let dropped: f64 = reasons.iter().map(|why| value(&m, &format!("weir_audit_log_lines_dropped_total{{reason=\"{why}\"}}"))).sum();
    let (worst_quiet, worst_during) = (*quiet.iter().max().unwrap(), *during.iter().max().unwrap());
    eprintln!(
        "flood: {sent} datagrams in {flood_time:?}; audit meter: {into_meter} in, {metered} dropped; lines written {written}, \
         rate-limited {rate_limited}, dropped in all {dropped}, duplicates {duplicates}; apply latency quiet {quiet:?}, during {during:?}"
    );
    assert!(sent >= 35_000, "the flood sent only {sent} datagrams");
    assert!(metered >= sent / 2, "the audit meter let most of the flood through: {metered} of {sent} dropped");
    assert_eq!(lines(&r, &node).len() as f64, written, "the file holds the lines counted");
    // Every packet the meter let through is a line, a duplicate or a counted drop.
    assert_eq!(written + duplicates + dropped, (into_meter - metered) as f64, "the agent accounts for every packet-in");
    // One second's burst, then the rate, over the flood and the settling time.
    let bound = f64::from(agent::audit::DEFAULT_LINES_PER_SECOND) * (flood_time.as_secs_f64() + 2.0);
    assert!(written > 0.0 && written <= bound, "{written} lines written, bound {bound}");
    assert!(rate_limited > 0.0, "the agent's rate limit never dropped a line");
    // The agent exports what the meter dropped (read with the per-rule counters).
    let series = r#"weir_packet_in_meter_dropped_total{meter="audit"}"#;
    let deadline = Instant::now() + Duration::from_secs(5);
    while value(&scrape(&r, &node), series) < metered as f64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(value(&scrape(&r, &node), series), metered as f64, "{series}");
    assert!(
        worst_during <= worst_quiet + Duration::from_millis(100),
        "the agent realized changes {worst_during:?} late under the flood (quiet: {worst_quiet:?})"
    );
}
