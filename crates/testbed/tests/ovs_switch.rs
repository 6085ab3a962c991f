use testbed::TestSwitch;

#[test]
fn test_switch_starts_a_bridge_and_cleans_up_after_itself() {
    let (ns, pid_db, pid_vs, dir);
    {
        let sw = TestSwitch::with_bridge().expect("switch starts");
        ns = sw.netns.name().to_string();
        dir = sw.ovs.dir().to_path_buf();
        pid_db = sw.ovs.pid("ovsdb-server").expect("ovsdb-server runs");
        pid_vs = sw.ovs.pid("ovs-vswitchd").expect("ovs-vswitchd runs");
        let show = sw.ovs.ofctl("show", "br-int", &[]).expect("ofctl show");
        assert!(show.contains("OFPT_FEATURES_REPLY (OF1.5)"), "{show}");
    }
    assert!(!testbed::Netns::exists(&ns), "namespace {ns} removed");
    assert!(!dir.exists(), "state dir removed");
    for pid in [pid_db, pid_vs] {
        assert!(!testbed::ovs::process_alive(pid), "pid {pid} gone");
    }
}
