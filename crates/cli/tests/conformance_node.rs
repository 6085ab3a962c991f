//! The host-endpoint cases (`conformance/node`: node policy, ExternalNodes, pods selecting
//! hosts) on real traffic, in both realizations of a host's policy: a 2-node testbed with a VM
//! per ExternalNode of the case, all in nftables (`table inet weir-node`), then all on OVS
//! (each node's uplink and each VM's interface moved onto its br-int), then both again with
//! every agent, the VMs' too, reading a real kube-apiserver (`--kube`): a node policy dropping
//! a node's ingress must not stall its agent's watch (the API server's bypass), and on OVS the
//! agents' first view comes through the interfaces they move (`node_agent::bootstrap`).
mod common;

#[test]
fn every_host_endpoint_case_passes_in_nftables_and_on_ovs_from_files_and_through_the_api_server() {
    let (cases, n_cases) = common::suite::cases("node");
    assert!(n_cases >= 7, "found {n_cases} cases");
    let prefix = format!("h{}", std::process::id() % 10000);
    // One after the other: two testbeds at once would be two more on a loaded CI machine.
    let modes = [
        &["--node-policy", "nftables"][..],
        &["--node-policy", "ovs"],
        &["--node-policy", "nftables", "--kube"],
        &["--node-policy", "ovs", "--kube"],
    ];
    for mode in modes {
        common::suite::assert_all_pass(&cases, n_cases, &[&["--prefix", &prefix][..], mode].concat());
    }
}
