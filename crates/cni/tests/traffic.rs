//! Real packets between two pods that weir-cni attached: the wiring (veth, addresses, MTU,
//! checksum offload, OVS ports) carries ICMP and TCP. `br-int` forwards with a single NORMAL
//! flow here, so what is tested is the plugin's wiring, not weir's pipeline.
mod common;

use common::{Node, Pod, result_ip};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// Runs `f` on a thread inside namespace `netns`.
fn in_netns<R: Send + 'static>(netns: &str, f: impl FnOnce() -> R + Send + 'static) -> std::thread::JoinHandle<R> {
    let netns = netns.to_string();
    std::thread::spawn(move || {
        testbed::netns::enter_on_this_thread(&netns).expect("enter the pod namespace");
        f()
    })
}

#[test]
fn two_pods_attached_by_the_plugin_exchange_icmp_and_tcp() {
    let node = Node::start("10.244.12.0/24");
    node.sw.ovs.ofctl("add-flow", "br-int", &["priority=0,actions=NORMAL"]).expect("NORMAL flow");
    let (a, b) = (Pod::new("a"), Pod::new("b"));
    let ip_a = result_ip(&node.add("ctr-a", &a, "1.1.0").expect_ok("ADD a"));
    let ip_b = result_ip(&node.add("ctr-b", &b, "1.1.0").expect_ok("ADD b"));

    let ping = a.run("ping", &["-c", "3", "-i", "0.2", "-W", "2", &ip_b.to_string()]);
    assert!(ping.status.success(), "ping a -> b: {}", String::from_utf8_lossy(&ping.stdout));
    // A packet as large as the MTU allows, with DF set, passes whole.
    let big = b.run("ping", &["-c", "1", "-W", "2", "-M", "do", "-s", "1422", &ip_a.to_string()]);
    assert!(big.status.success(), "1450-byte ping b -> a: {}", String::from_utf8_lossy(&big.stdout));

    // TCP (checksums matter here: the userspace datapath does not fill them in).
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let listener = in_netns(b.netns.name(), move || TcpListener::bind((ip_b, 8080)).unwrap()).join().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, peer) = listener.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        (peer, got)
    });
    let sent = payload.clone();
    in_netns(a.netns.name(), move || {
        let mut s = TcpStream::connect_timeout(&SocketAddr::from((ip_b, 8080)), Duration::from_secs(5)).unwrap();
        s.write_all(&sent).unwrap();
    })
    .join()
    .unwrap();
    let (peer, got) = server.join().unwrap();
    assert_eq!(peer.ip(), std::net::IpAddr::V4(ip_a), "the pod's own address, not rewritten");
    assert_eq!(got.len(), payload.len());
    assert!(got == payload, "bytes arrive intact");

    // After DEL, b is unreachable.
    node.del("ctr-b", "1.1.0").expect_ok("DEL b");
    let ping = a.run("ping", &["-c", "1", "-W", "1", &ip_b.to_string()]);
    assert!(!ping.status.success(), "b answers after DEL");
    assert_ne!(ip_a, Ipv4Addr::UNSPECIFIED);
}
