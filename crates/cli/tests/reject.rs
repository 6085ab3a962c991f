//! Reject on real traffic: a tiered policy's Reject rule answers the client at once (a TCP
//! RST, or ICMP "administratively prohibited" for UDP), from a pod on the same node and from
//! one behind the tunnel, while what the rule does not select still connects.

mod common;

use common::Running;
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

/// Runs `f` on a thread inside the network namespace of pod `key`.
fn in_pod<T: Send + 'static>(r: &Running, key: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let netns = r.tb.pod(key).unwrap().netns.clone();
    std::thread::spawn(move || {
        testbed::netns::enter_on_this_thread(&netns).unwrap();
        f()
    })
    .join()
    .unwrap()
}

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
    let path = r.tmp.path().join("reject.yaml");
    std::fs::write(&path, text).unwrap();
    r.tb.apply(&[path], Duration::from_secs(60)).unwrap();
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
