//! OVS's `flow-restore-wait` driven by the manager against a real ovsdb-server and
//! ovs-vswitchd: armed, cleared only once ovs-vswitchd has read the removal, armed again.
mod common;
use common::*;
use std::time::Duration;

fn stored(s: &Setup) -> String {
    vsctl(&s.sw, &["get", "Open_vSwitch", ".", "other_config"]).trim().to_string()
}

fn cfgs(s: &Setup) -> (i64, i64) {
    let get = |col: &str| vsctl(&s.sw, &["get", "Open_vSwitch", ".", col]).trim().parse::<i64>().unwrap();
    (get("next_cfg"), get("cur_cfg"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arming_sets_the_key_once_and_finishing_returns_after_ovs_vswitchd_applied_its_removal() {
    let s = setup().await;
    assert!(!s.mgr.flow_restore_wait());
    assert!(s.mgr.arm_flow_restore_wait().await.unwrap(), "the first arm writes");
    assert!(s.mgr.flow_restore_wait());
    assert_eq!(stored(&s), r#"{flow-restore-wait="true"}"#);
    let writes = s.client.transactions();
    assert!(!s.mgr.arm_flow_restore_wait().await.unwrap(), "armed already: nothing to write");
    assert_eq!(s.client.transactions(), writes);

    let (next_before, _) = cfgs(&s);
    s.mgr.finish_flow_restore(Duration::from_secs(5)).await.expect("ovs-vswitchd applies the removal");
    assert!(!s.mgr.flow_restore_wait());
    assert_eq!(stored(&s), "{}");
    let (next, cur) = cfgs(&s);
    assert_eq!(next, next_before + 1, "the removal bumped next_cfg");
    assert_eq!(cur, next, "finish returned before ovs-vswitchd applied the configuration");

    assert!(s.mgr.arm_flow_restore_wait().await.unwrap(), "armed again for the next restart");
    assert_eq!(stored(&s), r#"{flow-restore-wait="true"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_false_value_is_replaced_when_arming() {
    let s = setup().await;
    vsctl(&s.sw, &["set", "Open_vSwitch", ".", "other_config:flow-restore-wait=false"]);
    assert!(s.mgr.arm_flow_restore_wait().await.unwrap());
    assert_eq!(stored(&s), r#"{flow-restore-wait="true"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finishing_without_a_running_ovs_vswitchd_removes_the_key_but_reports_that_nobody_applied_it() {
    let s = setup().await;
    s.mgr.arm_flow_restore_wait().await.unwrap();
    assert!(s.sw.ovs.kill("ovs-vswitchd"));
    let t0 = std::time::Instant::now();
    let err = s.mgr.finish_flow_restore(Duration::from_millis(500)).await.unwrap_err();
    assert!(matches!(err, ovsdb::Error::Timeout(_)), "{err}");
    assert!(t0.elapsed() >= Duration::from_millis(500));
    assert_eq!(stored(&s), "{}");
}

/// Whether ovs-vswitchd runs its datapath threads: `upcall/show` lists revalidators (`N:
/// (keys K)`) only once it handles packets, i.e. not while it waits for flow restore.
fn forwarding(s: &Setup) -> bool {
    s.sw.ovs.appctl(&["upcall/show"]).unwrap_or_else(|e| panic!("{e}")).contains("(keys ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_ovs_vswitchd_waits_until_finish_and_rearming_does_not_stop_it() {
    let mut s = setup().await;
    s.mgr.ensure_bridge(&bridge_spec("br-int")).await.unwrap();
    wait_mgmt(&s.sw, "br-int");
    assert!(forwarding(&s), "an ovs-vswitchd started without the key forwards");
    s.mgr.arm_flow_restore_wait().await.unwrap();
    assert!(forwarding(&s), "arming does not stop a running ovs-vswitchd");
    for round in 0..2 {
        assert!(s.sw.ovs.kill("ovs-vswitchd"));
        s.sw.ovs.restart_missing().unwrap();
        wait_mgmt(&s.sw, "br-int");
        // Its management socket works while it waits, for the controller to restore flows.
        s.sw.ovs.ofctl("add-flow", "br-int", &["priority=1,actions=drop"]).unwrap();
        assert!(!forwarding(&s), "round {round}: a restarted ovs-vswitchd must wait for the restore");
        s.mgr.finish_flow_restore(Duration::from_secs(5)).await.unwrap();
        assert!(forwarding(&s), "round {round}: forwarding once finish returned");
        s.mgr.arm_flow_restore_wait().await.unwrap();
        assert!(forwarding(&s), "round {round}: re-arming does not stop it");
    }
}
