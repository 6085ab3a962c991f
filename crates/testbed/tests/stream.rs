//! The long-running TCP transfer helper: it keeps going across a forwarding outage and reports
//! the outage as its longest stall.
mod common;
use common::*;
use std::time::Duration;
use testbed::stream::Stream;

fn no_progress(_: &str) {}

#[test]
fn a_stream_survives_a_forwarding_outage_and_reports_it_as_a_stall() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path(), "namespaces: {x: {}}\npods: {a: {}, b: {}}\nports: [80]\nprotocols: [TCP]\n");
    let opts = options('t', tmp.path(), model, 1, None);
    let tb = Running::up(&opts);
    let sw = tb.switch("node-1").unwrap();
    let port = |pod: &str| {
        sw.vsctl(&["get", "Interface", tb.pod(pod).unwrap().interface.as_deref().unwrap(), "ofport"]).unwrap().trim().to_string()
    };
    let (a, b) = (port("x/a"), port("x/b"));
    let patch = [format!("in_port={a},actions=output:{b}"), format!("in_port={b},actions=output:{a}")];
    for f in &patch {
        sw.ofctl("add-flow", "br-int", &[f]).unwrap();
    }

    assert!(Stream::start(&tb, "x/a", "x/b", 81, Duration::from_millis(500)).is_err(), "nothing serves port 81");
    let stream = Stream::start(&tb, "x/a", "x/b", 80, Duration::from_secs(2)).expect("connects");
    std::thread::sleep(Duration::from_millis(500));
    let before = stream.report();
    assert!(before.round_trips > 10 && before.error.is_none(), "{before:?}");
    assert!(before.max_stall < Duration::from_millis(500), "{before:?}");

    sw.ofctl("del-flows", "br-int", &[]).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    for f in &patch {
        sw.ofctl("add-flow", "br-int", &[f]).unwrap();
    }
    let at_restore = stream.report().round_trips;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stream.report().round_trips < at_restore + 10 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let after = stream.stop();
    assert!(after.error.is_none(), "{after:?}");
    assert!(after.round_trips >= at_restore + 10, "it resumed: {after:?}");
    assert!(after.max_stall >= Duration::from_millis(1400), "the outage shows: {after:?}");
    testbed::down(&opts.dir, &mut no_progress).unwrap();
}
