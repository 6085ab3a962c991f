//! The tokio OVSDB client: one connection task (the driver, [`driver`]) owns the socket,
//! correlates responses, answers the server's `echo`, probes an idle server with its own
//! `echo`, keeps monitor replicas, and reconnects with exponential backoff. [`Client`] is a
//! cheap cloneable handle that sends it commands.
//!
//! After a reconnect every monitor is re-established (`monitor_cond_since` from the last
//! transaction seen when the server supports it) and its subscribers get a
//! [`MonitorEvent::Snapshot`] holding the whole new view: nothing is lost between the old
//! and the new connection. Calls that were in flight when the connection dropped fail with
//! [`Error::Disconnected`] (their effect is unknown); calls made while disconnected wait
//! and are sent once connected. Dropping a call's future before it completes sends a
//! JSON-RPC `cancel` for it.
mod driver;
mod monitor;

pub use monitor::{Monitor, MonitorEvent};

use crate::error::Error;
use crate::jsonrpc::Message;
use crate::operation::{Operation, OperationResult, ParseOutcome, parse_results};
use crate::schema::Schema;
use crate::update::{MonitorMethod, MonitorRequest};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// Where to connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A Unix domain socket.
    Unix(PathBuf),
    /// `host:port` over TCP.
    Tcp(String),
}

impl Target {
    /// Parses `unix:PATH` or `tcp:HOST:PORT` (`tcp:[v6addr]:PORT` for IPv6).
    pub fn parse(s: &str) -> Result<Target, Error> {
        if let Some(path) = s.strip_prefix("unix:").filter(|p| !p.is_empty()) {
            return Ok(Target::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = s.strip_prefix("tcp:")
            && let Some((host, port)) = addr.rsplit_once(':')
            && !host.is_empty()
            && port.parse::<u16>().is_ok()
        {
            return Ok(Target::Tcp(addr.to_string()));
        }
        Err(Error::Target(s.to_string()))
    }
}

/// Connection tuning.
#[derive(Clone, Debug)]
pub struct Options {
    /// First reconnect delay; doubled after each failed attempt.
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// Send an `echo` after this long without traffic, and drop the connection when
    /// another interval passes without any reply. `None` disables probing.
    pub probe_interval: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(4),
            probe_interval: Some(Duration::from_secs(5)),
        }
    }
}

/// The connection's state as seen by callers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnState {
    /// Whether a connection is up.
    pub connected: bool,
    /// Connections established so far (a reconnect increments it).
    pub connections: u64,
    /// Failed connection attempts so far.
    pub failed_attempts: u64,
    /// Why the last attempt or connection failed.
    pub last_error: Option<String>,
}

pub(crate) enum Command {
    Call {
        id: u64,
        method: String,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<Value, Error>>,
    },
    Cancel {
        id: u64,
    },
    Monitor {
        id: u64,
        db: String,
        requests: BTreeMap<String, MonitorRequest>,
        method: MonitorMethod,
        shared: Arc<monitor::Shared>,
        ready: oneshot::Sender<Result<(), Error>>,
    },
    MonitorCancel {
        key: Value,
        reply: Option<oneshot::Sender<Result<(), Error>>>,
    },
}

struct Shared {
    target: String,
    next_id: AtomicU64,
    transactions: AtomicU64,
    state: watch::Receiver<ConnState>,
}

/// A handle on one OVSDB connection (cloning shares the connection).
#[derive(Clone)]
pub struct Client {
    cmd: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("target", &self.shared.target).finish()
    }
}

impl Client {
    /// Connects to `target` (`unix:PATH` or `tcp:HOST:PORT`); fails if the first attempt
    /// fails. Later disconnects are repaired in the background.
    pub async fn connect(target: &str) -> Result<Client, Error> {
        Self::connect_with(target, Options::default()).await
    }

    /// [`Client::connect`] with explicit options.
    pub async fn connect_with(target: &str, options: Options) -> Result<Client, Error> {
        let client = Self::start(target, options)?;
        let mut state = client.state();
        let st = state.wait_for(|s| s.connected || s.failed_attempts > 0).await.map_err(|_| Error::Closed)?.clone();
        if !st.connected {
            return Err(Error::Io(format!("{target}: {}", st.last_error.unwrap_or_default())));
        }
        Ok(client)
    }

    /// Starts the connection task without waiting: calls wait until it connects, retrying
    /// forever with backoff (what a daemon wants when OVS may start after it).
    pub fn start(target: &str, options: Options) -> Result<Client, Error> {
        let parsed = Target::parse(target)?;
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (state_tx, state_rx) = watch::channel(ConnState::default());
        tokio::spawn(driver::Driver::new(parsed, options, cmd_rx, state_tx).run());
        Ok(Client {
            cmd: cmd_tx,
            shared: Arc::new(Shared {
                target: target.to_string(),
                next_id: AtomicU64::new(1),
                transactions: AtomicU64::new(0),
                state: state_rx,
            }),
        })
    }

    /// The target this client connects to.
    pub fn target(&self) -> &str {
        &self.shared.target
    }

    /// Watches the connection state (use `wait_for` to await a reconnect).
    pub fn state(&self) -> watch::Receiver<ConnState> {
        self.shared.state.clone()
    }

    /// Number of `transact` requests this client (and its clones) have sent.
    pub fn transactions(&self) -> u64 {
        self.shared.transactions.load(Ordering::Relaxed)
    }

    fn next_id(&self) -> u64 {
        self.shared.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Calls any method and returns its raw result.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, Error> {
        let id = self.next_id();
        let bytes = Message::Request { id: json!(id), method: method.to_string(), params }.to_bytes();
        let (reply, rx) = oneshot::channel();
        self.cmd.send(Command::Call { id, method: method.to_string(), bytes, reply }).map_err(|_| Error::Closed)?;
        let mut guard = CancelOnDrop { cmd: &self.cmd, id, armed: true };
        let out = rx.await.map_err(|_| Error::Closed)?;
        guard.armed = false;
        out
    }

    /// `list_dbs`.
    pub async fn list_dbs(&self) -> Result<Vec<String>, Error> {
        let v = self.call("list_dbs", json!([])).await?;
        serde_json::from_value(v).map_err(|e| Error::Protocol(format!("list_dbs result: {e}")))
    }

    /// `get_schema`.
    pub async fn get_schema(&self, db: &str) -> Result<Schema, Error> {
        let v = self.call("get_schema", json!([db])).await?;
        Schema::from_json(&v).map_err(Error::Protocol)
    }

    /// `transact`: runs `ops` atomically; the first failing operation fails the call with
    /// [`Error::Transaction`] naming it.
    pub async fn transact(&self, db: &str, ops: &[Operation]) -> Result<Vec<OperationResult>, Error> {
        let mut params = vec![json!(db)];
        params.extend(ops.iter().map(Operation::to_json));
        self.shared.transactions.fetch_add(1, Ordering::Relaxed);
        let v = self.call("transact", Value::Array(params)).await?;
        parse_results(ops, &v).map_err(|e| match e {
            ParseOutcome::Failed(t) => Error::Transaction(t),
            ParseOutcome::Malformed(m) => Error::Protocol(m),
        })
    }

    /// Sends an `echo` and returns the round-trip time.
    pub async fn echo(&self) -> Result<Duration, Error> {
        let start = Instant::now();
        let v = self.call("echo", json!(["weir"])).await?;
        if v != json!(["weir"]) {
            return Err(Error::Protocol(format!("echo returned {v}")));
        }
        Ok(start.elapsed())
    }

    /// `lock` (or `steal` when `steal` is set): whether this session now holds the lock.
    pub async fn lock(&self, name: &str, steal: bool) -> Result<bool, Error> {
        let v = self.call(if steal { "steal" } else { "lock" }, json!([name])).await?;
        Ok(v.get("locked").and_then(Value::as_bool).unwrap_or(false))
    }

    /// `unlock`.
    pub async fn unlock(&self, name: &str) -> Result<(), Error> {
        self.call("unlock", json!([name])).await.map(drop)
    }

    /// Starts monitoring `requests` (table → what to watch) in `db`. Returns once the
    /// initial contents are in the monitor's view.
    pub async fn monitor(
        &self,
        db: &str,
        requests: BTreeMap<String, MonitorRequest>,
        method: MonitorMethod,
    ) -> Result<Monitor, Error> {
        let id = self.next_id();
        let shared = Arc::new(monitor::Shared::default());
        let (ready, rx) = oneshot::channel();
        self.cmd
            .send(Command::Monitor { id, db: db.to_string(), requests, method, shared: shared.clone(), ready })
            .map_err(|_| Error::Closed)?;
        let monitor = Monitor::new(self.clone(), shared, monitor::key(id));
        rx.await.map_err(|_| Error::Closed)??;
        Ok(monitor)
    }
}

/// Sends `cancel` for a call whose future was dropped before its response arrived.
struct CancelOnDrop<'a> {
    cmd: &'a mpsc::UnboundedSender<Command>,
    id: u64,
    armed: bool,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.cmd.send(Command::Cancel { id: self.id });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_or_name_the_bad_input() {
        assert_eq!(Target::parse("unix:/run/db.sock").unwrap(), Target::Unix("/run/db.sock".into()));
        assert_eq!(Target::parse("tcp:127.0.0.1:6640").unwrap(), Target::Tcp("127.0.0.1:6640".into()));
        assert_eq!(Target::parse("tcp:[::1]:6640").unwrap(), Target::Tcp("[::1]:6640".into()));
        for bad in ["unix:", "tcp:host", "tcp::6640", "tcp:h:99999", "ssl:h:1", "/run/db.sock"] {
            assert!(matches!(Target::parse(bad), Err(Error::Target(t)) if t == bad), "{bad}");
        }
    }
}
