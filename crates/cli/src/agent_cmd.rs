//! `weir agent`: the node agent, reading a manifests directory or the Kubernetes API.
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// This node's name (a Node object in the manifests). Not with --external-node.
    #[arg(long, required_unless_present_any = ["external_node", "restore"], conflicts_with = "external_node")]
    node: Option<String>,
    /// Run for an ExternalNode of this name (a VM or bare-metal host outside the cluster)
    /// instead of a Kubernetes node: no pod network. Either the host interfaces named by
    /// --external-interface are moved onto the bridge (the NIC becomes the uplink `IF~`, an
    /// internal port takes its name, MAC, MTU, addresses and routes; the original state is
    /// saved in the state directory first; give them back with --restore), or, with
    /// --node-policy nftables, nothing is moved and no OVS is needed: the rules applied to the
    /// ExternalNode's interfaces are realized in this network namespace's nftables.
    #[arg(long)]
    external_node: Option<String>,
    /// A host interface of the ExternalNode to move onto the bridge (repeatable; not with
    /// --node-policy nftables); with --node and --node-policy ovs, the node's uplink (the
    /// ExternalNode mechanism applied to a Kubernetes node: what other hosts send it meets its
    /// policy too).
    #[arg(long)]
    external_interface: Vec<String>,
    /// A connection of the host that skips its policy, DIRECTION:PROTOCOL:CIDR:PORT
    /// (e.g. ingress:tcp:10.0.0.0/8:22 keeps SSH from the management network open whatever
    /// the policy says); repeatable. DHCP always passes, and on a node the tunnel to the others.
    #[arg(long)]
    policy_bypass: Vec<pipeline::host_interface::Bypass>,
    /// Give every host interface the agent moved onto the bridge back to the host, exactly as
    /// it was (name, MAC, MTU, addresses, routes; what DHCP renewed since is kept), remove
    /// their ports from the bridge, and exit. Reads the state directory.
    #[arg(long, conflicts_with_all = ["external_node", "manifests"])]
    restore: bool,
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
    manifests: Option<PathBuf>,
    /// Read the cluster from the Kubernetes API with this kubeconfig (instead of
    /// --manifests). With neither, inside a pod (KUBERNETES_SERVICE_HOST set), the in-cluster
    /// configuration is used.
    #[cfg(feature = "kube")]
    #[arg(long, conflicts_with = "manifests")]
    kubeconfig: Option<PathBuf>,
    /// With --kubeconfig: a ConfigMap (NAMESPACE/NAME) whose sync token the agent attaches to
    /// the view that holds the objects the token expects, and reports back in the same
    /// ConfigMap once realized (`weir testbed` in cluster mode waits on it this way).
    #[cfg(feature = "kube")]
    #[arg(long, requires = "kubeconfig")]
    sync_configmap: Option<agent::kube_source::sync::SyncObject>,
    /// Where to write the status JSON after every realization.
    #[arg(long, default_value = "/var/run/weir/status.json")]
    status_file: PathBuf,
    /// Directory of the agent's persistent state: each manifest file's last good content,
    /// parsed (under `manifest-cache/`), so a restarted agent does not parse its manifests
    /// again and a file broken at restart keeps its last good version in force; and the
    /// realization record (`realization.json`: digests of the last inputs and flows), so a
    /// restarted agent that finds its flows installed does not wait for a compile. Default: the
    /// status file's directory (use a persistent one, e.g. /var/lib/weir, to keep it across
    /// reboots). Never inside the manifests directory.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Where to write the CNI configuration for weir-cni (`10-weir.conflist`: this node's
    /// bridge, OVSDB socket, pod CIDR and gateway), e.g. /etc/cni/net.d. Written once the node
    /// is realized (so no pod starts before its policy is in force) and when the pod CIDR
    /// changes. Default: none is written.
    #[arg(long)]
    cni_conf_dir: Option<PathBuf>,
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
    /// Where to serve Prometheus metrics (/metrics), /healthz and /readyz: HOST:PORT, or `off`
    /// (or empty) for nowhere. Off-host only when asked (e.g. 0.0.0.0:9810).
    #[arg(long, default_value = "127.0.0.1:9810", value_parser = parse_metrics_address)]
    metrics_address: MetricsAddress,
    /// Seconds between reads of the per-rule counters (weir_rule_packets_total) from the switch.
    #[arg(long, default_value_t = 10.0, value_parser = parse_interval)]
    rule_stats_interval: f64,
    /// The most rules that get per-rule counter series; the rest are counted in
    /// weir_rule_series_omitted.
    #[arg(long, default_value_t = agent::metrics::rule_stats::DEFAULT_CAP)]
    rule_series_cap: usize,
    /// Create the host gateway weir-gw0 on the bridge and configure it in this network
    /// namespace: the pod gateway address, routes to every pod CIDR, IPv4
    /// forwarding, and an nftables masquerade of what pods send out of the cluster (needs
    /// `nft`). Without it pods reach only pods.
    #[arg(long)]
    host_gateway: bool,
    /// MTU of the host gateway (the pods' MTU: the underlay's less the tunnel overhead).
    #[arg(long, default_value_t = 1450)]
    gateway_mtu: u32,
    /// The cluster's Service (ClusterIP) range(s), e.g. 10.96.0.0/12 (kubeadm's default),
    /// comma-separated. A pod's connection to a Service then meets its egress policy after the
    /// host's DNAT, on the backend it reaches; without it the ClusterIP itself is judged.
    #[arg(long, value_delimiter = ',')]
    service_cidr: Vec<ipnetwork::Ipv4Network>,
    /// Where the host's own policy (ClusterNetworkPolicy appliedTo.nodeSelector, or
    /// externalEntitySelector for --external-node) is realized: `nftables` (one table,
    /// `table inet weir-node`, in this network namespace; needs `nft`), `ovs` (on the bridge:
    /// what crosses the host gateway, and with --external-interface the node's uplink moved onto
    /// the bridge; an ExternalNode's moved interfaces) or `off` (the status then names each node
    /// policy as not realized; an ExternalNode's interfaces must then be moved onto the bridge
    /// with --external-interface).
    #[arg(long, value_enum, default_value = "off")]
    node_policy: NodePolicyArg,
    /// The audit log: one JSON line per connection decided by a rule with logging on
    /// (Antrea's enableLogging), or `off`.
    #[arg(long, default_value = "/var/log/weir/audit.log")]
    audit_log: PathBuf,
    /// Megabytes the audit log grows to before it is rotated (to AUDIT_LOG.1, ...).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    audit_log_max_size: u64,
    /// Rotated audit log files kept.
    #[arg(long, default_value_t = 3)]
    audit_log_backups: usize,
    /// The most audit log lines written a second; the rest are counted in
    /// weir_audit_log_lines_dropped_total{reason="rate_limit"}.
    #[arg(long, default_value_t = agent::audit::DEFAULT_LINES_PER_SECOND, value_parser = clap::value_parser!(u32).range(1..))]
    audit_log_rate: u32,
}

/// `--metrics-address`: an address, or none.
#[derive(Clone, Copy)]
struct MetricsAddress(Option<std::net::SocketAddr>);

fn parse_metrics_address(s: &str) -> Result<MetricsAddress, String> {
    match s.trim() {
        "" | "off" => Ok(MetricsAddress(None)),
        a => a.parse().map(|a| MetricsAddress(Some(a))).map_err(|e| format!("{e}: expected HOST:PORT (e.g. 127.0.0.1:9810) or `off`")),
    }
}

fn parse_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v >= 0.1 && v.is_finite() => Ok(v),
        _ => Err("expected seconds, at least 0.1".into()),
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CachePurgeArg {
    Auto,
    Always,
    Never,
}

/// `--node-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum NodePolicyArg {
    Off,
    Nftables,
    Ovs,
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

/// The one source the arguments name.
fn source(args: &Args) -> anyhow::Result<agent::ClusterSource> {
    if let Some(dir) = &args.manifests {
        return Ok(agent::ClusterSource::Files(dir.clone()));
    }
    #[cfg(feature = "kube")]
    {
        use agent::kube_source::KubeConnection;
        if let Some(path) = &args.kubeconfig {
            let connection = KubeConnection::Kubeconfig(path.clone());
            return Ok(agent::ClusterSource::Kube { connection, sync: args.sync_configmap.clone() });
        }
        if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
            return Ok(agent::ClusterSource::Kube { connection: KubeConnection::InCluster, sync: None });
        }
        anyhow::bail!("no cluster source: give --manifests DIR or --kubeconfig PATH (or run in a pod)")
    }
    #[cfg(not(feature = "kube"))]
    anyhow::bail!("no cluster source: give --manifests DIR (this weir is built without the kube feature)")
}

/// `--restore`: gives the moved host interfaces back and exits.
async fn restore(args: &Args) -> anyhow::Result<()> {
    let state_dir = args.state_dir.clone().unwrap_or_else(|| beside(&args.status_file).to_path_buf());
    let client = ovsdb::Client::connect(&args.ovsdb).await?;
    let manager = ovsdb::Manager::new(&client).await?;
    let started = std::time::Instant::now();
    let restored = agent::external_node::restore(&manager, &args.bridge, &state_dir).await?;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    if restored.is_empty() {
        println!("nothing to restore: no host interface has saved state in {}", state_dir.display());
    }
    for name in &restored {
        println!("{name}: given back to the host");
    }
    if !restored.is_empty() {
        println!("restored in {elapsed_ms:.0} ms");
    }
    Ok(())
}

/// The interfaces to move onto the bridge, their names checked.
fn interfaces(args: &Args) -> anyhow::Result<Vec<agent::external_node::IfName>> {
    let names = args.external_interface.iter().map(|i| agent::external_node::IfName::new(i));
    names.collect::<Result<Vec<_>, _>>().map_err(|e| anyhow::anyhow!("--external-interface: {e}"))
}

/// The ExternalNode the arguments name, its interface names checked.
fn external_node(args: &Args) -> anyhow::Result<Option<agent::external_node::ExternalNode>> {
    let Some(name) = &args.external_node else { return Ok(None) };
    Ok(Some(agent::external_node::ExternalNode { name: name.clone(), interfaces: interfaces(args)? }))
}

/// A Kubernetes node's interfaces to move: only its uplink, only for the OVS realization.
fn uplinks(args: &Args) -> anyhow::Result<Vec<agent::external_node::IfName>> {
    if args.external_node.is_some() || args.external_interface.is_empty() {
        return Ok(Vec::new());
    }
    if args.node_policy != NodePolicyArg::Ovs {
        anyhow::bail!("--external-interface on a Kubernetes node (--node) moves its uplink onto the bridge for --node-policy ovs only");
    }
    interfaces(args)
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    if args.restore {
        return restore(&args).await;
    }
    let source = source(&args)?;
    let external_node = external_node(&args)?;
    if let Some(e) = &external_node {
        match (args.node_policy, e.interfaces.is_empty()) {
            (NodePolicyArg::Nftables, false) => anyhow::bail!(
                "--external-interface moves interfaces onto the bridge (the OVS realization); with --node-policy nftables nothing is moved"
            ),
            (NodePolicyArg::Off | NodePolicyArg::Ovs, true) => {
                anyhow::bail!("--external-node needs --external-interface (the OVS realization) or --node-policy nftables")
            }
            _ => {}
        }
    }
    let uplinks = uplinks(&args)?;
    let node = match (&args.node, &external_node) {
        (Some(n), _) => n.clone(),
        (None, Some(e)) => e.name.clone(),
        (None, None) => anyhow::bail!("give --node NAME or --external-node NAME"),
    };
    let config = agent::Config {
        openflow: args.openflow.unwrap_or_else(|| args.bridge.clone()),
        node,
        external_node,
        host_bypass: args.policy_bypass.clone(),
        ovsdb: args.ovsdb,
        bridge: args.bridge,
        datapath: if args.datapath == "netdev" { ovsdb::DatapathType::Netdev } else { ovsdb::DatapathType::System },
        source,
        state_dir: Some(args.state_dir.clone().unwrap_or_else(|| beside(&args.status_file).to_path_buf())),
        status_file: args.status_file,
        cni_conf_dir: args.cni_conf_dir,
        tunnel: if args.tunnel == "vxlan" { agent::TunnelKind::Vxlan } else { agent::TunnelKind::Geneve },
        ovs_ctl: args.ovs_ctl,
        datapath_cache_purge: args.datapath_cache_purge.into(),
        metrics_address: args.metrics_address.0,
        rule_stats_interval: std::time::Duration::from_secs_f64(args.rule_stats_interval),
        rule_series_cap: args.rule_series_cap,
        host_gateway_mtu: args.host_gateway.then_some(args.gateway_mtu),
        service_cidrs: args.service_cidr.clone(),
        node_firewall: args.node_policy == NodePolicyArg::Nftables,
        node_policy_ovs: args.node_policy == NodePolicyArg::Ovs,
        uplinks,
        audit: (args.audit_log.as_os_str() != "off").then(|| agent::audit::AuditConfig {
            rotation: agent::audit::file::Rotation {
                path: args.audit_log.clone(),
                max_bytes: args.audit_log_max_size * 1024 * 1024,
                backups: args.audit_log_backups,
            },
            lines_per_second: args.audit_log_rate,
        }),
    };
    if let Some(dir) = config.status_file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if let Some(manifests) = &args.manifests {
        install_manifest_store(&config.status_file, args.state_dir.as_deref(), manifests)?;
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

/// Installs the store of each manifest file's last good content, parsed (taken by the agent's
/// ManifestCache, and read in the background from here on, while the agent connects to OVSDB).
fn install_manifest_store(status_file: &Path, state_dir: Option<&Path>, manifests: &Path) -> anyhow::Result<()> {
    use agent::manifest_store::{ManifestStore, install};
    match state_dir {
        Some(dir) => install(ManifestStore::open(dir, manifests)?),
        None => match ManifestStore::open(beside(status_file), manifests) {
            Ok(store) => install(store),
            Err(e) => tracing::warn!("manifest cache disabled (set --state-dir): {e}"),
        },
    }
    Ok(())
}

/// The directory of `file` (`.` for a bare file name): the default state directory.
fn beside(file: &Path) -> &Path {
    file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}
