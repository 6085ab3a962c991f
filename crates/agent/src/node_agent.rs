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
//!   One exception, the [`bootstrap`]: host interfaces moved onto a bridge that holds nothing
//!   of weir's forward without policy until the first view, which may come through them.
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
use crate::ovs_bugs::CachePurge;
use crate::realization_record::Record;
use crate::status::{HEARTBEAT, Status};
use pass::Pass;
use pipeline::{FlowSet, NodeCompiler};
use policy::Cluster;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::warn;

pub use events::{Action, Event, Failure, Realization, SwitchFacts, weirs_flows};

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
    /// Before the first manifests: what became of the host interfaces' forwarding.
    bootstrap: bootstrap::Bootstrap,
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
            bootstrap: bootstrap::Bootstrap::Pending,
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
        let bootstrap = !self.have_manifests && self.bootstrap_due();
        if self.busy() || !self.dirty || !self.have_interfaces || !(self.have_manifests || bootstrap) {
            return;
        }
        let at = *self.realize_at.get_or_insert(now + COALESCE);
        if now < at {
            return;
        }
        if bootstrap {
            self.start_bootstrap(now);
        } else {
            self.start_pass(now);
        }
    }

    fn write_status(&mut self) {
        self.actions.push_back(Action::WriteStatus(Box::new(self.status.clone())));
    }
}

mod bootstrap;
mod compiler;
mod events;
mod pass;
mod record;
mod report;
#[cfg(test)]
mod tests;
