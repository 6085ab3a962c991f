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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::path::PathBuf;

    const MODEL: &str = "namespaces: {vms: {}}\npods: []\nexternal_nodes:\n  - {namespace: vms, name: vm1, labels: {role: db}}\n  - {namespace: vms, name: vm2, interface: ens3}\n";

    fn nodes(n: usize) -> Vec<NodeState> {
        (1..=n)
            .map(|i| NodeState {
                name: format!("node-{i}"),
                index: i,
                netns: format!("t-node-{i}"),
                dir: PathBuf::from(format!("/nonexistent/node-{i}")),
                underlay_ip: Layout::underlay_ip(i),
                underlay_mac: layout::mac_for(Layout::underlay_ip(i)),
                pod_cidr: format!("10.244.{i}.0/24"),
                gateway: Layout::pod_gateway(i),
                uplink: None,
                agent: None,
                labels: Default::default(),
                server: None,
            })
            .collect()
    }

    #[test]
    fn each_external_node_is_a_vm_above_the_nodes_on_the_last_nodes_underlay_switch() {
        let model: ClusterModel = serde_saphyr::from_str(MODEL).unwrap();
        let vms = plan(&model, &nodes(2), &Layout::new("t").unwrap(), Path::new("/d"), "m").unwrap();
        let got: Vec<(String, Ipv4Addr, &str, &str, &str)> =
            vms.iter().map(|v| (v.key(), v.ip, v.interface.as_str(), v.node.as_str(), v.veth.as_str())).collect();
        assert_eq!(
            got,
            [
                ("vms/vm1".to_string(), Ipv4Addr::new(192, 168, 77, 101), "eth0", "node-2", "t-vm1"),
                ("vms/vm2".to_string(), Ipv4Addr::new(192, 168, 77, 102), "ens3", "node-2", "t-vm2"),
            ]
        );
        assert_eq!(vms[0].netns, "t-vm-vms-vm1");
        assert_eq!(vms[0].labels["role"], "db");
    }

    #[test]
    fn a_vm_address_that_a_node_holds_is_refused() {
        let model: ClusterModel = serde_saphyr::from_str(MODEL).unwrap();
        let err = plan(&model, &nodes(91), &Layout::new("t").unwrap(), Path::new("/d"), "m").unwrap_err().to_string();
        assert!(err.contains("192.168.77.101") && err.contains("node-91"), "{err}");
    }

    #[test]
    fn the_testbeds_objects_give_each_vm_its_external_entity() {
        let model: ClusterModel = serde_saphyr::from_str(MODEL).unwrap();
        let nodes = nodes(2);
        let vms = plan(&model, &nodes, &Layout::new("t").unwrap(), Path::new("/d"), "m").unwrap();
        let state = State {
            prefix: "t".into(),
            dir: PathBuf::from("/d"),
            created_dir: false,
            tunnel: Default::default(),
            node_policy: Default::default(),
            agent_command: None,
            server_command: crate::process::Launcher { program: "/bin/true".into(), args: vec![] },
            model_file: PathBuf::from("m.yaml"),
            underlay_netns: None,
            namespaces: model.namespaces.clone(),
            node_labels: Default::default(),
            host_ports: Vec::new(),
            nodes,
            pods: Vec::new(),
            vms,
            collector: None,
            firewalls: Vec::new(),
            kube: None,
        };
        let yaml = crate::manifests::cluster_yaml(&state).unwrap();
        let cluster = policy::Cluster::from_sources([("cluster.yaml", yaml.as_str())]);
        assert!(cluster.errors.is_empty(), "{:?}", cluster.errors);
        let entity = cluster.external_entity_on("vm1", "eth0").expect("vm1's entity");
        assert_eq!(cluster.endpoint_ips(&policy::Endpoint::ExternalEntity(entity)), [std::net::IpAddr::from([192, 168, 77, 101])]);
    }
}
