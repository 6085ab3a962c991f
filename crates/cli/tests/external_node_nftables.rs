//! An ExternalNode in the nftables realization, against the real kernel and with no OVS
//! anywhere: `weir agent --external-node vm1 --node-policy nftables --manifests DIR` runs in a
//! "VM" namespace (`eth0` 10.78.0.2, TCP services on 22 and 80) joined by a veth to a client
//! namespace with two addresses (10.78.0.1 and 10.78.0.3). The manifests hold the ExternalNode
//! and a ClusterNetworkPolicy applied to its interface by `externalEntitySelector`; the agent
//! realizes it in the VM's `table inet weir-node` and reports each sync token once it has.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testbed::Netns;
use testbed::process::{Launcher, ProcessRecord, spawn_in_netns};

const VM_IP: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 2);
const ADMIN: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 1);
const OTHER: Ipv4Addr = Ipv4Addr::new(10, 79, 0, 3);

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
    fn start() -> Site {
        let id = std::process::id();
        let vm = Netns::add(&format!("wenv{id}")).unwrap();
        let admin = Netns::add(&format!("wena{id}")).unwrap();
        let other = Netns::add(&format!("weno{id}")).unwrap();
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

    fn start_agent(&mut self) {
        let (manifests, status) = (self.manifests(), self.status_file());
        let args: Vec<String> = [
            "--external-node",
            "vm1",
            "--node-policy",
            "nftables",
            "--manifests",
            &manifests.display().to_string(),
            "--status-file",
            &status.display().to_string(),
            "--audit-log",
            "off",
            "--metrics-address",
            "off",
            // Nothing listens here: the agent must not need OVS.
            "--ovsdb",
            "unix:/nonexistent/db.sock",
        ]
        .map(String::from)
        .to_vec();
        let log = self.tmp.path().join("agent.log");
        self.processes.push(spawn_in_netns(self.vm.name(), &weir(&["agent"]), &args, &log).unwrap());
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
    let mut site = Site::start();
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

    // The policy goes: the table follows the view.
    site.sync(&[("vm.yaml", EXTERNAL_NODE)], "3");
    assert!(site.connects(OTHER, 22) && site.connects(OTHER, 80), "without a policy the host is open again");
}
