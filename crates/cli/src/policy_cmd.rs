//! `weir policy ...`: the reference evaluator from the command line — truth tables of a
//! manifest directory, the explanation of one verdict, and conformance cases run against the
//! oracle. The work is done by the `policy` crate; this file reads files and prints.
use crate::output::{Format, OutputArgs, emit};
use anyhow::{Context, bail};
use policy::conformance::Case;
use policy::conformance::target::Target;
use policy::conformance::runner::{OracleProber, Prober, Summary, run_case};
use policy::{Cluster, Packet, Protocol, TruthTable, evaluate};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Truth table of the cluster in DIR: who reaches whom on a port (rows are clients).
    Eval {
        /// Directory of Kubernetes YAML manifests (Namespaces, Pods, Nodes, NetworkPolicies).
        #[arg(long)]
        cluster: PathBuf,
        /// Destination port; without it, one table per port the pods declare.
        #[arg(long)]
        port: Option<u16>,
        /// Protocol (TCP, UDP, SCTP); TCP when only --port is given.
        #[arg(long)]
        protocol: Option<Protocol>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Why a packet is allowed or denied: the deciding rule per direction.
    Explain {
        /// Directory of Kubernetes YAML manifests.
        #[arg(long)]
        cluster: PathBuf,
        /// Client: namespace/pod, node:NAME, externalnode:NAMESPACE/NAME or an IP address.
        from: String,
        /// Server: namespace/pod, node:NAME, externalnode:NAMESPACE/NAME or an IP address.
        to: String,
        /// `PORT[/PROTO]` (e.g. `80/TCP`; TCP by default) or a named port of the server (`web`, `dns/UDP`).
        port: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Runs conformance case files (or every *.yaml in the given directories) on the oracle.
    Conformance {
        /// Case files or directories of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Eval { cluster, port, protocol, output } => eval(&cluster, port, protocol, output.format()),
        Command::Explain { cluster, from, to, port, output } => explain(&cluster, &from, &to, &port, output.format()),
        Command::Conformance { paths } => {
            let files = case_files(&paths)?;
            let summary = run_cases(read_cases(&files), &mut OracleProber::new());
            if summary.failed > 0 {
                // The summary must stay the last line of output, so no error message follows it.
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

/// Reads a manifest directory into a cluster view, reporting rejected objects on stderr.
pub(crate) fn load_cluster(dir: &Path) -> anyhow::Result<Cluster> {
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let cluster = crate::compile_cmd::load_cluster(dir)?;
    for e in &cluster.errors {
        eprintln!("rejected: {e}");
    }
    for w in &cluster.warnings {
        eprintln!("warning: {w}");
    }
    Ok(cluster)
}

fn eval(dir: &Path, port: Option<u16>, protocol: Option<Protocol>, output: Format) -> anyhow::Result<()> {
    let cluster = load_cluster(dir)?;
    let rules = cluster.rules();
    let services: Vec<(u16, Protocol)> = match (port, protocol) {
        (Some(p), proto) => vec![(p, proto.unwrap_or(Protocol::Tcp))],
        (None, Some(_)) => bail!("--protocol needs --port"),
        (None, None) => {
            let declared: BTreeSet<(u16, Protocol)> =
                cluster.policy_pods().flat_map(|p| p.ports.iter().map(|cp| (cp.port, cp.protocol))).collect();
            if declared.is_empty() {
                bail!("the pods declare no container ports; give --port");
            }
            declared.into_iter().collect()
        }
    };
    let tables: Vec<(u16, Protocol, TruthTable)> =
        services.into_iter().map(|(p, proto)| (p, proto, TruthTable::of_cluster(&cluster, &rules, p, proto))).collect();
    let value: Vec<serde_json::Value> = tables
        .iter()
        .map(|(port, protocol, t)| {
            serde_json::json!({
                "port": port,
                "protocol": protocol,
                "pods": t.pods,
                "allowed": t.cells,
                "matrix": t.to_string().lines().collect::<Vec<_>>(),
            })
        })
        .collect();
    emit(output, &value, || {
        for (i, (port, protocol, table)) in tables.iter().enumerate() {
            if i > 0 {
                println!();
            }
            println!("{port}/{protocol}");
            print!("{table}");
        }
    })
}

/// An endpoint given as `namespace/pod`, `node:NAME` (its InternalIP), `externalnode:ns/NAME`
/// (its first interface's address) or an address.
fn address(cluster: &Cluster, s: &str) -> anyhow::Result<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(ip);
    }
    let what = "is neither namespace/pod, node:NAME, externalnode:NAMESPACE/NAME nor an IP address";
    let target: Target = s.parse().map_err(|_| anyhow::anyhow!("{s:?} {what}"))?;
    let first = match &target {
        Target::Pod(key) => cluster.pod(key).with_context(|| format!("no pod {key} in the cluster"))?.ips.first(),
        Target::Node(name) => cluster.nodes.get(name).with_context(|| format!("no node {name} in the cluster"))?.internal_ips.first(),
        Target::ExternalNode { namespace, name } => {
            let node = cluster.external_nodes.get(&(namespace.clone(), name.clone()));
            node.with_context(|| format!("no external node {namespace}/{name} in the cluster"))?.interfaces.iter().flat_map(|i| &i.ips).next()
        }
    };
    first.copied().with_context(|| format!("{target} has no address"))
}

/// `80/TCP`, `53/udp` or `80`.
/// `PORT[/PROTO]` (TCP when no protocol is given), or `NAME[/PROTO]`: a named container port of
/// the server `to` (a `namespace/pod`), as Kubernetes resolves named ports on the destination.
pub(crate) fn port_protocol(cluster: &Cluster, to: &str, s: &str) -> anyhow::Result<(u16, Protocol)> {
    let (port, proto) = match s.split_once('/') {
        Some((p, proto)) => (p, Some(proto.parse::<Protocol>()?)),
        None => (s, None),
    };
    if let Ok(number) = port.parse::<u16>() {
        return Ok((number, proto.unwrap_or(Protocol::Tcp)));
    }
    let key: policy::PodKey = to.parse().map_err(|_| anyhow::anyhow!("{port:?} is not a port number, and {to:?} is not a pod to name it"))?;
    let pod = cluster.pod(&key).with_context(|| format!("no pod {key} in the cluster"))?;
    pod.ports
        .iter()
        .find(|p| p.name.as_deref() == Some(port) && proto.is_none_or(|proto| p.protocol == proto))
        .map(|p| (p.port, p.protocol))
        .with_context(|| format!("{port:?} is neither a port number nor a named port of pod {key}"))
}

fn explain(dir: &Path, from: &str, to: &str, port: &str, output: Format) -> anyhow::Result<()> {
    let cluster = load_cluster(dir)?;
    let rules = cluster.rules();
    let (dst_port, protocol) = port_protocol(&cluster, to, port)?;
    let packet = Packet { src: address(&cluster, from)?, dst: address(&cluster, to)?, protocol, dst_port };
    let verdict = evaluate(&cluster, &rules, &packet);
    emit(output, &serde_json::json!({"packet": packet, "verdict": verdict}), || {
        println!("{from} ({}) -> {to} ({}) {dst_port}/{protocol}", packet.src, packet.dst);
        println!("{verdict}");
    })
}

/// Case files named directly, plus every `*.yaml` of the directories named, sorted.
pub(crate) fn case_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        bail!("no case files in {}", paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
    }
    Ok(files)
}

/// Reads and checks case files; a file that cannot be used is an error naming it.
pub(crate) fn read_cases(files: &[PathBuf]) -> Vec<Result<Case, String>> {
    files
        .iter()
        .map(|file| {
            let source = file.display().to_string();
            std::fs::read_to_string(file)
                .map_err(|e| format!("{source}: {e}"))
                .and_then(|text| Case::parse(&source, &text).map_err(|e| e.to_string()))
        })
        .collect()
}

/// Runs cases against a prober, printing a line per case, the cell diff of each failure
/// and, last, `N passed, N failed`.
pub(crate) fn run_cases(cases: Vec<Result<Case, String>>, prober: &mut dyn Prober) -> Summary {
    let mut summary = Summary::default();
    for case in cases {
        let case = match case {
            Ok(c) => c,
            Err(e) => {
                println!("FAIL cannot use the case: {e}");
                summary.failed += 1;
                continue;
            }
        };
        let source = case.source.clone();
        let report = run_case(&case, prober);
        summary.add(&report);
        if report.passed() {
            println!("PASS {source} ({} cells): {}", report.cells, report.name);
        } else {
            println!("FAIL {source}: {}", report.name);
            print!("{}", report.render_failures());
        }
    }
    println!("{summary}");
    summary
}
