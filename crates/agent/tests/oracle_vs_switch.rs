//! The oracle and the switch agree: random clusters, NetworkPolicies and admin and baseline
//! policies (AdminNetworkPolicy, tiered ClusterNetworkPolicy, BaselineAdminNetworkPolicy with
//! Allow, Deny, Reject and Pass at colliding priorities, built as rules) are compiled by the
//! pipeline, installed on a real Open vSwitch (userspace datapath) with atomic bundles, and
//! random packets are traced through it with `ofproto/trace`; every verdict must equal the
//! reference evaluator's.
//!
//! What each packet checks depends on where it runs on this node:
//! - local pod → local pod: both egress and ingress policy run here, so the trace must
//!   deliver to the destination's port exactly when the oracle allows the packet;
//! - local pod → remote pod: only the source's egress runs here (ingress runs on the other
//!   node), so the trace must reach the tunnel exactly when the oracle's egress allows it;
//! - tunnel (remote pod, hostNetwork pod or external address) → local pod: only ingress runs
//!   here, compared with the oracle's ingress decision.
//!
//! Allowed packets must also really leave: out of the destination's port, or encapsulated
//! towards the remote node (`tnl_push`). A quarter of the TCP/UDP packets are traced again as
//! established in the original direction (must pass unless the admin tiers deny it now: a Deny
//! stops connections that began before it), as a reply (must pass whatever the policy) and
//! invalid (must drop). After each set's diff
//! bundle, the flows read back from the switch must equal the compiled ones.
//!
//! Counts: `WEIR_ORACLE_SETS` policy sets (default 100) × `WEIR_ORACLE_PACKETS` packets
//! (default 30). `WEIR_ORACLE_SEED` fixes the first set's seed (default: from the clock);
//! set `i` uses seed + i, and every failure names its set's seed so
//! `WEIR_ORACLE_SEED=<seed> WEIR_ORACLE_SETS=1` replays it; `WEIR_ORACLE_VERBOSE=1` prints
//! every cluster and every check.
mod ofproto_trace;
mod random_cluster;
mod random_packet;
mod random_tiers;

use agent::switch::Switch;
use ofproto_trace::{CtNext, Traced, trace};
use pipeline::{FlowSet, LocalPod, NodeCompiler, Topology};
use policy::{Cluster, Packet, Protocol, RuleSet, evaluate};
use random_cluster::{Dice, RandomCluster};
use random_packet::{Case, Path, Scene};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use testbed::TestSwitch;

const BRIDGE: &str = "br-int";
/// The tunnel port's OpenFlow number.
const TUNNEL_OFPORT: u32 = 100;
/// Local pod `l<i>` sits on OpenFlow port `FIRST_POD_OFPORT + i`.
const FIRST_POD_OFPORT: u32 = 10;
/// Stop reporting after this many mismatches (the first ones say enough).
const MAX_REPORTED: usize = 5;

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// The switch under test: a bridge with one internal port per possible local pod and a
/// GENEVE tunnel port, plus the flows currently installed on it.
struct Bench {
    ts: TestSwitch,
    rt: tokio::runtime::Runtime,
    switch: Switch,
    installed: FlowSet,
}

impl Bench {
    fn new() -> Bench {
        let ts = TestSwitch::with_bridge().expect("test switch");
        let mut args: Vec<String> = Vec::new();
        for i in 0..random_cluster::MAX_LOCAL_PODS as u32 {
            let port = FIRST_POD_OFPORT + i;
            args.extend(
                ["--", "add-port", BRIDGE, &format!("pod{port}"), "--", "set", "interface", &format!("pod{port}")]
                    .map(String::from),
            );
            args.extend(["type=internal".to_string(), format!("ofport_request={port}")]);
        }
        args.extend(
            ["--", "add-port", BRIDGE, "tun0", "--", "set", "interface", "tun0", "type=geneve"].map(String::from),
        );
        args.extend([format!("ofport_request={TUNNEL_OFPORT}"), "options:remote_ip=flow".into(), "options:key=flow".into()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ts.ovs.vsctl(&args).expect("add pod and tunnel ports");
        for i in 0..random_cluster::MAX_LOCAL_PODS as u32 {
            let port = FIRST_POD_OFPORT + i;
            let got = ts.ovs.vsctl(&["get", "interface", &format!("pod{port}"), "ofport"]).expect("ofport");
            assert_eq!(got.trim(), port.to_string(), "pod{port} did not get its requested OpenFlow port");
        }
        let got = ts.ovs.vsctl(&["get", "interface", "tun0", "ofport"]).expect("ofport");
        assert_eq!(got.trim(), TUNNEL_OFPORT.to_string(), "tun0 did not get its requested OpenFlow port");
        ts.ovs.ofctl("del-flows", BRIDGE, &[]).expect("clear the bridge's default flows");
        underlay(&ts);

        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
        let target = format!("unix:{}", ts.ovs.mgmt_socket(BRIDGE).display());
        let switch = rt.block_on(Switch::connect(&target)).expect("connect to the switch");
        Bench { ts, rt, switch, installed: FlowSet::default() }
    }

    /// Makes the switch hold exactly `desired`, by a diff against what the last install left,
    /// in one bundle; then reads the flows back to check.
    fn install(&mut self, desired: &FlowSet) -> usize {
        let mods = pipeline::diff(desired, &self.installed);
        self.rt.block_on(self.switch.bundle(&mods)).expect("bundle the diff");
        let on_switch: FlowSet = self.rt.block_on(self.switch.dump_flows()).expect("dump flows").into_iter().collect();
        assert!(on_switch == *desired, "the switch does not hold the desired flows after the diff bundle");
        self.installed = desired.clone();
        mods.len()
    }
}

/// The underlay the tunnel needs for the datapath to encapsulate: this node's tunnel address
/// on the LOCAL port of a second bridge (userspace native tunnelling routes through it) with
/// an uplink port the encapsulated packet leaves by, and
/// the remote endpoint's MAC pre-seeded, so an allowed packet to a remote pod shows up as a
/// `tnl_push` towards the remote node in the datapath actions. All inside the switch's
/// namespace, which has no route out.
fn underlay(ts: &TestSwitch) {
    ts.ovs
        .vsctl(&[
            "add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type=netdev", "fail_mode=standalone",
            "--", "add-port", "br-phy", "uplink", "--", "set", "interface", "uplink", "type=internal",
        ])
        .expect("add the underlay bridge");
    let ns = ts.netns.name();
    let addr = format!("{}/24", random_cluster::LOCAL_NODE_IP);
    testbed::run(std::process::Command::new("ip").args(["-n", ns, "addr", "add", &addr, "dev", "br-phy"]))
        .expect("address the underlay");
    testbed::run(std::process::Command::new("ip").args(["-n", ns, "link", "set", "br-phy", "up"])).expect("underlay up");
    let remote = random_cluster::REMOTE_NODE_IP.to_string();
    ts.ovs.appctl(&["tnl/neigh/set", "br-phy", &remote, "02:00:c0:a8:4d:02"]).expect("seed the remote endpoint's MAC");
    // ovs-vswitchd learns the namespace's routes asynchronously.
    let routed = testbed::ovs::wait_until(Duration::from_secs(10), || {
        ts.ovs.appctl(&["ovs/route/show"]).is_ok_and(|r| r.contains("192.168.77.0/24"))
    });
    assert!(routed.is_ok(), "ovs-vswitchd never learned the underlay route");
}

/// This node's topology: local pods on the ports the bench created.
fn topology(cluster: &Cluster) -> Topology {
    let gateway_ip = pipeline::compile::gateway_for(&cluster.nodes[random_cluster::LOCAL_NODE]).expect("local pod CIDR");
    let mut local_pods = BTreeMap::new();
    for pod in cluster.pods.values() {
        if pod.node.as_deref() != Some(random_cluster::LOCAL_NODE) || pod.host_network {
            continue;
        }
        let index: u32 = pod.key.name.strip_prefix('l').and_then(|i| i.parse().ok()).expect("local pods are l<i>");
        let Some(IpAddr::V4(ip)) = pod.ips.first().copied() else { panic!("local pod {} has no IPv4 address", pod.key) };
        local_pods.insert(
            pod.key.clone(),
            LocalPod { ofport: FIRST_POD_OFPORT + index, ip, mac: pipeline::compile::pod_mac_for(ip) },
        );
    }
    Topology {
        node: random_cluster::LOCAL_NODE.to_string(),
        gateway_ip,
        gateway_mac: Topology::gateway_mac_for(gateway_ip),
        node_ips: Vec::new(),
        tunnel_ofport: Some(TUNNEL_OFPORT),
        gateway_ofport: None,
        local_pods,
        remote_nodes: pipeline::compile::remote_nodes(cluster, random_cluster::LOCAL_NODE),
        ports: Default::default(),
        service_cidrs: Vec::new(),
        host_interfaces: Vec::new(),
        host_bypass: Vec::new(),
        node_policy: false,
        tunnel_udp_port: 6081,
    }
}

/// Totals over a run.
#[derive(Default)]
struct Tally {
    sets: usize,
    checks: usize,
    /// Established, reply and invalid checks of conntrack.
    ct_checks: usize,
    /// (path, allowed by the oracle) → count.
    by_path: BTreeMap<(Path, bool), usize>,
    /// Checks decided by a rule (not just by isolation or its absence).
    by_rule: usize,
    /// Checks decided by an admin or baseline rule.
    by_tiered_rule: usize,
    /// Admin and baseline rules generated.
    tiered_rules: usize,
    flows: usize,
    flow_mods: usize,
    invalid_policies: usize,
    mismatches: usize,
    report: String,
}

/// `WEIR_ORACLE_VERBOSE=1` prints every cluster and check.
fn verbose() -> bool {
    std::env::var_os("WEIR_ORACLE_VERBOSE").is_some()
}

fn check_set(bench: &mut Bench, seed: u64, packets: usize, tally: &mut Tally) {
    let mut d = Dice::new(seed);
    let generated: RandomCluster = random_cluster::generate(&mut d);
    let cluster = Cluster::from_sources([("random.yaml", generated.yaml.as_str())]);
    assert_eq!(
        cluster.errors.is_empty(),
        generated.invalid_policies == 0,
        "seed {seed}: errors {:?} but {} policies were made invalid\n{}",
        cluster.errors,
        generated.invalid_policies,
        generated.yaml
    );
    if verbose() {
        eprintln!("seed {seed}: cluster\n{}", generated.yaml);
    }
    let tiered = random_tiers::generate(&mut d, &cluster, &generated);
    if verbose() {
        eprintln!("seed {seed}: admin and baseline rules\n{tiered:#?}");
    }
    let rules: RuleSet = random_tiers::merged(cluster.rules(), &tiered);
    let admin = random_tiers::admin_only(&rules);
    let conflicts = pipeline::placement::order_conflicts(&rules.rules, &pipeline::placement::Slots::of(&rules.rules));
    assert!(conflicts.is_empty(), "seed {seed}: the generator made rules the switch cannot order: {conflicts:?}");
    let topo = topology(&cluster);
    tally.tiered_rules += tiered.values().map(Vec::len).sum::<usize>();
    let compiled = NodeCompiler::with_tiered(&cluster, topo.clone(), tiered.clone()).into_compiled();
    tally.flow_mods += bench.install(&compiled.flows);
    tally.flows += compiled.flows.len();
    tally.invalid_policies += generated.invalid_policies;
    tally.sets += 1;

    let scene = Scene { cluster: &cluster, rules: &rules, topo: &topo, generated: &generated, tunnel_ofport: TUNNEL_OFPORT };
    let mut cluster_shown = false;
    for _ in 0..packets {
        let case = scene.case(&mut d);
        let packet = Packet {
            src: case.probe.src.into(),
            dst: case.probe.dst.into(),
            protocol: case.probe.protocol,
            dst_port: case.probe.dst_port,
        };
        let verdict = evaluate(&cluster, &rules, &packet);
        let want = case.path.oracle_allows(&verdict);
        let traced = trace(&bench.ts.ovs, BRIDGE, &case.probe, CtNext::New).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        tally.checks += 1;
        *tally.by_path.entry((case.path, want)).or_default() += 1;
        tally.by_rule += usize::from(case.path.decided_by_rule(&verdict));
        tally.by_tiered_rule += usize::from(decided_by_tiered_rule(case.path, &verdict));
        if verbose() {
            eprintln!("seed {seed}: {} [{:?}] oracle {want} switch {:?}", case.probe, case.path, traced.output);
        }
        let mut problems = Vec::new();
        if !agrees(&case, want, &traced) {
            problems.push(("the switch disagrees with the oracle", CtNext::New, traced));
        }
        // Later packets: an established connection's packets meet only the admin tiers again
        // (a Deny added since stops them), replies pass whatever the policy says now, invalid
        // packets never do. (SCTP skips conntrack.) A quarter of the packets is enough.
        if case.probe.protocol != Protocol::Sctp && d.chance(25) {
            let admin_allows = case.path.oracle_allows(&evaluate(&cluster, &admin, &packet));
            for (ct, pass, problem) in [
                (CtNext::Established, admin_allows, "an established packet disagrees with the admin tiers"),
                (CtNext::Reply, true, "a reply is not delivered"),
                (CtNext::Invalid, false, "an invalid packet is delivered"),
            ] {
                let traced = trace(&bench.ts.ovs, BRIDGE, &case.probe, ct).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
                tally.ct_checks += 1;
                if !agrees(&case, pass, &traced) {
                    problems.push((problem, ct, traced));
                }
            }
        }
        for (problem, ct, traced) in problems {
            tally.mismatches += 1;
            if tally.mismatches <= MAX_REPORTED {
                let r = &mut tally.report;
                let _ = writeln!(r, "\n======== MISMATCH: {problem} (replay: WEIR_ORACLE_SEED={seed} WEIR_ORACLE_SETS=1)");
                if !std::mem::replace(&mut cluster_shown, true) {
                    let flows = bench.ts.ovs.ofctl("dump-flows", BRIDGE, &["--no-stats"]).unwrap_or_else(|e| e.to_string());
                    let _ = writeln!(r, "---- cluster (YAML):\n{}\n---- installed flows:\n{flows}", generated.yaml);
                }
                let _ = writeln!(r, "---- packet: {} [{:?}]", case.probe, case.path);
                let _ = writeln!(r, "---- oracle: {} for this path\n{verdict}", if want { "ALLOWED" } else { "DENIED" });
                let _ = writeln!(
                    r,
                    "---- switch: output {:?} (allowed means port {}), datapath actions: {}",
                    traced.output, case.allowed_port, traced.datapath_actions
                );
                let _ = writeln!(
                    r,
                    "---- ovs-appctl ofproto/trace {BRIDGE} '{}' --ct-next {}\n{}",
                    case.probe.flow(),
                    ct.flags(),
                    traced.text
                );
            }
        }
    }
}

/// Whether an admin or baseline rule decided the part of the verdict this path checks.
fn decided_by_tiered_rule(path: Path, v: &policy::Verdict) -> bool {
    let tiered = |d: &policy::Decision| d.rule.as_ref().is_some_and(|r| r.origin.policy.kind != policy::PolicyKind::NetworkPolicy);
    match path {
        Path::LocalToLocal => tiered(&v.egress) || tiered(&v.ingress),
        Path::LocalToRemote => tiered(&v.egress),
        Path::TunnelToLocal => tiered(&v.ingress),
    }
}

/// Whether the switch did what the oracle says: out through the expected port when allowed,
/// no output at all when denied.
fn agrees(case: &Case, want: bool, traced: &Traced) -> bool {
    if want {
        let delivered = traced.output == Some(case.allowed_port);
        // The datapath must really send it: encapsulated towards the remote node, or out of a
        // local port.
        let sent = match case.path {
            Path::LocalToRemote => {
                traced.datapath_actions.contains("tnl_push")
                    && traced.datapath_actions.contains(&format!("dst={}", random_cluster::REMOTE_NODE_IP))
            }
            _ => traced.datapath_actions != "drop",
        };
        delivered && sent
    } else {
        traced.output.is_none()
    }
}

#[test]
fn oracle_and_switch_agree_on_random_policy_sets() {
    let sets = env_number("WEIR_ORACLE_SETS", 100);
    let packets = env_number("WEIR_ORACLE_PACKETS", 30) as usize;
    let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let first_seed = env_number("WEIR_ORACLE_SEED", clock.as_secs() * 1000);
    eprintln!("oracle vs switch: {sets} sets x {packets} packets, WEIR_ORACLE_SEED={first_seed}");

    let started = Instant::now();
    let mut bench = Bench::new();
    let mut tally = Tally::default();
    for i in 0..sets {
        check_set(&mut bench, first_seed + i, packets, &mut tally);
    }
    let elapsed = started.elapsed();

    let allowed: usize = tally.by_path.iter().filter(|((_, a), _)| *a).map(|(_, n)| n).sum();
    eprintln!(
        "{} sets, {} packet checks against the oracle (+{} established/reply/invalid checks) in {:.1} s ({} mismatches); \
         oracle allowed {allowed}, denied {}; {} decided by a rule, {} by an admin or baseline rule ({} such rules); \
         {} flows compiled, {} flow_mods sent; {} invalid policies",
        tally.sets,
        tally.checks,
        tally.ct_checks,
        elapsed.as_secs_f64(),
        tally.mismatches,
        tally.checks - allowed,
        tally.by_rule,
        tally.by_tiered_rule,
        tally.tiered_rules,
        tally.flows,
        tally.flow_mods,
        tally.invalid_policies
    );
    for ((path, allowed), n) in &tally.by_path {
        eprintln!("  {path:?} {}: {n}", if *allowed { "allowed" } else { "denied" });
    }
    assert!(
        tally.mismatches == 0,
        "{} of {} checks disagree (first seed {first_seed}){}",
        tally.mismatches,
        tally.checks,
        tally.report
    );
    // A generator that only ever allows (or only denies) would make agreement meaningless.
    if tally.checks >= 200 {
        for path in Path::ALL {
            for allowed in [true, false] {
                let n = tally.by_path.get(&(path, allowed)).copied().unwrap_or(0);
                assert!(n * 50 >= tally.checks, "only {n} {path:?} packets were {} by the oracle", if allowed { "allowed" } else { "denied" });
            }
        }
        assert!(tally.by_rule * 10 >= tally.checks, "only {} of {} checks were decided by a rule", tally.by_rule, tally.checks);
        assert!(
            tally.by_tiered_rule * 10 >= tally.checks,
            "only {} of {} checks were decided by an admin or baseline rule",
            tally.by_tiered_rule,
            tally.checks
        );
    }
}
