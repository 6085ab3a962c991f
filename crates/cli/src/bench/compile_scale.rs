//! `compile-scale`: compile time, peak memory and flows per table of one node of synthetic
//! clusters, against the flow count a naive cross-product compiler would emit for the same
//! rules (computed, not installed).
//!
//! Each size runs in a child process (`--one SIZE`) so its peak RSS (`VmHWM`) is its own and
//! not the largest size's so far.
use super::scale::{self, Scale};
use super::{Check, Report, fmt_num, median, ms, peak_rss_mib};
use pipeline::Table;
use pipeline::address::subtract;
use pipeline::port_range::port_masks;
use policy::{ConcreteRule, ConcreteServices, Endpoint, PeerAddrs};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Instant;

/// Compiles per size, taking the median time.
const REPEATS: usize = 3;

/// The sizes of a run.
fn sizes(quick: bool) -> &'static [&'static str] {
    if quick { &["1000x100", "2000x200"] } else { &["1000x100", "1000x1000", "10000x100", "10000x1000"] }
}

/// Flows a compiler without conjunctions emits for one rule: every applied-to endpoint ×
/// every peer CIDR × every service match, on this node.
fn cross_product(rule: &ConcreteRule, topo: &pipeline::Topology) -> u64 {
    if rule.action != policy::Action::Allow {
        return 0;
    }
    let local = rule
        .applied_to
        .iter()
        .filter(|e| matches!(e, Endpoint::Pod(k) if topo.local_pods.contains_key(k)))
        .count() as u64;
    let peers = match &rule.peers {
        PeerAddrs::Any => 1,
        PeerAddrs::Blocks(blocks) => {
            let cidrs: BTreeSet<_> =
                blocks.iter().flat_map(|b| subtract(b.cidr, &b.except)).filter(|c| c.is_ipv4()).collect();
            cidrs.len() as u64
        }
    };
    let services = match &rule.services {
        ConcreteServices::Any => 1,
        ConcreteServices::List(list) => {
            let matches: BTreeSet<_> = list
                .iter()
                .flat_map(|s| {
                    let masks = if s.is_any_port() { vec![(0, 0)] } else { port_masks(s.lo, s.hi).iter().map(|m| (m.value, m.mask)).collect() };
                    masks.into_iter().map(move |m| (s.protocol, m))
                })
                .collect();
            matches.len() as u64
        }
    };
    local * peers * services
}

/// Child mode: one size, printed as one JSON line.
pub(crate) fn one(size: &str, seed: u64) -> anyhow::Result<()> {
    let spec = scale::parse_size(size, seed)?;
    let started = Instant::now();
    let s = Scale::new(spec)?;
    let generate_ms = ms(started.elapsed());
    let rss_model = peak_rss_mib();
    let mut times = Vec::new();
    let mut compiled = None;
    for _ in 0..REPEATS {
        drop(compiled.take());
        let t = Instant::now();
        compiled = Some(s.compile());
        times.push(ms(t.elapsed()));
    }
    let compiled = compiled.expect("compiled at least once");
    let peak = peak_rss_mib();
    // The cross product is counted over every concrete rule of the cluster (it is 0 for
    // rules without a local endpoint).
    let rules = s.cluster.rules();
    let concrete = rules.concrete(&s.cluster);
    let cross: u64 = concrete.iter().map(|r| cross_product(r, &s.topo)).sum();
    let counts = compiled.flows.counts();
    let rule_flows: usize = [Table::EgressRule, Table::IngressRule].iter().map(|t| counts.get(t).copied().unwrap_or(0)).sum();
    let per_table: serde_json::Map<String, Value> = counts.iter().map(|(t, n)| (t.name().to_string(), json!(n))).collect();
    let out = json!({
        "pods": spec.pods,
        "policies": spec.policies,
        "seed": seed,
        "nodes": s.syn.nodes.len(),
        "local_pods": s.topo.local_pods.len(),
        "rules": rules.rules.len(),
        "concrete_rules": concrete.len(),
        "conjunctions": compiled.rules.len(),
        "generate_ms": generate_ms,
        "compile_ms": times,
        "compile_ms_median": median(&times),
        "rss_after_model_mib": rss_model,
        "peak_rss_mib": peak,
        "flows": compiled.flows.len(),
        "rule_table_flows": rule_flows,
        "cross_product_rule_flows": cross,
        "flows_per_table": per_table,
    });
    println!("{out}");
    Ok(())
}

/// Parent mode: every size in its own child process.
pub(crate) fn run(quick: bool, seed: u64) -> anyhow::Result<Report> {
    let exe = std::env::current_exe()?;
    let mut report = Report::new(&[
        "pods x policies",
        "local pods",
        "compile ms",
        "peak RSS MiB",
        "flows",
        "rule-table flows",
        "cross product",
        "fewer",
        "flows per table",
    ]);
    let mut results = Vec::new();
    for size in sizes(quick) {
        super::progress(format_args!("compile-scale: {size} (pods x policies)"));
        let out = std::process::Command::new(&exe)
            .args(["bench", "compile-scale", "--one", size, "--seed", &seed.to_string()])
            .stderr(std::process::Stdio::inherit())
            .output()?;
        anyhow::ensure!(out.status.success(), "compile-scale --one {size} failed: {}", out.status);
        let line = String::from_utf8(out.stdout)?;
        let v: Value = serde_json::from_str(line.lines().last().unwrap_or(""))
            .map_err(|e| anyhow::anyhow!("compile-scale --one {size}: bad output {line:?}: {e}"))?;
        let rule_flows = v["rule_table_flows"].as_f64().unwrap_or(0.0);
        let cross = v["cross_product_rule_flows"].as_f64().unwrap_or(0.0);
        let fewer = cross / rule_flows.max(1.0);
        let tables: Vec<String> = v["flows_per_table"]
            .as_object()
            .map(|m| m.iter().filter(|(_, n)| n.as_u64().unwrap_or(0) >= 10).map(|(t, n)| format!("{t} {n}")).collect())
            .unwrap_or_default();
        report.row(vec![
            size.to_string(),
            v["local_pods"].to_string(),
            fmt_num(v["compile_ms_median"].as_f64().unwrap_or(f64::NAN)),
            fmt_num(v["peak_rss_mib"].as_f64().unwrap_or(f64::NAN)),
            v["flows"].to_string(),
            v["rule_table_flows"].to_string(),
            v["cross_product_rule_flows"].to_string(),
            format!("{fewer:.1}x"),
            tables.join(", "),
        ]);
        if *size == sizes(quick).last().copied().unwrap_or_default() {
            let compile = v["compile_ms_median"].as_f64().unwrap_or(f64::NAN);
            report.checks.push(Check::below(&format!("compile time at {size}"), compile, "ms", 1000.0));
            report.checks.push(Check::below(&format!("peak RSS at {size}"), v["peak_rss_mib"].as_f64().unwrap_or(f64::NAN), "MiB", 300.0));
            report.checks.push(Check::at_least(&format!("cross-product flows / weir rule-table flows at {size}"), fewer, "x", 50.0));
        }
        results.push(v);
    }
    report.notes.push(format!(
        "One node ({}) of each cluster; {} pods per node. Compile = a NodeCompiler built from scratch (every policy's applied-to selection; rules, peers and flows for the policies applied to a local pod), single thread, median of {REPEATS}. \
         Peak RSS is the child process's VmHWM, including generating and validating the cluster. \
         Cross product = per rule, local applied-to endpoints x peer CIDRs (excepts subtracted) x service matches (ranges as masks), \
         compared with the flows weir emits in EgressRule + IngressRule.",
        scale::NODE,
        policy::synthetic::PODS_PER_NODE
    ));
    report.data = json!({ "sizes": results });
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cross_product_multiplies_local_endpoints_peers_and_port_masks() {
        let s = Scale::new(policy::synthetic::Spec { pods: 300, policies: 0, seed: 1 }).unwrap();
        let local: Vec<_> = s.topo.local_pods.keys().take(2).cloned().collect();
        let remote = s.cluster.pods.keys().find(|k| !s.topo.local_pods.contains_key(*k)).unwrap().clone();
        let rule = ConcreteRule {
            rule: policy::RuleId("r".into()),
            part: 0,
            origin: policy::Origin {
                policy: policy::PolicyRef { kind: policy::PolicyKind::NetworkPolicy, namespace: None, name: "p".into() },
                rule: "ingress[0]".into(),
            },
            direction: policy::Direction::Ingress,
            tier: policy::Tier::NETWORK_POLICY,
            priority: 0,
            action: policy::Action::Allow,
            applied_to: local.iter().cloned().chain([remote]).map(Endpoint::Pod).collect(),
            // 10.0.0.0/8 except 10.0.0.0/9 leaves one CIDR; plus one host.
            peers: PeerAddrs::Blocks(vec![
                policy::IpBlock { cidr: "10.0.0.0/8".parse().unwrap(), except: vec!["10.0.0.0/9".parse().unwrap()] },
                policy::IpBlock { cidr: "192.168.0.1/32".parse().unwrap(), except: vec![] },
            ]),
            // 8000-8003 is one masked match; 53/UDP another.
            services: ConcreteServices::List(vec![
                policy::PortRange { protocol: policy::Protocol::Tcp, lo: 8000, hi: 8003 },
                policy::PortRange { protocol: policy::Protocol::Udp, lo: 53, hi: 53 },
            ]),
            audit: None,
        };
        assert_eq!(cross_product(&rule, &s.topo), 2 * 2 * 2);
    }
}
