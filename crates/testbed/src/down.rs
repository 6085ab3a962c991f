//! Tearing a testbed down and reporting on it: only what its state file records is touched,
//! processes by pid (checked against their start time), namespaces and files by name.
use crate::error::Error;
use crate::manifests::{self, AgentStatus};
use crate::netns::Netns;
use crate::ovs::OvsSwitch;
use crate::state::State;
use crate::testbed::PODS_DIR;
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// How long a process gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// Removes every process, namespace and file the testbed in `dir` recorded. Missing parts are
/// skipped, so `down` after a failed `up` (or twice) works. Returns whether there was a testbed.
pub fn down(dir: &Path, progress: &mut dyn FnMut(&str)) -> Result<bool, Error> {
    let state = match State::load(dir) {
        Ok(s) => s,
        Err(Error::NotUp(_)) => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut first_error: Option<Error> = None;
    let mut keep = |r: Result<(), Error>| {
        if let Err(e) = r
            && first_error.is_none()
        {
            first_error = Some(e);
        }
    };
    progress(&format!("stopping {} probe server(s) and {} agent(s)", state.pods.len(), state.nodes.len()));
    let processes: Vec<_> = state
        .pods
        .iter()
        .filter_map(|p| p.server)
        .chain(state.nodes.iter().flat_map(|n| [n.agent, n.server]).flatten())
        .chain(state.vms.iter().flat_map(|v| [v.agent, v.server]).flatten())
        .collect();
    // SIGTERM to all first, so the grace periods overlap.
    for p in processes.iter().filter(|p| p.alive()) {
        // SAFETY: kill(2) of a pid whose start time shows it is the process we started.
        unsafe { libc::kill(p.pid, libc::SIGTERM) };
    }
    for p in &processes {
        p.stop(GRACE);
    }
    if let Some(kube) = &state.kube {
        progress("stopping kube-apiserver and etcd");
        kube.stop();
    }
    for node in &state.nodes {
        progress(&format!("{}: stopping ovs-vswitchd and ovsdb-server", node.name));
        OvsSwitch::attach(&node.netns, &node.dir).stop();
    }
    for vm in state.vms.iter().filter(|v| crate::external_hosts::ovs_dir(v).exists()) {
        progress(&format!("VM {}: stopping ovs-vswitchd and ovsdb-server", vm.key()));
        OvsSwitch::attach(&vm.netns, &crate::external_hosts::ovs_dir(vm)).stop();
    }
    let namespaces = state
        .pods
        .iter()
        .filter(|p| !p.host_network)
        .map(|p| p.netns.clone())
        .chain(state.underlay_netns.clone())
        .chain(state.collector.iter().map(|c| c.netns.clone()))
        .chain(state.vms.iter().map(|v| v.netns.clone()))
        .chain(state.firewalls.iter().map(|f| f.netns.clone()))
        .chain(state.nodes.iter().map(|n| n.netns.clone()));
    progress("deleting namespaces (their veths go with them)");
    for name in namespaces {
        keep(Netns::existing(&name).delete().map_err(Error::from));
    }
    progress(&format!("removing files in {}", state.dir.display()));
    if state.created_dir {
        keep(remove(&state.dir));
    } else {
        for node in &state.nodes {
            keep(remove(&node.dir));
        }
        for vm in &state.vms {
            keep(remove(&vm.dir));
        }
        keep(remove(&state.dir.join(PODS_DIR)));
        if let Some(kube) = &state.kube {
            keep(remove(&kube.dir));
        }
        keep(remove(&State::path(&state.dir)));
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(true),
    }
}

fn remove(path: &Path) -> Result<(), Error> {
    let r = if path.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}

/// One node's health.
#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    /// Node name.
    pub name: String,
    /// Its netns.
    pub netns: String,
    /// Underlay IP.
    pub underlay_ip: String,
    /// Pod CIDR.
    pub pod_cidr: String,
    /// Whether the netns exists.
    pub netns_exists: bool,
    /// ovsdb-server pid, if running.
    pub ovsdb_server: Option<i32>,
    /// ovs-vswitchd pid, if running.
    pub ovs_vswitchd: Option<i32>,
    /// Agent pid, if running.
    pub agent: Option<i32>,
    /// The agent's last status.
    pub agent_status: Option<AgentStatus>,
    /// Pods placed on the node.
    pub pods: usize,
    /// Pods whose probe server runs.
    pub servers_running: usize,
}

/// The health of every node of the testbed in `dir`.
pub fn status(dir: &Path) -> Result<Vec<NodeReport>, Error> {
    let state = State::load(dir)?;
    Ok(state
        .nodes
        .iter()
        .map(|n| {
            let sw = OvsSwitch::attach(&n.netns, &n.dir);
            let pods: Vec<_> = state.pods.iter().filter(|p| p.node == n.name).collect();
            NodeReport {
                name: n.name.clone(),
                netns: n.netns.clone(),
                underlay_ip: n.underlay_ip.to_string(),
                pod_cidr: n.pod_cidr.clone(),
                netns_exists: Netns::exists(&n.netns),
                ovsdb_server: sw.pid("ovsdb-server"),
                ovs_vswitchd: sw.pid("ovs-vswitchd"),
                agent: n.agent.filter(|a| a.alive()).map(|a| a.pid),
                agent_status: manifests::read_status(n),
                pods: pods.len(),
                servers_running: pods.iter().filter(|p| p.server.is_some_and(|s| s.alive())).count(),
            }
        })
        .collect())
}
