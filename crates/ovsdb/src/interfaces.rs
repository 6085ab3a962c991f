//! The Interface view the agent consumes: after every change, the full current set of
//! Interface rows, typed, so the agent can map OpenFlow ports to pods through
//! `external_ids` without tracking deltas itself.
use crate::client::{Client, Monitor, MonitorEvent};
use crate::error::Error;
use crate::tables::{DB, Interface, TableRow};
use crate::update::{MonitorMethod, MonitorRequest};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Columns of Interface rows delivered, here and to the manager (not statistics: they change
/// every few seconds; `bfd_status` only moves where BFD is enabled, which weir never does).
pub const COLUMNS: [&str; 13] = [
    "name",
    "type",
    "options",
    "ofport",
    "ofport_request",
    "mtu_request",
    "mtu",
    "mac",
    "mac_in_use",
    "error",
    "link_state",
    "bfd_status",
    "external_ids",
];

/// The full set of interfaces after one change.
#[derive(Clone, Debug)]
pub struct InterfaceSet {
    /// Every Interface row, by name.
    pub interfaces: Arc<BTreeMap<String, Interface>>,
    /// Names of the interfaces this change inserted, modified or deleted (every name for a
    /// resync).
    pub changed: Vec<String>,
    /// Whether this set replaces everything (first set, and after each reconnect).
    pub resync: bool,
}

/// A stream of [`InterfaceSet`]s.
#[derive(Debug)]
pub struct InterfaceMonitor {
    monitor: Monitor,
    events: mpsc::UnboundedReceiver<MonitorEvent>,
    current: BTreeMap<crate::datum::Uuid, Interface>,
}

impl InterfaceMonitor {
    /// Starts monitoring the Interface table.
    pub async fn start(client: &Client) -> Result<InterfaceMonitor, Error> {
        let requests = BTreeMap::from([("Interface".to_string(), MonitorRequest::columns(&COLUMNS))]);
        let monitor = client.monitor(DB, requests, MonitorMethod::CondSince).await?;
        let events = monitor.subscribe();
        Ok(InterfaceMonitor { monitor, events, current: BTreeMap::new() })
    }

    /// The underlying monitor.
    pub fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    /// The next set: the first call returns the initial set; later calls wait for a change.
    /// `None` once the client has shut down.
    pub async fn next(&mut self) -> Option<InterfaceSet> {
        let ev = self.events.recv().await?;
        let (changed, resync) = match ev {
            MonitorEvent::Snapshot(db) => {
                self.current = Interface::all(&db).into_iter().map(|i| (i.uuid, i)).collect();
                (self.current.values().map(|i| i.name.clone()).collect(), true)
            }
            MonitorEvent::Update(changes) => {
                let mut names = vec![];
                for c in changes.iter().filter(|c| c.table == Interface::TABLE) {
                    if let Some(old) = self.current.remove(&c.uuid) {
                        names.push(old.name);
                    }
                    if let Some(new) = &c.new {
                        let i = Interface::from_row(c.uuid, new);
                        if !names.contains(&i.name) {
                            names.push(i.name.clone());
                        }
                        self.current.insert(c.uuid, i);
                    }
                }
                (names, false)
            }
        };
        let interfaces = Arc::new(self.current.values().map(|i| (i.name.clone(), i.clone())).collect());
        Some(InterfaceSet { interfaces, changed, resync })
    }
}
