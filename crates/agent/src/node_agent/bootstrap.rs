//! Before the first cluster view: host interfaces moved onto the bridge forward.
//!
//! A moved interface (an ExternalNode's NIC, a Kubernetes node's uplink) forwards only what the
//! bridge's flows forward, and before the first cluster view weir has compiled none; in cluster
//! mode that view comes from the API server, through the very interface. So when the switch
//! holds nothing of weir's but table-miss flows (a bridge just made, or one whose earlier agent
//! never had a view), the agent installs what it compiles from an empty view: the host's
//! traffic passes without policy, as it did before the move, with the bypass list in place.
//! A switch holding an earlier run's realization keeps it until the first view, so a restarted
//! agent leaves the host's policy enforced. The first view's pass replaces the bootstrap flows
//! by the difference, as any pass does.

use super::NodeAgent;
use super::pass::{Pass, PassError, miss_flows};
use pipeline::flow::key;
use pipeline::{FlowSet, NodeCompiler};
use std::time::Instant;
use tracing::info;

/// What became of the host interfaces' forwarding before the first cluster view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bootstrap {
    /// Not installed yet.
    Pending,
    /// Installed: the host interfaces forward without policy.
    Installed,
    /// The switch held an earlier run's flows, which stay in force.
    Declined,
}

/// The status of an agent whose host interfaces forward without policy.
pub(super) const FORWARDING_WITHOUT_POLICY: &str =
    "not realized yet: waiting for the manifests; until then the host interfaces on the bridge forward without policy, as before the move";

impl NodeAgent {
    /// Whether a bootstrap pass may be owed: a host interface is on the bridge, and the switch
    /// was not found holding an earlier realization.
    pub(super) fn bootstrap_due(&self) -> bool {
        self.bootstrap != Bootstrap::Declined && !crate::external_node::host_interfaces(&self.interfaces).is_empty()
    }

    /// Starts a pass that installs the flows of an empty view (when the switch turns out to
    /// hold nothing of weir's, see [`NodeAgent::bootstrap_may_replace`]).
    pub(super) fn start_bootstrap(&mut self, now: Instant) {
        self.dirty = false;
        self.realize_at = None;
        self.retry_at = None;
        let topology = self.topology();
        let empty = &self.cluster;
        let compile = || topology.map(|t| NodeCompiler::new(empty, t).flows().clone());
        let compiled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(compile));
        let Ok(Some(flows)) = compiled else {
            let why = "internal compiler error compiling the host interfaces' forwarding".to_string();
            self.pass = Some(Pass::new(None, None, Some(FlowSet::default())));
            return self.finish(now, Err(PassError::Compile(why)));
        };
        self.pass = Some(Pass::new(None, None, Some(flows)));
        self.install(now);
    }

    /// Whether the bootstrap may replace what the switch holds: only table-miss flows, or the
    /// bootstrap's own. Otherwise the bootstrap is declined for good.
    pub(super) fn bootstrap_may_replace(&mut self) -> bool {
        if self.bootstrap == Bootstrap::Installed {
            return true;
        }
        let installed = self.installed.as_ref().expect("read before diffing");
        let miss = miss_flows();
        if installed.iter().all(|f| miss.get(&key(f)).is_some()) {
            return true;
        }
        info!(flows = installed.len(), "the switch holds an earlier realization: it stays in force until the first cluster view");
        self.bootstrap = Bootstrap::Declined;
        false
    }

    /// A bootstrap pass ended well.
    pub(super) fn bootstrapped(&mut self) {
        if self.bootstrap == Bootstrap::Pending {
            self.bootstrap = Bootstrap::Installed;
        }
        if self.bootstrap == Bootstrap::Installed {
            self.status.last_error = Some(FORWARDING_WITHOUT_POLICY.into());
        }
    }
}
