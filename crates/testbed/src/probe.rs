//! The probe engine: real traffic from pods to pods, many probes at once.
//!
//! Each probe runs on a worker thread that has entered the source pod's network namespace
//! (`setns` affects only that thread), so one process reaches every pod:
//! - **TCP**: a connect with a deadline; allowed when the handshake completes;
//! - **UDP**: a random nonce sent to the destination's echo server (again every 250 ms until
//!   the deadline); allowed when the same nonce comes back from that address;
//! - **SCTP**: an INIT with a random initiate tag sent on a raw socket; allowed when an INIT
//!   ACK carrying that tag as verification tag comes back from the destination.
//!
//! A refused connection (RST, ICMP unreachable) counts as not allowed, as in the upstream
//! suites.
use crate::error::Error;
use crate::netns::enter_on_this_thread;
use crate::random;
use crate::sctp::{self, Handshake};
use crate::serve::raw_sctp_socket;
use crate::testbed::Testbed;
use policy::Protocol;
use serde::{Deserialize, Serialize};
use socket2::{Domain, SockAddr, Socket, Type};
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One probe to run: from a pod to a pod (`namespace/name`) or a node's host (`node:NAME`),
/// on a port and protocol.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProbeSpec {
    /// Client pod.
    pub from: String,
    /// Server pod.
    pub to: String,
    /// Destination port.
    pub port: u16,
    /// Protocol.
    pub protocol: Protocol,
}

/// A probe's outcome. Serialized as `{"from":"x/a","to":"y/b","port":80,"protocol":"TCP","allowed":true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// Client pod.
    pub from: String,
    /// Server pod.
    pub to: String,
    /// Destination port.
    pub port: u16,
    /// Protocol.
    pub protocol: Protocol,
    /// Whether the connection (or request/reply) succeeded.
    pub allowed: bool,
}

/// The JSON document of `weir testbed probe -o json`: `{"probes":[...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// Every probe's outcome.
    pub probes: Vec<ProbeResult>,
}

/// How probes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeOptions {
    /// How long one probe waits for its answer.
    pub timeout: Duration,
    /// Most probes in flight at once.
    pub parallelism: usize,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions { timeout: Duration::from_secs(1), parallelism: 128 }
    }
}

/// Every pod to every pod (itself included), for each port and protocol, in table order
/// (protocol, port, from, to).
pub fn matrix(tb: &Testbed, ports: &[u16], protocols: &[Protocol]) -> Vec<ProbeSpec> {
    let mut specs = Vec::new();
    for &protocol in protocols {
        for &port in ports {
            for from in tb.pods() {
                for to in tb.pods() {
                    specs.push(ProbeSpec { from: from.key(), to: to.key(), port, protocol });
                }
            }
        }
    }
    specs
}

/// Runs `specs` with default options (1 s timeout, 128 in flight).
pub fn probe_all(tb: &Testbed, specs: &[ProbeSpec]) -> Result<Vec<ProbeResult>, Error> {
    probe_all_with(tb, specs, ProbeOptions::default())
}

/// Runs `specs` in parallel and returns one result per spec, in the same order. Fails if a
/// pod is unknown or a socket cannot be created; a probe that gets no answer is a result
/// (`allowed: false`), not an error.
pub fn probe_all_with(tb: &Testbed, specs: &[ProbeSpec], opts: ProbeOptions) -> Result<Vec<ProbeResult>, Error> {
    struct Job {
        netns: String,
        src_ip: Ipv4Addr,
        dst: Ipv4Addr,
        spec: ProbeSpec,
    }
    let mut jobs = Vec::with_capacity(specs.len());
    for spec in specs {
        let (netns, src_ip) = tb.probe_endpoint(&spec.from)?;
        let (_, dst) = tb.probe_endpoint(&spec.to)?;
        jobs.push(Job { netns: netns.to_string(), src_ip, dst, spec: spec.clone() });
    }
    // Probes of one source are adjacent, so a worker rarely has to switch namespaces.
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by(|&a, &b| jobs[a].netns.cmp(&jobs[b].netns));

    let results: Vec<Mutex<Option<Result<bool, Error>>>> = jobs.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let workers = opts.parallelism.clamp(1, jobs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn_scoped(scope, || {
                    let mut current: Option<&str> = None;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&j) = order.get(i) else { return };
                        let job = &jobs[j];
                        let outcome = (|| {
                            if current != Some(job.netns.as_str()) {
                                enter_on_this_thread(&job.netns)
                                    .map_err(|e| Error::socket(format!("enter netns {}", job.netns), e))?;
                                current = Some(job.netns.as_str());
                            }
                            probe_one(job.src_ip, job.dst, job.spec.port, job.spec.protocol, opts.timeout)
                                .map_err(|e| Error::socket(format!("probe {} -> {}", job.spec.from, job.spec.to), e))
                        })();
                        *results[j].lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
                    }
                })
                .expect("spawn probe worker");
        }
    });
    jobs.into_iter()
        .zip(results)
        .map(|(job, r)| {
            let allowed = r.into_inner().unwrap_or_else(|p| p.into_inner()).expect("every job ran")?;
            let ProbeSpec { from, to, port, protocol } = job.spec;
            Ok(ProbeResult { from, to, port, protocol, allowed })
        })
        .collect()
}

/// One probe from the calling thread's namespace. `Err` only when the probe could not be
/// attempted (no socket); an unanswered probe is `Ok(false)`.
pub fn probe_one(src: Ipv4Addr, dst: Ipv4Addr, port: u16, protocol: Protocol, timeout: Duration) -> std::io::Result<bool> {
    let addr = SocketAddrV4::new(dst, port);
    match protocol {
        Protocol::Tcp => {
            let s = Socket::new(Domain::IPV4, Type::STREAM, Some(socket2::Protocol::TCP))?;
            Ok(s.connect_timeout(&addr.into(), timeout).is_ok())
        }
        Protocol::Udp => udp(addr, timeout),
        Protocol::Sctp => sctp(src, addr, timeout),
    }
}

/// How often UDP and SCTP probes resend within their timeout (a lost first packet, e.g.
/// while ARP resolves, must not read as "blocked").
const RESEND: Duration = Duration::from_millis(250);

fn udp(addr: SocketAddrV4, timeout: Duration) -> std::io::Result<bool> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(socket2::Protocol::UDP))?;
    let nonce = random::bytes::<16>();
    if s.connect(&addr.into()).is_err() {
        return Ok(false);
    }
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 64];
    while let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
        if s.send(&nonce).is_err() {
            return Ok(false);
        }
        let resend_at = Instant::now() + RESEND.min(left);
        while let Some(wait) = resend_at.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
            s.set_read_timeout(Some(wait))?;
            match (&s).read(&mut buf) {
                Ok(n) if buf[..n] == nonce => return Ok(true),
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => break,
                // ICMP port/host unreachable: refused, which counts as not allowed.
                Err(_) => return Ok(false),
            }
        }
    }
    Ok(false)
}

fn sctp(src: Ipv4Addr, addr: SocketAddrV4, timeout: Duration) -> std::io::Result<bool> {
    let s = raw_sctp_socket()?;
    let init = Handshake::init(random::ephemeral_port(), addr.port(), random::nonzero_u32());
    let packet = init.emit();
    // The kernel picks the source address; bind so it is the pod's own.
    s.bind(&SockAddr::from(SocketAddrV4::new(src, 0)))?;
    let dst = SockAddr::from(SocketAddrV4::new(*addr.ip(), 0));
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 2048];
    while let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
        if s.send_to(&packet, &dst).is_err() {
            return Ok(false);
        }
        let resend_at = Instant::now() + RESEND.min(left);
        while let Some(wait) = resend_at.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
            s.set_read_timeout(Some(wait))?;
            let n = match (&s).read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => break,
                Err(_) => return Ok(false),
            };
            let Some((from, _, payload)) = sctp::ipv4_payload(&buf[..n], sctp::IPPROTO_SCTP as u8) else { continue };
            if from != *addr.ip() {
                continue;
            }
            if let Ok(reply) = Handshake::parse(payload)
                && init.is_answered_by(&reply)
            {
                return Ok(true);
            }
        }
    }
    Ok(false)
}
