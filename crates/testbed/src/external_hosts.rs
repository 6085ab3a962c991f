//! VMs: the hosts of a model's ExternalNodes. Each is a network namespace whose interface (the
//! ExternalNode's, `eth0` in the cases) sits on the underlay with an address of its own
//! ([`Layout::vm_ip`]), serves the model's host ports, and runs a weir agent for its
//! ExternalNode (`--external-node NAME --node-policy nftables`: the interface stays where it
//! is, the host's policy lives in its own nftables) reading the same source as the nodes'
//! agents. The testbed writes the ExternalNode objects with the nodes and pods
//! ([`crate::manifests::cluster_objects`]).
//!
//! Like the collector, a VM's veth is a port of the **last node's `br-phy`** (the one switch
//! every node's underlay address can be reached through). Its routes make it a host peering
//! with the pod network, as a correctly configured deployment has it: node i's pod CIDR via
//! node i's address, so pods' connections reach it with their own addresses (the agents do not
//! masquerade traffic to ExternalEntities, see `agent::masquerade`) and its answers go back
//! the same way.
use crate::command::{run, run_with_input};
use crate::error::Error;
use crate::layout::{self, Layout, PHY_BRIDGE};
use crate::netns::Netns;
use crate::process::spawn_in_netns;
use crate::state::{NodeState, State, VmState};
use policy::ClusterModel;
use std::path::Path;
use std::process::Command;

/// The VMs of `model`'s ExternalNodes, planned on `nodes` (their veths on the last one's
/// `br-phy`), their directories under `dir`.
pub fn plan(model: &ClusterModel, nodes: &[NodeState], layout: &Layout, dir: &Path, object: &str) -> Result<Vec<VmState>, Error> {
    let Some(host) = nodes.last() else { return Ok(Vec::new()) };
    let mut vms = Vec::new();
    for (i, en) in model.external_nodes.iter().enumerate() {
        let k = i + 1;
        let ip = Layout::vm_ip(k)
            .ok_or_else(|| Error::invalid(object, "external_nodes", format!("more than {} external nodes", Layout::MAX_VMS)))?;
        if let Some(clash) = nodes.iter().find(|n| n.underlay_ip == ip) {
            let why = format!(
                "external node {}/{} would get {ip}, the underlay IP of {} (fewer nodes, please)",
                en.namespace, en.name, clash.name
            );
            return Err(Error::invalid(object, "external_nodes", why));
        }
        vms.push(VmState {
            namespace: en.namespace.clone(),
            name: en.name.clone(),
            labels: en.labels.clone(),
            interface: en.interface.clone(),
            netns: layout.vm_netns(&en.namespace, &en.name),
            dir: dir.join(format!("vm-{}-{}", en.namespace, en.name)),
            node: host.name.clone(),
            veth: layout.vm_veth(k),
            ip,
            mac: layout::mac_for(ip),
            agent: None,
            server: None,
        });
    }
    Ok(vms)
}

/// Creates (or checks and repairs) the VM's namespace, its interface on the underlay with its
/// address, and its routes to every node's pod CIDR.
pub fn attach(state: &State, vm: &VmState) -> Result<(), Error> {
    let host = state.node(&vm.node).ok_or_else(|| Error::NoSuchTarget(vm.node.clone()))?;
    Netns::add(&vm.netns)?.keep();
    std::fs::create_dir_all(&vm.dir).map_err(|e| Error::io(&vm.dir, e))?;
    let in_node = run(Command::new("ip").args(["-n", &host.netns, "link", "show", "dev", &vm.veth])).is_ok();
    if !in_node {
        run(Command::new("ip").args([
            "link",
            "add",
            &vm.veth,
            "netns",
            &host.netns,
            "type",
            "veth",
            "peer",
            "name",
            &vm.interface,
            "netns",
            &vm.netns,
        ]))?;
    }
    let mut batch = format!(
        "link set {iface} address {mac}\naddr replace {ip}/{len} dev {iface}\nlink set {iface} up\n",
        iface = vm.interface,
        mac = vm.mac,
        ip = vm.ip,
        len = Layout::UNDERLAY_PREFIX_LEN,
    );
    for node in &state.nodes {
        batch.push_str(&format!("route replace {} via {} dev {}\n", node.pod_cidr, node.underlay_ip, vm.interface));
    }
    run_with_input(Command::new("ip").args(["-n", &vm.netns, "-batch", "-"]), &batch)?;
    // What it sends crosses OVS's userspace datapath (br-phy), which forwards a checksum the
    // kernel left to offload unfilled.
    run(Command::new("ip").args(["netns", "exec", &vm.netns, "ethtool", "-K", &vm.interface, "tx", "off"]))?;
    run(Command::new("ip").args(["-n", &host.netns, "link", "set", &vm.veth, "up"]))?;
    crate::ovs::OvsSwitch::attach(&host.netns, &host.dir).vsctl(&["--may-exist", "add-port", PHY_BRIDGE, &vm.veth])?;
    Ok(())
}

/// The agent's command line for a VM: its ExternalNode, the nftables realization, the same
/// kind of source as the nodes' agents.
pub fn agent_args(vm: &VmState) -> Vec<String> {
    let manifests = crate::manifests::manifests_in(&vm.dir);
    [
        "--external-node",
        &vm.name,
        "--node-policy",
        "nftables",
        "--manifests",
        &manifests.display().to_string(),
        "--status-file",
        &crate::manifests::status_in(&vm.dir).display().to_string(),
        "--audit-log",
        "off",
    ]
    .map(String::from)
    .to_vec()
}

/// Starts VM `i`'s agent inside its namespace, logging to `<vm dir>/agent.log`, and records it.
pub(crate) fn start_agent(state: &mut State, i: usize) -> Result<(), Error> {
    let Some(launcher) = state.agent_command.clone() else {
        return Err(Error::invalid("testbed", "agents", "this testbed runs without agents"));
    };
    let vm = &state.vms[i];
    let record = spawn_in_netns(&vm.netns, &launcher, &agent_args(vm), &vm.dir.join("agent.log"))?;
    state.vms[i].agent = Some(record);
    state.save()
}
