//! A running testbed, as recorded in its state file: its nodes and pods, the agents' source
//! (apply, delete, sync), commands inside pods and nodes, and agent restarts.
use crate::error::Error;
use crate::manifests::{self, AgentStatus};
use crate::ovs::OvsSwitch;
use crate::process::spawn_in_netns;
use crate::state::{NodeState, PodState, State};
use policy::Labels;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Subdirectory of the state directory with the probe servers' logs and ready files.
pub const PODS_DIR: &str = "pods";
/// Default state directory.
pub const DEFAULT_DIR: &str = "/run/weir-testbed";
/// Default name prefix.
pub const DEFAULT_PREFIX: &str = "wb";

/// A testbed that is up (or was planned: see [`crate::down`] for partial ones).
#[derive(Debug, Clone)]
pub struct Testbed {
    state: State,
}

/// Every agent's status after a sync.
pub type SyncReport = Vec<(String, AgentStatus)>;

impl Testbed {
    pub(crate) fn from_state(state: State) -> Self {
        Testbed { state }
    }

    /// The testbed whose state is in `dir`.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        Ok(Testbed { state: State::load(dir)? })
    }

    /// Everything the testbed recorded.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.state.dir
    }

    /// The nodes.
    pub fn nodes(&self) -> &[NodeState] {
        &self.state.nodes
    }

    /// The pods, sorted by namespace and name.
    pub fn pods(&self) -> &[PodState] {
        &self.state.pods
    }

    /// The pod `namespace/name`.
    pub fn pod(&self, key: &str) -> Result<&PodState, Error> {
        self.state.pod(key).ok_or_else(|| Error::NoSuchTarget(key.to_string()))
    }

    /// The node of that name.
    pub fn node(&self, name: &str) -> Result<&NodeState, Error> {
        self.state.node(name).ok_or_else(|| Error::NoSuchTarget(name.to_string()))
    }

    /// A probe endpoint: the pod `namespace/name`, a node's host `node:NAME` (its namespace
    /// and underlay address) or a VM `externalnode:namespace/name`, as namespace and address.
    pub fn probe_endpoint(&self, target: &str) -> Result<(&str, std::net::Ipv4Addr), Error> {
        if let Some(name) = target.strip_prefix("node:") {
            return self.node(name).map(|n| (n.netns.as_str(), n.underlay_ip));
        }
        if let Some(key) = target.strip_prefix("externalnode:") {
            return self.vm(key).map(|v| (v.netns.as_str(), v.ip));
        }
        self.pod(target).map(|p| (p.netns.as_str(), p.ip))
    }

    /// The VMs of the model's ExternalNodes.
    pub fn vms(&self) -> &[crate::state::VmState] {
        &self.state.vms
    }

    /// The VM of the ExternalNode `namespace/name`.
    pub fn vm(&self, key: &str) -> Result<&crate::state::VmState, Error> {
        self.state.vm(key).ok_or_else(|| Error::NoSuchTarget(format!("externalnode:{key}")))
    }

    /// The OVS instance of a node (for `vsctl`, `ofctl`, `appctl`); dropping it leaves it running.
    pub fn switch(&self, node: &str) -> Result<OvsSwitch, Error> {
        let n = self.node(node)?;
        Ok(OvsSwitch::attach(&n.netns, &n.dir))
    }

    /// The network namespace of a pod (`namespace/name`) or node (`node-1`).
    pub fn netns_of(&self, target: &str) -> Result<&str, Error> {
        if let Some(pod) = self.state.pod(target) {
            return Ok(&pod.netns);
        }
        Ok(&self.node(target)?.netns)
    }

    /// A command that runs `program` inside a pod's or node's network namespace.
    pub fn command(&self, target: &str, program: &str) -> Result<Command, Error> {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.netns_of(target)?, program]);
        Ok(c)
    }

    /// Writes a fresh sync token and waits until every agent has realized it.
    pub fn sync(&self, timeout: Duration) -> Result<SyncReport, Error> {
        if self.state.agent_command.is_none() {
            return Err(Error::invalid("testbed", "agents", "this testbed runs without agents; nothing to wait for"));
        }
        self.sync_deleted(&[], timeout)
    }

    /// As [`Testbed::sync`]; in cluster mode the agents must also have seen `deleted` go
    /// (objects deleted through [`crate::kube_source`] without a sync).
    pub fn sync_deleted(&self, deleted: &[crate::kube_source::ObjectRef], timeout: Duration) -> Result<SyncReport, Error> {
        let report = if self.state.kube.is_some() {
            crate::kube_source::sync(&self.state, deleted, timeout)?;
            self.state.nodes.iter().map(|n| (n.name.clone(), manifests::read_status(n).unwrap_or_default())).collect()
        } else {
            let token = manifests::new_token();
            manifests::write_token(&self.state, &token)?;
            manifests::wait_synced(&self.state, &token, timeout)?
        };
        // The switches have the new flows; datapath flows cached from the old ones are
        // revalidated in the background. Wait for that too, so probes see the new policy.
        for node in &self.state.nodes {
            self.switch(&node.name)?.wait_revalidated()?;
        }
        Ok(report)
    }

    /// Puts the manifests named by `paths` (files or directories) into every agent's source
    /// and waits until every agent has realized them (when agents run). Returns the file names
    /// and the agents' statuses.
    pub fn apply(&self, paths: &[PathBuf], timeout: Duration) -> Result<(Vec<String>, Option<SyncReport>), Error> {
        let (names, deleted) = match self.state.kube {
            Some(_) => crate::kube_source::apply(&self.state, paths)?,
            None => (manifests::apply(&self.state, paths)?, Vec::new()),
        };
        let report = self.state.agent_command.is_some().then(|| self.sync_deleted(&deleted, timeout)).transpose()?;
        Ok((names, report))
    }

    /// Removes the manifests with the file names of `paths` from every agent's source and
    /// waits as [`Testbed::apply`] does.
    pub fn delete(&self, paths: &[PathBuf], timeout: Duration) -> Result<(Vec<String>, Option<SyncReport>), Error> {
        let (names, deleted) = match self.state.kube {
            Some(_) => crate::kube_source::delete(&self.state, paths)?,
            None => (manifests::delete(&self.state, paths)?, Vec::new()),
        };
        let report = self.state.agent_command.is_some().then(|| self.sync_deleted(&deleted, timeout)).transpose()?;
        Ok((names, report))
    }

    /// Restarts the API server of a testbed in cluster mode (see [`crate::kube::KubeRecord::restart_apiserver`]).
    pub fn restart_apiserver(&mut self) -> Result<(), Error> {
        let kube = self.state.kube.as_mut().ok_or_else(|| Error::invalid("testbed", "kube", "this testbed runs in file mode"))?;
        let restarted = kube.restart_apiserver();
        self.state.save()?;
        restarted
    }

    /// `kubectl` with the admin kubeconfig of a testbed in cluster mode.
    pub fn kubectl(&self) -> Result<Command, Error> {
        crate::kube_source::kubectl(&self.state)
    }

    /// Stops a node's agent (SIGTERM, then SIGKILL after `grace`).
    pub fn stop_agent(&mut self, node: &str, grace: Duration) -> Result<(), Error> {
        let i = self.node_index(node)?;
        if let Some(agent) = self.state.nodes[i].agent.take() {
            agent.stop(grace);
        }
        self.state.save()
    }

    /// Starts a node's agent if it is not running.
    pub fn start_agent(&mut self, node: &str) -> Result<(), Error> {
        let i = self.node_index(node)?;
        if !self.state.nodes[i].agent.is_some_and(|a| a.alive()) {
            start_agent(&mut self.state, i)?;
        }
        Ok(())
    }

    fn node_index(&self, node: &str) -> Result<usize, Error> {
        self.state.nodes.iter().position(|n| n.name == node).ok_or_else(|| Error::NoSuchTarget(node.to_string()))
    }

    /// Replaces the labels of namespaces (by name) and pods (by `namespace/name`), records
    /// them and rewrites every node's `cluster.yaml`; call [`Testbed::sync`] to wait until the
    /// agents enforce them (conformance steps change labels this way).
    pub fn set_labels(
        &mut self,
        namespaces: &BTreeMap<String, Labels>,
        pods: &BTreeMap<String, Labels>,
    ) -> Result<(), Error> {
        for (name, labels) in namespaces {
            let entry = self.state.namespaces.get_mut(name).ok_or_else(|| Error::NoSuchTarget(name.clone()))?;
            *entry = labels.clone();
        }
        for (key, labels) in pods {
            let pod = self.state.pods.iter_mut().find(|p| &p.key() == key).ok_or_else(|| Error::NoSuchTarget(key.clone()))?;
            pod.labels = labels.clone();
        }
        self.state.save()?;
        match self.state.kube {
            Some(_) => crate::kube_source::write_labels(&self.state),
            None => manifests::write_cluster(&self.state),
        }
    }

    /// Replaces the labels of VMs' ExternalNodes (by `namespace/name`) and records them;
    /// [`Testbed::set_labels`] writes them with the rest.
    pub fn set_vm_labels(&mut self, vms: &BTreeMap<String, Labels>) -> Result<(), Error> {
        for (key, labels) in vms {
            let vm = self.state.vms.iter_mut().find(|v| &v.key() == key).ok_or_else(|| Error::NoSuchTarget(format!("externalnode:{key}")))?;
            vm.labels = labels.clone();
        }
        Ok(())
    }

    /// Re-reads the state file (after another process changed it).
    pub fn reload(&mut self) -> Result<(), Error> {
        self.state = State::load(&self.state.dir)?;
        Ok(())
    }
}

/// The agent contract's command line for node `i`.
pub fn agent_args(state: &State, node: &NodeState) -> Vec<String> {
    let d = node.dir.display();
    let source = match &state.kube {
        Some(record) => crate::kube_source::agent_source_args(record),
        None => vec!["--manifests".into(), manifests::manifests_dir(node).display().to_string()],
    };
    let mut args = vec![
        "--node".into(),
        node.name.clone(),
        "--ovsdb".into(),
        format!("unix:{d}/db.sock"),
        "--openflow".into(),
        format!("unix:{d}/br-int.mgmt"),
        "--bridge".into(),
        crate::layout::INT_BRIDGE.into(),
        // The testbed's switches are userspace-only (no kernel module needed).
        "--datapath".into(),
        "netdev".into(),
        "--status-file".into(),
        manifests::status_file(node).display().to_string(),
        "--tunnel".into(),
        state.tunnel.as_str().into(),
        "--ovs-ctl".into(),
        format!("{d}/ovs-vswitchd.ctl"),
        // weir-gw0, its routes and the masquerade, inside the node's own namespace.
        "--host-gateway".into(),
        "--gateway-mtu".into(),
        crate::layout::POD_MTU.to_string(),
        "--service-cidr".into(),
        crate::layout::SERVICE_CIDR.into(),
        "--audit-log".into(),
        format!("{d}/audit.log"),
    ];
    match (state.node_policy, &node.uplink) {
        // On the bridge: what crosses weir-gw0, and the uplink moved onto br-int.
        (crate::state::NodePolicy::Ovs, Some(uplink)) => args.extend(["--node-policy".into(), "ovs".into(), "--external-interface".into(), uplink.clone()]),
        (crate::state::NodePolicy::Ovs, None) => args.extend(["--node-policy".into(), "ovs".into()]),
        // In the node's own namespace (`table inet weir-node`).
        (crate::state::NodePolicy::Nftables, _) => args.extend(["--node-policy".into(), "nftables".into()]),
    }
    args.extend(source);
    args
}

/// Starts node `i`'s agent inside its netns, logging to `<node dir>/agent.log`, and records it.
pub(crate) fn start_agent(state: &mut State, i: usize) -> Result<(), Error> {
    let Some(launcher) = state.agent_command.clone() else {
        return Err(Error::invalid("testbed", "agents", "this testbed runs without agents"));
    };
    let node = &state.nodes[i];
    let log = node.dir.join("agent.log");
    let record = spawn_in_netns(&node.netns, &launcher, &agent_args(state, node), &log)?;
    state.nodes[i].agent = Some(record);
    state.save()
}
