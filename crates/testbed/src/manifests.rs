//! The agents' source in file mode: each node's `manifests/` directory holds `cluster.yaml`
//! (the testbed's v1 Namespace, Node and Pod objects) and the user's applied manifests; after
//! every change the testbed writes a fresh token to `manifests/.weir-sync` and waits until every
//! agent's status file reports that token as realized.
use crate::error::Error;
use crate::ovs::wait_until;
use crate::state::{NodeState, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The file holding the testbed's own objects in every manifests directory.
pub const CLUSTER_FILE: &str = "cluster.yaml";
/// The sync-token file the agent reads before each reload.
pub const SYNC_FILE: &str = ".weir-sync";
/// The agent's status file inside a node's directory.
pub const STATUS_FILE: &str = "agent-status.json";

/// A node's manifests directory.
pub fn manifests_dir(node: &NodeState) -> PathBuf {
    manifests_in(&node.dir)
}

/// The manifests directory of the agent whose directory is `dir` (a node's or a VM's).
pub fn manifests_in(dir: &Path) -> PathBuf {
    dir.join("manifests")
}

/// A node's agent status file.
pub fn status_file(node: &NodeState) -> PathBuf {
    status_in(&node.dir)
}

/// The status file of the agent whose directory is `dir`.
pub fn status_in(dir: &Path) -> PathBuf {
    dir.join(STATUS_FILE)
}

/// The v1 Namespace, Node and Pod objects describing the testbed, as Kubernetes would show
/// them (only the fields weir reads).
pub fn cluster_objects(state: &State) -> Vec<Value> {
    let mut objects = Vec::new();
    for (name, labels) in &state.namespaces {
        let mut labels = labels.clone();
        labels.entry(policy::objects::NAMESPACE_NAME_LABEL.to_string()).or_insert_with(|| name.clone());
        objects.push(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels},
        }));
    }
    for node in &state.nodes {
        let mut labels = state.node_labels.clone();
        labels.extend(node.labels.clone());
        labels.insert("kubernetes.io/hostname".into(), node.name.clone());
        labels.entry("kubernetes.io/os".into()).or_insert_with(|| "linux".into());
        objects.push(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": node.name, "labels": labels},
            "spec": {"podCIDR": node.pod_cidr, "podCIDRs": [node.pod_cidr]},
            "status": {"addresses": [
                {"type": "InternalIP", "address": node.underlay_ip.to_string()},
                {"type": "Hostname", "address": node.name},
            ]},
        }));
    }
    // Each VM as the ExternalNode the model declares (as the oracle's cluster view has it).
    for vm in &state.vms {
        objects.push(json!({
            "apiVersion": "crd.antrea.io/v1alpha1", "kind": "ExternalNode",
            "metadata": {"name": vm.name, "namespace": vm.namespace, "labels": vm.labels},
            "spec": {"interfaces": [{"name": vm.interface, "ips": [vm.ip.to_string()]}]},
        }));
    }
    for pod in &state.pods {
        let ports: Vec<Value> = pod
            .ports
            .iter()
            .map(|p| {
                let mut port = json!({"containerPort": p.port, "protocol": p.protocol.as_str()});
                if let Some(name) = &p.name {
                    port["name"] = json!(name);
                }
                port
            })
            .collect();
        let mut spec = json!({
            "nodeName": pod.node,
            "containers": [{"name": "serve", "image": "weir-testbed-serve", "ports": ports}],
        });
        if pod.host_network {
            spec["hostNetwork"] = json!(true);
        }
        objects.push(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod.name, "namespace": pod.namespace, "labels": pod.labels},
            "spec": spec,
            "status": {"phase": "Running", "podIP": pod.ip.to_string(), "podIPs": [{"ip": pod.ip.to_string()}]},
        }));
    }
    objects
}

/// `cluster.yaml`: the objects as a multi-document YAML stream.
pub fn cluster_yaml(state: &State) -> Result<String, Error> {
    let mut out = String::from("# Written by `weir testbed`: the testbed's namespaces, nodes and pods.\n");
    for object in cluster_objects(state) {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&object).map_err(|e| Error::invalid("cluster.yaml", "(yaml)", e.to_string()))?);
    }
    Ok(out)
}

/// Writes `cluster.yaml` into every agent's manifests directory.
pub fn write_cluster(state: &State) -> Result<(), Error> {
    let text = cluster_yaml(state)?;
    for host in state.agent_hosts() {
        let dir = manifests_in(host.dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        write_atomic(&dir.join(CLUSTER_FILE), text.as_bytes())?;
    }
    Ok(())
}

/// Writes a file by way of a hidden temporary file and a rename, so a reader (the agent) never
/// sees a partial file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// The manifest files named by `path`: the file itself, or a directory's `*.yaml`, `*.yml`
/// and `*.json` files (not hidden, not recursive), sorted.
pub fn manifest_files(path: &Path) -> Result<Vec<PathBuf>, Error> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_file() {
        check_name(path)?;
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
        let p = entry.map_err(|e| Error::io(path, e))?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let ext = p.extension().and_then(|e| e.to_str());
        if p.is_file() && !name.starts_with('.') && matches!(ext, Some("yaml" | "yml" | "json")) {
            check_name(&p)?;
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

fn check_name(path: &Path) -> Result<(), Error> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name == CLUSTER_FILE || name.starts_with('.') {
        return Err(Error::invalid(
            format!("manifest {}", path.display()),
            "file name",
            format!("{name:?} is reserved for the testbed; rename the file"),
        ));
    }
    Ok(())
}

/// Copies the manifest files named by `paths` into every node's manifests directory, under
/// their file names (applying a file again replaces it). Returns the file names.
pub fn apply(state: &State, paths: &[PathBuf]) -> Result<Vec<String>, Error> {
    let mut files = Vec::new();
    for p in paths {
        files.extend(manifest_files(p)?);
    }
    let mut names = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        for host in state.agent_hosts() {
            let dir = manifests_in(host.dir);
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            write_atomic(&dir.join(&name), &bytes)?;
        }
        names.push(name);
    }
    Ok(names)
}

/// Removes the manifests of the same file names as `paths` from every node. Returns the names
/// that were present.
pub fn delete(state: &State, paths: &[PathBuf]) -> Result<Vec<String>, Error> {
    let mut names = Vec::new();
    for p in paths {
        // The files may be gone from the user's side already: a plain file name is enough.
        let files = if p.is_dir() { manifest_files(p)? } else { vec![p.clone()] };
        for file in files {
            check_name(&file)?;
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            let mut present = false;
            for host in state.agent_hosts() {
                let target = manifests_in(host.dir).join(&name);
                match std::fs::remove_file(&target) {
                    Ok(()) => present = true,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(&target, e)),
                }
            }
            if present {
                names.push(name);
            }
        }
    }
    Ok(names)
}

/// A fresh sync token: time and pid, unique per writer and call.
pub fn new_token() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}-{}", now.as_secs(), now.subsec_nanos(), std::process::id())
}

/// Writes `token` to every agent's `.weir-sync`.
pub fn write_token(state: &State, token: &str) -> Result<(), Error> {
    for host in state.agent_hosts() {
        let dir = manifests_in(host.dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        write_atomic(&dir.join(SYNC_FILE), format!("{token}\n").as_bytes())?;
    }
    Ok(())
}

/// An object an agent rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectError {
    /// `Kind namespace/name` (or the file).
    pub object: String,
    /// The field at fault.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// The file it came from.
    #[serde(default)]
    pub source: String,
}

/// The part of an agent's status file the testbed reads (unknown fields are ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    /// The agent's node.
    #[serde(default)]
    pub node: String,
    /// Realized generation.
    #[serde(default)]
    pub generation: u64,
    /// The `.weir-sync` token of the realized snapshot.
    #[serde(default)]
    pub source_token: Option<String>,
    /// Rejected objects.
    #[serde(default)]
    pub errors: Vec<ObjectError>,
    /// Installed flows per table.
    #[serde(default)]
    pub flows: BTreeMap<String, u64>,
    /// Whether the last realization succeeded (absent: not reported).
    #[serde(default)]
    pub realized: Option<bool>,
    /// The last realization error.
    #[serde(default)]
    pub last_error: Option<String>,
    /// What is wrong with the manifests directory itself (the last snapshot stays in force).
    #[serde(default)]
    pub source_warning: Option<String>,
    /// When the agent wrote the status, in milliseconds since the Unix epoch.
    #[serde(default)]
    pub heartbeat_unix_ms: u64,
    /// How each TrafficControl is realized on the node, by name.
    #[serde(default)]
    pub traffic_controls: BTreeMap<String, TrafficControlStatus>,
}

/// One TrafficControl on one node, as the agent reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficControlStatus {
    /// Whether every local pod it selects has its flows and ports.
    #[serde(default)]
    pub realized: bool,
    /// Local pods it applies to (`namespace/name`).
    #[serde(default)]
    pub pods: Vec<String>,
    /// The bridge ports it uses.
    #[serde(default)]
    pub ports: Vec<String>,
    /// What keeps it from being realized: strings or `{object, field, message}` objects (kept
    /// as JSON so either form reads; see [`TrafficControlStatus::error_texts`]).
    #[serde(default)]
    pub errors: Vec<Value>,
}

impl TrafficControlStatus {
    /// Each error as one line of text.
    pub fn error_texts(&self) -> Vec<String> {
        self.errors
            .iter()
            .map(|e| match e {
                Value::String(s) => s.clone(),
                other => match serde_json::from_value::<ObjectError>(other.clone()) {
                    Ok(o) => format!("{}: {}: {}", o.object, o.field, o.message),
                    Err(_) => other.to_string(),
                },
            })
            .collect()
    }
}

/// Reads a node's agent status, if the file exists and parses.
pub fn read_status(node: &NodeState) -> Option<AgentStatus> {
    read_status_in(&node.dir)
}

/// Reads the status of the agent whose directory is `dir`.
pub fn read_status_in(dir: &Path) -> Option<AgentStatus> {
    serde_json::from_slice(&std::fs::read(status_in(dir)).ok()?).ok()
}

/// Waits until every agent (nodes' and VMs') reports `token`, failing early if an agent has
/// died. Returns each one's status, by node name or `externalnode:namespace/name`.
pub fn wait_synced(state: &State, token: &str, timeout: Duration) -> Result<Vec<(String, AgentStatus)>, Error> {
    let start = Instant::now();
    let hosts = state.agent_hosts();
    let mut statuses: BTreeMap<String, AgentStatus> = BTreeMap::new();
    let mut died: Option<Error> = None;
    let done = wait_until(timeout, || {
        for host in &hosts {
            if statuses.contains_key(&host.name) {
                continue;
            }
            match read_status_in(host.dir) {
                Some(s) if s.source_token.as_deref() == Some(token) => {
                    statuses.insert(host.name.clone(), s);
                }
                _ => {
                    if !host.agent.is_some_and(|a| a.alive()) {
                        let log = host.dir.join("agent.log");
                        died = Some(Error::Died {
                            what: format!("the agent of {}", host.name),
                            tail: crate::process::log_tail(&log, 10),
                            log,
                        });
                        return true;
                    }
                }
            }
        }
        statuses.len() == hosts.len()
    });
    if let Some(e) = died {
        return Err(e);
    }
    if done.is_err() {
        let lagging: Vec<&str> = hosts.iter().filter(|h| !statuses.contains_key(&h.name)).map(|h| h.name.as_str()).collect();
        return Err(Error::Timeout {
            what: format!("the agents of {} to realize sync token {token}", lagging.join(", ")),
            seconds: start.elapsed().as_secs_f64(),
        });
    }
    Ok(hosts.iter().map(|h| (h.name.clone(), statuses.remove(&h.name).unwrap_or_default())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{PodState, Tunnel};
    use crate::process::Launcher;
    use policy::{ContainerPort, Protocol};
    use std::net::Ipv4Addr;

    fn state() -> State {
        let node = |i: u8| NodeState {
            name: format!("node-{i}"),
            index: usize::from(i),
            netns: format!("t-node-{i}"),
            dir: PathBuf::from(format!("/nonexistent/node-{i}")),
            underlay_ip: Ipv4Addr::new(192, 168, 77, 10 + i),
            underlay_mac: "02:00:c0:a8:4d:0b".into(),
            pod_cidr: format!("10.244.{i}.0/24"),
            gateway: Ipv4Addr::new(10, 244, i, 1),
            uplink: None,
            agent: None,
            labels: [("role".to_string(), format!("r{i}"))].into(),
            server: None,
        };
        let pod = |ns: &str, name: &str, node: u8, host: u8| PodState {
            namespace: ns.into(),
            name: name.into(),
            node: format!("node-{node}"),
            netns: format!("t-pod-{ns}-{name}"),
            ip: Ipv4Addr::new(10, 244, node, host),
            mac: "02:00:0a:f4:01:0a".into(),
            interface: Some(format!("t-p{host}")),
            labels: [("pod".to_string(), name.to_string())].into(),
            ports: vec![
                ContainerPort { name: Some("serve-80-tcp".into()), port: 80, protocol: Protocol::Tcp },
                ContainerPort { name: Some("serve-80-sctp".into()), port: 80, protocol: Protocol::Sctp },
            ],
            host_network: false,
            server: None,
        };
        State {
            prefix: "t".into(),
            dir: PathBuf::from("/nonexistent"),
            created_dir: false,
            tunnel: Tunnel::Geneve,
            agent_command: None,
            node_policy: Default::default(),
            server_command: Launcher { program: "/bin/true".into(), args: vec![] },
            model_file: PathBuf::from("m.yaml"),
            underlay_netns: None,
            // Names YAML 1.1 would read as booleans or numbers must stay strings.
            namespaces: [
                ("y".to_string(), [("ns".to_string(), "y".to_string())].into()),
                ("on".to_string(), [("ns".to_string(), "true".to_string())].into()),
            ]
            .into(),
            node_labels: Default::default(),
            host_ports: Vec::new(),
            nodes: vec![node(1), node(2)],
            pods: vec![pod("y", "a", 1, 10), pod("on", "80", 2, 10)],
            vms: Vec::new(),
            collector: None,
            firewalls: Vec::new(),
            kube: None,
        }
    }

    #[test]
    fn cluster_yaml_reads_back_through_the_policy_parser_unchanged() {
        let text = cluster_yaml(&state()).unwrap();
        let cluster = policy::cluster::Cluster::from_sources([("cluster.yaml", text.as_str())]);
        assert!(cluster.errors.is_empty(), "{:?}\n{text}", cluster.errors);
        assert_eq!(cluster.namespaces["y"].labels["ns"], "y");
        assert_eq!(cluster.namespaces["on"].labels["ns"], "true");
        assert_eq!(cluster.namespaces["y"].labels["kubernetes.io/metadata.name"], "y");
        let pod = cluster.pod(&policy::PodKey::new("on", "80")).expect("pod on/80");
        assert_eq!(pod.node.as_deref(), Some("node-2"));
        assert_eq!(pod.ips, vec![std::net::IpAddr::from([10, 244, 2, 10])]);
        assert_eq!(pod.named_port("serve-80-sctp", Protocol::Sctp), Some(80));
        let node = &cluster.nodes["node-2"];
        assert_eq!(node.pod_cidrs[0].to_string(), "10.244.2.0/24");
        assert_eq!(node.internal_ips, vec![std::net::IpAddr::from([192, 168, 77, 12])]);
    }

    #[test]
    fn the_testbeds_own_file_names_cannot_be_applied() {
        for name in ["cluster.yaml", ".weir-sync"] {
            let err = check_name(Path::new(name)).unwrap_err().to_string();
            assert!(err.contains("reserved"), "{err}");
        }
        assert!(check_name(Path::new("/tmp/policy.yaml")).is_ok());
    }
}
