//! The state file (`<dir>/testbed.json`): every name, address and process the testbed made.
//! `up` writes its plan here before creating anything (so an interrupted `up` can still be
//! torn down), then adds pids as it starts processes; `down` removes exactly what is listed.
use crate::error::Error;
use crate::process::{Launcher, ProcessRecord};
use policy::{ContainerPort, Labels};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// The state file's name inside the state directory.
pub const STATE_FILE: &str = "testbed.json";

/// Tunnel type between nodes, passed to every agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tunnel {
    /// GENEVE (UDP 6081), the default.
    #[default]
    Geneve,
    /// VXLAN (UDP 4789).
    Vxlan,
}

impl Tunnel {
    /// The spelling on the command line and in OVS (`geneve`, `vxlan`).
    pub fn as_str(self) -> &'static str {
        match self {
            Tunnel::Geneve => "geneve",
            Tunnel::Vxlan => "vxlan",
        }
    }
}

impl std::str::FromStr for Tunnel {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "geneve" => Ok(Tunnel::Geneve),
            "vxlan" => Ok(Tunnel::Vxlan),
            _ => Err(Error::invalid("testbed", "tunnel", format!("{s:?} is not geneve or vxlan"))),
        }
    }
}

/// Where the agents realize each node's own policy (`weir agent --node-policy`), and so where
/// the node's underlay address lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodePolicy {
    /// nftables in the node's namespace; the address on `br-phy`'s LOCAL port (the default).
    #[default]
    Nftables,
    /// On the bridge: the address on the uplink itself, which the agent moves onto `br-int`
    /// as an ExternalNode's NIC (`--external-interface`); no `br-phy`.
    Ovs,
}

impl std::str::FromStr for NodePolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "nftables" => Ok(NodePolicy::Nftables),
            "ovs" => Ok(NodePolicy::Ovs),
            _ => Err(Error::invalid("testbed", "node-policy", format!("{s:?} is not nftables or ovs"))),
        }
    }
}

/// Everything one testbed consists of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The name prefix of every namespace and interface.
    pub prefix: String,
    /// The state directory.
    pub dir: PathBuf,
    /// Whether `up` created the state directory (then `down` removes it whole).
    pub created_dir: bool,
    /// Tunnel type given to the agents.
    pub tunnel: Tunnel,
    /// Where the agents realize node policy.
    #[serde(default)]
    pub node_policy: NodePolicy,
    /// How agents are started (none: the testbed runs without agents).
    pub agent_command: Option<Launcher>,
    /// How probe servers are started.
    pub server_command: Launcher,
    /// The model file the pods came from.
    pub model_file: PathBuf,
    /// The netns of the Linux bridge joining more than two nodes, or nodes and VMs.
    pub underlay_netns: Option<String>,
    /// Kubernetes namespaces and their labels.
    pub namespaces: BTreeMap<String, Labels>,
    /// Labels every node carries.
    pub node_labels: Labels,
    /// The ports every node's host serves when the model names its nodes (probe targets
    /// `node:NAME`); none otherwise.
    #[serde(default)]
    pub host_ports: Vec<ContainerPort>,
    /// The nodes, in order.
    pub nodes: Vec<NodeState>,
    /// The pods, sorted by namespace and name.
    pub pods: Vec<PodState>,
    /// The VMs standing for the model's ExternalNodes ([`crate::external_hosts`]).
    #[serde(default)]
    pub vms: Vec<VmState>,
    /// The tunnel collector, once attached ([`crate::collector`]).
    #[serde(default)]
    pub collector: Option<CollectorState>,
    /// Inline firewalls' namespaces and veths ([`crate::firewall`]).
    #[serde(default)]
    pub firewalls: Vec<FirewallState>,
    /// The API server of a testbed in cluster mode (`up --kube`); none in file mode.
    #[serde(default)]
    pub kube: Option<crate::kube::KubeRecord>,
}

/// The tunnel collector: a namespace on the underlay with its own address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectorState {
    /// Its network namespace.
    pub netns: String,
    /// The node whose `br-phy` it is plugged into.
    pub node: String,
    /// The node end of its veth.
    pub veth: String,
    /// Its underlay address.
    pub ip: Ipv4Addr,
    /// Its MAC.
    pub mac: String,
}

/// A VM: a namespace on the underlay standing for an ExternalNode's host, with its own agent
/// (`--external-node`) and probe server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmState {
    /// The ExternalNode's namespace.
    pub namespace: String,
    /// The ExternalNode's name (what its agent's `--external-node` names).
    pub name: String,
    /// Its labels (the ExternalNode's, copied onto its ExternalEntity).
    pub labels: Labels,
    /// Its interface on the underlay (the ExternalNode's one interface).
    pub interface: String,
    /// Its network namespace.
    pub netns: String,
    /// Its directory: manifests, agent status and log.
    pub dir: PathBuf,
    /// The underlay's end of its veth (a port of `br-underlay`).
    pub veth: String,
    /// Its underlay address.
    pub ip: Ipv4Addr,
    /// Its MAC.
    pub mac: String,
    /// Its agent, once started.
    pub agent: Option<ProcessRecord>,
    /// Its probe server ([`State::host_ports`]), once started.
    pub server: Option<ProcessRecord>,
}

impl VmState {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// A host an agent runs on: a node, or a VM.
#[derive(Debug, Clone)]
pub struct AgentHost<'a> {
    /// The node's name, or `externalnode:namespace/name` (the VM's probe target).
    pub name: String,
    /// The name its agent runs as (`--node`, or the VM's `--external-node`): the key of its
    /// acknowledgement in cluster mode's sync ConfigMap.
    pub agent_name: &'a str,
    /// Its directory (manifests, status, agent log).
    pub dir: &'a Path,
    /// Its agent, once started.
    pub agent: Option<ProcessRecord>,
}

/// An inline firewall's namespace and the node ends of its two veths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallState {
    /// The node it is attached to.
    pub node: String,
    /// Its network namespace.
    pub netns: String,
    /// Node end of the veth traffic arrives on (a TrafficControl's target `device`).
    pub out: String,
    /// Node end of the veth traffic leaves on (the `returnPort` device).
    pub ret: String,
}

/// One emulated node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    /// Kubernetes name (`node-1`).
    pub name: String,
    /// 1-based number.
    pub index: usize,
    /// Its network namespace.
    pub netns: String,
    /// Its directory: OVS database, sockets, logs, manifests, agent status.
    pub dir: PathBuf,
    /// Underlay IP on `br-phy`'s LOCAL port.
    pub underlay_ip: Ipv4Addr,
    /// MAC of `br-phy`.
    pub underlay_mac: String,
    /// Pod CIDR, e.g. `10.244.1.0/24`.
    pub pod_cidr: String,
    /// Pod gateway.
    pub gateway: Ipv4Addr,
    /// Its end of the underlay veth (absent on a one-node testbed).
    pub uplink: Option<String>,
    /// The agent, once started.
    pub agent: Option<ProcessRecord>,
    /// Labels of its own (a model's `nodes.named`), besides [`State::node_labels`].
    #[serde(default)]
    pub labels: Labels,
    /// The host's probe server ([`State::host_ports`]), once started.
    #[serde(default)]
    pub server: Option<ProcessRecord>,
}

/// One pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodState {
    /// Kubernetes namespace.
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// Node name.
    pub node: String,
    /// The netns it runs in (its own, or its node's for hostNetwork pods).
    pub netns: String,
    /// Its IP.
    pub ip: Ipv4Addr,
    /// Its MAC (of the node's `br-phy` for hostNetwork pods).
    pub mac: String,
    /// Node end of its veth on `br-int` (none for hostNetwork pods).
    pub interface: Option<String>,
    /// Labels.
    pub labels: Labels,
    /// Container ports it serves.
    pub ports: Vec<ContainerPort>,
    /// Whether it shares its node's network namespace.
    pub host_network: bool,
    /// Its probe server, once started.
    pub server: Option<ProcessRecord>,
}

impl PodState {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

impl State {
    /// Every host an agent runs on: the nodes, then the VMs.
    pub fn agent_hosts(&self) -> Vec<AgentHost<'_>> {
        let nodes = self.nodes.iter().map(|n| AgentHost { name: n.name.clone(), agent_name: &n.name, dir: &n.dir, agent: n.agent });
        let vms = self
            .vms
            .iter()
            .map(|v| AgentHost { name: format!("externalnode:{}", v.key()), agent_name: &v.name, dir: &v.dir, agent: v.agent });
        nodes.chain(vms).collect()
    }

    /// The VM of the ExternalNode `namespace/name`.
    pub fn vm(&self, key: &str) -> Option<&VmState> {
        self.vms.iter().find(|v| v.key() == key)
    }

    /// Path of the state file in `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(STATE_FILE)
    }

    /// Reads the state of the testbed in `dir`.
    pub fn load(dir: &Path) -> Result<State, Error> {
        let path = Self::path(dir);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotUp(dir.to_path_buf())),
            Err(e) => return Err(Error::io(&path, e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| Error::invalid(path.display().to_string(), "(file)", e.to_string()))
    }

    /// Writes the state atomically (temporary file, then rename).
    pub fn save(&self) -> Result<(), Error> {
        let path = Self::path(&self.dir);
        let tmp = self.dir.join(format!(".{STATE_FILE}.tmp"));
        let text = serde_json::to_vec_pretty(self).map_err(|e| Error::io(&path, std::io::Error::other(e)))?;
        std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }

    /// The node of that name.
    pub fn node(&self, name: &str) -> Option<&NodeState> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The pod `namespace/name`.
    pub fn pod(&self, key: &str) -> Option<&PodState> {
        self.pods.iter().find(|p| p.key() == key)
    }
}
