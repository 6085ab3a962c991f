//! Node policy in nftables against the real kernel: a "host" namespace with TCP services on
//! 8080 and 2222, joined by veths to client namespaces `a` (10.77.1.2) and `b` (10.77.2.2).
//! Each case builds normalized rules for the host endpoint, applies them with `nft` inside the
//! host namespace and connects from the clients.
use agent::metrics::host_rules::HostRuleStats;
use agent::node_firewall::{Applied, Bypass, Host, NodeFirewall, Plan, TABLE, counters, layer_counter};
use policy::netpol::{Direction, IpBlock, PortMatch, Service};
use policy::rules::{Action, Endpoint, Origin, Peers, PolicyKind, PolicyRef, Rule, RuleId, RuleSet, Services, Tier};
use policy::{Cluster, PodKey, Protocol};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use testbed::Netns;

const HOST_A: &str = "10.77.1.1";
const HOST_B: &str = "10.77.2.1";
const SERVICE: u16 = 8080;
const SSH: u16 = 2222;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Connected,
    Refused,
    /// No answer (dropped on the way in) or EPERM (dropped on the way out of this host).
    Dropped,
}

struct Site {
    host: Netns,
    a: Netns,
    b: Netns,
}

impl Site {
    fn new(tag: &str) -> Site {
        let id = std::process::id();
        let ns = |role: &str| Netns::add(&format!("wnf{tag}{role}{id}")).unwrap();
        let site = Site { host: ns("h"), a: ns("a"), b: ns("b") };
        site.host.veth("to-a", &format!("{HOST_A}/24"), &site.a, "eth0", "10.77.1.2/24").unwrap();
        site.host.veth("to-b", &format!("{HOST_B}/24"), &site.b, "eth0", "10.77.2.2/24").unwrap();
        for (client, via) in [(&site.a, HOST_A), (&site.b, HOST_B)] {
            testbed::run(std::process::Command::new("ip").args(["-n", client.name(), "route", "add", "default", "via", via])).unwrap();
        }
        serve_in(&site.host);
        site
    }

    /// One connection from `from` to `to`: connect, a line echoed, close.
    fn connect(&self, from: &Netns, to: &str, port: u16) -> Outcome {
        let (ns, to) = (from.name().to_string(), format!("{to}:{port}"));
        std::thread::spawn(move || {
            testbed::netns::enter_on_this_thread(&ns).unwrap();
            exchange(to.parse().unwrap())
        })
        .join()
        .unwrap()
    }

    /// Runs `f` on a thread inside the host namespace (so `nft` runs there).
    fn in_host<T: Send>(&self, f: impl FnOnce(&tokio::runtime::Runtime) -> T + Send) -> T {
        let name = self.host.name().to_string();
        std::thread::scope(|s| {
            s.spawn(|| {
                testbed::netns::enter_on_this_thread(&name).unwrap();
                f(&tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap())
            })
            .join()
            .unwrap()
        })
    }

    fn apply(&self, fw: &mut NodeFirewall, plan: &Plan) -> Applied {
        self.in_host(|rt| rt.block_on(fw.apply(plan))).unwrap()
    }

    fn nft(&self, args: &[&str]) -> String {
        testbed::run(self.host.command("nft").args(args)).unwrap()
    }
}

/// The TCP echo services (8080, 2222) in `ns`, from a thread that lives as long as the test.
fn serve_in(ns: &Netns) {
    let name = ns.name().to_string();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        testbed::netns::enter_on_this_thread(&name).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("ready");
        let config =
            testbed::serve::ServeConfig { ports: vec![(Protocol::Tcp, SERVICE), (Protocol::Tcp, SSH)], ready_file: Some(ready.clone()) };
        std::thread::spawn(move || {
            while !ready.exists() {
                std::thread::sleep(Duration::from_millis(10));
            }
            ready_tx.send(()).unwrap();
        });
        let _ = testbed::serve::serve(&config);
    });
    ready_rx.recv_timeout(Duration::from_secs(10)).expect("the services listen");
}

fn exchange(to: SocketAddr) -> Outcome {
    let mut s = match TcpStream::connect_timeout(&to, Duration::from_millis(700)) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Outcome::Refused,
        Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::PermissionDenied) => return Outcome::Dropped,
        Err(e) => panic!("connecting to {to}: {e}"),
    };
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(b"ping\n").unwrap();
    let mut line = String::new();
    match BufReader::new(&s).read_line(&mut line) {
        Ok(_) if line == "ping\n" => Outcome::Connected,
        _ => Outcome::Dropped,
    }
}

/// The host: Node `h`, its InternalIPs its two addresses.
fn host() -> Endpoint {
    Endpoint::Node("h".into())
}

const NODE: &str = "apiVersion: v1\nkind: Node\nmetadata: {name: h}\nstatus: {addresses: [{type: InternalIP, address: 10.77.1.1}, {type: InternalIP, address: 10.77.2.1}]}\n";

fn plan(rules: Vec<Rule>, bypass: &[&str]) -> Plan {
    plan_in(&[], rules, bypass)
}

/// The plan of the host's rules in a cluster of Node `h` and `objects`.
fn plan_in(objects: &[&str], rules: Vec<Rule>, bypass: &[&str]) -> Plan {
    let cluster = Cluster::from_sources([("node.yaml", NODE)].into_iter().chain(objects.iter().map(|o| ("objects.yaml", *o))));
    assert_eq!(cluster.endpoint_ips(&host()).len(), 2, "{:?}", cluster.errors);
    let host = Host { endpoints: vec![host()], bypass: bypass.iter().map(|b| b.parse::<Bypass>().unwrap()).collect() };
    Plan::new(&host, &RuleSet { rules, isolated: Default::default() }, &cluster)
}

/// An egress rule of the host endpoint.
fn egress(name: &str, action: Action, peers: Peers, ports: &[u16]) -> Rule {
    let mut r = rule(name, Tier::ADMIN, 1, action, peers, ports);
    r.id = RuleId(format!("AdminNetworkPolicy/{name}/egress/0"));
    r.origin.rule = "egress[0]".into();
    r.direction = Direction::Egress;
    r
}

/// An ingress rule of the host endpoint.
fn rule(name: &str, tier: Tier, priority: u32, action: Action, peers: Peers, ports: &[u16]) -> Rule {
    let services = match ports {
        [] => Services::Any,
        list => Services::List(list.iter().map(|&p| Service { protocol: Protocol::Tcp, port: PortMatch::Range(p, p) }).collect()),
    };
    Rule {
        id: RuleId(format!("AdminNetworkPolicy/{name}/ingress/0")),
        origin: Origin {
            policy: PolicyRef { kind: PolicyKind::AdminNetworkPolicy, namespace: None, name: name.into() },
            rule: "ingress[0]".into(),
        },
        direction: Direction::Ingress,
        tier,
        priority,
        action,
        applied_to: BTreeSet::from([host()]),
        peers,
        services,
        audit: None,
    }
}

fn blocks(cidrs: &[&str]) -> Peers {
    Peers::Set { pods: BTreeSet::new(), blocks: cidrs.iter().map(|c| IpBlock { cidr: c.parse().unwrap(), except: Vec::new() }).collect() }
}

fn deny_all_but_a() -> Vec<Rule> {
    vec![
        rule("allow-a", Tier::ADMIN, 1, Action::Allow, blocks(&["10.77.1.0/24"]), &[]),
        rule("deny-all", Tier::ADMIN, 2, Action::Deny, Peers::Any, &[]),
    ]
}

#[test]
fn deny_all_except_a_cidr_and_every_rule_counts_what_it_decided() {
    let site = Site::new("c");
    let mut fw = NodeFirewall::new();
    assert_eq!(site.connect(&site.b, HOST_B, SERVICE), Outcome::Connected, "open before any policy");
    site.apply(&mut fw, &plan(deny_all_but_a(), &[]));
    assert_eq!(site.connect(&site.a, HOST_A, SERVICE), Outcome::Connected);
    assert_eq!(site.connect(&site.a, HOST_A, SSH), Outcome::Connected);
    assert_eq!(site.connect(&site.b, HOST_B, SERVICE), Outcome::Dropped);
    assert_eq!(site.connect(&site.b, HOST_A, SERVICE), Outcome::Dropped, "b to the host's other address");
    let c = site.in_host(|rt| rt.block_on(counters())).unwrap();
    // Two new connections from a (one SYN each); b's SYNs are resent while it waits.
    assert_eq!(c["AdminNetworkPolicy/allow-a/ingress/0"].packets, 2, "{c:?}");
    assert!(c["AdminNetworkPolicy/deny-all/ingress/0"].packets >= 2, "{c:?}");

    // The agent's metrics name each counter by its rule.
    let stats = HostRuleStats::default();
    stats.set_plan(&plan(deny_all_but_a(), &[]));
    stats.set_counters(c);
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(stats));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let allowed = r#"weir_host_rule_packets_total{tier="admin",kind="AdminNetworkPolicy",policy="allow-a",rule="ingress[0]"} 2"#;
    assert!(text.lines().any(|l| l == allowed), "{text}");
    assert!(
        text.contains(r#"weir_host_rule_bytes_total{tier="admin",kind="AdminNetworkPolicy",policy="deny-all",rule="ingress[0]"}"#),
        "{text}"
    );
}

#[test]
fn a_port_is_allowed_from_selected_pods_only() {
    let site = Site::new("p");
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: client, namespace: x, labels: {app: client}}\nspec: {nodeName: n1}\nstatus: {podIPs: [{ip: 10.77.1.2}]}\n";
    let key = PodKey { namespace: "x".into(), name: "client".into() };
    assert!(Cluster::from_sources([("pods.yaml", pod)]).pod(&key).is_some());
    let pods = Peers::Set { pods: BTreeSet::from([key]), blocks: Vec::new() };
    let rules = vec![
        rule("allow-service", Tier::ADMIN, 1, Action::Allow, pods, &[SERVICE]),
        rule("deny-all", Tier::ADMIN, 2, Action::Deny, Peers::Any, &[]),
    ];
    site.apply(&mut NodeFirewall::new(), &plan_in(&[pod], rules, &[]));
    assert_eq!(site.connect(&site.a, HOST_A, SERVICE), Outcome::Connected);
    assert_eq!(site.connect(&site.a, HOST_A, SSH), Outcome::Dropped, "another port of the host");
    assert_eq!(site.connect(&site.b, HOST_B, SERVICE), Outcome::Dropped, "not a selected pod");
}

#[test]
fn single_ports_and_port_ranges_reach_their_rules_through_the_port_maps() {
    let site = Site::new("m");
    let mut a_range = rule("a-range", Tier::ADMIN, 1, Action::Allow, blocks(&["10.77.1.0/24"]), &[]);
    a_range.services = Services::List(vec![Service { protocol: Protocol::Tcp, port: PortMatch::Range(SERVICE - 80, SERVICE + 20) }]);
    let rules = vec![
        a_range,
        rule("b-ssh", Tier::ADMIN, 2, Action::Allow, blocks(&["10.77.2.0/24"]), &[SSH]),
        rule("deny-all", Tier::ADMIN, 3, Action::Deny, Peers::Any, &[]),
    ];
    site.apply(&mut NodeFirewall::new(), &plan(rules, &[]));
    assert_eq!(site.connect(&site.a, HOST_A, SERVICE), Outcome::Connected, "a port inside a's range");
    assert_eq!(site.connect(&site.a, HOST_A, SSH), Outcome::Dropped, "b's single port, not a's");
    assert_eq!(site.connect(&site.b, HOST_B, SSH), Outcome::Connected, "b's single port");
    assert_eq!(site.connect(&site.b, HOST_B, SERVICE), Outcome::Dropped, "a's range, not b's");
}

#[test]
fn an_admin_deny_wins_over_a_baseline_allow_and_pass_leaves_it_to_the_baseline() {
    let site = Site::new("t");
    let rules = vec![
        rule("pass-a", Tier::ADMIN, 1, Action::Pass, blocks(&["10.77.1.0/24"]), &[]),
        rule("deny-all", Tier::ADMIN, 2, Action::Deny, Peers::Any, &[]),
        rule("allow-all", Tier::BASELINE, 1, Action::Allow, Peers::Any, &[]),
    ];
    site.apply(&mut NodeFirewall::new(), &plan(rules, &[]));
    assert_eq!(site.connect(&site.a, HOST_A, SERVICE), Outcome::Connected, "passed to the baseline's allow");
    assert_eq!(site.connect(&site.b, HOST_B, SERVICE), Outcome::Dropped, "the admin deny decides before the baseline");
    let rules = vec![
        rule("pass-a", Tier::ADMIN, 1, Action::Pass, blocks(&["10.77.1.0/24"]), &[]),
        rule("deny-a", Tier::BASELINE, 1, Action::Deny, blocks(&["10.77.1.0/24"]), &[]),
    ];
    site.apply(&mut NodeFirewall::new(), &plan(rules, &[]));
    assert_eq!(site.connect(&site.a, HOST_A, SERVICE), Outcome::Dropped, "passed to the baseline's deny");
    assert_eq!(site.connect(&site.b, HOST_B, SERVICE), Outcome::Connected, "no rule: allowed");
}

#[test]
fn a_pass_ends_in_the_baseline_even_where_the_baseline_dispatches_by_port_and_later_tiers_never_see_it() {
    let site = Site::new("p");
    let later_tier = Tier(Tier::ADMIN_TIERED_BASE.0 + 250);
    let rules = vec![
        rule("pass-a", Tier(Tier::ADMIN_TIERED_BASE.0 + 100), 1, Action::Pass, blocks(&["10.77.1.0/24"]), &[]),
        rule("deny-all-later", later_tier, 1, Action::Deny, Peers::Any, &[]),
        // A baseline rule on SSH's port: the baseline dispatches that port to a chain of its own.
        rule("deny-b-ssh", Tier::BASELINE, 1, Action::Deny, blocks(&["10.77.2.0/24"]), &[SSH]),
    ];
    site.apply(&mut NodeFirewall::new(), &plan(rules, &[]));
    assert_eq!(site.connect(&site.a, HOST_A, SSH), Outcome::Connected, "passed: the baseline has no rule for a, so allowed");
    assert_eq!(site.connect(&site.a, HOST_A, SERVICE), Outcome::Connected, "passed, on a port the baseline does not dispatch");
    assert_eq!(site.connect(&site.b, HOST_B, SSH), Outcome::Dropped, "not passed: the later tier denies");
}

#[test]
fn reject_answers_with_a_reset_not_silence() {
    let site = Site::new("r");
    site.apply(
        &mut NodeFirewall::new(),
        &plan(vec![rule("reject-b", Tier::ADMIN, 1, Action::Reject, blocks(&["10.77.2.0/24"]), &[])], &[]),
    );
    let started = Instant::now();
    assert_eq!(site.connect(&site.b, HOST_B, SERVICE), Outcome::Refused);
    assert!(started.elapsed() < Duration::from_millis(300), "refused after {:?}", started.elapsed());
    assert_eq!(site.connect(&site.a, HOST_A, SERVICE), Outcome::Connected);
}

#[test]
fn established_connections_survive_a_rule_update() {
    let site = Site::new("e");
    let mut fw = NodeFirewall::new();
    site.apply(&mut fw, &plan(vec![], &[]));
    let to: SocketAddr = format!("{HOST_A}:{SERVICE}").parse().unwrap();
    let ns = site.a.name().to_string();
    let stream = std::thread::spawn(move || {
        testbed::netns::enter_on_this_thread(&ns).unwrap();
        TcpStream::connect_timeout(&to, Duration::from_secs(2)).unwrap()
    })
    .join()
    .unwrap();
    site.apply(&mut fw, &plan(vec![rule("deny-all", Tier::ADMIN, 1, Action::Deny, Peers::Any, &[])], &[]));
    stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut reader = BufReader::new(&stream);
    for i in 0..3 {
        (&stream).write_all(format!("line {i}\n").as_bytes()).unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).expect("the established connection still echoes");
        assert_eq!(line, format!("line {i}\n"));
    }
    assert_eq!(site.connect(&site.a, HOST_A, SERVICE), Outcome::Dropped, "a new connection is denied");
}

#[test]
fn the_bypass_list_holds_under_deny_all() {
    let site = Site::new("b");
    let deny_all = vec![rule("deny-all", Tier::ADMIN, 1, Action::Deny, Peers::Any, &[])];
    site.apply(&mut NodeFirewall::new(), &plan(deny_all, &[&format!("ingress:tcp:10.77.2.0/24:{SSH}")]));
    assert_eq!(site.connect(&site.b, HOST_B, SSH), Outcome::Connected, "bypassed");
    assert_eq!(site.connect(&site.b, HOST_B, SERVICE), Outcome::Dropped, "another port");
    assert_eq!(site.connect(&site.a, HOST_A, SSH), Outcome::Dropped, "another block");
    assert_eq!(site.connect(&site.host, "127.0.0.1", SERVICE), Outcome::Connected, "loopback");
}

#[test]
fn a_bypassed_connection_opened_before_the_table_survives_its_peer_speaking_first() {
    // The agent's watch of its API server: opened before any table (conntrack picks it up
    // mid-stream), then the server sends first, under a policy that drops everything else.
    let site = Site::new("k");
    let (listening_tx, listening) = std::sync::mpsc::channel();
    let (speak_tx, speak) = std::sync::mpsc::channel::<()>();
    let ns = site.a.name().to_string();
    std::thread::spawn(move || {
        testbed::netns::enter_on_this_thread(&ns).unwrap();
        let listener = std::net::TcpListener::bind(("10.77.1.2", 6443)).unwrap();
        listening_tx.send(()).unwrap();
        let (mut watcher, _) = listener.accept().unwrap();
        for _ in speak {
            watcher.write_all(b"event\n").unwrap();
        }
    });
    listening.recv().unwrap();
    let ns = site.host.name().to_string();
    let watch = std::thread::spawn(move || {
        testbed::netns::enter_on_this_thread(&ns).unwrap();
        TcpStream::connect_timeout(&"10.77.1.2:6443".parse().unwrap(), Duration::from_secs(2)).unwrap()
    })
    .join()
    .unwrap();
    watch.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut events = BufReader::new(&watch);
    let deny_all = vec![rule("deny-all", Tier::ADMIN, 1, Action::Deny, Peers::Any, &[]), {
        let mut out = egress("deny-out", Action::Deny, Peers::Any, &[]);
        out.priority = 2;
        out
    }];
    site.apply(&mut NodeFirewall::new(), &plan(deny_all, &["egress:tcp:10.77.1.2/32:6443"]));
    for _ in 0..3 {
        speak_tx.send(()).unwrap();
        let mut line = String::new();
        events.read_line(&mut line).expect("the server's packets reach the host");
        assert_eq!(line, "event\n");
    }
    assert_eq!(site.connect(&site.a, HOST_A, SERVICE), Outcome::Dropped, "the peer's own connections are not bypassed");
}

#[test]
fn a_closed_direction_drops_all_but_the_bypass_list() {
    let site = Site::new("f");
    let open = plan(vec![], &[&format!("ingress:tcp:10.77.2.0/24:{SSH}")]);
    site.apply(&mut NodeFirewall::new(), &open.closing(&[Direction::Ingress], "test"));
    assert_eq!(site.connect(&site.b, HOST_B, SSH), Outcome::Connected);
    assert_eq!(site.connect(&site.a, HOST_A, SERVICE), Outcome::Dropped);
    let c = site.in_host(|rt| rt.block_on(counters())).unwrap();
    assert!(c[&layer_counter(&host(), Direction::Ingress, "fail-closed")].packets >= 1, "{c:?}");
}

#[test]
fn an_unchanged_plan_sends_nothing_and_a_change_replaces_the_table_in_one_transaction() {
    let site = Site::new("x");
    let mut fw = NodeFirewall::new();
    let first = plan(deny_all_but_a(), &[]);
    assert_eq!(site.apply(&mut fw, &first), Applied::Replaced);
    let before = site.nft(&["-j", "list", "ruleset"]);
    assert_eq!(site.apply(&mut fw, &first), Applied::Unchanged);
    assert_eq!(site.nft(&["-j", "list", "ruleset"]), before, "nothing was sent: same handles, same counters");
    let mut second = deny_all_but_a();
    second.insert(0, rule("allow-b-ssh", Tier::ADMIN, 0, Action::Allow, blocks(&["10.77.2.0/24"]), &[SSH]));
    assert_eq!(site.apply(&mut fw, &plan(second, &[])), Applied::Replaced);
    let after = site.nft(&["list", "ruleset"]);
    assert_eq!(after.matches(&format!("table inet {TABLE}")).count(), 1, "{after}");
    assert!(after.contains("AdminNetworkPolicy/allow-b-ssh/ingress/0"), "{after}");
    assert_eq!(site.connect(&site.b, HOST_B, SSH), Outcome::Connected);
}

/// While the table is replaced 100 times (two plans that agree on a and b), a stream of new
/// connections never sees another verdict: a is always let in, b never.
#[test]
fn a_flood_of_connections_during_replacements_never_sees_a_wrong_verdict() {
    let site = Site::new("w");
    let mut fw = NodeFirewall::new();
    let one = plan(deny_all_but_a(), &[]);
    let mut rules = deny_all_but_a();
    rules.insert(1, rule("allow-a-service", Tier::ADMIN, 1, Action::Allow, blocks(&["10.77.1.2/32"]), &[SERVICE]));
    rules.push(rule("baseline-deny", Tier::BASELINE, 1, Action::Deny, Peers::Any, &[]));
    let two = plan(rules, &[]);
    site.apply(&mut fw, &one);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (wrong, tried) = std::thread::scope(|s| {
        let flood = |from: &Netns, to: &'static str, expect: Outcome| {
            let (ns, stop) = (from.name().to_string(), &stop);
            s.spawn(move || {
                testbed::netns::enter_on_this_thread(&ns).unwrap();
                let (mut wrong, mut tried) = (Vec::new(), 0);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let got = exchange(format!("{to}:{SERVICE}").parse().unwrap());
                    tried += 1;
                    if got != expect {
                        wrong.push(got);
                    }
                }
                (wrong, tried)
            })
        };
        let a = flood(&site.a, HOST_A, Outcome::Connected);
        let b = flood(&site.b, HOST_B, Outcome::Dropped);
        for i in 0..100 {
            site.apply(&mut fw, if i % 2 == 0 { &two } else { &one });
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        ([a.0, b.0].concat(), (a.1, b.1))
    });
    eprintln!("connections during 100 replacements: {} from a, {} from b", tried.0, tried.1);
    assert!(wrong.is_empty(), "{} wrong verdicts during replacements, the first: {:?}", wrong.len(), &wrong[..wrong.len().min(5)]);
    assert!(tried.0 >= 100, "only {} connections from a during the replacements", tried.0);
    assert!(tried.1 >= 1);
}

#[test]
fn egress_rules_govern_what_the_host_sends_and_its_bypass_list_holds() {
    let site = Site::new("g");
    serve_in(&site.a);
    let mut fw = NodeFirewall::new();
    assert_eq!(site.connect(&site.host, "10.77.1.2", SERVICE), Outcome::Connected, "open before any policy");
    site.apply(&mut fw, &plan(vec![egress("reject-a", Action::Reject, blocks(&["10.77.1.0/24"]), &[SERVICE])], &[]));
    assert_eq!(site.connect(&site.host, "10.77.1.2", SERVICE), Outcome::Refused);
    assert_eq!(site.connect(&site.host, "10.77.1.2", SSH), Outcome::Connected, "another port");
    let deny_all = vec![egress("deny-all", Action::Deny, Peers::Any, &[])];
    site.apply(&mut fw, &plan(deny_all, &[&format!("egress:tcp:10.77.1.0/24:{SSH}")]));
    assert_eq!(site.connect(&site.host, "10.77.1.2", SERVICE), Outcome::Dropped);
    assert_eq!(site.connect(&site.host, "10.77.1.2", SSH), Outcome::Connected, "bypassed");
    assert_eq!(
        site.connect(&site.a, HOST_A, SERVICE),
        Outcome::Connected,
        "ingress is not governed by egress rules; replies are established"
    );
}

/// An ExternalNode with two interfaces is two endpoints: a rule applied to one interface's
/// ExternalEntity governs the traffic to that interface's address only.
#[test]
fn each_interface_of_an_external_node_has_its_own_rules() {
    let site = Site::new("i");
    let vm = "apiVersion: v1\nkind: Namespace\nmetadata: {name: vms}\n---\napiVersion: crd.antrea.io/v1alpha1\nkind: ExternalNode\n\
              metadata: {name: vm1, namespace: vms}\nspec: {interfaces: [{name: eth0, ips: [10.77.1.1]}, {name: eth1, ips: [10.77.2.1]}]}\n";
    let cluster = Cluster::from_sources([("vm.yaml", vm)]);
    let entity_at =
        |ip: &str| cluster.host_at(ip.parse().unwrap()).cloned().unwrap_or_else(|| panic!("no entity at {ip}: {:?}", cluster.errors));
    let (eth0, eth1) = (entity_at(HOST_A), entity_at(HOST_B));
    assert_ne!(eth0, eth1);
    let mut deny = rule("deny-eth0", Tier::ADMIN, 1, Action::Deny, Peers::Any, &[]);
    deny.applied_to = BTreeSet::from([eth0.clone()]);
    let host = Host { endpoints: vec![eth0, eth1], bypass: Vec::new() };
    site.apply(&mut NodeFirewall::new(), &Plan::new(&host, &RuleSet { rules: vec![deny], isolated: Default::default() }, &cluster));
    assert_eq!(site.connect(&site.a, HOST_A, SERVICE), Outcome::Dropped);
    assert_eq!(site.connect(&site.b, HOST_A, SERVICE), Outcome::Dropped, "eth0's address from the other side");
    assert_eq!(site.connect(&site.b, HOST_B, SERVICE), Outcome::Connected, "eth1 has no rule");
    assert_eq!(site.connect(&site.a, HOST_B, SERVICE), Outcome::Connected);
}

/// Node `h` with an IPv6 InternalIP on each link beside its IPv4 ones.
const DUAL_STACK_NODE: &str = "apiVersion: v1\nkind: Node\nmetadata: {name: h}\nstatus: {addresses: [{type: InternalIP, address: 10.77.1.1}, {type: InternalIP, address: 10.77.2.1}, {type: InternalIP, address: \"fd77:1::1\"}, {type: InternalIP, address: \"fd77:2::1\"}]}\n";

/// An echo service on `addr` (an address of `ns`), from a thread that lives as long as the test.
fn echo_in(ns: &Netns, addr: SocketAddr) {
    let name = ns.name().to_string();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        testbed::netns::enter_on_this_thread(&name).unwrap();
        let listener = std::net::TcpListener::bind(addr).unwrap();
        ready_tx.send(()).unwrap();
        for mut stream in listener.incoming().flatten() {
            let mut line = String::new();
            if BufReader::new(&stream).read_line(&mut line).is_ok() {
                let _ = stream.write_all(line.as_bytes());
            }
        }
    });
    ready_rx.recv_timeout(Duration::from_secs(10)).expect("the echo service listens");
}

#[test]
fn an_ipv6_bypass_entry_holds_under_deny_all_and_other_ipv6_peers_are_dropped() {
    let site = Site::new("6");
    for (ns, dev, addr) in [
        (&site.host, "to-a", "fd77:1::1/64"),
        (&site.a, "eth0", "fd77:1::2/64"),
        (&site.host, "to-b", "fd77:2::1/64"),
        (&site.b, "eth0", "fd77:2::2/64"),
    ] {
        // The machine may start namespaces with IPv6 off; these are the test's own.
        testbed::run(ns.command("sysctl").args(["-qw", &format!("net.ipv6.conf.{dev}.disable_ipv6=0")])).unwrap();
        testbed::run(std::process::Command::new("ip").args(["-n", ns.name(), "addr", "add", addr, "dev", dev, "nodad"])).unwrap();
    }
    for host in ["fd77:1::1", "fd77:2::1"] {
        echo_in(&site.host, SocketAddr::new(host.parse().unwrap(), SSH));
    }
    assert_eq!(site.connect(&site.a, "[fd77:1::1]", SSH), Outcome::Connected, "open before the table");
    let cluster = Cluster::from_sources([("node.yaml", DUAL_STACK_NODE)]);
    assert_eq!(cluster.endpoint_ips(&host()).len(), 4, "{:?}", cluster.errors);
    let bypass = vec![format!("ingress:tcp:[fd77:2::/64]:{SSH}").parse::<Bypass>().unwrap()];
    let deny_all = vec![rule("deny-all", Tier::ADMIN, 1, Action::Deny, Peers::Any, &[])];
    let plan = Plan::new(&Host { endpoints: vec![host()], bypass }, &RuleSet { rules: deny_all, isolated: Default::default() }, &cluster);
    site.apply(&mut NodeFirewall::new(), &plan);
    assert_eq!(site.connect(&site.b, "[fd77:2::1]", SSH), Outcome::Connected, "bypassed over IPv6");
    assert_eq!(site.connect(&site.a, "[fd77:1::1]", SSH), Outcome::Dropped, "another IPv6 peer meets deny-all");
    assert_eq!(site.connect(&site.b, HOST_B, SSH), Outcome::Dropped, "the entry is IPv6 only");
}
