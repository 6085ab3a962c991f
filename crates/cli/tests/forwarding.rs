//! Pod forwarding end to end: a 2-node testbed with weir's agents, real traffic between pod
//! namespaces, the flows installed only by weir.

mod common;

use common::Running;
use std::time::Duration;
use testbed::{Testbed, Tunnel};

fn all_probes(tb: &Testbed) -> Vec<testbed::ProbeResult> {
    let specs = testbed::probe::matrix(tb, &[80, 81], &[policy::Protocol::Tcp, policy::Protocol::Udp, policy::Protocol::Sctp]);
    testbed::probe_all(tb, &specs).unwrap()
}

fn assert_every_pod_reaches_every_pod(tb: &Testbed) {
    let results = all_probes(tb);
    assert_eq!(results.len(), 9 * 9 * 2 * 3);
    let blocked: Vec<_> = results.iter().filter(|r| !r.allowed).collect();
    assert!(blocked.is_empty(), "blocked without any policy: {blocked:#?}");
}

#[test]
fn every_pod_reaches_every_pod_on_tcp_udp_and_sctp_over_geneve_with_only_weirs_flows() {
    let r = Running::up('f', Tunnel::Geneve);
    let nodes: Vec<_> = r.tb.pods().iter().map(|p| p.node.clone()).collect();
    assert!(nodes.iter().any(|n| n == "node-1") && nodes.iter().any(|n| n == "node-2"), "pods on both nodes");
    assert_every_pod_reaches_every_pod(&r.tb);
    for node in ["node-1", "node-2"] {
        let dump = r.dump(node);
        assert!(!dump.contains("NORMAL"), "{node} uses NORMAL:\n{dump}");
        for line in dump.lines().filter(|l| l.contains("actions=")) {
            assert!(line.contains("cookie=0x57"), "{node}: a flow weir did not install: {line}");
        }
    }
}

#[test]
fn every_pod_reaches_every_pod_over_vxlan() {
    let r = Running::up('f', Tunnel::Vxlan);
    assert_every_pod_reaches_every_pod(&r.tb);
}

#[test]
fn a_pod_sending_from_a_forged_ip_or_mac_is_dropped() {
    let r = Running::up('f', Tunnel::Geneve);
    let forgeries = [
        testbed::spoof::Forgery { src_ip: Some("10.244.1.99".parse().unwrap()), src_mac: None },
        testbed::spoof::Forgery { src_ip: None, src_mac: Some([0x02, 0, 0, 0, 0, 0x99]) },
    ];
    for (to, forgery) in [("x/b", forgeries[0]), ("y/a", forgeries[0]), ("x/b", forgeries[1]), ("y/a", forgeries[1])] {
        let out = testbed::spoof::check(&r.tb, "x/a", to, 80, forgery, Duration::from_secs(1)).unwrap();
        assert!(out.control_delivered, "the real frame x/a -> {to} must arrive");
        assert!(!out.forged_delivered, "the forged frame {forgery:?} x/a -> {to} arrived");
    }
}

#[test]
fn restarting_an_agent_keeps_an_established_cross_node_stream_and_removes_stale_flows() {
    let mut r = Running::up('f', Tunnel::Geneve);
    let from = r.tb.pods().iter().find(|p| p.node == "node-1").unwrap().key();
    let to = r.tb.pods().iter().find(|p| p.node == "node-2").unwrap().key();
    let before = r.dump("node-2");
    let stream = testbed::stream::Stream::start(&r.tb, &from, &to, 80, Duration::from_secs(2)).unwrap();
    std::thread::sleep(Duration::from_millis(300));

    r.tb.stop_agent("node-2", Duration::from_secs(5)).unwrap();
    // While the agent is down, someone leaves a flow behind that weir must remove.
    let sw = r.tb.switch("node-2").unwrap();
    sw.ofctl("add-flow", "br-int", &["table=50,priority=7,ip,nw_dst=10.99.0.1,actions=drop"]).unwrap();
    r.tb.start_agent("node-2").unwrap();
    let report = r.tb.sync(Duration::from_secs(30)).unwrap();
    // The restarted agent changed the switch once (the stale flow's delete): it did not
    // realize a node without its pods or policies first.
    let (_, status) = report.iter().find(|(n, _)| n == "node-2").unwrap();
    assert_eq!(status.generation, 1, "{status:?}");
    std::thread::sleep(Duration::from_millis(300));

    let report = stream.stop();
    assert_eq!(report.error, None, "the stream broke: {report:?}");
    assert!(report.max_stall < Duration::from_millis(1500), "the stream stalled: {report:?}");
    assert!(report.round_trips > 10, "{report:?}");
    let after = r.dump("node-2");
    assert!(!after.contains("10.99.0.1"), "stale flow left:\n{after}");
    assert_eq!(sorted_lines(&before), sorted_lines(&after), "flows changed across a restart with no change");
}

fn sorted_lines(dump: &str) -> Vec<String> {
    let mut v: Vec<String> = dump.lines().filter(|l| l.contains("actions=")).map(|l| l.trim().to_string()).collect();
    v.sort();
    v
}

#[test]
fn testbed_down_leaves_no_namespace_process_veth_or_state_file() {
    let r = Running::up('f', Tunnel::Geneve);
    let dir = r.tb.dir().to_path_buf();
    let prefix = format!("{}-", r.tb.state().prefix);
    let mut pids: Vec<i32> = r.tb.nodes().iter().filter_map(|n| n.agent.as_ref().map(|a| a.pid)).collect();
    pids.extend(r.tb.pods().iter().filter_map(|p| p.server.as_ref().map(|s| s.pid)));
    for node in ["node-1", "node-2"] {
        let sw = r.tb.switch(node).unwrap();
        pids.extend(["ovsdb-server", "ovs-vswitchd"].iter().filter_map(|d| sw.pid(d)));
    }
    assert_eq!(pids.len(), 2 + 9 + 4, "agents, probe servers and OVS daemons all ran");
    let netns: Vec<String> = r.tb.nodes().iter().map(|n| n.netns.clone()).chain(r.tb.pods().iter().map(|p| p.netns.clone())).collect();
    drop(r);
    for pid in pids {
        assert!(!testbed::ovs::process_alive(pid), "pid {pid} still runs");
    }
    for ns in netns {
        assert!(!testbed::Netns::exists(&ns), "namespace {ns} left");
    }
    assert!(!dir.exists(), "state dir {} left", dir.display());
    let links = std::process::Command::new("ip").args(["-o", "link"]).output().unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(!links.contains(&prefix), "a link named {prefix}* is left in the root namespace:\n{links}");
}
