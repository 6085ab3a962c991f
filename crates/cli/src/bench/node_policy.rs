//! `node-policy`: what node rules cost the traffic to a host's own service (Antrea #5671's
//! experiment: TCP_CRR lost 9 % at 50 iptables rules, 14 % at 100). A server namespace (the
//! host, with a TCP service and iperf3) and a client namespace over a veth; each realization
//! installs 0, 50, 100 and 1,000 ingress rules of the host endpoint, all in one run:
//!
//! - weir-nftables: `agent::node_firewall` (a chain per tier, rules dispatched by port through a
//!   verdict map, peers in interval sets);
//! - iptables+ipset (both `iptables` backends on this machine): one iptables rule per policy rule
//!   in one chain, each rule's peers in an ipset, the seed's layout;
//! - weir-OVS ([`ovs`]): the server's interface moved onto an OVS bridge as the agent moves a
//!   node's uplink (`--node-policy ovs`), the rules compiled by the agent's compiler into the
//!   admin tables' conjunctions (one flow per peer block and per port, whatever the rule count).
//!
//! The rules are distinct (rule i allows TCP port 10000+i from its own /29); the probed
//! connections match the LAST rule, so an iptables chain is walked in full by every new
//! connection. "0 rules" is each realization's skeleton (conntrack accept of established
//! packets, an empty policy chain), so the ratios price the rules, not conntrack; the "no
//! firewall" row prices the skeleton. Connection rate: a Rust client (several threads: connect,
//! 1-byte request, 1-byte answer, the client closes first; netperf TCP_CRR's exchange) for a fixed
//! time; throughput: iperf3. Each round takes the realizations in a shuffled order and each one's
//! rule counts back to back (shuffled), so a ratio's figures are seconds apart; figures are medians.
use super::datapath::{IPERF_PORT, Servers, in_netns, iperf, pipe, run_ok};
use super::{Check, Report, fmt_num, median};
use agent::node_firewall::{Host, NodeFirewall, Plan};
use policy::netpol::{Direction, IpBlock, PortMatch, Service};
use policy::rules::{Action, Endpoint, Origin, Peers, PolicyKind, PolicyRef, Rule, RuleId, RuleSet, Services, Tier};
use policy::synthetic::Rng;
use policy::{Cluster, Protocol};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use testbed::Netns;

mod ovs;

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 2);
const CRR_PORT: u16 = 7000;
/// Client threads, each one connection at a time, thread t to port [`CRR_PORT`] + t: a
/// destination port of its own gives each thread the client's whole range of local ports (a
/// closed connection's port is free again a second later, and connect() takes every other
/// port: about 32,000 connections a second per destination, a ceiling one port would put
/// under the rates measured).
const CRR_CLIENTS: usize = 4;
const CRR_LAST_PORT: u16 = CRR_PORT + CRR_CLIENTS as u16 - 1;
/// Server threads per port.
const CRR_SERVERS: usize = 2;
/// The core of the measured exchanges: client and server threads (and the kernel's work for
/// their packets, which runs on the sending thread's core), for every realization alike; the
/// weir-OVS switch runs on [`SWITCH_CPU`]. Left to the scheduler on 2 cores, the rates jumped
/// between about 40,000 and 57,000 conn/s from one point to the next (0-rule spread 27-51 %);
/// pinned, 4 %.
const LOAD_CPU: usize = 0;
pub(crate) const SWITCH_CPU: usize = 1;

/// Keeps the calling thread on `cpu` (where the machine has it).
fn pin_to(cpu: usize) {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) <= cpu {
        return;
    }
    // SAFETY: a zeroed cpu_set_t is an empty set, CPU_SET writes inside it, and
    // sched_setaffinity reads it for the calling thread (pid 0).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}
/// Seconds of each iperf3 run (a stream's rate does not depend on the rules: only its first
/// packet meets them).
const TPUT_SECS: u64 = 2;

/// One way of realizing node rules, measured side by side with the others.
pub(crate) trait Realization {
    /// Its column name.
    fn name(&self) -> String;
    /// Sets up what it needs once, before any measurement (e.g. the server's interface on a
    /// bridge); the site is in place, the services listen.
    fn prepare(&mut self, _site: &Site) -> anyhow::Result<()> {
        Ok(())
    }
    /// Installs `rules` (those of the host endpoint `site.host`) in the server namespace,
    /// replacing what it installed before; no rules is its empty skeleton.
    fn install(&mut self, site: &Site, rules: &RuleSet) -> anyhow::Result<()>;
    /// Removes everything it installed.
    fn remove(&mut self, site: &Site) -> anyhow::Result<()>;
    /// The packets its realization of `rule` matched since installed (proof that the measured
    /// connections met the rules).
    fn matched(&mut self, site: &Site, rule: &Rule) -> anyhow::Result<u64>;
    /// The packets it dropped as invalid to conntrack since installed, where it counts them
    /// (weir-OVS: a conntrack that misses one direction of the connections fails its sequence
    /// checks and drops the rest, which is what the connection rate would then measure).
    fn invalid_dropped(&mut self, _site: &Site) -> anyhow::Result<Option<u64>> {
        Ok(None)
    }
}

/// The two namespaces, the host endpoint the rules apply to and the cluster that knows its
/// address.
pub(crate) struct Site {
    pub server: Netns,
    pub client: Netns,
    pub host: Host,
    pub cluster: Cluster,
}

impl Site {
    fn up() -> anyhow::Result<Site> {
        let id = std::process::id();
        let server = Netns::add(&format!("wnp-s{id}"))?;
        let client = Netns::add(&format!("wnp-c{id}"))?;
        server.veth("eth0", &format!("{SERVER}/24"), &client, "eth0", &format!("{CLIENT}/24"))?;
        // The client opens a connection per exchange: every local port, reused at once.
        testbed::run(client.command("sysctl").args(["-q", "-w", "net.ipv4.ip_local_port_range=1024 65000", "net.ipv4.tcp_tw_reuse=1"]))?;
        // Tracked connections leave conntrack's (machine-wide) table within a second.
        let timeouts = ["time_wait", "close", "fin_wait", "close_wait", "last_ack"];
        let mut sysctl = server.command("sysctl");
        sysctl.arg("-q").arg("-w").args(timeouts.map(|t| format!("net.netfilter.nf_conntrack_tcp_timeout_{t}=1")));
        testbed::run(&mut sysctl)?;
        let host = Host { endpoints: vec![host_endpoint()], bypass: Vec::new() };
        let node = format!(
            "apiVersion: v1\nkind: Node\nmetadata: {{name: {NODE}}}\nstatus: {{addresses: [{{type: InternalIP, address: {SERVER}}}]}}\n"
        );
        let cluster = Cluster::from_sources([("node.yaml", node.as_str())]);
        anyhow::ensure!(cluster.endpoint_ips(&host_endpoint()) == [std::net::IpAddr::from(SERVER)], "node {NODE}: {:?}", cluster.errors);
        Ok(Site { server, client, host, cluster })
    }
}

/// The server namespace is Node `bench-server`, its InternalIP the server's address.
const NODE: &str = "bench-server";

fn host_endpoint() -> Endpoint {
    Endpoint::Node(NODE.into())
}

/// `n` ingress rules of the host: rule i allows TCP port 10000+i from 172.16.0.0/16's i-th
/// /29, the last allows the client to the measured ports.
fn node_rules(n: usize) -> RuleSet {
    let rules = (0..n)
        .map(|i| {
            let last = i + 1 == n;
            let (peer, ports) = if last {
                (format!("{CLIENT}/32"), vec![(CRR_PORT, CRR_LAST_PORT), (IPERF_PORT, IPERF_PORT)])
            } else {
                let port = 10000 + i as u16;
                (format!("172.16.{}.{}/29", i / 32, (i % 32) * 8), vec![(port, port)])
            };
            allow(i, &peer, &ports)
        })
        .collect();
    RuleSet { rules, isolated: Default::default() }
}

fn allow(i: usize, peer: &str, ports: &[(u16, u16)]) -> Rule {
    let name = format!("node-rule-{i}");
    Rule {
        id: RuleId(format!("ClusterNetworkPolicy/{name}/ingress/0")),
        origin: Origin {
            policy: PolicyRef { kind: PolicyKind::AntreaClusterNetworkPolicy, namespace: None, name },
            rule: "ingress[0]".into(),
        },
        direction: Direction::Ingress,
        tier: Tier::ADMIN,
        priority: i as u32,
        action: Action::Allow,
        applied_to: BTreeSet::from([host_endpoint()]),
        peers: Peers::Set { pods: BTreeSet::new(), blocks: vec![IpBlock { cidr: peer.parse().expect("a CIDR"), except: Vec::new() }] },
        services: Services::List(
            ports.iter().map(|&(lo, hi)| Service { protocol: Protocol::Tcp, port: PortMatch::Range(lo, hi) }).collect(),
        ),
        audit: None,
    }
}

/// weir's nftables realization, applied from a thread inside the server namespace.
struct WeirNftables(NodeFirewall);

impl WeirNftables {
    fn in_server<T: Send>(&mut self, site: &Site, f: impl AsyncFnOnce(&mut NodeFirewall) -> T + Send) -> anyhow::Result<T> {
        let ns = site.server.name().to_string();
        let fw = &mut self.0;
        std::thread::scope(|s| {
            s.spawn(move || {
                testbed::netns::enter_on_this_thread(&ns)?;
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                Ok(rt.block_on(f(fw)))
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the nft thread panicked"))?
        })
    }
}

impl Realization for WeirNftables {
    fn name(&self) -> String {
        "weir-nftables".into()
    }

    fn install(&mut self, site: &Site, rules: &RuleSet) -> anyhow::Result<()> {
        let plan = Plan::new(&site.host, rules, &site.cluster);
        self.in_server(site, async |fw| fw.apply(&plan).await)?.map_err(anyhow::Error::msg)?;
        Ok(())
    }

    fn remove(&mut self, site: &Site) -> anyhow::Result<()> {
        self.in_server(site, async |fw| fw.remove().await)?.map_err(anyhow::Error::msg)
    }

    fn matched(&mut self, site: &Site, rule: &Rule) -> anyhow::Result<u64> {
        let counters = self.in_server(site, async |_| agent::node_firewall::counters().await)?.map_err(anyhow::Error::msg)?;
        Ok(counters.get(&agent::node_firewall::counter_name(&rule.id)).map_or(0, |c| c.packets))
    }
}

/// The seed's layout: in `filter INPUT`, established connections accepted, then a jump to one
/// chain with an iptables rule per policy rule matching the rule's ipset.
struct IptablesIpset {
    program: &'static str,
}

const IPT_CHAIN: &str = "WEIR-NODE";

impl Realization for IptablesIpset {
    fn name(&self) -> String {
        format!("{}+ipset", self.program)
    }

    fn install(&mut self, site: &Site, rules: &RuleSet) -> anyhow::Result<()> {
        self.remove(site)?;
        let (mut sets, mut chain) = (String::new(), String::new());
        for (i, rule) in rules.rules.iter().enumerate() {
            sets.push_str(&ipset_of(i, rule)?);
            chain.push_str(&iptables_rule(i, rule)?);
        }
        pipe(in_netns(site.server.name(), "ipset").arg("restore"), &sets, "ipset restore")?;
        let table = format!(
            "*filter\n:INPUT ACCEPT [0:0]\n:{IPT_CHAIN} - [0:0]\n-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n-A INPUT -j {IPT_CHAIN}\n{chain}COMMIT\n"
        );
        pipe(&mut in_netns(site.server.name(), &format!("{}-restore", self.program)), &table, "iptables-restore")
    }

    fn remove(&mut self, site: &Site) -> anyhow::Result<()> {
        let ns = site.server.name();
        run_ok(
            {
                let mut c = in_netns(ns, self.program);
                c.args(["-F"]);
                c
            },
            "iptables -F",
        )?;
        run_ok(
            {
                let mut c = in_netns(ns, self.program);
                c.args(["-X"]);
                c
            },
            "iptables -X",
        )?;
        run_ok(
            {
                let mut c = in_netns(ns, "ipset");
                c.arg("destroy");
                c
            },
            "ipset destroy",
        )?;
        Ok(())
    }

    /// The packet count of the chain's rule commented with `rule`'s id (`iptables -L -v -x`).
    fn matched(&mut self, site: &Site, rule: &Rule) -> anyhow::Result<u64> {
        let listing = run_ok(
            {
                let mut c = in_netns(site.server.name(), self.program);
                c.args(["-L", IPT_CHAIN, "-v", "-n", "-x"]);
                c
            },
            "iptables -L",
        )?;
        let comment = format!("/* {} */", rule.id);
        let line = listing.lines().find(|l| l.contains(&comment)).ok_or_else(|| anyhow::anyhow!("no rule {comment} in:\n{listing}"))?;
        line.split_whitespace().next().and_then(|p| p.parse().ok()).ok_or_else(|| anyhow::anyhow!("no packet count in {line:?}"))
    }
}

/// The ipset of rule `i`'s peers (`hash:net`).
fn ipset_of(i: usize, rule: &Rule) -> anyhow::Result<String> {
    let Peers::Set { blocks, .. } = &rule.peers else { anyhow::bail!("{}: the bench's iptables rules need address peers", rule.id) };
    let mut out = format!("create wn-{i} hash:net\n");
    for b in blocks {
        out.push_str(&format!("add wn-{i} {}\n", b.cidr));
    }
    Ok(out)
}

/// `-A WEIR-NODE -p tcp -m multiport --dports P,... -m set --match-set wn-i src -m comment
/// --comment ID -j ACCEPT` (the comment last: it is evaluated only when the rest matched).
fn iptables_rule(i: usize, rule: &Rule) -> anyhow::Result<String> {
    let Services::List(list) = &rule.services else { anyhow::bail!("{}: the bench's iptables rules need ports", rule.id) };
    let ports: Vec<String> = list
        .iter()
        .map(|s| match s.port {
            PortMatch::Range(lo, hi) if lo == hi => Ok(lo.to_string()),
            PortMatch::Range(lo, hi) => Ok(format!("{lo}:{hi}")),
            _ => Err(anyhow::anyhow!("{}: the bench's iptables rules need numeric ports", rule.id)),
        })
        .collect::<anyhow::Result<_>>()?;
    let target = match rule.action {
        Action::Allow => "ACCEPT",
        Action::Deny => "DROP",
        other => anyhow::bail!("{}: action {other:?} is not in the bench's iptables layout", rule.id),
    };
    let ports =
        if ports.len() == 1 { format!("-m tcp --dport {}", ports[0]) } else { format!("-m multiport --dports {}", ports.join(",")) };
    Ok(format!("-A {IPT_CHAIN} -p tcp {ports} -m set --match-set wn-{i} src -m comment --comment \"{}\" -j {target}\n", rule.id))
}

/// The service the client connects to: read a byte, answer a byte, wait for the client to
/// close, close.
fn crr_server(site: &Site) -> anyhow::Result<()> {
    (CRR_PORT..=CRR_LAST_PORT).try_for_each(|port| crr_listener(site, port))
}

fn crr_listener(site: &Site, port: u16) -> anyhow::Result<()> {
    let ns = site.server.name().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let bound = testbed::netns::enter_on_this_thread(&ns).and_then(|()| TcpListener::bind((SERVER, port)));
        let listener = match bound {
            Ok(l) => l,
            Err(e) => return tx.send(Err(e)).unwrap_or(()),
        };
        let _ = tx.send(Ok(()));
        // Threads serving accept() on one listener; they live as long as the bench.
        for _ in 1..CRR_SERVERS {
            let l = listener.try_clone().expect("listener clone");
            std::thread::spawn(move || {
                pin_to(LOAD_CPU);
                serve(l)
            });
        }
        pin_to(LOAD_CPU);
        serve(listener);
    });
    rx.recv()?.map_err(|e| anyhow::anyhow!("CRR server on {SERVER}:{port}: {e}"))
}

fn serve(listener: TcpListener) {
    for mut s in listener.incoming().flatten() {
        let mut b = [0u8; 1];
        // A request lost on the way (its client gave up) must not hold a server thread forever.
        if s.set_read_timeout(Some(Duration::from_secs(1))).is_ok() && s.read_exact(&mut b).is_ok() && s.write_all(&b).is_ok() {
            // The client closes first, so TIME_WAIT is the client's, whose kernel reuses a port
            // only a second after (tcp_tw_reuse). Were it the server's, the client would pick
            // ports the server still holds in TIME_WAIT: SYNs met by a challenge ACK or a
            // SYN-ACK numbered after the old connection, a 1 s retransmission each, and a
            // userspace conntrack that finds such SYN-ACKs invalid.
            let _ = s.read(&mut b);
        }
    }
}

/// Exchanges from [`CRR_CLIENTS`] threads in the client namespace for `secs`.
struct Crr {
    per_s: f64,
    done: u64,
    failed: u64,
}

fn crr(site: &Site, secs: f64) -> anyhow::Result<Crr> {
    let (done, failed) = (AtomicU64::new(0), AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let threads: Vec<_> = (CRR_PORT..=CRR_LAST_PORT)
            .map(|port| {
                let (ns, done, failed) = (site.client.name().to_string(), &done, &failed);
                s.spawn(move || -> std::io::Result<()> {
                    testbed::netns::enter_on_this_thread(&ns)?;
                    pin_to(LOAD_CPU);
                    while Instant::now() < deadline {
                        let counter = if exchange(port).is_ok() { done } else { failed };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        for t in threads {
            t.join().map_err(|_| anyhow::anyhow!("a CRR client panicked"))??;
        }
        Ok(())
    })?;
    let done = done.into_inner();
    Ok(Crr { per_s: done as f64 / started.elapsed().as_secs_f64(), done, failed: failed.into_inner() })
}

fn exchange(port: u16) -> std::io::Result<()> {
    let mut s = TcpStream::connect_timeout(&SocketAddr::from((SERVER, port)), Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(1)))?;
    s.write_all(b"x")?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b)
}

/// One configuration: a realization (`None`: no firewall at all) with `n` rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Config {
    realization: Option<usize>,
    rules: usize,
}

#[derive(Default)]
struct Figures {
    crr: BTreeMap<Config, Vec<f64>>,
    tput: BTreeMap<Config, Vec<f64>>,
    install_ms: BTreeMap<Config, Vec<f64>>,
    failed: u64,
    /// Per configuration with rules: new connections made, packets the last rule matched.
    matched: BTreeMap<Config, (u64, u64)>,
    /// Per configuration of a realization that counts them: new connections made, packets
    /// dropped as invalid.
    invalid: BTreeMap<Config, (u64, u64)>,
}

/// What a run measures: the realizations named in `only` (all when empty) with 0 rules and
/// each of `rules`.
pub(crate) struct Selection {
    pub only: Vec<String>,
    pub rules: Vec<usize>,
}

impl Selection {
    fn realizations(&self) -> anyhow::Result<Vec<Box<dyn Realization>>> {
        let all: Vec<Box<dyn Realization>> = vec![
            Box::new(WeirNftables(NodeFirewall::new())),
            Box::new(IptablesIpset { program: "iptables" }),
            Box::new(IptablesIpset { program: "iptables-legacy" }),
            Box::new(ovs::WeirOvs::new()),
        ];
        let names: Vec<String> = all.iter().map(|r| r.name()).collect();
        if let Some(unknown) = self.only.iter().find(|o| !names.contains(o)) {
            anyhow::bail!("--only {unknown}: the realizations are {}", names.join(", "));
        }
        Ok(all.into_iter().filter(|r| self.only.is_empty() || self.only.contains(&r.name())).collect())
    }

    fn counts(&self) -> Vec<usize> {
        std::iter::once(0).chain(self.rules.iter().copied()).collect::<BTreeSet<_>>().into_iter().collect()
    }
}

pub(crate) fn run(quick: bool, rounds: Option<usize>, secs: Option<f64>, seed: u64, select: &Selection) -> anyhow::Result<Report> {
    let rounds = rounds.unwrap_or(if quick { 1 } else { 5 });
    let secs = secs.unwrap_or(if quick { 1.0 } else { 3.0 });
    let mut realizations = select.realizations()?;
    let counts = select.counts();
    let site = Site::up()?;
    crr_server(&site)?;
    let quiet = |mut c: std::process::Command| c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn();
    let mut iperf_server = in_netns(site.server.name(), "iperf3");
    iperf_server.args(["-s", "-p", &IPERF_PORT.to_string(), "-B", &SERVER.to_string()]);
    let servers = Servers(vec![quiet(iperf_server)?]);
    std::thread::sleep(Duration::from_millis(300));
    for r in &mut realizations {
        r.prepare(&site)?;
    }
    let mut configs = vec![Config { realization: None, rules: 0 }];
    configs.extend((0..realizations.len()).flat_map(|r| counts.iter().map(move |&n| Config { realization: Some(r), rules: n })));
    let figures = measure(&site, &mut realizations, &configs, rounds, secs, seed)?;
    drop(servers);
    let names: Vec<String> = realizations.iter().map(|r| r.name()).collect();
    Ok(report(&names, &configs, &figures, rounds, secs))
}

fn measure(
    site: &Site,
    realizations: &mut [Box<dyn Realization>],
    configs: &[Config],
    rounds: usize,
    secs: f64,
    seed: u64,
) -> anyhow::Result<Figures> {
    let mut rng = Rng::new(seed);
    let mut f = Figures::default();
    // A realization's configurations are measured one after the other, in a shuffled order,
    // so a ratio's two figures are seconds apart, not a round apart: slow drifts of the
    // machine hit both.
    let mut blocks: BTreeMap<Option<usize>, Vec<Config>> = BTreeMap::new();
    for c in configs {
        blocks.entry(c.realization).or_default().push(*c);
    }
    let blocks: Vec<Vec<Config>> = blocks.into_values().collect();
    for round in 0..rounds {
        super::progress(format_args!("node-policy: round {} of {rounds}", round + 1));
        for c in rng.shuffled(&blocks).iter().flat_map(|b| rng.shuffled(b)) {
            let rules = node_rules(c.rules);
            let started = Instant::now();
            if let Some(r) = c.realization {
                realizations[r].install(site, &rules)?;
            }
            f.install_ms.entry(c).or_default().push(super::ms(started.elapsed()));
            let run = crr(site, secs)?;
            f.failed += run.failed;
            f.crr.entry(c).or_default().push(run.per_s);
            f.tput.entry(c).or_default().push(iperf(site.client.name(), SERVER, TPUT_SECS)?);
            if let (Some(r), Some(last)) = (c.realization, rules.rules.last()) {
                let m = f.matched.entry(c).or_default();
                m.0 += run.done;
                m.1 += realizations[r].matched(site, last)?;
            }
            if let Some(r) = c.realization {
                if let Some(n) = realizations[r].invalid_dropped(site)? {
                    let i = f.invalid.entry(c).or_default();
                    i.0 += run.done;
                    i.1 += n;
                }
                realizations[r].remove(site)?;
            }
        }
    }
    Ok(f)
}

fn report(names: &[String], configs: &[Config], f: &Figures, rounds: usize, secs: f64) -> Report {
    let name = |c: &Config| c.realization.map_or("no firewall".to_string(), |r| names[r].clone());
    let base = |c: &Config| Config { rules: 0, ..*c };
    // The median of the rounds' ratios: each round's figure over the same round's baseline,
    // so drift between rounds (other work on the machine) cancels.
    let ratio = |m: &BTreeMap<Config, Vec<f64>>, c: &Config| {
        let per_round: Vec<f64> = m[c].iter().zip(&m[&base(c)]).map(|(v, b)| v / b).collect();
        median(&per_round)
    };
    let mut report = Report::new(&[
        "realization",
        "rules",
        "conn/s (median)",
        "conn/s ratio",
        "per-round conn/s",
        "Gbit/s (median)",
        "Gbit/s ratio",
        "per-round Gbit/s",
        "install ms",
    ]);
    for c in configs {
        let rounds_of = |v: &[f64], d: usize| v.iter().map(|x| format!("{x:.d$}")).collect::<Vec<_>>().join(" ");
        report.row(vec![
            name(c),
            c.rules.to_string(),
            fmt_num(median(&f.crr[c])),
            format!("{:.3}", ratio(&f.crr, c)),
            rounds_of(&f.crr[c], 0),
            fmt_num(median(&f.tput[c])),
            format!("{:.3}", ratio(&f.tput, c)),
            rounds_of(&f.tput[c], 2),
            fmt_num(median(&f.install_ms[c])),
        ]);
    }
    // The target: at most 2 % of the connection rate lost at 1,000 rules (or the most
    // rules measured, when a run asks for fewer).
    let top = configs.iter().map(|c| c.rules).max().unwrap_or(0);
    for (r, name) in names.iter().enumerate().filter(|(_, n)| n.starts_with("weir-") && top > 0) {
        let c = Config { realization: Some(r), rules: top };
        report.checks.push(Check::at_least(&format!("connection rate {name} {top} rules / its 0 rules"), ratio(&f.crr, &c), "x", 0.98));
    }
    // Every connection's SYN is counted by the last rule (more with retransmits): the rules are
    // in the path of what is measured.
    let coverage = f.matched.values().map(|&(made, counted)| counted as f64 / made.max(1) as f64).fold(f64::INFINITY, f64::min);
    report.checks.push(Check::at_least(
        "packets the last rule matched / connections made (lowest over configurations)",
        coverage,
        "x",
        1.0,
    ));
    // A conntrack that sees both directions of the exchanges finds (almost) nothing invalid.
    if !f.invalid.is_empty() {
        let (made, dropped) = f.invalid.values().fold((0, 0), |(m, d), &(made, dropped)| (m + made, d + dropped));
        report.checks.push(Check::at_most(
            "packets dropped as invalid to conntrack / connections made (realizations that count them)",
            dropped as f64 / made.max(1) as f64,
            "x",
            0.001,
        ));
    }
    // How much a baseline moves between rounds: a ratio's distance from 1 below this is noise.
    let spread = |v: &[f64]| {
        let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
        format!("{:.0}%", (hi - lo) / median(v) * 100.0)
    };
    let spreads: Vec<String> = configs.iter().filter(|c| c.rules == 0).map(|c| format!("{} {}", name(c), spread(&f.crr[c]))).collect();
    report.notes.push(format!("Round-to-round spread (max-min over median) of the 0-rule conn/s: {}.", spreads.join(", ")));
    report.notes.push(format!(
        "Ratios are the median over rounds of the figure / the same round's 0-rule skeleton of that realization (conntrack on, empty \
         policy chain); the no-firewall \
         row is the namespace with no ruleset at all. Rule i allows TCP 10000+i from its own /29; the measured connections match the \
         LAST rule (its peer the client, its ports {CRR_PORT}-{CRR_LAST_PORT} and {IPERF_PORT}), so iptables walks every rule for each new connection. \
         {rounds} rounds; in each, the realizations in a shuffled order and each one's rule counts back to back, shuffled; {secs} s per point: {CRR_CLIENTS} client threads (each to a port of its own) each connect, send 1 byte, \
         read 1 byte, close (the client first: TIME_WAIT on its side); iperf3 single stream for {TPUT_SECS} s. Install ms: the realization's install call (weir-nftables: \
         plan, ruleset, one nft transaction; weir-OVS: moving the interface onto the bridge, compiling, one bundle). Exchanges that \
         failed: {}.",
        f.failed
    ));
    report.data = json!({
        "rounds": rounds, "secs": secs,
        "conn_per_s": f.crr.iter().map(|(c, v)| (format!("{} {}", name(c), c.rules), json!(v))).collect::<serde_json::Map<_, _>>(),
        "gbit_per_s": f.tput.iter().map(|(c, v)| (format!("{} {}", name(c), c.rules), json!(v))).collect::<serde_json::Map<_, _>>(),
        "failed_exchanges": f.failed,
        "invalid_dropped": f.invalid.iter().map(|(c, (made, dropped))| (format!("{} {}", name(c), c.rules), json!({"connections": made, "packets_dropped": dropped}))).collect::<serde_json::Map<_, _>>(),
        "install_ms": f.install_ms.iter().map(|(c, v)| (format!("{} {}", name(c), c.rules), json!(v))).collect::<serde_json::Map<_, _>>(),
        "last_rule": f.matched.iter().map(|(c, (made, counted))| (format!("{} {}", name(c), c.rules), json!({"connections": made, "packets_matched": counted}))).collect::<serde_json::Map<_, _>>(),
    });
    report
}
