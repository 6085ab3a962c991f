//! `weir agent`: the node agent in file mode.
use std::path::PathBuf;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// This node's name (a Node object in the manifests).
    #[arg(long)]
    node: String,
    /// OVSDB target.
    #[arg(long, default_value = "unix:/var/run/openvswitch/db.sock")]
    ovsdb: String,
    /// OpenFlow target of the bridge: unix:PATH, tcp:HOST:PORT, or a bridge name in $OVS_RUNDIR.
    #[arg(long)]
    openflow: Option<String>,
    /// The integration bridge.
    #[arg(long, default_value = "br-int")]
    bridge: String,
    /// Datapath type of the bridge.
    #[arg(long, value_parser = ["system", "netdev"], default_value = "system")]
    datapath: String,
    /// Directory of Kubernetes manifests (file mode), watched for changes.
    #[arg(long)]
    manifests: PathBuf,
    /// Where to write the status JSON after every realization.
    #[arg(long, default_value = "/var/run/weir/status.json")]
    status_file: PathBuf,
    /// Directory of the agent's persistent state: each manifest file's last good content,
    /// parsed (under `manifest-cache/`), so a restarted agent does not parse its manifests
    /// again and a file broken at restart keeps its last good version in force. Default: the
    /// status file's directory (use a persistent one, e.g. /var/lib/weir, to keep it across
    /// reboots). Never inside the manifests directory.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Tunnel protocol between nodes.
    #[arg(long, value_parser = ["geneve", "vxlan"], default_value = "geneve")]
    tunnel: String,
    /// ovs-vswitchd's control socket: a path, or a daemon name found through its pidfile in
    /// $OVS_RUNDIR (default /var/run/openvswitch), as `ovs-appctl -t` finds it.
    #[arg(long, default_value = "ovs-vswitchd")]
    ovs_ctl: String,
    /// When to purge the datapath's cached flows after installing a change: `auto` when the
    /// switch has a known OVS bug that calls for it (see `weir status`), `always`, or `never`.
    #[arg(long, value_enum, default_value = "auto")]
    datapath_cache_purge: CachePurgeArg,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CachePurgeArg {
    Auto,
    Always,
    Never,
}

impl From<CachePurgeArg> for agent::ovs_bugs::CachePurge {
    fn from(a: CachePurgeArg) -> Self {
        match a {
            CachePurgeArg::Auto => Self::Auto,
            CachePurgeArg::Always => Self::Always,
            CachePurgeArg::Never => Self::Never,
        }
    }
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let config = agent::Config {
        openflow: args.openflow.unwrap_or_else(|| args.bridge.clone()),
        node: args.node,
        ovsdb: args.ovsdb,
        bridge: args.bridge,
        datapath: if args.datapath == "netdev" { ovsdb::DatapathType::Netdev } else { ovsdb::DatapathType::System },
        manifests: args.manifests,
        status_file: args.status_file,
        tunnel: if args.tunnel == "vxlan" { agent::TunnelKind::Vxlan } else { agent::TunnelKind::Geneve },
        ovs_ctl: args.ovs_ctl,
        datapath_cache_purge: args.datapath_cache_purge.into(),
    };
    if let Some(dir) = config.status_file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // The agent's ManifestCache takes the installed store. Read in the background from here
    // on, while the agent connects to OVSDB.
    let beside_status = config.status_file.parent().map(|d| if d.as_os_str().is_empty() { std::path::Path::new(".") } else { d });
    match (&args.state_dir, beside_status) {
        (Some(dir), _) => agent::manifest_store::install(agent::manifest_store::ManifestStore::open(dir, &config.manifests)?),
        (None, Some(dir)) => match agent::manifest_store::ManifestStore::open(dir, &config.manifests) {
            Ok(store) => agent::manifest_store::install(store),
            Err(e) => tracing::warn!("manifest cache disabled (set --state-dir): {e}"),
        },
        (None, None) => tracing::warn!("manifest cache disabled: the status file has no directory (set --state-dir)"),
    }
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    agent::run(config, shutdown).await?;
    Ok(())
}
