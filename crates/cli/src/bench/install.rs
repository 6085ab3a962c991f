//! `install`: one node's flow set of the synthetic cluster installed into a fresh
//! ovs-vswitchd by weir (one bundle through `agent::switch::Switch`) versus
//! `ovs-ofctl -O OpenFlow15 --bundle add-flows` of the same flows as text, each on its own
//! fresh switch, in interleaved rounds; the ratio of the medians is the figure.
use super::scale::{self, Scale};
use super::{Check, Report, fmt_num, median, ms};
use agent::switch::Switch;
use openflow::FlowMod;
use serde_json::json;
use std::path::Path;
use std::time::Instant;

async fn fresh_switch() -> anyhow::Result<testbed::TestSwitch> {
    Ok(tokio::task::spawn_blocking(testbed::TestSwitch::with_bridge).await??)
}

fn target(sw: &testbed::TestSwitch) -> String {
    format!("unix:{}", sw.ovs.mgmt_socket("br-int").display())
}

/// Connect, handshake, one bundle, commit acknowledged.
async fn weir_side(mods: &[FlowMod]) -> anyhow::Result<(f64, testbed::TestSwitch)> {
    let sw = fresh_switch().await?;
    let t = Instant::now();
    let conn = Switch::connect(&target(&sw)).await?;
    conn.bundle(mods).await?;
    Ok((ms(t.elapsed()), sw))
}

/// `ovs-ofctl --bundle add-flows` of the text file.
async fn ofctl_side(file: &Path) -> anyhow::Result<(f64, testbed::TestSwitch)> {
    let sw = fresh_switch().await?;
    let t = Instant::now();
    let out = tokio::process::Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow15", "--bundle", "add-flows", &target(&sw)])
        .arg(file)
        .output()
        .await?;
    anyhow::ensure!(out.status.success(), "ovs-ofctl add-flows failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok((ms(t.elapsed()), sw))
}

fn flow_count(sw: &testbed::TestSwitch) -> anyhow::Result<usize> {
    let dump = sw.ovs.ofctl("dump-flows", "br-int", &["--no-stats"])?;
    Ok(dump.lines().filter(|l| l.contains("actions=")).count())
}

pub(crate) async fn run(quick: bool, seed: u64, rounds: usize) -> anyhow::Result<Report> {
    let spec = scale::spec(quick, seed);
    let s = Scale::new(spec)?;
    let t = Instant::now();
    let compiled = s.compile();
    let compile_ms = ms(t.elapsed());
    let mods: Vec<FlowMod> = compiled.flows.iter().cloned().map(FlowMod::add).collect();
    let dir = super::Scratch::new("install")?;
    let file = dir.path().join("flows.txt");
    let mut text = String::with_capacity(mods.len() * 120);
    for f in compiled.flows.iter() {
        openflow::text::format_flow(&mut text, f, None);
        text.push('\n');
    }
    std::fs::write(&file, &text)?;

    let (mut weir, mut ofctl) = (Vec::new(), Vec::new());
    let mut report = Report::new(&["round", "first", "weir bundle ms", "ovs-ofctl --bundle ms", "weir / ovs-ofctl"]);
    for round in 0..rounds {
        super::progress(format_args!("install: round {} of {rounds}", round + 1));
        let weir_first = round % 2 == 0;
        let (w, o) = if weir_first {
            let (w, sw) = weir_side(&mods).await?;
            if round == 0 {
                anyhow::ensure!(flow_count(&sw)? == mods.len(), "weir installed {} of {} flows", flow_count(&sw)?, mods.len());
            }
            drop(sw);
            let (o, sw) = ofctl_side(&file).await?;
            if round == 0 {
                anyhow::ensure!(flow_count(&sw)? == mods.len(), "ovs-ofctl installed {} of {} flows", flow_count(&sw)?, mods.len());
            }
            (w, o)
        } else {
            let (o, _sw) = ofctl_side(&file).await?;
            drop(_sw);
            let (w, _sw) = weir_side(&mods).await?;
            (w, o)
        };
        report.row(vec![
            round.to_string(),
            (if weir_first { "weir" } else { "ovs-ofctl" }).into(),
            fmt_num(w),
            fmt_num(o),
            format!("{:.2}", w / o),
        ]);
        weir.push(w);
        ofctl.push(o);
    }
    let (wm, om) = (median(&weir), median(&ofctl));
    report.row(vec!["median".into(), "".into(), fmt_num(wm), fmt_num(om), format!("{:.2}", wm / om)]);
    report.notes.push(format!(
        "{} flows of node {} of a {}-pod / {}-policy cluster (seed {seed}); each side on a fresh ovs-vswitchd \
         (userspace datapath) in its own namespace, both include connecting; compiling this flow set took {:.1} ms \
         ({:.2}x the ovs-ofctl install).",
        mods.len(),
        scale::NODE,
        spec.pods,
        spec.policies,
        compile_ms,
        compile_ms / om
    ));
    report.checks.push(Check::at_most("install time weir / ovs-ofctl --bundle (medians)", wm / om, "x", 1.1));
    report.checks.push(Check::at_most("compile time / ovs-ofctl install time", compile_ms / om, "x", 0.5));
    report.data = json!({
        "flows": mods.len(), "pods": spec.pods, "policies": spec.policies, "seed": seed,
        "weir_ms": weir, "ofctl_ms": ofctl, "weir_median_ms": wm, "ofctl_median_ms": om,
        "ratio": wm / om, "compile_ms": compile_ms,
    });
    Ok(report)
}
