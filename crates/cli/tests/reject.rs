//! Reject on real traffic: a tiered policy's Reject rule answers the client at once (a TCP
//! RST, or ICMP "administratively prohibited" for UDP), from a pod on the same node and from
//! one behind the tunnel, while what the rule does not select still connects.

mod common;

use common::Running;
use common::traffic::{self, apply_latency, flood, in_pod, meter_drops};
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};
use testbed::Tunnel;

/// Rejects ports 80 (TCP and UDP) of x/a from everyone; 81 stays open.
const REJECT_X_A: &str = "apiVersion: crd.antrea.io/v1beta1
kind: ClusterNetworkPolicy
metadata: {name: refuse-x-a}
spec:
  priority: 5
  tier: securityops
  appliedTo: [{podSelector: {matchLabels: {pod: a}}, namespaceSelector: {matchLabels: {ns: x}}}]
  ingress:
  - {action: Reject, name: refuse-80, from: [{namespaceSelector: {}}], ports: [{protocol: TCP, port: 80}, {protocol: UDP, port: 80}]}
";

/// The bound the issue sets on an answer.
const ANSWERED_WITHIN: Duration = Duration::from_millis(100);
/// How long a probe waits: far beyond the bound, so a dropped packet shows as a timeout.
const WAIT: Duration = Duration::from_secs(2);

/// A TCP connect from `from` to `to`: the error kind (`None`: connected) and how long it took.
fn connect(r: &Running, from: &str, to: &str, port: u16) -> (Option<ErrorKind>, Duration) {
    let addr = SocketAddr::from((r.tb.pod(to).unwrap().ip, port));
    in_pod(r, from, move || {
        let t = Instant::now();
        let kind = TcpStream::connect_timeout(&addr, WAIT).err().map(|e| e.kind());
        (kind, t.elapsed())
    })
}

/// One UDP datagram from `from` to `to`: the receive error kind (`None`: the echo came
/// back) and how long it took.
fn udp(r: &Running, from: &str, to: &str, port: u16) -> (Option<ErrorKind>, Duration) {
    let addr = SocketAddr::from((r.tb.pod(to).unwrap().ip, port));
    in_pod(r, from, move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.connect(addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let t = Instant::now();
        s.send(b"are you there").unwrap();
        let kind = s.recv(&mut [0u8; 64]).err().map(|e| e.kind());
        (kind, t.elapsed())
    })
}

fn apply(r: &Running, text: &str) {
    traffic::apply(r, "reject", text);
}

/// A client of x/a on the same node and one on the other node.
fn clients(r: &Running) -> [String; 2] {
    let node = r.tb.pod("x/a").unwrap().node.clone();
    let pick = |same: bool| {
        r.tb.pods().iter().find(|p| p.key() != "x/a" && (p.node == node) == same).map(|p| p.key()).unwrap()
    };
    [pick(true), pick(false)]
}

#[test]
fn a_rejected_tcp_connect_is_refused_within_100_ms_from_the_same_node_and_across_the_tunnel() {
    let r = Running::up('j', Tunnel::Geneve);
    apply(&r, REJECT_X_A);
    for client in clients(&r) {
        let (refused, took) = connect(&r, &client, "x/a", 80);
        assert_eq!(refused, Some(ErrorKind::ConnectionRefused), "{client} -> x/a:80 after {took:?}");
        assert!(took < ANSWERED_WITHIN, "{client} -> x/a:80 refused only after {took:?}");
        assert_eq!(connect(&r, &client, "x/a", 81).0, None, "{client} -> x/a:81 is not rejected");
    }
}

#[test]
fn a_rejected_udp_datagram_gets_an_icmp_error_within_100_ms() {
    let r = Running::up('j', Tunnel::Geneve);
    for client in clients(&r) {
        assert_eq!(udp(&r, &client, "x/a", 80).0, None, "{client} -> x/a:80/UDP echoes before the policy");
    }
    apply(&r, REJECT_X_A);
    for client in clients(&r) {
        let (error, took) = udp(&r, &client, "x/a", 80);
        assert!(
            error.is_some_and(|k| k != ErrorKind::WouldBlock && k != ErrorKind::TimedOut),
            "{client} -> x/a:80/UDP: {error:?} after {took:?}, not an ICMP error"
        );
        assert!(took < ANSWERED_WITHIN, "{client} -> x/a:80/UDP answered only after {took:?}");
        assert_eq!(udp(&r, &client, "x/a", 81).0, None, "{client} -> x/a:81/UDP is not rejected");
    }
}

#[test]
fn a_flood_of_10000_rejected_packets_per_second_is_metered_and_leaves_the_agent_responsive() {
    let r = Running::up('j', Tunnel::Geneve);
    apply(&r, REJECT_X_A);
    let node = r.tb.pod("x/a").unwrap().node.clone();
    let quiet: Vec<Duration> = (0..3).map(|i| apply_latency(&r, &format!("quiet-{i}"))).collect();
    let flooding = {
        let from = clients(&r)[0].clone();
        let r = &r;
        std::thread::scope(|scope| {
            let flooder = scope.spawn(move || flood(r, &from, "x/a", 80, 10_000, Duration::from_secs(4), 1));
            std::thread::sleep(Duration::from_millis(500));
            let during: Vec<Duration> = (0..3).map(|i| apply_latency(r, &format!("flood-{i}"))).collect();
            let sent = flooder.join().unwrap();
            (during, sent)
        })
    };
    let (during, sent) = flooding;
    let worst_quiet = *quiet.iter().max().unwrap();
    let worst_during = *during.iter().max().unwrap();
    let dropped = meter_drops(&r, &node, pipeline::reject::PACKET_IN_METER);
    eprintln!("flood: {sent} packets in 4 s; meter dropped {dropped}; apply latency quiet {quiet:?}, during the flood {during:?}");
    assert!(sent >= 35_000, "the flood sent only {sent} packets");
    assert!(dropped >= sent / 2, "the meter let most of the flood through to the agent: {dropped} of {sent} dropped");
    assert!(
        worst_during <= worst_quiet + Duration::from_millis(100),
        "the agent realized changes {worst_during:?} late under the flood (quiet: {worst_quiet:?})"
    );
    // After the flood, answers come at once again.
    let (refused, took) = connect(&r, &clients(&r)[0], "x/a", 80);
    assert_eq!(refused, Some(ErrorKind::ConnectionRefused), "after the flood, after {took:?}");
}
