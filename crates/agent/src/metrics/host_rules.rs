//! Per-rule counters of the node firewall ([`crate::node_firewall`], `table inet weir-node`):
//! each rule's named nftables counter, read with the switch's rule counters and exported as
//! `weir_host_rule_packets_total` and `weir_host_rule_bytes_total`, with the labels of the
//! `weir_rule_*` families (`tier`, `kind`, `policy`, `rule`). They are families of their own
//! because one ClusterNetworkPolicy rule can govern pods (counted on OVS) and the host
//! (counted by nftables) at once.
//!
//! A counter is named after its rule ([`crate::node_firewall::counter_name`]), so the labels
//! come from the plan in force ([`HostRuleStats::set_plan`]); the counters restart from zero
//! when the table is replaced (a counter reset, to Prometheus).

use super::rule_stats::RuleLabels;
use crate::node_firewall::{Count, DirectionPlan, Plan, counter_name};
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// What the metrics export about the node firewall's rules.
#[derive(Debug, Default)]
pub struct HostRuleStats {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Each rule counter's labels, by counter name.
    labels: BTreeMap<String, RuleLabels>,
    /// The counters read last.
    counts: BTreeMap<String, Count>,
}

impl HostRuleStats {
    /// The plan sent to the firewall changed (the counters follow at the next read).
    pub fn set_plan(&self, plan: &Plan) {
        self.inner.lock().expect("not poisoned").labels = labels(plan);
    }

    /// Takes the counters read from nftables.
    pub fn set_counters(&self, counts: BTreeMap<String, Count>) {
        self.inner.lock().expect("not poisoned").counts = counts;
    }

    /// Each rule of the plan with its counters (zero until read).
    pub fn rows(&self) -> BTreeMap<RuleLabels, Count> {
        let inner = self.inner.lock().expect("not poisoned");
        inner.labels.iter().map(|(name, l)| (l.clone(), inner.counts.get(name).copied().unwrap_or_default())).collect()
    }
}

/// The labels of every rule counter of `plan`, by counter name.
fn labels(plan: &Plan) -> BTreeMap<String, RuleLabels> {
    let mut out = BTreeMap::new();
    for direction in plan.endpoints.iter().flat_map(|e| [&e.ingress, &e.egress]) {
        let DirectionPlan::Layers { admin, baseline } = direction else { continue };
        // The layers as `weir_rule_*` name them (`pipeline::rule_flows::tier_name`).
        let tiers = admin.iter().map(|(_, rules)| ("admin", rules)).chain([("baseline", baseline)]);
        for (tier, rules) in tiers {
            for rule in rules {
                out.entry(counter_name(&rule.id)).or_insert_with(|| RuleLabels::of(tier, &rule.origin));
            }
        }
    }
    out
}

impl prometheus_client::collector::Collector for HostRuleStats {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let rows = self.rows();
        type Field = fn(&Count) -> u64;
        let families: [(&str, &str, Field); 2] = [
            ("weir_host_rule_packets", "Packets the rule decided on this host (its node firewall counter)", |c| c.packets),
            ("weir_host_rule_bytes", "Bytes the rule decided on this host (its node firewall counter)", |c| c.bytes),
        ];
        for (name, help, field) in families {
            let mut family = encoder.encode_descriptor(name, help, None, ConstCounter::new(0u64).metric_type())?;
            for (labels, count) in &rows {
                ConstCounter::new(field(count)).encode(family.encode_family(labels)?)?;
            }
        }
        Ok(())
    }
}
