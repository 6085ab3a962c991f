//! Failures on the switch and their retries: a lost connection and the reconnects, a rejected
//! bundle or a failed flow-restore-wait and the backoff.

use super::*;
use openflow::{Flow, FlowModCommand};
use pipeline::flow::key;

// ---------------------------------------------------------------- losing the switch

#[test]
fn a_lost_switch_makes_the_status_unrealized_at_once_and_reconnects_per_the_backoff_table() {
    let mut w = World::realized(Switch::fixed(), BASE);
    let before = w.switch.flows.clone();
    let mark = w.mark();
    let lost = w.elapsed();
    w.kill_switch();

    let (when, status) = w.statuses_since(mark)[0];
    assert_eq!(when, lost, "written at the moment the connection is lost");
    assert!(!status.realized);
    assert_eq!(
        status.last_error.as_deref(),
        Some("OpenFlow connection to unix:/run/openvswitch/br-int.mgmt lost: the switch closed the connection; reconnecting")
    );

    w.advance(Duration::from_secs(1));
    let attempts = w.times_of(mark, "connect (refused)");
    // Each attempt comes one reconnect delay (and the coalescing pause) after the last.
    let mut expected = vec![lost + COALESCE];
    for i in 0..5 {
        expected.push(expected[i] + RECONNECT[i.min(RECONNECT.len() - 1)] + COALESCE);
    }
    assert_eq!(&attempts[..6], expected.as_slice());
    assert!(!w.status().realized);
    assert!(
        w.status().last_error.as_deref().unwrap().starts_with("connecting to unix:/run/openvswitch/br-int.mgmt: Connection refused"),
        "{:?}",
        w.status().last_error
    );

    // The restarted switch accepts: the next attempt connects and puts every flow back.
    w.switch_back();
    let mark = w.mark();
    let back = w.elapsed();
    w.advance(RECONNECT[RECONNECT.len() - 1] + COALESCE);
    assert_eq!(w.steps_since(mark), ["connect", "read-switch", "bundle", "flow-restore", "status"]);
    assert!(w.times_of(mark, "connect")[0] - back <= RECONNECT[RECONNECT.len() - 1] + COALESCE);
    assert_eq!(w.switch.flows, before);
    assert!(w.status().realized);
    assert_eq!(w.status().last_error, None);
}

#[test]
fn a_reconnect_reads_the_flows_back_and_sends_only_the_difference() {
    let mut w = World::realized(Switch::fixed(), BASE);
    let before = w.switch.flows.clone();
    // While the connection is down, someone deletes one of weir's flows and adds one.
    let victim = before.iter().nth(before.len() / 2).unwrap().clone();
    w.switch.flows.remove(&key(&victim));
    w.switch.flows.insert(foreign_flow());

    let mark = w.mark();
    w.lose_connection("no reply to OFPT_BARRIER_REQUEST within 5.0 s");
    w.advance(ms(10));
    assert_eq!(w.steps_since(mark), ["status", "connect", "read-switch", "bundle", "flow-restore", "status"]);
    let bundles = w.bundles_since(mark);
    let sent: Vec<(FlowModCommand, &Flow)> = bundles[0].iter().map(|m| (m.command, &m.flow)).collect();
    assert_eq!(sent, [(FlowModCommand::Add, &victim), (FlowModCommand::DeleteStrict, &foreign_flow())]);
    assert_eq!(w.switch.flows, before);
}

#[test]
fn a_reconnect_to_a_switch_that_kept_its_flows_sends_nothing() {
    let mut w = World::realized(Switch::fixed(), BASE);
    let mark = w.mark();
    w.lose_connection("the connection failed: Broken pipe");
    w.advance(ms(10));
    assert_eq!(w.steps_since(mark), ["status", "connect", "read-switch", "flow-restore", "status"]);
    assert!(w.status().realized);
}

#[test]
fn a_bundle_that_finds_the_connection_down_reconnects_after_the_short_delay() {
    let mut w = World::realized(Switch::fixed(), BASE);
    let mark = w.mark();
    // The connection dies under the bundle: the driver reports the failure as connection-down.
    w.hold_bundles = true;
    w.input(manifests(&format!("{BASE}{}", policy("p", 80)), "t1"));
    w.advance(ms(10));
    w.hold_bundles = false;
    w.held = None;
    let failed = w.elapsed();
    w.switch.connected = false;
    w.input(Event::BundleDone(Err(Failure::down("OpenFlow connection down: the switch closed the connection"))));
    assert_eq!(w.steps_since(mark), ["bundle", "disconnect", "status"]);
    assert!(w.status().last_error.as_deref().unwrap().starts_with("installing "), "{:?}", w.status().last_error);

    w.advance(ms(100));
    assert_eq!(w.times_of(mark, "connect"), [failed + RECONNECT[0] + COALESCE]);
    assert_eq!(w.status().source_token.as_deref(), Some("t1"));
}

#[test]
fn a_connection_lost_under_a_bundle_abandons_the_pass_and_the_next_connection_starts_over() {
    let mut w = World::realized(Switch::fixed(), BASE);
    w.hold_bundles = true;
    let docs = format!("{BASE}{}", policy("p", 80));
    w.input(manifests(&docs, "t1"));
    w.advance(ms(10));
    // The switch applied the bundle, but the connection died before its answer came.
    w.lose_connection("the switch closed the connection");
    w.answer_held_bundle();
    assert!(!w.status().realized, "a late answer to an abandoned pass realizes nothing");
    assert_eq!(w.status().source_token.as_deref(), Some("t0"));

    let mark = w.mark();
    w.advance(ms(10));
    assert_eq!(w.steps_since(mark), ["connect", "read-switch", "flow-restore", "status"], "nothing left to send");
    assert!(w.status().realized);
    assert_eq!(w.status().source_token.as_deref(), Some("t1"));
    assert_eq!(w.switch.flows, flows_of(&docs));
}

// ---------------------------------------------------------------- failures on a live switch

#[test]
fn a_rejected_bundle_is_retried_with_backoff_and_the_flows_read_back_first() {
    let mut w = World::realized(Switch::fixed(), BASE);
    w.switch.reject_bundles = 3;
    let mark = w.mark();
    let t0 = w.elapsed();
    let docs = format!("{BASE}{}", policy("p", 80));
    w.input(manifests(&docs, "t1"));
    w.advance(ms(20));
    assert!(!w.status().realized);
    assert!(w.status().last_error.as_deref().unwrap().contains("flow_mods: bundle rejected flow #0"), "{:?}", w.status().last_error);

    w.advance(Duration::from_secs(5));
    let rejected = w.times_of(mark, "bundle (rejected)");
    let accepted = w.times_of(mark, "bundle");
    let mut expected = vec![t0 + COALESCE];
    for delay in &BACKOFF[..3] {
        expected.push(*expected.last().unwrap() + *delay + COALESCE);
    }
    assert_eq!(rejected, expected[..3]);
    assert_eq!(accepted, expected[3..]);
    assert_eq!(
        w.steps_since(mark).iter().filter(|s| !s.starts_with("status") && **s != "record").copied().collect::<Vec<_>>(),
        ["bundle (rejected)", "read-switch", "bundle (rejected)", "read-switch", "bundle (rejected)", "read-switch", "bundle"],
        "each retry reads the flows back before it diffs"
    );
    assert!(!w.steps_since(mark).contains(&"disconnect"), "the connection stays");
    assert!(w.status().realized);
    assert_eq!(w.status().source_token.as_deref(), Some("t1"));
    assert_eq!(w.switch.flows, flows_of(&docs));
}

#[test]
fn the_backoff_stays_at_its_last_delay_and_resets_after_a_success() {
    let mut w = World::realized(Switch::fixed(), BASE);
    w.switch.reject_bundles = 8;
    let mark = w.mark();
    w.input(manifests(&format!("{BASE}{}", policy("p", 80)), "t1"));
    w.advance(Duration::from_secs(30));
    let tries: Vec<Duration> = w.since(mark).iter().filter(|(_, d)| matches!(d, Done::Bundle { .. })).map(|(t, _)| *t).collect();
    let gaps: Vec<Duration> = tries.windows(2).map(|p| p[1] - p[0] - COALESCE).collect();
    assert_eq!(gaps, [BACKOFF[0], BACKOFF[1], BACKOFF[2], BACKOFF[3], BACKOFF[4], BACKOFF[4], BACKOFF[4], BACKOFF[4]]);

    w.switch.reject_bundles = 1;
    let mark = w.mark();
    w.input(manifests(&format!("{BASE}{}", policy("q", 81)), "t2"));
    w.advance(Duration::from_secs(1));
    let tries: Vec<Duration> = w.since(mark).iter().filter(|(_, d)| matches!(d, Done::Bundle { .. })).map(|(t, _)| *t).collect();
    assert_eq!(tries[1] - tries[0] - COALESCE, BACKOFF[0], "a new streak starts from the first delay");
}

#[test]
fn a_failed_flow_restore_leaves_the_status_unrealized_and_is_retried() {
    let mut switch = Switch::fixed();
    switch.fail_restores = 1;
    let mut w = World::new(switch);
    w.input(manifests(BASE, "t0"));
    w.input(bridge());
    w.advance(ms(10));
    assert!(!w.status().realized, "installed, but a waiting switch may not forward yet");
    assert_eq!(w.status().last_error.as_deref(), Some("clearing flow-restore-wait: OVSDB did not answer within 5 s"));
    let mark = w.mark();
    w.advance(BACKOFF[0] + COALESCE);
    assert_eq!(w.steps_since(mark), ["flow-restore", "status"], "retried without resending flows");
    assert!(w.status().realized);
    assert_eq!(w.status().source_token.as_deref(), Some("t0"));
}
