//! The bridge/port manager: idempotent `ensure`/`delete` of bridges, ports and mirrors.
//!
//! The manager keeps a monitor of the tables it manages on the same connection as its
//! transactions. ovsdb-server flushes a session's monitor updates before it sends a reply
//! (`ovsdb_jsonrpc_session_send` in ovsdb/jsonrpc-server.c), so when a transaction's reply
//! arrives the view already holds its effect. Each ensure compares the spec with that view
//! and sends one transaction with exactly the differences, or nothing at all. Bridge, Port
//! and Interface names are unique indexes of the schema, so an insert racing a writer the
//! view has not caught up with fails the whole transaction (`constraint violation`) instead
//! of creating a duplicate.
//!
//! Everything that can be checked before writing is (the error names the object and the
//! field, and the database is untouched). What only ovs-vswitchd can tell, such as a
//! system port whose device does not exist, is checked after the commit by waiting for
//! the interface's `ofport`/`error`; a new port that ovs-vswitchd rejects is deleted again
//! and reported the same way.
//!
//! The manager remembers what it was asked to ensure; [`Manager::reensure`] applies it all
//! again, and [`Manager::reensure_on_reconnect`] does so whenever the connection comes back.
//! [`Manager::arm_flow_restore_wait`] and [`Manager::finish_flow_restore`] drive OVS's
//! `flow-restore-wait` for a controller that reinstalls its flows after an ovs-vswitchd
//! restart (see `flow_restore.rs`).
mod flow_restore;
mod plan;
mod spec;
mod text;

pub use flow_restore::FLOW_RESTORE_WAIT;
pub use plan::Outcome;
pub use spec::{
    BridgeSpec, DatapathType, ErspanDir, ErspanVersion, FailMode, Flowable, Inheritable, MirrorSpec, NO_FLOOD_KEY,
    PROTOCOLS, PortKind, PortSpec, TunnelKind, TunnelSpec,
};
pub use text::{PORT_TYPES, parse_port};

use crate::client::{Client, Monitor, MonitorEvent};
use crate::error::Error;
use crate::operation::Operation;
use crate::tables::{DB, Interface, TableRow};
use crate::update::{Database, MonitorMethod, MonitorRequest};
use plan::Plan;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::time::Instant;

/// The columns the manager reads, per table (not statistics, which change every few
/// seconds and would only cost updates).
const MONITORED: [(&str, &[&str]); 8] = [
    (
        "Open_vSwitch",
        &[
            "bridges",
            "manager_options",
            "next_cfg",
            "cur_cfg",
            "ovs_version",
            "datapath_types",
            "iface_types",
            "other_config",
            "external_ids",
        ],
    ),
    (
        "Bridge",
        &[
            "name",
            "datapath_type",
            "protocols",
            "fail_mode",
            "ports",
            "mirrors",
            "controller",
            "flow_tables",
            "other_config",
            "external_ids",
        ],
    ),
    ("Port", &["name", "interfaces", "tag", "trunks", "other_config", "external_ids"]),
    ("Interface", &crate::interfaces::COLUMNS),
    ("Mirror", &["name", "select_all", "select_src_port", "select_dst_port", "output_port", "external_ids"]),
    ("Flow_Table", &["name", "flow_limit", "external_ids"]),
    ("Controller", &["target", "is_connected", "external_ids"]),
    ("Manager", &["target", "is_connected", "external_ids"]),
];

/// Tuning.
#[derive(Clone, Debug)]
pub struct ManagerOptions {
    /// How long to wait for ovs-vswitchd to report on new ports (`ofport` or `error`).
    /// `None` skips the check (no ovs-vswitchd). On timeout the ports stay: ovs-vswitchd
    /// may just be slow or down, and the database holds what was asked.
    pub verify_timeout: Option<Duration>,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        ManagerOptions { verify_timeout: Some(Duration::from_secs(5)) }
    }
}

#[derive(Default)]
struct Owned {
    bridges: BTreeMap<String, BridgeSpec>,
    ports: BTreeMap<String, BTreeMap<String, PortSpec>>,
    mirrors: BTreeMap<String, BTreeMap<String, MirrorSpec>>,
}

/// Why applying port specs failed.
enum Failure {
    /// Bad input (nothing written) or a failed transaction.
    Failed(Error),
    /// Committed, but ovs-vswitchd rejected these new ports, which were removed again.
    Rejected(Error, Vec<String>),
}

impl Failure {
    fn into_error(self) -> Error {
        match self {
            Failure::Failed(e) | Failure::Rejected(e, _) => e,
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Failed(e)
    }
}

/// Keeps bridges, ports and mirrors as specified.
pub struct Manager {
    monitor: Monitor,
    owned: tokio::sync::Mutex<Owned>,
    writes: AtomicU64,
    options: ManagerOptions,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager").field("writes", &self.transactions()).finish()
    }
}

impl Manager {
    /// Starts the manager's monitor on `client`.
    pub async fn new(client: &Client) -> Result<Manager, Error> {
        Self::with_options(client, ManagerOptions::default()).await
    }

    /// [`Manager::new`] with options.
    pub async fn with_options(client: &Client, options: ManagerOptions) -> Result<Manager, Error> {
        let requests = MONITORED.iter().map(|(t, cols)| (t.to_string(), MonitorRequest::columns(cols))).collect();
        let monitor = client.monitor(DB, requests, MonitorMethod::CondSince).await?;
        Ok(Manager { monitor, owned: Default::default(), writes: AtomicU64::new(0), options })
    }

    /// The client.
    pub fn client(&self) -> &Client {
        self.monitor.client()
    }

    /// The manager's monitor (the tables it manages, kept current).
    pub fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    /// Runs `f` on the current view.
    pub fn with_view<R>(&self, f: impl FnOnce(&Database) -> R) -> R {
        self.monitor.with_view(f)
    }

    /// Transactions this manager has sent (an ensure that finds nothing to change sends none).
    pub fn transactions(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    async fn commit(&self, plan: Plan, comment: String) -> Result<(), Error> {
        let mut ops = plan.ops;
        ops.push(Operation::Comment(comment));
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.client().transact(DB, &ops).await.map(drop)
    }

    /// Makes the bridge match `spec` in one transaction (none if it already does).
    pub async fn ensure_bridge(&self, spec: &BridgeSpec) -> Result<Outcome, Error> {
        spec.validate()?;
        let mut owned = self.owned.lock().await;
        let out = self.apply_bridge(spec).await?;
        owned.bridges.insert(spec.name.clone(), spec.clone());
        Ok(out)
    }

    async fn apply_bridge(&self, spec: &BridgeSpec) -> Result<Outcome, Error> {
        let (plan, outcome) = self.with_view(|db| plan::bridge(db, spec))?;
        if plan.writes() {
            self.commit(plan, format!("weir: ensure bridge {}", spec.name)).await?;
        }
        Ok(outcome)
    }

    /// Deletes a bridge and everything on it.
    pub async fn delete_bridge(&self, name: &str) -> Result<Outcome, Error> {
        let mut owned = self.owned.lock().await;
        let (plan, outcome) = self.with_view(|db| plan::delete_bridge(db, name))?;
        if plan.writes() {
            self.commit(plan, format!("weir: delete bridge {name}")).await?;
        }
        owned.bridges.remove(name);
        owned.ports.remove(name);
        owned.mirrors.remove(name);
        Ok(outcome)
    }

    /// Makes one port on `bridge` match `spec`.
    pub async fn ensure_port(&self, bridge: &str, spec: &PortSpec) -> Result<Outcome, Error> {
        Ok(self.ensure_ports(bridge, std::slice::from_ref(spec)).await?[0])
    }

    /// Makes many ports on `bridge` match their specs, in one transaction. If ovs-vswitchd
    /// rejects some new ports, those are removed again and the error names the first; the
    /// others stay and are kept like any ensured port.
    pub async fn ensure_ports(&self, bridge: &str, specs: &[PortSpec]) -> Result<Vec<Outcome>, Error> {
        let mut owned = self.owned.lock().await;
        let (result, rejected) = match self.apply_ports(bridge, specs).await {
            Ok(outcomes) => (Ok(outcomes), vec![]),
            Err(Failure::Failed(e)) => return Err(e),
            Err(Failure::Rejected(e, names)) => (Err(e), names),
        };
        let mine = owned.ports.entry(bridge.to_string()).or_default();
        for s in specs.iter().filter(|s| !rejected.contains(&s.name)) {
            mine.insert(s.name.clone(), s.clone());
        }
        result
    }

    async fn apply_ports(&self, bridge: &str, specs: &[PortSpec]) -> Result<Vec<Outcome>, Failure> {
        let (plan, outcomes) = self.with_view(|db| plan::ports(db, bridge, specs))?;
        if !plan.writes() {
            return Ok(outcomes);
        }
        let what = match specs {
            [one] => format!("port {}", one.name),
            many => format!("{} ports", many.len()),
        };
        self.commit(plan, format!("weir: ensure {what} on {bridge}")).await?;
        let created: Vec<&PortSpec> =
            specs.iter().zip(&outcomes).filter(|(_, o)| **o == Outcome::Created).map(|(s, _)| s).collect();
        if let (Some(timeout), false) = (self.options.verify_timeout, created.is_empty()) {
            self.verify_created(bridge, &created, timeout).await?;
        }
        Ok(outcomes)
    }

    /// Waits for ovs-vswitchd's verdict on new ports; deletes those it rejected and
    /// reports the first.
    async fn verify_created(&self, bridge: &str, created: &[&PortSpec], timeout: Duration) -> Result<(), Failure> {
        // A patch port reports an error until its peer exists, which may legitimately be
        // created later: only ports that stand alone are judged.
        let created: Vec<&PortSpec> =
            created.iter().copied().filter(|s| !matches!(s.kind, PortKind::Patch { .. })).collect();
        let names: Vec<&str> = created.iter().map(|s| s.name.as_str()).collect();
        let settled = |db: &Database| {
            let reported: BTreeMap<&str, bool> = db
                .rows("Interface")
                .map(|(_, r)| (r.str("name"), r.opt_integer("ofport").is_some() || r.opt_str("error").is_some()))
                .collect();
            names.iter().all(|n| reported.get(n).copied().unwrap_or(true))
        };
        if !self.wait_view(timeout, |db| settled(db).then_some(())).await {
            tracing::warn!(bridge, ports = names.len(), "ovs-vswitchd did not report on new ports in time");
            return Ok(());
        }
        let rejected: Vec<(&PortSpec, String)> = self.with_view(|db| {
            created
                .iter()
                .filter_map(|s| {
                    let i = Interface::named(db, &s.name)?;
                    (i.ofport == Some(-1) || i.error.is_some())
                        .then(|| (*s, i.error.unwrap_or_else(|| "ovs-vswitchd could not add it".into())))
                })
                .collect()
        });
        let Some((first, why)) = rejected.first() else { return Ok(()) };
        let doomed: Vec<&str> = rejected.iter().map(|(s, _)| s.name.as_str()).collect();
        let (plan, _) = self.with_view(|db| plan::delete_ports(db, bridge, &doomed))?;
        if plan.writes() {
            self.commit(plan, format!("weir: roll back rejected ports on {bridge}")).await?;
        }
        let field = match first.kind {
            PortKind::Internal | PortKind::System | PortKind::Patch { .. } => "name",
            PortKind::Tunnel(_) => "options",
        };
        let error = Error::invalid(first.object(), field, format!("rejected by ovs-vswitchd: {why}"));
        Err(Failure::Rejected(error, doomed.iter().map(|n| n.to_string()).collect()))
    }

    /// Removes a port from `bridge`.
    pub async fn delete_port(&self, bridge: &str, name: &str) -> Result<Outcome, Error> {
        let mut owned = self.owned.lock().await;
        let (plan, outcomes) = self.with_view(|db| plan::delete_ports(db, bridge, &[name]))?;
        if plan.writes() {
            self.commit(plan, format!("weir: delete port {name} from {bridge}")).await?;
        }
        if let Some(m) = owned.ports.get_mut(bridge) {
            m.remove(name);
        }
        Ok(outcomes[0])
    }

    /// Makes a mirror on `bridge` match `spec`.
    pub async fn ensure_mirror(&self, bridge: &str, spec: &MirrorSpec) -> Result<Outcome, Error> {
        let mut owned = self.owned.lock().await;
        let out = self.apply_mirror(bridge, spec).await?;
        owned.mirrors.entry(bridge.to_string()).or_default().insert(spec.name.clone(), spec.clone());
        Ok(out)
    }

    async fn apply_mirror(&self, bridge: &str, spec: &MirrorSpec) -> Result<Outcome, Error> {
        let (plan, outcome) = self.with_view(|db| plan::mirror(db, bridge, spec))?;
        if plan.writes() {
            self.commit(plan, format!("weir: ensure mirror {} on {bridge}", spec.name)).await?;
        }
        Ok(outcome)
    }

    /// Removes a mirror from `bridge`.
    pub async fn delete_mirror(&self, bridge: &str, name: &str) -> Result<Outcome, Error> {
        let mut owned = self.owned.lock().await;
        let (plan, outcome) = self.with_view(|db| plan::delete_mirror(db, bridge, name));
        if plan.writes() {
            self.commit(plan, format!("weir: delete mirror {name} from {bridge}")).await?;
        }
        if let Some(m) = owned.mirrors.get_mut(bridge) {
            m.remove(name);
        }
        Ok(outcome)
    }

    /// Applies everything this manager was asked to ensure again (bridges, then ports, then
    /// mirrors); returns how many objects had to be changed.
    pub async fn reensure(&self) -> Result<usize, Error> {
        let owned = self.owned.lock().await;
        let mut changed = 0;
        for spec in owned.bridges.values() {
            changed += usize::from(self.apply_bridge(spec).await? != Outcome::Unchanged);
        }
        for (bridge, ports) in &owned.ports {
            let specs: Vec<PortSpec> = ports.values().cloned().collect();
            if !specs.is_empty() {
                let outcomes = self.apply_ports(bridge, &specs).await.map_err(Failure::into_error)?;
                changed += outcomes.iter().filter(|o| **o != Outcome::Unchanged).count();
            }
        }
        for (bridge, mirrors) in &owned.mirrors {
            for spec in mirrors.values() {
                changed += usize::from(self.apply_mirror(bridge, spec).await? != Outcome::Unchanged);
            }
        }
        Ok(changed)
    }

    /// Re-ensures everything after each reconnect (when the monitor installs a new whole
    /// view). The task ends when the manager is dropped.
    pub fn reensure_on_reconnect(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let mut events = self.monitor.subscribe();
        let weak: Weak<Manager> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut first = true;
            while let Some(ev) = events.recv().await {
                if !matches!(ev, MonitorEvent::Snapshot(_)) {
                    continue;
                }
                if std::mem::take(&mut first) {
                    continue;
                }
                let Some(mgr) = weak.upgrade() else { return };
                match mgr.reensure().await {
                    Ok(n) => tracing::info!(changed = n, "re-ensured bridges and ports after reconnect"),
                    Err(e) => tracing::warn!(error = %e, "re-ensure after reconnect failed"),
                }
            }
        })
    }

    /// Waits until `f` returns something on the view, or `timeout` passes (`false`).
    async fn wait_view(&self, timeout: Duration, mut f: impl FnMut(&Database) -> Option<()>) -> bool {
        let mut changed = self.monitor.changed();
        let deadline = Instant::now() + timeout;
        loop {
            if self.with_view(&mut f).is_some() {
                return true;
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => {}
                _ => return false,
            }
        }
    }

    /// The OpenFlow port number of interface `name`, waiting up to `timeout` for
    /// ovs-vswitchd to assign it.
    pub async fn wait_ofport(&self, name: &str, timeout: Duration) -> Result<u32, Error> {
        let mut port = None;
        self.wait_view(timeout, |db| {
            let i = Interface::named(db, name)?;
            port = Some(i.ofport?);
            Some(())
        })
        .await;
        match port {
            Some(p) if p > 0 => Ok(p as u32),
            Some(_) => Err(Error::invalid(format!("port {name:?}"), "name", "ovs-vswitchd could not add it")),
            None => Err(Error::Timeout(format!("an OpenFlow port number for {name:?}"))),
        }
    }
}
