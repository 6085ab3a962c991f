//! TrafficControl end to end (issue 6, acceptance 1-5): a 2-node testbed with weir's agents,
//! real probe traffic, and what arrives where it is mirrored or redirected to: a capture on the
//! internal target port, the tunnel collector on node 2's underlay, the inline firewall between
//! a target and a return device.

mod common;

use common::Running;
use policy::Protocol;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;
use testbed::capture::{self, Capture};
use testbed::collector::Collector;
use testbed::encap::{Encap, UdpPorts};
use testbed::firewall::Firewall;
use testbed::manifests::AgentStatus;
use testbed::packet::{Ipv4, Packet, Payload, ip_proto};
use testbed::state::PodState;
use testbed::{ProbeSpec, Testbed, Tunnel};

const SYNC: Duration = Duration::from_secs(30);
const SETTLE: Duration = Duration::from_millis(400);

/// The pods a test plays with: the selected one and another on node 1, and one on node 2.
struct Cast {
    sel: PodState,
    same: PodState,
    remote: PodState,
}

fn cast(tb: &Testbed) -> Cast {
    let on = |node: &str| tb.pods().iter().filter(|p| p.node == node && !p.host_network).cloned().collect::<Vec<_>>();
    let (n1, n2) = (on("node-1"), on("node-2"));
    assert!(n1.len() >= 2 && !n2.is_empty(), "the standard model puts pods on both nodes");
    Cast { sel: n1[0].clone(), same: n1[1].clone(), remote: n2[0].clone() }
}

/// `appliedTo` selecting exactly one pod by its labels and namespace.
fn applied_to(pod: &PodState) -> String {
    let labels: Vec<String> = pod.labels.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!(
        "podSelector: {{matchLabels: {{{}}}}}, namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {}}}}}",
        labels.join(", "),
        pod.namespace
    )
}

/// A TrafficControl manifest; `target` and `ret` are YAML flow mappings.
fn tc(name: &str, pod: &PodState, direction: &str, action: &str, target: &str, ret: Option<&str>) -> String {
    let mut text = format!(
        "apiVersion: crd.antrea.io/v1alpha2\nkind: TrafficControl\nmetadata: {{name: {name}}}\nspec:\n  \
         appliedTo: {{{}}}\n  direction: {direction}\n  action: {action}\n  targetPort: {target}\n",
        applied_to(pod)
    );
    if let Some(r) = ret {
        text.push_str(&format!("  returnPort: {r}\n"));
    }
    text
}

/// Writes manifest `name.yaml` into the test's directory and applies it; returns every node's
/// status.
fn apply(r: &Running, name: &str, text: &str) -> Vec<(String, AgentStatus)> {
    let path = r.tmp.path().join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    r.tb.apply(&[path], SYNC).unwrap().1.expect("agents run")
}

fn delete(r: &Running, name: &str) -> Vec<(String, AgentStatus)> {
    r.tb.delete(&[PathBuf::from(format!("{name}.yaml"))], SYNC).unwrap().1.expect("agents run")
}

fn status_of<'a>(report: &'a [(String, AgentStatus)], node: &str) -> &'a AgentStatus {
    &report.iter().find(|(n, _)| n == node).expect("every node reports").1
}

/// Waits until the TrafficControl is realized on `node` for exactly `pods` and returns its
/// ports. The agent reports a sync token once it realized the snapshot; a port it just created
/// gets its OpenFlow number a moment later (the next OVSDB update), so realization may follow.
fn assert_realized(r: &Running, node: &str, name: &str, pods: &[&PodState]) -> Vec<String> {
    let want: Vec<String> = pods.iter().map(|p| p.key()).collect();
    let n = r.tb.node(node).unwrap();
    let mut last = None;
    let done = testbed::ovs::wait_until(Duration::from_secs(15), || {
        last = testbed::manifests::read_status(n).and_then(|s| s.traffic_controls.get(name).cloned());
        last.as_ref().is_some_and(|t| t.realized && t.pods == want)
    });
    let tc = last.unwrap_or_else(|| panic!("{node}: no status for {name}"));
    assert!(
        done.is_ok(),
        "{node}: {name} is not realized for {want:?}: pods {:?}, errors {:?}",
        tc.pods,
        tc.error_texts()
    );
    // Datapath flows cached from before are revalidated in the background; wait for that.
    r.tb.switch(node).unwrap().wait_revalidated().unwrap();
    tc.ports.clone()
}

fn probe(tb: &Testbed, specs: &[(&PodState, &PodState, u16, Protocol)]) -> Vec<bool> {
    let specs: Vec<ProbeSpec> = specs
        .iter()
        .map(|(from, to, port, protocol)| ProbeSpec {
            from: from.key(),
            to: to.key(),
            port: *port,
            protocol: *protocol,
        })
        .collect();
    testbed::probe_all(tb, &specs).unwrap().into_iter().map(|r| r.allowed).collect()
}

/// A packet reduced to what the assertions compare: source, destination, protocol, the
/// server's port, and whether it goes to the server (a request) or comes from it (a reply).
type Flow = (Ipv4Addr, Ipv4Addr, u8, u16, Dir);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Dir {
    Request,
    Reply,
}

/// The probe servers listen on 80 and 81; clients use ephemeral ports.
const SERVER_PORTS: [u16; 2] = [80, 81];

fn flow_of(ip: &Ipv4) -> Flow {
    let (s, d) = (ip.src_port.unwrap_or(0), ip.dst_port.unwrap_or(0));
    if SERVER_PORTS.contains(&d) {
        (ip.src, ip.dst, ip.protocol, d, Dir::Request)
    } else {
        (ip.src, ip.dst, ip.protocol, s, Dir::Reply)
    }
}

fn show(flows: &BTreeSet<Flow>) -> String {
    let lines: Vec<String> =
        flows.iter().map(|(s, d, p, port, dir)| format!("{s} > {d} proto {p} port {port} {dir:?}")).collect();
    if lines.is_empty() { "(nothing)".into() } else { lines.join("\n") }
}

/// The IPv4 flows among `packets`, and every ARP sender.
fn ipv4_flows(packets: &[Packet]) -> (BTreeSet<Flow>, BTreeSet<Ipv4Addr>) {
    let mut flows = BTreeSet::new();
    let mut arp = BTreeSet::new();
    for p in packets {
        match &p.payload {
            Payload::Ipv4(ip) => {
                flows.insert(flow_of(ip));
            }
            Payload::Arp { sender, .. } => {
                arp.insert(*sender);
            }
            Payload::Other => {}
        }
    }
    (flows, arp)
}

/// Runs the standard probes of the mirror tests while capturing on node 1's `iface`, and
/// returns the IPv4 flows seen there and the ARP senders.
fn mirrored_while_probing(r: &Running, c: &Cast, iface: &str) -> (BTreeSet<Flow>, BTreeSet<Ipv4Addr>) {
    let cap = Capture::start(&r.tb.node("node-1").unwrap().netns, iface).unwrap();
    r.tb.switch("node-1").unwrap().wait_interface_up(iface).unwrap();
    let allowed = probe(
        &r.tb,
        &[
            (&c.sel, &c.remote, 80, Protocol::Udp),
            (&c.sel, &c.same, 81, Protocol::Tcp),
            (&c.remote, &c.sel, 80, Protocol::Udp),
            (&c.same, &c.remote, 80, Protocol::Udp),
            (&c.remote, &c.same, 81, Protocol::Tcp),
        ],
    );
    let frames = cap.stop_after(SETTLE).unwrap();
    assert_eq!(allowed, [true; 5], "the original traffic still arrives");
    let (packets, bad) = capture::received_packets(&frames);
    assert!(bad.is_empty(), "undecodable frames on {iface}: {bad:?}");
    ipv4_flows(&packets)
}

/// What the selected pod sends in those probes (requests it makes, replies it gives).
fn sent_by_sel(c: &Cast) -> BTreeSet<Flow> {
    let (s, o, r) = (c.sel.ip, c.same.ip, c.remote.ip);
    use Dir::*;
    [(s, r, ip_proto::UDP, 80, Request), (s, o, ip_proto::TCP, 81, Request), (s, r, ip_proto::UDP, 80, Reply)].into()
}

/// What the selected pod receives in those probes.
fn received_by_sel(c: &Cast) -> BTreeSet<Flow> {
    let (s, o, r) = (c.sel.ip, c.same.ip, c.remote.ip);
    use Dir::*;
    [(r, s, ip_proto::UDP, 80, Reply), (o, s, ip_proto::TCP, 81, Reply), (r, s, ip_proto::UDP, 80, Request)].into()
}

#[test]
fn a_mirror_to_an_internal_port_copies_only_the_selected_pods_traffic_in_the_selected_direction() {
    let r = Running::up('t', Tunnel::Geneve);
    let c = cast(&r.tb);
    let others = [c.same.ip, c.remote.ip];
    for (direction, want) in [
        ("Egress", sent_by_sel(&c)),
        ("Ingress", received_by_sel(&c)),
        ("Both", sent_by_sel(&c).union(&received_by_sel(&c)).cloned().collect()),
    ] {
        // The same TrafficControl, updated in place: the direction moves the flows.
        apply(&r, "mirror", &tc("mirror-sel", &c.sel, direction, "Mirror", "{ovsInternal: {name: tap0}}", None));
        let ports = assert_realized(&r, "node-1", "mirror-sel", &[&c.sel]);
        assert_eq!(ports, ["tap0"]);
        let (seen, arp_senders) = mirrored_while_probing(&r, &c, "tap0");
        assert_eq!(seen, want, "{direction}: tap0 saw\n{}\nwanted\n{}", show(&seen), show(&want));
        assert!(
            others.iter().all(|o| !arp_senders.contains(o)),
            "{direction}: ARP of other pods mirrored: {arp_senders:?}"
        );
    }
}

#[test]
fn mirrors_to_vxlan_geneve_gre_and_erspan_v1_and_v2_reach_the_collector_with_their_ids() {
    let mut r = Running::up('t', Tunnel::Geneve);
    let collector = Collector::attach(&mut r.tb).unwrap();
    let c = cast(&r.tb);
    let ip = collector.ip();
    let targets = [
        ("to-vxlan", format!("{{vxlan: {{remoteIP: {ip}, vni: 5001}}}}"), Encap::Vxlan { vni: 5001 }),
        ("to-geneve", format!("{{geneve: {{remoteIP: {ip}, vni: 5002}}}}"), Encap::Geneve { vni: 5002 }),
        ("to-gre", format!("{{gre: {{remoteIP: {ip}, key: 7}}}}"), Encap::Gre { key: Some(7) }),
        (
            "to-erspan1",
            format!("{{erspan: {{remoteIP: {ip}, sessionID: 9, version: 1, index: 3}}}}"),
            Encap::ErspanV1 { session_id: 9, index: 3 },
        ),
        (
            "to-erspan2",
            format!("{{erspan: {{remoteIP: {ip}, sessionID: 10, version: 2, dir: 1, hardwareID: 4}}}}"),
            Encap::ErspanV2 { session_id: 10, hardware_id: 4, dir: 1 },
        ),
    ];
    let text: String = targets
        .iter()
        .map(|(name, target, _)| format!("---\n{}", tc(name, &c.sel, "Both", "Mirror", target, None)))
        .collect();
    apply(&r, "tunnels", &text);
    let mut ports = BTreeSet::new();
    for (name, _, _) in &targets {
        ports.extend(assert_realized(&r, "node-1", name, &[&c.sel]));
    }
    assert_eq!(ports.len(), 5, "one tunnel port per target: {ports:?}");

    let cap = collector.start(UdpPorts::default()).unwrap();
    let allowed = probe(&r.tb, &[(&c.sel, &c.remote, 80, Protocol::Udp), (&c.same, &c.remote, 81, Protocol::Udp)]);
    let got = cap.stop_after(SETTLE).unwrap();
    assert_eq!(allowed, [true, true]);
    let summary = got.summary();
    assert!(got.malformed.is_empty(), "{summary}");
    let node1 = r.tb.node("node-1").unwrap().underlay_ip;
    // Both directions of sel's UDP probe, never the other pod's.
    let want: BTreeSet<Flow> = [
        (c.sel.ip, c.remote.ip, ip_proto::UDP, 80, Dir::Request),
        (c.remote.ip, c.sel.ip, ip_proto::UDP, 80, Dir::Reply),
    ]
    .into();
    for (name, _, encap) in &targets {
        let copies: Vec<_> = got.tunnelled.iter().filter(|e| e.encap == *encap).collect();
        assert!(!copies.is_empty(), "{name}: nothing arrived with {encap}; the collector saw:\n{summary}");
        assert!(copies.iter().all(|e| e.outer_src == node1), "{name}: sent by node 1:\n{summary}");
        let (flows, _) = ipv4_flows(&got.inner(*encap));
        assert_eq!(flows, want, "{name}: inner packets\n{}", show(&flows));
        eprintln!("{name}: {} copies with {encap}", copies.len());
    }
}

#[test]
fn a_redirect_through_the_inline_firewall_passes_stops_on_a_blocked_port_and_never_loops() {
    let mut r = Running::up('t', Tunnel::Geneve);
    let c = cast(&r.tb);
    let fw = Firewall::start(&mut r.tb, "node-1", "fw-out", "fw-ret").unwrap();
    apply(
        &r,
        "redirect",
        &tc("via-fw", &c.sel, "Both", "Redirect", "{device: {name: fw-out}}", Some("{device: {name: fw-ret}}")),
    );
    let ports: BTreeSet<String> = assert_realized(&r, "node-1", "via-fw", &[&c.sel]).into_iter().collect();
    assert_eq!(ports, ["fw-out".to_string(), "fw-ret".to_string()].into());

    let probes = [
        (&c.sel, &c.remote, 80, Protocol::Tcp),
        (&c.sel, &c.remote, 81, Protocol::Tcp),
        (&c.sel, &c.same, 80, Protocol::Udp),
        (&c.remote, &c.sel, 80, Protocol::Tcp),
    ];
    assert_eq!(probe(&r.tb, &probes), [true; 4], "everything passes while the firewall forwards");
    let first = fw.settled_counters(SETTLE, Duration::from_secs(5)).expect("no loop: the counters settle");
    let through: BTreeSet<Ipv4Addr> =
        fw.log().iter().filter_map(|(_, p)| p.ipv4()).flat_map(|ip| [ip.src, ip.dst]).collect();
    assert!(through.contains(&c.sel.ip), "the selected pod's packets went through the firewall: {through:?}");
    // A handful of probes are a few dozen packets; a loop would be thousands.
    assert!(first.received > 0 && first.received < 200, "{first:?}");

    fw.block(Protocol::Tcp, 80);
    assert_eq!(probe(&r.tb, &probes), [false, true, true, false], "TCP 80 to and from the selected pod stops");
    // Traffic of pods not selected does not go through the firewall (counted once the blocked
    // probes' retransmissions are over).
    let before = fw.settled_counters(SETTLE, Duration::from_secs(5)).expect("no loop: the counters settle");
    assert_eq!(probe(&r.tb, &[(&c.same, &c.remote, 80, Protocol::Tcp)]), [true]);
    let second = fw.settled_counters(SETTLE, Duration::from_secs(5)).expect("no loop: the counters settle");
    assert_eq!(second.received, before.received, "an unselected pod's traffic reached the firewall");
    assert!(second.dropped > 0, "{second:?}");

    fw.allow_all();
    assert_eq!(probe(&r.tb, &probes), [true; 4], "passes again once unblocked");
    let last = fw.settled_counters(SETTLE, Duration::from_secs(5)).expect("no loop: the counters settle");
    assert!(last.received - second.received < 200, "{last:?}");
    eprintln!("firewall counters: forwarding {first:?}, blocking {second:?}, again {last:?}");
}

#[test]
fn a_second_redirect_of_the_same_pod_is_reported_as_a_conflict_and_the_first_keeps_working() {
    let mut r = Running::up('t', Tunnel::Geneve);
    let c = cast(&r.tb);
    let fw = Firewall::start(&mut r.tb, "node-1", "fw-out", "fw-ret").unwrap();
    let first = tc("via-fw", &c.sel, "Both", "Redirect", "{device: {name: fw-out}}", Some("{device: {name: fw-ret}}"));
    // "via-tap" sorts after "via-fw": it is the one that conflicts.
    let second = tc("via-tap", &c.sel, "Egress", "Redirect", "{ovsInternal: {name: tap9}}", None);
    apply(&r, "redirects", &format!("---\n{first}---\n{second}"));
    assert_realized(&r, "node-1", "via-fw", &[&c.sel]);
    let node = r.tb.node("node-1").unwrap();
    let mut last = None;
    let reported = testbed::ovs::wait_until(Duration::from_secs(15), || {
        last = testbed::manifests::read_status(node).and_then(|s| s.traffic_controls.get("via-tap").cloned());
        last.as_ref().is_some_and(|t| t.error_texts().iter().any(|e| e.contains("via-fw")))
    });
    assert!(reported.is_ok(), "node-1: the conflict is not reported: {last:#?}");
    assert!(!last.unwrap().realized);
    // The operator's view says so too, without -o json.
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["status", "--status-file"])
        .arg(testbed::manifests::status_file(node))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    let line = text.lines().position(|l| l.starts_with("TrafficControl via-tap: NOT realized"));
    assert!(line.is_some_and(|i| text.lines().nth(i + 1).is_some_and(|e| e.contains("via-fw"))), "{text}");
    let before = fw.settled_counters(SETTLE, Duration::from_secs(5)).expect("counters settle");
    let cap = Capture::start(&node.netns, "tap9").unwrap();
    assert_eq!(probe(&r.tb, &[(&c.sel, &c.remote, 80, Protocol::Tcp)]), [true]);
    let (packets, _) = capture::received_packets(&cap.stop_after(SETTLE).unwrap());
    let after = fw.settled_counters(SETTLE, Duration::from_secs(5)).expect("counters settle");
    assert!(after.received > before.received, "the first redirect still sends through the firewall: {after:?}");
    let (flows, _) = ipv4_flows(&packets);
    assert!(flows.is_empty(), "the conflicting redirect's port got traffic:\n{}", show(&flows));
}

fn list_ports(r: &Running, node: &str) -> BTreeSet<String> {
    r.tb.switch(node).unwrap().vsctl(&["list-ports", "br-int"]).unwrap().lines().map(String::from).collect()
}

fn flow_lines(r: &Running, node: &str) -> BTreeSet<String> {
    let dump = r.tb.switch(node).unwrap().ofctl("dump-flows", "br-int", &["--no-stats", "--names"]).unwrap();
    dump.lines().filter(|l| l.contains("actions=")).map(|l| l.trim().to_string()).collect()
}

fn tc_flows(r: &Running, node: &str) -> BTreeSet<String> {
    flow_lines(r, node).into_iter().filter(|l| l.contains("TrafficControl")).collect()
}

#[test]
fn updating_applied_to_or_target_moves_flows_and_ports_and_deleting_removes_all_it_created() {
    let mut r = Running::up('t', Tunnel::Geneve);
    let collector = Collector::attach(&mut r.tb).unwrap();
    let c = cast(&r.tb);
    let baseline: Vec<_> = ["node-1", "node-2"].iter().map(|n| (list_ports(&r, n), flow_lines(&r, n))).collect();
    let geneve = format!("{{geneve: {{remoteIP: {}, vni: 5002}}}}", collector.ip());

    // A GENEVE mirror of sel (node 1): the tunnel port and the flows are on node 1 only.
    apply(&r, "moving", &tc("moving", &c.sel, "Egress", "Mirror", &geneve, None));
    let gnv = assert_realized(&r, "node-1", "moving", &[&c.sel]);
    assert_eq!(gnv.len(), 1);
    assert!(list_ports(&r, "node-1").contains(&gnv[0]), "{gnv:?} on node 1");
    assert!(!list_ports(&r, "node-2").contains(&gnv[0]), "no port on node 2 without a selected pod there");
    let sel_iface = c.sel.interface.clone().unwrap();
    assert!(
        tc_flows(&r, "node-1").iter().any(|l| l.contains(&sel_iface) && l.contains(&gnv[0])),
        "{:#?}",
        tc_flows(&r, "node-1")
    );

    // Target → internal port tap1: the tunnel port goes, tap1 comes.
    apply(&r, "moving", &tc("moving", &c.sel, "Egress", "Mirror", "{ovsInternal: {name: tap1}}", None));
    assert_eq!(assert_realized(&r, "node-1", "moving", &[&c.sel]), ["tap1"]);
    let ports = list_ports(&r, "node-1");
    assert!(ports.contains("tap1") && !ports.contains(&gnv[0]), "{ports:?}");
    let flows = tc_flows(&r, "node-1");
    assert!(flows.iter().any(|l| l.contains(&sel_iface) && l.contains("tap1")), "{flows:#?}");
    assert!(!flows.iter().any(|l| l.contains(&gnv[0])), "{flows:#?}");

    // appliedTo → a pod of node 2: node 1 drops its port and flows, node 2 gets them, and
    // the copies follow.
    apply(&r, "moving", &tc("moving", &c.remote, "Egress", "Mirror", "{ovsInternal: {name: tap1}}", None));
    assert_realized(&r, "node-2", "moving", &[&c.remote]);
    assert!(!list_ports(&r, "node-1").contains("tap1"), "node 1 removed tap1");
    assert!(list_ports(&r, "node-2").contains("tap1"), "node 2 created tap1");
    let remote_iface = c.remote.interface.clone().unwrap();
    assert!(tc_flows(&r, "node-2").iter().any(|l| l.contains(&remote_iface) && l.contains("tap1")));
    let cap = Capture::start(&r.tb.node("node-2").unwrap().netns, "tap1").unwrap();
    r.tb.switch("node-2").unwrap().wait_interface_up("tap1").unwrap();
    assert_eq!(
        probe(&r.tb, &[(&c.remote, &c.sel, 80, Protocol::Udp), (&c.sel, &c.remote, 81, Protocol::Udp)]),
        [true, true]
    );
    let (packets, _) = capture::received_packets(&cap.stop_after(SETTLE).unwrap());
    let (seen, _) = ipv4_flows(&packets);
    let want: BTreeSet<Flow> = [
        (c.remote.ip, c.sel.ip, ip_proto::UDP, 80, Dir::Request),
        (c.remote.ip, c.sel.ip, ip_proto::UDP, 81, Dir::Reply),
    ]
    .into();
    assert_eq!(seen, want, "node 2's tap1 sees what the newly selected pod sends:\n{}", show(&seen));

    // Delete: every port and flow it made is gone, on both nodes.
    let report = delete(&r, "moving");
    for (i, node) in ["node-1", "node-2"].iter().enumerate() {
        assert!(!status_of(&report, node).traffic_controls.contains_key("moving"), "{node} still reports it");
        assert_eq!(list_ports(&r, node), baseline[i].0, "{node}: ports after delete");
        let flows = flow_lines(&r, node);
        let extra: Vec<_> = flows.difference(&baseline[i].1).collect();
        let missing: Vec<_> = baseline[i].1.difference(&flows).collect();
        assert!(extra.is_empty() && missing.is_empty(), "{node}: flows after delete differ: +{extra:#?} -{missing:#?}");
        let show = r.tb.switch(node).unwrap().vsctl(&["show"]).unwrap();
        assert!(!show.contains("weir-gnv") && !show.contains("tap1"), "{node}: ovs-vsctl show:\n{show}");
    }
}

#[test]
fn bad_traffic_controls_are_reported_by_field_and_leave_the_others_working() {
    let r = Running::up('t', Tunnel::Geneve);
    let c = cast(&r.tb);
    let target = Ipv4Addr::new(192, 168, 77, 200);
    let bad = [
        ("bad-type", "{bogus: {name: x0}}".to_string(), None, "spec.targetPort.bogus"),
        ("bad-remote", "{vxlan: {vni: 5001}}".to_string(), None, "spec.targetPort.vxlan.remoteIP"),
        (
            "bad-return",
            "{ovsInternal: {name: tap2}}".to_string(),
            Some("{ovsInternal: {name: tap3}}"),
            "spec.returnPort",
        ),
        (
            "bad-session",
            format!("{{erspan: {{remoteIP: {target}, sessionID: 1024, version: 1, index: 1}}}}"),
            None,
            "spec.targetPort.erspan.sessionID",
        ),
        ("bad-vni", format!("{{geneve: {{remoteIP: {target}, vni: 16777216}}}}"), None, "spec.targetPort.geneve.vni"),
    ];
    let mut text = format!("---\n{}", tc("good", &c.sel, "Egress", "Mirror", "{ovsInternal: {name: tap0}}", None));
    for (name, target, ret, _) in &bad {
        text.push_str(&format!("---\n{}", tc(name, &c.sel, "Egress", "Mirror", target, *ret)));
    }
    let report = apply(&r, "mixed", &text);
    for (node, status) in &report {
        for (name, _, _, field) in &bad {
            let found = status.errors.iter().find(|e| e.object.contains(name));
            let e = found.unwrap_or_else(|| panic!("{node}: no error for {name}: {:#?}", status.errors));
            assert_eq!(e.field, *field, "{node}: {name}: {e:?}");
            assert!(!e.message.is_empty(), "{node}: {name}: a message says what is wrong");
            assert!(!status.traffic_controls.get(*name).is_some_and(|t| t.realized), "{node}: {name} is not realized");
        }
    }
    assert_realized(&r, "node-1", "good", &[&c.sel]);
    let ports = list_ports(&r, "node-1");
    assert!(!ports.contains("tap2") && !ports.contains("tap3"), "no port for a rejected TrafficControl: {ports:?}");
    let (seen, _) = mirrored_while_probing(&r, &c, "tap0");
    assert_eq!(seen, sent_by_sel(&c), "the good mirror works beside the bad ones:\n{}", show(&seen));
    for node in r.tb.nodes() {
        assert!(node.agent.as_ref().is_some_and(|a| testbed::ovs::process_alive(a.pid)), "{} agent runs", node.name);
    }
}
