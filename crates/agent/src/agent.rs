//! The agent's main loop: the I/O around [`NodeAgent`], which makes every decision.
//!
//! Three inputs change what the switch should hold: the manifests directory (cluster view),
//! the bridge's Interface rows (local pods) and the switch connection itself (a new
//! connection means the installed flows must be read back). The loop hands each to the
//! [`NodeAgent`] as an [`Event`], performs the [`Action`]s it asks for (connect, read the
//! switch, send a bundle, purge the datapath's cache, clear and re-arm flow-restore-wait,
//! write the status...) one at a time, feeding each result back as an event, and sleeps until
//! the next input or [`NodeAgent::poll_timeout`]. Nothing here decides when or what to do.

use crate::node_agent::{Action, Event, Failure, NodeAgent, Settings, SwitchFacts, weirs_flows};
use crate::ovs_bugs::OvsVersion;
use crate::cluster_source::{ClusterSource, SourceError, SourceEvent};
use crate::metrics::Metrics;
use crate::status::Status;
use crate::switch::{Down, Switch, SwitchError};
use openflow::wire::Message;
use pipeline::{FlowSet, Table};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

pub use crate::node_agent::TUNNEL_PORT;

/// The tunnel protocol between nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelKind {
    /// GENEVE (UDP 6081).
    Geneve,
    /// VXLAN (UDP 4789).
    Vxlan,
}

impl TunnelKind {
    /// Its UDP destination port.
    pub fn udp_port(self) -> u16 {
        match self {
            TunnelKind::Geneve => 6081,
            TunnelKind::Vxlan => 4789,
        }
    }
}

/// How an agent is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// This node's name (matches a Node object of the cluster view).
    pub node: String,
    /// OVSDB target (`unix:PATH` or `tcp:HOST:PORT`).
    pub ovsdb: String,
    /// OpenFlow target of the bridge (`unix:PATH`, `tcp:HOST:PORT` or a bridge name).
    pub openflow: String,
    /// The integration bridge.
    pub bridge: String,
    /// The datapath of the bridge (`netdev` for the userspace datapath).
    pub datapath: ovsdb::DatapathType,
    /// Where the cluster view comes from.
    pub source: ClusterSource,
    /// Where to write the status JSON.
    pub status_file: PathBuf,
    /// The agent's persistent state (the realization record, see
    /// [`crate::realization_record`]); `None`: nothing is kept.
    pub state_dir: Option<PathBuf>,
    /// Where to write the CNI configuration for weir-cni once the node is realized (see
    /// [`crate::cni_conf`]); `None`: nowhere.
    pub cni_conf_dir: Option<PathBuf>,
    /// Tunnel protocol.
    pub tunnel: TunnelKind,
    /// ovs-vswitchd's control socket: a path, or a daemon name whose pidfile is in
    /// `$OVS_RUNDIR` (found as `ovs-appctl -t NAME` finds it).
    pub ovs_ctl: String,
    /// When to purge the datapath's cached flows after installing a change.
    pub datapath_cache_purge: crate::ovs_bugs::CachePurge,
    /// Where to serve `/metrics`, `/healthz` and `/readyz` (`None`: nowhere).
    pub metrics_address: Option<std::net::SocketAddr>,
    /// How often the per-rule counters are read from the switch (with metrics served).
    pub rule_stats_interval: Duration,
    /// The most rules `weir_rule_packets_total` and `weir_rule_bytes_total` have series for.
    pub rule_series_cap: usize,
    /// `Some(mtu)`: create and keep the host gateway `weir-gw0` with this MTU (its address,
    /// routes and the masquerade, see [`crate::host_gateway`]); `None`: pods reach only pods.
    pub host_gateway_mtu: Option<u32>,
    /// The cluster's Service (ClusterIP) ranges: pods' connections to them meet egress policy
    /// after the host's DNAT, on the real destination (see `pipeline::Topology::service_cidrs`).
    pub service_cidrs: Vec<ipnetwork::Ipv4Network>,
    /// Realize the host's own policy (rules applied to its Node, or to its ExternalNode's
    /// ExternalEntities) in nftables ([`crate::node_firewall`]); off: the status warns of
    /// each such policy.
    pub node_firewall: bool,
    /// Where and how the audit log of rules with logging on is written (`None`: it is not).
    pub audit: Option<crate::audit::AuditConfig>,
    /// The ExternalNode this agent runs for, whose host interfaces it moves onto the bridge
    /// (see [`crate::external_node`]), or, with `node_firewall`, whose ExternalEntities it
    /// protects in nftables with no switch at all (see [`crate::external_host`]); `None`: a
    /// Kubernetes node.
    pub external_node: Option<crate::external_node::ExternalNode>,
    /// Connections of the host interfaces that skip their policy (`run` adds the API server's,
    /// see [`ClusterSource::bypass`]).
    pub host_bypass: Vec<pipeline::host_interface::Bypass>,
    /// Realize the node's own policy on the bridge (`--node-policy ovs`, see
    /// [`pipeline::node_policy`]): the host gateway and the moved [`Config::uplinks`] are the
    /// Node's ports.
    pub node_policy_ovs: bool,
    /// This Kubernetes node's interfaces to move onto the bridge as an ExternalNode's are
    /// (`--node-policy ovs --external-interface IF`), so what other hosts send it meets its
    /// policy too.
    pub uplinks: Vec<crate::external_node::IfName>,
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// OVSDB failed while setting up the bridge.
    #[error("ovsdb: {0}")]
    Ovsdb(#[from] ovsdb::Error),
    /// The cluster source could not start.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The metrics address could not be bound.
    #[error("serving metrics on {address}: {error}")]
    Metrics {
        /// The address.
        address: std::net::SocketAddr,
        /// Why.
        error: std::io::Error,
    },
}

/// The bridge as weir wants it: OpenFlow 1.5 only, secure fail mode, tables named from the
/// pipeline declaration.
pub fn bridge_spec(config: &Config) -> ovsdb::BridgeSpec {
    let mut spec = ovsdb::BridgeSpec::new(&config.bridge);
    spec.datapath_type = config.datapath;
    spec.table_names = Table::ALL.iter().map(|t| (t.id(), t.name().to_string())).collect();
    spec
}

/// The tunnel port: remote endpoint chosen per packet by `tun_dst`. No `ofport_request`: pods
/// attached before the agent started may hold any number; the monitor tells the real one.
pub fn tunnel_spec(config: &Config) -> ovsdb::PortSpec {
    let kind = match config.tunnel {
        TunnelKind::Geneve => ovsdb::TunnelKind::Geneve,
        TunnelKind::Vxlan => ovsdb::TunnelKind::Vxlan,
    };
    ovsdb::PortSpec::new(TUNNEL_PORT, ovsdb::PortKind::Tunnel(ovsdb::TunnelSpec::new(kind, ovsdb::Flowable::Flow)))
}


impl From<&Config> for Settings {
    fn from(config: &Config) -> Self {
        Settings {
            node: config.node.clone(),
            openflow: config.openflow.clone(),
            datapath_cache_purge: config.datapath_cache_purge,
            // The audit log names the rule of a packet-in's conj_id from them too.
            report_rules: config.metrics_address.is_some() || config.audit.is_some(),
            keep_record: config.state_dir.is_some(),
            publish_pod_network: config.cni_conf_dir.is_some(),
            service_cidrs: config.service_cidrs.clone(),
            host_bypass: config.host_bypass.clone(),
            node_firewall: config.node_firewall,
            node_policy_ovs: config.node_policy_ovs,
            tunnel_udp_port: config.tunnel.udp_port(),
        }
    }
}

/// Milliseconds since `t`, for the log.
fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// How long ovs-vswitchd's control socket may take to answer.
const UNIXCTL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long ovs-vswitchd may take to apply the removal of `flow-restore-wait`.
const FLOW_RESTORE_TIMEOUT: Duration = Duration::from_secs(5);

/// The agent's I/O: what the [`NodeAgent`]'s actions act on.
struct Io {
    config: Config,
    manager: Arc<ovsdb::Manager>,
    switch: Option<Arc<Switch>>,
    /// The connection opened as the agent started, until the first [`Action::Connect`].
    early: Option<EarlyConnection>,
    /// The flow read begun on the current connection before [`Action::ReadSwitch`] asked.
    prefetched: Option<FlowRead>,
    /// Where each status also goes: the Kubernetes status writer, in cluster mode.
    status_out: Option<tokio::sync::watch::Sender<Status>>,
    /// Rejected packets answered, over every connection.
    answers: Arc<crate::reject::Counts>,
    /// The audit log, when it is written.
    audit: Option<Arc<crate::audit::AuditLog>>,
}

/// A flow read running on its own task: weir's flows ([`weirs_flows`]) and how long the read
/// took.
type FlowRead = tokio::task::JoinHandle<(Result<FlowSet, SwitchError>, Duration)>;

/// The first connection to the switch and the read of its flows, begun as the agent starts.
///
/// After a restart the agent must read back every installed flow before it may send anything;
/// begun at once, that read overlaps OVSDB setup, reading the manifests and compiling instead
/// of following them (the restart benchmark: reconciliation time against `ovs-ofctl
/// replace-flows`). The read is what [`Action::ReadSwitch`] would fetch on this connection:
/// weir sends nothing on a new connection before reading it, and a change made meanwhile by
/// someone else is the same race as during any read, caught by the periodic flow audit.
type EarlyConnection = tokio::task::JoinHandle<Result<(Arc<Switch>, FlowRead), SwitchError>>;

fn connect_early(target: String) -> EarlyConnection {
    tokio::spawn(async move {
        let sw = Arc::new(Switch::connect(&target).await?);
        Ok((sw.clone(), read_flows(sw)))
    })
}

/// Asks for the packet-ins of `controller` actions (OVS sends none to a connection on the
/// bridge's management socket unless it asks) and adds the meters they pass (Reject answers,
/// audit log), or brings existing ones to weir's rates.
async fn receive_packet_ins(sw: &Switch) -> Result<(), SwitchError> {
    use openflow::wire::message::{AsyncConfig, async_config};
    let mask = 1 << async_config::REASON_APPLY_ACTION;
    let roles = [async_config::PACKET_IN_MASTER, async_config::PACKET_IN_SLAVE];
    sw.send(&Message::SetAsync(roles.map(|prop_type| AsyncConfig { prop_type, mask }).to_vec()))?;
    ensure_meter(sw, pipeline::reject::packet_in_meter).await?;
    ensure_meter(sw, pipeline::audit::audit_meter).await
}

/// Adds the meter `meter(command)` describes, or modifies it if it exists.
async fn ensure_meter(sw: &Switch, meter: fn(u16) -> openflow::wire::meter::MeterMod) -> Result<(), SwitchError> {
    use openflow::wire::meter::meter_command::{ADD, MODIFY};
    let exists = |e: &openflow::wire::message::ErrorMsg| {
        openflow::wire::codes::error_code(e.etype, e.code, e.experimenter).is_some_and(|c| c.name == "OFPMMFC_METER_EXISTS")
    };
    sw.send(&Message::MeterMod(meter(ADD)))?;
    match sw.barrier().await {
        Err(SwitchError::Rejected { error, .. }) if exists(&error) => {
            sw.send(&Message::MeterMod(meter(MODIFY)))?;
            sw.barrier().await
        }
        other => other,
    }
}

/// Reads every installed flow on its own task.
fn read_flows(sw: Arc<Switch>) -> FlowRead {
    tokio::spawn(async move {
        let started = Instant::now();
        let flows = sw.dump_flows().await.map(weirs_flows);
        (flows, started.elapsed())
    })
}

impl Io {
    /// Performs `action`; returns the event that reports its result, if it has one.
    async fn perform(&mut self, action: Action) -> Option<Event> {
        match action {
            Action::WriteStatus(mut status) => {
                status.publish(&self.config.status_file);
                if let Some(out) = &self.status_out {
                    out.send_replace(*status);
                }
                None
            }
            Action::ReconcileTcPorts { wanted, interfaces } => {
                let done = crate::tc_ports::reconcile(&self.manager, &self.config.bridge, &wanted, &interfaces).await;
                Some(Event::TcPortsReconciled(done))
            }
            Action::Connect => match self.connect().await {
                Ok(sw) => {
                    info!(target = %self.config.openflow, "OpenFlow connection up");
                    // Reject rules' and logged rules' packets (through the meters) are handled
                    // on every connection.
                    if let Err(e) = receive_packet_ins(&sw).await {
                        warn!("packet-ins could not be set up ({e}): rejected packets go unanswered, connections unlogged");
                    }
                    tokio::spawn(crate::packet_ins::serve(sw.clone(), self.answers.clone(), self.audit.clone()));
                    self.switch = Some(sw);
                    Some(Event::Connected)
                }
                Err(e) => Some(Event::ConnectFailed(e.to_string())),
            },
            Action::Disconnect => {
                self.drop_connection();
                None
            }
            Action::ReadSwitch => {
                let facts = self.switch_facts().await;
                let started = Instant::now();
                let read = match (self.prefetched.take(), &self.switch) {
                    (Some(read), Some(_)) => read,
                    (None, Some(sw)) => read_flows(sw.clone()),
                    (_, None) => return Some(Event::SwitchRead { facts, flows: Err(self.not_connected()) }),
                };
                let flows = match read.await {
                    Ok((flows, took)) => flows.map(|f| (f, took)).map_err(|e| self.failure(e)),
                    Err(e) => Err(Failure::up(format!("reading the installed flows: {e}"))),
                };
                let flows = flows.map(|(flows, took)| {
                    let (elapsed_ms, waited_ms) = (took.as_secs_f64() * 1e3, ms(started));
                    info!(flows = flows.len(), elapsed_ms, waited_ms, "installed flows read");
                    flows
                });
                Some(Event::SwitchRead { facts, flows })
            }
            Action::SendBundle(mods) => {
                let started = Instant::now();
                let result = match &self.switch {
                    Some(sw) => sw.bundle(&mods).await.map_err(|e| self.failure(e)),
                    None => Err(self.not_connected()),
                };
                if result.is_ok() {
                    info!(flow_mods = mods.len(), elapsed_ms = ms(started), "realized");
                }
                Some(Event::BundleDone(result))
            }
            Action::PurgeDatapathCache => {
                let started = Instant::now();
                let result = self.purge_datapath_cache().await;
                if result.is_ok() {
                    info!(elapsed_ms = ms(started), "datapath's cached flows purged");
                }
                Some(Event::Purged(result.map_err(|e| Failure { error: e, connection_down: self.connection_down() })))
            }
            Action::FinishFlowRestore => {
                let result = finish_flow_restore(&self.manager).await;
                Some(Event::FlowRestoreDone(result.map_err(|e| Failure { error: e, connection_down: self.connection_down() })))
            }
            Action::CountFlows => {
                let count = match &self.switch {
                    Some(sw) => flows_on_switch(sw).await.map_err(|e| e.to_string()),
                    None => Err("not connected".to_string()),
                };
                Some(Event::FlowsCounted(count))
            }
            // Recorded by the metrics before it was performed.
            Action::Realized(r) => {
                if let (Some(audit), Some(rules)) = (&self.audit, &r.rules) {
                    audit.set_rules(rules.clone());
                }
                None
            }
            Action::WriteRecord(record) => {
                self.write_record(&record);
                None
            }
            Action::PublishPodNetwork(net) => {
                let list = crate::cni_conf::conflist(&net, &self.config.bridge, &self.config.ovsdb);
                match self.config.cni_conf_dir.as_deref().map(|dir| crate::cni_conf::write(dir, &list)) {
                    Some(Err(e)) => warn!("the CNI configuration could not be written: {e}"),
                    Some(Ok(())) => info!(subnet = %net.subnet, gateway = %net.gateway, "CNI configuration written"),
                    None => {}
                }
                None
            }
        }
    }

    fn write_record(&self, record: &crate::realization_record::Record) {
        if let Some(dir) = &self.config.state_dir
            && let Err(e) = crate::realization_record::write(&dir.join(crate::realization_record::FILE), record)
        {
            warn!("the realization record could not be written (the next start compiles): {e}");
        }
    }

    /// A new connection: the one opened as the agent started (with its flow read under way),
    /// else a fresh one.
    async fn connect(&mut self) -> Result<Arc<Switch>, SwitchError> {
        if let Some(early) = self.early.take() {
            match early.await {
                Ok(Ok((sw, read))) if sw.down_reason().is_none() => {
                    self.prefetched = Some(read);
                    return Ok(sw);
                }
                Ok(Err(e)) => info!("the connection opened at start failed ({e}): connecting again"),
                _ => {}
            }
        }
        Ok(Arc::new(Switch::connect(&self.config.openflow).await?))
    }

    /// Forgets the connection (it is down) and anything read on it.
    fn drop_connection(&mut self) {
        self.switch = None;
        if let Some(read) = self.prefetched.take() {
            read.abort();
        }
    }

    /// Whether the OpenFlow connection is down (or gone).
    fn connection_down(&self) -> bool {
        self.switch.as_ref().is_none_or(|sw| sw.down_reason().is_some())
    }

    fn failure(&self, e: SwitchError) -> Failure {
        Failure { error: e.to_string(), connection_down: self.connection_down() }
    }

    fn not_connected(&self) -> Failure {
        Failure::down(format!("not connected to {}", self.config.openflow))
    }

    /// Reads the running ovs-vswitchd's version (its control socket, else OVSDB's
    /// `ovs_version`) and the bridge's datapath type (see [`crate::ovs_bugs`]).
    async fn switch_facts(&self) -> SwitchFacts {
        let from_daemon = match ovsdb::unixctl::socket_path(&self.config.ovs_ctl) {
            Ok(socket) => ovsdb::unixctl::call(&socket, "version", &[], UNIXCTL_TIMEOUT).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let (stored, datapath_type) = self.manager.with_view(|db| {
            use ovsdb::tables::{Bridge, OpenVswitch, TableRow};
            let stored = OpenVswitch::all(db).into_iter().find_map(|o| o.ovs_version);
            let datapath = Bridge::named(db, &self.config.bridge).map(|b| b.datapath_type).unwrap_or_default();
            (stored, datapath)
        });
        let version = match &from_daemon {
            Ok(line) => OvsVersion::parse(line).map(|v| (v, "ovs-vswitchd")),
            Err(_) => None,
        }
        .or_else(|| stored.as_deref().and_then(OvsVersion::parse).map(|v| (v, "ovsdb")));
        if let (None, Err(e)) = (version, &from_daemon) {
            warn!("the switch's version is unknown (ovsdb has none; {e})");
        }
        SwitchFacts { version, datapath_type }
    }

    /// Purges the datapath's cached flows, so that no packet keeps the verdict of a flow cached
    /// before the change (the mitigation of a known OVS bug; see [`crate::ovs_bugs`]).
    async fn purge_datapath_cache(&self) -> Result<(), String> {
        let socket = ovsdb::unixctl::socket_path(&self.config.ovs_ctl).map_err(|e| e.to_string())?;
        ovsdb::unixctl::call(&socket, "revalidator/purge", &[], UNIXCTL_TIMEOUT).await.map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// How many flows the switch holds, learned ones aside (a learned flow appearing between
/// the two counts reads as a difference; that costs one needless re-read).
async fn flows_on_switch(switch: &Switch) -> Result<usize, SwitchError> {
    use openflow::wire::multipart::FlowStatsRequest;
    use pipeline::cookie::{CATEGORY_MASK, Category, cookie};
    let all = switch.count_flows(FlowStatsRequest::default()).await?;
    let learned = FlowStatsRequest { cookie: cookie(Category::Learned, 0), cookie_mask: CATEGORY_MASK, ..FlowStatsRequest::default() };
    Ok(all.saturating_sub(switch.count_flows(learned).await?) as usize)
}

/// Resolves with why when the switch connection goes down; never while there is none.
fn switch_down(switch: &Option<Arc<Switch>>) -> impl std::future::Future<Output = Down> + 'static {
    let down = switch.as_deref().map(Switch::down);
    async move {
        match down {
            Some(d) => d.await,
            None => std::future::pending().await,
        }
    }
}

/// After the flows are installed on a new connection: lets an ovs-vswitchd that started
/// waiting for them forward again, then arms `flow-restore-wait` for its next restart, so a
/// restarted ovs-vswitchd keeps the datapath as it was (kernel datapath) or forwards nothing
/// (userspace datapath) until this agent has reinstalled its flows, instead of handling
/// packets with an empty table. See `ovsdb::manager::flow_restore`.
async fn finish_flow_restore(manager: &ovsdb::Manager) -> Result<(), String> {
    let started = Instant::now();
    let was_waiting = manager.flow_restore_wait();
    let restore = async {
        manager.finish_flow_restore(FLOW_RESTORE_TIMEOUT).await.map_err(|e| format!("clearing flow-restore-wait: {e}"))?;
        manager.arm_flow_restore_wait().await.map_err(|e| format!("arming flow-restore-wait: {e}"))
    };
    // OVSDB calls wait for a lost connection to come back; the loop must not.
    tokio::time::timeout(FLOW_RESTORE_TIMEOUT, restore).await.map_err(|_| {
        format!("clearing and re-arming flow-restore-wait: OVSDB did not answer within {} s", FLOW_RESTORE_TIMEOUT.as_secs())
    })??;
    info!(was_waiting, elapsed_ms = ms(started), "flow-restore-wait cleared and re-armed");
    Ok(())
}

/// Runs the agent until `shutdown` resolves.
pub async fn run(mut config: Config, shutdown: impl std::future::Future<Output = ()>) -> Result<(), AgentError> {
    let derived = config.source.bypass().await;
    if !derived.is_empty() {
        info!(?derived, "the host's connections to the API server skip its policy");
    }
    config.host_bypass.extend(derived);
    // An ExternalNode in the nftables realization keeps its interfaces off the bridge: no
    // switch to program, only the host's firewall.
    if config.external_node.is_some() && config.node_firewall {
        return crate::external_host::run(config, shutdown).await;
    }
    // Written before anything can block, so the status file exists (and ages) from the start.
    Status { node: config.node.clone(), last_error: Some("starting: connecting to OVSDB".into()), ..Status::default() }
        .publish(&config.status_file);
    let early = connect_early(config.openflow.clone());
    let client = ovsdb::Client::connect(&config.ovsdb).await?;
    let manager = Arc::new(ovsdb::Manager::new(&client).await?);
    manager.ensure_bridge(&bridge_spec(&config)).await?;
    // An ExternalNode has no pods, so no tunnel to other nodes' pods.
    if config.external_node.is_none() {
        manager.ensure_port(&config.bridge, &tunnel_spec(&config)).await?;
    }
    if let Some(mtu) = config.host_gateway_mtu {
        manager.ensure_port(&config.bridge, &crate::host_gateway::port_spec(mtu)).await?;
    }
    let host_network = config.host_gateway_mtu.map(crate::host_gateway::spawn);
    let node_firewall = config.node_firewall.then(crate::node_firewall::spawn);
    // The interfaces to move onto the bridge: an ExternalNode's, or (the ExternalNode mechanism
    // applied to this Kubernetes node) its uplink.
    let moved = match &config.external_node {
        Some(node) => Some(node.clone()),
        None if !config.uplinks.is_empty() => {
            Some(crate::external_node::ExternalNode { name: config.node.clone(), interfaces: config.uplinks.clone() })
        }
        None => None,
    };
    let mut move_failures = moved.map(|node| {
        let state_dir = config.state_dir.clone().unwrap_or_else(|| PathBuf::from("."));
        crate::external_node::spawn(manager.clone(), config.bridge.clone(), config.datapath, state_dir, node)
    });
    let _reensure = manager.reensure_on_reconnect();
    let mut interfaces = ovsdb::InterfaceMonitor::start(&client).await?;
    let answers: Arc<crate::reject::Counts> = Arc::default();
    let audit = config.audit.as_ref().map(|a| Arc::new(crate::audit::AuditLog::new(&config.node, a)));
    let mut metrics = Metrics::new(Some(client.state()), answers.clone(), config.rule_series_cap);
    if let Some(audit) = &audit {
        metrics.register_audit(audit.counts());
    }
    let metrics = Arc::new(metrics);
    let _server = serve_metrics(&config, &metrics).await?;
    // The cluster view may come through an interface being moved (from the API server): the
    // source starts once each has been tried, so that its connections are opened through the
    // bridge. One opened before a move would be met mid-stream by the bridge's conntrack and
    // dropped as invalid. Until the first view, the moved interfaces forward without policy
    // (see `node_agent::bootstrap`).
    if let Some(moves) = &mut move_failures
        && moves.wait_for(Option::is_some).await.is_ok()
    {
        moves.mark_changed();
    }
    let (mut sources, _source) = config.source.clone().start().await?;

    let mut agent = NodeAgent::new(Settings::from(&config), Instant::now());
    if let Some(record) = config.state_dir.as_ref().and_then(|d| crate::realization_record::read(&d.join(crate::realization_record::FILE))) {
        agent.recall(record);
    }
    let status_out = status_writer(&config).await?;
    let mut rule_stats = RuleStatsReader::new(config.metrics_address.is_some(), config.rule_stats_interval, config.node_firewall);
    let mut io = Io { config, manager, switch: None, early: Some(early), prefetched: None, status_out, answers, audit };
    tokio::pin!(shutdown);

    loop {
        metrics.loop_turned(Instant::now());
        while let Some(action) = agent.poll_action() {
            metrics.action(Instant::now(), &action);
            if let Some(result) = io.perform(action).await {
                deliver(&mut agent, &metrics, result);
            }
        }
        let wake = agent.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            _ = &mut shutdown => {
                if let Some(record) = agent.record_now() {
                    io.write_record(&record);
                }
                return Ok(());
            }
            event = sources.recv() => {
                let event = match event {
                    Some(SourceEvent::Cluster { cluster, token }) => {
                        if let Some(tx) = &host_network {
                            let want = crate::host_gateway::HostNetwork::of(&cluster, &io.config.node);
                            tx.send_if_modified(|have| want.is_some() && *have != want && { *have = want; true });
                        }
                        if let Some(audit) = &io.audit {
                            audit.set_pods(&cluster);
                        }
                        if let Some(tx) = &node_firewall {
                            let c = &io.config;
                            let host = crate::node_firewall::ThisHost::Node { name: &c.node, tunnel_port: c.tunnel.udp_port() };
                            let want = crate::node_firewall::plan_for(&cluster, host, &c.host_bypass);
                            metrics.host_rules.set_plan(&want);
                            tx.send_if_modified(|have| have.as_ref() != Some(&want) && { *have = Some(want); true });
                        }
                        Event::Manifests { cluster, token }
                    }
                    Some(SourceEvent::Unreadable(why)) => Event::ManifestsUnreadable(why),
                    Some(SourceEvent::Warnings(warnings)) => Event::SourceWarnings(warnings),
                    None => return Ok(()),
                };
                deliver(&mut agent, &metrics, event);
            }
            Some(Some(failures)) = changed(&mut move_failures) => deliver(&mut agent, &metrics, Event::InterfaceMoveFailures(failures)),
            set = interfaces.next() => {
                let Some(set) = set else { return Ok(()) };
                deliver(&mut agent, &metrics, Event::Interfaces(set.interfaces));
            }
            why = switch_down(&io.switch) => {
                io.drop_connection();
                deliver(&mut agent, &metrics, Event::SwitchLost(why.to_string()));
            }
            _ = rule_stats.due() => rule_stats.start(&io.switch, &metrics),
            _ = sleep_until(wake) => agent.handle_timeout(Instant::now()),
        }
    }
}

/// In cluster mode, starts the writer of this node's conditions on the objects it realizes
/// (see [`crate::kube_source::status_writer`]) and returns where to send each status.
pub(crate) async fn status_writer(config: &Config) -> Result<Option<tokio::sync::watch::Sender<Status>>, AgentError> {
    match &config.source {
        #[cfg(feature = "kube")]
        ClusterSource::Kube { connection, sync } => {
            let client = connection.client().await.map_err(SourceError::from)?;
            let (tx, rx) = tokio::sync::watch::channel(Status::default());
            if let Some(object) = sync {
                crate::kube_source::sync::spawn_ack(client.clone(), &config.node, object.clone(), rx.clone());
            }
            // Ends when `tx` is dropped, with the agent's loop.
            crate::kube_source::status_writer::spawn(client, &config.node, rx);
            Ok(Some(tx))
        }
        _ => Ok(None),
    }
}

/// Hands `event` to the agent, showing it to the metrics first.
fn deliver(agent: &mut NodeAgent, metrics: &Metrics, event: Event) {
    let now = Instant::now();
    metrics.event(now, &event);
    agent.handle(now, event);
}

/// The metrics server's task, stopped when the agent stops.
pub(crate) struct ServerTask(tokio::task::JoinHandle<()>);

/// Serves `metrics` on `--metrics-address` unless it is off; fails when the address cannot be bound.
pub(crate) async fn serve_metrics(config: &Config, metrics: &Arc<Metrics>) -> Result<Option<ServerTask>, AgentError> {
    let Some(address) = config.metrics_address else { return Ok(None) };
    let task = crate::metrics::server::serve(address, metrics.clone()).await.map_err(|error| AgentError::Metrics { address, error })?;
    Ok(Some(ServerTask(task)))
}

impl Drop for ServerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads the per-rule counters from the switch (and the node firewall) every interval, one
/// read at a time, on its own task (a read of a large table must not hold the loop). Idle
/// without metrics.
pub(crate) struct RuleStatsReader {
    timer: Option<tokio::time::Interval>,
    reading: Option<tokio::task::JoinHandle<()>>,
    /// Whether the node firewall runs (its counters are read too).
    node_firewall: bool,
}

impl RuleStatsReader {
    pub(crate) fn new(enabled: bool, every: Duration, node_firewall: bool) -> RuleStatsReader {
        let timer = enabled.then(|| {
            let mut t = tokio::time::interval(every);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        RuleStatsReader { timer, reading: None, node_firewall }
    }

    /// Resolves when a read is due; never without metrics.
    pub(crate) async fn due(&mut self) {
        match &mut self.timer {
            Some(t) => {
                t.tick().await;
            }
            None => std::future::pending().await,
        }
    }

    /// Reads the switch's counters (when connected) and the node firewall's (when it runs).
    pub(crate) fn start(&mut self, switch: &Option<Arc<Switch>>, metrics: &Arc<Metrics>) {
        if self.reading.as_ref().is_some_and(|r| !r.is_finished()) {
            return;
        }
        let (switch, node_firewall, metrics) = (switch.clone(), self.node_firewall, metrics.clone());
        self.reading = Some(tokio::spawn(async move {
            if let Some(sw) = switch {
                match crate::metrics::rule_stats::read(&sw).await {
                    Ok(counters) => metrics.rules.set_counters(&counters),
                    Err(e) => tracing::debug!("reading the rules' flow statistics: {e}"),
                }
                match crate::metrics::meters::read(&sw).await {
                    Ok(counts) => metrics.meters.set(counts),
                    Err(e) => tracing::debug!("reading the packet-in meters' statistics: {e}"),
                }
            }
            if node_firewall {
                match crate::node_firewall::counters().await {
                    Ok(counts) => metrics.host_rules.set_counters(counts),
                    Err(e) => tracing::debug!("reading the node firewall's counters: {e}"),
                }
            }
        }));
    }
}

/// The next value of `rx` once it changed; never without one, or once its sender is gone.
async fn changed<T: Clone>(rx: &mut Option<tokio::sync::watch::Receiver<T>>) -> Option<T> {
    let Some(rx) = rx else { return std::future::pending().await };
    match rx.changed().await {
        Ok(()) => Some(rx.borrow_and_update().clone()),
        Err(_) => std::future::pending().await,
    }
}

/// Sleeps until `wake`, or forever without one.
pub(crate) async fn sleep_until(wake: Option<tokio::time::Instant>) {
    match wake {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
