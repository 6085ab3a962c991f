//! The audit log: one JSON line per connection a rule with audit logging decided (Antrea's
//! `enableLogging`), written by the agent from the packet-ins such rules send
//! ([`pipeline::audit`]).
//!
//! The packet-in's cookie names the rule (its conj_id, [`pipeline::cookie`]), looked up in the
//! installed rules of the last realization; its registers say it is to be logged; its packet
//! gives the connection. A line holds the time, node, tier, policy, rule, action, direction,
//! protocol, source and destination address and port, and the pods behind the addresses:
//!
//! ```json
//! {"time":"2026-12-06T01:02:03.456Z","node":"n1","tier":"admin","table":"IngressAdmin","kind":"ClusterNetworkPolicy.crd.antrea.io","policy":"log-x-a","rule":"allow-80","action":"Allow","direction":"Ingress","label":"web","protocol":"TCP","src_ip":"10.0.2.11","src_port":41000,"dst_ip":"10.0.1.10","dst_port":80,"src_pod":"y/b","dst_pod":"x/a","conj_id":12345}
//! ```
//!
//! Bounds, from the switch inward: the switch sends only packets of connections not yet
//! established, through a meter ([`pipeline::audit::AUDIT_METER`]); the agent writes a
//! connection once per [`DEDUP_WINDOW`] (retransmitted SYNs, a denied client's retries on one
//! 5-tuple), at most `lines_per_second` lines a second (a token bucket with one second's
//! burst); every packet-in that does not become a line is counted by why ([`Counts`]). The
//! file rotates by size ([`file`]).

pub mod file;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use file::{LogFile, Rotation};
use openflow::wire::message::PacketIn;
use pipeline::rule_flows::{ConjRules, cookie_conj, tier_name};
use policy::{Cluster, PodKey};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a logged connection is not logged again.
pub const DEDUP_WINDOW: Duration = Duration::from_secs(5);
/// The most connections remembered for [`DEDUP_WINDOW`]; past it, lines are not deduplicated.
const DEDUP_CAP: usize = 10_000;
/// The default bound on lines a second.
pub const DEFAULT_LINES_PER_SECOND: u32 = 100;

/// How the audit log is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// The file and its rotation.
    pub rotation: Rotation,
    /// The most lines written a second (the excess is counted, not written).
    pub lines_per_second: u32,
}

/// What became of the packet-ins marked for logging.
#[derive(Debug, Default)]
pub struct Counts {
    /// Lines written.
    pub written: AtomicU64,
    /// Packets of a connection logged within [`DEDUP_WINDOW`]: not a new line.
    pub duplicates: AtomicU64,
    /// Lines not written: over the rate limit.
    pub rate_limited: AtomicU64,
    /// Lines not written: the cookie names no installed rule (a rule removed meanwhile).
    pub unknown_rule: AtomicU64,
    /// Lines not written: the packet is not IPv4 or does not parse.
    pub unparsable: AtomicU64,
    /// Lines not written: the file could not be written.
    pub write_errors: AtomicU64,
}

impl Counts {
    /// The dropped lines by reason, as the metrics label them.
    pub fn dropped(&self) -> [(&'static str, u64); 4] {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("rate_limit", n(&self.rate_limited)),
            ("unknown_rule", n(&self.unknown_rule)),
            ("unparsable", n(&self.unparsable)),
            ("write_error", n(&self.write_errors)),
        ]
    }
}

/// The connection a packet opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Connection {
    /// IP protocol number.
    pub protocol: u8,
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Source port (TCP, UDP, SCTP).
    pub src_port: Option<u16>,
    /// Destination port.
    pub dst_port: Option<u16>,
}

impl Connection {
    /// The connection of an Ethernet frame, if it is IPv4.
    pub fn of_frame(frame: &[u8]) -> Option<Connection> {
        let packet = SlicedPacket::from_ethernet(frame).ok()?;
        let Some(NetSlice::Ipv4(ip)) = &packet.net else { return None };
        let header = ip.header();
        let protocol = header.protocol().0;
        let ports = match &packet.transport {
            Some(TransportSlice::Tcp(t)) => Some((t.source_port(), t.destination_port())),
            Some(TransportSlice::Udp(u)) => Some((u.source_port(), u.destination_port())),
            // etherparse does not parse SCTP: its ports are its first four bytes.
            _ if protocol == SCTP => {
                ip.payload().payload.get(..4).map(|p| (u16::from_be_bytes([p[0], p[1]]), u16::from_be_bytes([p[2], p[3]])))
            }
            _ => None,
        };
        Some(Connection {
            protocol,
            src: header.source_addr(),
            dst: header.destination_addr(),
            src_port: ports.map(|p| p.0),
            dst_port: ports.map(|p| p.1),
        })
    }
}

const SCTP: u8 = 132;

fn protocol_name(protocol: u8) -> String {
    match protocol {
        1 => "ICMP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        SCTP => "SCTP".into(),
        n => n.to_string(),
    }
}

/// One line of the log.
#[derive(Debug, Serialize)]
struct Line<'a> {
    time: String,
    node: &'a str,
    tier: &'static str,
    table: &'static str,
    kind: String,
    policy: String,
    rule: &'a str,
    action: String,
    direction: String,
    label: &'a str,
    protocol: String,
    src_ip: Ipv4Addr,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    dst_ip: Ipv4Addr,
    #[serde(skip_serializing_if = "Option::is_none")]
    dst_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_pod: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dst_pod: Option<String>,
    conj_id: u32,
}

/// Lines allowed a second, with one second's burst.
#[derive(Debug)]
struct TokenBucket {
    rate: f64,
    tokens: f64,
    at: Option<Instant>,
}

impl TokenBucket {
    fn new(rate: u32) -> TokenBucket {
        TokenBucket { rate: f64::from(rate), tokens: f64::from(rate), at: None }
    }

    /// Takes a token at `now`, if there is one.
    fn take(&mut self, now: Instant) -> bool {
        if let Some(at) = self.at {
            self.tokens = (self.tokens + now.saturating_duration_since(at).as_secs_f64() * self.rate).min(self.rate);
        }
        self.at = Some(now);
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

/// The audit log writer, shared by the packet-in task and the agent's loop.
#[derive(Debug)]
pub struct AuditLog {
    node: String,
    counts: Arc<Counts>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    file: LogFile,
    bucket: TokenBucket,
    recent: HashMap<(u32, Connection), Instant>,
    rules: Arc<BTreeMap<u32, ConjRules>>,
    pods: HashMap<Ipv4Addr, PodKey>,
}

impl AuditLog {
    /// A log for node `node`, written as `config` says.
    pub fn new(node: &str, config: &AuditConfig) -> AuditLog {
        let state = State {
            file: LogFile::new(config.rotation.clone()),
            bucket: TokenBucket::new(config.lines_per_second),
            recent: HashMap::new(),
            rules: Arc::default(),
            pods: HashMap::new(),
        };
        AuditLog { node: node.to_string(), counts: Arc::default(), state: Mutex::new(state) }
    }

    /// The counts, for the metrics.
    pub fn counts(&self) -> Arc<Counts> {
        self.counts.clone()
    }

    /// The installed rules changed.
    pub fn set_rules(&self, rules: Arc<BTreeMap<u32, ConjRules>>) {
        self.state.lock().expect("not poisoned").rules = rules;
    }

    /// The cluster view changed: the pods behind the addresses.
    pub fn set_pods(&self, cluster: &Cluster) {
        let pods = cluster
            .pods
            .values()
            .filter(|p| !p.host_network)
            .flat_map(|p| {
                p.ips.iter().filter_map(move |ip| match ip {
                    std::net::IpAddr::V4(v4) => Some((*v4, p.key.clone())),
                    std::net::IpAddr::V6(_) => None,
                })
            })
            .collect();
        self.state.lock().expect("not poisoned").pods = pods;
    }

    /// Logs the connection of a packet-in marked for logging, received at `now`.
    pub fn record(&self, now: Instant, packet_in: &PacketIn) {
        let count = |c: &AtomicU64| {
            c.fetch_add(1, Ordering::Relaxed);
        };
        let Some(conn) = Connection::of_frame(&packet_in.data) else { return count(&self.counts.unparsable) };
        let mut state = self.state.lock().expect("not poisoned");
        let rules = state.rules.clone();
        let Some((id, conj)) = cookie_conj(packet_in.cookie).and_then(|id| Some((id, rules.get(&id)?))) else {
            return count(&self.counts.unknown_rule);
        };
        if !state.first_sighting(now, id, conn) {
            return count(&self.counts.duplicates);
        }
        if !state.bucket.take(now) {
            return count(&self.counts.rate_limited);
        }
        let line = self.line(&state, id, conj, &conn);
        match state.file.append(&line) {
            Ok(()) => count(&self.counts.written),
            Err(e) => {
                if self.counts.write_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!("writing the audit log: {e} (further errors are only counted)");
                }
            }
        }
    }

    fn line(&self, state: &State, id: u32, conj: &ConjRules, conn: &Connection) -> String {
        // Rules sharing a conj_id have equal matches and actions; the first names them.
        let info = &conj.rules[0];
        let pod = |ip: &Ipv4Addr| state.pods.get(ip).map(ToString::to_string);
        let policy = &info.origin.policy;
        let line = Line {
            time: jiff::Timestamp::now().to_string(),
            node: &self.node,
            tier: tier_name(conj.table),
            table: conj.table.name(),
            kind: policy.kind.to_string(),
            policy: match &policy.namespace {
                Some(ns) => format!("{ns}/{}", policy.name),
                None => policy.name.clone(),
            },
            rule: &info.origin.rule,
            action: format!("{:?}", info.action),
            direction: format!("{:?}", info.direction),
            label: info.audit.as_ref().map_or("", |a| a.label.as_str()),
            protocol: protocol_name(conn.protocol),
            src_ip: conn.src,
            src_port: conn.src_port,
            dst_ip: conn.dst,
            dst_port: conn.dst_port,
            src_pod: pod(&conn.src),
            dst_pod: pod(&conn.dst),
            conj_id: id,
        };
        serde_json::to_string(&line).expect("a line serializes")
    }
}

impl State {
    /// Whether `conn` of rule `id` was not logged within [`DEDUP_WINDOW`] (and remembers it).
    fn first_sighting(&mut self, now: Instant, id: u32, conn: Connection) -> bool {
        if self.recent.len() >= DEDUP_CAP {
            self.recent.retain(|_, at| now.saturating_duration_since(*at) < DEDUP_WINDOW);
        }
        match self.recent.get(&(id, conn)) {
            Some(at) if now.saturating_duration_since(*at) < DEDUP_WINDOW => false,
            _ => {
                if self.recent.len() < DEDUP_CAP {
                    self.recent.insert((id, conn), now);
                }
                true
            }
        }
    }
}

#[cfg(test)]
mod tests;
