//! `weir compile` (flows without a switch), `weir status` (an agent's status) and
//! `weir pipeline-docs` (regenerate pipeline-docs/).
use anyhow::{Context, bail};
use openflow::text::{Names, format_flow};
use pipeline::Table;
use std::path::PathBuf;

/// Reads every manifest under `dir` into a cluster view by the agent's rules: a file that
/// cannot be read or used contributes only its errors (and fail-closed policies), the others
/// are used. Every rejected file and object is in the view's `errors`.
pub(crate) fn load_cluster(dir: &std::path::Path) -> anyhow::Result<policy::Cluster> {
    let snapshot = agent::source::read_snapshot(dir)?;
    if snapshot.files.is_empty() && snapshot.unreadable.is_empty() {
        bail!("no manifests (*.yaml, *.yml, *.json) in {}", dir.display());
    }
    Ok(agent::manifest_cache::ManifestCache::default().cluster(&snapshot))
}

/// Table names for printing, from the pipeline declaration.
pub(crate) fn table_names() -> Names {
    Names { tables: Table::ALL.iter().map(|t| (t.id(), t.name().to_string())).collect(), ..Names::default() }
}

#[derive(clap::Args)]
pub(crate) struct CompileArgs {
    /// Directory of manifests (Nodes, Namespaces, Pods, NetworkPolicies).
    #[arg(long)]
    cluster: PathBuf,
    /// The node to compile for.
    #[arg(long)]
    node: String,
    /// Print table numbers instead of names.
    #[arg(long)]
    no_names: bool,
}

/// Prints the node's desired flows as `ovs-ofctl dump-flows --no-stats` lines, ordered by
/// table and priority; rejected files and objects go to stderr, and make the exit code
/// [`REJECTED_EXIT`] once the flows are printed.
pub(crate) async fn compile(args: CompileArgs) -> anyhow::Result<()> {
    let cluster = load_cluster(&args.cluster)?;
    for e in &cluster.errors {
        eprintln!("rejected: {e}");
    }
    for w in &cluster.warnings {
        eprintln!("warning: {w}");
    }
    let topo = pipeline::offline_topology(&cluster, &args.node)
        .with_context(|| format!("node {:?} is not in {} (or has no IPv4 pod CIDR)", args.node, args.cluster.display()))?;
    let compiled = pipeline::compile(&cluster, &topo);
    let names = (!args.no_names).then(table_names);
    let mut flows: Vec<_> = compiled.flows.iter().collect();
    flows.sort_by_key(|f| (f.table_id, std::cmp::Reverse(f.priority)));
    let mut out = String::new();
    for f in flows {
        format_flow(&mut out, f, names.as_ref());
        out.push('\n');
    }
    print!("{out}");
    if !cluster.errors.is_empty() {
        eprintln!("weir: {} rejected (see above); the flows are those of everything else", rejected_count(&cluster));
        exit(REJECTED_EXIT);
    }
    Ok(())
}

/// `weir compile`'s exit code when a file or object was rejected (the flows are printed).
pub(crate) const REJECTED_EXIT: u8 = 3;

fn rejected_count(cluster: &policy::Cluster) -> String {
    let files: std::collections::BTreeSet<&str> = cluster.errors.iter().map(|e| e.source.as_str()).collect();
    format!("{} error(s) in {} file(s)", cluster.errors.len(), files.len())
}

/// Exits with `code` after flushing stdout (what was printed is the command's result).
pub(crate) fn exit(code: u8) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    std::process::exit(code.into())
}

#[derive(clap::Args)]
pub(crate) struct StatusArgs {
    /// The agent's status file.
    #[arg(long, default_value = "/var/run/weir/status.json")]
    status_file: PathBuf,
    #[command(flatten)]
    output: crate::output::OutputArgs,
    /// Seconds after which a heartbeat is stale (the agent rewrites its status every 2 s).
    #[arg(long, default_value_t = 10.0)]
    stale_after: f64,
}

/// `weir status`'s exit code when the agent's heartbeat is stale (or absent).
pub(crate) const STALE_EXIT: u8 = 3;
/// `weir status`'s exit code when the agent is alive but has not realized its flows.
pub(crate) const NOT_REALIZED_EXIT: u8 = 4;

/// Prints what an agent has realized: liveness, generation, objects, errors, flows per table.
/// Exits [`STALE_EXIT`] when the heartbeat is older than `--stale-after`, else
/// [`NOT_REALIZED_EXIT`] when the flows are not realized.
pub(crate) async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let s = agent::status::Status::read(&args.status_file)
        .with_context(|| format!("reading {}", args.status_file.display()))?;
    let age = s.heartbeat_age(std::time::SystemTime::now());
    let stale = s.heartbeat_unix_ms == 0 || age.as_secs_f64() > args.stale_after;
    crate::output::emit(args.output.format(), &s, || print_status(&s, age, stale, args.stale_after))?;
    match (stale, s.realized) {
        (true, _) => exit(STALE_EXIT),
        (false, false) => exit(NOT_REALIZED_EXIT),
        (false, true) => Ok(()),
    }
}

fn print_status(s: &agent::status::Status, age: std::time::Duration, stale: bool, stale_after: f64) {
    println!("node: {}", s.node);
    match (s.heartbeat_unix_ms, stale) {
        (0, _) => println!("heartbeat: none: STALE (this agent does not report one; nothing below can be trusted to be current)"),
        (_, true) => println!(
            "heartbeat: {:.1} s ago: STALE (over {stale_after} s: the agent is stuck or gone; what follows may no longer be true)",
            age.as_secs_f64()
        ),
        (_, false) => println!("heartbeat: {:.1} s ago", age.as_secs_f64()),
    }
    println!("realized: {} (generation {}, last change {} flow_mods)", s.realized, s.generation, s.last_flow_mods);
    if let Some(e) = &s.last_error {
        println!("last error: {e}");
    }
    for w in s.source_warning.iter().chain(&s.source_warnings).chain(&s.warnings) {
        println!("warning: {w}");
    }
    for w in s.switch.iter().flat_map(|sw| sw.warnings()) {
        println!("warning: {w}");
    }
    if s.datapath_cache_purges > 0 {
        println!("datapath cache purges: {}", s.datapath_cache_purges);
    }
    let objects: Vec<String> = s.objects.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!("objects: {}; local pods: {}", objects.join(", "), s.local_pods);
    println!("flows per table:");
    for t in Table::ALL {
        println!("  {:>3} {:<16} {}", t.id(), t.name(), s.flows.get(t.name()).copied().unwrap_or(0));
    }
    for (name, tc) in &s.traffic_controls {
        let state = if tc.realized { "realized" } else { "NOT realized" };
        println!("TrafficControl {name}: {state}; pods: {}; ports: {}", list_or_none(&tc.pods), list_or_none(&tc.ports));
        for e in &tc.errors {
            println!("  {e}");
        }
    }
    if s.errors.is_empty() {
        println!("errors: none");
    } else {
        println!("errors ({}):", s.errors.len());
        for e in &s.errors {
            println!("  {e}");
        }
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() { "none".into() } else { items.join(", ") }
}

#[derive(clap::Args)]
pub(crate) struct DocsArgs {
    /// Output directory.
    #[arg(long, default_value = "pipeline-docs")]
    out: PathBuf,
    /// `ovs-ofctl -O OpenFlow15 dump-flows --names --no-stats` output of a node, for the
    /// example flows (without it, pages keep no examples).
    #[arg(long)]
    dump: Option<PathBuf>,
}

/// Writes the index and one page per table.
pub(crate) async fn docs(args: DocsArgs) -> anyhow::Result<()> {
    let dump = match &args.dump {
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        None => String::new(),
    };
    std::fs::create_dir_all(&args.out)?;
    // Pages of tables that were renamed or renumbered go.
    let current: Vec<String> = Table::ALL.iter().map(|t| pipeline::docs::page_name(*t)).collect();
    for entry in std::fs::read_dir(&args.out)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let generated = name.len() > 3 && name.as_bytes()[..2].iter().all(u8::is_ascii_digit) && name.ends_with(".md");
        if generated && !current.contains(&name) {
            std::fs::remove_file(args.out.join(&name))?;
        }
    }
    std::fs::write(args.out.join("README.md"), pipeline::docs::index())?;
    for t in Table::ALL {
        std::fs::write(args.out.join(pipeline::docs::page_name(*t)), pipeline::docs::table_page(*t, &dump))?;
    }
    println!("wrote {} pages to {}", Table::ALL.len() + 1, args.out.display());
    Ok(())
}
