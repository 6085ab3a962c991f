//! The probe engine and the spoofing helper against real pods. There is no agent here: the
//! tests install test-only flows with ovs-ofctl (never NORMAL), so the expected verdicts are
//! known exactly.
mod common;
use common::*;
use policy::Protocol;
use std::time::{Duration, Instant};
use testbed::Testbed;
use testbed::probe::{self, ProbeResult};

fn no_progress(_: &str) {}

fn ofport(tb: &Testbed, pod: &str) -> String {
    let p = tb.pod(pod).unwrap();
    let sw = tb.switch(&p.node).unwrap();
    sw.vsctl(&["get", "Interface", p.interface.as_deref().unwrap(), "ofport"]).unwrap().trim().to_string()
}

fn add_flows(tb: &Testbed, node: &str, flows: &[String]) {
    let sw = tb.switch(node).unwrap();
    for f in flows {
        sw.ofctl("add-flow", "br-int", &[f]).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
}

fn verdict(results: &[ProbeResult], from: &str, to: &str, protocol: Protocol) -> Vec<bool> {
    results.iter().filter(|r| r.from == from && r.to == to && r.protocol == protocol).map(|r| r.allowed).collect()
}

#[test]
fn probes_see_exactly_the_pairs_the_flows_connect_on_every_protocol() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path(), "namespaces: {x: {}}\npods: {a: {}, b: {}, c: {}}\nports: [80, 81]\nprotocols: [TCP, UDP, SCTP]\n");
    let opts = options('s', tmp.path(), model, 1, None);
    let tb = Running::up(&opts);
    let (a, b) = (ofport(&tb, "x/a"), ofport(&tb, "x/b"));
    // Test-only wiring: a and b are patched together; c is connected to nothing.
    add_flows(&tb, "node-1", &[format!("in_port={a},actions=output:{b}"), format!("in_port={b},actions=output:{a}")]);

    let specs = probe::matrix(&tb, &[80, 81], &[Protocol::Tcp, Protocol::Udp, Protocol::Sctp]);
    assert_eq!(specs.len(), 3 * 3 * 2 * 3);
    let results = probe::probe_all(&tb, &specs).expect("probes run");
    assert_eq!(results.len(), specs.len());
    for protocol in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
        assert_eq!(verdict(&results, "x/a", "x/b", protocol), [true, true], "{protocol} a->b");
        assert_eq!(verdict(&results, "x/b", "x/a", protocol), [true, true], "{protocol} b->a");
        assert_eq!(verdict(&results, "x/c", "x/c", protocol), [true, true], "{protocol} c->c (loopback)");
        for (from, to) in [("x/a", "x/c"), ("x/c", "x/a"), ("x/b", "x/c"), ("x/c", "x/b")] {
            assert_eq!(verdict(&results, from, to, protocol), [false, false], "{protocol} {from}->{to}");
        }
    }
    testbed::down(&opts.dir, &mut no_progress).unwrap();
}

#[test]
fn a_port_the_server_does_not_serve_is_not_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path(), "namespaces: {x: {}}\npods: {a: {}, b: {}}\nports: [80]\nprotocols: [TCP, UDP, SCTP]\n");
    let opts = options('n', tmp.path(), model, 1, None);
    let tb = Running::up(&opts);
    let (a, b) = (ofport(&tb, "x/a"), ofport(&tb, "x/b"));
    add_flows(&tb, "node-1", &[format!("in_port={a},actions=output:{b}"), format!("in_port={b},actions=output:{a}")]);
    let specs = probe::matrix(&tb, &[80, 82], &[Protocol::Tcp, Protocol::Udp, Protocol::Sctp]);
    let results = probe::probe_all(&tb, &specs).unwrap();
    for protocol in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
        assert_eq!(verdict(&results, "x/a", "x/b", protocol), [true, false], "{protocol}: 80 served, 82 not");
    }
    testbed::down(&opts.dir, &mut no_progress).unwrap();
}

#[test]
fn the_standard_matrix_of_486_probes_finishes_in_under_20_seconds_even_when_all_time_out() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options('m', tmp.path(), standard_model(), 2, None);
    let tb = Running::up(&opts);
    let specs = probe::matrix(&tb, &[80, 81], &[Protocol::Tcp, Protocol::Udp, Protocol::Sctp]);
    assert_eq!(specs.len(), 9 * 9 * 2 * 3);
    let start = Instant::now();
    let results = probe::probe_all(&tb, &specs).unwrap();
    let elapsed = start.elapsed();
    // No agent, secure br-int: only a pod's probes to itself (over lo) get through.
    for r in &results {
        assert_eq!(r.allowed, r.from == r.to, "{r:?}");
    }
    eprintln!("486 probes, {} blocked, in {:.1} s", results.iter().filter(|r| !r.allowed).count(), elapsed.as_secs_f64());
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    testbed::down(&opts.dir, &mut no_progress).unwrap();
}

/// Test-only forwarding across the GENEVE tunnel for one pod per node: an ARP responder for
/// the gateway, pod -> tunnel (ofport 100) with tun_dst, tunnel -> pod.
fn wire_across_nodes(tb: &Testbed) {
    for node in tb.nodes() {
        let sw = tb.switch(&node.name).unwrap();
        sw.vsctl(&[
            "--may-exist", "add-port", "br-int", "tun0", "--", "set", "interface", "tun0", "type=geneve",
            "options:remote_ip=flow", "options:key=flow", "ofport_request=100",
        ])
        .unwrap();
        let gw = node.gateway;
        let gw_mac = testbed::layout::mac_for(gw);
        let mut flows = vec![format!(
            "priority=300,arp,arp_op=1,arp_tpa={gw},actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],\
             set_field:{gw_mac}->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],\
             set_field:{gw_mac}->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:{gw}->arp_spa,IN_PORT"
        )];
        for pod in tb.pods().iter().filter(|p| p.node == node.name) {
            let port = ofport(tb, &pod.key());
            flows.push(format!(
                "priority=200,ip,in_port=100,nw_dst={},actions=set_field:{gw_mac}->eth_src,set_field:{}->eth_dst,output:{port}",
                pod.ip, pod.mac
            ));
            for other in tb.nodes().iter().filter(|o| o.name != node.name) {
                flows.push(format!(
                    "priority=200,ip,in_port={port},nw_dst={},actions=set_field:{gw_mac}->eth_src,\
                     set_field:aa:bb:cc:dd:ee:ff->eth_dst,set_field:{}->tun_dst,output:100",
                    other.pod_cidr, other.underlay_ip
                ));
            }
        }
        add_flows(tb, &node.name, &flows);
    }
}

#[test]
fn cross_node_traffic_crosses_the_underlay_tunnel_and_the_spoofing_helper_sees_a_guard() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(
        tmp.path(),
        "namespaces: {x: {}}\npods: {a: {}, b: {}}\nports: [80]\nprotocols: [TCP, UDP, SCTP]\nplacement: {x/a: node-1, x/b: node-2}\n",
    );
    let opts = options('c', tmp.path(), model, 2, None);
    let tb = Running::up(&opts);
    wire_across_nodes(&tb);

    let specs = probe::matrix(&tb, &[80], &[Protocol::Tcp, Protocol::Udp, Protocol::Sctp]);
    let results = probe::probe_all(&tb, &specs).unwrap();
    assert!(results.iter().all(|r| r.allowed), "{results:?}");

    // A bulk transfer near the MTU works too (offload off, MTU 1450 fits the tunnel).
    let b_ip = tb.pod("x/b").unwrap().ip.to_string();
    sh(&["ip", "netns", "exec", &tb.pod("x/a").unwrap().netns, "ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1422", &b_ip]);

    let forged_ip = testbed::spoof::Forgery { src_ip: Some("10.244.1.99".parse().unwrap()), src_mac: None };
    let t = Duration::from_secs(1);
    let open = testbed::spoof::check(&tb, "x/a", "x/b", 80, forged_ip, t).unwrap();
    assert!(open.control_delivered && open.forged_delivered, "no guard yet: {open:?}");

    // A test-only guard on node-1: what pod a sends from its own IP and MAC goes on to table 1
    // (which forwards it to the tunnel), everything else it sends is dropped.
    let a = tb.pod("x/a").unwrap();
    let port = ofport(&tb, "x/a");
    let (n1, n2) = (tb.node("node-1").unwrap(), tb.node("node-2").unwrap());
    add_flows(&tb, "node-1", &[
        format!("priority=400,ip,in_port={port},nw_src={},dl_src={},actions=goto_table:1", a.ip, a.mac),
        format!("priority=390,ip,in_port={port},actions=drop"),
        format!(
            "table=1,priority=200,ip,in_port={port},nw_dst={},actions=set_field:{}->eth_src,\
             set_field:aa:bb:cc:dd:ee:ff->eth_dst,set_field:{}->tun_dst,output:100",
            n2.pod_cidr,
            testbed::layout::mac_for(n1.gateway),
            n2.underlay_ip
        ),
    ]);
    let guarded = testbed::spoof::check(&tb, "x/a", "x/b", 80, forged_ip, t).unwrap();
    assert_eq!(guarded, testbed::spoof::SpoofOutcome { control_delivered: true, forged_delivered: false });
    let forged_mac = testbed::spoof::Forgery { src_ip: None, src_mac: testbed::spoof::parse_mac("02:00:00:00:00:99") };
    let guarded = testbed::spoof::check(&tb, "x/a", "x/b", 80, forged_mac, t).unwrap();
    assert_eq!(guarded, testbed::spoof::SpoofOutcome { control_delivered: true, forged_delivered: false });
    testbed::down(&opts.dir, &mut no_progress).unwrap();
}
