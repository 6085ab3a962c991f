//! An ExternalNode in the nftables realization, against the real kernel and with no OVS
//! anywhere: `weir agent --external-node vm1 --node-policy nftables --manifests DIR` runs in a
//! "VM" namespace (`eth0` 10.78.0.2, TCP services on 22 and 80) joined by a veth to a client
//! namespace with two addresses (10.78.0.1 and 10.78.0.3). The manifests hold the ExternalNode
//! and a ClusterNetworkPolicy applied to its interface by `externalEntitySelector`; the agent
//! realizes it in the VM's `table inet weir-node` and reports each sync token once it has.
//! In cluster mode (a real kube-apiserver in the client namespace, on 10.78.0.1), the API
//! server is on the host's bypass list by itself, so a policy dropping everything the host
//! sends cannot cut the agent off from it, even across a kill -9 and a restart.

mod common;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testbed::Netns;
use testbed::process::{Launcher, ProcessRecord, spawn_in_netns};

const VM_IP: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 2);
const ADMIN: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 1);
const OTHER: Ipv4Addr = Ipv4Addr::new(10, 79, 0, 3);
/// The agent's metrics endpoint, in the VM's network namespace.
const METRICS: &str = "127.0.0.1:9810";

const EXTERNAL_NODE: &str = "\
apiVersion: v1
kind: Namespace
metadata: {name: vms}
---
apiVersion: crd.antrea.io/v1alpha1
kind: ExternalNode
metadata: {name: vm1, namespace: vms, labels: {role: db}}
spec: {interfaces: [{name: eth0, ips: [10.78.0.2]}]}
";

/// Only 10.78.0.1 reaches the VM, and only on port 22.
const SSH_FROM_ADMIN: &str = "\
apiVersion: crd.antrea.io/v1beta1
kind: ClusterNetworkPolicy
metadata: {name: db-vm}
spec:
  priority: 5
  appliedTo: [{externalEntitySelector: {matchLabels: {role: db}}, namespaceSelector: {}}]
  ingress:
    - {name: ssh-from-admin, action: Allow, from: [{ipBlock: {cidr: 10.78.0.1/32}}], ports: [{protocol: TCP, port: 22}]}
    - {name: drop-in, action: Drop}
";

fn weir(args: &[&str]) -> Launcher {
    Launcher { program: PathBuf::from(env!("CARGO_BIN_EXE_weir")), args: args.iter().map(|a| a.to_string()).collect() }
}

struct Site {
    vm: Netns,
    admin: Netns,
    other: Netns,
    tmp: tempfile::TempDir,
    processes: Vec<ProcessRecord>,
}

impl Drop for Site {
    fn drop(&mut self) {
        for p in &self.processes {
            p.stop(Duration::from_secs(3));
        }
    }
}

impl Site {
    /// The namespaces (named after `tag` and this process: the tests run side by side).
    fn start(tag: &str) -> Site {
        let id = std::process::id();
        let vm = Netns::add(&format!("wen{tag}v{id}")).unwrap();
        let admin = Netns::add(&format!("wen{tag}a{id}")).unwrap();
        let other = Netns::add(&format!("wen{tag}o{id}")).unwrap();
        admin.veth("eth0", &format!("{ADMIN}/24"), &vm, "eth0", &format!("{VM_IP}/24")).unwrap();
        other.veth("eth0", &format!("{OTHER}/24"), &vm, "eth1", "10.79.0.1/24").unwrap();
        testbed::run(other.command("ip").args(["route", "add", "default", "via", "10.79.0.1"])).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("manifests")).unwrap();
        let mut site = Site { vm, admin, other, tmp, processes: Vec::new() };
        let ready = site.tmp.path().join("serve.ready");
        let serve = weir(&["testbed", "serve"]);
        let args = ["--ports".to_string(), "tcp:22,tcp:80".into(), "--ready-file".into(), ready.display().to_string()];
        site.processes.push(spawn_in_netns(site.vm.name(), &serve, &args, &site.tmp.path().join("serve.log")).unwrap());
        wait_for(Duration::from_secs(10), "the VM's services", || ready.exists());
        site
    }

    fn manifests(&self) -> PathBuf {
        self.tmp.path().join("manifests")
    }

    fn status_file(&self) -> PathBuf {
        self.tmp.path().join("status.json")
    }

    /// The agent reading the manifests directory.
    fn start_agent(&mut self) {
        let manifests = self.manifests().display().to_string();
        self.start_agent_on(&["--manifests", &manifests]);
    }

    /// The agent reading the cluster from `source` (`--manifests DIR`, `--kubeconfig PATH`).
    fn start_agent_on(&mut self, source: &[&str]) -> ProcessRecord {
        let status = self.status_file();
        let args: Vec<String> = [
            "--external-node",
            "vm1",
            "--node-policy",
            "nftables",
            "--status-file",
            &status.display().to_string(),
            "--audit-log",
            "off",
            "--metrics-address",
            METRICS,
            "--rule-stats-interval",
            "0.5",
            // Nothing listens here: the agent must not need OVS.
            "--ovsdb",
            "unix:/nonexistent/db.sock",
        ]
        .iter()
        .chain(source)
        .map(|a| a.to_string())
        .collect();
        let log = self.tmp.path().join("agent.log");
        let agent = spawn_in_netns(self.vm.name(), &weir(&["agent"]), &args, &log).unwrap();
        self.processes.push(agent);
        agent
    }

    /// Writes `files` (name, text) as the whole manifests directory's content and a new sync
    /// token, and waits until the agent reports that token realized.
    fn sync(&self, files: &[(&str, &str)], token: &str) -> serde_json::Value {
        let dir = self.manifests();
        for entry in std::fs::read_dir(&dir).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        std::fs::write(dir.join(".weir-sync"), format!("{token}\n")).unwrap();
        let mut status = serde_json::Value::Null;
        wait_for(Duration::from_secs(20), &format!("the agent to report token {token}"), || {
            status = read_json(&self.status_file());
            status["source_token"] == token
        });
        status
    }

    /// Whether a TCP connection from `from` (a client's address) to the VM's `port` is
    /// answered.
    fn connects(&self, from: Ipv4Addr, port: u16) -> bool {
        let client = if from == ADMIN { &self.admin } else { &self.other };
        let ns = client.name().to_string();
        std::thread::spawn(move || {
            testbed::netns::enter_on_this_thread(&ns).unwrap();
            testbed::probe::probe_one(from, VM_IP, port, policy::Protocol::Tcp, Duration::from_millis(700)).unwrap()
        })
        .join()
        .unwrap()
    }

    /// `weir get stats --node-firewall` in the VM, by policy and rule.
    fn stats(&self) -> std::collections::BTreeMap<(String, String), u64> {
        let manifests = self.manifests().display().to_string();
        let args = ["get", "stats", "--node-firewall", "--cluster", &manifests, "--node", "vm1", "-o", "json"];
        let out = testbed::run(self.vm.command(env!("CARGO_BIN_EXE_weir")).args(args)).unwrap();
        let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        rows.iter()
            .map(|r| ((r["policy"].as_str().unwrap().into(), r["rule"].as_str().unwrap().into()), r["packets"].as_u64().unwrap()))
            .collect()
    }

    /// `GET http://METRICS/PATH` from inside the VM: (HTTP status, body).
    fn http_get(&self, path: &str) -> (u16, String) {
        let url = format!("http://{METRICS}{path}");
        let out = self.vm.command("curl").args(["-s", "-w", "\n%{http_code}", &url]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// Whether a TCP connection from the VM to `to`:`port` is answered.
    fn vm_connects(&self, to: Ipv4Addr, port: u16) -> bool {
        let ns = self.vm.name().to_string();
        std::thread::spawn(move || {
            testbed::netns::enter_on_this_thread(&ns).unwrap();
            testbed::probe::probe_one(VM_IP, to, port, policy::Protocol::Tcp, Duration::from_millis(700)).unwrap()
        })
        .join()
        .unwrap()
    }

    fn table(&self) -> String {
        testbed::run(self.vm.command("nft").args(["list", "table", "inet", agent::node_firewall::TABLE])).unwrap_or_default()
    }
}

fn read_json(path: &Path) -> serde_json::Value {
    std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

fn wait_for(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_policy_applied_to_an_external_nodes_interface_holds_in_its_own_nftables_without_ovs() {
    let mut site = Site::start("f");
    site.start_agent();

    // No ExternalNode named vm1 yet: nothing protects the host, and the status says so.
    let status = site.sync(&[], "1");
    assert_eq!(status["realized"], true, "{status}");
    assert!(status["warnings"].to_string().contains("no ExternalNode named \\\"vm1\\\""), "{status}");
    assert!(site.connects(OTHER, 22) && site.connects(OTHER, 80), "an unprotected host is open");

    let status = site.sync(&[("vm.yaml", EXTERNAL_NODE), ("policy.yaml", SSH_FROM_ADMIN)], "2");
    assert_eq!(status["errors"], serde_json::json!([]), "{status}");
    assert_eq!(status["realized"], true, "{status}");
    assert!(site.table().contains("10.78.0.2"), "the table names the interface's address:\n{}", site.table());
    assert!(site.connects(ADMIN, 22), "the rule's peer reaches port 22");
    assert!(!site.connects(ADMIN, 80), "port 80 is dropped even for the rule's peer");
    assert!(!site.connects(OTHER, 22), "another address is dropped:\n{}", site.table());
    // What each rule decided, as `weir get stats` reads the host's counters: one SYN allowed,
    // the two dropped connections' SYNs (resent while the probes waited).
    let stats = site.stats();
    assert_eq!(stats[&("db-vm".into(), "ssh-from-admin".into())], 1, "{stats:?}");
    assert!(stats[&("db-vm".into(), "drop-in".into())] >= 2, "{stats:?}");
    // And as its metrics export them, with the view and no switch families (there is none).
    let counted = |text: &str| {
        text.lines().any(|l| l.starts_with("weir_host_rule_packets_total{") && l.contains("rule=\"ssh-from-admin\"") && l.ends_with(" 1"))
    };
    wait_for(Duration::from_secs(10), "the allow rule's counter in /metrics", || counted(&site.http_get("/metrics").1));
    let (code, text) = site.http_get("/metrics");
    assert_eq!(code, 200);
    for series in ["weir_realized 1", "weir_objects{kind=\"ExternalNode\"} 1"] {
        assert!(text.lines().any(|l| l == series), "{series} in:\n{text}");
    }
    let realizations = common::scrape::samples(&text).get("weir_realizations_total").copied().unwrap_or_default();
    assert!(realizations >= 2.0, "one for each view at least: {realizations}");
    assert!(!text.contains("weir_openflow") && !text.contains("weir_ovsdb") && !text.contains("weir_flows"), "{text}");
    assert_eq!(site.http_get("/readyz").0, 200);
    common::scrape::promtool_check(&text);

    // The policy goes: the table follows the view.
    site.sync(&[("vm.yaml", EXTERNAL_NODE)], "3");
    assert!(site.connects(OTHER, 22) && site.connects(OTHER, 80), "without a policy the host is open again");
}

/// vm1 and a policy that drops everything it receives and sends, as weir.io objects.
const LOCKDOWN: &str = "\
apiVersion: v1
kind: Namespace
metadata: {name: vms}
---
apiVersion: weir.io/v1alpha1
kind: ExternalNode
metadata: {name: vm1, namespace: vms, labels: {role: db}}
spec: {interfaces: [{name: eth0, ips: [10.78.0.2]}]}
---
apiVersion: weir.io/v1alpha1
kind: ClusterNetworkPolicy
metadata: {name: lockdown}
spec:
  priority: 1
  appliedTo: [{externalEntitySelector: {matchLabels: {role: db}}, namespaceSelector: {}}]
  ingress: [{name: drop-in, action: Drop}]
  egress: [{name: drop-out, action: Drop}]
";

#[test]
fn a_policy_dropping_all_the_hosts_egress_never_cuts_the_agent_off_from_its_api_server() {
    if !testbed::kube::Binaries::available_for_tests() {
        return;
    }
    let mut site = Site::start("k");
    let place = testbed::kube::Place { netns: Some(site.admin.name().to_string()), address: ADMIN };
    let api = testbed::kube::KubeApi::start_at(&site.tmp.path().join("kube"), place).unwrap();
    let api_port: u16 = api.url().rsplit(':').next().unwrap().parse().unwrap();
    testbed::kube_source::install_crds(|| api.kubectl()).unwrap();
    let objects = site.tmp.path().join("lockdown.yaml");
    std::fs::write(&objects, LOCKDOWN).unwrap();
    testbed::run(api.kubectl().arg("apply").arg("-f").arg(&objects)).unwrap();
    // Another service of the API server's host, which the policy must cut.
    let ready = site.tmp.path().join("admin-serve.ready");
    let serve_args = ["--ports".to_string(), "tcp:8080".into(), "--ready-file".into(), ready.display().to_string()];
    let serve = spawn_in_netns(site.admin.name(), &weir(&["testbed", "serve"]), &serve_args, &site.tmp.path().join("a.log")).unwrap();
    site.processes.push(serve);
    wait_for(Duration::from_secs(10), "the admin host's service", || ready.exists());

    let kubeconfig = api.kubeconfig().display().to_string();
    let agent = site.start_agent_on(&["--kubeconfig", &kubeconfig]);
    let locked = |site: &Site| read_json(&site.status_file())["realized"] == true && site.table().contains("lockdown/egress");
    let log = || testbed::process::log_tail(&site.tmp.path().join("agent.log"), 40);
    let waited = Instant::now();
    while !locked(&site) {
        assert!(waited.elapsed() < Duration::from_secs(60), "the lockdown is not realized:\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!site.vm_connects(ADMIN, 8080), "the host's egress is dropped:\n{}", site.table());
    assert!(!site.connects(ADMIN, 22), "and its ingress");
    assert!(site.vm_connects(ADMIN, api_port), "but not its connections to the API server:\n{}", site.table());

    // kill -9 leaves the table in force; the next agent must still reach the API server to
    // read the cluster (a new connection, which the lockdown alone would drop).
    testbed::run(std::process::Command::new("kill").args(["-9", &agent.pid.to_string()])).unwrap();
    wait_for(Duration::from_secs(5), "the agent to die", || !agent.alive());
    assert!(site.table().contains("lockdown/egress"), "the lockdown outlives its agent");
    std::fs::remove_file(site.status_file()).unwrap();
    site.start_agent_on(&["--kubeconfig", &kubeconfig]);
    wait_for(Duration::from_secs(60), "the restarted agent to read the cluster and realize it", || locked(&site));
    assert!(!site.vm_connects(ADMIN, 8080), "still locked down");
}
