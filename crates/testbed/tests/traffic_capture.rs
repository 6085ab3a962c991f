//! The TrafficControl helpers against real OVS, without an agent: test-only ports and flows
//! installed with ovs-vsctl/ovs-ofctl stand in for what the agent would do, so the collector's
//! decoders meet OVS's own tunnel encapsulations, and the capture and the inline firewall see
//! exactly the frames the flows send them.
mod common;
use common::*;
use policy::Protocol;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;
use testbed::Testbed;
use testbed::capture::{self, Capture, Direction};
use testbed::collector::Collector;
use testbed::encap::{Encap, UdpPorts};
use testbed::firewall::Firewall;
use testbed::spoof::{parse_mac, udp_frame};

/// Two pods on node 1 (node 2 hosts the collector).
const MODEL: &str = "namespaces: {x: {}}\npods: {a: {}, b: {}}\nports: [80, 81]\nprotocols: [TCP, UDP]\n\
                     placement: {x/a: node-1, x/b: node-1}\n";

fn ofport(tb: &Testbed, node: &str, iface: &str) -> u32 {
    let sw = tb.switch(node).unwrap();
    let text = sw.vsctl(&["get", "Interface", iface, "ofport"]).unwrap();
    text.trim().parse().unwrap_or_else(|_| panic!("ofport of {iface}: {text}"))
}

fn pod_port(tb: &Testbed, pod: &str) -> u32 {
    let p = tb.pod(pod).unwrap();
    ofport(tb, &p.node, p.interface.as_deref().unwrap())
}

fn add_flows(tb: &Testbed, node: &str, flows: &[String]) {
    let sw = tb.switch(node).unwrap();
    for f in flows {
        sw.ofctl("add-flow", "br-int", &[f]).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
}

/// A UDP frame from pod `from` to pod `to` carrying `marker`, as its eth0 would send it.
fn frame(tb: &Testbed, from: &str, to: &str, port: u16, marker: &[u8]) -> Vec<u8> {
    let (a, b) = (tb.pod(from).unwrap(), tb.pod(to).unwrap());
    udp_frame(
        parse_mac(&b.mac).unwrap(),
        parse_mac(&a.mac).unwrap(),
        SocketAddrV4::new(a.ip, 40000),
        SocketAddrV4::new(b.ip, port),
        marker,
    )
}

fn send(tb: &Testbed, from: &str, frames: &[Vec<u8>]) {
    capture::inject(&tb.pod(from).unwrap().netns, "eth0", frames).unwrap();
}

fn up(letter: char, tmp: &std::path::Path) -> Running {
    let model = write_model(tmp, MODEL);
    Running::up(&options(letter, tmp, model, 2, None))
}

#[test]
fn the_collector_decodes_ovs_vxlan_geneve_gre_and_erspan_v1_v2_with_their_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let tb = up('c', tmp.path());
    let mut handle = Testbed::load(tb.dir()).unwrap();
    let collector = Collector::attach(&mut handle).unwrap();
    assert_eq!(collector.ip(), Ipv4Addr::new(192, 168, 77, 200));
    let remote = format!("options:remote_ip={}", collector.ip());
    let tunnels: [(&str, &[&str], Encap); 5] = [
        ("m-vxlan", &["type=vxlan", "options:key=5001"], Encap::Vxlan { vni: 5001 }),
        ("m-geneve", &["type=geneve", "options:key=5002"], Encap::Geneve { vni: 5002 }),
        ("m-gre", &["type=gre", "options:key=7"], Encap::Gre { key: Some(7) }),
        (
            "m-ers1",
            &["type=erspan", "options:key=9", "options:erspan_ver=1", "options:erspan_idx=3"],
            Encap::ErspanV1 { session_id: 9, index: 3 },
        ),
        (
            "m-ers2",
            &["type=erspan", "options:key=10", "options:erspan_ver=2", "options:erspan_dir=1", "options:erspan_hwid=4"],
            Encap::ErspanV2 { session_id: 10, hardware_id: 4, dir: 1 },
        ),
    ];
    let sw = tb.switch("node-1").unwrap();
    for (name, options, _) in &tunnels {
        let mut args = vec!["add-port", "br-int", name, "--", "set", "interface", name, &remote];
        args.extend(options.iter());
        sw.vsctl(&args).unwrap();
    }
    let outputs: Vec<String> = tunnels.iter().map(|(n, _, _)| format!("output:{}", ofport(&tb, "node-1", n))).collect();
    add_flows(&tb, "node-1", &[format!("in_port={},actions={}", pod_port(&tb, "x/a"), outputs.join(","))]);

    let cap = collector.start(UdpPorts::default()).unwrap();
    send(&tb, "x/a", &[frame(&tb, "x/a", "x/b", 80, b"collector-marker")]);
    let got = cap.stop_after(Duration::from_millis(500)).unwrap();
    let summary = got.summary();
    for (name, _, encap) in &tunnels {
        let copies: Vec<_> = got.tunnelled.iter().filter(|e| e.encap == *encap).collect();
        assert_eq!(copies.len(), 1, "{name}: one copy with {encap}; got:\n{summary}");
        assert_eq!(copies[0].outer_src, tb.node("node-1").unwrap().underlay_ip, "{name}");
        let inner = copies[0].inner_packet().unwrap();
        assert_eq!(inner.ipv4().unwrap().udp_data(), b"collector-marker", "{name}: the mirrored frame is inside");
    }
    assert!(got.malformed.is_empty(), "{summary}");
}

#[test]
fn a_capture_on_an_internal_port_sees_what_ovs_outputs_there_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let tb = up('i', tmp.path());
    let sw = tb.switch("node-1").unwrap();
    sw.vsctl(&["add-port", "br-int", "tap0", "--", "set", "interface", "tap0", "type=internal"]).unwrap();
    let tap = ofport(&tb, "node-1", "tap0");
    add_flows(&tb, "node-1", &[format!("in_port={},actions=output:{tap}", pod_port(&tb, "x/a"))]);
    // The port starts down; the capture brings it up.
    let cap = Capture::start(&tb.node("node-1").unwrap().netns, "tap0").unwrap();
    sw.wait_interface_up("tap0").unwrap();
    send(&tb, "x/a", &[frame(&tb, "x/a", "x/b", 80, b"from-a")]);
    send(&tb, "x/b", &[frame(&tb, "x/b", "x/a", 80, b"from-b")]);
    let frames = cap.stop_after(Duration::from_millis(300)).unwrap();
    let (packets, bad) = capture::received_packets(&frames);
    assert!(bad.is_empty(), "{bad:?}");
    let data: Vec<&[u8]> = packets.iter().filter_map(|p| p.ipv4()).map(|ip| ip.udp_data()).collect();
    assert_eq!(data, [b"from-a".as_slice()], "only x/a's frame is output to tap0");
    assert!(
        frames
            .iter()
            .filter(|f| f.bytes.windows(6).any(|w| w == b"from-a"))
            .all(|f| f.direction == Direction::Received)
    );
}

#[test]
fn the_firewall_forwards_out_to_ret_and_drops_a_port_blocked_while_it_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let tb = up('w', tmp.path());
    let mut handle = Testbed::load(tb.dir()).unwrap();
    let fw = Firewall::start(&mut handle, "node-1", "fw-out", "fw-ret").unwrap();
    let sw = tb.switch("node-1").unwrap();
    sw.vsctl(&["add-port", "br-int", "fw-out", "--", "add-port", "br-int", "fw-ret"]).unwrap();
    let (out, ret, b) = (ofport(&tb, "node-1", "fw-out"), ofport(&tb, "node-1", "fw-ret"), pod_port(&tb, "x/b"));
    add_flows(
        &tb,
        "node-1",
        &[
            format!("in_port={},actions=output:{out}", pod_port(&tb, "x/a")),
            format!("in_port={ret},actions=output:{b}"),
        ],
    );
    let b_netns = tb.pod("x/b").unwrap().netns.clone();
    let arrived = |markers: &[&[u8]]| -> Vec<bool> {
        let cap = Capture::start(&b_netns, "eth0").unwrap();
        let frames: Vec<Vec<u8>> =
            markers.iter().enumerate().map(|(i, m)| frame(&tb, "x/a", "x/b", 80 + i as u16, m)).collect();
        send(&tb, "x/a", &frames);
        let (packets, _) = capture::received_packets(&cap.stop_after(Duration::from_millis(300)).unwrap());
        markers.iter().map(|m| packets.iter().filter_map(|p| p.ipv4()).any(|ip| ip.udp_data() == *m)).collect()
    };
    assert_eq!(arrived(&[b"pass-80", b"pass-81"]), [true, true], "both pass while nothing is blocked");
    fw.block(Protocol::Udp, 80);
    assert_eq!(arrived(&[b"drop-80", b"keep-81"]), [false, true], "UDP 80 is dropped once blocked");
    fw.allow_all();
    assert_eq!(arrived(&[b"again-80", b"again-81"]), [true, true], "unblocked again");
    let c = fw.settled_counters(Duration::from_millis(300), Duration::from_secs(3)).expect("counters settle");
    // Frames from x/a's own kernel may pass too; ours are 6, one of them dropped.
    assert!(c.received >= 6 && c.received < 20, "{c:?}");
    assert_eq!(c.dropped, 1, "{c:?}");
    assert_eq!(c.received, c.forwarded + c.dropped, "{c:?}");
    let dropped: Vec<_> = fw.log().into_iter().filter(|(v, _)| *v == testbed::firewall::Verdict::Dropped).collect();
    assert_eq!(dropped[0].1.ipv4().unwrap().udp_data(), b"drop-80");
}

#[test]
fn a_loop_through_the_firewall_shows_as_counters_that_never_settle() {
    let tmp = tempfile::tempdir().unwrap();
    let tb = up('l', tmp.path());
    let mut handle = Testbed::load(tb.dir()).unwrap();
    let fw = Firewall::start(&mut handle, "node-1", "fw-out", "fw-ret").unwrap();
    let sw = tb.switch("node-1").unwrap();
    sw.vsctl(&["add-port", "br-int", "fw-out", "--", "add-port", "br-int", "fw-ret"]).unwrap();
    let (out, ret) = (ofport(&tb, "node-1", "fw-out"), ofport(&tb, "node-1", "fw-ret"));
    // What a redirect without a "returned" mark would do: send returned traffic out again.
    add_flows(
        &tb,
        "node-1",
        &[
            format!("in_port={},actions=output:{out}", pod_port(&tb, "x/a")),
            format!("in_port={ret},actions=output:{out}"),
        ],
    );
    send(&tb, "x/a", &[frame(&tb, "x/a", "x/b", 80, b"loop")]);
    let moving = fw.settled_counters(Duration::from_millis(300), Duration::from_secs(2));
    assert!(moving.is_err(), "a looping frame must keep the counters moving: {moving:?}");
    assert!(moving.unwrap_err().received > 100);
}

#[test]
fn down_removes_the_collector_and_firewall_namespaces() {
    let tmp = tempfile::tempdir().unwrap();
    let tb = up('d', tmp.path());
    let mut handle = Testbed::load(tb.dir()).unwrap();
    let collector = Collector::attach(&mut handle).unwrap();
    // Attaching again repairs nothing and changes nothing.
    assert_eq!(Collector::attach(&mut handle).unwrap(), collector);
    let fw = Firewall::start(&mut handle, "node-1", "fw-out", "fw-ret").unwrap();
    let fw_netns = fw.netns().to_string();
    drop(fw);
    let prefix = handle.state().prefix.clone();
    assert!(namespaces_with(&prefix).contains(&collector.netns().to_string()));
    assert!(namespaces_with(&prefix).contains(&fw_netns));
    testbed::down(tb.dir(), &mut |_| {}).unwrap();
    assert_eq!(namespaces_with(&prefix), Vec::<String>::new());
}
