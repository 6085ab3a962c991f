//! The host gateway (`weir-gw0`) end to end on a 2-node testbed whose pods weir-cni attached:
//! real TCP connections between pods, the nodes' own namespaces, an "external" host on the
//! underlay (the testbed's collector namespace, 192.168.77.200, outside every pod CIDR) and a
//! Service whose DNAT the test writes into a node's namespace as kube-proxy's nftables mode
//! would. Each connection's source address is read where it arrives.

mod common;

use common::Running;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use testbed::{Testbed, Tunnel};

/// How long a connection attempt may take; a dropped SYN waits out all of it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The ports of the test's own listeners (the pods' probe servers use 80 and 81); no port is
/// listened on twice in one namespace, so no listener waits for the last one's connections.
const TO_HOST_PORT: u16 = 7001;
const TO_OUTSIDE_PORT: u16 = 7002;
const TO_POD_PORT: u16 = 7003;
const TO_BACKEND_PORT: u16 = 7004;
const TO_OTHER_HOST_PORT: u16 = 7005;
/// Two Service ClusterIPs, outside every pod CIDR: one DNATed to a pod on the other node, one
/// to a pod on the client's node.
const SERVICE_REMOTE: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
const SERVICE_LOCAL: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 11);

/// Runs `f` on a thread inside the network namespace `ns`.
fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            testbed::netns::enter_on_this_thread(ns).unwrap();
            f()
        })
        .join()
        .unwrap()
    })
}

/// Whether a TCP connection from namespace `ns` to `to` is established within the timeout.
fn connects(ns: &str, to: SocketAddrV4) -> bool {
    in_netns(ns, || TcpStream::connect_timeout(&to.into(), CONNECT_TIMEOUT).is_ok())
}

/// The source address the first connection to `port` in namespace `server_ns` arrives from,
/// when `client_ns` connects to `to`; `None` if none arrives.
fn seen_from(server_ns: &str, port: u16, client_ns: &str, to: SocketAddrV4) -> Option<Ipv4Addr> {
    let listener = in_netns(server_ns, || {
        TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).unwrap_or_else(|e| panic!("bind port {port} in {server_ns}: {e}"))
    });
    listener.set_nonblocking(true).unwrap();
    let connected = connects(client_ns, to);
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        match listener.accept() {
            Ok((_, std::net::SocketAddr::V4(peer))) => return connected.then_some(*peer.ip()),
            Ok(_) => return None,
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    None
}

fn pod_ns(tb: &Testbed, key: &str) -> String {
    tb.pod(key).unwrap().netns.clone()
}

fn pod_addr(tb: &Testbed, key: &str, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(tb.pod(key).unwrap().ip, port)
}

/// Waits until both agents have put the gateway address on `weir-gw0` (the agent configures
/// the host side on its own task, after `up` saw the flows realized).
fn wait_for_gateways(tb: &Testbed) {
    for node in tb.nodes() {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let out = testbed::run(std::process::Command::new("ip").args(["-n", &node.netns, "-4", "route", "show"]));
            let route = format!("{} dev weir-gw0", node.pod_cidr);
            if out.is_ok_and(|o| o.contains(&route)) {
                break;
            }
            assert!(Instant::now() < deadline, "{}: weir-gw0 has no route to {}", node.name, node.pod_cidr);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// kube-proxy's nftables DNAT, in `node`'s namespace: each ClusterIP:80 to one backend.
fn install_service_dnat(tb: &Testbed, node: &str, services: &[(Ipv4Addr, SocketAddrV4)]) {
    let rules: String = services.iter().map(|(vip, backend)| format!("    ip daddr {vip} tcp dport 80 dnat to {backend}\n")).collect();
    let script =
        format!("table ip kube-proxy-test {{\n  chain prerouting {{\n    type nat hook prerouting priority dstnat;\n{rules}  }}\n}}\n");
    let ns = &tb.node(node).unwrap().netns;
    testbed::command::run_with_input(std::process::Command::new("ip").args(["netns", "exec", ns, "nft", "-f", "-"]), &script).unwrap();
}

fn up() -> (Running, testbed::collector::Collector) {
    let mut r = Running::up('g', Tunnel::Geneve);
    wait_for_gateways(&r.tb);
    let outside = testbed::collector::Collector::attach(&mut r.tb).unwrap();
    (r, outside)
}

#[test]
fn pods_reach_the_host_the_outside_and_services_through_the_gateway_and_the_host_reaches_pods() {
    let (r, outside) = up();
    let tb = &r.tb;
    let (n1, n2) = (tb.node("node-1").unwrap().clone(), tb.node("node-2").unwrap().clone());
    let (xa, xb, ya, zc) = (tb.pod("x/a").unwrap(), tb.pod("x/b").unwrap(), tb.pod("y/a").unwrap(), tb.pod("z/c").unwrap());
    assert_eq!((xa.node.as_str(), xb.node.as_str(), ya.node.as_str(), zc.node.as_str()), ("node-1", "node-1", "node-2", "node-2"));

    // Pod -> its node's gateway address: the host sees the pod's own address.
    let gw = SocketAddrV4::new(n1.gateway, TO_HOST_PORT);
    assert_eq!(seen_from(&n1.netns, TO_HOST_PORT, &xa.netns, gw), Some(xa.ip), "x/a -> gateway {gw}");

    // Host -> pod: a TCP "kubelet probe" from the node's namespace, to its own pod and, through
    // the gateway and the tunnel, to a pod of the other node.
    assert!(connects(&n1.netns, pod_addr(tb, "x/a", 80)), "node-1 -> x/a:80");
    assert!(connects(&n1.netns, pod_addr(tb, "y/a", 80)), "node-1 -> y/a:80 (on node-2)");

    // Pod -> another node's host: through the tunnel and that node's gateway, not masqueraded
    // (its node policy must see the pod).
    let other_host = SocketAddrV4::new(n2.underlay_ip, TO_OTHER_HOST_PORT);
    assert_eq!(seen_from(&n2.netns, TO_OTHER_HOST_PORT, &xa.netns, other_host), Some(xa.ip), "x/a -> node-2's address");

    // Pod -> outside the cluster: masqueraded to the pod's node's address.
    let ext = |port| SocketAddrV4::new(outside.ip(), port);
    let (p1, p2) = (TO_OUTSIDE_PORT, TO_OUTSIDE_PORT + 10);
    assert_eq!(seen_from(outside.netns(), p1, &xa.netns, ext(p1)), Some(n1.underlay_ip), "x/a -> outside");
    assert_eq!(seen_from(outside.netns(), p2, &zc.netns, ext(p2)), Some(n2.underlay_ip), "z/c -> outside");

    // Pod -> pod keeps its source address, across nodes and on one node.
    let to_ya = pod_addr(tb, "y/a", TO_POD_PORT);
    assert_eq!(seen_from(&ya.netns, TO_POD_PORT, &xa.netns, to_ya), Some(xa.ip), "x/a -> y/a");
    let to_xb = pod_addr(tb, "x/b", TO_POD_PORT);
    assert_eq!(seen_from(&xb.netns, TO_POD_PORT, &xa.netns, to_xb), Some(xa.ip), "x/a -> x/b");

    // Pod -> ClusterIP -> backend pod, DNATed by the host: the backend sees the client pod.
    let (ya_backend, xb_backend) = (pod_addr(tb, "y/a", TO_BACKEND_PORT), pod_addr(tb, "x/b", TO_BACKEND_PORT));
    install_service_dnat(tb, "node-1", &[(SERVICE_REMOTE, ya_backend), (SERVICE_LOCAL, xb_backend)]);
    let remote = SocketAddrV4::new(SERVICE_REMOTE, 80);
    assert_eq!(seen_from(&ya.netns, TO_BACKEND_PORT, &xa.netns, remote), Some(xa.ip), "x/a -> {remote} -> y/a");
    let local = SocketAddrV4::new(SERVICE_LOCAL, 80);
    assert_eq!(seen_from(&xb.netns, TO_BACKEND_PORT, &xa.netns, local), Some(xa.ip), "x/a -> {local} -> x/b");
}

/// Policies of the second test: y accepts connections only from node-1's own address
/// (ipBlock selects a node address); x/a may send nothing; x/b accepts nothing.
fn policies(dir: &std::path::Path, node1: Ipv4Addr) -> PathBuf {
    let path = dir.join("gateway-policies.yaml");
    let yaml = format!(
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: only-node-1, namespace: y}}
spec:
  podSelector: {{}}
  ingress:
  - from: [{{ipBlock: {{cidr: {node1}/32}}}}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: a-sends-nothing, namespace: x}}
spec:
  podSelector: {{matchLabels: {{pod: a}}}}
  policyTypes: [Egress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: b-accepts-nothing, namespace: x}}
spec:
  podSelector: {{matchLabels: {{pod: b}}}}
  policyTypes: [Ingress]
"
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn network_policy_holds_on_every_path_through_the_gateway() {
    let (r, outside) = up();
    let tb = &r.tb;
    let (n1, n2) = (tb.node("node-1").unwrap().clone(), tb.node("node-2").unwrap().clone());

    install_service_dnat(tb, "node-1", &[(SERVICE_REMOTE, pod_addr(tb, "y/a", 80)), (SERVICE_LOCAL, pod_addr(tb, "x/b", 80))]);
    let service = |vip| SocketAddrV4::new(vip, 80);
    // Every path is open before the policies.
    let (yc, zb) = (pod_ns(tb, "y/c"), pod_ns(tb, "z/b"));
    for (what, from, to) in [
        ("y/c -> Service -> y/a", &yc, service(SERVICE_REMOTE)),
        ("z/b -> Service -> x/b", &zb, service(SERVICE_LOCAL)),
        ("node-2 -> x/b", &n2.netns, pod_addr(tb, "x/b", 80)),
    ] {
        assert!(connects(from, to), "before the policies: {what}");
    }

    let reaches_outside =
        |pod: &str, port: u16| seen_from(outside.netns(), port, &pod_ns(tb, pod), SocketAddrV4::new(outside.ip(), port)).is_some();
    assert!(reaches_outside("x/a", TO_OUTSIDE_PORT), "before the policies: x/a -> outside");

    tb.apply(&[policies(r.tmp.path(), n1.underlay_ip)], Duration::from_secs(30)).unwrap();

    // A deny on the backend stops the Service path (the host's DNAT hands the backend the
    // client's own address, and the backend's policy judges that).
    assert!(!connects(&yc, service(SERVICE_REMOTE)), "y/c -> Service -> y/a (y accepts only node-1)");
    assert!(!connects(&zb, service(SERVICE_LOCAL)), "z/b -> Service -> x/b (x/b accepts nothing)");
    assert!(!connects(&yc, pod_addr(tb, "y/a", 80)), "y/c -> y/a directly");
    // ipBlock selects a node's address: node-1's host reaches y/a on node-2, node-2's host
    // reaches it as its own node (kubelet probes), and x/b (accepting nothing) still takes
    // its node's probe but not the other node's.
    assert!(connects(&n1.netns, pod_addr(tb, "y/a", 80)), "node-1 -> y/a (ipBlock node-1)");
    assert!(connects(&n2.netns, pod_addr(tb, "y/a", 80)), "node-2 -> its own y/a (kubelet probe)");
    assert!(connects(&n1.netns, pod_addr(tb, "x/b", 80)), "node-1 -> its own x/b (kubelet probe)");
    assert!(!connects(&n2.netns, pod_addr(tb, "x/b", 80)), "node-2 -> x/b (not x/b's node)");
    // Egress policy holds towards the host and the outside.
    let xa = pod_ns(tb, "x/a");
    assert!(!reaches_outside("x/a", TO_OUTSIDE_PORT + 10), "x/a -> outside (x/a sends nothing)");
    let gw = SocketAddrV4::new(n1.gateway, TO_HOST_PORT);
    assert_eq!(seen_from(&n1.netns, TO_HOST_PORT, &xa, gw), None, "x/a -> its gateway (x/a sends nothing)");
    assert!(reaches_outside("x/c", TO_OUTSIDE_PORT + 20), "x/c -> outside (no egress policy)");
}

/// Egress policies judged on the Service path: z/a may send only to y/a on port 80 (as a pod
/// allowed DNS only to the kube-dns pods); z/b may send anywhere but to x/b (ipBlock except).
fn egress_policies(dir: &std::path::Path, xb: Ipv4Addr) -> PathBuf {
    let path = dir.join("service-egress-policies.yaml");
    let yaml = format!(
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: a-to-y-a-only, namespace: z}}
spec:
  podSelector: {{matchLabels: {{pod: a}}}}
  policyTypes: [Egress]
  egress:
  - to: [{{namespaceSelector: {{matchLabels: {{ns: y}}}}, podSelector: {{matchLabels: {{pod: a}}}}}}]
    ports: [{{port: 80, protocol: TCP}}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: b-not-to-x-b, namespace: z}}
spec:
  podSelector: {{matchLabels: {{pod: b}}}}
  policyTypes: [Egress]
  egress:
  - to: [{{ipBlock: {{cidr: 0.0.0.0/0, except: [{xb}/32]}}}}]
"
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn egress_policy_judges_the_service_backend_not_the_cluster_ip() {
    let (r, _outside) = up();
    let tb = &r.tb;
    let services = [(SERVICE_REMOTE, pod_addr(tb, "y/a", 80)), (SERVICE_LOCAL, pod_addr(tb, "x/b", 80))];
    for node in ["node-1", "node-2"] {
        install_service_dnat(tb, node, &services);
    }
    let service = |vip| SocketAddrV4::new(vip, 80);
    let (za, zb) = (pod_ns(tb, "z/a"), pod_ns(tb, "z/b"));
    for (from, vip) in [(&za, SERVICE_REMOTE), (&za, SERVICE_LOCAL), (&zb, SERVICE_REMOTE), (&zb, SERVICE_LOCAL)] {
        assert!(connects(from, service(vip)), "before the policies: {from} -> {vip}");
    }

    tb.apply(&[egress_policies(r.tmp.path(), tb.pod("x/b").unwrap().ip)], Duration::from_secs(30)).unwrap();

    // Allowed to the backend pod: its Service is reachable, though the ClusterIP is in no rule.
    assert!(connects(&za, service(SERVICE_REMOTE)), "z/a -> Service -> y/a (egress allows y/a:80)");
    assert!(!connects(&za, service(SERVICE_LOCAL)), "z/a -> Service -> x/b (egress allows only y/a)");
    assert!(!connects(&za, pod_addr(tb, "y/b", 80)), "z/a -> y/b directly");
    // The except of the backend's address stops its Service too, not only the direct path.
    assert!(!connects(&zb, service(SERVICE_LOCAL)), "z/b -> Service -> x/b (x/b is excepted)");
    assert!(!connects(&zb, pod_addr(tb, "x/b", 80)), "z/b -> x/b directly");
    assert!(connects(&zb, service(SERVICE_REMOTE)), "z/b -> Service -> y/a");
}

/// A node policy (Antrea's appliedTo.nodeSelector) on node-2: its TCP ports 7010-7014 only
/// from x/a's address, and nothing from it to x/c's port 80; realized where the agents'
/// `--node-policy` says.
fn node_policy(dir: &std::path::Path, xa: Ipv4Addr, xc: Ipv4Addr) -> PathBuf {
    let path = dir.join("node-policy.yaml");
    let ports = "[{protocol: TCP, port: 7010}, {protocol: TCP, port: 7011}, {protocol: TCP, port: 7012}, {protocol: TCP, port: 7013}, {protocol: TCP, port: 7014}]";
    let yaml = format!(
        "apiVersion: crd.antrea.io/v1beta1
kind: ClusterNetworkPolicy
metadata: {{name: node-2-from-x-a}}
spec:
  priority: 5
  appliedTo: [{{nodeSelector: {{matchLabels: {{kubernetes.io/hostname: node-2}}}}}}]
  ingress:
  - {{name: from-x-a, action: Allow, from: [{{ipBlock: {{cidr: {xa}/32}}}}], ports: {ports}}}
  - {{name: drop-rest, action: Drop, ports: {ports}}}
  egress:
  - {{name: not-to-x-c, action: Drop, to: [{{ipBlock: {{cidr: {xc}/32}}}}], ports: [{{protocol: TCP, port: 80}}]}}
"
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn node_policy_in_nftables_decides_what_reaches_a_nodes_host() {
    let (r, _outside) = up();
    node_policy_decides_what_reaches_a_nodes_host(&r);
}

/// The same expectations with the node policy on the bridge: what crosses weir-gw0 (pods of
/// both nodes) and what arrives on the uplink (the other node's host), which the agent moved
/// onto br-int; the tunnel between the nodes rides that uplink too.
#[test]
fn node_policy_on_ovs_decides_what_reaches_a_nodes_host() {
    let r = Running::up_node_policy_on_ovs('o');
    wait_for_gateways(&r.tb);
    wait_for_moved_uplinks(&r.tb);
    node_policy_decides_what_reaches_a_nodes_host(&r);
}

/// Waits until each agent has moved its node's uplink onto br-int (`IF~` the NIC, `IF` the
/// internal port with the node's address) and a pod of node-1 reaches node-2's host through
/// the tunnel, which now leaves through that internal port.
fn wait_for_moved_uplinks(tb: &Testbed) {
    for node in tb.nodes() {
        let uplink = node.uplink.clone().expect("a 2-node testbed has uplinks");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let addr = testbed::run(std::process::Command::new("ip").args(["-n", &node.netns, "-4", "addr", "show", "dev", &uplink]));
            let moved = testbed::run(std::process::Command::new("ip").args(["-n", &node.netns, "link", "show", &format!("{uplink}~")]));
            if moved.is_ok() && addr.is_ok_and(|a| a.contains(&node.underlay_ip.to_string())) {
                break;
            }
            assert!(Instant::now() < deadline, "{}: uplink {uplink} not moved onto br-int", node.name);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let n2 = tb.node("node-2").unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    for port in 7030.. {
        if seen_from(&n2.netns, port, &pod_ns(tb, "x/a"), SocketAddrV4::new(n2.underlay_ip, port)).is_some() {
            return;
        }
        assert!(Instant::now() < deadline, "x/a does not reach node-2's host through the moved uplinks");
    }
}

/// One scenario, both realizations: node-2 admits ports 7010-7014 only from x/a and sends
/// nothing to x/c's port 80.
fn node_policy_decides_what_reaches_a_nodes_host(r: &Running) {
    let tb = &r.tb;
    let (n1, n2) = (tb.node("node-1").unwrap().clone(), tb.node("node-2").unwrap().clone());
    let xa = tb.pod("x/a").unwrap().clone();
    let to_n2 = |port| SocketAddrV4::new(n2.underlay_ip, port);
    let xb = tb.pod("x/b").unwrap().ip;
    assert_eq!(seen_from(&n2.netns, 7010, &pod_ns(tb, "x/b"), to_n2(7010)), Some(xb), "before the policy: x/b -> node-2");
    let (to_xa, to_xc) = (pod_addr(tb, "x/a", 80), pod_addr(tb, "x/c", 80));
    assert!(connects(&n2.netns, to_xc), "before the policy: node-2 -> x/c:80");

    tb.apply(&[node_policy(r.tmp.path(), xa.ip, *to_xc.ip())], Duration::from_secs(30)).unwrap();

    // x/a (on node-1) reaches node-2's host with its own address, which the rule admits.
    assert_eq!(seen_from(&n2.netns, 7011, &xa.netns, to_n2(7011)), Some(xa.ip), "x/a -> node-2");
    assert_eq!(seen_from(&n2.netns, 7012, &pod_ns(tb, "x/b"), to_n2(7012)), None, "x/b -> node-2 (dropped)");
    assert_eq!(seen_from(&n2.netns, 7013, &n1.netns, to_n2(7013)), None, "node-1's host -> node-2 (dropped)");
    let on_node_2 = tb.pods().iter().find(|p| p.node == "node-2" && !p.host_network).unwrap().netns.clone();
    assert_eq!(seen_from(&n2.netns, 7014, &on_node_2, to_n2(7014)), None, "a pod of node-2 -> its own host (dropped)");
    // The gateway address is not the Node's (a Node is its InternalIPs): nothing judges it.
    let on_node_2_ip = tb.pods().iter().find(|p| p.netns == on_node_2).unwrap().ip;
    let to_gw2 = SocketAddrV4::new(n2.gateway, 7014);
    assert_eq!(seen_from(&n2.netns, 7014, &on_node_2, to_gw2), Some(on_node_2_ip), "a pod of node-2 -> its gateway's address");
    // Only node-2 is selected; its other ports stay open.
    let to_n1 = SocketAddrV4::new(n1.underlay_ip, 7012);
    assert_eq!(seen_from(&n1.netns, 7012, &pod_ns(tb, "x/b"), to_n1), Some(xb), "x/b -> node-1");
    assert!(seen_from(&n2.netns, 7020, &n1.netns, to_n2(7020)).is_some(), "node-1 -> node-2:7020 (no rule)");
    // Its egress: what node-2's host sends to x/c (through its gateway) is dropped, to x/a not.
    assert!(!connects(&n2.netns, to_xc), "node-2 -> x/c:80 (dropped)");
    assert!(connects(&n2.netns, to_xa), "node-2 -> x/a:80");
}
