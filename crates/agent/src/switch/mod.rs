//! The OpenFlow 1.5 connection to a switch: a thin tokio driver around the sans-IO codec in the
//! `openflow` crate.
//!
//! A reader task and a writer task ([`driver`]) carry the bytes, so callers pipeline freely.
//! The connection owns its liveness: it sends an echo request after a second of silence and
//! declares itself down after three ([`Timeouts`]), every request has a deadline, and a closed
//! socket is noticed by the read at once. Down is an event, not only an error on the next
//! request: [`Switch::down`] resolves with the reason ([`Down`]) the moment it happens, and
//! every request in flight fails with it. Messages nobody asked for (packet-ins, port status)
//! go to [`Switch::next_event`]. Dropping the [`Switch`] closes the connection.

mod driver;
mod liveness;
mod target;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use openflow::wire::message::{ErrorMsg, Features, bundle_ctrl, encode_bundle_add_flow_mod};
use openflow::wire::multipart::{FlowStatsRequest, FlowStats, MultipartReply, MultipartRequest};
use openflow::wire::{DecodeError, FrameError, Message, decode_message, split_frame};
use openflow::{FlowMod, PortNo};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use driver::{Link, read_message, reader_task, writer_task};
pub use driver::Down;
pub use liveness::{Liveness, Step, Timeouts};
pub use target::Target;

/// Why a switch operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    /// Connecting or talking failed.
    #[error("{target}: {source}")]
    Io {
        /// What we were connected to.
        target: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The target string is not `unix:PATH`, `tcp:HOST:PORT` or a bridge name.
    #[error("bad switch target {0:?}: expected unix:PATH, tcp:HOST:PORT or a bridge name")]
    BadTarget(String),
    /// The switch sent bytes that do not decode.
    #[error("undecodable message from the switch: {0}")]
    Decode(#[from] DecodeError),
    /// The stream broke framing.
    #[error("bad framing from the switch: {0}")]
    Frame(FrameError),
    /// The switch does not speak OpenFlow 1.5.
    #[error("version negotiation failed: the switch offers versions bitmap {0:#x}, not OpenFlow 1.5")]
    Version(u32),
    /// The connection is down (see [`Switch::down`]).
    #[error("OpenFlow connection down: {0}")]
    Down(Down),
    /// The switch answered with an error.
    #[error("switch rejected {}: {error}", describe_failed(.failed))]
    Rejected {
        /// The error.
        error: ErrorMsg,
        /// The offending message, decoded from the error's data when possible.
        failed: Option<Box<Message>>,
    },
    /// A flow-mod in a bundle failed; the bundle was not committed.
    #[error("bundle rejected flow #{index} ({flow}): {error}")]
    BundleFlow {
        /// Index of the flow-mod in the bundle.
        index: usize,
        /// The flow-mod as ovs-ofctl text.
        flow: String,
        /// The error.
        error: ErrorMsg,
    },
    /// A message in a bundle failed; the bundle was not committed.
    #[error("bundle rejected {message} (#{index} in the bundle): {error}")]
    BundleMessage {
        /// Index of the message in the bundle.
        index: usize,
        /// The message, described as text.
        message: String,
        /// The error.
        error: ErrorMsg,
    },
    /// The switch sent something other than the expected reply.
    #[error("unexpected reply from the switch: {0}")]
    Unexpected(String),
}

fn describe_failed(m: &Option<Box<Message>>) -> String {
    match m.as_deref() {
        Some(Message::FlowMod(fm)) => format!("flow_mod ({})", openflow::text::format_flow_mod(fm)),
        Some(Message::MeterMod(m)) => {
            // The dump-meters form on one line, which is also the add-meter syntax.
            let mut text = String::new();
            openflow::text::meter::format_meter(&mut text, m);
            let mut lines = text.lines();
            let head = lines.next().unwrap_or_default().to_string();
            format!("meter_mod ({head}{})", lines.collect::<Vec<_>>().join(" "))
        }
        Some(Message::GroupMod(g)) => {
            let mut text = String::new();
            openflow::text::group::format_group(&mut text, g, None);
            format!("group_mod ({text})")
        }
        Some(Message::BundleAdd { message, .. }) => describe_failed(&Some(message.clone())),
        Some(m) => format!("message type {}", openflow::wire::codes::msg_type::name(m.msg_type()).unwrap_or("?")),
        None => "request".to_string(),
    }
}

fn rejected(error: ErrorMsg) -> SwitchError {
    let failed = split_frame(&error.data).ok().and_then(|f| decode_message(&f).ok()).map(Box::new);
    SwitchError::Rejected { error, failed }
}

/// Why a bundle failed: an add the switch rejected (its index and error), or anything else.
enum BundleFailure {
    Add(usize, ErrorMsg),
    Other(SwitchError),
}

impl From<SwitchError> for BundleFailure {
    fn from(e: SwitchError) -> Self {
        BundleFailure::Other(e)
    }
}

/// A connected OpenFlow 1.5 switch.
pub struct Switch {
    target: String,
    tx: mpsc::UnboundedSender<Vec<u8>>,
    link: Arc<Link>,
    timeouts: Timeouts,
    next_xid: AtomicU32,
    next_bundle: AtomicU32,
    features: Features,
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<Message>>,
}

/// OpenFlow 1.5 in a HELLO version bitmap.
const OF15_BITMAP: u32 = 1 << openflow::wire::OFP15_VERSION;

impl Switch {
    /// Connects to `unix:PATH`, `tcp:HOST:PORT`, or a bridge name (its `<br>.mgmt` socket in
    /// `$OVS_RUNDIR`, default /var/run/openvswitch), negotiates OpenFlow 1.5 and reads the
    /// switch features, with the default [`Timeouts`].
    pub async fn connect(target: &str) -> Result<Switch, SwitchError> {
        Switch::connect_with(target, Timeouts::default()).await
    }

    /// [`Switch::connect`] with other deadlines.
    pub async fn connect_with(target: &str, timeouts: Timeouts) -> Result<Switch, SwitchError> {
        let t = Target::parse(target)?;
        let name = t.to_string();
        let io = |source| SwitchError::Io { target: name.clone(), source };
        match &t {
            Target::Unix(path) => {
                let s = tokio::net::UnixStream::connect(path).await.map_err(io)?;
                Switch::handshake_with(name.clone(), s, timeouts).await
            }
            Target::Tcp(addr) => {
                let s = tokio::time::timeout(timeouts.request, tokio::net::TcpStream::connect(addr))
                    .await
                    .map_err(|_| io(std::io::ErrorKind::TimedOut.into()))?
                    .map_err(io)?;
                s.set_nodelay(true).map_err(io)?;
                Switch::handshake_with(name.clone(), s, timeouts).await
            }
        }
    }

    /// Runs the handshake on an established stream and starts the driver tasks.
    pub async fn handshake<S>(target: String, stream: S) -> Result<Switch, SwitchError>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        Switch::handshake_with(target, stream, Timeouts::default()).await
    }

    /// [`Switch::handshake`] with other deadlines. A peer that accepts the connection but
    /// does not say HELLO within [`Timeouts::request`] (a stopped ovs-vswitchd's socket still
    /// accepts) fails it.
    pub async fn handshake_with<S>(target: String, stream: S, timeouts: Timeouts) -> Result<Switch, SwitchError>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut buf = Vec::with_capacity(64 * 1024);
        let hello = async {
            let io = |source| SwitchError::Io { target: target.clone(), source };
            wr.write_all(&Message::Hello { versions: OF15_BITMAP }.to_bytes(0)).await.map_err(io)?;
            loop {
                match read_message(&mut rd, &mut buf).await.map_err(io)? {
                    None => return Err(SwitchError::Down(Down::Closed)),
                    Some((_, Message::Hello { versions })) => return Ok(versions),
                    Some((xid, Message::EchoRequest(d))) => {
                        wr.write_all(&Message::EchoReply(d).to_bytes(xid)).await.map_err(io)?;
                    }
                    Some((_, Message::Error(e))) => return Err(rejected(e)),
                    Some(_) => {}
                }
            }
        };
        let unanswered = || SwitchError::Down(Down::Unanswered { what: "HELLO".into(), after: timeouts.request });
        let peer = tokio::time::timeout(timeouts.request, hello).await.map_err(|_| unanswered())??;
        if peer & OF15_BITMAP == 0 {
            return Err(SwitchError::Version(peer));
        }
        let (tx, rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let link = Arc::new(Link::new());
        tokio::spawn(writer_task(wr, rx, link.clone()));
        tokio::spawn(reader_task(rd, buf, link.clone(), tx.clone(), ev_tx, timeouts));
        let mut sw = Switch {
            target,
            tx,
            link,
            timeouts,
            next_xid: AtomicU32::new(1),
            next_bundle: AtomicU32::new(1),
            features: Features { datapath_id: 0, n_buffers: 0, n_tables: 0, auxiliary_id: 0, capabilities: 0 },
            events: tokio::sync::Mutex::new(ev_rx),
        };
        match sw.request(&Message::FeaturesRequest).await?.pop() {
            Some(Message::FeaturesReply(f)) => sw.features = f,
            other => return Err(SwitchError::Unexpected(format!("{other:?} to FEATURES_REQUEST"))),
        }
        Ok(sw)
    }

    /// The target this switch was reached at.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The switch features read at connect time.
    pub fn features(&self) -> Features {
        self.features
    }

    /// The connection's deadlines.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Resolves when the connection goes down, with why (at once if it already is). The
    /// future does not borrow the switch, so a select loop can hold it beside other work.
    pub fn down(&self) -> impl std::future::Future<Output = Down> + Send + 'static {
        self.link.down()
    }

    /// Why the connection is down, or `None` while it is up.
    pub fn down_reason(&self) -> Option<Down> {
        self.link.down_reason()
    }

    /// A fresh transaction id.
    pub fn next_xid(&self) -> u32 {
        self.next_xid.fetch_add(1, Ordering::Relaxed)
    }

    /// Reserves `n` consecutive xids and returns the first.
    fn reserve_xids(&self, n: u32) -> u32 {
        self.next_xid.fetch_add(n, Ordering::Relaxed)
    }

    /// The error of an operation on a connection that is down.
    fn down_error(&self) -> SwitchError {
        SwitchError::Down(self.down_reason().unwrap_or(Down::Dropped))
    }

    fn write(&self, bytes: Vec<u8>) -> Result<(), SwitchError> {
        if self.down_reason().is_some() {
            return Err(self.down_error());
        }
        self.tx.send(bytes).map_err(|_| self.down_error())
    }

    /// Waits for the reply to request `xid`. Its deadline is `within`, renewed while the parts
    /// of a multipart reply keep arriving; past it the connection is taken down (the request's
    /// effect is unknown, and a reconnect starts from what the switch really holds).
    async fn reply(
        &self,
        xid: u32,
        mut rx: oneshot::Receiver<Result<Vec<Message>, SwitchError>>,
        what: impl FnOnce() -> String,
        within: Duration,
    ) -> Result<Vec<Message>, SwitchError> {
        let mut parts_seen = 0;
        loop {
            match tokio::time::timeout(within, &mut rx).await {
                Ok(reply) => return reply.unwrap_or_else(|_| Err(self.down_error())),
                Err(_) => match self.link.parts_received(xid) {
                    Some(n) if n > parts_seen => parts_seen = n,
                    _ => {
                        self.link.mark_down(Down::Unanswered { what: what(), after: within });
                        return Err(self.down_error());
                    }
                },
            }
        }
    }

    /// Sends a message that has a reply and waits for it (all parts, for multipart), within
    /// [`Timeouts::request`].
    pub async fn request(&self, msg: &Message) -> Result<Vec<Message>, SwitchError> {
        self.request_within(msg, self.timeouts.reply_within(0)).await
    }

    async fn request_within(&self, msg: &Message, within: Duration) -> Result<Vec<Message>, SwitchError> {
        let xid = self.next_xid();
        let rx = self.link.expect(xid)?;
        self.write(msg.to_bytes(xid))?;
        self.reply(xid, rx, || describe_request(msg), within).await
    }

    /// Sends a message whose errors are only logged (they never fail a barrier).
    pub fn send_unchecked(&self, msg: &Message) -> Result<(), SwitchError> {
        self.write(msg.to_bytes(driver::UNCHECKED_XID))
    }

    /// Sends a message without waiting; errors for it surface at the next [`Switch::barrier`].
    pub fn send(&self, msg: &Message) -> Result<u32, SwitchError> {
        let xid = self.next_xid();
        self.write(msg.to_bytes(xid))?;
        Ok(xid)
    }

    /// Waits until the switch has processed everything sent before; fails with the first error
    /// the switch reported for a message sent with [`Switch::send`].
    pub async fn barrier(&self) -> Result<(), SwitchError> {
        self.barrier_after(0).await
    }

    /// A barrier behind `messages` messages just sent (its deadline grows with them).
    async fn barrier_after(&self, messages: usize) -> Result<(), SwitchError> {
        self.request_within(&Message::BarrierRequest, self.timeouts.reply_within(messages)).await?;
        match self.link.take_orphan_errors(|_| true).into_iter().next() {
            Some((_, e)) => Err(rejected(e)),
            None => Ok(()),
        }
    }

    /// Applies flow-mods one by one (pipelined, no bundle), then a barrier.
    pub async fn flow_mods(&self, mods: &[FlowMod]) -> Result<(), SwitchError> {
        let mut out = Vec::with_capacity(mods.len() * 128);
        for fm in mods {
            Message::FlowMod(fm.clone()).encode(self.next_xid(), &mut out);
        }
        self.write(out)?;
        self.barrier_after(mods.len()).await
    }

    /// Applies flow-mods as one atomic, ordered bundle. Open and every add are pipelined, then
    /// one barrier: OVS validates each flow-mod when it is added, and an add that fails leaves
    /// the rest of the bundle committable, so the bundle is committed only when no add failed
    /// and discarded otherwise. Nothing changes on the switch if any flow-mod is rejected.
    pub async fn bundle(&self, mods: &[FlowMod]) -> Result<(), SwitchError> {
        let encode = |bundle_id, flags, i: usize, xid, out: &mut Vec<u8>| encode_bundle_add_flow_mod(bundle_id, flags, &mods[i], xid, out);
        match self.bundle_with(mods.len(), encode).await {
            Err(BundleFailure::Add(index, error)) => {
                Err(SwitchError::BundleFlow { index, flow: openflow::text::format_flow_mod(&mods[index]), error })
            }
            Err(BundleFailure::Other(e)) => Err(e),
            Ok(()) => Ok(()),
        }
    }

    /// Applies messages a bundle may hold (flow-mods, group-mods, port-mods, packet-outs) as
    /// one atomic, ordered bundle, as [`Switch::bundle`] does for flow-mods.
    pub async fn bundle_messages(&self, msgs: &[Message]) -> Result<(), SwitchError> {
        let encode = |bundle_id, flags, i: usize, xid, out: &mut Vec<u8>| {
            Message::BundleAdd { bundle_id, flags, message: Box::new(msgs[i].clone()) }.encode(xid, out)
        };
        match self.bundle_with(msgs.len(), encode).await {
            Err(BundleFailure::Add(index, error)) => {
                let message = describe_failed(&Some(Box::new(msgs[index].clone())));
                Err(SwitchError::BundleMessage { index, message, error })
            }
            Err(BundleFailure::Other(e)) => Err(e),
            Ok(()) => Ok(()),
        }
    }

    /// The bundle protocol for `n` adds written by `encode(bundle_id, flags, index, xid, out)`.
    async fn bundle_with(
        &self,
        n: usize,
        encode: impl Fn(u32, u16, usize, u32, &mut Vec<u8>),
    ) -> Result<(), BundleFailure> {
        let flags = bundle_ctrl::ATOMIC | bundle_ctrl::ORDERED;
        let bundle_id = self.next_bundle.fetch_add(1, Ordering::Relaxed);
        let count = u32::try_from(n).map_err(|_| SwitchError::Unexpected("bundle too large".into()))?;
        let first = self.reserve_xids(count + 1);
        let open_xid = first;
        let open_rx = self.link.expect(open_xid)?;
        // Encode in chunks so the writer starts while the rest is still being encoded.
        const CHUNK: usize = 4096;
        let mut out = Vec::with_capacity(CHUNK.min(n + 1) * 160);
        Message::BundleControl { bundle_id, ctrl_type: bundle_ctrl::OPEN_REQUEST, flags }.encode(open_xid, &mut out);
        for i in 0..n {
            encode(bundle_id, flags, i, first + 1 + i as u32, &mut out);
            if (i + 1) % CHUNK == 0 {
                self.write(std::mem::replace(&mut out, Vec::with_capacity(CHUNK * 160)))?;
            }
        }
        let barrier_xid = self.next_xid();
        let barrier_rx = self.link.expect(barrier_xid)?;
        Message::BarrierRequest.encode(barrier_xid, &mut out);
        self.write(out)?;
        // The open is answered before the adds are read; the barrier and the commit wait
        // behind all of them.
        let within = self.timeouts.reply_within(n);
        self.reply(open_xid, open_rx, || "BUNDLE_OPEN".into(), self.timeouts.reply_within(0)).await?;
        self.reply(barrier_xid, barrier_rx, || format!("the barrier after {n} bundle adds"), within).await?;
        // The first add the switch rejected, by its xid (errors for adds nobody waits on).
        let take_failed = || {
            let bad = self.link.take_orphan_errors(|x| x > open_xid && x <= open_xid + count);
            bad.into_iter().next().map(|(xid, e)| BundleFailure::Add((xid - open_xid - 1) as usize, e))
        };
        let failed = take_failed();
        let ctrl_type = if failed.is_some() { bundle_ctrl::DISCARD_REQUEST } else { bundle_ctrl::COMMIT_REQUEST };
        let done = self.request_within(&Message::BundleControl { bundle_id, ctrl_type, flags }, within).await;
        if let Some(f) = failed {
            return Err(f);
        }
        // Some messages (group-mods) are checked only at commit: OVS then sends the failing
        // message's own error, under its add's xid, before failing the commit.
        done.map(|_| ()).map_err(|e| take_failed().unwrap_or(BundleFailure::Other(e)))
    }

    /// All parts of a multipart reply, in order.
    pub async fn multipart(&self, req: MultipartRequest) -> Result<Vec<MultipartReply>, SwitchError> {
        let replies = self.request(&Message::MultipartRequest { more: false, body: req }).await?;
        replies
            .into_iter()
            .map(|m| match m {
                Message::MultipartReply { body, .. } => Ok(body),
                other => Err(SwitchError::Unexpected(format!("{other:?} in a multipart reply"))),
            })
            .collect()
    }

    /// Every installed flow, in all tables (what the realizer diffs against).
    pub async fn dump_flows(&self) -> Result<Vec<openflow::Flow>, SwitchError> {
        Ok(self.dump_flow_stats(FlowStatsRequest::default()).await?.into_iter().map(|f| f.flow).collect())
    }

    /// The flows selected by `req`, with their counters.
    pub async fn dump_flow_stats(&self, req: FlowStatsRequest) -> Result<Vec<FlowStats>, SwitchError> {
        let mut flows = Vec::new();
        for part in self.multipart(MultipartRequest::FlowDesc(req)).await? {
            match part {
                MultipartReply::FlowDesc(f) => flows.extend(f),
                other => return Err(SwitchError::Unexpected(format!("{other:?} to a flow dump"))),
            }
        }
        Ok(flows)
    }

    /// How many flows `req` selects (the switch counts them: one small reply, whatever the
    /// number of flows).
    pub async fn count_flows(&self, req: FlowStatsRequest) -> Result<u32, SwitchError> {
        match self.multipart(MultipartRequest::Aggregate(req)).await?.as_slice() {
            [MultipartReply::Aggregate { flow_count, .. }] => Ok(*flow_count),
            other => Err(SwitchError::Unexpected(format!("{other:?} to an aggregate stats request"))),
        }
    }

    /// The switch's ports.
    pub async fn port_desc(&self) -> Result<Vec<openflow::wire::message::PortDesc>, SwitchError> {
        let mut ports = Vec::new();
        for part in self.multipart(MultipartRequest::PortDesc(PortNo::ANY)).await? {
            if let MultipartReply::PortDesc(p) = part {
                ports.extend(p);
            }
        }
        Ok(ports)
    }

    /// The next asynchronous message (packet-in, port status, flow removed...), or `None` once
    /// the connection is closed.
    pub async fn next_event(&self) -> Option<Message> {
        self.events.lock().await.recv().await
    }
}

impl Drop for Switch {
    /// Closes the connection: both tasks end and the socket with them.
    fn drop(&mut self) {
        self.link.mark_down(Down::Dropped);
    }
}

/// A request as the deadline error names it.
fn describe_request(msg: &Message) -> String {
    use openflow::wire::codes::{msg_type, multipart_type};
    let name = match msg {
        Message::MultipartRequest { body, .. } => multipart_type::name(body.mp_type()).map(|n| format!("OFPMP_{n} request")),
        m => msg_type::name(m.msg_type()).map(|n| format!("OFPT_{n}")),
    };
    name.unwrap_or_else(|| "a request".to_string())
}

#[cfg(test)]
mod connection_tests;
#[cfg(test)]
mod tests;
