use super::rule_stats::{ConjCounters, Counters, RuleLabels, rows};
use super::*;
use crate::node_agent::Failure;
use pipeline::Table;
use pipeline::conjunction::RuleInfo;
use pipeline::rule_flows::ConjRules;
use policy::{Direction, Origin, PolicyKind, PolicyRef, RuleId};
use std::sync::Arc;

fn metrics() -> Metrics {
    let (_tx, rx) = tokio::sync::watch::channel(ovsdb::ConnState {
        connected: true,
        connections: 2,
        ..Default::default()
    });
    Metrics::new(Some(rx), Arc::default(), 10)
}

/// The value of the sample line `name{labels}` (or `name` alone) in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn rule(ns: &str, name: &str, rule: &str) -> RuleInfo {
    RuleInfo {
        rule: RuleId(format!("NetworkPolicy/{ns}/{name}/{rule}")),
        part: 0,
        origin: Origin {
            policy: PolicyRef {
                kind: PolicyKind::NetworkPolicy,
                namespace: Some(ns.into()),
                name: name.into(),
            },
            rule: rule.into(),
        },
        direction: Direction::Ingress,
        action: policy::Action::Allow,
        audit: None,
    }
}

#[test]
fn a_status_sets_the_object_rejected_and_flow_gauges() {
    let m = metrics();
    let status = Status {
        objects: [("Pod".to_string(), 3), ("NetworkPolicy".to_string(), 1)].into(),
        errors: vec![
            ObjectErrorReport {
                object: "NetworkPolicy x/bad".into(),
                field: "spec".into(),
                message: "m".into(),
                source: "f".into(),
            },
            ObjectErrorReport {
                object: "document 2 (line 9)".into(),
                field: "-".into(),
                message: "m".into(),
                source: "f".into(),
            },
        ],
        flows: [("IngressRule".to_string(), 7)].into(),
        realized: true,
        ..Status::default()
    };
    m.action(Instant::now(), &Action::WriteStatus(Box::new(status)));
    let text = m.encode();
    assert_eq!(sample(&text, r#"weir_objects{kind="Pod"}"#), Some(3.0));
    assert_eq!(
        sample(&text, r#"weir_rejected_objects{kind="NetworkPolicy"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"weir_rejected_objects{kind="unknown"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"weir_flows{table="IngressRule"}"#),
        Some(7.0)
    );
    assert_eq!(sample(&text, "weir_realized"), Some(1.0));
    assert_eq!(sample(&text, "weir_ovsdb_connections_total"), Some(2.0));

    // A kind whose objects are all gone leaves the output.
    m.action(Instant::now(), &Action::WriteStatus(Box::default()));
    assert_eq!(
        sample(
            &m.encode(),
            r#"weir_rejected_objects{kind="NetworkPolicy"}"#
        ),
        None
    );
}

#[test]
fn bundles_count_their_flow_mods_as_sent_or_failed_and_time_the_answer() {
    let m = metrics();
    let t = Instant::now();
    m.action(
        t,
        &Action::SendBundle(vec![
            openflow::FlowMod::delete_strict(
                openflow::Flow::default()
            );
            3
        ]),
    );
    m.event(t + Duration::from_millis(3), &Event::BundleDone(Ok(())));
    m.action(
        t,
        &Action::SendBundle(vec![
            openflow::FlowMod::delete_strict(
                openflow::Flow::default()
            );
            2
        ]),
    );
    m.event(t, &Event::BundleDone(Err(Failure::up("rejected"))));
    let text = m.encode();
    assert_eq!(sample(&text, "weir_flow_mods_sent_total"), Some(3.0));
    assert_eq!(sample(&text, "weir_flow_mods_failed_total"), Some(2.0));
    assert_eq!(
        sample(&text, "weir_bundle_duration_seconds_count"),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, r#"weir_bundle_duration_seconds_bucket{le="0.004"}"#),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, r#"weir_bundle_duration_seconds_bucket{le="0.002"}"#),
        Some(1.0)
    );
}

#[test]
fn readiness_needs_a_realization_and_the_switch_connection() {
    let m = metrics();
    assert_eq!(m.ready(), Err("not realized yet"));
    m.event(Instant::now(), &Event::Connected);
    let t = Instant::now();
    let r = Realization {
        input_at: Some(t),
        acked_at: t + Duration::from_millis(20),
        flow_mods: 1,
        rules: None,
    };
    m.action(t, &Action::Realized(Box::new(r)));
    assert_eq!(m.ready(), Ok(()));
    assert_eq!(
        sample(
            &m.encode(),
            r#"weir_realization_latency_seconds_bucket{le="0.016"}"#
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &m.encode(),
            r#"weir_realization_latency_seconds_bucket{le="0.032"}"#
        ),
        Some(1.0)
    );
    m.event(Instant::now(), &Event::SwitchLost("closed".into()));
    assert_eq!(m.ready(), Err("the OpenFlow connection is down"));
    assert_eq!(
        sample(&m.encode(), "weir_openflow_connection_losses_total"),
        Some(1.0)
    );
}

#[test]
fn rule_counters_are_per_rule_summed_over_conj_ids_and_capped() {
    let rules: BTreeMap<u32, ConjRules> = [
        (
            1,
            ConjRules {
                table: Table::IngressRule,
                rules: vec![rule("x", "web", "ingress[0]")],
            },
        ),
        (
            2,
            ConjRules {
                table: Table::IngressRule,
                rules: vec![
                    rule("x", "web", "ingress[0]"),
                    rule("y", "db", "ingress[1]"),
                ],
            },
        ),
        (
            3,
            ConjRules {
                table: Table::IngressRule,
                rules: vec![rule("z", "late", "ingress[0]")],
            },
        ),
    ]
    .into();
    let c = |packets, bytes, new_connections| Counters { packets, bytes, new_connections };
    let counters: ConjCounters = [(1, c(5, 500, 2)), (2, c(1, 60, 1)), (3, c(9, 900, 9))].into();
    let (all, omitted) = rows(&rules, &counters, 2);
    let web = RuleLabels {
        tier: "networkpolicy".into(),
        kind: "NetworkPolicy".into(),
        policy: "x/web".into(),
        rule: "ingress[0]".into(),
    };
    assert_eq!(all[&web], c(6, 560, 3), "both conj_ids of x/web ingress[0]");
    assert_eq!(all.len(), 2);
    assert_eq!(omitted, 1, "z/late is past the cap");

    let m = metrics();
    m.rules.set_rules(Arc::new(rules));
    m.rules.set_counters(&counters);
    let text = m.encode();
    let series = r#"weir_rule_packets_total{tier="networkpolicy",kind="NetworkPolicy",policy="x/web",rule="ingress[0]"}"#;
    assert_eq!(sample(&text, series), Some(6.0), "{text}");
    let new = r#"weir_rule_new_connections_total{tier="networkpolicy",kind="NetworkPolicy",policy="x/web",rule="ingress[0]"}"#;
    assert_eq!(sample(&text, new), Some(3.0), "{text}");
    assert_eq!(
        sample(&text, "weir_rule_series_omitted"),
        Some(0.0),
        "the agent's cap is 10"
    );
}

#[test]
fn reject_answers_are_read_from_the_answerers_counts_at_each_scrape() {
    let (_tx, rx) = tokio::sync::watch::channel(ovsdb::ConnState::default());
    let counts = Arc::new(crate::reject::Counts::default());
    let m = Metrics::new(Some(rx), counts.clone(), 10);
    assert_eq!(sample(&m.encode(), "weir_reject_answers_total"), Some(0.0));
    counts.answered.fetch_add(3, std::sync::atomic::Ordering::Relaxed);
    counts.unanswered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let text = m.encode();
    assert_eq!(sample(&text, "weir_reject_answers_total"), Some(3.0));
    assert_eq!(sample(&text, "weir_reject_unanswered_total"), Some(1.0));
}
