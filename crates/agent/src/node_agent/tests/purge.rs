//! The purge of the datapath's cached flows after a change, on a switch with the known OVS bug.

use super::*;

#[test]
fn the_datapath_cache_is_purged_after_each_bundle_on_an_affected_switch() {
    let mut w = World::realized(Switch::of(Some("3.1.0"), "netdev"), BASE);
    assert_eq!(w.steps_since(0)[1..], ["connect", "read-switch", "bundle", "purge", "flow-restore", "status"]);
    let report = w.status().switch.clone().unwrap();
    assert!(report.purges_after_change);
    assert_eq!(report.ovs_version.as_deref(), Some("3.1.0"));
    assert_eq!(w.status().datapath_cache_purges, 1);

    let mark = w.mark();
    w.input(manifests(&format!("{BASE}{}", policy("p", 80)), "t1"));
    w.advance(ms(10));
    assert_eq!(w.steps_since(mark), ["bundle", "purge", "status"]);
    assert_eq!(w.status().datapath_cache_purges, 2);

    let mark = w.mark();
    w.input(manifests(&format!("{BASE}{}", policy("p", 80)), "t2"));
    w.advance(ms(10));
    assert_eq!(w.steps_since(mark), ["status"], "no change, no bundle, no purge");
    assert_eq!(w.status().datapath_cache_purges, 2);
}

#[test]
fn whether_the_datapath_cache_is_purged_depends_on_the_switch_and_the_setting() {
    let cases = [
        (Some("3.1.0"), "netdev", CachePurge::Auto, true),
        (Some("3.1.3"), "netdev", CachePurge::Auto, false),
        (Some("3.5.0"), "netdev", CachePurge::Auto, false),
        (Some("3.1.0"), "system", CachePurge::Auto, false),
        (None, "netdev", CachePurge::Auto, true),
        (Some("3.5.0"), "netdev", CachePurge::Always, true),
        (Some("3.1.0"), "netdev", CachePurge::Never, false),
    ];
    for (version, datapath, mode, purges) in cases {
        let mut w = World::with_purge(Switch::of(version, datapath), mode);
        w.input(manifests(BASE, "t0"));
        w.input(bridge());
        w.advance(ms(10));
        w.input(manifests(&format!("{BASE}{}", policy("p", 80)), "t1"));
        w.advance(ms(10));
        let n = w.times_of(0, "purge").len();
        assert_eq!(n, if purges { 2 } else { 0 }, "{version:?} {datapath} {mode:?}: {:?}", w.steps_since(0));
        assert_eq!(w.status().datapath_cache_purges, n as u64);
        assert_eq!(w.status().switch.as_ref().unwrap().purges_after_change, purges);
        assert!(w.status().realized);
    }
}

#[test]
fn a_failed_purge_stays_owed_and_is_retried() {
    let mut w = World::realized(Switch::of(Some("3.1.0"), "netdev"), BASE);
    w.switch.fail_purges = 1;
    let mark = w.mark();
    w.input(manifests(&format!("{BASE}{}", policy("p", 80)), "t1"));
    w.advance(ms(10));
    assert_eq!(w.steps_since(mark), ["bundle", "purge (failed)", "status"]);
    assert!(!w.status().realized, "a denied packet could still pass on a stale cached flow");
    assert_eq!(w.status().last_error.as_deref(), Some("purging the datapath's cached flows: ovs-appctl: connection refused"));
    assert_eq!(w.status().source_token.as_deref(), Some("t0"));

    let mark = w.mark();
    w.advance(BACKOFF[0] + COALESCE);
    assert_eq!(w.steps_since(mark), ["purge", "status"], "the purge is owed though there is nothing new to send");
    assert!(w.status().realized);
    assert_eq!(w.status().source_token.as_deref(), Some("t1"));
    assert_eq!(w.status().datapath_cache_purges, 2);
}
