//! Per-rule packet, byte and new-connection counters: the flow statistics of each rule's
//! verdict flows (see [`pipeline::rule_flows`]), read from the switch at a bounded rate
//! ([`read`], driven by the agent's loop every `rule_stats_interval`) and exported as
//! `weir_rule_packets_total`, `weir_rule_bytes_total` and `weir_rule_new_connections_total`
//! with the labels `tier`, `kind`, `policy` and `rule`.
//!
//! New connections are the packets of the verdict flows that see only packets of connections
//! not yet established ([`pipeline::placement::Conn`]): in the admin tables the rule's
//! `reg0[4]=0` flows, elsewhere all of them (established packets never reach the
//! NetworkPolicy tables' rules or the baseline tables). They count packets, not handshakes: a
//! retransmitted SYN, and every packet of a denied client (whose connection never becomes
//! established), count again; an allowed TCP or UDP connection counts once.
//!
//! The series are capped ([`RuleStats::new`]): past the cap, rules (in label order) are left
//! out and counted in `weir_rule_series_omitted`, so a cluster with many policies cannot blow
//! up the scrape. A rule's counters restart from zero when its flows are reinstalled
//! (Prometheus treats that as a counter reset). Rules sharing a conj_id (equal match) share
//! their counters.

use crate::switch::{Switch, SwitchError};
use openflow::wire::multipart::FlowStatsRequest;
use pipeline::cookie::{CATEGORY_MASK, Category, cookie};
use pipeline::placement::Conn;
use pipeline::rule_flows::{ConjRules, tier_name, verdict_conj};
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The default cap on per-rule series.
pub const DEFAULT_CAP: usize = 1000;

/// The labels of one rule's series.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, EncodeLabelSet)]
pub struct RuleLabels {
    /// `admin`, `networkpolicy` or `baseline` ([`tier_name`]).
    pub tier: String,
    /// The policy's kind (`NetworkPolicy`, `AdminNetworkPolicy`, ...).
    pub kind: String,
    /// `namespace/name`, or `name` for cluster-scoped kinds.
    pub policy: String,
    /// The rule within the policy: `ingress[0]`, or a named rule's name.
    pub rule: String,
}

impl RuleLabels {
    /// The labels of the rule `origin` names, in the layer `tier`.
    pub fn of(tier: &str, origin: &policy::rules::Origin) -> RuleLabels {
        let policy = match &origin.policy.namespace {
            Some(ns) => format!("{ns}/{}", origin.policy.name),
            None => origin.policy.name.clone(),
        };
        RuleLabels { tier: tier.to_string(), kind: origin.policy.kind.to_string(), policy, rule: origin.rule.clone() }
    }
}

/// One rule's (or conj_id's) counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets its verdict flows decided.
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Packets of connections not yet established among them (see the module doc).
    pub new_connections: u64,
}

impl std::ops::AddAssign for Counters {
    fn add_assign(&mut self, other: Counters) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.new_connections += other.new_connections;
    }
}

/// Counters per conj_id, as read from the switch.
pub type ConjCounters = BTreeMap<u32, Counters>;

/// What the metrics export about rules: the installed rules and their last counters.
#[derive(Debug)]
pub struct RuleStats {
    cap: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    rules: Arc<BTreeMap<u32, ConjRules>>,
    rows: BTreeMap<RuleLabels, Counters>,
    omitted: usize,
}

impl RuleStats {
    /// No rules yet; at most `cap` rules are exported.
    pub fn new(cap: usize) -> RuleStats {
        RuleStats {
            cap,
            inner: Mutex::default(),
        }
    }

    /// The installed rules changed (the counters follow at the next read).
    pub fn set_rules(&self, rules: Arc<BTreeMap<u32, ConjRules>>) {
        self.inner.lock().expect("not poisoned").rules = rules;
    }

    /// Takes counters read from the switch.
    pub fn set_counters(&self, counters: &ConjCounters) {
        let mut inner = self.inner.lock().expect("not poisoned");
        let (rows, omitted) = rows(&inner.rules, counters, self.cap);
        inner.rows = rows;
        inner.omitted = omitted;
    }

    /// The exported rows (for tests and `weir get stats`).
    pub fn rows(&self) -> BTreeMap<RuleLabels, Counters> {
        self.inner.lock().expect("not poisoned").rows.clone()
    }
}

/// Each rule's counters (summed over its conj_ids), the first `cap` in label order, and how
/// many were left out.
pub fn rows(
    rules: &BTreeMap<u32, ConjRules>,
    counters: &ConjCounters,
    cap: usize,
) -> (BTreeMap<RuleLabels, Counters>, usize) {
    let mut all = BTreeMap::<RuleLabels, Counters>::new();
    for (id, conj) in rules {
        let counters = counters.get(id).copied().unwrap_or_default();
        for info in &conj.rules {
            let labels = RuleLabels::of(tier_name(conj.table), &info.origin);
            *all.entry(labels).or_default() += counters;
        }
    }
    let omitted = all.len().saturating_sub(cap);
    (all.into_iter().take(cap).collect(), omitted)
}

/// Reads the counters of every policy verdict flow: one flow-stats request per policy cookie
/// category.
pub async fn read(switch: &Switch) -> Result<ConjCounters, SwitchError> {
    let mut counters = ConjCounters::new();
    for category in [Category::NetworkPolicy, Category::ClusterPolicy] {
        let req = FlowStatsRequest {
            cookie: cookie(category, 0),
            cookie_mask: CATEGORY_MASK,
            ..FlowStatsRequest::default()
        };
        for stats in switch.dump_flow_stats(req).await? {
            if let Some(id) = verdict_conj(&stats.flow) {
                let new = Conn::of_flow(&stats.flow) != Conn::Established;
                *counters.entry(id).or_default() += Counters {
                    packets: stats.packet_count,
                    bytes: stats.byte_count,
                    new_connections: if new { stats.packet_count } else { 0 },
                };
            }
        }
    }
    Ok(counters)
}

impl prometheus_client::collector::Collector for RuleStats {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let inner = self.inner.lock().expect("not poisoned");
        type Field = fn(&Counters) -> u64;
        let families: [(&str, &str, Field); 3] = [
            ("weir_rule_packets", "Packets the rule decided (its verdict flows' counters)", |c| c.packets),
            ("weir_rule_bytes", "Bytes the rule decided (its verdict flows' counters)", |c| c.bytes),
            (
                "weir_rule_new_connections",
                "Packets of connections not yet established the rule decided (a connection's first packets; retransmissions and denied retries count again)",
                |c| c.new_connections,
            ),
        ];
        for (name, help, field) in families {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                None,
                ConstCounter::new(0u64).metric_type(),
            )?;
            for (labels, counters) in &inner.rows {
                ConstCounter::new(field(counters)).encode(family.encode_family(labels)?)?;
            }
        }
        let omitted = ConstGauge::new(inner.omitted as i64);
        omitted.encode(encoder.encode_descriptor(
            "weir_rule_series_omitted",
            "Rules left out of weir_rule_packets and weir_rule_bytes by the series cap",
            None,
            omitted.metric_type(),
        )?)
    }
}
