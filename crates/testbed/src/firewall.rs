//! An inline "firewall" for TrafficControl redirects: a namespace holding the far ends of two
//! veths whose node ends (`out`, `ret`, named by the caller, e.g. `fw-out` and `fw-ret`) the
//! agent attaches to `br-int` as a TrafficControl's target and return `device` ports.
//!
//! ```text
//!  br-int ──> fw-out ═══ out ──[forwarder]──> ret ═══ fw-ret ──> br-int
//!             (node netns)    (firewall netns)        (node netns)
//! ```
//!
//! The forwarder is a thread of the calling process (it stops when the [`Firewall`] is dropped):
//! it copies every frame arriving on `out` to `ret` unchanged, except TCP and UDP to the
//! destination ports currently blocked ([`Firewall::block`], changeable while it runs), and counts
//! what it received, forwarded and dropped. A redirect loop shows as counters that keep growing
//! after the traffic stopped ([`Firewall::settled_counters`]).
//!
//! The namespace and veths are recorded in the state file, so `testbed down` removes them.
use crate::capture::{bound_packet_socket, recv_frame};
use crate::command::run;
use crate::error::Error;
use crate::layout::{Layout, MAX_IFNAME_LEN};
use crate::netns::{Netns, enter_on_this_thread};
use crate::packet::{Packet, protocol_number};
use crate::state::{FirewallState, State};
use crate::testbed::Testbed;
use policy::Protocol;
use std::collections::BTreeSet;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The firewall's end of the out-side veth.
pub const OUT_IFACE: &str = "out";
/// The firewall's end of the return-side veth.
pub const RET_IFACE: &str = "ret";
/// How many forwarded or dropped packets [`Firewall::log`] keeps.
const LOG_LIMIT: usize = 10_000;
const ETH_P_ALL: u16 = 0x0003;
const POLL: Duration = Duration::from_millis(50);

/// What the forwarder did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames that arrived on `out`.
    pub received: u64,
    /// Frames sent on to `ret`.
    pub forwarded: u64,
    /// Frames dropped by a block rule.
    pub dropped: u64,
}

/// What happened to one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Sent on to `ret`.
    Forwarded,
    /// Dropped by a block rule.
    Dropped,
}

#[derive(Debug, Default)]
struct Shared {
    blocked: Mutex<BTreeSet<(u8, u16)>>,
    received: AtomicU64,
    forwarded: AtomicU64,
    dropped: AtomicU64,
    log: Mutex<Vec<(Verdict, Packet)>>,
    stop: AtomicBool,
}

/// A running inline firewall.
#[derive(Debug)]
pub struct Firewall {
    state: FirewallState,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<(), Error>>>,
}

fn check_name(name: &str, field: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= MAX_IFNAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "firewall",
            field,
            format!("{name:?} is not an interface name (1-{MAX_IFNAME_LEN} of a-z, 0-9, '-', '_')"),
        ))
    }
}

impl Firewall {
    /// Creates (or repairs) the firewall namespace and the veths `out` and `ret` in `node`'s
    /// namespace, and starts the forwarder with nothing blocked.
    pub fn start(tb: &mut Testbed, node: &str, out: &str, ret: &str) -> Result<Firewall, Error> {
        check_name(out, "out")?;
        check_name(ret, "ret")?;
        if out == ret {
            return Err(Error::invalid("firewall", "ret", "must differ from out"));
        }
        let mut state = State::load(tb.dir())?;
        let layout = Layout::new(&state.prefix)?;
        let n = state.node(node).ok_or_else(|| Error::NoSuchTarget(node.to_string()))?.clone();
        let fw = match state.firewalls.iter().find(|f| f.node == node && f.out == out) {
            Some(f) if f.ret != ret => {
                return Err(Error::invalid(
                    "firewall",
                    "ret",
                    format!("{node}'s firewall on {out} already returns on {}", f.ret),
                ));
            }
            Some(f) => f.clone(),
            None => {
                let f = FirewallState {
                    node: node.to_string(),
                    netns: layout.firewall_netns(n.index, out),
                    out: out.into(),
                    ret: ret.into(),
                };
                if Netns::exists(&f.netns) {
                    return Err(Error::invalid(
                        "firewall",
                        "netns",
                        format!("{} exists but the testbed does not record it", f.netns),
                    ));
                }
                state.firewalls.push(f.clone());
                state.save()?;
                f
            }
        };
        tb.reload()?;
        Netns::add(&fw.netns)?.keep();
        for (node_end, fw_end) in [(&fw.out, OUT_IFACE), (&fw.ret, RET_IFACE)] {
            if run(Command::new("ip").args(["-n", &n.netns, "link", "show", "dev", node_end])).is_err() {
                run(Command::new("ip").args([
                    "link", "add", node_end, "netns", &n.netns, "type", "veth", "peer", "name", fw_end, "netns",
                    &fw.netns,
                ]))?;
            }
            // Frames pass through as they are; nothing here should compute checksums later.
            for (netns, dev) in [(&n.netns, node_end.as_str()), (&fw.netns, fw_end)] {
                run(Command::new("ip").args(["-n", netns, "link", "set", dev, "up"]))?;
                run(Netns::existing(netns).command("ethtool").args(["-K", dev, "tx", "off"]))?;
            }
        }
        let shared = Arc::new(Shared::default());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let (netns, sh) = (fw.netns.clone(), shared.clone());
        let what = format!("firewall forwarder in netns {}", fw.netns);
        let what_thread = what.clone();
        let thread = std::thread::spawn(move || -> Result<(), Error> {
            let opened = enter_on_this_thread(&netns).and_then(|_| {
                let rx = bound_packet_socket(OUT_IFACE, ETH_P_ALL)?;
                rx.set_read_timeout(Some(POLL))?;
                rx.set_recv_buffer_size(4 << 20)?;
                // Protocol 0: a socket that only sends.
                let tx = bound_packet_socket(RET_IFACE, 0)?;
                Ok((rx, tx))
            });
            let (rx, tx) = match opened {
                Ok(s) => {
                    let _ = ready_tx.send(Ok(()));
                    s
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return Err(Error::socket(&what_thread, e));
                }
            };
            forward(&sh, &rx, &tx).map_err(|e| Error::socket(&what_thread, e))
        });
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Firewall { state: fw, shared, thread: Some(thread) }),
            Ok(Err(e)) => Err(Error::socket(what, std::io::Error::other(e))),
            Err(_) => Err(Error::socket(what, std::io::Error::other("the forwarder ended before it was ready"))),
        }
    }

    /// The node end of the out-side veth (the TrafficControl target device).
    pub fn out(&self) -> &str {
        &self.state.out
    }

    /// The node end of the return-side veth (the returnPort device).
    pub fn ret(&self) -> &str {
        &self.state.ret
    }

    /// The firewall's namespace.
    pub fn netns(&self) -> &str {
        &self.state.netns
    }

    /// Drops TCP or UDP (or SCTP) packets to `port` from now on.
    pub fn block(&self, protocol: Protocol, port: u16) {
        self.blocked().insert((protocol_number(protocol), port));
    }

    /// Forwards everything again.
    pub fn allow_all(&self) {
        self.blocked().clear();
    }

    fn blocked(&self) -> std::sync::MutexGuard<'_, BTreeSet<(u8, u16)>> {
        self.shared.blocked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The counters now.
    pub fn counters(&self) -> Counters {
        Counters {
            received: self.shared.received.load(Ordering::Relaxed),
            forwarded: self.shared.forwarded.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
        }
    }

    /// Waits until the counters have not moved for `quiet`, at most `timeout`; returns them,
    /// or `Err` with the last counters if they were still moving (a loop).
    pub fn settled_counters(&self, quiet: Duration, timeout: Duration) -> Result<Counters, Counters> {
        let deadline = Instant::now() + timeout;
        let mut last = self.counters();
        let mut since = Instant::now();
        loop {
            std::thread::sleep(quiet / 5);
            let now = self.counters();
            if now != last {
                last = now;
                since = Instant::now();
            } else if since.elapsed() >= quiet {
                return Ok(now);
            }
            if Instant::now() > deadline {
                return Err(now);
            }
        }
    }

    /// The packets forwarded or dropped so far (the first 10,000), in order.
    pub fn log(&self) -> Vec<(Verdict, Packet)> {
        self.shared.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stops the forwarder; returns its error if it failed.
    pub fn stop(mut self) -> Result<Counters, Error> {
        self.finish()?;
        Ok(self.counters())
    }

    fn finish(&mut self) -> Result<(), Error> {
        self.shared.stop.store(true, Ordering::Relaxed);
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| Error::socket("firewall forwarder", std::io::Error::other("panicked")))?,
            None => Ok(()),
        }
    }
}

impl Drop for Firewall {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// The forwarding loop: `out` to `ret`, minus blocked ports, until told to stop.
fn forward(sh: &Shared, rx: &socket2::Socket, tx: &socket2::Socket) -> std::io::Result<()> {
    let mut buf = vec![0u8; 65536];
    while !sh.stop.load(Ordering::Relaxed) {
        let Some((n, pkttype)) = recv_frame(rx, &mut buf)? else { continue };
        // Frames the firewall's own kernel sends out of `out` are not traffic to forward.
        if pkttype == libc::PACKET_OUTGOING {
            continue;
        }
        sh.received.fetch_add(1, Ordering::Relaxed);
        let frame = &buf[..n];
        let packet = Packet::decode(frame).ok();
        let blocked = packet
            .as_ref()
            .and_then(|p| p.ipv4())
            .and_then(|ip| Some((ip.protocol, ip.dst_port?)))
            .is_some_and(|key| sh.blocked.lock().unwrap_or_else(|p| p.into_inner()).contains(&key));
        let verdict = if blocked {
            sh.dropped.fetch_add(1, Ordering::Relaxed);
            Verdict::Dropped
        } else {
            // SAFETY: send(2) of an owned buffer on a bound packet socket.
            let sent = unsafe { libc::send(tx.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
            if sent < 0 {
                return Err(std::io::Error::last_os_error());
            }
            sh.forwarded.fetch_add(1, Ordering::Relaxed);
            Verdict::Forwarded
        };
        if let Some(p) = packet {
            let mut log = sh.log.lock().unwrap_or_else(|p| p.into_inner());
            if log.len() < LOG_LIMIT {
                log.push((verdict, p));
            }
        }
    }
    Ok(())
}
