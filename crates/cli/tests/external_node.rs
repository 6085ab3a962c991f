//! An ExternalNode's host interface moved onto the bridge, on a testbed "VM" (a namespace
//! with `eth0` on an underlay, its address from dnsmasq through dhclient, a TCP service on
//! port 2222, its own ovsdb-server and userspace ovs-vswitchd; see `testbed::vm`), with
//! `weir agent --external-node vm-1 --external-interface eth0` running in it.
//!
//! What `eth0` is (name, MAC, MTU, up, every IPv4 address with its flags, every route through
//! it in every table) is read with `ip -j` before the move and compared field by field after
//! the move, after DHCP renewals, after agent restarts and after `--restore`; address
//! lifetimes, which count down, are compared only as "the DHCP address is still dynamic".

use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use testbed::process::{Launcher, ProcessRecord, spawn_in_netns};
use testbed::vm::{InterfaceState, SERVICE_PORT, STATIC_IP, VM_IFACE, Vm};

const EXTERNAL_NODE: &str = "vm-1";
const UPLINK: &str = "eth0~";
/// A UDP port nothing in the VM serves but the test.
const UDP_PORT: u16 = 5399;

fn weir(args: &[&str]) -> Launcher {
    Launcher { program: PathBuf::from(env!("CARGO_BIN_EXE_weir")), args: args.iter().map(|a| a.to_string()).collect() }
}

/// A VM and the agent's files.
struct Setup {
    vm: Vm,
    tmp: tempfile::TempDir,
    agent: Option<ProcessRecord>,
    /// Other processes the test started, stopped with it (also when it fails).
    processes: Vec<ProcessRecord>,
}

impl Setup {
    fn start(letter: char) -> Setup {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let prefix = format!("x{letter}{}{}", SEQ.fetch_add(1, Ordering::Relaxed), std::process::id() % 10000);
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("manifests")).unwrap();
        let vm = Vm::start(&prefix, &tmp.path().join("vm"), &weir(&["testbed", "serve"])).expect("the VM starts");
        Setup { vm, tmp, agent: None, processes: Vec::new() }
    }

    fn ovs_dir(&self) -> PathBuf {
        self.vm.dir().join("ovs")
    }

    fn state_dir(&self) -> PathBuf {
        self.tmp.path().join("state")
    }

    /// The arguments every `weir agent` of this VM takes.
    fn common_args(&self) -> Vec<String> {
        let d = self.ovs_dir();
        let d = d.display();
        [
            "--ovsdb".to_string(),
            format!("unix:{d}/db.sock"),
            "--bridge".into(),
            "br-int".into(),
            "--state-dir".into(),
            self.state_dir().display().to_string(),
            "--status-file".into(),
            self.tmp.path().join("status.json").display().to_string(),
        ]
        .into()
    }

    fn start_agent_for(&mut self, interface: &str) {
        self.start_agent_with(interface, true);
    }

    /// An agent for `interface` reading the manifests directory; with `bypass`, the VM's
    /// service is open from the underlay whatever the host's policy.
    fn start_agent_with(&mut self, interface: &str, bypass: bool) {
        let manifests = self.tmp.path().join("manifests").display().to_string();
        self.start_agent_on(interface, bypass, &["--manifests", &manifests]);
    }

    /// An agent for `interface` reading the cluster through `source` (its arguments).
    fn start_agent_on(&mut self, interface: &str, bypass: bool, source: &[&str]) {
        let d = self.ovs_dir();
        let mut args = self.common_args();
        args.extend(source.iter().map(|a| a.to_string()));
        args.extend(
            [
                "--external-node",
                EXTERNAL_NODE,
                "--external-interface",
                interface,
                "--openflow",
                &format!("unix:{}/br-int.mgmt", d.display()),
                "--datapath",
                "netdev",
                "--ovs-ctl",
                &format!("{}/ovs-vswitchd.ctl", d.display()),
                "--metrics-address",
                "off",
                "--audit-log",
                "off",
            ]
            .map(str::to_string),
        );
        if bypass {
            args.extend(["--policy-bypass".to_string(), "ingress:tcp:192.168.100.0/24:2222".to_string()]);
        }
        let log = self.agent_log();
        // At info: the agent logs each interface it moves, with how long the move took.
        let agent = Launcher {
            program: PathBuf::from("/usr/bin/env"),
            args: vec!["WEIR_LOG=warn,agent::external_node=info".into(), env!("CARGO_BIN_EXE_weir").into(), "agent".into()],
        };
        self.agent = Some(spawn_in_netns(self.vm.name(), &agent, &args, &log).expect("the agent starts"));
    }

    fn start_agent(&mut self) {
        self.start_agent_for(VM_IFACE);
    }

    fn agent_log(&self) -> PathBuf {
        self.tmp.path().join("agent.log")
    }

    fn stop_agent(&mut self) {
        if let Some(a) = self.agent.take() {
            a.stop(Duration::from_secs(5));
            assert!(!a.alive(), "the agent stopped on SIGTERM");
        }
    }

    fn kill_agent(&mut self) {
        let a = self.agent.take().expect("an agent runs");
        // SAFETY: kill(2) of the agent this test started (its start time is checked first).
        assert!(a.alive());
        unsafe { libc::kill(a.pid, libc::SIGKILL) };
        testbed::ovs::wait_until(Duration::from_secs(5), || !a.alive()).unwrap();
    }

    /// `weir agent --restore` in the VM.
    fn restore(&self) -> String {
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", self.vm.name(), env!("CARGO_BIN_EXE_weir"), "agent", "--restore"]).args(self.common_args());
        testbed::run(&mut cmd).expect("weir agent --restore")
    }

    fn eth0(&self) -> InterfaceState {
        self.vm.interface(VM_IFACE).unwrap()
    }

    /// Waits until eth0 is the internal port (its uplink exists) and equals `before`, and the
    /// service answers through the bridge.
    fn wait_moved(&self, before: &InterfaceState) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let moved = self.vm.interface(UPLINK).is_ok() && self.ports().contains(&VM_IFACE.to_string());
            if moved && same(&self.eth0(), before).is_ok() && self.service_reachable(self.vm.dhcp_address().unwrap()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "eth0 not moved within 30 s: {:?}\nagent log:\n{}",
                same(&self.eth0(), before),
                testbed::process::log_tail(&self.agent_log(), 30)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The ports on br-int.
    fn ports(&self) -> Vec<String> {
        let ovs = testbed::OvsSwitch::attach(self.vm.name(), &self.ovs_dir());
        ovs.vsctl(&["list-ports", "br-int"]).map(|o| o.lines().map(str::to_string).collect()).unwrap_or_default()
    }

    /// Whether a UDP datagram from the underlay to `ip` reaches a socket in the VM.
    fn udp_reaches_vm(&self, ip: Ipv4Addr) -> bool {
        let (vm, underlay) = (self.vm.name().to_string(), self.vm.underlay.name().to_string());
        std::thread::scope(|s| {
            let server = s.spawn(|| {
                testbed::netns::enter_on_this_thread(&vm).unwrap();
                let socket = std::net::UdpSocket::bind(("0.0.0.0", UDP_PORT)).unwrap();
                socket.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                socket.recv(&mut [0; 16]).is_ok()
            });
            std::thread::sleep(Duration::from_millis(300));
            s.spawn(|| {
                testbed::netns::enter_on_this_thread(&underlay).unwrap();
                let socket = std::net::UdpSocket::bind(("0.0.0.0", 0)).unwrap();
                for _ in 0..5 {
                    socket.send_to(b"ping", (ip, UDP_PORT)).unwrap();
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
            .join()
            .unwrap();
            server.join().unwrap()
        })
    }

    /// Whether a TCP connection from the VM to `ip`:`port` is established.
    fn vm_connects(&self, ip: Ipv4Addr, port: u16) -> bool {
        connects_from(self.vm.name(), ip, port)
    }

    /// Whether a TCP connection from the underlay to the VM's service at `ip` is established.
    fn service_reachable(&self, ip: Ipv4Addr) -> bool {
        connects_from(self.vm.underlay.name(), ip, SERVICE_PORT)
    }

    /// The VM's switch's conntrack entries of weir's zone.
    fn conntrack(&self) -> String {
        let ovs = testbed::OvsSwitch::attach(self.vm.name(), &self.ovs_dir());
        ovs.appctl(&["dpctl/dump-conntrack", "zone=65520"]).unwrap_or_default()
    }
}

/// Whether a TCP connection from network namespace `ns` to `ip`:`port` is established.
fn connects_from(ns: &str, ip: Ipv4Addr, port: u16) -> bool {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        testbed::netns::enter_on_this_thread(&ns).unwrap();
        TcpStream::connect_timeout(&SocketAddrV4::new(ip, port).into(), Duration::from_secs(2)).is_ok()
    })
    .join()
    .unwrap()
}

impl Drop for Setup {
    fn drop(&mut self) {
        for p in self.agent.take().into_iter().chain(self.processes.drain(..)) {
            p.stop(Duration::from_secs(5));
        }
    }
}

/// Whether `now` is `before`: name, MAC, MTU, up, addresses (without lifetimes) and routes.
fn same(now: &InterfaceState, before: &InterfaceState) -> Result<(), String> {
    let fields = [
        ("name", now.name == before.name, format!("{} vs {}", now.name, before.name)),
        ("mac", now.mac == before.mac, format!("{} vs {}", now.mac, before.mac)),
        ("mtu", now.mtu == before.mtu, format!("{} vs {}", now.mtu, before.mtu)),
        ("up", now.up == before.up, format!("{} vs {}", now.up, before.up)),
        (
            "addresses",
            now.addresses_without_lifetimes() == before.addresses_without_lifetimes(),
            format!("{:?}\nvs\n{:?}", now.addresses_without_lifetimes(), before.addresses_without_lifetimes()),
        ),
        ("routes", now.routes == before.routes, format!("{:#?}\nvs\n{:#?}", now.routes, before.routes)),
    ];
    match fields.iter().find(|(_, ok, _)| !ok) {
        Some((field, _, diff)) => Err(format!("{field} differs: {diff}")),
        None => Ok(()),
    }
}

/// The DHCP address's lifetime: dynamic, finite, at most the lease.
fn assert_dhcp_lifetime(state: &InterfaceState, ip: Ipv4Addr) {
    let a = state.addresses.iter().find(|a| a.get("local").and_then(|l| l.as_str()) == Some(&ip.to_string())).expect("the DHCP address");
    assert_eq!(a.get("dynamic").and_then(|d| d.as_bool()), Some(true), "{a:?}");
    let valid = a.get("valid_life_time").and_then(|v| v.as_u64()).unwrap();
    assert!(valid > 0 && valid <= testbed::vm::LEASE.as_secs(), "valid_life_time {valid}");
}

fn assert_no_duplicates(state: &InterfaceState) {
    let mut addrs: Vec<String> = state.addresses.iter().map(|a| format!("{:?}", a.get("local"))).collect();
    let n = addrs.len();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), n, "duplicate addresses: {:?}", state.addresses);
    let mut routes: Vec<String> = state.routes.iter().map(|r| r.to_string()).collect();
    routes.dedup();
    assert_eq!(routes.len(), state.routes.len(), "duplicate routes: {:#?}", state.routes);
}

/// Everything about `eth0` besides its lifetimes, and that the uplink holds no address.
fn assert_moved(s: &Setup, before: &InterfaceState, when: &str) {
    let now = s.eth0();
    if let Err(e) = same(&now, before) {
        panic!("{when}: {e}");
    }
    assert_no_duplicates(&now);
    assert_dhcp_lifetime(&now, s.vm.dhcp_address().unwrap());
    let uplink = s.vm.interface(UPLINK).unwrap();
    assert!(uplink.addresses.is_empty() && uplink.routes.is_empty(), "{when}: the uplink keeps {uplink:?}");
    assert_eq!(uplink.mac, before.mac, "{when}: the uplink keeps the NIC's MAC");
    let mut ports = s.ports();
    ports.sort();
    assert_eq!(ports, [VM_IFACE, UPLINK], "{when}: the ports on br-int (an ExternalNode has no tunnel)");
}

#[test]
fn eth0_moves_onto_the_bridge_unchanged_survives_dhcp_and_agent_restarts_and_is_given_back_exactly() {
    let mut s = Setup::start('m');
    let before = s.eth0();
    let ip = s.vm.dhcp_address().unwrap();
    assert!(s.service_reachable(ip), "the service answers before the move");
    assert_eq!(before.mtu, u64::from(testbed::vm::VM_MTU));
    assert!(before.routes.len() >= 4, "default, static (metric 50, src), table 100 and the prefix routes: {:#?}", before.routes);

    s.start_agent();
    let started = Instant::now();
    s.wait_moved(&before);
    let log = std::fs::read_to_string(s.agent_log()).unwrap();
    let moved = log.lines().find(|l| l.contains("host interface on the bridge")).expect("the agent logs the move");
    eprintln!("moved and reachable {:?} after the agent started; {moved}", started.elapsed());
    assert_moved(&s, &before, "after the move");
    // The service's connections cross weir's conntrack zone: IP goes through the pipeline.
    assert!(s.service_reachable(ip) && s.service_reachable(STATIC_IP));
    let ovs = testbed::OvsSwitch::attach(s.vm.name(), &s.ovs_dir());
    let flows = ovs.ofctl("dump-flows", "br-int", &["--no-stats", "--names"]).unwrap();
    let bypass = flows.lines().find(|l| l.contains("table=IngressAdmin") && l.contains("tp_dst=2222"));
    assert!(bypass.is_some_and(|l| l.contains("nw_src=192.168.100.0/24") && l.contains("goto_table:ConntrackCommit")), "{flows}");
    let ct = s.conntrack();
    assert!(ct.contains(&format!("dst={ip},sport=")) && ct.contains(&format!("dport={SERVICE_PORT}")), "conntrack:\n{ct}");

    // A DHCP client run again on the internal port: same address, nothing twice.
    let events = s.vm.dhcp_events().len();
    s.vm.dhclient().unwrap();
    let new = &s.vm.dhcp_events()[events..];
    assert!(new.iter().any(|e| e.ends_with(&ip.to_string()) && (e.starts_with("REBOOT") || e.starts_with("BOUND"))), "{new:?}");
    assert_moved(&s, &before, "after dhclient ran again");
    assert!(s.service_reachable(ip));

    // SIGTERM, then kill -9: the host stays reachable while no agent runs, and a new agent
    // adds nothing.
    for (how, stop) in [("SIGTERM", Setup::stop_agent as fn(&mut Setup)), ("kill -9", Setup::kill_agent)] {
        stop(&mut s);
        assert!(s.service_reachable(ip), "reachable with the agent stopped by {how}");
        assert_moved(&s, &before, &format!("with the agent stopped by {how}"));
        s.start_agent();
        std::thread::sleep(Duration::from_secs(2));
        s.wait_moved(&before);
        assert_moved(&s, &before, &format!("after a restart following {how}"));
    }

    s.stop_agent();
    let out = s.restore();
    assert!(out.contains("eth0: given back"), "{out}");
    eprintln!("{out}");
    let after = s.eth0();
    same(&after, &before).unwrap_or_else(|e| panic!("after --restore: {e}"));
    assert_dhcp_lifetime(&after, ip);
    assert!(s.vm.interface(UPLINK).is_err(), "no eth0~ after --restore");
    assert!(s.ports().is_empty(), "no port is left on br-int: {:?}", s.ports());
    assert!(!s.state_dir().join("external-node/eth0.json").exists());
    assert!(s.service_reachable(ip), "the service answers after --restore");
    assert!(s.restore().contains("nothing to restore"), "a second --restore changes nothing");
}

#[test]
fn the_dhcp_client_started_before_the_move_renews_its_lease_through_the_bridge() {
    let mut s = Setup::start('r');
    let before = s.eth0();
    let ip = s.vm.dhcp_address().unwrap();
    let pid = s.vm.dhclient_pid().expect("dhclient runs in the background");
    s.start_agent();
    s.wait_moved(&before);
    let events = s.vm.dhcp_events().len();
    // dhclient renews at half the lease (T1).
    let deadline = Instant::now() + testbed::vm::LEASE / 2 + Duration::from_secs(30);
    while !s.vm.dhcp_events()[events..].iter().any(|e| e.starts_with("RENEW")) {
        assert!(Instant::now() < deadline, "no renewal: {:?}", s.vm.dhcp_events());
        std::thread::sleep(Duration::from_secs(1));
    }
    assert_eq!(s.vm.dhclient_pid(), Some(pid), "the same dhclient renewed");
    assert!(s.vm.dhcp_events()[events..].iter().all(|e| e.ends_with(&ip.to_string())), "{:?}", s.vm.dhcp_events());
    assert_moved(&s, &before, "after the renewal");
    let valid = s.eth0().addresses.iter().find_map(|a| a.get("valid_life_time")?.as_u64().filter(|v| *v < u64::from(u32::MAX))).unwrap();
    assert!(valid > testbed::vm::LEASE.as_secs() / 2, "the renewal refreshed the lifetime on the internal port: {valid}");
}

impl Setup {
    /// Leaves a move cut short: without ovs-vswitchd the internal port never gets its device,
    /// so the agent renames the NIC, adds the ports to OVSDB and waits; it is killed there.
    /// Returns the switch, its ovs-vswitchd stopped.
    fn half_done_move(&mut self) -> testbed::OvsSwitch {
        let ovs = testbed::OvsSwitch::attach(self.vm.name(), &self.ovs_dir());
        assert!(ovs.kill("ovs-vswitchd"));
        self.start_agent();
        testbed::ovs::wait_until(Duration::from_secs(20), || self.vm.interface(UPLINK).is_ok()).expect("the NIC renamed");
        std::thread::sleep(Duration::from_millis(500));
        self.kill_agent();
        assert!(self.vm.interface(VM_IFACE).is_err(), "half done: no eth0");
        assert!(self.state_dir().join("external-node/eth0.json").exists(), "the state was saved before the rename");
        ovs
    }
}

#[test]
fn a_move_killed_midway_is_given_back_or_completed_by_the_next_agent() {
    let mut s = Setup::start('k');
    let before = s.eth0();

    let mut ovs = s.half_done_move();
    s.restore();
    same(&s.eth0(), &before).unwrap_or_else(|e| panic!("--restore after a move cut short: {e}"));
    assert!(s.service_reachable(s.vm.dhcp_address().unwrap()));
    ovs.restart_missing().unwrap();

    let mut ovs = s.half_done_move();
    ovs.restart_missing().unwrap();
    s.start_agent();
    s.wait_moved(&before);
    assert_moved(&s, &before, "after the move was completed");

    s.stop_agent();
    s.restore();
    same(&s.eth0(), &before).unwrap_or_else(|e| panic!("after --restore: {e}"));
}

#[test]
fn a_missing_interface_is_named_and_the_host_is_left_alone() {
    let mut s = Setup::start('b');
    let before = s.eth0();
    s.start_agent_for("nope0");
    let log = s.agent_log();
    testbed::ovs::wait_until(Duration::from_secs(20), || std::fs::read_to_string(&log).unwrap_or_default().contains("\"nope0\""))
        .unwrap_or_else(|_| panic!("no error naming nope0:\n{}", testbed::process::log_tail(&log, 20)));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("host interface \"nope0\": does not exist: nothing was changed"), "{text}");
    // The status names it too, by object and field.
    let status = s.tmp.path().join("status.json");
    let named = || std::fs::read_to_string(&status).unwrap_or_default().contains("nope0");
    testbed::ovs::wait_until(Duration::from_secs(10), named).unwrap_or_else(|_| panic!("{:?}", std::fs::read_to_string(&status)));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&status).unwrap()).unwrap();
    let e = v["errors"].as_array().unwrap().iter().find(|e| e["message"].as_str().unwrap().contains("nope0")).unwrap();
    assert_eq!((e["object"].as_str().unwrap(), e["field"].as_str().unwrap()), (format!("ExternalNode {EXTERNAL_NODE}").as_str(), "--external-interface"));
    std::thread::sleep(Duration::from_secs(1));
    assert!(s.agent.as_ref().unwrap().alive(), "the agent keeps running");
    same(&s.eth0(), &before).unwrap();
    assert!(!s.ports().contains(&"nope0".to_string()));
    assert!(!Path::new(&s.state_dir().join("external-node/nope0.json")).exists());

    // A name that leaves no room for the uplink's is refused before anything starts.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.args(["agent", "--external-node", EXTERNAL_NODE, "--external-interface", "enp0s31f6abcdef", "--manifests", "/nonexistent"]);
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("\"enp0s31f6abcdef\"") && err.contains("15"), "{err}");
}

#[test]
fn an_interface_the_external_node_no_longer_names_is_given_back() {
    let mut s = Setup::start('g');
    let before = s.eth0();
    s.start_agent();
    s.wait_moved(&before);
    s.stop_agent();
    // The ExternalNode now names another interface (missing here): eth0 goes back to the host.
    s.start_agent_for("nope0");
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.vm.interface(UPLINK).is_ok() || same(&s.eth0(), &before).is_err() {
        assert!(Instant::now() < deadline, "eth0 not given back:\n{}", testbed::process::log_tail(&s.agent_log(), 20));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(s.ports().is_empty(), "{:?}", s.ports());
    assert!(s.service_reachable(s.vm.dhcp_address().unwrap()));
    assert!(!s.state_dir().join("external-node/eth0.json").exists());
}

#[test]
fn the_agent_keeps_the_interface_moved_when_ovs_restarts_or_its_port_is_deleted() {
    let mut s = Setup::start('o');
    let before = s.eth0();
    s.start_agent();
    s.wait_moved(&before);
    let mut ovs = testbed::OvsSwitch::attach(s.vm.name(), &s.ovs_dir());
    assert!(ovs.kill("ovs-vswitchd"));
    ovs.restart_missing().unwrap();
    s.wait_moved(&before);
    assert_moved(&s, &before, "after ovs-vswitchd restarted");

    // The internal port deleted behind the agent's back: its device goes with it, and the
    // agent adds the port again and configures the new device from the saved state.
    let index = |s: &Setup| testbed::run(std::process::Command::new("ip").args(["-n", s.vm.name(), "-o", "link", "show", VM_IFACE]));
    let old = index(&s).unwrap();
    ovs.vsctl(&["del-port", "br-int", VM_IFACE]).unwrap();
    testbed::ovs::wait_until(Duration::from_secs(5), || index(&s).is_err()).expect("eth0 went with its port");
    s.wait_moved(&before);
    assert_ne!(index(&s).unwrap(), old, "a new device");
    assert_moved(&s, &before, "after the internal port was deleted");
}

/// The ExternalNode vm-1 (its eth0 with both its addresses) in namespace vms, and a policy
/// applied to its ExternalEntity with these ingress rules; returns once the agent realized it.
fn apply_vm_policy(s: &Setup, dhcp_ip: Ipv4Addr, ingress: &str, token: &str) {
    let dir = s.tmp.path().join("manifests");
    let yaml = format!(
        "apiVersion: v1
kind: Namespace
metadata: {{name: vms, labels: {{ns: vms}}}}
---
apiVersion: crd.antrea.io/v1alpha1
kind: ExternalNode
metadata: {{name: {EXTERNAL_NODE}, namespace: vms, labels: {{role: db}}}}
spec:
  interfaces:
  - {{name: eth0, ips: [\"{dhcp_ip}\", \"{STATIC_IP}\"]}}
---
apiVersion: crd.antrea.io/v1beta1
kind: ClusterNetworkPolicy
metadata: {{name: db-vm}}
spec:
  priority: 5
  appliedTo:
  - externalEntitySelector: {{matchLabels: {{role: db}}}}
    namespaceSelector: {{matchLabels: {{ns: vms}}}}
  ingress:
{ingress}
"
    );
    std::fs::write(dir.join("vm.yaml"), yaml).unwrap();
    std::fs::write(dir.join(".weir-sync"), format!("{token}\n")).unwrap();
    let status = s.tmp.path().join("status.json");
    let realized = || {
        let Ok(text) = std::fs::read_to_string(&status) else { return false };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        v["source_token"] == token && v["realized"] == true
    };
    testbed::ovs::wait_until(Duration::from_secs(30), realized).unwrap_or_else(|_| {
        panic!("{token} not realized: {}", std::fs::read_to_string(&status).unwrap_or_default())
    });
}

#[test]
fn a_policy_applied_to_the_external_entity_is_enforced_on_its_moved_interface() {
    let mut s = Setup::start('p');
    let before = s.eth0();
    let ip = s.vm.dhcp_address().unwrap();
    s.start_agent_with(VM_IFACE, false);
    s.wait_moved(&before);
    assert!(s.service_reachable(ip), "no policy yet");
    assert!(s.udp_reaches_vm(ip), "no policy yet: UDP");

    apply_vm_policy(&s, ip, "  - {name: drop-all, action: Drop}", "drop-all");
    assert!(!s.service_reachable(ip) && !s.service_reachable(STATIC_IP), "the entity's ingress is dropped");
    // Nothing reaches the host around the bridge (the userspace datapath's packet socket leaves
    // the kernel a copy of the NIC's packets, which the agent drops).
    assert!(!s.udp_reaches_vm(ip), "a dropped UDP datagram reached a socket on the VM");

    let from = |cidr: &str| {
        format!("  - {{name: service, action: Allow, from: [{{ipBlock: {{cidr: {cidr}}}}}], ports: [{{protocol: TCP, port: {SERVICE_PORT}}}]}}\n  - {{name: drop-rest, action: Drop}}")
    };
    apply_vm_policy(&s, ip, &from(&format!("{}/32", testbed::vm::UNDERLAY_IP)), "allow-underlay");
    assert!(s.service_reachable(ip) && s.service_reachable(STATIC_IP), "allowed from the underlay's address");

    apply_vm_policy(&s, ip, &from("192.168.100.250/32"), "allow-another");
    assert!(!s.service_reachable(ip), "allowed only from another address");
    // The flows name the rule (its conj_id) on the internal port, as a pod's.
    let ovs = testbed::OvsSwitch::attach(s.vm.name(), &s.ovs_dir());
    let flows = ovs.ofctl("dump-flows", "br-int", &["--no-stats", "--names"]).unwrap();
    assert!(flows.lines().any(|l| l.contains("table=IngressAdmin") && l.contains("conj_id")), "{flows}");
    s.stop_agent();
}

/// The VM's ExternalNode (with its addresses) and a policy dropping everything it sends and
/// receives, for the API server.
fn lockdown(dhcp_ip: Ipv4Addr) -> String {
    format!(
        "apiVersion: v1
kind: Namespace
metadata: {{name: vms}}
---
apiVersion: weir.io/v1alpha1
kind: ExternalNode
metadata: {{name: {EXTERNAL_NODE}, namespace: vms, labels: {{role: db}}}}
spec: {{interfaces: [{{name: eth0, ips: [\"{dhcp_ip}\", \"{STATIC_IP}\"]}}]}}
---
apiVersion: weir.io/v1alpha1
kind: ClusterNetworkPolicy
metadata: {{name: lockdown}}
spec:
  priority: 1
  appliedTo: [{{externalEntitySelector: {{matchLabels: {{role: db}}}}, namespaceSelector: {{}}}}]
  ingress: [{{name: drop-in, action: Drop}}]
  egress: [{{name: drop-out, action: Drop}}]
"
    )
}

#[test]
fn with_the_api_server_behind_the_moved_interface_the_first_view_arrives_and_the_lockdown_spares_the_agents_connection() {
    if !testbed::kube::Binaries::available_for_tests() {
        return;
    }
    let mut s = Setup::start('k');
    let before = s.eth0();
    let ip = s.vm.dhcp_address().unwrap();
    // The API server on the underlay: the VM reaches it only through eth0, the interface moved.
    let place = testbed::kube::Place { netns: Some(s.vm.underlay.name().to_string()), address: testbed::vm::UNDERLAY_IP };
    let api = testbed::kube::KubeApi::start_at(&s.tmp.path().join("kube"), place).unwrap();
    let api_port: u16 = api.url().rsplit(':').next().unwrap().parse().unwrap();
    testbed::kube_source::install_crds(|| api.kubectl()).unwrap();
    let objects = s.tmp.path().join("lockdown.yaml");
    std::fs::write(&objects, lockdown(ip)).unwrap();
    testbed::run(api.kubectl().arg("apply").arg("-f").arg(&objects)).unwrap();
    // Another service of the underlay, which the policy must cut.
    let ready = s.tmp.path().join("underlay-serve.ready");
    let serve_args = ["--ports".to_string(), "tcp:8080".into(), "--ready-file".into(), ready.display().to_string()];
    let log = s.tmp.path().join("underlay-serve.log");
    s.processes.push(spawn_in_netns(s.vm.underlay.name(), &weir(&["testbed", "serve"]), &serve_args, &log).unwrap());
    testbed::ovs::wait_until(Duration::from_secs(10), || ready.exists()).expect("the underlay's service");
    assert!(s.vm_connects(testbed::vm::UNDERLAY_IP, 8080), "open before the agent");

    let kubeconfig = api.kubeconfig().display().to_string();
    let status = s.tmp.path().join("status.json");
    let locked = || {
        let v: serde_json::Value = std::fs::read_to_string(&status).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
        v["realized"] == true
    };
    let agent_log = s.agent_log();
    let wait_locked = |what: &str| {
        testbed::ovs::wait_until(Duration::from_secs(60), locked).unwrap_or_else(|_| {
            panic!("{what}: not realized:\n{}\n{}", std::fs::read_to_string(&status).unwrap_or_default(), testbed::process::log_tail(&agent_log, 30))
        })
    };
    s.start_agent_on(VM_IFACE, false, &["--kubeconfig", &kubeconfig]);
    wait_locked("the first view, read through the moved interface");
    assert_moved(&s, &before, "moved with the API server as the source");
    assert!(!s.service_reachable(ip), "the host's ingress is dropped");
    assert!(!s.vm_connects(testbed::vm::UNDERLAY_IP, 8080), "and its egress");
    assert!(s.vm_connects(testbed::vm::UNDERLAY_IP, api_port), "but not its connections to the API server");

    // kill -9 leaves the flows in force; the next agent reads the cluster through them.
    s.kill_agent();
    std::fs::remove_file(&status).unwrap();
    assert!(!s.service_reachable(ip), "the lockdown outlives its agent");
    s.start_agent_on(VM_IFACE, false, &["--kubeconfig", &kubeconfig]);
    wait_locked("the restarted agent");
    assert!(!s.vm_connects(testbed::vm::UNDERLAY_IP, 8080), "still locked down");
    s.stop_agent();
}
