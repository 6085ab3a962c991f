//! The agents' watches against a real kube-apiserver, on a 2-node testbed in cluster mode
//! (`weir testbed up --kube`) with real traffic:
//! - the API server restarts right after policies changed, twice: no change is lost, and a
//!   pair denied throughout never gets a packet through (probed every 20 ms);
//! - a watch that expires with `410 Gone` (etcd compacted past it, as its periodic compaction
//!   does) makes the agents relist, and a relist that finds nothing new sends no flow_mod;
//! - 1,000 pods created in a burst are realized (time to realized and flow_mods per pod are
//!   printed).
//!
//! Skips (saying why) only when the programs are not on PATH and `WEIR_REQUIRE_KUBE` is unset.
mod common;

use common::{Probes, Running};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use testbed::command::run_with_input;
use testbed::kube::Binaries;
use testbed::kube_source;

const SYNC: Duration = Duration::from_secs(60);
/// How long agents get to notice a restarted API server and relist.
const RELIST: Duration = Duration::from_secs(60);

/// x/a accepts only from its own namespace: y/a → x/a is denied throughout.
const GUARD_XA: &str = "\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: guard-a, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress: [{from: [{podSelector: {}}]}]
";

/// x/b accepts from namespace `ns` only.
fn limit_b(ns: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: limit-b, namespace: x}}\nspec:\n  \
         podSelector: {{matchLabels: {{pod: b}}}}\n  policyTypes: [Ingress]\n  ingress: [{{from: [{{namespaceSelector: \
         {{matchLabels: {{ns: '{ns}'}}}}}}]}}]\n"
    )
}

/// x/c accepts nothing.
const CLOSE_C: &str = "\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: close-c, namespace: x}
spec:
  podSelector: {matchLabels: {pod: c}}
  policyTypes: [Ingress]
";

fn write(r: &Running, name: &str, text: &str) -> PathBuf {
    let path = r.tmp.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Through the API server, without waiting for the agents.
fn apply_now(r: &Running, files: &[PathBuf]) {
    kube_source::apply(r.tb.state(), files).unwrap_or_else(|e| panic!("{e}"));
}

/// TCP port 80 allowed, for each (from, to).
fn allowed(r: &Running, pairs: &[(&str, &str)]) -> Vec<bool> {
    pairs.iter().map(|(from, to)| r.tcp_allowed(from, to)).collect()
}

/// A counter of `node`'s agent (its metrics endpoint, inside the node's namespace).
fn counter(r: &Running, node: &str, name: &str) -> f64 {
    let out = r.tb.command(node, "curl").unwrap().args(["-sS", "http://127.0.0.1:9810/metrics"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.split_whitespace().next() == Some(name));
    line.and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or_else(|| panic!("no {name} on {node}: {text}"))
}

fn flow_mods(r: &Running) -> BTreeMap<String, f64> {
    r.tb.nodes().iter().map(|n| (n.name.clone(), counter(r, &n.name, "weir_flow_mods_sent_total"))).collect()
}

fn generations(r: &Running) -> Vec<u64> {
    r.tb.nodes().iter().map(|n| testbed::manifests::read_status(n).unwrap().generation).collect()
}

#[test]
fn an_api_server_restart_right_after_policy_changes_loses_none_and_denied_traffic_never_passes() {
    if !Binaries::available_for_tests() {
        return;
    }
    let mut r = Running::up_kube('r');
    r.tb.sync(SYNC).unwrap();
    let guard = write(&r, "guard.yaml", GUARD_XA);
    r.tb.apply(&[guard], SYNC).unwrap();
    let pairs = [("y/a", "x/a"), ("y/a", "x/b"), ("z/a", "x/b"), ("y/a", "x/c")];
    assert_eq!(allowed(&r, &pairs), [false, true, true, true]);
    let probes = Probes::start(&r, "y/a", "x/a");

    // Written, then the API server restarts at once: the agents may have seen any part.
    let (b, c) = (write(&r, "limit-b.yaml", &limit_b("y")), write(&r, "close-c.yaml", CLOSE_C));
    apply_now(&r, &[b.clone(), c.clone()]);
    let restart = Instant::now();
    r.tb.restart_apiserver().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("API server restarted in {:.1} s", restart.elapsed().as_secs_f64());
    r.tb.sync(SYNC).expect("the agents realize what was written before the restart");
    assert_eq!(allowed(&r, &pairs), [false, true, false, false], "limit-b (from y) and close-c are in force");

    // Changed and deleted, then restarted again.
    std::fs::write(&b, limit_b("z")).unwrap();
    apply_now(&r, &[b]);
    let (deleted_names, deleted) = kube_source::delete(r.tb.state(), &[c]).unwrap();
    assert_eq!(deleted_names, ["close-c.yaml"]);
    r.tb.restart_apiserver().unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    r.tb.sync_deleted(&deleted, SYNC).expect("the agents realize what was changed before the second restart");
    eprintln!("in force {:.1} s after the second restart ({} object(s) deleted)", started.elapsed().as_secs_f64(), deleted.len());
    assert_eq!(allowed(&r, &pairs), [false, false, true, true], "limit-b (from z) in force, close-c gone");

    let timeline = probes.stop();
    eprintln!("{} probes of y/a -> x/a over both restarts", timeline.0.len());
    assert!(timeline.0.len() > 50, "probed throughout");
    assert_eq!(timeline.passed(), 0, "the denied pair never got through");
}

#[test]
fn a_watch_expired_with_410_gone_relists_and_sends_no_flow_mod() {
    if !Binaries::available_for_tests() {
        return;
    }
    let mut r = Running::up_kube('g');
    let guard = write(&r, "guard.yaml", GUARD_XA);
    r.tb.apply(&[guard], SYNC).unwrap();
    let before = (flow_mods(&r), generations(&r));
    let relists_before = relist_lines(&r);

    // Other writes move etcd past every agent's last resourceVersion; compacting there makes
    // each resumed watch `410 Gone`.
    let kubectl = |args: &[&str], input: &str| run_with_input(r.tb.kubectl().unwrap().args(args), input).unwrap_or_else(|e| panic!("{e}"));
    for i in 0..3 {
        kubectl(
            &["apply", "-f", "-"],
            &format!("{{apiVersion: v1, kind: ConfigMap, metadata: {{name: bump, namespace: default}}, data: {{i: '{i}'}}}}"),
        );
    }
    let revision = r.tb.state().kube.as_ref().unwrap().compact_etcd().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("etcd compacted at revision {revision}");
    r.tb.restart_apiserver().unwrap_or_else(|e| panic!("{e}"));

    let started = Instant::now();
    let kinds = ["Node", "Namespace", "Pod", "NetworkPolicy"];
    // A watch that resumes from a bookmark at the compaction revision itself is still valid, so
    // not every kind need expire: every agent must relist (the 410 path), and stay current.
    let relisted =
        |r: &Running| relist_lines(r).iter().zip(&relists_before).all(|(now, was)| kinds.iter().any(|k| count(now, k) > count(was, k)));
    while !relisted(&r) {
        assert!(started.elapsed() < RELIST, "the agents did not relist every kind: {:?}", relist_lines(&r));
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("every agent relisted {:.1} s after the restart: {:?}", started.elapsed().as_secs_f64(), relist_lines(&r));
    for lines in relist_lines(&r) {
        assert!(lines.iter().all(|l| l.contains("changed=false")), "a relist of the same objects is no change: {lines:?}");
    }
    r.tb.sync(SYNC).expect("the agents still realize a sync token");
    assert_eq!((flow_mods(&r), generations(&r)), before, "not one flow_mod, no new generation");
    assert_eq!(allowed(&r, &[("y/a", "x/a"), ("x/b", "x/a")]), [false, true]);
}

/// Each node's agent log lines about a relist.
fn relist_lines(r: &Running) -> Vec<Vec<String>> {
    r.tb.nodes()
        .iter()
        .map(|n| {
            let log = std::fs::read_to_string(n.dir.join("agent.log")).unwrap_or_default();
            log.lines().filter(|l| l.contains("relisted")).map(plain).collect()
        })
        .collect()
}

/// A log line without its terminal colours (`ESC [ ... m`).
fn plain(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}

fn count(lines: &[String], kind: &str) -> usize {
    let field = format!("kind=\"{kind}\"");
    lines.iter().filter(|l| l.contains(&field)).count()
}

#[test]
fn a_thousand_pods_created_in_a_burst_are_realized() {
    if !Binaries::available_for_tests() {
        return;
    }
    const PODS: usize = 1000;
    let r = Running::up_kube('b');
    // x/a accepts from the burst's pods: each one's address is in its rule's address set.
    let guard = write(
        &r,
        "from-burst.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: from-burst, namespace: x}\nspec:\n  \
         podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Ingress]\n  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: burst}}}]}]\n",
    );
    r.tb.apply(&[guard], SYNC).unwrap();
    let before = flow_mods(&r);
    let x_a = r.tb.pod("x/a").unwrap().node.clone();
    let flows_on = |r: &Running| testbed::manifests::read_status(r.tb.node(&x_a).unwrap()).map_or(0, |s| s.flows.values().sum::<u64>());
    let flows_before = flows_on(&r);

    let ip = |i: usize| format!("10.250.{}.{}", i / 250, i % 250 + 1);
    let mut pods = String::from("apiVersion: v1\nkind: Namespace\nmetadata: {name: burst, labels: {ns: burst}}\n");
    let mut status = Vec::new();
    for i in 0..PODS {
        let node = &r.tb.nodes()[i % 2].name;
        pods.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: burst, labels: {{app: burst}}}}\n\
             spec: {{nodeName: {node}, containers: [{{name: c, image: none}}]}}\n"
        ));
        status.push(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("p{i}"), "namespace": "burst"},
            "status": {"phase": "Running", "podIP": ip(i), "podIPs": [{"ip": ip(i)}]}}));
    }
    let file = write(&r, "burst.yaml", &pods);
    let started = Instant::now();
    apply_now(&r, &[file]);
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": status});
    let args = ["apply", "--server-side", "--field-manager=burst-kubelet", "--subresource=status", "-f", "-"];
    run_with_input(r.tb.kubectl().unwrap().args(args), &list.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let written = started.elapsed();
    // Each pod adds one address to x/a's rule: realized once its node's agent reports them.
    while flows_on(&r) < flows_before + PODS as u64 {
        assert!(started.elapsed() < SYNC * 3, "the burst is not realized on {x_a}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let flows_in = started.elapsed();
    r.tb.sync(SYNC).expect("the burst is realized");
    let realized = started.elapsed();
    let idle = Instant::now();
    r.tb.sync(SYNC).unwrap();
    let sync_alone = idle.elapsed();

    let flows = r.dump(&x_a);
    let seen: std::collections::BTreeSet<&str> =
        flows.split([',', ' ']).filter_map(|t| t.strip_prefix("nw_src=")).filter(|a| a.starts_with("10.250.")).collect();
    assert_eq!(seen.len(), PODS, "every burst pod's address is in x/a's ingress rule on {x_a}");
    let after = flow_mods(&r);
    for (node, n) in &after {
        eprintln!("{node}: {:.2} flow_mods per pod ({} for {PODS} pods)", (n - before[node]) / PODS as f64, n - before[node]);
    }
    eprintln!(
        "{PODS} pods: written through the API server (create, then status) in {:.1} s; their flows on {x_a} {:.2} s after the \
         last write; the testbed's sync token realized by both agents {:.1} s after the first write (a sync with nothing new takes {:.1} s)",
        written.as_secs_f64(),
        (flows_in - written).as_secs_f64(),
        realized.as_secs_f64(),
        sync_alone.as_secs_f64()
    );
}
