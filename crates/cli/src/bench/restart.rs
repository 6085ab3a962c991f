//! `restart`: restart the agent of a node holding the synthetic cluster's full flow set, and
//! measure the time to full reconciliation and the flow_mods sent (0 when nothing changed),
//! while an established TCP stream keeps flowing and a denied pod keeps probing (none may
//! pass). Baseline in the same run: `ovs-ofctl --bundle replace-flows` with the switch's own
//! flows (the same "dump, diff, apply nothing" job done by OVS's tool).
//!
//! The node is a testbed node with three real pods (client, server, intruder) plus, as OVS
//! ports with the CNI contract's external_ids, the synthetic cluster's pods of one node, so
//! the agent compiles that node's whole flow set.
use super::bed::Bed;
use super::scale::{self, Scale};
use super::{Check, Report, fmt_num, ms};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const MODEL: &str = "namespaces:\n  x: {ns: x}\npods:\n  client: {app: client}\n  server: {app: server}\n  intruder: {app: intruder}\nports: [80]\nprotocols: [TCP]\n";
const POLICY: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: server-from-client, namespace: x}\nspec:\n  podSelector: {matchLabels: {app: server}}\n  ingress:\n  - from: [{podSelector: {matchLabels: {app: client}}}]\n    ports: [{port: 80}]\n";

/// The text without ANSI colour sequences (the agent's log is coloured even into a file).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // ESC [ params final-byte
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The flows as sorted lines (the dump's order within a priority is not stable).
fn sorted(dump: &str) -> Vec<&str> {
    let mut v: Vec<&str> = dump.lines().filter(|l| l.contains("actions=")).map(str::trim).collect();
    v.sort_unstable();
    v
}

fn flows_on(sw: &testbed::OvsSwitch) -> anyhow::Result<usize> {
    Ok(sw.ofctl("dump-flows", "br-int", &["--no-stats"])?.lines().filter(|l| l.contains("actions=")).count())
}

/// The `elapsed_ms` of the first line of the agent log after byte `from` that says `what`.
fn phase_ms(log: &std::path::Path, from: usize, what: &str) -> Option<f64> {
    let text = std::fs::read(log).unwrap_or_default();
    let tail = strip_ansi(&String::from_utf8_lossy(text.get(from..).unwrap_or_default()));
    let line = tail.lines().find(|l| l.contains(what))?;
    line.split("elapsed_ms=").nth(1)?.split(|c: char| !(c.is_ascii_digit() || c == '.')).next()?.parse().ok()
}

/// The `key=value` fields of the first line of the agent log after byte `from` that says `what`.
fn log_fields(log: &std::path::Path, from: usize, what: &str) -> Option<std::collections::BTreeMap<String, String>> {
    let line = agent_log(log, from).into_iter().find(|l| l.contains(what))?;
    let rest = &line[line.find(what)? + what.len()..];
    Some(rest.split_whitespace().filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

/// The restarted agent's log lines (after byte `from`), without colour codes.
fn agent_log(log: &std::path::Path, from: usize) -> Vec<String> {
    let text = std::fs::read(log).unwrap_or_default();
    strip_ansi(&String::from_utf8_lossy(text.get(from..).unwrap_or_default())).lines().map(str::to_string).collect()
}

/// The `flow_mods=N` of each `realized` line of the agent log after byte `from`.
fn flow_mods_logged(log: &std::path::Path, from: usize) -> Vec<usize> {
    let text = std::fs::read(log).unwrap_or_default();
    let tail = strip_ansi(&String::from_utf8_lossy(text.get(from..).unwrap_or_default()));
    tail.lines()
        .filter(|l| l.contains("realized"))
        .filter_map(|l| l.split("flow_mods=").nth(1)?.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .collect()
}

pub(crate) fn run(quick: bool, seed: u64) -> anyhow::Result<Report> {
    let spec = scale::spec(quick, seed);
    let s = Scale::new(spec)?;
    let bed = Bed::up('r', MODEL, 1)?;
    let node = bed.tb.nodes()[0].clone();
    let sw = bed.tb.switch(&node.name)?;

    // The synthetic node's pods as ports on this bridge (one transaction).
    let local: Vec<_> = s.syn.pods.iter().filter(|p| p.node == scale::NODE).collect();
    let mut args: Vec<String> = vec!["--timeout=300".into()];
    let names: Vec<String> = (0..local.len()).map(|k| format!("rs{k}")).collect();
    let ips: Vec<[std::net::Ipv4Addr; 1]> = local.iter().map(|p| [p.ip]).collect();
    let macs: Vec<String> = local.iter().map(|p| testbed::layout::mac_for(p.ip)).collect();
    for (k, p) in local.iter().enumerate() {
        let port = testbed::cni::PodPort { interface: &names[k], namespace: &p.namespace, name: &p.name, ips: &ips[k], mac: &macs[k] };
        args.extend(port.vsctl_args());
        args.extend(["--".into(), "set".into(), "Interface".into(), names[k].clone(), "type=internal".into()]);
    }
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    sw.vsctl(&arg_refs)?;
    let yaml = policy::synthetic::to_yaml(&s.syn.objects())?;
    bed.apply("synthetic.yaml", &yaml)?;
    bed.apply("policy.yaml", POLICY)?;
    let flows_before = flows_on(&sw)?;
    let dump_before = sw.ofctl("dump-flows", "br-int", &["--no-stats", "--no-names"])?;

    // Traffic during the restart: an established stream, and a denied pod probing.
    let stream = testbed::stream::Stream::start(&bed.tb, "x/client", "x/server", 80, Duration::from_secs(2))?;
    let intruder = bed.tb.pod("x/intruder")?.clone();
    let server_ip = bed.tb.pod("x/server")?.ip;
    let stop = Arc::new(AtomicBool::new(false));
    let (probes, leaks) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let prober = {
        let (stop, probes, leaks) = (stop.clone(), probes.clone(), leaks.clone());
        std::thread::spawn(move || -> anyhow::Result<()> {
            testbed::netns::enter_on_this_thread(&intruder.netns)?;
            while !stop.load(Ordering::Relaxed) {
                if testbed::probe::probe_one(intruder.ip, server_ip, 80, policy::Protocol::Tcp, Duration::from_millis(50))? {
                    leaks.fetch_add(1, Ordering::Relaxed);
                }
                probes.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(())
        })
    };
    std::thread::sleep(Duration::from_millis(500));

    let log = node.dir.join("agent.log");
    let status_file = testbed::manifests::status_file(&node);
    let mut tb = bed.tb.clone();
    super::progress("restart: stopping the agent and starting it again");
    tb.stop_agent(&node.name, Duration::from_secs(5))?;
    let _ = std::fs::remove_file(&status_file);
    let log_from = std::fs::metadata(&log).map(|m| m.len() as usize).unwrap_or(0);
    // The log parser must see the first agent's realizations, or a 0 below would mean nothing.
    anyhow::ensure!(!flow_mods_logged(&log, 0).is_empty(), "no `realized flow_mods=` lines in {}", log.display());
    let token = std::fs::read_to_string(testbed::manifests::manifests_dir(&node).join(testbed::manifests::SYNC_FILE))?;
    let t = Instant::now();
    tb.start_agent(&node.name)?;
    // Reconciled: the new agent reports the current token realized with every flow.
    let reconciled = loop {
        anyhow::ensure!(t.elapsed() < Duration::from_secs(120), "agent did not reconcile within 120 s");
        if let Some(st) = testbed::manifests::read_status(&node)
            && st.realized == Some(true)
            && st.source_token.as_deref() == Some(token.trim())
            && st.flows.values().sum::<u64>() as usize == flows_before
        {
            break t.elapsed();
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    prober.join().map_err(|_| anyhow::anyhow!("prober panicked"))??;
    let streamed = stream.stop();
    let bundles = flow_mods_logged(&log, log_from);
    let mods: usize = bundles.iter().sum();
    let flows_after = flows_on(&sw)?;
    let dump_after = sw.ofctl("dump-flows", "br-int", &["--no-stats", "--no-names"])?;

    super::progress("restart: the baseline, ovs-ofctl --bundle replace-flows");
    // Baseline: ovs-ofctl replace-flows of the same flows (nothing to change).
    let file = bed.scratch().join("flows.txt");
    std::fs::write(&file, &dump_before)?;
    let mgmt = format!("unix:{}", sw.mgmt_socket("br-int").display());
    let t = Instant::now();
    let out = std::process::Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow15", "--bundle", "replace-flows", &mgmt])
        .arg(&file)
        .output()?;
    let replace = t.elapsed();
    anyhow::ensure!(out.status.success(), "ovs-ofctl replace-flows: {}", String::from_utf8_lossy(&out.stderr));

    let mut report = Report::new(&["measure", "value"]);
    let rows: Vec<(&str, String)> = vec![
        ("flows installed (before / after)", format!("{flows_before} / {flows_after}")),
        ("flow set unchanged by the restart", (sorted(&dump_before) == sorted(&dump_after)).to_string()),
        ("agent start to full reconciliation", format!("{} ms", fmt_num(ms(reconciled)))),
        ("baseline: ovs-ofctl --bundle replace-flows", format!("{} ms", fmt_num(ms(replace)))),
        ("reconciliation / replace-flows", format!("{:.2}", ms(reconciled) / ms(replace))),
        ("bundles sent after the restart (flow_mods each)", format!("{} {:?}", bundles.len(), bundles)),
        ("flow_mods sent after the restart", mods.to_string()),
        ("stream: round trips, longest stall", format!("{}, {} ms", streamed.round_trips, fmt_num(ms(streamed.max_stall)))),
        ("stream error", streamed.error.clone().unwrap_or_else(|| "none".into())),
        ("denied probes during the restart (passed)", format!("{} ({})", probes.load(Ordering::Relaxed), leaks.load(Ordering::Relaxed))),
    ];
    for (k, v) in rows {
        report.row(vec![k.into(), v]);
    }
    // Where the restarted agent's time went, from its own log.
    let phases: Vec<(&str, Option<f64>)> = [
        "manifests read",
        "inputs compared with the record of the last realization",
        "installed flows read",
        "installed flows compared with the record of the last realization",
        "compiled from scratch",
    ]
    .into_iter()
    .map(|p| (p, phase_ms(&log, log_from, p)))
    .collect();
    report.row(vec![
        "agent phases (manifests read, inputs vs record, installed flows read, flows vs record, compiled)".into(),
        phases.iter().map(|(_, v)| v.map_or("?".to_string(), |v| format!("{} ms", fmt_num(v)))).collect::<Vec<_>>().join(", "),
    ]);
    // Whether the restarted agent took its manifests from its cache (and the view built from
    // it while starting) or parsed them.
    let cache = log_fields(&log, log_from, "manifest files taken from the cache and parsed");
    let field = |k: &str| cache.as_ref().and_then(|c| c.get(k).cloned()).unwrap_or_else(|| "?".into());
    report.row(vec![
        "manifest files from the agent's cache / parsed (view from the cache)".into(),
        format!("{} / {} ({})", field("from_store"), field("parsed"), field("view_from_store")),
    ]);
    report.notes.push(format!(
        "Node with {} synthetic pods of a {}-pod / {}-policy cluster (seed {seed}) as OVS ports, plus client, server and intruder pods; \
         the agent is stopped (SIGTERM) and started again; reconciled = its status reports the current manifests realized with every flow. \
         The stream's longest stall spans the restart (2 cores shared by the agent starting, OVS, the stream and the probes); the intruder probes every 5 ms.",
        local.len(),
        spec.pods,
        spec.policies
    ));
    report.checks.push(Check::at_most("flow_mods sent by the restarted agent", mods as f64, "", 0.0));
    report.checks.push(Check::at_most("denied probes that passed during the restart", leaks.load(Ordering::Relaxed) as f64, "", 0.0));
    report.checks.push(Check::at_most("established stream errors", f64::from(u8::from(streamed.error.is_some())), "", 0.0));
    report.checks.push(Check::at_most("reconciliation / ovs-ofctl replace-flows", ms(reconciled) / ms(replace), "x", 1.0));
    report.data = json!({
        "flows_before": flows_before, "flows_after": flows_after, "unchanged": sorted(&dump_before) == sorted(&dump_after),
        "reconcile_ms": ms(reconciled), "replace_flows_ms": ms(replace), "bundles": bundles, "flow_mods": mods,
        "stream_round_trips": streamed.round_trips, "stream_max_stall_ms": ms(streamed.max_stall), "stream_error": streamed.error,
        "denied_probes": probes.load(Ordering::Relaxed), "denied_passed": leaks.load(Ordering::Relaxed),
        "pods": spec.pods, "policies": spec.policies, "local_synthetic_pods": local.len(),
        "phases_ms": phases.iter().map(|(p, v)| (p.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "agent_log": agent_log(&log, log_from),
        "manifest_cache": cache,
    });
    Ok(report)
}

#[cfg(test)]
mod tests {
    #[test]
    fn log_fields_reads_the_key_values_after_the_message() {
        let dir = std::env::temp_dir().join(format!("weir-restart-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("agent.log");
        std::fs::write(&log, "old line\n2026 INFO agent::manifest_cache: \x1b[3mmanifest files taken from the cache and parsed\x1b[0m from_store=3 parsed=0 view_from_store=true\n").unwrap();
        let f = super::log_fields(&log, 9, "manifest files taken from the cache and parsed").unwrap();
        assert_eq!((f["from_store"].as_str(), f["parsed"].as_str(), f["view_from_store"].as_str()), ("3", "0", "true"));
        assert!(super::log_fields(&log, 0, "nothing like this").is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn colour_codes_are_stripped_from_log_lines() {
        assert_eq!(super::strip_ansi("\x1b[32m INFO\x1b[0m realized \x1b[3mflow_mods\x1b[0m\x1b[2m=\x1b[0m12"), " INFO realized flow_mods=12");
    }
}
