//! `enforcement-latency`: on a 2-node testbed with weir's agents, the time from writing a
//! policy into the agents' manifests to the first probe that sees it enforced — a deny (a
//! default-deny of the server) and then an allow (from the client) — the way Kubernetes SIG
//! scalability defines NetworkPolicy enforcement latency. Probes are new TCP connections,
//! launched every few ms, each on its own thread; "enforced" is the launch time of the first
//! probe that, with the next few, shows the new verdict.
//!
//! Baseline, interleaved with the trials: the same trigger and probes, but the change made
//! by hand with `ovs-ofctl add-flow`/`del-flows` (a drop flow in table 0 of the server's
//! node): what OVS, the probe and a process spawn cost without weir.
use super::bed::Bed;
use super::{Report, fmt_num, median, ms, percentile};
use serde_json::json;
use std::net::Ipv4Addr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const MODEL: &str = "namespaces:\n  x: {ns: x}\npods:\n  client: {app: client}\n  server: {app: server}\nports: [80]\nprotocols: [TCP]\n";
const DENY: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-server, namespace: x}\nspec:\n  podSelector: {matchLabels: {app: server}}\n  policyTypes: [Ingress]\n";
const ALLOW: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: allow-client, namespace: x}\nspec:\n  podSelector: {matchLabels: {app: server}}\n  ingress:\n  - from: [{podSelector: {matchLabels: {app: client}}}]\n    ports: [{port: 80, protocol: TCP}]\n";

/// Time between probe launches.
const INTERVAL: Duration = Duration::from_millis(2);
/// How long one probe waits for the handshake.
const PROBE_TIMEOUT: Duration = Duration::from_millis(150);
/// Probes in a row that must agree.
const STREAK: usize = 5;
/// Give up on one measurement after this long.
const GIVE_UP: Duration = Duration::from_secs(15);

struct Target {
    netns: String,
    src: Ipv4Addr,
    dst: Ipv4Addr,
}

/// Launches probes from `trigger` on until `STREAK` consecutive ones show `want`; returns
/// the delay from `trigger` to the launch of the first of them.
fn until(t: &Target, trigger: Instant, want: bool) -> anyhow::Result<f64> {
    let (tx, rx) = mpsc::channel::<(usize, Instant, bool)>();
    let mut results: Vec<Option<(Instant, bool)>> = Vec::new();
    let mut next_launch = trigger;
    loop {
        anyhow::ensure!(trigger.elapsed() < GIVE_UP, "no stable {} after {GIVE_UP:?}", if want { "allow" } else { "deny" });
        let now = Instant::now();
        if now >= next_launch {
            let (tx, netns, src, dst, i) = (tx.clone(), t.netns.clone(), t.src, t.dst, results.len());
            results.push(None);
            std::thread::Builder::new().stack_size(128 * 1024).spawn(move || {
                let start = Instant::now();
                let ok = testbed::netns::enter_on_this_thread(&netns).is_ok()
                    && testbed::probe::probe_one(src, dst, 80, policy::Protocol::Tcp, PROBE_TIMEOUT).unwrap_or(false);
                let _ = tx.send((i, start, ok));
            })?;
            next_launch = now + INTERVAL;
        }
        while let Ok((i, start, ok)) = rx.recv_timeout(Duration::from_micros(200)) {
            results[i] = Some((start, ok));
        }
        // The first probe that starts a run of STREAK known results, all as wanted.
        for i in 0..results.len().saturating_sub(STREAK - 1) {
            let run = &results[i..i + STREAK];
            if run.iter().all(|r| matches!(r, Some((_, ok)) if *ok == want)) {
                let (start, _) = results[i].expect("checked");
                return Ok(ms(start.duration_since(trigger)));
            }
        }
    }
}

fn ofctl(sw: &testbed::OvsSwitch, cmd: &str, args: &[&str]) -> anyhow::Result<()> {
    sw.ofctl(cmd, "br-int", args).map_err(|e| anyhow::anyhow!("ovs-ofctl {cmd}: {e}"))?;
    Ok(())
}

pub(crate) fn run(quick: bool, trials: Option<usize>) -> anyhow::Result<Report> {
    let trials = trials.unwrap_or(if quick { 5 } else { 50 });
    let bed = Bed::up('e', MODEL, 2)?;
    let (client, server) = (bed.tb.pod("x/client")?.clone(), bed.tb.pod("x/server")?.clone());
    let target = Target { netns: client.netns.clone(), src: client.ip, dst: server.ip };
    let sw = bed.tb.switch(&server.node)?;
    let drop_flow = format!("table=0,priority=65535,tcp,nw_src={},nw_dst={},tp_dst=80", client.ip, server.ip);
    anyhow::ensure!(until(&target, Instant::now(), true)? < 5000.0, "client cannot reach server before any policy");

    let (mut deny, mut allow, mut base_deny, mut base_allow) = (vec![], vec![], vec![], vec![]);
    for trial in 0..trials {
        super::progress(format_args!("enforcement: trial {} of {trials}", trial + 1));
        let t = Instant::now();
        bed.write_now("deny.yaml", DENY)?;
        deny.push(until(&target, t, false)?);
        let t = Instant::now();
        bed.write_now("allow.yaml", ALLOW)?;
        allow.push(until(&target, t, true)?);
        bed.remove_now("allow.yaml")?;
        bed.remove_now("deny.yaml")?;
        bed.tb.sync(Duration::from_secs(60))?;

        let t = Instant::now();
        ofctl(&sw, "add-flow", &[&format!("{drop_flow},actions=drop")])?;
        base_deny.push(until(&target, t, false)?);
        let t = Instant::now();
        ofctl(&sw, "del-flows", &["--strict", &drop_flow])?;
        base_allow.push(until(&target, t, true)?);
    }
    let mut report = Report::new(&["change", "trials", "p50 ms", "p99 ms", "baseline p50 ms", "baseline p99 ms", "p50 / baseline p50"]);
    for (name, v, b) in [("deny (default-deny written)", &deny, &base_deny), ("allow (allow rule written)", &allow, &base_allow)] {
        report.row(vec![
            name.into(),
            v.len().to_string(),
            fmt_num(median(v)),
            fmt_num(percentile(v, 99.0)),
            fmt_num(median(b)),
            fmt_num(percentile(b, 99.0)),
            format!("{:.2}", median(v) / median(b)),
        ]);
    }
    report.notes.push(format!(
        "2-node testbed (GENEVE; client on {}, server on {}), weir agents in file mode (manifests watched, 2 ms debounce, 5 ms coalescing). \
         Trigger = the policy file written atomically into both agents' manifests; probes = new TCP connections launched every {} ms \
         ({} ms timeout); enforced = launch of the first of {STREAK} consecutive probes with the new verdict. Baseline = the same probes, \
         with a drop flow added/removed by `ovs-ofctl` (process spawn included) instead of a policy.",
        client.node,
        server.node,
        INTERVAL.as_millis(),
        PROBE_TIMEOUT.as_millis()
    ));
    report.data = json!({"deny_ms": deny, "allow_ms": allow, "baseline_deny_ms": base_deny, "baseline_allow_ms": base_allow});
    Ok(report)
}
