//! The timers of an idle agent: the status heartbeat and the audit of the switch's flows.

use super::*;
use openflow::FlowMod;
use pipeline::flow::key;

#[test]
fn an_idle_agent_rewrites_its_status_every_two_seconds_and_audits_every_five() {
    let mut w = World::realized(Switch::fixed(), BASE);
    let mark = w.mark();
    w.advance(Duration::from_secs(10) - w.elapsed());
    let secs = |v: Vec<Duration>| v.into_iter().map(|d| d.as_secs_f64()).collect::<Vec<_>>();
    assert_eq!(secs(w.times_of(mark, "status")), [2.0, 4.0, 6.0, 8.0, 10.0]);
    assert_eq!(secs(w.times_of(mark, "count")), [5.0, 10.0]);
    assert_eq!(
        w.steps_since(mark),
        ["record", "status", "status", "status", "status", "status"],
        "nothing else happens but the record of the realization, once quiet"
    );
    assert_eq!(w.times_of(mark, "record"), [w.times_of(0, "flow-restore")[0] + RECORD_QUIET]);
    assert!(w.statuses_since(mark).iter().all(|(_, s)| s.realized && s.source_token.as_deref() == Some("t0")));
}

#[test]
fn heartbeats_missed_while_the_loop_stalled_are_not_burst_afterwards() {
    let mut w = World::realized(Switch::fixed(), BASE);
    w.advance(Duration::from_secs(2) - w.elapsed());
    let mark = w.mark();
    w.stall(Duration::from_secs(7));
    assert_eq!(w.times_of(mark, "status"), [Duration::from_secs(9)], "one write, not three");
    w.advance(Duration::from_secs(2));
    assert_eq!(w.times_of(mark, "status"), [Duration::from_secs(9), Duration::from_secs(11)]);
}

#[test]
fn flows_changed_behind_weirs_back_are_found_by_the_audit_and_corrected() {
    let mut w = World::realized(Switch::fixed(), BASE);
    let before = w.switch.flows.clone();
    let victim = before.iter().next().unwrap().clone();
    w.switch.flows.remove(&key(&victim)); // ovs-ofctl del-flows, say
    let mark = w.mark();
    w.advance(AUDIT + ms(10) - w.elapsed());
    assert_eq!(w.times_of(mark, "count"), [AUDIT]);
    assert_eq!(w.times_of(mark, "read-switch"), [AUDIT + COALESCE], "read back after the audit");
    assert_eq!(w.bundles_since(mark), [[FlowMod::add(victim)].as_slice()]);
    assert_eq!(w.switch.flows, before);
    assert!(!w.steps_since(mark).contains(&"connect"), "on the same connection");
}

#[test]
fn no_audit_runs_while_the_switch_is_disconnected() {
    let mut w = World::realized(Switch::fixed(), BASE);
    w.kill_switch();
    let mark = w.mark();
    w.advance(Duration::from_secs(12));
    assert!(w.times_of(mark, "count").is_empty());
}
