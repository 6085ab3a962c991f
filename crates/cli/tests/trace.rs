//! `weir trace` against a live node: the oracle's verdict, the switch's, and an exit code that
//! says when they disagree.
mod common;

use common::Running;
use std::process::Command;
use std::time::Duration;
use testbed::Tunnel;

/// `weir trace x/a -> x/b 80/TCP` on node-1: (exit code, output).
fn trace(r: &Running) -> (Option<i32>, String) {
    let node = r.tb.node("node-1").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("trace")
        .arg("--cluster")
        .arg(testbed::manifests::manifests_dir(node))
        .args(["--node", "node-1", "--ovs-ctl"])
        .arg(node.dir.join("ovs-vswitchd.ctl"))
        .arg("--ovsdb")
        .arg(format!("unix:{}", node.dir.join("db.sock").display()))
        .args(["x/a", "x/b", "80/TCP"])
        .output()
        .unwrap();
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn trace_exits_5_when_the_switch_and_the_oracle_disagree() {
    let mut r = Running::up('q', Tunnel::Geneve);
    let (code, text) = trace(&r);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("they agree"), "{text}");
    // With the agent stopped, someone deletes every flow: the switch drops what the oracle allows.
    r.tb.stop_agent("node-1", Duration::from_secs(5)).unwrap();
    r.tb.switch("node-1").unwrap().ofctl("del-flows", "br-int", &[]).unwrap();
    let (code, text) = trace(&r);
    assert_eq!(code, Some(5), "{text}");
    assert!(text.contains("THEY DISAGREE"), "{text}");
}
