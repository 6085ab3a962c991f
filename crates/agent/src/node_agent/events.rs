//! What the agent and its driver tell each other: the [`Event`]s it is told, the [`Action`]s
//! it asks for, and what they carry.

use crate::cni_conf::PodNetwork;
use crate::ovs_bugs::OvsVersion;
use crate::realization_record::Record;
use crate::status::Status;
use crate::tc_ports::{Reconciled, WantedPort};
use openflow::{Flow, FlowMod};
use pipeline::FlowSet;
use policy::Cluster;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

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
    ///
    /// [`Settings::report_rules`]: super::Settings::report_rules
    pub rules: Option<Arc<BTreeMap<u32, pipeline::rule_flows::ConjRules>>>,
}

/// The flows read from the switch that weir diffs against what it wants: all but those the
/// switch learned itself (SCTP replies). Built by the driver, off the agent's loop: for 20k
/// flows this is tens of milliseconds of a restart.
pub fn weirs_flows(flows: Vec<Flow>) -> FlowSet {
    let learned = Some(pipeline::cookie::Category::Learned);
    flows.into_iter().filter(|f| pipeline::cookie::category_of(f.cookie) != learned).collect()
}
