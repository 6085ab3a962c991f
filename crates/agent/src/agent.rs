//! The agent's main loop.
//!
//! Three inputs change what the switch should hold: the manifests directory (cluster view),
//! the bridge's Interface rows (local pods) and the switch connection itself (a new
//! connection means the installed flows must be read back). Each change marks the state
//! dirty; after a short coalescing pause the agent updates its [`NodeCompiler`] (which
//! recompiles only what the change can affect), diffs the flows it touched against what is
//! installed and sends the difference as one atomic bundle, then writes its status. A failed realization is retried with backoff; nothing else stops the loop.

use crate::local_ports::{InterfaceRow, LocalPorts, local_ports};
use crate::ovs_bugs::{OvsVersion, SwitchReport};
use crate::source::{self, Snapshot};
use crate::status::{ObjectErrorReport, Status};
use crate::switch::{Down, Switch};
use pipeline::{FlowKey, FlowSet, NodeCompiler, Table, Topology, diff, diff_keys};
use policy::Cluster;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// The tunnel protocol between nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelKind {
    /// GENEVE (UDP 6081).
    Geneve,
    /// VXLAN (UDP 4789).
    Vxlan,
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
    /// The manifests directory (file mode).
    pub manifests: PathBuf,
    /// Where to write the status JSON.
    pub status_file: PathBuf,
    /// Tunnel protocol.
    pub tunnel: TunnelKind,
    /// ovs-vswitchd's control socket: a path, or a daemon name whose pidfile is in
    /// `$OVS_RUNDIR` (found as `ovs-appctl -t NAME` finds it).
    pub ovs_ctl: String,
    /// When to purge the datapath's cached flows after installing a change.
    pub datapath_cache_purge: crate::ovs_bugs::CachePurge,
}

/// The name of the tunnel port weir creates on the bridge.
pub const TUNNEL_PORT: &str = "weir-tun0";

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// OVSDB failed while setting up the bridge.
    #[error("ovsdb: {0}")]
    Ovsdb(#[from] ovsdb::Error),
    /// The manifests directory could not be watched.
    #[error("watching {dir}: {source}")]
    Watch {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: notify::Error,
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

/// Everything the agent knows, and what it last installed.
struct State {
    config: Config,
    snapshot: Snapshot,
    cluster: Cluster,
    ports: LocalPorts,
    /// Every Interface row, by name (TrafficControl ports, ofports by name).
    interfaces: std::sync::Arc<BTreeMap<String, ovsdb::tables::Interface>>,
    ports_by_name: BTreeMap<String, u32>,
    /// Port errors per TrafficControl from the last reconciliation.
    tc_port_errors: BTreeMap<String, Vec<String>>,
    /// The compiler, kept between realizations; `None` until the first and after a panic.
    compiler: Option<NodeCompiler>,
    /// The cluster view the compiler reflects, when `cluster` has moved on since.
    compiled_from: Option<Cluster>,
    installed: Option<FlowSet>,
    status: Status,
    /// The OVSDB manager (the switch's version and datapath type).
    manager: std::sync::Arc<ovsdb::Manager>,
    /// A purge of the datapath's cached flows is owed (after a change, on an affected switch).
    purge_pending: bool,
}

impl State {
    fn topology(&self) -> Option<Topology> {
        let node = self.cluster.nodes.get(&self.config.node)?;
        let gateway_ip = pipeline::compile::gateway_for(node)?;
        Some(Topology {
            node: self.config.node.clone(),
            gateway_ip,
            gateway_mac: Topology::gateway_mac_for(gateway_ip),
            tunnel_ofport: self.ports_by_name.get(TUNNEL_PORT).copied(),
            local_pods: self.ports.pods.clone(),
            remote_nodes: pipeline::compile::remote_nodes(&self.cluster, &self.config.node),
            ports: self.ports_by_name.clone(),
        })
    }

    /// Brings the compiler up to the cluster view and the topology. Returns the flow keys
    /// that may have changed, or `None` when everything must be compared (a fresh compiler,
    /// or no compiler: without this node's Node object (or its pod CIDR) there is no
    /// forwarding to compile, only the table-miss flows are desired, so everything drops
    /// (fail closed) and the status says why).
    fn update_compiler(&mut self) -> Result<Option<BTreeSet<FlowKey>>, RealizeError> {
        let Some(topo) = self.topology() else {
            let why = format!(
                "node {:?} is not in the cluster view or has no IPv4 pod CIDR: all traffic is dropped",
                self.config.node
            );
            warn!("{why}");
            self.status.warnings = vec![why];
            self.compiler = None;
            self.compiled_from = None;
            return Ok(None);
        };
        self.status.warnings.clear();
        let (cluster, old, compiler) = (&self.cluster, self.compiled_from.take(), self.compiler.take());
        // A compiler bug must not take the agent (and the node's policy) down: the installed
        // flows stay as they are, the status says what happened, and the next change
        // compiles from scratch.
        let updated = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || match (compiler, old) {
            (Some(mut c), Some(old)) => {
                c.update(&old, cluster, topo);
                let keys = c.take_changed();
                (c, Some(keys))
            }
            (Some(mut c), None) => {
                c.set_topology(cluster, topo);
                let keys = c.take_changed();
                (c, Some(keys))
            }
            (None, _) => {
                let started = Instant::now();
                let c = NodeCompiler::new(cluster, topo);
                info!(flows = c.flows().len(), elapsed_ms = ms(started), "compiled from scratch");
                (c, None)
            }
        }));
        match updated {
            Ok((c, keys)) => {
                self.compiler = Some(c);
                Ok(keys)
            }
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Err(RealizeError::Compile(format!("internal compiler error, installed flows kept: {what}")))
            }
        }
    }

    /// Takes a new cluster view, remembering the one the compiler reflects so the next
    /// update can compare them.
    fn set_cluster(&mut self, cluster: Cluster) {
        let old = std::mem::replace(&mut self.cluster, cluster);
        if self.compiler.is_some() && self.compiled_from.is_none() {
            self.compiled_from = Some(old);
        }
    }

    /// Brings the switch to the desired flows. Returns the number of flow_mods sent.
    async fn realize(&mut self, switch: &mut Switch) -> Result<usize, RealizeError> {
        let mut changed = self.update_compiler()?;
        if self.installed.is_none() {
            // A new connection may be a new (upgraded or downgraded) ovs-vswitchd.
            self.detect_switch().await;
            let started = Instant::now();
            let flows = switch.dump_flows().await.map_err(|e| RealizeError::Switch(format!("reading installed flows: {e}")))?;
            info!(flows = flows.len(), elapsed_ms = ms(started), "installed flows read");
            // Flows the switch learned itself (SCTP replies) are not weir's to diff.
            let learned = Some(pipeline::cookie::Category::Learned);
            self.installed =
                Some(flows.into_iter().filter(|f| pipeline::cookie::category_of(f.cookie) != learned).collect());
            changed = None;
        }
        self.report_traffic_controls();
        let miss_only: FlowSet;
        let desired = match &self.compiler {
            Some(c) => c.flows(),
            None => {
                miss_only = pipeline::forwarding::miss_flows().into_iter().collect();
                &miss_only
            }
        };
        let installed = self.installed.as_mut().expect("read above");
        let mods = match &changed {
            Some(keys) => diff_keys(desired, installed, keys),
            None => diff(desired, installed),
        };
        if !mods.is_empty() {
            let started = Instant::now();
            if let Err(e) = switch.bundle(&mods).await {
                // The switch rejected the bundle: nothing of it was applied, but re-read to
                // be sure the next diff starts from the truth.
                self.installed = None;
                return Err(RealizeError::Switch(format!("installing {} flow_mods: {e}", mods.len())));
            }
            info!(flow_mods = mods.len(), elapsed_ms = ms(started), "realized");
            self.status.generation += 1;
            self.purge_pending |= self.status.switch.as_ref().is_some_and(|s| s.purges_after_change);
        }
        if changed.is_none() {
            *installed = desired.clone();
        }
        self.status.flows = desired.counts().into_iter().map(|(t, n)| (t.name().to_string(), n)).collect();
        if self.purge_pending {
            self.purge_datapath_cache().await?;
        }
        Ok(mods.len())
    }

    /// Reads the running ovs-vswitchd's version (its control socket, else OVSDB's
    /// `ovs_version`) and the bridge's datapath type, and reports the known OVS bugs that
    /// apply (see [`crate::ovs_bugs`]).
    async fn detect_switch(&mut self) {
        let from_daemon = match ovsdb::unixctl::socket_path(&self.config.ovs_ctl) {
            Ok(socket) => ovsdb::unixctl::call(&socket, "version", &[], UNIXCTL_TIMEOUT).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let (version, datapath_type) = self.manager.with_view(|db| {
            use ovsdb::tables::{Bridge, OpenVswitch, TableRow};
            let stored = OpenVswitch::all(db).into_iter().find_map(|o| o.ovs_version);
            let datapath = Bridge::named(db, &self.config.bridge).map(|b| b.datapath_type).unwrap_or_default();
            (stored, datapath)
        });
        let version = match &from_daemon {
            Ok(line) => OvsVersion::parse(line).map(|v| (v, "ovs-vswitchd")),
            Err(_) => None,
        }
        .or_else(|| version.as_deref().and_then(OvsVersion::parse).map(|v| (v, "ovsdb")));
        if let (None, Err(e)) = (version, &from_daemon) {
            warn!("the switch's version is unknown (ovsdb has none; {e})");
        }
        let report = SwitchReport::new(version, &datapath_type, self.config.datapath_cache_purge);
        for w in report.warnings() {
            warn!("{w}");
        }
        self.status.switch = Some(report);
    }

    /// Purges the datapath's cached flows, so that no packet keeps the verdict of a flow cached
    /// before the change (the mitigation of a known OVS bug; see [`crate::ovs_bugs`]).
    async fn purge_datapath_cache(&mut self) -> Result<(), RealizeError> {
        let started = Instant::now();
        let socket = ovsdb::unixctl::socket_path(&self.config.ovs_ctl)
            .map_err(|e| RealizeError::Switch(format!("purging the datapath's cached flows: {e}")))?;
        ovsdb::unixctl::call(&socket, "revalidator/purge", &[], UNIXCTL_TIMEOUT)
            .await
            .map_err(|e| RealizeError::Switch(format!("purging the datapath's cached flows: {e}")))?;
        self.purge_pending = false;
        self.status.datapath_cache_purges += 1;
        info!(elapsed_ms = ms(started), "datapath's cached flows purged");
        Ok(())
    }

    /// Brings the TrafficControl ports in line with the cluster view.
    async fn reconcile_tc_ports(&mut self, manager: &ovsdb::Manager) {
        let local = self.ports.pods.keys().cloned().collect();
        let wanted = crate::tc_ports::wanted_ports(&self.cluster, &local);
        let done = crate::tc_ports::reconcile(manager, &self.config.bridge, &wanted, &self.interfaces).await;
        self.tc_port_errors = done.errors;
        self.ports_by_name.extend(done.ofports);
    }

    fn report_traffic_controls(&mut self) {
        let mut reports = BTreeMap::new();
        let none = BTreeMap::new();
        let statuses = self.compiler.as_ref().map_or(&none, |c| c.traffic_controls());
        for name in self.cluster.traffic_controls.keys() {
            let st = statuses.get(name).cloned().unwrap_or_default();
            let mut errors = self.tc_port_errors.get(name).cloned().unwrap_or_default();
            errors.extend(st.errors.iter().cloned());
            reports.insert(
                name.clone(),
                crate::status::TrafficControlReport {
                    realized: errors.is_empty(),
                    pods: st.pods.into_iter().collect(),
                    ports: st.ports.into_iter().collect(),
                    errors,
                },
            );
        }
        self.status.traffic_controls = reports;
    }

    fn refresh_status(&mut self) {
        let mut objects = BTreeMap::new();
        objects.insert("Namespace".to_string(), self.cluster.namespaces.len());
        objects.insert("Pod".to_string(), self.cluster.pods.len());
        objects.insert("Node".to_string(), self.cluster.nodes.len());
        objects.insert("NetworkPolicy".to_string(), self.cluster.policies.len());
        self.status.objects = objects;
        self.status.local_pods = self.ports.pods.len();
        self.status.errors = self
            .cluster
            .errors
            .iter()
            .map(|e| ObjectErrorReport { object: e.object.clone(), field: e.field.clone(), message: e.message.clone(), source: e.source.clone() })
            .chain(self.ports.errors.iter().cloned())
            .collect();
    }
}

/// Why a realization failed.
#[derive(Debug)]
enum RealizeError {
    /// The switch connection failed or the switch refused the bundle: reconnect and retry.
    Switch(String),
    /// The compiler failed: keep what is installed until the input changes.
    Compile(String),
}

/// Milliseconds since `t`, for the log.
fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// How long ovs-vswitchd's control socket may take to answer.
const UNIXCTL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long to wait for more changes before compiling.
const COALESCE: Duration = Duration::from_millis(5);
/// Retry delays after a failed realization.
const BACKOFF: [Duration; 5] = [
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// Retry delays after the switch connection went down or could not be made. Short and capped
/// low: while ovs-vswitchd restarts every pod of the node is cut off, the delay between its
/// socket accepting and the next attempt adds to that outage, and a refused connect costs
/// microseconds.
const RECONNECT: [Duration; 4] =
    [Duration::from_millis(20), Duration::from_millis(50), Duration::from_millis(100), Duration::from_millis(200)];

/// How long ovs-vswitchd may take to apply the removal of `flow-restore-wait`.
const FLOW_RESTORE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the flows on the switch are counted against those weir installed, so that flows
/// someone else deleted (`ovs-ofctl del-flows`) or added are noticed and corrected.
///
/// A restarted ovs-vswitchd is noticed by the connection, not by OVSDB: killing and restarting
/// it changes no OVSDB row (`cur_cfg`, `next_cfg`, Bridge `datapath_id` and Interface `ofport`
/// all stay; on the userspace datapath only a tunnel port's `mac_in_use` moves), while its
/// OpenFlow socket always closes.
const AUDIT: Duration = Duration::from_secs(5);

/// Whether the switch holds a different number of flows than weir installed (learned flows
/// aside): `Some((on the switch, installed))` if so. A learned flow appearing between the two
/// counts reads as a difference too; that costs one needless re-read.
async fn flows_drifted(switch: &Switch, installed: usize) -> Result<Option<(usize, usize)>, crate::switch::SwitchError> {
    use openflow::wire::multipart::FlowStatsRequest;
    use pipeline::cookie::{CATEGORY_MASK, Category, cookie};
    let all = switch.count_flows(FlowStatsRequest::default()).await?;
    let learned = FlowStatsRequest { cookie: cookie(Category::Learned, 0), cookie_mask: CATEGORY_MASK, ..FlowStatsRequest::default() };
    let on_switch = all.saturating_sub(switch.count_flows(learned).await?) as usize;
    Ok((on_switch != installed).then_some((on_switch, installed)))
}

/// Resolves with why when the switch connection goes down; never while there is none.
fn switch_down(switch: &Option<Switch>) -> impl std::future::Future<Output = Down> + 'static {
    let down = switch.as_ref().map(Switch::down);
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
pub async fn run(config: Config, shutdown: impl std::future::Future<Output = ()>) -> Result<(), AgentError> {
    // Written before anything can block, so the status file exists (and ages) from the start.
    Status { node: config.node.clone(), last_error: Some("starting: connecting to OVSDB".into()), ..Status::default() }
        .publish(&config.status_file);
    let client = ovsdb::Client::connect(&config.ovsdb).await?;
    let manager = std::sync::Arc::new(ovsdb::Manager::new(&client).await?);
    manager.ensure_bridge(&bridge_spec(&config)).await?;
    manager.ensure_port(&config.bridge, &tunnel_spec(&config)).await?;
    let _reensure = manager.reensure_on_reconnect();
    let mut interfaces = ovsdb::InterfaceMonitor::start(&client).await?;
    let (mut snapshots, _watcher) =
        source::watch(config.manifests.clone(), Duration::from_millis(2), Duration::from_secs(30))
            .map_err(|source| AgentError::Watch { dir: config.manifests.clone(), source })?;

    let status_file = config.status_file.clone();
    let mut state = State {
        status: Status {
            node: config.node.clone(),
            last_error: Some("not realized yet: waiting for the manifests and the bridge's interfaces".into()),
            ..Status::default()
        },
        config,
        snapshot: Snapshot::default(),
        cluster: Cluster::default(),
        ports: LocalPorts::default(),
        interfaces: Default::default(),
        ports_by_name: BTreeMap::new(),
        tc_port_errors: BTreeMap::new(),
        compiler: None,
        compiled_from: None,
        installed: None,
        manager: manager.clone(),
        purge_pending: false,
    };
    let mut manifests = crate::manifest_cache::ManifestCache::default();
    let mut switch: Option<Switch> = None;
    let mut dirty = false;
    // Realizing before both inputs have arrived would compile a node without its pods (or its
    // policies) and briefly remove their flows, e.g. right after an agent restart.
    let (mut have_manifests, mut have_interfaces) = (false, false);
    let mut failures = 0usize;
    let mut retry_at: Option<tokio::time::Instant> = None;
    // flow-restore-wait is cleared and re-armed after the first realization on each connection.
    let mut restore_pending = true;
    let mut audit = tokio::time::interval_at(tokio::time::Instant::now() + AUDIT, AUDIT);
    audit.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Rewrites the status while idle, so a stale heartbeat means a stuck loop.
    let mut heartbeat = tokio::time::interval(crate::status::HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);

    loop {
        let wake = retry_at.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            snapshot = snapshots.recv() => {
                match snapshot {
                    Some(Ok(s)) => {
                        have_manifests = true;
                        let started = Instant::now();
                        let cluster = manifests.cluster(&s);
                        info!(files = s.files.len(), unreadable = s.unreadable.len(), pods = cluster.pods.len(), policies = cluster.policies.len(), elapsed_ms = ms(started), "manifests read");
                        state.set_cluster(cluster);
                        state.snapshot = s;
                        state.status.source_warning = None;
                        dirty = true;
                    }
                    Some(Err(e)) => {
                        // A directory that vanished is not an empty cluster: what is in force stays.
                        let kept = if have_manifests { "the last snapshot read stays in force" } else { "nothing is realized until it can be read" };
                        warn!("{e}: {kept}");
                        state.status.source_warning = Some(format!("{e}: {kept}"));
                        state.status.publish(&status_file);
                    }
                    None => return Ok(()),
                }
            }
            set = interfaces.next() => {
                let Some(set) = set else { return Ok(()) };
                have_interfaces = true;
                let rows: Vec<InterfaceRow> = set.interfaces.values().map(InterfaceRow::from).collect();
                state.ports = local_ports(&rows);
                state.ports_by_name = set
                    .interfaces
                    .values()
                    .filter_map(|i| i.ofport.filter(|p| *p > 0).map(|p| (i.name.clone(), p as u32)))
                    .collect();
                state.interfaces = set.interfaces.clone();
                dirty = true;
            }
            _ = tokio::time::sleep_until(wake), if retry_at.is_some() => {
                retry_at = None;
                dirty = true;
            }
            _ = heartbeat.tick() => state.status.publish(&status_file),
            _ = audit.tick(), if switch.is_some() && state.installed.is_some() => {
                let (sw, installed) = (switch.as_ref().expect("checked"), state.installed.as_ref().expect("checked"));
                match flows_drifted(sw, installed.len()).await {
                    Ok(Some((on_switch, installed))) => {
                        warn!(on_switch, installed, "the switch's flows changed behind weir's back: reading them again");
                        state.installed = None;
                        dirty = true;
                    }
                    Ok(None) => {}
                    // A connection that failed is reported by its down event.
                    Err(e) => warn!("counting the switch's flows: {e}"),
                }
            }
            why = switch_down(&switch) => {
                // Until a new connection has read back and corrected the flows, nothing says
                // the switch holds them (a restarted ovs-vswitchd holds none).
                switch = None;
                let e = format!("OpenFlow connection to {} lost: {why}; reconnecting", state.config.openflow);
                warn!("{e}");
                state.status.realized = false;
                state.status.last_error = Some(e);
                state.status.publish(&status_file);
                failures = 0;
                retry_at = Some(tokio::time::Instant::now());
            }
        }
        if !dirty || !have_manifests || !have_interfaces {
            continue;
        }
        // Coalesce a burst of changes into one realization.
        tokio::time::sleep(COALESCE).await;
        dirty = false;
        state.reconcile_tc_ports(&manager).await;
        state.refresh_status();
        let token = state.snapshot.token.clone();
        let result = match &mut switch {
            Some(sw) => state.realize(sw).await,
            None => match Switch::connect(&state.config.openflow).await {
                Ok(mut sw) => {
                    info!(target = %state.config.openflow, "OpenFlow connection up");
                    state.installed = None; // a new connection: read back what is there
                    restore_pending = true;
                    let r = state.realize(&mut sw).await;
                    switch = Some(sw);
                    r
                }
                Err(e) => Err(RealizeError::Switch(format!("connecting to {}: {e}", state.config.openflow))),
            },
        };
        let result = match result {
            Ok(n) if restore_pending => match finish_flow_restore(&manager).await {
                Ok(()) => {
                    restore_pending = false;
                    Ok(n)
                }
                // Installed, but a waiting ovs-vswitchd may not forward yet: not realized.
                Err(e) => Err(RealizeError::Switch(e)),
            },
            r => r,
        };
        match result {
            Ok(n) => {
                failures = 0;
                state.status.realized = true;
                state.status.last_error = None;
                state.status.last_flow_mods = n;
                state.status.source_token = token;
            }
            Err(RealizeError::Switch(e)) => {
                // A connection that is down is retried soon; a switch that refused a bundle or
                // a flow-restore-wait that would not clear, with the longer backoff.
                let connection_down = switch.as_ref().is_none_or(|sw| sw.down_reason().is_some());
                let delays: &[Duration] = if connection_down { &RECONNECT } else { &BACKOFF };
                // Reconnecting: one line per streak and then one about every ten seconds.
                if !connection_down || failures.is_multiple_of(50) {
                    warn!(attempt = failures + 1, "{e}");
                }
                if connection_down {
                    switch = None;
                }
                state.status.realized = false;
                state.status.last_error = Some(e);
                retry_at = Some(tokio::time::Instant::now() + delays[failures.min(delays.len() - 1)]);
                failures += 1;
            }
            Err(RealizeError::Compile(e)) => {
                warn!("{e}");
                state.status.realized = false;
                state.status.last_error = Some(e);
            }
        }
        state.status.publish(&status_file);
    }
}
