//! The harness of weir-cni's tests: a node (the testbed's `TestSwitch`: its own namespace
//! with a real ovsdb-server and ovs-vswitchd and `br-int`), pods (namespaces), and the plugin
//! run inside the node's namespace as a runtime runs it (`CNI_*` variables, config on stdin).
#![allow(dead_code)]
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use testbed::{Netns, TestSwitch};

/// The plugin built with this crate.
pub fn plugin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_weir-cni"))
}

/// A node: OVS in its namespace, and a state directory for the plugin.
pub struct Node {
    /// The switch.
    pub sw: TestSwitch,
    /// `ipam.dataDir`.
    pub state: tempfile::TempDir,
    /// `ipam.subnet`.
    pub subnet: String,
}

impl Node {
    /// A node whose pod CIDR is `subnet`.
    pub fn start(subnet: &str) -> Node {
        let sw = TestSwitch::with_bridge().expect("OVS starts in a namespace");
        Node { sw, state: tempfile::tempdir().unwrap(), subnet: subnet.to_string() }
    }

    /// The network configuration for this node at `version`.
    pub fn conf(&self, version: &str) -> Value {
        json!({
            "cniVersion": version,
            "name": "weir",
            "type": "weir-cni",
            "bridge": "br-int",
            "ovsdb": format!("unix:{}", self.sw.ovs.db_socket().display()),
            "mtu": 1450,
            "ipam": { "subnet": self.subnet, "dataDir": self.state.path() },
        })
    }

    /// The plugin as a command run in the node's namespace.
    pub fn command(&self, command: &str, container: Option<&str>, netns: Option<&Path>, pod: Option<&str>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.sw.netns.name()]).arg(plugin());
        c.env("CNI_COMMAND", command).env("CNI_IFNAME", "eth0").env("CNI_PATH", "/nonexistent");
        c.env_remove("CNI_CONTAINERID").env_remove("CNI_NETNS").env_remove("CNI_ARGS").env_remove(cni::STALL_VAR);
        if let Some(id) = container {
            c.env("CNI_CONTAINERID", id);
        }
        if let Some(ns) = netns {
            c.env("CNI_NETNS", ns);
        }
        if let Some(pod) = pod {
            c.env("CNI_ARGS", format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME={pod}"));
        }
        c
    }

    /// Runs the plugin with `conf` on stdin.
    pub fn call(&self, mut cmd: Command, conf: &Value) -> Outcome {
        Outcome::of(feed(&mut cmd, conf).wait_with_output().expect("plugin runs"))
    }

    /// ADD of pod `pod` (container `container`) in `netns`.
    pub fn add(&self, container: &str, pod: &Pod, version: &str) -> Outcome {
        self.call(self.command("ADD", Some(container), Some(&pod.path()), Some(&pod.name)), &self.conf(version))
    }

    /// DEL of `container`.
    pub fn del(&self, container: &str, version: &str) -> Outcome {
        self.call(self.command("DEL", Some(container), None, None), &self.conf(version))
    }

    /// GC keeping `valid` containers.
    pub fn gc(&self, valid: &[&str]) -> Outcome {
        let mut conf = self.conf("1.1.0");
        conf["cni.dev/valid-attachments"] =
            valid.iter().map(|c| json!({"containerID": c, "ifname": "eth0"})).collect::<Vec<_>>().into();
        self.call(self.command("GC", None, None, None), &conf)
    }

    /// The Interface rows of the node's OVSDB: name -> (ofport, external_ids).
    pub fn interfaces(&self) -> BTreeMap<String, (i64, BTreeMap<String, String>)> {
        let text = self
            .sw
            .ovs
            .vsctl(&["--format=json", "--columns=name,ofport,external_ids", "list", "Interface"])
            .expect("list Interface");
        let v: Value = serde_json::from_str(&text).unwrap();
        let mut out = BTreeMap::new();
        for row in v["data"].as_array().unwrap() {
            let name = row[0].as_str().unwrap().to_string();
            let ofport = row[1].as_i64().unwrap_or(-1);
            let ids = row[2][1].as_array().unwrap();
            let ids = ids.iter().map(|p| (p[0].as_str().unwrap().into(), p[1].as_str().unwrap().into())).collect();
            out.insert(name, (ofport, ids));
        }
        out
    }

    /// Interfaces weir-cni made.
    pub fn cni_ports(&self) -> BTreeMap<String, (i64, BTreeMap<String, String>)> {
        let mut all = self.interfaces();
        all.retain(|_, (_, ids)| ids.contains_key(ovsdb::cni::CNI_CONTAINER_ID));
        all
    }

    /// Whether link `name` exists in the node's namespace.
    pub fn has_link(&self, name: &str) -> bool {
        link_exists(self.sw.netns.name(), name)
    }

    /// Allocation files in the state directory.
    pub fn allocations(&self) -> Vec<String> {
        let dir = self.state.path().join("weir");
        let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
        let mut v: Vec<String> = entries
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.parse::<std::net::Ipv4Addr>().is_ok())
            .collect();
        v.sort();
        v
    }
}

/// Starts `cmd` with `conf` on stdin (closed after), stdout and stderr piped.
pub fn feed(cmd: &mut Command, conf: &Value) -> std::process::Child {
    use std::io::Write;
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(conf.to_string().as_bytes()).unwrap();
    child
}

/// Whether link `name` exists in namespace `netns`.
pub fn link_exists(netns: &str, name: &str) -> bool {
    Command::new("ip").args(["-n", netns, "link", "show", "dev", name]).output().unwrap().status.success()
}

/// What one plugin run returned.
#[derive(Debug)]
pub struct Outcome {
    /// Exit status 0.
    pub ok: bool,
    /// stdout as JSON (`Null` if empty).
    pub json: Value,
    /// stderr.
    pub stderr: String,
}

impl Outcome {
    /// From a finished process.
    pub fn of(out: Output) -> Outcome {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let json = if stdout.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}"))
        };
        Outcome { ok: out.status.success(), json, stderr: String::from_utf8_lossy(&out.stderr).into() }
    }

    /// Asserts success and returns the result.
    pub fn expect_ok(self, what: &str) -> Value {
        assert!(self.ok, "{what} failed: {} {}", self.json, self.stderr);
        self.json
    }

    /// Asserts failure with the spec's error `code` and returns its `details`.
    pub fn expect_error(self, what: &str, code: u64) -> String {
        assert!(!self.ok, "{what} succeeded: {}", self.json);
        assert_eq!(self.json["code"].as_u64(), Some(code), "{what}: {} {}", self.json, self.stderr);
        assert!(self.json["msg"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {}", self.json);
        self.json["details"].as_str().unwrap_or_default().to_string()
    }
}

/// The pod address of an ADD result.
pub fn result_ip(json: &Value) -> std::net::Ipv4Addr {
    let text = json["ips"][0]["address"].as_str().expect("result has ips[0].address");
    text.split('/').next().unwrap().parse().unwrap()
}

/// A pod: a namespace of its own, removed when dropped.
pub struct Pod {
    /// Its name (also `K8S_POD_NAME`).
    pub name: String,
    /// Its namespace.
    pub netns: Netns,
}

impl Pod {
    /// A new pod namespace.
    pub fn new(name: &str) -> Pod {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let ns = format!("wc{}-{}", std::process::id() % 100_000, SEQ.fetch_add(1, Ordering::Relaxed));
        Pod { name: name.to_string(), netns: Netns::add(&ns).expect("pod namespace") }
    }

    /// `/run/netns/<name>`.
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(self.netns.name())
    }

    /// Runs `program args` in the pod.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        self.netns.command(program).args(args).output().unwrap()
    }

    /// `ip -j addr show dev eth0` in the pod, and its default route.
    pub fn eth0(&self) -> (Value, Value) {
        let addr = self.run("ip", &["-j", "addr", "show", "dev", "eth0"]);
        let route = self.run("ip", &["-j", "route", "show", "default"]);
        (
            serde_json::from_slice(&addr.stdout).unwrap_or(Value::Null),
            serde_json::from_slice(&route.stdout).unwrap_or(Value::Null),
        )
    }
}
