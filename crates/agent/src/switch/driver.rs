//! The connection's two tasks and the state they share with [`super::Switch`].
//!
//! The reader decodes frames, answers echo requests, routes replies to the waiting request by
//! xid (multipart parts reassembled), and keeps the [`Liveness`] count: it sends keepalive
//! echoes and declares the connection down when the switch falls silent. The writer drains an
//! unbounded queue of encoded bytes. Whoever sees the connection fail first (reader, writer,
//! a request past its deadline, or the [`super::Switch`] being dropped) records why in the
//! [`Link`]; that fails every waiting request, stops both tasks (closing the socket) and
//! wakes whoever waits on [`Link::down`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use openflow::wire::message::ErrorMsg;
use openflow::wire::{FrameError, Message, decode_message, split_frame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::liveness::{Liveness, Step, Timeouts};
use super::{SwitchError, rejected};

/// Why the connection to the switch is down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Down {
    /// The switch closed the connection (ovs-vswitchd exited, or the bridge was deleted).
    Closed,
    /// Reading or writing failed, or the stream broke OpenFlow framing.
    Failed(String),
    /// Nothing was heard from the switch for this long, an echo request included.
    Silent(Duration),
    /// A request went unanswered past its deadline.
    Unanswered {
        /// The request.
        what: String,
        /// Its deadline.
        after: Duration,
    },
    /// This side closed the connection.
    Dropped,
}

impl fmt::Display for Down {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Down::Closed => f.write_str("the switch closed the connection"),
            Down::Failed(e) => write!(f, "the connection failed: {e}"),
            Down::Silent(d) => write!(f, "the switch sent nothing for {:.1} s, not even an echo reply", d.as_secs_f64()),
            Down::Unanswered { what, after } => write!(f, "no reply to {what} within {:.1} s", after.as_secs_f64()),
            Down::Dropped => f.write_str("closed by weir"),
        }
    }
}

/// A reply being collected for a request.
struct Pending {
    parts: Vec<Message>,
    done: oneshot::Sender<Result<Vec<Message>, SwitchError>>,
}

#[derive(Default)]
struct Requests {
    pending: HashMap<u32, Pending>,
    /// Errors for xids nobody waits on (bundle adds, fire-and-forget sends).
    orphan_errors: HashMap<u32, ErrorMsg>,
}

/// The state the tasks and the [`super::Switch`] share.
pub(crate) struct Link {
    requests: Mutex<Requests>,
    /// `Some(why)` once the connection is down; set once, under the `requests` lock, so a
    /// request is either failed by [`Link::mark_down`] or refused by [`Link::expect`].
    down: watch::Sender<Option<Down>>,
}

/// The xid of keepalive echoes: outside the request counter, so keepalives never shift the
/// xids requests get (`weir ofctl` prints them as ovs-ofctl does).
const KEEPALIVE_XID: u32 = u32::MAX;

/// The xid of messages sent without waiting whose errors matter to nobody but the log
/// (answers to rejected packets): they must not fail the next barrier of a realization.
pub(crate) const UNCHECKED_XID: u32 = u32::MAX - 1;

impl Link {
    pub(crate) fn new() -> Link {
        Link { requests: Mutex::new(Requests::default()), down: watch::channel(None).0 }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Requests> {
        self.requests.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records why the connection is down (the first reason wins) and fails every request
    /// waiting for a reply. Returns whether this call was the first.
    pub(crate) fn mark_down(&self, why: Down) -> bool {
        let mut r = self.lock();
        if self.down.borrow().is_some() {
            return false;
        }
        self.down.send_replace(Some(why.clone()));
        for (_, p) in r.pending.drain() {
            let _ = p.done.send(Err(SwitchError::Down(why.clone())));
        }
        true
    }

    /// Why the connection is down, if it is.
    pub(crate) fn down_reason(&self) -> Option<Down> {
        self.down.borrow().clone()
    }

    /// Resolves when the connection is down, with why; owns what it needs, so it can outlive
    /// the borrow of the switch.
    pub(crate) fn down(&self) -> impl std::future::Future<Output = Down> + Send + 'static {
        let mut rx = self.down.subscribe();
        async move {
            match rx.wait_for(Option::is_some).await {
                Ok(why) => why.clone().unwrap_or(Down::Dropped),
                // The sender lives in the link, which the tasks hold until they end.
                Err(_) => Down::Dropped,
            }
        }
    }

    /// Registers a request waiting for the reply with `xid`.
    pub(crate) fn expect(&self, xid: u32) -> Result<oneshot::Receiver<Result<Vec<Message>, SwitchError>>, SwitchError> {
        let (done, rx) = oneshot::channel();
        let mut r = self.lock();
        if let Some(why) = self.down_reason() {
            return Err(SwitchError::Down(why));
        }
        r.pending.insert(xid, Pending { parts: Vec::new(), done });
        Ok(rx)
    }

    /// Takes the orphan errors whose xids `pick` selects, lowest xid first.
    pub(crate) fn take_orphan_errors(&self, pick: impl Fn(u32) -> bool) -> Vec<(u32, ErrorMsg)> {
        let mut r = self.lock();
        let mut xids: Vec<u32> = r.orphan_errors.keys().copied().filter(|x| pick(*x)).collect();
        xids.sort_unstable();
        xids.into_iter().filter_map(|x| r.orphan_errors.remove(&x).map(|e| (x, e))).collect()
    }

    /// How many parts of a multipart reply to request `xid` have arrived (`None` once it is
    /// no longer waiting).
    pub(crate) fn parts_received(&self, xid: u32) -> Option<usize> {
        self.lock().pending.get(&xid).map(|p| p.parts.len())
    }

    fn fail(&self, xid: u32, err: SwitchError) {
        if let Some(p) = self.lock().pending.remove(&xid) {
            let _ = p.done.send(Err(err));
        }
    }

    /// Routes one message from the switch.
    fn dispatch(&self, xid: u32, msg: Message, tx: &mpsc::UnboundedSender<Vec<u8>>, events: &mpsc::UnboundedSender<Message>) {
        match msg {
            Message::EchoRequest(d) => {
                let _ = tx.send(Message::EchoReply(d).to_bytes(xid));
            }
            Message::PacketIn(_) | Message::PacketIn2(_) | Message::PortStatus { .. } => {
                let _ = events.send(msg);
            }
            Message::Error(e) if xid == UNCHECKED_XID => {
                tracing::debug!(error = %rejected(e), "the switch refused a message sent unchecked");
            }
            Message::Error(e) => {
                let mut r = self.lock();
                match r.pending.remove(&xid) {
                    Some(p) => {
                        let _ = p.done.send(Err(rejected(e)));
                    }
                    None => {
                        r.orphan_errors.insert(xid, e);
                    }
                }
            }
            msg => {
                let mut r = self.lock();
                let more = matches!(msg, Message::MultipartReply { more: true, .. });
                match r.pending.get_mut(&xid) {
                    Some(p) => {
                        p.parts.push(msg);
                        if !more {
                            let p = r.pending.remove(&xid).expect("present");
                            let _ = p.done.send(Ok(p.parts));
                        }
                    }
                    // A keepalive's reply has done its job by arriving.
                    None if matches!(msg, Message::EchoReply(_)) => {}
                    None => {
                        drop(r);
                        let _ = events.send(msg);
                    }
                }
            }
        }
    }
}

/// Sends what is queued until the queue closes or the connection is down.
pub(crate) async fn writer_task<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    link: std::sync::Arc<Link>,
) {
    let mut down = link.down.subscribe();
    loop {
        let bytes = tokio::select! {
            b = rx.recv() => match b {
                Some(b) => b,
                None => return,
            },
            _ = down.wait_for(Option::is_some) => return,
        };
        // A switch that stopped reading fills the socket buffer; the reader's silence count
        // then ends this write too.
        tokio::select! {
            r = wr.write_all(&bytes) => if let Err(e) = r {
                link.mark_down(Down::Failed(format!("write: {e}")));
                return;
            },
            _ = down.wait_for(Option::is_some) => return,
        }
    }
}

/// Reads and dispatches messages, keeping the liveness count, until the connection is down.
pub(crate) async fn reader_task<R: AsyncRead + Unpin>(
    mut rd: R,
    mut buf: Vec<u8>,
    link: std::sync::Arc<Link>,
    tx: mpsc::UnboundedSender<Vec<u8>>,
    events: mpsc::UnboundedSender<Message>,
    timeouts: Timeouts,
) {
    let mut down = link.down.subscribe();
    let mut liveness = Liveness::new(timeouts, Instant::now());
    let mut chunk = vec![0u8; 256 * 1024];
    let why = 'conn: loop {
        // Decode every whole frame in the buffer before reading more.
        let mut start = 0usize;
        loop {
            match split_frame(&buf[start..]) {
                Ok(frame) => {
                    let len = frame.bytes.len();
                    match decode_message(&frame) {
                        Ok(msg) => link.dispatch(frame.xid, msg, &tx, &events),
                        Err(e) => {
                            tracing::warn!(error = %e, "undecodable OpenFlow message");
                            link.fail(frame.xid, SwitchError::Decode(e));
                        }
                    }
                    start += len;
                }
                Err(FrameError::Incomplete { .. }) => break,
                Err(e) => break 'conn Down::Failed(format!("bad OpenFlow framing: {e}")),
            }
        }
        buf.drain(..start);
        let wake = match liveness.step(Instant::now()) {
            Step::WaitUntil(t) => t,
            Step::SendEcho => {
                let _ = tx.send(Message::EchoRequest(Vec::new()).to_bytes(KEEPALIVE_XID));
                continue;
            }
            Step::Dead(silent) => break Down::Silent(silent),
        };
        tokio::select! {
            r = rd.read(&mut chunk) => match r {
                Ok(0) => break Down::Closed,
                Ok(n) => {
                    liveness.heard(Instant::now());
                    buf.extend_from_slice(&chunk[..n]);
                }
                Err(e) => break Down::Failed(format!("read: {e}")),
            },
            _ = tokio::time::sleep_until(wake) => {}
            _ = down.wait_for(Option::is_some) => return,
        }
    };
    if link.mark_down(why.clone()) {
        tracing::warn!(reason = %why, "OpenFlow connection down");
    }
}

/// Reads one message, filling `buf` as needed; `None` at a clean end of stream.
pub(crate) async fn read_message<R: AsyncRead + Unpin>(rd: &mut R, buf: &mut Vec<u8>) -> std::io::Result<Option<(u32, Message)>> {
    loop {
        match split_frame(buf) {
            Ok(frame) => {
                let len = frame.bytes.len();
                let msg = decode_message(&frame).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e));
                let xid = frame.xid;
                buf.drain(..len);
                return msg.map(|m| Some((xid, m)));
            }
            Err(FrameError::Incomplete { .. }) => {}
            Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = rd.read(&mut chunk).await?;
        if n == 0 {
            return if buf.is_empty() { Ok(None) } else { Err(std::io::ErrorKind::UnexpectedEof.into()) };
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
