//! The connection task: the only owner of the socket and of every pending call.
//!
//! It reacts to three inputs: commands from [`Client`](super::Client) handles, I/O events
//! from the reader/writer/connector tasks it spawns (tagged with a connection generation so
//! events of a dead connection are ignored), and one timer (reconnect backoff or idle
//! probe). Reading and writing run in their own tasks so a large request being written can
//! never stop the driver from draining the server's output: ovsdb-server stops reading a
//! client while it has a backlog to send it, so a client that only reads after it finished
//! writing can deadlock with it.
use super::monitor::Shared as MonitorShared;
use super::{Command, ConnState, Options, Target};
use crate::error::Error;
use crate::framing::Framer;
use crate::jsonrpc::{Calls, Message};
use crate::schema::Schema;
use crate::update::{Format, MonitorMethod, MonitorRequest, Replica, monitor_params};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

enum Io {
    Connected(u64, Reader, Writer),
    ConnectFailed(u64, String),
    Message(u64, Value),
    Closed(u64, String),
}

enum Waiter {
    Call { method: String, reply: oneshot::Sender<Result<Value, Error>>, sent: bool },
    Schema { db: String },
    Monitor { key: String },
    MonitorCancel { reply: Option<oneshot::Sender<Result<(), Error>>> },
    Probe,
}

struct Registration {
    key: Value,
    db: String,
    requests: BTreeMap<String, MonitorRequest>,
    method: MonitorMethod,
    shared: Arc<MonitorShared>,
    /// The caller of `Client::monitor`, until the first view is in place.
    ready: Option<oneshot::Sender<Result<(), Error>>>,
    /// The connection generation the monitor request was last sent on.
    sent_on: u64,
}

struct Conn {
    write: mpsc::UnboundedSender<Vec<u8>>,
    reader: JoinHandle<()>,
}

pub(super) struct Driver {
    target: Target,
    options: Options,
    cmd_rx: mpsc::UnboundedReceiver<Command>,
    io_tx: mpsc::UnboundedSender<Io>,
    io_rx: mpsc::UnboundedReceiver<Io>,
    state: watch::Sender<ConnState>,
    /// Generation of the current connection or connection attempt.
    generation: u64,
    conn: Option<Conn>,
    connecting: bool,
    reconnect_at: Option<Instant>,
    backoff: Duration,
    calls: Calls<Waiter>,
    /// Requests made while disconnected, in order.
    queue: Vec<(u64, Vec<u8>)>,
    monitors: HashMap<String, Registration>,
    schemas: HashMap<String, Arc<Schema>>,
    fetching: HashSet<String>,
    next_internal_id: u64,
    last_rx: Instant,
    probe_sent: Option<Instant>,
}

/// Ids of the driver's own requests, far from the ids handed out to callers.
const INTERNAL_IDS: u64 = 1 << 62;

impl Driver {
    pub(super) fn new(
        target: Target,
        options: Options,
        cmd_rx: mpsc::UnboundedReceiver<Command>,
        state: watch::Sender<ConnState>,
    ) -> Driver {
        let (io_tx, io_rx) = mpsc::unbounded_channel();
        let backoff = options.backoff_min;
        Driver {
            target,
            options,
            cmd_rx,
            io_tx,
            io_rx,
            state,
            generation: 0,
            conn: None,
            connecting: false,
            reconnect_at: Some(Instant::now()),
            backoff,
            calls: Calls::default(),
            queue: vec![],
            monitors: HashMap::new(),
            schemas: HashMap::new(),
            fetching: HashSet::new(),
            next_internal_id: INTERNAL_IDS,
            last_rx: Instant::now(),
            probe_sent: None,
        }
    }

    pub(super) async fn run(mut self) {
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                cmd = self.cmd_rx.recv() => match cmd {
                    Some(c) => self.on_command(c),
                    None => break,
                },
                Some(io) = self.io_rx.recv() => self.on_io(io),
                _ = sleep_until(deadline) => self.on_timer(),
            }
        }
        if let Some(c) = self.conn.take() {
            c.reader.abort();
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        if self.conn.is_none() {
            return if self.connecting { None } else { self.reconnect_at };
        }
        let p = self.options.probe_interval?;
        Some(match self.probe_sent {
            Some(sent) => sent + p,
            None => self.last_rx + p,
        })
    }

    fn on_timer(&mut self) {
        if self.conn.is_none() {
            self.reconnect_at = None;
            self.start_connect();
        } else if self.probe_sent.is_some() {
            let p = self.options.probe_interval.unwrap_or_default();
            self.disconnect(format!("no reply to echo probe within {p:?}"));
        } else {
            let id = self.internal_id();
            self.calls.register(id, Waiter::Probe);
            self.send(Message::Request { id: json!(id), method: "echo".into(), params: json!([]) }.to_bytes());
            self.probe_sent = Some(Instant::now());
        }
    }

    fn internal_id(&mut self) -> u64 {
        self.next_internal_id += 1;
        self.next_internal_id
    }

    fn start_connect(&mut self) {
        self.generation += 1;
        self.connecting = true;
        let (generation, target, io) = (self.generation, self.target.clone(), self.io_tx.clone());
        tokio::spawn(async move {
            let event = match connect(&target).await {
                Ok((r, w)) => Io::Connected(generation, r, w),
                Err(e) => Io::ConnectFailed(generation, e.to_string()),
            };
            let _ = io.send(event);
        });
    }

    fn send(&mut self, bytes: Vec<u8>) {
        if let Some(c) = &self.conn {
            // A failed send means the writer died; its Closed event is on the way.
            let _ = c.write.send(bytes);
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Call { id, method, bytes, reply } => {
                let sent = self.conn.is_some();
                self.calls.register(id, Waiter::Call { method, reply, sent });
                if sent {
                    self.send(bytes);
                } else {
                    self.queue.push((id, bytes));
                }
            }
            Command::Cancel { id } => match self.calls.forget(id) {
                Some(Waiter::Call { sent: true, .. }) => {
                    self.send(Message::Notification { method: "cancel".into(), params: json!([id]) }.to_bytes())
                }
                Some(_) => self.queue.retain(|(q, _)| *q != id),
                None => {}
            },
            Command::Monitor { id, db, requests, method, shared, ready } => {
                let key = super::monitor::key(id);
                let name = key.as_str().expect("monitor keys are strings").to_string();
                self.monitors.insert(
                    name.clone(),
                    Registration { key, db, requests, method, shared, ready: Some(ready), sent_on: 0 },
                );
                if self.conn.is_some() {
                    self.establish(&name);
                }
            }
            Command::MonitorCancel { key, reply } => {
                let name = key.as_str().unwrap_or_default().to_string();
                let live = self.monitors.remove(&name).is_some_and(|r| r.sent_on == self.generation);
                if live && self.conn.is_some() {
                    let id = self.internal_id();
                    self.calls.register(id, Waiter::MonitorCancel { reply });
                    self.send(
                        Message::Request { id: json!(id), method: "monitor_cancel".into(), params: json!([key]) }
                            .to_bytes(),
                    );
                } else if let Some(r) = reply {
                    let _ = r.send(Ok(()));
                }
            }
        }
    }

    /// Sends the monitor request of `name`, fetching its database's schema first.
    fn establish(&mut self, name: &str) {
        let Some(reg) = self.monitors.get(name) else { return };
        if reg.sent_on == self.generation {
            return;
        }
        let db = reg.db.clone();
        if !self.schemas.contains_key(&db) {
            if self.fetching.insert(db.clone()) {
                let id = self.internal_id();
                self.calls.register(id, Waiter::Schema { db: db.clone() });
                self.send(
                    Message::Request { id: json!(id), method: "get_schema".into(), params: json!([db]) }.to_bytes(),
                );
            }
            return;
        }
        let id = self.internal_id();
        let generation = self.generation;
        let reg = self.monitors.get_mut(name).expect("checked above");
        reg.sent_on = generation;
        let last = reg.shared.state.lock().expect("monitor state lock").replica.last_txn_id;
        let params = monitor_params(reg.method, &reg.db, &reg.key, &reg.requests, last);
        let bytes = Message::Request { id: json!(id), method: reg.method.method().into(), params }.to_bytes();
        self.calls.register(id, Waiter::Monitor { key: name.to_string() });
        self.send(bytes);
    }

    fn on_io(&mut self, io: Io) {
        match io {
            Io::Connected(g, reader, writer) if g == self.generation => self.on_connected(reader, writer),
            Io::ConnectFailed(g, e) if g == self.generation => {
                self.connecting = false;
                tracing::debug!(error = %e, "OVSDB connect failed");
                self.state.send_modify(|s| {
                    s.failed_attempts += 1;
                    s.last_error = Some(e);
                });
                self.schedule_reconnect();
            }
            Io::Message(g, v) if g == self.generation && self.conn.is_some() => {
                self.last_rx = Instant::now();
                self.probe_sent = None;
                match Message::from_json(v) {
                    Ok(m) => self.on_message(m),
                    Err(e) => self.disconnect(format!("protocol error: {e}")),
                }
            }
            Io::Closed(g, why) if g == self.generation && self.conn.is_some() => self.disconnect(why),
            _ => {}
        }
    }

    fn schedule_reconnect(&mut self) {
        self.reconnect_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(self.options.backoff_max);
    }

    fn on_connected(&mut self, reader: Reader, writer: Writer) {
        self.connecting = false;
        self.backoff = self.options.backoff_min;
        let (write, rx) = mpsc::unbounded_channel();
        let generation = self.generation;
        let reader = tokio::spawn(read_loop(generation, reader, self.io_tx.clone()));
        tokio::spawn(write_loop(generation, writer, rx, self.io_tx.clone()));
        self.conn = Some(Conn { write, reader });
        self.last_rx = Instant::now();
        self.probe_sent = None;
        self.state.send_modify(|s| {
            s.connected = true;
            s.connections += 1;
        });
        let names: Vec<String> = self.monitors.keys().cloned().collect();
        for name in names {
            self.establish(&name);
        }
        for (id, bytes) in std::mem::take(&mut self.queue) {
            if let Some(Waiter::Call { sent, .. }) = self.calls.get_mut(id) {
                *sent = true;
            }
            self.send(bytes);
        }
    }

    fn disconnect(&mut self, why: String) {
        let Some(conn) = self.conn.take() else { return };
        conn.reader.abort();
        tracing::info!(reason = %why, "OVSDB connection lost");
        let mut unsent = vec![];
        for (id, waiter) in self.calls.drain() {
            match waiter {
                Waiter::Call { method, reply, sent: true } => {
                    let _ = reply.send(Err(Error::Disconnected(method)));
                }
                w @ Waiter::Call { sent: false, .. } => unsent.push((id, w)),
                Waiter::MonitorCancel { reply: Some(r) } => {
                    let _ = r.send(Ok(()));
                }
                _ => {}
            }
        }
        for (id, w) in unsent {
            self.calls.register(id, w);
        }
        self.schemas.clear();
        self.fetching.clear();
        self.state.send_modify(|s| {
            s.connected = false;
            s.last_error = Some(why);
        });
        self.schedule_reconnect();
    }

    fn on_message(&mut self, m: Message) {
        match m {
            Message::Request { .. } => {
                if let Some(answer) = m.answer() {
                    self.send(answer.to_bytes());
                }
            }
            Message::Notification { method, params } => match method.as_str() {
                "update" | "update2" | "update3" => self.on_update(&method, &params),
                other => tracing::debug!(method = other, "OVSDB notification ignored"),
            },
            Message::Response { id, result, error } => {
                let Some((waiter, outcome)) = self.calls.complete(&id, result, error) else { return };
                self.on_response(waiter, outcome);
            }
        }
    }

    fn on_response(&mut self, waiter: Waiter, outcome: Result<Value, Value>) {
        match waiter {
            Waiter::Call { method, reply, .. } => {
                let _ = reply.send(outcome.map_err(|error| Error::Rpc { method, error }));
            }
            Waiter::Probe => {}
            Waiter::MonitorCancel { reply } => {
                if let Some(r) = reply {
                    let _ = r
                        .send(outcome.map(drop).map_err(|error| Error::Rpc { method: "monitor_cancel".into(), error }));
                }
            }
            Waiter::Schema { db } => {
                self.fetching.remove(&db);
                let parsed = outcome
                    .map_err(|error| Error::Rpc { method: "get_schema".into(), error })
                    .and_then(|v| Schema::from_json(&v).map_err(Error::Protocol));
                match parsed {
                    Ok(schema) => {
                        self.schemas.insert(db.clone(), Arc::new(schema));
                        let names: Vec<String> =
                            self.monitors.iter().filter(|(_, r)| r.db == db).map(|(n, _)| n.clone()).collect();
                        for name in names {
                            self.establish(&name);
                        }
                    }
                    Err(e) => {
                        let names: Vec<String> =
                            self.monitors.iter().filter(|(_, r)| r.db == db).map(|(n, _)| n.clone()).collect();
                        for name in names {
                            self.fail_monitor(&name, e.clone());
                        }
                    }
                }
            }
            Waiter::Monitor { key } => {
                let result = match outcome {
                    Ok(v) => self.install_view(&key, &v),
                    Err(error) => {
                        let method = self.monitors.get(&key).map_or("monitor", |r| r.method.method());
                        Err(Error::Rpc { method: method.into(), error })
                    }
                };
                match result {
                    Ok(()) => {
                        if let Some(ready) = self.monitors.get_mut(&key).and_then(|r| r.ready.take()) {
                            let _ = ready.send(Ok(()));
                        }
                    }
                    Err(e) => self.fail_monitor(&key, e),
                }
            }
        }
    }

    /// A monitor could not be (re-)established: its first caller gets the error; a monitor
    /// that already ran is kept and retried on the next connection.
    fn fail_monitor(&mut self, name: &str, e: Error) {
        let first = self.monitors.get(name).is_some_and(|r| r.ready.is_some());
        if first {
            if let Some(mut reg) = self.monitors.remove(name)
                && let Some(ready) = reg.ready.take()
            {
                let _ = ready.send(Err(e));
            }
        } else {
            tracing::warn!(monitor = name, error = %e, "OVSDB monitor could not be re-established");
        }
    }

    /// Installs the reply to a monitor request as the monitor's new whole view.
    fn install_view(&mut self, key: &str, v: &Value) -> Result<(), Error> {
        let Some(reg) = self.monitors.get(key) else { return Ok(()) };
        let schema = self.schemas.get(&reg.db).cloned().unwrap_or_default();
        let (found, last, updates) = match reg.method {
            MonitorMethod::Monitor | MonitorMethod::Cond => (false, None, v),
            MonitorMethod::CondSince => {
                let a = v.as_array().filter(|a| a.len() == 3).ok_or_else(|| {
                    Error::Protocol("monitor_cond_since result is not [found, last-txn-id, updates]".into())
                })?;
                let last = a[1].as_str().and_then(crate::datum::Uuid::parse);
                (a[0].as_bool().unwrap_or(false), last, &a[2])
            }
        };
        let format = if reg.method == MonitorMethod::Monitor { Format::V1 } else { Format::V2 };
        let mut replica = if found {
            reg.shared.state.lock().expect("monitor state lock").replica.clone()
        } else {
            Replica::default()
        };
        replica.apply(format, updates, &schema, &reg.requests).map_err(Error::Protocol)?;
        replica.last_txn_id = last.filter(|u| *u != crate::datum::Uuid::ZERO);
        reg.shared.replace(replica);
        Ok(())
    }

    fn on_update(&mut self, method: &str, params: &Value) {
        let Some(p) = params.as_array() else { return };
        let Some(name) = p.first().and_then(Value::as_str) else { return };
        let Some(reg) = self.monitors.get(name) else { return };
        let schema = self.schemas.get(&reg.db).cloned().unwrap_or_default();
        let (format, updates, last) = match method {
            "update" => (Format::V1, p.get(1), None),
            "update2" => (Format::V2, p.get(1), None),
            _ => (Format::V2, p.get(2), p.get(1).and_then(Value::as_str).and_then(crate::datum::Uuid::parse)),
        };
        let Some(updates) = updates else { return };
        let failed = {
            let mut st = reg.shared.state.lock().expect("monitor state lock");
            match st.replica.apply(format, updates, &schema, &reg.requests) {
                Ok(changes) => {
                    if last.is_some() {
                        st.replica.last_txn_id = last;
                    }
                    reg.shared.publish(&mut st, changes);
                    None
                }
                Err(e) => {
                    // Force a whole new view on reconnect rather than deltas on a bad base.
                    st.replica.last_txn_id = None;
                    Some(e)
                }
            }
        };
        if let Some(e) = failed {
            // The replica may now be partly updated: only a fresh view repairs it.
            self.disconnect(format!("bad {method} notification: {e}"));
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn connect(target: &Target) -> std::io::Result<(Reader, Writer)> {
    Ok(match target {
        Target::Unix(path) => {
            let (r, w) = connect_unix(path).await?.into_split();
            (Box::new(r), Box::new(w))
        }
        Target::Tcp(addr) => {
            let s = tokio::net::TcpStream::connect(addr.as_str()).await?;
            s.set_nodelay(true)?;
            let (r, w) = s.into_split();
            (Box::new(r), Box::new(w))
        }
    })
}

/// Connects to a Unix socket, waiting out a full listen backlog: Linux answers EAGAIN
/// instead of queueing when ovsdb-server has not yet accepted earlier connections (a burst
/// of CNI ADDs does this), which is a busy server, not an absent one.
async fn connect_unix(path: &std::path::Path) -> std::io::Result<tokio::net::UnixStream> {
    const BACKLOG_WAIT: Duration = Duration::from_secs(10);
    let give_up = Instant::now() + BACKLOG_WAIT;
    let mut pause = Duration::from_millis(1);
    loop {
        match tokio::net::UnixStream::connect(path).await {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < give_up => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

async fn read_loop(generation: u64, mut reader: Reader, io: mpsc::UnboundedSender<Io>) {
    let mut framer = Framer::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) => {
                let _ = io.send(Io::Closed(generation, "connection closed by the server".into()));
                return;
            }
            Ok(n) => n,
            Err(e) => {
                let _ = io.send(Io::Closed(generation, format!("read: {e}")));
                return;
            }
        };
        framer.push(&buf[..n]);
        loop {
            match framer.next_message() {
                Ok(Some(v)) => {
                    if io.send(Io::Message(generation, v)).is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = io.send(Io::Closed(generation, e.to_string()));
                    return;
                }
            }
        }
    }
}

async fn write_loop(
    generation: u64,
    mut writer: Writer,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    io: mpsc::UnboundedSender<Io>,
) {
    while let Some(bytes) = rx.recv().await {
        if let Err(e) = writer.write_all(&bytes).await {
            let _ = io.send(Io::Closed(generation, format!("write: {e}")));
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_unix_connect_waits_out_a_full_listen_backlog() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sock");
        let socket = tokio::net::UnixSocket::new_stream().unwrap();
        socket.bind(&path).unwrap();
        let listener = socket.listen(1).unwrap();
        let mut queued = Vec::new();
        let full = loop {
            match tokio::net::UnixStream::connect(&path).await {
                Ok(s) if queued.len() < 64 => queued.push(s),
                Ok(_) => panic!("a backlog of 1 queued more than 64 connections"),
                Err(e) => break e,
            }
        };
        assert_eq!(full.kind(), std::io::ErrorKind::WouldBlock, "what Linux answers on a full backlog");

        let server = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mut accepted = Vec::new();
            for _ in 0..=queued.len() {
                accepted.push(listener.accept().await.unwrap());
            }
            accepted.len()
        });
        connect_unix(&path).await.expect("connects once the server accepts");
        assert!(server.await.unwrap() >= 2, "the retried connection was accepted after the queued ones");
    }
}
