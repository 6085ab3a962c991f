//! `weir get flows` and `weir get stats`: the installed flows of a pod or a policy rule, with
//! their counters, and per-rule packet and byte counters, read from a live switch (Antrea's
//! `antctl get ovsflows` and its rule statistics).
//!
//! Which conj_id stands for which rule is compiled from the node's manifests (as `weir trace`
//! names rules): conj_ids are a hash of the rule's match, so the offline compile gives the
//! agent's ids. A flow belongs to a rule when its cookie, its `conj_id` match or its
//! `conjunction` actions name one of the rule's conj_ids ([`pipeline::rule_flows`]); a clause
//! flow several rules share belongs to each.
use crate::compile_cmd::load_cluster;
use crate::output::OutputArgs;
use anyhow::Context;
use openflow::text::{format_flow, format_flow_stats};
use openflow::wire::multipart::FlowStatsRequest;
use openflow::{Action, Field, Flow};
use pipeline::rule_flows::{ConjRules, conj_ids, conj_rules};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// The installed flows of a pod or of a policy (or one of its rules), with their counters,
    /// as `ovs-ofctl dump-flows` prints them.
    Flows(FlowsArgs),
    /// Packets and bytes each installed policy rule decided (its verdict flows' counters).
    Stats(StatsArgs),
}

/// Where the node's switch and manifests are.
#[derive(clap::Args)]
struct NodeArgs {
    /// Directory of manifests (the agent's manifests directory on the node): names the rule
    /// behind each conj_id and the pods.
    #[arg(long)]
    cluster: PathBuf,
    /// The node (a Node object in the manifests).
    #[arg(long)]
    node: String,
    /// OpenFlow target of the node's bridge: unix:PATH, tcp:HOST:PORT, or a bridge name in
    /// $OVS_RUNDIR.
    #[arg(long, default_value = "br-int")]
    openflow: String,
}

#[derive(clap::Args)]
struct FlowsArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The flows of this pod (`namespace/name`): those matching or sending to its port, IP
    /// address or MAC address.
    #[arg(long, required_unless_present = "policy", conflicts_with = "policy")]
    pod: Option<String>,
    /// The flows of this policy: `namespace/name` for a NetworkPolicy, `name` for a
    /// cluster-scoped policy (AdminNetworkPolicy, ClusterNetworkPolicy, ...).
    #[arg(long)]
    policy: Option<String>,
    /// Only the flows of this rule of the policy (`ingress[0]`, or a named rule's name).
    #[arg(long, requires = "policy")]
    rule: Option<String>,
    /// OVSDB target of the node (to find a pod's port by its `iface-id`).
    #[arg(long, default_value = "unix:/var/run/openvswitch/db.sock")]
    ovsdb: String,
    /// Leave out the counters and timers (`ovs-ofctl dump-flows --no-stats`).
    #[arg(long)]
    no_stats: bool,
    /// Print port and table names instead of numbers (`ovs-ofctl --names`).
    #[arg(long)]
    names: bool,
}

#[derive(clap::Args)]
struct StatsArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// Only the rules of this policy (`namespace/name`, or `name` for cluster-scoped kinds).
    #[arg(long)]
    policy: Option<String>,
    /// The rules of this host in the nftables realization (`--node-policy nftables`): the
    /// counters of `table inet weir-node` in this network namespace instead of the switch's.
    /// --node names the Node, or the ExternalNode the host runs for.
    #[arg(long)]
    node_firewall: bool,
    #[command(flatten)]
    output: OutputArgs,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    match args.what {
        What::Flows(a) => flows(a).await,
        What::Stats(a) => stats(a).await,
    }
}

/// The node's installed conj_ids with their rules, from its manifests.
fn node_rules(node: &NodeArgs) -> anyhow::Result<(policy::Cluster, BTreeMap<u32, ConjRules>)> {
    let cluster = load_cluster(&node.cluster)?;
    let topo = pipeline::offline_topology(&cluster, &node.node)
        .with_context(|| format!("node {:?} is not in {} (or has no IPv4 pod CIDR)", node.node, node.cluster.display()))?;
    let compiled = pipeline::compile(&cluster, &topo);
    let rules = conj_rules(&compiled.flows, compiled.rules);
    Ok((cluster, rules))
}

/// Whether `origin` is of the policy named `name` (`namespace/name` or a cluster-scoped
/// `name`).
fn of_policy(origin: &policy::Origin, name: &str) -> bool {
    match (name.split_once('/'), &origin.policy.namespace) {
        (Some((ns, n)), Some(pns)) => ns == pns && n == origin.policy.name,
        (None, None) => name == origin.policy.name,
        _ => false,
    }
}

/// The conj_ids of `policy` (and `rule`), or an error naming what was not found.
fn policy_conj_ids(rules: &BTreeMap<u32, ConjRules>, policy: &str, rule: Option<&str>) -> anyhow::Result<BTreeSet<u32>> {
    let mut of_policy_ids = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for (id, conj) in rules {
        for info in conj.rules.iter().filter(|i| of_policy(&i.origin, policy)) {
            of_policy_ids.insert(*id);
            if rule.is_none_or(|r| r == info.origin.rule) {
                ids.insert(*id);
            }
        }
    }
    anyhow::ensure!(
        !of_policy_ids.is_empty(),
        "policy {policy:?} has no rule installed on this node (is it in --cluster, and does it select a pod here?)"
    );
    if let Some(r) = rule {
        anyhow::ensure!(!ids.is_empty(), "policy {policy:?} has no rule {r:?} installed on this node");
    }
    Ok(ids)
}

async fn flows(args: FlowsArgs) -> anyhow::Result<()> {
    let (cluster, rules) = node_rules(&args.node)?;
    let belongs: Box<dyn Fn(&Flow) -> bool> = match (&args.pod, &args.policy) {
        (Some(pod), _) => {
            let pod = PodIds::find(&cluster, pod, &args.ovsdb).await?;
            Box::new(move |f| pod.owns(f))
        }
        (None, Some(policy)) => {
            let ids = policy_conj_ids(&rules, policy, args.rule.as_deref())?;
            Box::new(move |f| !conj_ids(f).is_disjoint(&ids))
        }
        (None, None) => unreachable!("clap requires --pod or --policy"),
    };
    let sw = agent::switch::Switch::connect(&args.node.openflow).await.with_context(|| format!("{}: connecting", args.node.openflow))?;
    let names = if args.names { Some(crate::ofctl::fetch_names(&sw).await?) } else { None };
    let mut out = String::new();
    for fs in sw.dump_flow_stats(FlowStatsRequest::default()).await? {
        if !belongs(&fs.flow) {
            continue;
        }
        out.push(' ');
        if args.no_stats {
            format_flow(&mut out, &fs.flow, names.as_ref());
        } else {
            format_flow_stats(&mut out, &fs, names.as_ref());
        }
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}

/// What identifies a pod's flows on its node: its port, IPv4 address and MAC address.
struct PodIds {
    ofport: u32,
    ip: u128,
    mac: u128,
}

impl PodIds {
    /// The pod's IP from the manifests; its port and MAC from its Interface row (CNI contract:
    /// `external_ids:iface-id=namespace/name`).
    async fn find(cluster: &policy::Cluster, pod: &str, ovsdb: &str) -> anyhow::Result<PodIds> {
        let key: policy::PodKey = pod.parse().map_err(|_| anyhow::anyhow!("--pod {pod:?} is not namespace/name"))?;
        let p = cluster.pod(&key).with_context(|| format!("no pod {key} in the cluster"))?;
        let ip = p.ips.iter().find_map(|ip| match ip {
            std::net::IpAddr::V4(v4) => Some(u128::from(u32::from(*v4))),
            std::net::IpAddr::V6(_) => None,
        });
        let client = ovsdb::Client::connect(ovsdb).await.with_context(|| format!("{ovsdb}: connecting"))?;
        let mut monitor = ovsdb::InterfaceMonitor::start(&client).await?;
        let set = monitor.next().await.context("the OVSDB connection closed")?;
        let iface = set
            .interfaces
            .values()
            .find(|i| i.external_ids.get("iface-id").map(String::as_str) == Some(pod))
            .with_context(|| format!("no port with external_ids:iface-id={pod} on this node (is the pod on it?)"))?;
        let ofport = iface.ofport.filter(|p| *p > 0).with_context(|| format!("port {} has no OpenFlow port number", iface.name))?;
        let mac = iface.external_ids.get("attached-mac").and_then(|m| m.parse::<openflow::Mac>().ok());
        Ok(PodIds {
            ofport: ofport as u32,
            ip: ip.with_context(|| format!("pod {key} has no IPv4 address"))?,
            mac: mac.map_or(u128::MAX, |m| m.0.iter().fold(0u128, |v, b| v << 8 | u128::from(*b))),
        })
    }

    /// Whether `flow` matches the pod's port (`in_port`, the sender or output port register), IP or
    /// MAC exactly, or outputs to its port or sets its MAC or port.
    fn owns(&self, flow: &Flow) -> bool {
        let (out_port, sender) = (pipeline::reg::OUT_PORT, pipeline::reg::SENDER);
        let is = |field: Field, value: u128| match field {
            Field::InPort => value == u128::from(self.ofport),
            Field::Ipv4Src | Field::Ipv4Dst | Field::ArpSpa | Field::ArpTpa => value == self.ip,
            Field::EthSrc | Field::EthDst | Field::ArpSha | Field::ArpTha => value == self.mac,
            f if f == out_port.range.field || f == sender.range.field => value == u128::from(self.ofport),
            _ => false,
        };
        flow.matches.iter().any(|m| m.mask.is_none() && is(m.field, m.value))
            || flow.apply_actions().iter().any(|a| match a {
                Action::Output { port, .. } => port.0 == self.ofport,
                Action::SetField { field, value, mask: None } => is(*field, *value),
                _ => false,
            })
    }
}

/// One rule's counters, as `weir get stats` prints them.
#[derive(serde::Serialize)]
struct RuleCounters {
    tier: String,
    kind: String,
    policy: String,
    rule: String,
    packets: u64,
    bytes: u64,
    new_connections: u64,
}

impl RuleCounters {
    fn of(l: agent::metrics::rule_stats::RuleLabels, packets: u64, bytes: u64, new_connections: u64) -> RuleCounters {
        RuleCounters { tier: l.tier, kind: l.kind, policy: l.policy, rule: l.rule, packets, bytes, new_connections }
    }
}

async fn stats(args: StatsArgs) -> anyhow::Result<()> {
    if args.node_firewall {
        return node_firewall_stats(args).await;
    }
    let (_, mut rules) = node_rules(&args.node)?;
    if let Some(policy) = &args.policy {
        let ids = policy_conj_ids(&rules, policy, None)?;
        rules.retain(|id, _| ids.contains(id));
        for conj in rules.values_mut() {
            conj.rules.retain(|i| of_policy(&i.origin, policy));
        }
    }
    let sw = agent::switch::Switch::connect(&args.node.openflow).await.with_context(|| format!("{}: connecting", args.node.openflow))?;
    let counters = agent::metrics::rule_stats::read(&sw).await?;
    let (rows, _) = agent::metrics::rule_stats::rows(&rules, &counters, usize::MAX);
    let rows: Vec<RuleCounters> = rows
        .into_iter()
        .map(|(l, c)| RuleCounters::of(l, c.packets, c.bytes, c.new_connections))
        .collect();
    crate::output::emit(args.output.format(), &rows, || print_stats(&rows))
}

/// `--node-firewall`: each rule of the host's plan (compiled from the manifests as the agent
/// compiles it) with its named nftables counter. The firewall judges only packets conntrack
/// has not seen established, so its packets are new connections (a resent SYN again, as the
/// switch's NEW-CONNS counts it).
async fn node_firewall_stats(args: StatsArgs) -> anyhow::Result<()> {
    use agent::node_firewall::ThisHost;
    let cluster = load_cluster(&args.node.cluster)?;
    let name = args.node.node.as_str();
    let host = if cluster.external_nodes.keys().any(|(_, n)| n == name) {
        ThisHost::ExternalNode(name)
    } else if cluster.nodes.contains_key(name) {
        // The tunnel's bypass entry changes no rule's counter.
        ThisHost::Node { name, tunnel_port: agent::TunnelKind::Geneve.udp_port() }
    } else {
        anyhow::bail!("--node {name:?}: neither a Node nor an ExternalNode in {}", args.node.cluster.display());
    };
    let stats = agent::metrics::host_rules::HostRuleStats::default();
    stats.set_plan(&agent::node_firewall::plan_for(&cluster, host, &[]));
    stats.set_counters(agent::node_firewall::counters().await.map_err(|e| anyhow::anyhow!("reading table inet weir-node: {e}"))?);
    let rows: Vec<RuleCounters> = stats
        .rows()
        .into_iter()
        .filter(|(l, _)| args.policy.as_deref().is_none_or(|p| l.policy == p))
        .map(|(l, c)| RuleCounters::of(l, c.packets, c.bytes, c.packets))
        .collect();
    if let (Some(policy), true) = (&args.policy, rows.is_empty()) {
        anyhow::bail!("--policy {policy:?}: no rule of it applies to {name:?}");
    }
    crate::output::emit(args.output.format(), &rows, || print_stats(&rows))
}

fn print_stats(rows: &[RuleCounters]) {
    let widths = [
        rows.iter().map(|r| r.tier.len()).max().unwrap_or(0).max(4),
        rows.iter().map(|r| r.kind.len()).max().unwrap_or(0).max(4),
        rows.iter().map(|r| r.policy.len()).max().unwrap_or(0).max(6),
        rows.iter().map(|r| r.rule.len()).max().unwrap_or(0).max(4),
    ];
    let [t, k, p, r] = widths;
    println!("{:t$}  {:k$}  {:p$}  {:r$}  {:>10}  {:>12}  {:>10}", "TIER", "KIND", "POLICY", "RULE", "PACKETS", "BYTES", "NEW-CONNS");
    for row in rows {
        let (tier, kind, policy, rule) = (&row.tier, &row.kind, &row.policy, &row.rule);
        println!("{tier:t$}  {kind:k$}  {policy:p$}  {rule:r$}  {:>10}  {:>12}  {:>10}", row.packets, row.bytes, row.new_connections);
    }
}
