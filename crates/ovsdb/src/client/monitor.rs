//! A monitor handle: the replica the connection task keeps current, and subscriptions to
//! its changes.
use super::{Client, Command};
use crate::error::Error;
use crate::update::{Database, Replica, RowChange};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, watch};

/// A change to a monitor's view, in server order.
#[derive(Clone, Debug)]
pub enum MonitorEvent {
    /// The whole view. Sent first to every subscriber, and again after each reconnect
    /// (replace what you had: rows may have changed while the connection was down).
    Snapshot(Arc<Database>),
    /// The rows one update notification changed, each with its whole old and new row.
    Update(Arc<Vec<RowChange>>),
}

#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    /// Bumped after every change to the view (watchers re-read it).
    pub(crate) version: watch::Sender<u64>,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) replica: Replica,
    /// Snapshots installed so far: 1 after the initial reply, +1 per reconnect.
    pub(crate) snapshots: u64,
    pub(crate) subscribers: Vec<mpsc::UnboundedSender<MonitorEvent>>,
}

impl Shared {
    /// Installs a new whole view (called by the connection task).
    pub(crate) fn replace(&self, replica: Replica) {
        let mut st = self.state.lock().expect("monitor state lock");
        st.replica = replica;
        st.snapshots += 1;
        let snap = Arc::new(st.replica.db.clone());
        st.subscribers.retain(|s| s.send(MonitorEvent::Snapshot(snap.clone())).is_ok());
        drop(st);
        self.version.send_modify(|v| *v += 1);
    }

    /// Publishes changes already applied to the replica.
    pub(crate) fn publish(&self, st: &mut State, changes: Vec<RowChange>) {
        if changes.is_empty() {
            return;
        }
        let changes = Arc::new(changes);
        st.subscribers.retain(|s| s.send(MonitorEvent::Update(changes.clone())).is_ok());
        self.version.send_modify(|v| *v += 1);
    }
}

pub(crate) fn key(id: u64) -> Value {
    json!(format!("weir-monitor-{id}"))
}

/// A running monitor. Dropping it cancels it on the server.
pub struct Monitor {
    client: Client,
    shared: Arc<Shared>,
    key: Value,
    cancelled: bool,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor").field("key", &self.key).finish()
    }
}

impl Monitor {
    pub(crate) fn new(client: Client, shared: Arc<Shared>, key: Value) -> Monitor {
        Monitor { client, shared, key, cancelled: false }
    }

    /// The client this monitor runs on.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs `f` on the current view (keep it short: the connection task waits for it).
    pub fn with_view<R>(&self, f: impl FnOnce(&Database) -> R) -> R {
        f(&self.shared.state.lock().expect("monitor state lock").replica.db)
    }

    /// A copy of the current view.
    pub fn snapshot(&self) -> Database {
        self.with_view(Database::clone)
    }

    /// How many whole views have been installed: 1 after start, +1 per reconnect.
    pub fn snapshots(&self) -> u64 {
        self.shared.state.lock().expect("monitor state lock").snapshots
    }

    /// A receiver that changes whenever the view does.
    pub fn changed(&self) -> watch::Receiver<u64> {
        self.shared.version.subscribe()
    }

    /// Subscribes to changes: the first event is a [`MonitorEvent::Snapshot`] of the
    /// current view, then every update in order.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<MonitorEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut st = self.shared.state.lock().expect("monitor state lock");
        let _ = tx.send(MonitorEvent::Snapshot(Arc::new(st.replica.db.clone())));
        st.subscribers.push(tx);
        rx
    }

    /// Cancels the monitor on the server (`monitor_cancel`) and waits for the answer.
    pub async fn cancel(mut self) -> Result<(), Error> {
        self.cancelled = true;
        let (reply, rx) = oneshot::channel();
        self.client
            .cmd
            .send(Command::MonitorCancel { key: self.key.clone(), reply: Some(reply) })
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if !self.cancelled {
            let _ = self.client.cmd.send(Command::MonitorCancel { key: self.key.clone(), reply: None });
        }
    }
}
