//! `weir compile` (flows without a switch), `weir status` (an agent's status) and
//! `weir pipeline-docs` (regenerate pipeline-docs/).
use anyhow::{Context, bail};
use openflow::text::{Names, format_flow};
use pipeline::Table;
use std::path::PathBuf;

/// Reads every manifest under `dir` into a cluster view.
pub(crate) fn load_cluster(dir: &std::path::Path) -> anyhow::Result<policy::Cluster> {
    let snapshot = agent::source::read_snapshot(dir).with_context(|| format!("reading {}", dir.display()))?;
    if snapshot.files.is_empty() {
        bail!("no manifests (*.yaml, *.yml, *.json) in {}", dir.display());
    }
    Ok(policy::Cluster::from_sources(snapshot.files.iter().map(|(p, t)| (p.to_str().unwrap_or("?"), t.as_str()))))
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
/// table and priority; rejected objects go to stderr.
pub(crate) async fn compile(args: CompileArgs) -> anyhow::Result<()> {
    let cluster = load_cluster(&args.cluster)?;
    for e in &cluster.errors {
        eprintln!("rejected: {e}");
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
    Ok(())
}

#[derive(clap::Args)]
pub(crate) struct StatusArgs {
    /// The agent's status file.
    #[arg(long, default_value = "/var/run/weir/status.json")]
    status_file: PathBuf,
    /// Print the raw JSON.
    #[arg(short, long)]
    json: bool,
}

/// Prints what an agent has realized: generation, objects, errors, flows per table.
pub(crate) async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let s = agent::status::Status::read(&args.status_file)
        .with_context(|| format!("reading {}", args.status_file.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!("node: {}", s.node);
    println!("realized: {} (generation {}, last change {} flow_mods)", s.realized, s.generation, s.last_flow_mods);
    if let Some(e) = &s.last_error {
        println!("last error: {e}");
    }
    for w in &s.warnings {
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
    if s.errors.is_empty() {
        println!("errors: none");
    } else {
        println!("errors ({}):", s.errors.len());
        for e in &s.errors {
            println!("  {}: {}: {}", e.object, e.field, e.message);
        }
    }
    Ok(())
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
