//! The agent's Prometheus metrics, recorded from the [`Action`]s the [`NodeAgent`] asks for
//! and the [`Event`]s that answer them (the driver in [`crate::agent`] shows each to
//! [`Metrics::action`] and [`Metrics::event`]), from the switch's flow statistics
//! ([`rule_stats`]) and from the OVSDB client's connection state; served over HTTP with
//! `/healthz` and `/readyz` by [`server`].
//!
//! Every family is named `weir_*`; [`Metrics::encode`] writes them in the OpenMetrics text
//! format (prometheus-client), which Prometheus scrapes and `promtool check metrics` reads.
//!
//! [`NodeAgent`]: crate::node_agent::NodeAgent

pub mod host_rules;
pub mod meters;
pub mod rule_stats;
pub mod server;

use crate::node_agent::{Action, Event, Realization};
use crate::status::{ObjectErrorReport, Status};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A label set of one `kind` label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

/// A label set of one `table` label (a pipeline table's name).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabel {
    table: String,
}

/// The families the driver records into.
#[derive(Default)]
struct Families {
    objects: GaugeSet<KindLabel>,
    rejected: GaugeSet<KindLabel>,
    flows: GaugeSet<TableLabel>,
    rules: GaugeSet<TableLabel>,
    local_pods: Gauge,
    realized: Gauge,
    realizations: Counter,
    flow_mods_sent: Counter,
    flow_mods_failed: Counter,
    bundles_failed: Counter,
    cache_purges: Counter,
    openflow_connected: Gauge,
    openflow_connections: Counter,
    openflow_connect_failures: Counter,
    openflow_losses: Counter,
}

/// Buckets of the bundle latency: 0.5 ms to about 8 s.
fn bundle_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

/// Buckets of the event-to-realized latency: 1 ms to about 32 s.
fn realization_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The agent's metrics and health. Shared (`Arc`) by the driver and the HTTP server.
pub struct Metrics {
    registry: Registry,
    families: Families,
    bundle_seconds: Histogram,
    realization_seconds: Histogram,
    /// Per-rule counters from the switch's flow statistics.
    pub rules: std::sync::Arc<rule_stats::RuleStats>,
    /// The packet-in meters' statistics, read with the per-rule counters.
    pub meters: std::sync::Arc<meters::Meters>,
    /// Per-rule counters of the node firewall, read with the switch's.
    pub host_rules: std::sync::Arc<host_rules::HostRuleStats>,
    /// When the driver's loop last turned.
    last_turn: Mutex<Instant>,
    realized_once: AtomicBool,
    /// Whether there is a switch (ready needs its connection up): not on an ExternalNode's
    /// host in the nftables realization.
    has_switch: bool,
    openflow_up: AtomicBool,
    /// The bundle in flight: flow_mods and when it was sent.
    bundle: Mutex<Option<(usize, Instant)>>,
}

impl Metrics {
    /// Every family registered, zero; `ovsdb` is the OVSDB client's connection state (none:
    /// an agent without a switch, see [`Metrics::without_switch`]), `rejects` the Reject
    /// answerer's counts.
    pub fn new(
        ovsdb: Option<tokio::sync::watch::Receiver<ovsdb::ConnState>>,
        rejects: std::sync::Arc<crate::reject::Counts>,
        rule_cap: usize,
    ) -> Metrics {
        let mut registry = Registry::default();
        let families = Families::default();
        let (bundle_seconds, realization_seconds) = (bundle_buckets(), realization_buckets());
        let rules = std::sync::Arc::new(rule_stats::RuleStats::new(rule_cap));
        register(&mut registry, &families, &realization_seconds);
        let meters = std::sync::Arc::new(meters::Meters::default());
        let has_switch = ovsdb.is_some();
        if let Some(ovsdb) = ovsdb {
            register_switch(&mut registry, &families, &bundle_seconds);
            registry.register_collector(Box::new(OvsdbState(ovsdb)));
            registry.register_collector(Box::new(RejectCounts(rejects)));
            registry.register_collector(Box::new(rules.clone()));
            registry.register_collector(Box::new(meters.clone()));
        }
        let host_rules = std::sync::Arc::new(host_rules::HostRuleStats::default());
        registry.register_collector(Box::new(host_rules.clone()));
        Metrics {
            registry,
            families,
            bundle_seconds,
            realization_seconds,
            rules,
            meters,
            host_rules,
            last_turn: Mutex::new(Instant::now()),
            realized_once: AtomicBool::new(false),
            has_switch,
            openflow_up: AtomicBool::new(false),
            bundle: Mutex::new(None),
        }
    }

    /// The metrics of an agent without a switch (an ExternalNode's host in the nftables
    /// realization): the cluster view, the status, realizations and the node firewall's rules.
    pub fn without_switch() -> Metrics {
        Metrics::new(None, std::sync::Arc::default(), 0)
    }

    /// The driver is about to perform `action` (at `now`).
    pub fn action(&self, now: Instant, action: &Action) {
        let f = &self.families;
        match action {
            Action::WriteStatus(status) => self.status(status),
            Action::SendBundle(mods) => {
                *self.bundle.lock().expect("not poisoned") = Some((mods.len(), now))
            }
            Action::Realized(r) => self.realization(r),
            Action::Disconnect => {
                f.openflow_connected.set(0);
                self.openflow_up.store(false, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// `event` happened at `now` (an input, or the answer to an action).
    pub fn event(&self, now: Instant, event: &Event) {
        let f = &self.families;
        match event {
            Event::Connected => {
                f.openflow_connections.inc();
                f.openflow_connected.set(1);
                self.openflow_up.store(true, Ordering::Relaxed);
            }
            Event::ConnectFailed(_) => {
                f.openflow_connect_failures.inc();
            }
            Event::SwitchLost(_) => {
                f.openflow_losses.inc();
                f.openflow_connected.set(0);
                self.openflow_up.store(false, Ordering::Relaxed);
            }
            Event::BundleDone(result) => {
                let Some((n, sent)) = self.bundle.lock().expect("not poisoned").take() else {
                    return;
                };
                self.bundle_seconds
                    .observe(now.saturating_duration_since(sent).as_secs_f64());
                match result {
                    Ok(()) => f.flow_mods_sent.inc_by(n as u64),
                    Err(_) => {
                        f.bundles_failed.inc();
                        f.flow_mods_failed.inc_by(n as u64)
                    }
                };
            }
            Event::Purged(Ok(())) => {
                f.cache_purges.inc();
            }
            _ => {}
        }
    }

    /// The driver's loop turned (at `now`).
    pub fn loop_turned(&self, now: Instant) {
        *self.last_turn.lock().expect("not poisoned") = now;
    }

    /// How long ago the loop last turned.
    pub fn since_last_turn(&self) -> Duration {
        self.last_turn.lock().expect("not poisoned").elapsed()
    }

    /// Adds the audit log's families (`weir_audit_log_lines_total`, ...), read from `counts`
    /// at each scrape.
    pub fn register_audit(&mut self, counts: std::sync::Arc<crate::audit::Counts>) {
        self.registry.register_collector(Box::new(AuditCounts(counts)));
    }

    /// Ready: realized at least once, and the OpenFlow connection is up (when there is a switch).
    pub fn ready(&self) -> Result<(), &'static str> {
        match (
            self.realized_once.load(Ordering::Relaxed),
            self.openflow_up.load(Ordering::Relaxed) || !self.has_switch,
        ) {
            (false, _) => Err("not realized yet"),
            (true, false) => Err("the OpenFlow connection is down"),
            (true, true) => Ok(()),
        }
    }

    /// Every family, in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// The status as written (objects, rejected objects, flows, pods, realized).
    pub fn status(&self, status: &Status) {
        let f = &self.families;
        f.objects.set_all(status.objects.iter().map(|(k, n)| (KindLabel { kind: k.clone() }, *n)));
        let mut rejected = BTreeMap::<String, usize>::new();
        for e in &status.errors {
            *rejected.entry(kind_of(e)).or_default() += 1;
        }
        f.rejected.set_all(rejected.into_iter().map(|(kind, n)| (KindLabel { kind }, n)));
        f.flows.set_all(status.flows.iter().map(|(t, n)| (TableLabel { table: t.clone() }, *n)));
        f.local_pods.set(status.local_pods as i64);
        f.realized.set(i64::from(status.realized));
    }

    /// A realization finished (its latency, and its rules when it reports them).
    pub fn realization(&self, r: &Realization) {
        let f = &self.families;
        f.realizations.inc();
        self.realized_once.store(true, Ordering::Relaxed);
        if let Some(input) = r.input_at {
            self.realization_seconds
                .observe(r.acked_at.saturating_duration_since(input).as_secs_f64());
        }
        if let Some(rules) = &r.rules {
            let mut per_table = BTreeMap::<String, usize>::new();
            for conj in rules.values() {
                *per_table.entry(conj.table.name().to_string()).or_default() += conj.rules.len();
            }
            f.rules.set_all(
                per_table
                    .into_iter()
                    .map(|(table, n)| (TableLabel { table }, n)),
            );
            self.rules.set_rules(rules.clone());
        }
    }
}

/// A gauge family whose whole set of series is replaced at once ([`GaugeSet::set_all`]).
struct GaugeSet<L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug> {
    family: Family<L, Gauge>,
    /// The labels set last.
    present: Mutex<Vec<L>>,
}

impl<L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug> Default for GaugeSet<L> {
    fn default() -> Self {
        GaugeSet { family: Family::default(), present: Mutex::default() }
    }
}

impl<L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug> GaugeSet<L> {
    /// Sets `values` and removes the series whose label is no longer among them, in that
    /// order, so a scrape meanwhile never misses a series that stays.
    fn set_all(&self, values: impl Iterator<Item = (L, usize)>) {
        let mut present = self.present.lock().expect("not poisoned");
        let mut now = Vec::new();
        for (label, n) in values {
            self.family.get_or_create(&label).set(n as i64);
            now.push(label);
        }
        for gone in present.iter().filter(|l| !now.contains(l)) {
            self.family.remove(gone);
        }
        *present = now;
    }
}

/// The kind of a rejected object from its report (`Kind namespace/name`); `file` for an
/// error about a whole file, `unknown` for an object that could not be identified
/// (`document N (line L)`).
fn kind_of(e: &ObjectErrorReport) -> String {
    match e.object.split_once(' ') {
        _ if e.object.is_empty() => "file".to_string(),
        Some((kind, _)) if kind.starts_with(|c: char| c.is_ascii_uppercase()) => kind.to_string(),
        _ => "unknown".to_string(),
    }
}

/// The families of every agent: the cluster view and its realization.
fn register(registry: &mut Registry, f: &Families, realization: &Histogram) {
    registry.register(
        "weir_objects",
        "Objects in the cluster view, by kind",
        f.objects.family.clone(),
    );
    registry.register(
        "weir_rejected_objects",
        "Objects rejected (not in force), by kind",
        f.rejected.family.clone(),
    );
    registry.register(
        "weir_realized",
        "1 when the switch (or the node firewall) holds what the cluster view asks for, else 0",
        f.realized.clone(),
    );
    registry.register(
        "weir_realizations",
        "Realization passes that left the switch (or the node firewall) holding what the view asks for",
        f.realizations.clone(),
    );
    registry.register(
        "weir_realization_latency_seconds",
        "Time from a cluster view change (manifests or API event) to the switch acknowledging the flows (or nftables the table) that realize it",
        realization.clone(),
    );
}

/// The families of an agent with a switch: flows, bundles, pods on the bridge, the OpenFlow connection.
fn register_switch(registry: &mut Registry, f: &Families, bundle: &Histogram) {
    registry.register(
        "weir_flows",
        "Flows weir installed, by pipeline table",
        f.flows.family.clone(),
    );
    registry.register(
        "weir_policy_rules",
        "Policy rules installed, by the pipeline table deciding them",
        f.rules.family.clone(),
    );
    registry.register(
        "weir_local_pods",
        "Pods attached to this node's bridge",
        f.local_pods.clone(),
    );
    registry.register(
        "weir_flow_mods_sent",
        "flow_mods in bundles the switch accepted",
        f.flow_mods_sent.clone(),
    );
    registry.register(
        "weir_flow_mods_failed",
        "flow_mods in bundles the switch rejected or that failed",
        f.flow_mods_failed.clone(),
    );
    registry.register(
        "weir_bundles_failed",
        "Bundles the switch rejected or that failed",
        f.bundles_failed.clone(),
    );
    registry.register(
        "weir_bundle_duration_seconds",
        "Time from sending a bundle to the switch's answer to its commit and barrier",
        bundle.clone(),
    );
    registry.register(
        "weir_datapath_cache_purges",
        "Purges of the datapath's cached flows (a known OVS bug's mitigation)",
        f.cache_purges.clone(),
    );
    registry.register(
        "weir_openflow_connected",
        "1 while the OpenFlow connection to the switch is up",
        f.openflow_connected.clone(),
    );
    registry.register(
        "weir_openflow_connections",
        "OpenFlow connections established (the first, then reconnects)",
        f.openflow_connections.clone(),
    );
    registry.register(
        "weir_openflow_connect_failures",
        "Failed OpenFlow connection attempts",
        f.openflow_connect_failures.clone(),
    );
    registry.register(
        "weir_openflow_connection_losses",
        "OpenFlow connections that went down",
        f.openflow_losses.clone(),
    );
}

/// The OVSDB client's connection state, read at each scrape.
#[derive(Debug)]
struct OvsdbState(tokio::sync::watch::Receiver<ovsdb::ConnState>);

impl prometheus_client::collector::Collector for OvsdbState {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        let state = self.0.borrow().clone();
        let connected = ConstGauge::new(i64::from(state.connected));
        connected.encode(encoder.encode_descriptor(
            "weir_ovsdb_connected",
            "1 while the OVSDB connection is up",
            None,
            connected.metric_type(),
        )?)?;
        let connections = ConstCounter::new(state.connections);
        connections.encode(encoder.encode_descriptor(
            "weir_ovsdb_connections",
            "OVSDB connections established (the first, then reconnects)",
            None,
            connections.metric_type(),
        )?)?;
        let failures = ConstCounter::new(state.failed_attempts);
        failures.encode(encoder.encode_descriptor(
            "weir_ovsdb_connect_failures",
            "Failed OVSDB connection attempts",
            None,
            failures.metric_type(),
        )?)
    }
}

#[cfg(test)]
mod tests;

/// The Reject answerer's counts (see [`crate::reject`]), read at each scrape.
#[derive(Debug)]
struct RejectCounts(std::sync::Arc<crate::reject::Counts>);

impl prometheus_client::collector::Collector for RejectCounts {
    fn encode(&self, mut encoder: prometheus_client::encoding::DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        for (name, help, count) in [
            ("weir_reject_answers", "Packets a Reject rule stopped that the agent answered (TCP RST or ICMP admin-prohibited)", &self.0.answered),
            ("weir_reject_unanswered", "Packets a Reject rule stopped that got no answer (unanswerable, or the answer could not be sent)", &self.0.unanswered),
        ] {
            let counter = ConstCounter::new(count.load(Ordering::Relaxed));
            counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)?;
        }
        Ok(())
    }
}

/// The audit log's counts (see [`crate::audit`]), read at each scrape.
#[derive(Debug)]
struct AuditCounts(std::sync::Arc<crate::audit::Counts>);

/// A label set of one `reason` label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

impl prometheus_client::collector::Collector for AuditCounts {
    fn encode(&self, mut encoder: prometheus_client::encoding::DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        let c = &self.0;
        for (name, help, count) in [
            ("weir_audit_log_lines", "Audit log lines written (one per logged connection)", &c.written),
            (
                "weir_audit_log_duplicates",
                "Packets of a connection already logged within the deduplication window (no new line)",
                &c.duplicates,
            ),
        ] {
            let counter = ConstCounter::new(count.load(Ordering::Relaxed));
            counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)?;
        }
        let mut family = encoder.encode_descriptor(
            "weir_audit_log_lines_dropped",
            "Audit log lines not written, by reason (rate_limit, unknown_rule, unparsable, write_error)",
            None,
            ConstCounter::new(0u64).metric_type(),
        )?;
        for (reason, n) in c.dropped() {
            ConstCounter::new(n).encode(family.encode_family(&ReasonLabel { reason: reason.to_string() })?)?;
        }
        Ok(())
    }
}
