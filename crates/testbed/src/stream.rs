//! A long-running TCP transfer between two pods, for tests that must show an established
//! connection survives something (e.g. an agent restart): the client, on its own thread in
//! the source pod's namespace, writes numbered chunks to the destination's echo server and
//! checks each comes back intact, recording the longest pause between round trips.
use crate::error::Error;
use crate::netns::enter_on_this_thread;
use crate::testbed::Testbed;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddrV4, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Bytes per round trip.
const CHUNK: usize = 16 * 1024;

/// What a stream did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamReport {
    /// Bytes sent and echoed back intact.
    pub bytes: u64,
    /// Round trips completed.
    pub round_trips: u64,
    /// The longest time between two completed round trips.
    pub max_stall: Duration,
    /// Why the stream ended early (reset, corrupt echo, ...), if it did.
    pub error: Option<String>,
}

/// A running transfer; [`Stream::stop`] ends it and returns its report.
#[derive(Debug)]
pub struct Stream {
    stop: Arc<AtomicBool>,
    report: Arc<Mutex<StreamReport>>,
    thread: Option<JoinHandle<()>>,
}

impl Stream {
    /// Connects from pod `from` to pod `to` on TCP `port` (a port its probe server serves)
    /// and starts the transfer. Fails if the connection cannot be made within `connect_timeout`.
    pub fn start(tb: &Testbed, from: &str, to: &str, port: u16, connect_timeout: Duration) -> Result<Stream, Error> {
        let netns = tb.pod(from)?.netns.clone();
        let addr = SocketAddrV4::new(tb.pod(to)?.ip, port);
        let what = format!("TCP stream {from} -> {to}:{port}");
        let (tx, rx) = std::sync::mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let report = Arc::new(Mutex::new(StreamReport::default()));
        let (stop2, report2) = (stop.clone(), report.clone());
        let thread = std::thread::spawn(move || {
            let conn = enter_on_this_thread(&netns).and_then(|_| TcpStream::connect_timeout(&addr.into(), connect_timeout));
            match conn {
                Ok(s) => {
                    let _ = tx.send(Ok(()));
                    run(s, &stop2, &report2);
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
        match rx.recv() {
            Ok(Ok(())) => Ok(Stream { stop, report, thread: Some(thread) }),
            Ok(Err(e)) => Err(Error::socket(what, e)),
            Err(_) => Err(Error::socket(what, std::io::Error::other("stream thread ended"))),
        }
    }

    /// The report so far.
    pub fn report(&self) -> StreamReport {
        self.report.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Ends the transfer and returns the report.
    pub fn stop(mut self) -> StreamReport {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.report()
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn run(mut s: TcpStream, stop: &AtomicBool, report: &Mutex<StreamReport>) {
    let poll = Some(Duration::from_millis(100));
    let _ = s.set_read_timeout(poll);
    let _ = s.set_write_timeout(poll);
    let mut last = Instant::now();
    let mut sent = vec![0u8; CHUNK];
    let mut got = vec![0u8; CHUNK];
    let fail = |msg: String| report.lock().unwrap_or_else(|p| p.into_inner()).error = Some(msg);
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        // Each chunk carries its number, so a chunk lost or echoed twice shows.
        for (i, b) in sent.iter_mut().enumerate() {
            *b = (n as usize).wrapping_add(i) as u8;
        }
        sent[..8].copy_from_slice(&n.to_be_bytes());
        match io_fully(stop, |off| s.write(&sent[off..]), CHUNK) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => return fail(format!("write of chunk {n}: {e}")),
        }
        match io_fully(stop, |off| s.read(&mut got[off..]), CHUNK) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => return fail(format!("read of chunk {n}: {e}")),
        }
        if got != sent {
            return fail(format!("chunk {n} came back corrupted"));
        }
        let now = Instant::now();
        let mut r = report.lock().unwrap_or_else(|p| p.into_inner());
        r.bytes += CHUNK as u64;
        r.round_trips += 1;
        r.max_stall = r.max_stall.max(now - last);
        last = now;
        n += 1;
    }
}

/// Repeats a read or write until `len` bytes moved (`Ok(true)`), riding out timeouts (a stall
/// is measured, not an error) until `stop` is set (`Ok(false)`); EOF or another error ends it.
fn io_fully(stop: &AtomicBool, mut op: impl FnMut(usize) -> std::io::Result<usize>, len: usize) -> std::io::Result<bool> {
    let mut off = 0;
    while off < len {
        match op(off) {
            Ok(0) => return Err(std::io::Error::new(ErrorKind::UnexpectedEof, "connection closed")),
            Ok(k) => off += k,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                if stop.load(Ordering::Relaxed) {
                    return Ok(false);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
