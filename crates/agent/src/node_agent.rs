//! The node agent's decisions, without I/O: a state machine in the manner of quinn-proto.
//!
//! [`NodeAgent`] is told what happened ([`NodeAgent::handle`]: a manifests snapshot, the
//! bridge's interfaces, the switch connection lost, the result of something it asked for) and
//! what time it is ([`NodeAgent::handle_timeout`]); it answers with [`Action`]s to perform
//! ([`NodeAgent::poll_action`]: connect, read the switch, send a bundle, purge the datapath's
//! cache, clear and re-arm flow-restore-wait, write the status...) and the next instant it
//! wants to be woken at ([`NodeAgent::poll_timeout`]). It never reads a clock, sleeps or
//! touches a socket: the tokio loop in [`crate::agent::run`] performs the actions and feeds
//! their results back as events, and tests drive it with synthetic events in virtual time.
//!
//! What it decides:
//! - **Coalescing.** A change (snapshot, interfaces, a retry coming due) marks the state
//!   dirty; a realization pass starts [`COALESCE`] after the first change, so a burst becomes
//!   one bundle. Nothing is realized before both the manifests and the interfaces arrived:
//!   compiling a node without its pods (or its policies) would briefly remove their flows.
//! - **A realization pass**, one step at a time, each waiting for its result: the
//!   TrafficControl ports (only when some TrafficControl applies here or one of weir's ports
//!   is on the bridge), the compiler update (synchronous, behind a panic guard; before
//!   connecting, so a starting agent compiles while its early connection reads the switch's
//!   flows), a connection when there is none, on a new connection (or when the flows on the switch are in doubt)
//!   a read of the switch (its version and its flows), the bundle of the difference, the
//!   purge of the datapath's cached flows when the switch has the known OVS bug, and on the
//!   first pass of each connection the clearing and re-arming of flow-restore-wait. Then the
//!   status is written.
//! - **Failures.** A pass that fails on the switch is retried: after [`RECONNECT`] delays
//!   when the connection is down, [`BACKOFF`] delays otherwise (a rejected bundle, a purge or
//!   flow-restore-wait that failed); a failed bundle also makes the next pass read the flows
//!   back. A purge that failed stays owed. A compiler panic keeps the installed flows and
//!   waits for the next change. A lost connection makes the status unrealized at once and
//!   starts reconnecting.
//! - **Timers.** The status is rewritten every [`HEARTBEAT`] (a stale heartbeat means a
//!   stuck loop); every [`AUDIT`] the switch counts its flows and a count that differs from
//!   what weir installed makes the next pass read them back and send the difference.
//!
//! One operation is outstanding at a time (a pass step or an audit count): events that
//! arrive meanwhile only update the inputs and mark the state dirty.

use crate::cni_conf::PodNetwork;
use crate::local_ports::{InterfaceRow, LocalPorts, local_ports};
use crate::ovs_bugs::{CachePurge, OvsVersion, SwitchReport};
use crate::realization_record::{Digest, Record};
use crate::status::{HEARTBEAT, Status};
use crate::tc_ports::{Reconciled, WantedPort};
use openflow::{Flow, FlowMod};
use pipeline::{FlowKey, FlowSet, NodeCompiler, Topology, diff, diff_keys};
use policy::Cluster;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// How long to wait for more changes before compiling.
pub const COALESCE: Duration = Duration::from_millis(5);

/// Retry delays after a failed realization while the switch connection is up (a rejected
/// bundle, a failed purge or flow-restore-wait).
pub const BACKOFF: [Duration; 5] =
    [Duration::from_millis(100), Duration::from_millis(250), Duration::from_millis(500), Duration::from_secs(1), Duration::from_secs(2)];

/// Retry delays after the switch connection went down or could not be made. Short and capped
/// low: while ovs-vswitchd restarts every pod of the node is cut off, the delay between its
/// socket accepting and the next attempt adds to that outage, and a refused connect costs
/// microseconds.
pub const RECONNECT: [Duration; 4] =
    [Duration::from_millis(20), Duration::from_millis(50), Duration::from_millis(100), Duration::from_millis(200)];

/// How often the flows on the switch are counted against those weir installed, so that flows
/// someone else deleted (`ovs-ofctl del-flows`) or added are noticed and corrected.
///
/// A restarted ovs-vswitchd is noticed by the connection, not by OVSDB: killing and restarting
/// it changes no OVSDB row (`cur_cfg`, `next_cfg`, Bridge `datapath_id` and Interface `ofport`
/// all stay; on the userspace datapath only a tunnel port's `mac_in_use` moves), while its
/// OpenFlow socket always closes.
pub const AUDIT: Duration = Duration::from_secs(5);

/// How long the agent must be quiet after a realization before it records it (a digest of a
/// 10k-pod view and its flows is tens of milliseconds: not for every change of a burst).
pub const RECORD_QUIET: Duration = Duration::from_secs(1);

/// The name of the tunnel port weir creates on the bridge.
pub const TUNNEL_PORT: &str = "weir-tun0";

/// What the agent's decisions depend on from its configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// This node's name (matches a Node object of the cluster view).
    pub node: String,
    /// The switch's OpenFlow target, for messages.
    pub openflow: String,
    /// When to purge the datapath's cached flows after installing a change.
    pub datapath_cache_purge: CachePurge,
    /// Whether realizations report the installed rules (for per-rule metrics; about 2 ms a
    /// change at 20k flows, so only when metrics are served).
    pub report_rules: bool,
    /// Whether to keep a [`Record`] of what was realized (there is a state directory).
    pub keep_record: bool,
    /// Whether to publish the node's pod network for the CNI plugin (a CNI configuration
    /// directory is given), once realized.
    pub publish_pod_network: bool,
    /// Whether the nftables node firewall realizes the node's own policy (`--node-policy
    /// nftables`); otherwise the status warns of each policy applied to the node.
    pub node_firewall: bool,
    /// The cluster's Service ranges (`--service-cidr`), see `Topology::service_cidrs`.
    pub service_cidrs: Vec<ipnetwork::Ipv4Network>,
    /// Connections of the host interfaces moved onto the bridge that skip their policy.
    pub host_bypass: Vec<pipeline::host_interface::Bypass>,
    /// Whether the node's own policy is realized on the bridge (`--node-policy ovs`), see
    /// `Topology::node_policy`.
    pub node_policy_ovs: bool,
    /// The tunnel's UDP port (see `Topology::tunnel_udp_port`).
    pub tunnel_udp_port: u16,
}

/// What the switch is, as read on a new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchFacts {
    /// The running ovs-vswitchd's version and where it was read (`ovs-vswitchd` control
    /// socket, or `ovsdb`), when known.
    pub version: Option<(OvsVersion, &'static str)>,
    /// The bridge's datapath type.
    pub datapath_type: String,
}

/// Why an operation on the switch failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong.
    pub error: String,
    /// Whether the OpenFlow connection is down (then the agent reconnects, soon).
    pub connection_down: bool,
}

impl Failure {
    /// A failure on a connection that is still up.
    pub fn up(error: impl Into<String>) -> Self {
        Failure { error: error.into(), connection_down: false }
    }

    /// A failure that took the connection down (or found it down).
    pub fn down(error: impl Into<String>) -> Self {
        Failure { error: error.into(), connection_down: true }
    }
}

/// Something that happened: an input changed, or an [`Action`] finished.
#[derive(Debug)]
pub enum Event {
    /// A new cluster view read from the manifests, and the sync token of its snapshot.
    Manifests {
        /// The cluster view (boxed: it is far bigger than every other event).
        cluster: Box<Cluster>,
        /// The snapshot's `.weir-sync` token.
        token: Option<String>,
    },
    /// The manifests directory could not be read (why); the last snapshot stays in force.
    ManifestsUnreadable(String),
    /// What is wrong with parts of the source while the rest works (all of it, replacing the
    /// last report): a kind the API server does not serve, a watch that keeps failing.
    SourceWarnings(Vec<String>),
    /// Every Interface row of the bridge, by name.
    Interfaces(Arc<BTreeMap<String, ovsdb::tables::Interface>>),
    /// The host interfaces that could not be moved onto the bridge now (all of them, replacing
    /// the last report).
    InterfaceMoveFailures(crate::external_node::MoveFailures),
    /// [`Action::ReconcileTcPorts`] is done.
    TcPortsReconciled(Reconciled),
    /// [`Action::Connect`] succeeded.
    Connected,
    /// [`Action::Connect`] failed, with why.
    ConnectFailed(String),
    /// The OpenFlow connection went down by itself (closed, silent, a request unanswered),
    /// with why.
    SwitchLost(String),
    /// [`Action::ReadSwitch`] is done: what the switch is, and the flows it holds.
    SwitchRead {
        /// Version and datapath.
        facts: SwitchFacts,
        /// Every installed flow that is weir's ([`weirs_flows`]), or why they could not be read.
        flows: Result<FlowSet, Failure>,
    },
    /// [`Action::SendBundle`] is done.
    BundleDone(Result<(), Failure>),
    /// [`Action::PurgeDatapathCache`] is done.
    Purged(Result<(), Failure>),
    /// [`Action::FinishFlowRestore`] is done.
    FlowRestoreDone(Result<(), Failure>),
    /// [`Action::CountFlows`] is done: how many flows the switch holds, learned ones aside.
    FlowsCounted(Result<usize, String>),
}

/// Something for the driver to do.
#[derive(Debug)]
pub enum Action {
    /// Write this status (stamping its heartbeat).
    WriteStatus(Box<Status>),
    /// Ensure the TrafficControl ports `wanted` and remove weir's other TrafficControl ports
    /// among `interfaces`; answer [`Event::TcPortsReconciled`].
    ReconcileTcPorts {
        /// The ports to ensure, by name.
        wanted: BTreeMap<String, WantedPort>,
        /// The bridge's interfaces as last reported.
        interfaces: Arc<BTreeMap<String, ovsdb::tables::Interface>>,
    },
    /// Open the OpenFlow connection; answer [`Event::Connected`] or [`Event::ConnectFailed`].
    Connect,
    /// Close the OpenFlow connection (it is down).
    Disconnect,
    /// Read the switch's version and datapath and every installed flow; answer
    /// [`Event::SwitchRead`].
    ReadSwitch,
    /// Send these flow_mods as one atomic bundle; answer [`Event::BundleDone`].
    SendBundle(Vec<FlowMod>),
    /// Purge the datapath's cached flows (`revalidator/purge`); answer [`Event::Purged`].
    PurgeDatapathCache,
    /// Clear `flow-restore-wait` (so a waiting ovs-vswitchd forwards) and arm it again for the
    /// next restart; answer [`Event::FlowRestoreDone`].
    FinishFlowRestore,
    /// Count the switch's flows, learned ones aside; answer [`Event::FlowsCounted`].
    CountFlows,
    /// A pass ended with the switch holding the desired flows: for the metrics (no answer).
    Realized(Box<Realization>),
    /// Store this record of the realization (no answer).
    WriteRecord(Record),
    /// Write the CNI configuration for this pod network (no answer): after the first
    /// realization, and when the node's pod CIDR changed.
    PublishPodNetwork(PodNetwork),
}

/// A realization pass that succeeded, as the metrics see it.
#[derive(Debug, Clone)]
pub struct Realization {
    /// When the first manifests snapshot this pass realized arrived (`None`: the pass
    /// realized no new snapshot, e.g. a retry after a reconnect or a local pod change).
    pub input_at: Option<Instant>,
    /// When the switch acknowledged the bundle (its barrier), or when the pass found nothing
    /// to send.
    pub acked_at: Instant,
    /// flow_mods sent.
    pub flow_mods: usize,
    /// Every installed conj_id with its table and rules, when they may have changed (flows
    /// were sent, or everything was compared) and [`Settings::report_rules`] asks for them.
    pub rules: Option<Arc<BTreeMap<u32, pipeline::rule_flows::ConjRules>>>,
}

/// The step of a realization pass whose result is awaited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    TcPorts,
    Connect,
    ReadSwitch,
    Bundle,
    Purge,
    FlowRestore,
}

/// A realization pass in progress.
#[derive(Debug)]
struct Pass {
    /// The sync token of the snapshot this pass realizes.
    token: Option<String>,
    /// The step whose result is awaited.
    step: Step,
    /// The flow keys the compiler update may have changed; `None`: compare everything.
    changed: Option<BTreeSet<FlowKey>>,
    /// flow_mods sent by this pass.
    flow_mods: usize,
    /// When the first snapshot this pass realizes arrived.
    input_at: Option<Instant>,
    /// When the switch acknowledged the bundle.
    acked_at: Option<Instant>,
    /// The compile was skipped because the inputs are those of the start's [`Record`]: the
    /// installed flows must have its flow digest, or the pass compiles after all.
    verify: Option<Digest>,
}

/// Why a realization pass failed.
#[derive(Debug)]
enum PassError {
    /// The switch failed or refused: retry.
    Switch(Failure),
    /// The compiler failed: keep what is installed until the input changes.
    Compile(String),
}

/// The node agent's state and decisions. See the [module documentation](self).
pub struct NodeAgent {
    settings: Settings,
    /// The sync token of the newest snapshot.
    token: Option<String>,
    cluster: Cluster,
    ports: LocalPorts,
    /// Every Interface row, by name (TrafficControl ports, ofports by name).
    interfaces: Arc<BTreeMap<String, ovsdb::tables::Interface>>,
    ports_by_name: BTreeMap<String, u32>,
    /// Port errors per TrafficControl from the last reconciliation.
    tc_port_errors: BTreeMap<String, Vec<String>>,
    /// Host interfaces that could not be moved onto the bridge, with why.
    move_failures: crate::external_node::MoveFailures,
    /// The compiler, kept between realizations; `None` until the first and after a panic.
    compiler: Option<NodeCompiler>,
    /// Whether a realization has reported the installed rules since the compiler was made
    /// (after a start that trusted its record, the first compile must report them).
    rules_reported: bool,
    /// The cluster view the compiler reflects, when `cluster` has moved on since.
    compiled_from: Option<Cluster>,
    /// What the switch holds, as far as weir knows; `None`: read it back before diffing.
    installed: Option<FlowSet>,
    status: Status,
    /// A purge of the datapath's cached flows is owed (after a change, on an affected switch).
    purge_pending: bool,
    have_manifests: bool,
    have_interfaces: bool,
    /// An input changed since the last pass began.
    dirty: bool,
    /// When the next pass starts (the end of the coalescing pause).
    realize_at: Option<Instant>,
    /// When a failed pass is retried.
    retry_at: Option<Instant>,
    heartbeat_at: Instant,
    audit_at: Instant,
    /// Failed passes in a row (the index into the retry delays).
    failures: usize,
    /// Whether the driver holds an OpenFlow connection.
    connected: bool,
    /// flow-restore-wait is cleared and re-armed after the first realization on each
    /// connection.
    restore_pending: bool,
    pass: Option<Pass>,
    /// An audit count is outstanding.
    auditing: bool,
    /// When the first snapshot not yet realized arrived.
    input_at: Option<Instant>,
    /// The record of a realization before the start, until the first pass used it.
    recalled: Option<Record>,
    /// The last record written (or recalled): an unchanged one is not written again.
    recorded: Option<Record>,
    /// When a record of the current realization is due (once the agent has been quiet).
    record_at: Option<Instant>,
    /// The pod network last published for the CNI plugin.
    published: Option<PodNetwork>,
    actions: VecDeque<Action>,
    /// Makes the next compiler update panic (tests of the panic guard).
    #[cfg(test)]
    fail_next_compile: bool,
}

impl NodeAgent {
    /// A starting agent at `now`: it has no inputs yet and writes its status at once.
    pub fn new(settings: Settings, now: Instant) -> NodeAgent {
        let mut agent = NodeAgent {
            status: Status {
                node: settings.node.clone(),
                last_error: Some("not realized yet: waiting for the manifests and the bridge's interfaces".into()),
                ..Status::default()
            },
            settings,
            token: None,
            cluster: Cluster::default(),
            ports: LocalPorts::default(),
            interfaces: Arc::default(),
            ports_by_name: BTreeMap::new(),
            tc_port_errors: BTreeMap::new(),
            move_failures: BTreeMap::new(),
            compiler: None,
            rules_reported: false,
            compiled_from: None,
            installed: None,
            purge_pending: false,
            have_manifests: false,
            have_interfaces: false,
            dirty: false,
            realize_at: None,
            retry_at: None,
            heartbeat_at: now + HEARTBEAT,
            audit_at: now + AUDIT,
            failures: 0,
            connected: false,
            restore_pending: true,
            pass: None,
            auditing: false,
            input_at: None,
            recalled: None,
            recorded: None,
            record_at: None,
            published: None,
            actions: VecDeque::new(),
            #[cfg(test)]
            fail_next_compile: false,
        };
        agent.write_status();
        agent
    }

    /// Takes the record stored by an earlier run (before the first inputs): when the inputs
    /// match it, the first pass checks the switch's flows against it instead of compiling.
    pub fn recall(&mut self, record: Record) {
        self.recalled = Some(record);
        self.recorded = Some(record);
    }

    /// A record of the realization in force, when one is owed (none written since it was
    /// realized) and nothing is in progress: for an agent about to stop.
    pub fn record_now(&mut self) -> Option<Record> {
        self.record_at.take()?;
        self.take_record()
    }

    /// The status as it stands.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// The next action to perform, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`NodeAgent::handle_timeout`] must be called next (never `None`: the heartbeat
    /// is always due some time).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = [Some(self.heartbeat_at), self.retry_at].into_iter().flatten().min();
        if !self.busy() {
            let audit = self.audit_possible().then_some(self.audit_at);
            next = [next, self.realize_at, audit, self.record_at].into_iter().flatten().min();
        }
        next
    }

    /// Takes an event that happened at `now`.
    pub fn handle(&mut self, now: Instant, event: Event) {
        match event {
            Event::Manifests { cluster, token } => {
                self.have_manifests = true;
                self.set_cluster(*cluster);
                self.token = token;
                self.status.source_warning = None;
                self.input_at.get_or_insert(now);
                self.dirty = true;
            }
            Event::ManifestsUnreadable(e) => {
                // A directory that vanished is not an empty cluster: what is in force stays.
                let kept =
                    if self.have_manifests { "the last snapshot read stays in force" } else { "nothing is realized until it can be read" };
                warn!("{e}: {kept}");
                self.status.source_warning = Some(format!("{e}: {kept}"));
                self.write_status();
            }
            Event::SourceWarnings(warnings) => {
                self.status.source_warnings = warnings;
                self.write_status();
            }
            Event::InterfaceMoveFailures(failures) => {
                self.move_failures = failures;
                self.refresh_status();
                self.write_status();
            }
            Event::Interfaces(interfaces) => {
                self.have_interfaces = true;
                let rows: Vec<InterfaceRow> = interfaces.values().map(InterfaceRow::from).collect();
                self.ports = local_ports(&rows);
                self.ports_by_name =
                    interfaces.values().filter_map(|i| i.ofport.filter(|p| *p > 0).map(|p| (i.name.clone(), p as u32))).collect();
                self.interfaces = interfaces;
                self.dirty = true;
            }
            Event::SwitchLost(why) => {
                // Until a new connection has read back and corrected the flows, nothing says
                // the switch holds them (a restarted ovs-vswitchd holds none).
                self.connected = false;
                if let Some(pass) = self.pass.take() {
                    self.keep_input_time(pass.input_at);
                }
                self.auditing = false;
                let e = format!("OpenFlow connection to {} lost: {why}; reconnecting", self.settings.openflow);
                warn!("{e}");
                self.status.realized = false;
                self.status.last_error = Some(e);
                self.write_status();
                self.failures = 0;
                self.retry_at = Some(now);
            }
            Event::FlowsCounted(count) => {
                if !std::mem::take(&mut self.auditing) {
                    warn!("a flow count nobody waits for: ignored");
                } else {
                    match (count, &self.installed) {
                        (Ok(on_switch), Some(installed)) if on_switch != installed.len() => {
                            warn!(
                                on_switch,
                                installed = installed.len(),
                                "the switch's flows changed behind weir's back: reading them again"
                            );
                            self.installed = None;
                            self.dirty = true;
                        }
                        (Ok(_), _) => {}
                        // A connection that failed is reported by its down event.
                        (Err(e), _) => warn!("counting the switch's flows: {e}"),
                    }
                }
            }
            result => self.pass_result(now, result),
        }
        self.step(now);
    }

    /// Takes the passing of time up to `now`: retries, the heartbeat, the coalescing pause
    /// and the audit that came due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.retry_at.is_some_and(|t| t <= now) {
            self.retry_at = None;
            self.dirty = true;
        }
        if self.heartbeat_at <= now {
            // Missed beats (a busy loop) are not burst afterwards.
            self.heartbeat_at = now + HEARTBEAT;
            self.write_status();
        }
        self.step(now);
        if !self.busy() && self.record_at.is_some_and(|t| t <= now) {
            self.record_at = None;
            if let Some(record) = self.take_record() {
                self.actions.push_back(Action::WriteRecord(record));
            }
        }
        if !self.busy() && self.audit_possible() && self.audit_at <= now {
            self.audit_at = now + AUDIT;
            self.auditing = true;
            self.actions.push_back(Action::CountFlows);
        }
    }

    /// Whether an operation's result is awaited.
    fn busy(&self) -> bool {
        self.pass.is_some() || self.auditing
    }

    /// Whether the flows on the switch can be counted against those installed.
    fn audit_possible(&self) -> bool {
        self.connected && self.installed.is_some()
    }

    /// Starts a pass when one is due and nothing is outstanding.
    fn step(&mut self, now: Instant) {
        if self.busy() || !self.dirty || !self.have_manifests || !self.have_interfaces {
            return;
        }
        let at = *self.realize_at.get_or_insert(now + COALESCE);
        if now >= at {
            self.start_pass(now);
        }
    }

    fn write_status(&mut self) {
        self.actions.push_back(Action::WriteStatus(Box::new(self.status.clone())));
    }

    fn start_pass(&mut self, now: Instant) {
        self.dirty = false;
        self.realize_at = None;
        // This pass is the retry.
        self.retry_at = None;
        let input_at = self.input_at.take();
        self.pass = Some(Pass {
            token: self.token.clone(),
            step: Step::TcPorts,
            changed: None,
            flow_mods: 0,
            input_at,
            acked_at: None,
            verify: None,
        });
        let local = self.ports.pods.keys().cloned().collect();
        let wanted = crate::tc_ports::wanted_ports(&self.cluster, &local);
        let ours =
            self.interfaces.values().any(|i| i.external_ids.get(crate::tc_ports::OWNER_KEY).is_some_and(|v| v == crate::tc_ports::OWNER));
        if wanted.is_empty() && !ours {
            // Nothing to ensure and nothing to remove.
            self.tc_ports_done(now, Reconciled::default());
        } else {
            self.actions.push_back(Action::ReconcileTcPorts { wanted, interfaces: self.interfaces.clone() });
        }
    }

    /// Routes the result of a pass step; a result the pass does not wait for (the pass was
    /// abandoned when the connection was lost) is ignored.
    fn pass_result(&mut self, now: Instant, event: Event) {
        let awaited = self.pass.as_ref().map(|p| p.step);
        let step = match &event {
            Event::TcPortsReconciled(_) => Step::TcPorts,
            Event::Connected | Event::ConnectFailed(_) => Step::Connect,
            Event::SwitchRead { .. } => Step::ReadSwitch,
            Event::BundleDone(_) => Step::Bundle,
            Event::Purged(_) => Step::Purge,
            Event::FlowRestoreDone(_) => Step::FlowRestore,
            _ => unreachable!("not a pass result: {event:?}"),
        };
        if awaited != Some(step) {
            warn!(?step, ?awaited, "a result nobody waits for: ignored");
            return;
        }
        match event {
            Event::TcPortsReconciled(done) => self.tc_ports_done(now, done),
            Event::Connected => {
                self.connected = true;
                self.installed = None; // a new connection: read back what is there
                self.restore_pending = true;
                self.install(now);
            }
            Event::ConnectFailed(e) => {
                self.finish(now, Err(PassError::Switch(Failure::down(format!("connecting to {}: {e}", self.settings.openflow)))))
            }
            Event::SwitchRead { facts, flows } => {
                // A new connection may be a new (upgraded or downgraded) ovs-vswitchd.
                let report = SwitchReport::new(facts.version, &facts.datapath_type, self.settings.datapath_cache_purge);
                for w in report.warnings() {
                    warn!("{w}");
                }
                self.status.switch = Some(report);
                match flows {
                    Ok(flows) => {
                        self.installed = Some(flows);
                        self.pass_mut().changed = None;
                        self.send_difference(now);
                    }
                    Err(f) => {
                        self.finish(now, Err(PassError::Switch(Failure { error: format!("reading installed flows: {}", f.error), ..f })))
                    }
                }
            }
            Event::BundleDone(Ok(())) => {
                self.pass_mut().acked_at = Some(now);
                self.status.generation += 1;
                self.purge_pending |= self.status.switch.as_ref().is_some_and(|s| s.purges_after_change);
                self.installed_now(now);
            }
            Event::BundleDone(Err(f)) => {
                // The switch rejected the bundle: nothing of it was applied, but re-read to
                // be sure the next diff starts from the truth.
                self.installed = None;
                let n = self.pass_mut().flow_mods;
                let error = format!("installing {n} flow_mods: {}", f.error);
                self.finish(now, Err(PassError::Switch(Failure { error, ..f })));
            }
            Event::Purged(Ok(())) => {
                self.purge_pending = false;
                self.status.datapath_cache_purges += 1;
                self.restore_flows(now);
            }
            Event::Purged(Err(f)) => {
                let error = format!("purging the datapath's cached flows: {}", f.error);
                self.finish(now, Err(PassError::Switch(Failure { error, ..f })));
            }
            Event::FlowRestoreDone(Ok(())) => {
                self.restore_pending = false;
                self.finish(now, Ok(()));
            }
            // Installed, but a waiting ovs-vswitchd may not forward yet: not realized.
            Event::FlowRestoreDone(Err(f)) => self.finish(now, Err(PassError::Switch(f))),
            _ => unreachable!("matched above"),
        }
    }

    fn pass_mut(&mut self) -> &mut Pass {
        self.pass.as_mut().expect("a pass in progress")
    }

    fn await_step(&mut self, step: Step, action: Action) {
        self.pass_mut().step = step;
        self.actions.push_back(action);
    }

    fn tc_ports_done(&mut self, now: Instant, done: Reconciled) {
        self.tc_port_errors = done.errors;
        self.ports_by_name.extend(done.ofports);
        self.refresh_status();
        self.compile(now);
    }

    /// Compiles before connecting: the compile needs no switch, and a starting agent's
    /// connection and flow read (begun by the driver at start) run meanwhile.
    fn compile(&mut self, now: Instant) {
        if let Some(flows) = self.recalled_flows() {
            self.pass_mut().verify = Some(flows);
            self.install(now);
            return;
        }
        match self.update_compiler() {
            Err(e) => self.finish(now, Err(e)),
            Ok(changed) => {
                self.pass_mut().changed = changed;
                self.install(now);
            }
        }
    }

    /// Brings the compiled flows to the switch: connects, reads back what it holds if that
    /// is not known, and sends the difference.
    fn install(&mut self, now: Instant) {
        if !self.connected {
            self.await_step(Step::Connect, Action::Connect);
        } else if self.installed.is_none() {
            self.await_step(Step::ReadSwitch, Action::ReadSwitch);
        } else {
            self.send_difference(now);
        }
    }

    fn send_difference(&mut self, now: Instant) {
        if let Some(expected) = self.pass_mut().verify.take() {
            return self.verify_installed(now, expected);
        }
        self.report_traffic_controls();
        let desired = desired_flows(&self.compiler);
        let changed = self.pass.as_ref().and_then(|p| p.changed.as_ref());
        let installed = self.installed.as_mut().expect("read before diffing");
        let mods = match changed {
            Some(keys) => diff_keys(&desired, installed, keys),
            None => diff(&desired, installed),
        };
        self.pass_mut().flow_mods = mods.len();
        if mods.is_empty() {
            self.installed_now(now);
        } else {
            self.await_step(Step::Bundle, Action::SendBundle(mods));
        }
    }

    /// The switch holds the desired flows ([`desired_flows`]).
    fn installed_now(&mut self, now: Instant) {
        let desired = desired_flows(&self.compiler);
        // A full diff that found nothing to send leaves the installed set equal to the
        // desired one already (a restart: 20k flows not cloned).
        if self.pass.as_ref().is_some_and(|p| p.changed.is_none() && p.flow_mods > 0) {
            self.installed = Some(desired.as_ref().clone());
        }
        let counts = desired.counts();
        self.holds(now, counts);
    }

    /// The switch holds the flows `counts` counts per table: the datapath's cache and
    /// flow-restore-wait follow, as owed.
    fn holds(&mut self, now: Instant, counts: BTreeMap<pipeline::Table, usize>) {
        self.status.flows = counts.into_iter().map(|(t, n)| (t.name().to_string(), n)).collect();
        if self.purge_pending {
            self.await_step(Step::Purge, Action::PurgeDatapathCache);
        } else {
            self.restore_flows(now);
        }
    }

    fn restore_flows(&mut self, now: Instant) {
        if self.restore_pending {
            self.await_step(Step::FlowRestore, Action::FinishFlowRestore);
        } else {
            self.finish(now, Ok(()));
        }
    }

    /// Ends the pass: the status says how it went, and a failure on the switch is retried.
    fn finish(&mut self, now: Instant, result: Result<(), PassError>) {
        let pass = self.pass.take().expect("a pass in progress");
        if result.is_err() {
            self.keep_input_time(pass.input_at);
        }
        match result {
            Ok(()) => {
                self.report_realization(now, &pass);
                if self.settings.keep_record && self.compiler.is_some() {
                    self.record_at = Some(now + RECORD_QUIET);
                }
                self.publish_pod_network();
                self.failures = 0;
                self.status.realized = true;
                self.status.last_error = None;
                self.status.last_flow_mods = pass.flow_mods;
                self.status.source_token = pass.token;
            }
            Err(PassError::Switch(Failure { error, connection_down })) => {
                // A connection that is down is retried soon; a switch that refused a bundle or
                // a flow-restore-wait that would not clear, with the longer backoff.
                let delays: &[Duration] = if connection_down { &RECONNECT } else { &BACKOFF };
                // Reconnecting: one line per streak and then one about every ten seconds.
                if !connection_down || self.failures.is_multiple_of(50) {
                    warn!(attempt = self.failures + 1, "{error}");
                }
                if connection_down && self.connected {
                    self.connected = false;
                    self.actions.push_back(Action::Disconnect);
                }
                self.status.realized = false;
                self.status.last_error = Some(error);
                self.retry_at = Some(now + delays[self.failures.min(delays.len() - 1)]);
                self.failures += 1;
            }
            Err(PassError::Compile(e)) => {
                warn!("{e}");
                self.status.realized = false;
                self.status.last_error = Some(e);
            }
        }
        self.write_status();
    }

    /// Once the node is realized, its pod network goes to the CNI plugin's configuration (pods
    /// start only where their policy is in force), and again whenever it changes.
    fn publish_pod_network(&mut self) {
        let net = self.cluster.nodes.get(&self.settings.node).and_then(PodNetwork::of);
        if self.settings.publish_pod_network && net.is_some() && net != self.published {
            self.published = net;
            self.actions.extend(net.map(Action::PublishPodNetwork));
        }
    }

    /// A pass that did not realize its snapshot leaves its arrival time to the next.
    fn keep_input_time(&mut self, at: Option<Instant>) {
        self.input_at = [self.input_at, at].into_iter().flatten().min();
    }

    fn topology(&self) -> Option<Topology> {
        let node = self.cluster.nodes.get(&self.settings.node);
        let mut host_interfaces = crate::external_node::host_interfaces(&self.interfaces);
        // An ExternalNode's interface is its ExternalEntity; a Kubernetes node's uplink, its Node.
        let this_node = (self.settings.node_policy_ovs).then(|| policy::Endpoint::Node(self.settings.node.clone()));
        for h in &mut host_interfaces {
            let entity = self.cluster.external_entity_on(&self.settings.node, &h.name).map(policy::Endpoint::ExternalEntity);
            h.endpoint = entity.or_else(|| this_node.clone());
        }
        // An ExternalNode has no pod network: its host interfaces are all there is to forward.
        let gateway_ip = match node.and_then(pipeline::compile::gateway_for) {
            Some(ip) => ip,
            None if !host_interfaces.is_empty() => std::net::Ipv4Addr::UNSPECIFIED,
            None => return None,
        };
        Some(Topology {
            node: self.settings.node.clone(),
            gateway_ip,
            gateway_mac: Topology::gateway_mac_for(gateway_ip),
            node_ips: node.map(pipeline::compile::node_ips).unwrap_or_default(),
            tunnel_ofport: self.ports_by_name.get(TUNNEL_PORT).copied(),
            gateway_ofport: self.ports_by_name.get(ovsdb::cni::GATEWAY_PORT).copied(),
            local_pods: self.ports.pods.clone(),
            remote_nodes: pipeline::compile::remote_nodes(&self.cluster, &self.settings.node),
            ports: self.ports_by_name.clone(),
            service_cidrs: self.settings.service_cidrs.clone(),
            host_interfaces,
            host_bypass: self.settings.host_bypass.clone(),
            node_policy: self.settings.node_policy_ovs,
            tunnel_udp_port: self.settings.tunnel_udp_port,
        })
    }

    /// Brings the compiler up to the cluster view and the topology. Returns the flow keys
    /// that may have changed, or `None` when everything must be compared (a fresh compiler,
    /// or no compiler: without this node's Node object (or its pod CIDR) there is no
    /// forwarding to compile, only the table-miss flows are desired, so everything drops
    /// (fail closed) and the status says why).
    fn update_compiler(&mut self) -> Result<Option<BTreeSet<FlowKey>>, PassError> {
        let Some(topo) = self.topology() else {
            let why = format!("node {:?} is not in the cluster view or has no IPv4 pod CIDR: all traffic is dropped", self.settings.node);
            warn!("{why}");
            self.status.warnings = vec![why];
            self.compiler = None;
            self.compiled_from = None;
            return Ok(None);
        };
        let reported = std::mem::take(&mut self.status.warnings);
        let (cluster, old, compiler) = (&self.cluster, self.compiled_from.take(), self.compiler.take());
        #[cfg(test)]
        let fail = std::mem::take(&mut self.fail_next_compile);
        // A compiler bug must not take the agent (and the node's policy) down: the installed
        // flows stay as they are, the status says what happened, and the next change
        // compiles from scratch.
        let updated = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            #[cfg(test)]
            if fail {
                panic!("injected compiler fault");
            }
            match (compiler, old) {
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
                    // The clock is read for the log only.
                    let started = Instant::now();
                    let c = NodeCompiler::new(cluster, topo);
                    info!(flows = c.flows().len(), elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "compiled from scratch");
                    (c, None)
                }
            }
        }));
        match updated {
            Ok((c, keys)) => {
                // Orders the fixed priority mapping cannot keep (see `pipeline::placement`).
                self.status.warnings.extend(c.order_conflicts().into_iter().map(|o| {
                    format!("rules {} and {} share one OpenFlow priority: the switch may not consult {} first", o.first, o.second, o.first)
                }));
                // Objects in force that protect nothing (a node policy selecting no node).
                self.status.warnings.extend(self.cluster.warnings.iter().map(ToString::to_string));
                let unrealized = if self.settings.node_firewall || self.settings.node_policy_ovs {
                    Vec::new()
                } else {
                    report::host_policy_warnings(&c, &self.settings.node)
                };
                for w in unrealized {
                    if !reported.contains(&w) {
                        warn!("{w}");
                    }
                    self.status.warnings.push(w);
                }
                self.compiler = Some(c);
                Ok(keys)
            }
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Err(PassError::Compile(format!("internal compiler error, installed flows kept: {what}")))
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
}

/// The flows read from the switch that weir diffs against what it wants: all but those the
/// switch learned itself (SCTP replies). Built by the driver, off the agent's loop: for 20k
/// flows this is tens of milliseconds of a restart.
pub fn weirs_flows(flows: Vec<Flow>) -> FlowSet {
    let learned = Some(pipeline::cookie::Category::Learned);
    flows.into_iter().filter(|f| pipeline::cookie::category_of(f.cookie) != learned).collect()
}

/// The flows the switch should hold: the compiler's, or (without a compiler: no Node object
/// for this node) only the table-miss flows, so everything drops.
fn desired_flows(compiler: &Option<NodeCompiler>) -> std::borrow::Cow<'_, FlowSet> {
    match compiler {
        Some(c) => std::borrow::Cow::Borrowed(c.flows()),
        None => std::borrow::Cow::Owned(miss_flows()),
    }
}

fn miss_flows() -> FlowSet {
    pipeline::forwarding::miss_flows().into_iter().collect()
}

mod record;
mod report;
#[cfg(test)]
mod tests;
