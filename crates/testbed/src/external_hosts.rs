//! VMs: the hosts of a model's ExternalNodes. Each is a network namespace whose interface (the
//! ExternalNode's, `eth0` in the cases) sits on the underlay with an address of its own
//! ([`Layout::vm_ip`]), serves the model's host ports, and runs a weir agent for its
//! ExternalNode reading the same source as the nodes' agents, in the testbed's realization of
//! host policy:
//! - nftables: `--external-node NAME --node-policy nftables`; the interface stays where it is,
//!   the host's policy lives in the VM's own nftables;
//! - OVS: the VM runs its own ovsdb-server and userspace ovs-vswitchd (state under
//!   `<vm dir>/ovs`) and `--external-node NAME --external-interface IF`: the agent moves the
//!   interface onto the VM's `br-int`, where the host's policy is realized.
//!
//! The testbed writes the ExternalNode objects with the nodes and pods
//! ([`crate::manifests::cluster_objects`]).
//!
//! A VM's veth is a port of the underlay's Linux bridge (`br-underlay` in the underlay netns,
//! which a testbed with VMs always has): it exists whatever realizes the nodes' policy (in
//! OVS mode a node has no `br-phy`, its uplink is on `br-int`). Its routes make it a host
//! peering with the pod network, as a correctly configured deployment has it: node i's pod
//! CIDR via node i's address, so pods' connections reach it with their own addresses (the
//! agents do not masquerade traffic to ExternalEntities, see `agent::masquerade`) and its
//! answers go back the same way.
use crate::command::{run, run_with_input};
use crate::error::Error;
use crate::layout::{self, Layout, UNDERLAY_BRIDGE};
use crate::netns::Netns;
use crate::process::spawn_in_netns;
use crate::ovs::OvsSwitch;
use crate::state::{NodePolicy, NodeState, State, VmState};
use policy::ClusterModel;
use std::path::Path;
use std::process::Command;

/// The VMs of `model`'s ExternalNodes beside `nodes` on the underlay, their directories under
/// `dir`.
pub fn plan(model: &ClusterModel, nodes: &[NodeState], layout: &Layout, dir: &Path, object: &str) -> Result<Vec<VmState>, Error> {
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
            veth: layout.vm_veth(k),
            ip,
            mac: layout::mac_for(ip),
            agent: None,
            server: None,
        });
    }
    Ok(vms)
}

/// Creates (or checks and repairs) the VM's namespace, its interface on the underlay's bridge
/// with its address, its routes to every node's pod CIDR, and in OVS mode its switch.
pub fn attach(state: &State, vm: &VmState) -> Result<(), Error> {
    let underlay = state.underlay_netns.as_deref().ok_or_else(|| Error::invalid("testbed", "underlay", "VMs need the underlay's bridge"))?;
    let netns = Netns::add(&vm.netns)?.keep();
    std::fs::create_dir_all(&vm.dir).map_err(|e| Error::io(&vm.dir, e))?;
    if !link_exists(underlay, &vm.veth) {
        run(Command::new("ip").args([
            "link", "add", &vm.veth, "netns", underlay, "type", "veth", "peer", "name", &vm.interface, "netns", &vm.netns,
        ]))?;
    }
    // Once the agent has moved the interface onto br-int (it is then `<interface>~`), the
    // internal port that took its name carries its address and routes.
    if !link_exists(&vm.netns, &format!("{}~", vm.interface)) {
        configure(state, vm)?;
    }
    run(Command::new("ip").args(["-n", underlay, "link", "set", &vm.veth, "master", UNDERLAY_BRIDGE, "up"]))?;
    if state.node_policy == NodePolicy::Ovs {
        OvsSwitch::start(&netns, &ovs_dir(vm))?.keep();
    }
    Ok(())
}

/// The VM's interface: MAC, address, link, routes to the pods.
fn configure(state: &State, vm: &VmState) -> Result<(), Error> {
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
    // What it sends reaches OVS's userspace datapath (a node's uplink port), which forwards a
    // checksum the kernel left to offload unfilled.
    run(Command::new("ip").args(["netns", "exec", &vm.netns, "ethtool", "-K", &vm.interface, "tx", "off"]))?;
    Ok(())
}

fn link_exists(netns: &str, name: &str) -> bool {
    Netns::exists(netns) && run(Command::new("ip").args(["-n", netns, "link", "show", "dev", name])).is_ok()
}

/// Where a VM's switch keeps its database, sockets, pidfiles and logs (OVS mode).
pub fn ovs_dir(vm: &VmState) -> std::path::PathBuf {
    vm.dir.join("ovs")
}

/// The agent's command line for a VM: its ExternalNode in the testbed's realization (see the
/// module doc), the same kind of source as the nodes' agents.
pub fn agent_args(state: &State, vm: &VmState) -> Vec<String> {
    let mut args = vec!["--external-node".to_string(), vm.name.clone()];
    match &state.kube {
        Some(record) => args.extend(crate::kube_source::agent_source_args(record)),
        None => args.extend(["--manifests".into(), crate::manifests::manifests_in(&vm.dir).display().to_string()]),
    }
    args.extend(["--status-file".into(), crate::manifests::status_in(&vm.dir).display().to_string(), "--audit-log".into(), "off".into()]);
    match state.node_policy {
        NodePolicy::Nftables => args.extend(["--node-policy".into(), "nftables".into()]),
        NodePolicy::Ovs => {
            let d = ovs_dir(vm);
            let d = d.display();
            args.extend(
                [
                    "--external-interface".into(),
                    vm.interface.clone(),
                    "--ovsdb".into(),
                    format!("unix:{d}/db.sock"),
                    "--openflow".into(),
                    format!("unix:{d}/{}.mgmt", layout::INT_BRIDGE),
                    "--bridge".into(),
                    layout::INT_BRIDGE.into(),
                    // Userspace-only, as the nodes' switches.
                    "--datapath".into(),
                    "netdev".into(),
                    "--ovs-ctl".into(),
                    format!("{d}/ovs-vswitchd.ctl"),
                ],
            );
        }
    }
    args
}

/// Starts VM `i`'s agent inside its namespace, logging to `<vm dir>/agent.log`, and records it.
pub(crate) fn start_agent(state: &mut State, i: usize) -> Result<(), Error> {
    let Some(launcher) = state.agent_command.clone() else {
        return Err(Error::invalid("testbed", "agents", "this testbed runs without agents"));
    };
    let vm = &state.vms[i];
    let record = spawn_in_netns(&vm.netns, &launcher, &agent_args(state, vm), &vm.dir.join("agent.log"))?;
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
    fn each_external_node_is_a_vm_above_the_nodes_on_the_underlay_switch() {
        let model: ClusterModel = serde_saphyr::from_str(MODEL).unwrap();
        let vms = plan(&model, &nodes(2), &Layout::new("t").unwrap(), Path::new("/d"), "m").unwrap();
        let got: Vec<(String, Ipv4Addr, &str, &str)> = vms.iter().map(|v| (v.key(), v.ip, v.interface.as_str(), v.veth.as_str())).collect();
        assert_eq!(
            got,
            [
                ("vms/vm1".to_string(), Ipv4Addr::new(192, 168, 77, 101), "eth0", "t-vm1"),
                ("vms/vm2".to_string(), Ipv4Addr::new(192, 168, 77, 102), "ens3", "t-vm2"),
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

    fn state(model: &ClusterModel, node_policy: NodePolicy) -> State {
        let nodes = nodes(2);
        let vms = plan(model, &nodes, &Layout::new("t").unwrap(), Path::new("/d"), "m").unwrap();
        State {
            prefix: "t".into(),
            dir: PathBuf::from("/d"),
            created_dir: false,
            tunnel: Default::default(),
            node_policy,
            agent_command: None,
            server_command: crate::process::Launcher { program: "/bin/true".into(), args: vec![] },
            model_file: PathBuf::from("m.yaml"),
            underlay_netns: Some("t-underlay".into()),
            namespaces: model.namespaces.clone(),
            node_labels: Default::default(),
            host_ports: Vec::new(),
            nodes,
            pods: Vec::new(),
            vms,
            collector: None,
            firewalls: Vec::new(),
            kube: None,
        }
    }

    #[test]
    fn the_testbeds_objects_give_each_vm_its_external_entity() {
        let model: ClusterModel = serde_saphyr::from_str(MODEL).unwrap();
        let state = state(&model, NodePolicy::Nftables);
        let yaml = crate::manifests::cluster_yaml(&state).unwrap();
        let cluster = policy::Cluster::from_sources([("cluster.yaml", yaml.as_str())]);
        assert!(cluster.errors.is_empty(), "{:?}", cluster.errors);
        let entity = cluster.external_entity_on("vm1", "eth0").expect("vm1's entity");
        assert_eq!(cluster.endpoint_ips(&policy::Endpoint::ExternalEntity(entity)), [std::net::IpAddr::from([192, 168, 77, 101])]);
    }

    /// The value following `flag` in an agent command line.
    fn flag<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
        args.iter().position(|a| a == flag).map(|i| args[i + 1].as_str())
    }

    #[test]
    fn in_nftables_mode_a_vms_agent_leaves_its_interface_where_it_is() {
        let model: ClusterModel = serde_saphyr::from_str(MODEL).unwrap();
        let state = state(&model, NodePolicy::Nftables);
        let args = agent_args(&state, &state.vms[1]);
        assert_eq!(flag(&args, "--external-node"), Some("vm2"));
        assert_eq!(flag(&args, "--node-policy"), Some("nftables"));
        assert_eq!(flag(&args, "--external-interface"), None);
        assert_eq!(flag(&args, "--ovsdb"), None);
    }

    #[test]
    fn in_ovs_mode_a_vms_agent_moves_its_interface_onto_the_vms_own_switch() {
        let model: ClusterModel = serde_saphyr::from_str(MODEL).unwrap();
        let state = state(&model, NodePolicy::Ovs);
        let args = agent_args(&state, &state.vms[1]);
        assert_eq!(flag(&args, "--external-node"), Some("vm2"));
        assert_eq!(flag(&args, "--external-interface"), Some("ens3"));
        assert_eq!(flag(&args, "--node-policy"), None);
        assert_eq!(flag(&args, "--ovsdb"), Some("unix:/d/vm-vms-vm2/ovs/db.sock"));
        assert_eq!(flag(&args, "--openflow"), Some("unix:/d/vm-vms-vm2/ovs/br-int.mgmt"));
        assert_eq!(flag(&args, "--ovs-ctl"), Some("/d/vm-vms-vm2/ovs/ovs-vswitchd.ctl"));
    }
}
