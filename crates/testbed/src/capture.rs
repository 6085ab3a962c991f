//! Capturing frames on an interface inside a namespace (a node's mirror port, a collector's
//! `eth0`, a firewall's veth) with an AF_PACKET socket: no tcpdump, no libpcap.
//!
//! [`Capture::start`] returns once the socket is bound, so every frame sent after it returns is
//! seen; [`Capture::stop`] returns the frames with their direction. The socket lives on a
//! dedicated thread that entered the namespace (see [`crate::netns::enter_on_this_thread`]).
use crate::error::Error;
use crate::netns::{Netns, enter_on_this_thread};
use crate::packet::{DecodeError, Packet};
use socket2::{Domain, Socket, Type};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const ETH_P_ALL: u16 = 0x0003;
/// How often the capture thread looks at its stop flag.
const POLL: Duration = Duration::from_millis(50);
/// Receive buffer, so bursts of probes are not lost while the thread copies.
const RCVBUF: usize = 4 << 20;
/// Largest frame kept (the testbed's MTUs are 1500 at most; offloads are off).
const SNAPLEN: usize = 65536;

/// Which way a frame crossed the interface, from the interface's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The interface received it (for an OVS internal port: OVS sent it to the port).
    Received,
    /// The namespace's kernel (or a program in it) sent it out of the interface.
    Sent,
}

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Which way it went.
    pub direction: Direction,
    /// Time since the capture started.
    pub at: Duration,
    /// The whole Ethernet frame.
    pub bytes: Vec<u8>,
}

impl Frame {
    /// The frame, decoded.
    pub fn packet(&self) -> Result<Packet, DecodeError> {
        Packet::decode(&self.bytes)
    }
}

/// A capture running on its own thread.
#[derive(Debug)]
pub struct Capture {
    what: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<Vec<Frame>, Error>>>,
}

/// An AF_PACKET socket of `protocol` bound to `iface` in the calling thread's namespace.
/// Created with protocol 0 and bound with the real one, so no frame of another interface
/// slips in between `socket` and `bind`.
pub(crate) fn bound_packet_socket(iface: &str, protocol: u16) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::PACKET, Type::RAW, Some(socket2::Protocol::from(0)))?;
    let index = nix::net::if_::if_nametoindex(iface)
        .map_err(|e| std::io::Error::new(std::io::Error::from(e).kind(), format!("interface {iface}: {e}")))?;
    // SAFETY: a zeroed sockaddr_ll is valid; the fields set below are plain integers.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol.to_be();
    sll.sll_ifindex = index as i32;
    // SAFETY: `sll` is a valid sockaddr_ll of the size passed.
    let rc = unsafe {
        libc::bind(
            s.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(s)
}

/// Receives one frame into `buf`: its length and packet type (`PACKET_HOST`, `PACKET_OUTGOING`,
/// ...). `Ok(None)` when the read timed out.
pub(crate) fn recv_frame(sock: &Socket, buf: &mut [u8]) -> std::io::Result<Option<(usize, u8)>> {
    // SAFETY: a zeroed sockaddr_ll is a valid out-parameter.
    let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: recvfrom(2) into an owned buffer of the length passed, with a sockaddr_ll out-parameter.
    let n = unsafe {
        libc::recvfrom(
            sock.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_TRUNC,
            (&mut from as *mut libc::sockaddr_ll).cast(),
            &mut len,
        )
    };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        return match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted => Ok(None),
            _ => Err(e),
        };
    }
    // MSG_TRUNC reports the real length; keep what fits.
    Ok(Some(((n as usize).min(buf.len()), from.sll_pkttype)))
}

impl Capture {
    /// Starts capturing on `iface` in namespace `netns`, bringing the interface up first if it
    /// is down (a mirror port the agent created may still be down; an interface that is down
    /// receives nothing).
    pub fn start(netns: &str, iface: &str) -> Result<Capture, Error> {
        let what = format!("capture on {iface} in netns {netns}");
        crate::command::run(Netns::existing(netns).command("ip").args(["link", "set", iface, "up"]))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
        let (netns_owned, iface_owned, stop_flag, what_owned) =
            (netns.to_string(), iface.to_string(), stop.clone(), what.clone());
        let thread = std::thread::spawn(move || -> Result<Vec<Frame>, Error> {
            let opened = enter_on_this_thread(&netns_owned).and_then(|_| {
                let s = bound_packet_socket(&iface_owned, ETH_P_ALL)?;
                s.set_recv_buffer_size(RCVBUF)?;
                s.set_read_timeout(Some(POLL))?;
                Ok(s)
            });
            let sock = match opened {
                Ok(s) => {
                    let _ = ready_tx.send(Ok(()));
                    s
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(std::io::Error::new(e.kind(), e.to_string())));
                    return Err(Error::socket(&what_owned, e));
                }
            };
            let start = Instant::now();
            let mut frames = Vec::new();
            let mut buf = vec![0u8; SNAPLEN];
            // Drain what is queued after the stop request too: frames sent just before it count.
            loop {
                let stopping = stop_flag.load(Ordering::Relaxed);
                match recv_frame(&sock, &mut buf).map_err(|e| Error::socket(&what_owned, e))? {
                    Some((n, pkttype)) => frames.push(Frame {
                        direction: if pkttype == libc::PACKET_OUTGOING { Direction::Sent } else { Direction::Received },
                        at: start.elapsed(),
                        bytes: buf[..n].to_vec(),
                    }),
                    None if stopping => break,
                    None => {}
                }
            }
            Ok(frames)
        });
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Capture { what, stop, thread: Some(thread) }),
            Ok(Err(e)) => Err(Error::socket(what, e)),
            Err(_) => Err(Error::socket(what, std::io::Error::other("the capture thread ended before binding"))),
        }
    }

    /// Stops the capture and returns every frame seen, in order.
    pub fn stop(mut self) -> Result<Vec<Frame>, Error> {
        self.finish()
    }

    /// Waits `settle` (for packets still in flight), then stops.
    pub fn stop_after(self, settle: Duration) -> Result<Vec<Frame>, Error> {
        std::thread::sleep(settle);
        self.stop()
    }

    fn finish(&mut self) -> Result<Vec<Frame>, Error> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take() {
            Some(t) => {
                t.join().map_err(|_| Error::socket(&self.what, std::io::Error::other("capture thread panicked")))?
            }
            None => Ok(Vec::new()),
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// Sends raw Ethernet frames out of `iface` in namespace `netns` (e.g. a pod's `eth0`), from a
/// thread that entered the namespace. The frames go out as they are: any addresses.
pub fn inject(netns: &str, iface: &str, frames: &[Vec<u8>]) -> Result<(), Error> {
    let what = format!("send {} frame(s) on {iface} in netns {netns}", frames.len());
    let (netns, iface, frames) = (netns.to_string(), iface.to_string(), frames.to_vec());
    let sent = std::thread::spawn(move || -> std::io::Result<()> {
        enter_on_this_thread(&netns)?;
        // Protocol 0: this socket only sends.
        let sock = bound_packet_socket(&iface, 0)?;
        for frame in &frames {
            // SAFETY: send(2) of an owned buffer on a bound packet socket.
            if unsafe { libc::send(sock.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    })
    .join()
    .map_err(|_| Error::socket(&what, std::io::Error::other("sender thread panicked")))?;
    sent.map_err(|e| Error::socket(what, e))
}

/// The frames a capture received (not those the namespace sent), decoded; frames that do not
/// decode are returned as errors with their bytes, so a test can show them.
pub fn received_packets(frames: &[Frame]) -> (Vec<Packet>, Vec<(DecodeError, Vec<u8>)>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for f in frames.iter().filter(|f| f.direction == Direction::Received) {
        match f.packet() {
            Ok(p) => ok.push(p),
            Err(e) => bad.push((e, f.bytes.clone())),
        }
    }
    (ok, bad)
}
