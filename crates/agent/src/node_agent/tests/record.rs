//! The realization record across a restart: trusted only when the inputs and the switch's
//! flows are exactly those recorded, written only once the agent is quiet.

use super::*;
use openflow::FlowModCommand;
use pipeline::flow::key;

fn docs() -> String {
    format!("{BASE}{}", policy("p", 80))
}

/// An agent that realized `docs` and stayed quiet long enough to record it: the world and the
/// one record it wrote.
fn recorded(docs: &str) -> (World, Record) {
    let mut w = World::realized(Switch::fixed(), docs);
    w.advance(RECORD_QUIET + ms(10));
    let records = records_since(&w, 0);
    assert_eq!(records.len(), 1, "one record once quiet: {:?}", w.steps_since(0));
    (w, records[0])
}

#[test]
fn a_restart_onto_the_recorded_inputs_and_flows_is_realized_before_its_compile_and_sends_nothing() {
    let (before, record) = recorded(&docs());
    let (flows, counts) = (before.switch.flows.clone(), before.status().flows.clone());
    let mut w = World::restarted(before.switch, record);
    w.input(manifests(&docs(), "t0"));
    w.input(bridge());
    w.advance(ms(10));
    assert_eq!(w.steps_since(0), ["status", "connect", "read-switch", "flow-restore", "status", "status"]);
    let first = &w.realizations[0].1;
    assert!(first.rules.is_none(), "the first realization comes before any compile");
    assert_eq!(w.statuses_since(0)[1].1.flows, counts, "the flows counted from the switch");
    assert!(w.statuses_since(0)[1].1.realized);
    // The compile follows in a pass of its own, which finds nothing to send.
    assert!(w.agent.compiler.is_some());
    assert_eq!(w.realizations.len(), 2);
    assert!(w.realizations[1].1.rules.is_some() && w.realizations[1].1.flow_mods == 0);
    assert_eq!(w.switch.flows, flows);
    w.advance(Duration::from_secs(10));
    assert!(records_since(&w, 0).is_empty(), "the same inputs and flows are not recorded again");
}

#[test]
fn a_switch_that_lost_a_recorded_flow_gets_it_back_in_the_first_pass() {
    let (before, record) = recorded(&docs());
    let flows = before.switch.flows.clone();
    let mut switch = before.switch;
    let victim = switch.flows.iter().nth(switch.flows.len() / 3).unwrap().clone();
    switch.flows.remove(&key(&victim));
    let mut w = World::restarted(switch, record);
    w.input(manifests(&docs(), "t0"));
    w.input(bridge());
    w.advance(ms(10));
    let bundles = w.bundles_since(0);
    assert_eq!(bundles.len(), 1);
    assert_eq!(bundles[0].iter().map(|m| (m.command, &m.flow)).collect::<Vec<_>>(), [(FlowModCommand::Add, &victim)]);
    assert!(w.realizations[0].1.rules.is_some(), "compiled in the first pass");
    assert_eq!(w.switch.flows, flows);
}

#[test]
fn a_restarted_ovs_vswitchd_with_no_flows_is_never_taken_for_the_recorded_one() {
    let (before, record) = recorded(&docs());
    let mut w = World::restarted(Switch::fixed(), record);
    w.input(manifests(&docs(), "t0"));
    w.input(bridge());
    w.advance(ms(10));
    assert_eq!(w.switch.flows, before.switch.flows);
    assert_eq!(w.realizations[0].1.flow_mods, before.switch.flows.len());
}

#[test]
fn a_manifest_changed_while_the_agent_was_down_is_compiled_and_realized_in_the_first_pass() {
    let (before, record) = recorded(BASE);
    let mut w = World::restarted(before.switch, record);
    w.input(manifests(&docs(), "t1"));
    w.input(bridge());
    w.advance(ms(10));
    assert!(w.realizations[0].1.rules.is_some() && w.realizations[0].1.flow_mods > 0);
    assert_eq!(w.switch.flows, flows_of(&docs()));
    assert_eq!(w.status().source_token.as_deref(), Some("t1"));
}

#[test]
fn a_pod_moved_while_the_agent_was_down_is_not_taken_for_the_recorded_topology() {
    let (before, record) = recorded(&docs());
    let mut w = World::restarted(before.switch, record);
    w.input(manifests(&docs(), "t0"));
    w.input(Event::Interfaces(Arc::new(
        [
            interface(1, TUNNEL_PORT, 10, &[]),
            pod_port(2, "a", 7, "10.0.1.10", "02:00:0a:00:01:0a"),
            pod_port(3, "b", 2, "10.0.1.11", "02:00:0a:00:01:0b"),
        ]
        .into_iter()
        .collect(),
    )));
    w.advance(ms(10));
    assert!(w.realizations[0].1.rules.is_some(), "compiled: x/a is on another port");
    assert!(w.realizations[0].1.flow_mods > 0);
}

#[test]
fn a_record_is_written_only_after_a_quiet_second_and_owed_records_are_written_at_shutdown() {
    let mut w = World::realized(Switch::fixed(), BASE);
    // Changes every half second: never quiet, never recorded.
    for k in 0..6 {
        w.input(manifests(&format!("{BASE}{}", policy("p", 80 + k)), &format!("t{}", k + 1)));
        w.advance(ms(500));
    }
    assert!(records_since(&w, 0).is_empty());
    w.advance(RECORD_QUIET);
    let mark = w.mark();
    assert_eq!(records_since(&w, 0).len(), 1);
    assert_eq!(w.agent.record_now(), None, "nothing owed once written");

    // A change realized just before the agent stops is recorded as it stops.
    w.input(manifests(&docs(), "t9"));
    w.advance(ms(10));
    assert!(records_since(&w, mark).is_empty());
    let owed = w.agent.record_now().expect("a record owed");
    assert_ne!(owed, records_since(&w, 0)[0]);
    assert_eq!(w.agent.record_now(), None);
}

#[test]
fn an_agent_without_a_state_directory_computes_no_record() {
    let mut w = World::with_settings(Switch::fixed(), |s| s.keep_record = false);
    w.input(manifests(BASE, "t0"));
    w.input(bridge());
    w.advance(Duration::from_secs(10));
    assert!(w.status().realized);
    assert!(records_since(&w, 0).is_empty());
    assert_eq!(w.agent.record_now(), None);
}
