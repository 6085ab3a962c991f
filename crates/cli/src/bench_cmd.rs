//! `weir bench NAME`: benchmarks, each against a baseline measured in the same run and
//! reported as a ratio (absolute times on this machine are noisy).
use anyhow::Context;
use ovsdb::{Client, Manager, PortKind, PortSpec};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[path = "bench/mod.rs"]
mod bench;

/// Options every issue-7 benchmark takes.
#[derive(clap::Args, Clone)]
struct Common {
    /// The small size CI runs as a smoke test.
    #[arg(long)]
    quick: bool,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Seed of the synthetic cluster.
    #[arg(long, default_value_t = bench::scale::SEED)]
    seed: u64,
}

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(clap::Subcommand)]
enum Bench {
    /// Create N ports through weir (one transaction, then wait for every OpenFlow port
    /// number) and through one `ovs-vsctl` with N `-- add-port` clauses (which waits for
    /// ovs-vswitchd to apply them), on a fresh switch in a namespace; report weir/ovs-vsctl.
    OvsdbPorts {
        /// Ports per run.
        #[arg(long, default_value_t = 1000)]
        ports: usize,
        /// Port type: internal or vxlan.
        #[arg(long, default_value = "internal")]
        kind: String,
        /// Rounds (each round measures both, alternating which goes first).
        #[arg(long, default_value_t = 1)]
        rounds: usize,
    },
    /// Install N flows as one bundle with weir (`weir ofctl add-flows --bundle`'s path) and
    /// with `ovs-ofctl -O OpenFlow15 --bundle add-flows` of the same file, on a fresh switch in
    /// a namespace; report both times and weir/ovs-ofctl.
    OfctlInstall {
        /// Flows in the file.
        #[arg(long, default_value_t = 100_000)]
        flows: usize,
        /// Rounds (each measures both, alternating which goes first).
        #[arg(long, default_value_t = 1)]
        rounds: usize,
    },
    /// Compile time, peak RSS and flows per table of one node of synthetic clusters
    /// (1k/10k pods x 100/1000 policies), against a computed naive cross-product compile.
    CompileScale {
        #[command(flatten)]
        common: Common,
        /// Measure one size (`PODSxPOLICIES`) and print it as JSON (the child process of a run).
        #[arg(long)]
        one: Option<String>,
    },
    /// The 10k/1000 node flow set installed by weir (one bundle) vs `ovs-ofctl --bundle
    /// add-flows` of the same flows, fresh switch per side, interleaved rounds.
    Install {
        #[command(flatten)]
        common: Common,
        /// Rounds (default 5, quick 2).
        #[arg(long)]
        rounds: Option<usize>,
    },
    /// Single pod and policy events on the 10k/1000 node: event-to-barrier-ack latency and
    /// flow_mods per event, against the empty-bundle round trip.
    Churn {
        #[command(flatten)]
        common: Common,
        /// Events of each kind (default 30, quick 5).
        #[arg(long)]
        events: Option<usize>,
    },
    /// Time from writing a deny (then an allow) policy into the agents' manifests to the
    /// first probe that sees it enforced, on a 2-node testbed; baseline: the same change by
    /// `ovs-ofctl`.
    EnforcementLatency {
        #[command(flatten)]
        common: Common,
        /// Trials (default 50, quick 5).
        #[arg(long)]
        trials: Option<usize>,
    },
    /// Connection rate (wrk, Connection: close, nginx) and throughput (iperf3) between two
    /// pods with 0, 100 and 1000 rules selecting the server, and the same as iptables+ipset.
    Datapath {
        #[command(flatten)]
        common: Common,
        /// Rounds (default 5, quick 1).
        #[arg(long)]
        rounds: Option<usize>,
        /// Seconds per run (default 5, quick 1).
        #[arg(long)]
        secs: Option<u64>,
    },
    /// Node rules (0, 50, 100, 1000) on a host's own service, weir's nftables and OVS
    /// realizations beside iptables+ipset (the layout Antrea measured): TCP connection rate and
    /// iperf3 throughput, each against its own 0-rule baseline in the same run.
    NodePolicy {
        #[command(flatten)]
        common: Common,
        /// Rounds (default 5, quick 1).
        #[arg(long)]
        rounds: Option<usize>,
        /// Seconds of connections per point (default 3, quick 1).
        #[arg(long)]
        secs: Option<f64>,
        /// Measure only these realizations (weir-nftables, weir-OVS, iptables+ipset,
        /// iptables-legacy+ipset; repeatable). Default: all.
        #[arg(long = "only")]
        only: Vec<String>,
        /// Rule counts to measure, each against the 0-rule skeleton (which is always measured).
        #[arg(long, value_delimiter = ',', default_values_t = [50, 100, 1000])]
        rules: Vec<usize>,
    },
    /// Agent restart with the 10k/1000 flow set installed: time to reconcile, flow_mods
    /// sent, an established stream and a denied pod probing throughout.
    Restart {
        #[command(flatten)]
        common: Common,
    },
    /// The 10k/1000 cluster in a real kube-apiserver (scripts/kube.sh): an agent reading it
    /// (--kubeconfig) and, as the baseline in the same run, one reading the same objects from
    /// files: peak RSS, start to realized, pod event to realized p50/p99.
    #[cfg(feature = "kube")]
    Kube {
        #[command(flatten)]
        common: Common,
        /// Pod events per mode (default 30, quick 10).
        #[arg(long)]
        events: Option<usize>,
    },
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    match args.bench {
        Bench::OvsdbPorts { ports, kind, rounds } => ovsdb_ports(ports, &kind, rounds).await,
        Bench::OfctlInstall { flows, rounds } => crate::ofctl::bench_ofctl_install(flows, rounds).await,
        Bench::CompileScale { common, one: Some(size) } => bench::compile_scale::one(&size, common.seed),
        Bench::CompileScale { common, one: None } => {
            let r = tokio::task::spawn_blocking(move || bench::compile_scale::run(common.quick, common.seed)).await??;
            emit("compile-scale", &common, r)
        }
        Bench::Install { common, rounds } => {
            let r = bench::install::run(common.quick, common.seed, rounds.unwrap_or(if common.quick { 2 } else { 5 })).await?;
            emit("install", &common, r)
        }
        Bench::Churn { common, events } => {
            let r = bench::churn::run(common.quick, common.seed, events.or((!common.quick).then_some(30))).await?;
            emit("churn", &common, r)
        }
        Bench::EnforcementLatency { common, trials } => {
            let quick = common.quick;
            let r = tokio::task::spawn_blocking(move || bench::enforcement::run(quick, trials)).await??;
            emit("enforcement-latency", &common, r)
        }
        Bench::Datapath { common, rounds, secs } => {
            let (quick, seed) = (common.quick, common.seed);
            let r = tokio::task::spawn_blocking(move || bench::datapath::run(quick, rounds, secs, seed)).await??;
            emit("datapath", &common, r)
        }
        #[cfg(feature = "kube")]
        Bench::Kube { common, events } => {
            let r = bench::cluster_mode::run(common.quick, common.seed, events).await?;
            emit("kube", &common, r)
        }
        Bench::NodePolicy { common, rounds, secs, only, rules } => {
            let (quick, seed) = (common.quick, common.seed);
            let select = bench::node_policy::Selection { only, rules };
            let r = tokio::task::spawn_blocking(move || bench::node_policy::run(quick, rounds, secs, seed, &select)).await??;
            emit("node-policy", &common, r)
        }
        Bench::Restart { common } => {
            let (quick, seed) = (common.quick, common.seed);
            let r = tokio::task::spawn_blocking(move || bench::restart::run(quick, seed)).await??;
            emit("restart", &common, r)
        }
    }
}

fn emit(name: &str, common: &Common, report: bench::Report) -> anyhow::Result<()> {
    report.emit(name, common.quick, common.json.as_deref())
}

fn port_spec(kind: &str, i: usize) -> anyhow::Result<PortSpec> {
    Ok(match kind {
        "internal" => PortSpec::new(&format!("bp{i}"), PortKind::Internal),
        "vxlan" => {
            let remote = std::net::Ipv4Addr::new(10, 1, (i / 250) as u8, (i % 250 + 1) as u8);
            ovsdb::parse_port(&format!("bp{i}"), "vxlan", &[("remote_ip".into(), remote.to_string())])?
        }
        other => anyhow::bail!("--kind {other:?}: expected internal or vxlan"),
    })
}

async fn vsctl(sw: &testbed::TestSwitch, args: Vec<String>) -> anyhow::Result<()> {
    let db = format!("--db=unix:{}", sw.ovs.db_socket().display());
    tokio::task::spawn_blocking(move || {
        testbed::run(std::process::Command::new("ovs-vsctl").arg(db).arg("--timeout=600").args(args)).map(drop)
    })
    .await??;
    Ok(())
}

async fn through_vsctl(sw: &testbed::TestSwitch, specs: &[PortSpec]) -> anyhow::Result<Duration> {
    let mut args = vec![];
    for s in specs {
        args.extend(["--".into(), "add-port".into(), "br-int".into(), s.name.clone()]);
        args.extend(["--".into(), "set".into(), "Interface".into(), s.name.clone()]);
        args.push(format!("type={}", s.kind.iface_type()));
        for (k, v) in s.options() {
            args.push(format!("options:{k}={v}"));
        }
    }
    let start = Instant::now();
    vsctl(sw, args).await?;
    Ok(start.elapsed())
}

async fn through_weir(sw: &testbed::TestSwitch, specs: &[PortSpec]) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let client = Client::connect(&format!("unix:{}", sw.ovs.db_socket().display())).await?;
    let mgr = Manager::with_options(&client, ovsdb::manager::ManagerOptions { verify_timeout: None }).await?;
    let connected = start.elapsed();
    mgr.ensure_ports("br-int", specs).await?;
    let committed = start.elapsed();
    // Done when ovs-vswitchd has numbered every port, as ovs-vsctl waits for it to apply.
    for s in specs {
        mgr.wait_ofport(&s.name, Duration::from_secs(600)).await.with_context(|| format!("port {}", s.name))?;
    }
    tracing::info!(?connected, ?committed, numbered = ?start.elapsed(), "weir phases");
    Ok(start.elapsed())
}

async fn remove_all(sw: &testbed::TestSwitch, specs: &[PortSpec]) -> anyhow::Result<()> {
    let mut args = vec![];
    for s in specs {
        args.extend(["--".into(), "--if-exists".into(), "del-port".into(), "br-int".into(), s.name.clone()]);
    }
    vsctl(sw, args).await
}

async fn ovsdb_ports(n: usize, kind: &str, rounds: usize) -> anyhow::Result<()> {
    let specs: Vec<PortSpec> = (0..n).map(|i| port_spec(kind, i)).collect::<anyhow::Result<_>>()?;
    let sw = tokio::task::spawn_blocking(testbed::TestSwitch::with_bridge).await??;
    let (mut weir_total, mut vsctl_total) = (Duration::ZERO, Duration::ZERO);
    for round in 0..rounds.max(1) {
        let weir_first = round % 2 == 1;
        for which in if weir_first { ["weir", "ovs-vsctl"] } else { ["ovs-vsctl", "weir"] } {
            let took =
                if which == "weir" { through_weir(&sw, &specs).await? } else { through_vsctl(&sw, &specs).await? };
            println!("round {round}: {which:9} {n} {kind} ports: {:8.1} ms", took.as_secs_f64() * 1e3);
            if which == "weir" {
                weir_total += took
            } else {
                vsctl_total += took
            }
            remove_all(&sw, &specs).await?;
        }
    }
    let ratio = weir_total.as_secs_f64() / vsctl_total.as_secs_f64();
    println!(
        "ovsdb-ports: weir {:.1} ms, ovs-vsctl {:.1} ms, ratio weir/ovs-vsctl {ratio:.2} ({})",
        weir_total.as_secs_f64() * 1e3,
        vsctl_total.as_secs_f64() * 1e3,
        if ratio <= 1.0 { "weir no slower" } else { "weir slower" }
    );
    Ok(())
}
