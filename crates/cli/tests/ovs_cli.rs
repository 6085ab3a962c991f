//! `weir ovs` end to end against a real ovsdb-server + ovs-vswitchd in a namespace.
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use testbed::TestSwitch;

fn weir(sw: &TestSwitch, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["ovs", "--db", &format!("unix:{}", sw.ovs.db_socket().display())])
        .args(args)
        .output()
        .unwrap()
}

fn ok(sw: &TestSwitch, args: &[&str]) -> String {
    let out = weir(sw, args);
    assert!(out.status.success(), "weir ovs {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Kills the `weir ovs monitor` child (by its pid) even when an assertion fails, since it
/// would otherwise keep reconnecting to the stopped server.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn ovs_subcommands_create_show_monitor_and_delete() {
    let sw = TestSwitch::start().unwrap();
    let bridge =
        ["ensure-bridge", "br-int", "--datapath", "netdev", "--table", "0=Classifier", "--table", "1=SpoofGuard"];
    assert_eq!(ok(&sw, &bridge), "bridge br-int: created\n");
    assert_eq!(ok(&sw, &bridge), "bridge br-int: unchanged\n");

    let db = format!("unix:{}", sw.ovs.db_socket().display());
    let mut monitor = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["ovs", "--db", &db, "monitor"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(monitor.0.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!((first["change"].as_str(), first["name"].as_str()), (Some("initial"), Some("br-int")));

    let vx = ["add-port", "vx0", "--type", "vxlan", "remote_ip=10.0.0.2", "key=flow", "external_ids:k8s.pod=ns/a"];
    assert_eq!(ok(&sw, &vx), "port vx0: created\n");
    assert_eq!(ok(&sw, &vx), "port vx0: unchanged\n");
    let gre = ["add-port", "gre0", "--type", "gre", "remote_ip=10.0.0.3", "key=7"];
    assert_eq!(ok(&sw, &gre), "port gre0: created\n");

    let inserted = lines
        .by_ref()
        .map(|l| serde_json::from_str::<serde_json::Value>(&l.unwrap()).unwrap())
        .find(|v| v["change"] == "insert" && v["name"] == "vx0")
        .unwrap();
    assert_eq!(inserted["row"]["external_ids"]["k8s.pod"], "ns/a");
    assert_eq!(inserted["row"]["options"]["remote_ip"], "10.0.0.2");

    let same =
        testbed::ovs::wait_until(Duration::from_secs(5), || ok(&sw, &["show"]) == sw.ovs.vsctl(&["show"]).unwrap());
    assert!(same.is_ok(), "weir:\n{}\novs-vsctl:\n{}", ok(&sw, &["show"]), sw.ovs.vsctl(&["show"]).unwrap());

    let bad = weir(&sw, &["add-port", "bad0", "--type", "vxlan", "remote_ip=10.0.0.300"]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("port \"bad0\": field `remote_ip`"), "{stderr}");

    assert_eq!(ok(&sw, &["del-port", "vx0"]), "port vx0: deleted\n");
    assert_eq!(ok(&sw, &["del-port", "vx0"]), "port vx0: absent\n");
    let deleted = lines
        .by_ref()
        .map(|l| serde_json::from_str::<serde_json::Value>(&l.unwrap()).unwrap())
        .find(|v| v["name"] == "vx0" && v["change"] == "delete");
    assert!(deleted.is_some());
    assert_eq!(sw.ovs.vsctl(&["list-ports", "br-int"]).unwrap().trim(), "gre0");
    drop(monitor);
}
