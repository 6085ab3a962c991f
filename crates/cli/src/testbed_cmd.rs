//! `weir testbed ...`: an emulated multi-node cluster in network namespaces on this host.
//! Thin over the `testbed` crate; every subcommand works on the testbed whose state is in
//! `--dir`.
use anyhow::{Context, bail};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use testbed::probe::ProbeOptions;
use testbed::{Launcher, Testbed, Tunnel};

/// Prints a line to stdout; a closed pipe (`weir testbed probe | head`) ends the program
/// quietly instead of panicking.
macro_rules! say {
    ($($t:tt)*) => { emit(&format!("{}\n", format_args!($($t)*))) };
}

/// Prints text to stdout as [`say!`] does, without adding a newline.
macro_rules! say_raw {
    ($($t:tt)*) => { emit(&format!($($t)*)) };
}

fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if out.write_all(text.as_bytes()).and_then(|_| out.flush()).is_err() {
        std::process::exit(0);
    }
}

#[derive(clap::Args)]
pub(crate) struct Args {
    /// State directory of the testbed (its state file, node directories, logs).
    #[arg(long, global = true, default_value = testbed::testbed::DEFAULT_DIR)]
    dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

use crate::output::Format as Output;

/// Prints `value` as JSON or YAML (`-o json|yaml`); false for `-o table`, which the caller prints.
fn print_value<T: serde::Serialize>(output: Output, value: &T) -> anyhow::Result<bool> {
    match output {
        Output::Table => return Ok(false),
        Output::Json => say!("{}", serde_json::to_string_pretty(value)?),
        Output::Yaml => say_raw!("{}", serde_saphyr::to_string(value)?),
    }
    Ok(true)
}

#[derive(clap::Subcommand)]
enum Command {
    /// Create (or complete) the nodes, underlay, pods, probe servers and agents.
    Up {
        /// Model file: a `model:` block or a conformance case file.
        #[arg(long)]
        model: PathBuf,
        /// Number of nodes.
        #[arg(long, default_value_t = 2)]
        nodes: usize,
        /// Tunnel type between nodes.
        #[arg(long, default_value = "geneve")]
        tunnel: String,
        /// Name prefix of every namespace and interface (1-6 characters).
        #[arg(long, default_value = testbed::testbed::DEFAULT_PREFIX)]
        prefix: String,
        /// Run without weir agents (br-int then forwards nothing).
        #[arg(long)]
        no_agent: bool,
        /// An extra argument for every agent (repeat for several), e.g.
        /// `--agent-arg=--datapath-cache-purge=never`.
        #[arg(long = "agent-arg", allow_hyphen_values = true)]
        agent_args: Vec<String>,
        /// How long to wait for the agents to realize the cluster, in seconds.
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
        /// Cluster mode: start a real kube-apiserver (and etcd) on the first node, create the
        /// namespaces, nodes and pods through it, and run the agents with a kubeconfig; `apply`
        /// and `delete` then go through the API server (needs PATH="$(bash scripts/kube.sh)$PATH").
        #[arg(long)]
        kube: bool,
        /// Where the agents realize each node's own policy: `nftables` (the node's address on
        /// br-phy) or `ovs` (the address on the uplink, which the agent moves onto br-int).
        /// VMs (a model's external_nodes) likewise: nftables in their namespace, or their own
        /// OVS with their interface moved onto it.
        #[arg(long, default_value = "nftables")]
        node_policy: String,
    },
    /// Stop every process and remove every namespace and file the testbed created.
    Down,
    /// Health of the nodes, daemons, agents and probe servers.
    Status {
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// The pods: namespace, name, node, IP, MAC, labels.
    Pods {
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Put manifests into every agent's source and wait until every agent realized them.
    Apply {
        /// Manifest files or directories.
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        /// Seconds to wait for the agents.
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
    },
    /// Remove manifests (by file name) from every agent's source and wait as `apply` does.
    Delete {
        /// Manifest files or directories.
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        /// Seconds to wait for the agents.
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
    },
    /// Real traffic from every pod to every pod; prints truth tables or JSON.
    Probe {
        /// Ports (default: every port the pods serve).
        #[arg(long, value_delimiter = ',')]
        ports: Vec<u16>,
        /// Protocols: tcp, udp, sctp.
        #[arg(long, value_delimiter = ',', default_value = "tcp,udp,sctp")]
        protocols: Vec<String>,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
        /// Seconds one probe waits for its answer.
        #[arg(long, default_value_t = 1.0)]
        timeout: f64,
    },
    /// Run a command inside a pod's (`namespace/name`) or node's (`node-1`) network namespace.
    Exec {
        /// `namespace/name` of a pod, or a node name.
        target: String,
        /// The command and its arguments (after `--`).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Send a UDP frame with a forged source IP and/or MAC from one pod to another, plus a
    /// control frame with the real addresses, and report which arrived.
    Spoof {
        /// Sending pod (`namespace/name`).
        from: String,
        /// Receiving pod.
        to: String,
        /// UDP destination port.
        #[arg(long, default_value_t = 80)]
        port: u16,
        /// Source IP to forge.
        #[arg(long)]
        src_ip: Option<Ipv4Addr>,
        /// Source MAC to forge (aa:bb:cc:dd:ee:ff).
        #[arg(long)]
        src_mac: Option<String>,
        /// Seconds to watch for the frames.
        #[arg(long, default_value_t = 1.0)]
        timeout: f64,
    },
    /// Run conformance case files (or directories of them) on real traffic: each case's pods
    /// on a testbed of its own (in `<dir>-conformance`), each step applied through the agents and
    /// probed; prints the cells that differ and ends with `N passed, N failed`.
    Conformance {
        /// Case files or directories of them.
        #[arg(required_unless_present = "history")]
        paths: Vec<PathBuf>,
        /// Number of nodes.
        #[arg(long, default_value_t = 2)]
        nodes: usize,
        /// Tunnel type between nodes.
        #[arg(long, default_value = "geneve")]
        tunnel: String,
        /// Name prefix of the conformance testbed's namespaces and interfaces.
        #[arg(long, default_value = "wc")]
        prefix: String,
        /// Leave the testbed up afterwards (with the last step in force), for inspection.
        #[arg(long)]
        keep: bool,
        /// An extra argument for every agent (repeat for several), e.g.
        /// `--agent-arg=--datapath-cache-purge=never`.
        #[arg(long = "agent-arg", allow_hyphen_values = true)]
        agent_args: Vec<String>,
        /// After the case files, play a seeded random history of this many changes on the same
        /// testbed (every pod pair probed after every change, expected as the oracle says).
        #[arg(long, default_value_t = 0)]
        history: usize,
        /// The random history's seed (default: from the clock; printed).
        #[arg(long)]
        seed: Option<u64>,
        /// Cluster mode (see `up --kube`): every object goes through a real API server.
        #[arg(long)]
        kube: bool,
        /// Where the agents realize node policy (see `up --node-policy`).
        #[arg(long, default_value = "nftables")]
        node_policy: String,
    },
    /// The per-pod probe server (started by `up` inside each pod).
    #[command(hide = true)]
    Serve {
        /// What to serve: `PORT/PROTO,...` (e.g. `80/tcp,80/udp`).
        #[arg(long)]
        ports: String,
        /// A file to create once every port listens.
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || run_blocking(args)).await?
}

/// `weir agent` with the extra arguments given by `--agent-arg`.
fn agent_launcher(extra: &[String]) -> anyhow::Result<Launcher> {
    let mut launcher = Launcher::current_exe(&["agent"])?;
    launcher.args.extend(extra.iter().cloned());
    Ok(launcher)
}

fn seconds(s: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).context("a timeout must be a non-negative number of seconds")
}

fn run_blocking(args: Args) -> anyhow::Result<()> {
    let dir = args.dir;
    match args.command {
        Command::Up { model, nodes, tunnel, prefix, no_agent, agent_args, timeout, kube, node_policy } => {
            let opts = testbed::UpOptions {
                model,
                nodes,
                dir: dir.clone(),
                prefix,
                tunnel: tunnel.parse::<Tunnel>()?,
                agent: if no_agent { None } else { Some(agent_launcher(&agent_args)?) },
                server: Launcher::current_exe(&["testbed", "serve"])?,
                kube,
                node_policy: node_policy.parse()?,
            };
            let start = Instant::now();
            let mut progress = |line: &str| eprintln!("[{:5.1}s] {line}", start.elapsed().as_secs_f64());
            let tb = testbed::up(&opts, &mut progress)?;
            if tb.state().agent_command.is_some() {
                progress("waiting for every agent to realize the cluster");
                let report = tb.sync(seconds(timeout)?).context("the testbed is up but its agents are not ready")?;
                print_sync(&report);
            }
            progress(&format!(
                "up: {} node(s), {} pod(s); `weir testbed pods`, `weir testbed probe`, `weir testbed down`{}",
                tb.nodes().len(),
                tb.pods().len(),
                dir_flag(&dir)
            ));
        }
        Command::Conformance { paths, nodes, tunnel, prefix, keep, agent_args, history, seed, kube, node_policy } => {
            let files = crate::policy_cmd::case_files(&paths)?;
            let mut cdir = dir.into_os_string();
            cdir.push("-conformance");
            let opts = testbed::UpOptions {
                model: PathBuf::new(),
                nodes,
                dir: PathBuf::from(cdir),
                prefix,
                tunnel: tunnel.parse::<Tunnel>()?,
                agent: Some(agent_launcher(&agent_args)?),
                server: Launcher::current_exe(&["testbed", "serve"])?,
                kube,
                node_policy: node_policy.parse()?,
            };
            let start = Instant::now();
            let progress = move |line: &str| eprintln!("[{:5.1}s] {line}", start.elapsed().as_secs_f64());
            let mut prober = testbed::conformance::TestbedProber::new(opts, Box::new(progress))?;
            let mut cases = crate::policy_cmd::read_cases(&files);
            if history > 0 {
                let seed = seed.unwrap_or_else(|| std::time::UNIX_EPOCH.elapsed().map_or(0, |d| d.as_secs()));
                let spec = policy::conformance::history::random_history(seed, history);
                let source = format!("random history (seed {seed}, {history} changes)");
                cases.push(policy::conformance::runner::with_oracle_matrices(&source, spec).map_err(|e| e.to_string()));
            }
            let summary = crate::policy_cmd::run_cases(cases, &mut prober);
            if keep {
                prober.keep();
            }
            drop(prober); // takes the testbed down unless kept
            if summary.failed > 0 {
                // The summary must stay the last line of output, so no error message follows it.
                std::process::exit(1);
            }
        }
        Command::Down => {
            let start = Instant::now();
            let mut progress = |line: &str| eprintln!("[{:5.1}s] {line}", start.elapsed().as_secs_f64());
            if testbed::down(&dir, &mut progress)? {
                progress("down: nothing of the testbed is left");
            } else {
                progress(&format!("no testbed in {}", dir.display()));
            }
        }
        Command::Status { output } => {
            let nodes = testbed::status(&dir)?;
            if print_value(output, &serde_json::json!({ "nodes": nodes }))? {
                return Ok(());
            }
            for n in &nodes {
                let pid = |p: Option<i32>| p.map_or("DOWN".to_string(), |p| p.to_string());
                say!(
                    "{}  netns {}{}  {}  pods {}  ovsdb-server {}  ovs-vswitchd {}  agent {}  servers {}/{}",
                    n.name,
                    n.netns,
                    if n.netns_exists { "" } else { " (MISSING)" },
                    n.underlay_ip,
                    n.pod_cidr,
                    pid(n.ovsdb_server),
                    pid(n.ovs_vswitchd),
                    pid(n.agent),
                    n.servers_running,
                    n.pods,
                );
                if let Some(s) = &n.agent_status {
                    let flows: u64 = s.flows.values().sum();
                    say!(
                        "    agent: generation {}, token {}, {} flows, {} error(s){}",
                        s.generation,
                        s.source_token.as_deref().unwrap_or("-"),
                        flows,
                        s.errors.len(),
                        s.last_error.as_deref().map(|e| format!(", last error: {e}")).unwrap_or_default()
                    );
                }
            }
        }
        Command::Pods { output } => {
            let tb = Testbed::load(&dir)?;
            if output != Output::Table {
                let pods: Vec<_> = tb
                    .pods()
                    .iter()
                    .map(|p| {
                        serde_json::json!({
                            "namespace": p.namespace, "name": p.name, "node": p.node, "ip": p.ip.to_string(),
                            "mac": p.mac, "labels": p.labels, "netns": p.netns, "interface": p.interface,
                            "hostNetwork": p.host_network,
                        })
                    })
                    .collect();
                print_value(output, &serde_json::json!({ "pods": pods }))?;
                return Ok(());
            }
            say!("{:<12} {:<16} {:<8} {:<14} {:<18} LABELS", "NAMESPACE", "NAME", "NODE", "IP", "MAC");
            for p in tb.pods() {
                let labels: Vec<String> = p.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                say!("{:<12} {:<16} {:<8} {:<14} {:<18} {}", p.namespace, p.name, p.node, p.ip, p.mac, labels.join(","));
            }
        }
        Command::Apply { files, timeout } => {
            let tb = Testbed::load(&dir)?;
            let (names, report) = tb.apply(&files, seconds(timeout)?)?;
            say!("applied: {}", names.join(", "));
            if let Some(report) = report {
                print_sync(&report);
            }
        }
        Command::Delete { files, timeout } => {
            let tb = Testbed::load(&dir)?;
            let (names, report) = tb.delete(&files, seconds(timeout)?)?;
            say!("deleted: {}", if names.is_empty() { "(none were applied)".to_string() } else { names.join(", ") });
            if let Some(report) = report {
                print_sync(&report);
            }
        }
        Command::Probe { ports, protocols, output, timeout } => {
            let tb = Testbed::load(&dir)?;
            let protocols = protocols.iter().map(|p| parse_protocol(p)).collect::<anyhow::Result<Vec<_>>>()?;
            let ports = if ports.is_empty() {
                let mut all: Vec<u16> = tb.pods().iter().flat_map(|p| p.ports.iter().map(|cp| cp.port)).collect();
                all.sort_unstable();
                all.dedup();
                all
            } else {
                ports
            };
            let specs = testbed::probe::matrix(&tb, &ports, &protocols);
            let opts = ProbeOptions { timeout: seconds(timeout)?, ..ProbeOptions::default() };
            let start = Instant::now();
            let results = testbed::probe::probe_all_with(&tb, &specs, opts)?;
            if !print_value(output, &testbed::probe::ProbeReport { probes: results.clone() })? {
                say_raw!("{}", testbed::truth_table::render(&results));
                let allowed = results.iter().filter(|r| r.allowed).count();
                say!("{} probes, {allowed} allowed, in {:.1} s", results.len(), start.elapsed().as_secs_f64());
            }
        }
        Command::Exec { target, command } => {
            let tb = Testbed::load(&dir)?;
            let mut cmd = tb.command(&target, &command[0])?;
            let status = cmd.args(&command[1..]).status().with_context(|| format!("run {}", command[0]))?;
            if !status.success() {
                std::process::exit(status.code().unwrap_or(1));
            }
        }
        Command::Spoof { from, to, port, src_ip, src_mac, timeout } => {
            let tb = Testbed::load(&dir)?;
            let src_mac = match src_mac {
                Some(m) => Some(testbed::spoof::parse_mac(&m).with_context(|| format!("--src-mac {m:?} is not aa:bb:cc:dd:ee:ff"))?),
                None => None,
            };
            if src_ip.is_none() && src_mac.is_none() {
                bail!("give --src-ip and/or --src-mac to forge");
            }
            let forgery = testbed::spoof::Forgery { src_ip, src_mac };
            let out = testbed::spoof::check(&tb, &from, &to, port, forgery, seconds(timeout)?)?;
            let word = |b: bool| if b { "delivered" } else { "dropped" };
            say!("control (real addresses): {}", word(out.control_delivered));
            say!("forged: {}", word(out.forged_delivered));
        }
        Command::Serve { ports, ready_file } => {
            let config = testbed::serve::ServeConfig { ports: testbed::serve::parse_ports(&ports)?, ready_file };
            match testbed::serve::serve(&config)? {}
        }
    }
    Ok(())
}

fn dir_flag(dir: &std::path::Path) -> String {
    if dir == std::path::Path::new(testbed::testbed::DEFAULT_DIR) { String::new() } else { format!(" (with --dir {})", dir.display()) }
}

fn parse_protocol(text: &str) -> anyhow::Result<policy::Protocol> {
    Ok(match text.to_ascii_lowercase().as_str() {
        "tcp" => policy::Protocol::Tcp,
        "udp" => policy::Protocol::Udp,
        "sctp" => policy::Protocol::Sctp,
        other => bail!("--protocols: {other:?} is not tcp, udp or sctp"),
    })
}

fn print_sync(report: &testbed::testbed::SyncReport) {
    for (node, s) in report {
        let flows: u64 = s.flows.values().sum();
        say!("{node}: realized generation {} ({flows} flows)", s.generation);
        if let Some(e) = &s.last_error {
            say!("  {node}: last realization failed: {e}");
        }
        for e in &s.errors {
            say!("  {node}: rejected {}: {}: {}", e.object, e.field, e.message);
        }
    }
}
