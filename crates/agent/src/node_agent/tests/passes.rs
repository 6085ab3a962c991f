//! When a realization pass runs and what it does: nothing before both inputs arrived, one pass
//! for a burst of changes, its steps in order, and what it reports to the metrics.

use super::*;

// ---------------------------------------------------------------- starting

#[test]
fn nothing_is_realized_before_both_the_manifests_and_the_interfaces_arrived() {
    let mut w = World::new(Switch::fixed());
    assert_eq!(w.steps_since(0), ["status"], "a starting agent writes its status at once");
    w.input(manifests(&format!("{BASE}{}", policy("p", 80)), "t1"));
    w.advance(Duration::from_secs(10));
    assert!(!w.steps_since(0).contains(&"connect"), "manifests alone realize nothing: {:?}", w.steps_since(0));
    assert!(!w.status().realized);
    assert_eq!(w.status().last_error.as_deref(), Some("not realized yet: waiting for the manifests and the bridge's interfaces"));

    let mark = w.mark();
    w.input(bridge());
    w.advance(COALESCE - ms(1));
    assert!(w.steps_since(mark).is_empty(), "the coalescing pause first");
    w.advance(ms(1));
    assert_eq!(w.steps_since(mark), ["connect", "read-switch", "bundle", "flow-restore", "status"]);
    assert!(w.status().realized);
    assert_eq!(w.status().source_token.as_deref(), Some("t1"));
    assert_eq!(w.status().generation, 1);
    assert_eq!(w.status().local_pods, 2);
    assert_eq!(w.status().objects["Pod"], 3);
    assert_eq!(w.status().flows.values().sum::<usize>(), w.switch.flows.len());
}

#[test]
fn interfaces_alone_realize_nothing_either() {
    let mut w = World::new(Switch::fixed());
    w.input(bridge());
    w.advance(Duration::from_secs(10));
    assert!(!w.steps_since(0).contains(&"connect"), "{:?}", w.steps_since(0));
    w.input(manifests(BASE, "t1"));
    w.advance(COALESCE);
    assert_eq!(w.status().source_token.as_deref(), Some("t1"));
}

#[test]
fn flow_restore_wait_is_cleared_only_after_the_flows_are_installed_and_once_per_connection() {
    let mut w = World::realized(Switch::fixed(), BASE);
    let first = w.steps_since(0);
    let bundle = first.iter().position(|s| *s == "bundle").unwrap();
    let restore = first.iter().position(|s| *s == "flow-restore").unwrap();
    assert!(bundle < restore, "{first:?}");

    let mark = w.mark();
    w.input(manifests(&format!("{BASE}{}", policy("p", 80)), "t1"));
    w.advance(ms(10));
    assert_eq!(w.steps_since(mark), ["bundle", "status"], "a later change on the same connection");

    let mark = w.mark();
    w.lose_connection("the switch sent nothing for 3.0 s, not even an echo reply");
    w.advance(ms(10));
    assert_eq!(w.times_of(mark, "flow-restore").len(), 1, "again on the new connection: {:?}", w.steps_since(mark));
}

// ---------------------------------------------------------------- coalescing

#[test]
fn a_burst_of_snapshots_is_coalesced_into_one_bundle() {
    let mut w = World::realized(Switch::fixed(), BASE);
    let mark = w.mark();
    let t0 = w.elapsed();
    let mut docs = BASE.to_string();
    for i in 0..4 {
        docs.push_str(&policy(&format!("p{i}"), 80 + i));
        w.input(manifests(&docs, &format!("t{i}")));
        w.advance(ms(1));
    }
    w.advance(ms(100));
    assert_eq!(w.times_of(mark, "bundle"), [t0 + COALESCE], "one bundle, one pause after the first snapshot");
    assert_eq!(w.switch.flows, flows_of(&docs), "the switch holds the last snapshot's flows");
    assert_eq!(w.status().source_token.as_deref(), Some("t3"));
    assert_eq!(w.status().generation, 2);
}

#[test]
fn a_snapshot_that_changes_nothing_sends_no_bundle_but_reports_its_token() {
    let mut w = World::realized(Switch::fixed(), BASE);
    let mark = w.mark();
    w.input(manifests(BASE, "t1"));
    w.advance(ms(10));
    assert_eq!(w.steps_since(mark), ["status"]);
    assert_eq!(w.status().source_token.as_deref(), Some("t1"));
    assert_eq!(w.status().last_flow_mods, 0);
    assert_eq!(w.status().generation, 1, "no new generation without a change");
}

#[test]
fn a_change_that_arrives_during_a_bundle_is_realized_right_after_it() {
    let mut w = World::realized(Switch::fixed(), BASE);
    let mark = w.mark();
    w.hold_bundles = true;
    let one = format!("{BASE}{}", policy("p1", 81));
    w.input(manifests(&one, "t1"));
    w.advance(ms(10));
    assert_eq!(w.steps_since(mark), ["bundle"], "the bundle is outstanding");
    let two = format!("{one}{}", policy("p2", 82));
    w.input(manifests(&two, "t2"));
    w.advance(ms(100));
    assert_eq!(w.steps_since(mark), ["bundle"], "nothing else while the bundle is outstanding (heartbeats aside)");

    w.answer_held_bundle();
    assert_eq!(w.status().source_token.as_deref(), Some("t1"), "the pass that sent the bundle reports its own token");
    w.advance(ms(10));
    assert_eq!(w.bundles_since(mark).len(), 2);
    assert_eq!(w.status().source_token.as_deref(), Some("t2"));
    assert_eq!(w.switch.flows, flows_of(&two));
}

// ---------------------------------------------------------------- realization reports (metrics)

#[test]
fn a_realization_reports_when_its_snapshot_arrived_and_when_the_switch_acknowledged_it() {
    let mut w = World::realized(Switch::fixed(), BASE);
    let (mark, t0) = (w.realizations.len(), w.elapsed());
    w.input(manifests(&format!("{BASE}{}", policy("p", 80)), "t1"));
    w.advance(ms(10));
    let (at, r) = &w.realizations[mark];
    assert_eq!(r.input_at, Some(w.start + t0));
    assert_eq!(r.acked_at, w.start + t0 + COALESCE, "acknowledged at the bundle's answer");
    assert_eq!(*at, t0 + COALESCE);
    let rules = r.rules.as_ref().expect("flows were sent: the rules are reported");
    let names: Vec<String> = rules.values().flat_map(|c| c.rules.iter().map(|i| i.origin.to_string())).collect();
    assert_eq!(names, ["NetworkPolicy x/p ingress[0]"]);

    // A snapshot that changes nothing is realized too, and reports no rules.
    w.input(manifests(&format!("{BASE}{}", policy("p", 80)), "t2"));
    w.advance(ms(10));
    let r = &w.realizations.last().unwrap().1;
    assert_eq!((r.flow_mods, r.rules.is_none()), (0, true));
}

#[test]
fn a_snapshot_whose_bundle_failed_counts_from_its_arrival_to_the_retry_that_realized_it() {
    let mut w = World::realized(Switch::fixed(), BASE);
    w.switch.reject_bundles = 1;
    let (mark, t0) = (w.realizations.len(), w.elapsed());
    w.input(manifests(&format!("{BASE}{}", policy("p", 80)), "t1"));
    w.advance(Duration::from_secs(1));
    assert_eq!(w.realizations.len(), mark + 1, "one realization, by the retry");
    let r = &w.realizations[mark].1;
    assert_eq!(r.input_at, Some(w.start + t0));
    assert_eq!(r.acked_at - w.start, t0 + COALESCE + BACKOFF[0] + COALESCE);
}

// ---------------------------------------------------------------- TrafficControl ports

#[test]
fn traffic_control_ports_are_ensured_before_the_flows_that_use_them() {
    let mirror = "---\napiVersion: crd.antrea.io/v1alpha2\nkind: TrafficControl\nmetadata: {name: mirror-x-a}\n\
                  spec:\n  appliedTo:\n    podSelector: {matchLabels: {app: a}}\n  direction: Egress\n  action: Mirror\n  \
                  targetPort: {ovsInternal: {name: tap0}}\n";
    let mut w = World::new(Switch::fixed());
    w.input(manifests(&format!("{BASE}{mirror}"), "t0"));
    w.input(bridge());
    w.advance(ms(10));
    assert_eq!(w.steps_since(0)[1..], ["tc-ports", "connect", "read-switch", "bundle", "flow-restore", "status"]);
    assert!(matches!(&w.log[1].1, Done::TcPorts(names) if names == &["tap0"]));
    let report = &w.status().traffic_controls["mirror-x-a"];
    assert!(report.realized, "{report:?}");
    assert_eq!(report.pods, ["x/a"]);

    // Without TrafficControls and without weir's ports on the bridge, OVSDB is not asked.
    let w = World::realized(Switch::fixed(), BASE);
    assert!(!w.steps_since(0).contains(&"tc-ports"));
}
