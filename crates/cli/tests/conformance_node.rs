//! The host-endpoint cases (`conformance/node`: node policy, ExternalNodes, pods selecting
//! hosts) on real traffic, in both realizations of a host's policy: a 2-node testbed with a VM
//! per ExternalNode of the case, all in nftables (`table inet weir-node`), then all on OVS
//! (each node's uplink and each VM's interface moved onto its br-int); then a case per
//! realization with every agent, the VMs' too, reading a real kube-apiserver (`--kube`): a node
//! policy dropping a node's ingress must not stall its agent's watch (the API server's bypass),
//! and on OVS the agents' first view comes through the interfaces they move
//! (`node_agent::bootstrap`).
mod common;

#[test]
fn every_host_endpoint_case_passes_in_nftables_and_on_ovs_from_files_and_through_the_api_server() {
    let (cases, n_cases) = common::suite::cases("node");
    assert!(n_cases >= 16, "found {n_cases} cases");
    let prefix = format!("h{}", std::process::id() % 10000);
    // One after the other: two testbeds at once would be two more on a loaded CI machine.
    for mode in [&["--node-policy", "nftables"][..], &["--node-policy", "ovs"]] {
        common::suite::assert_all_pass(&cases, n_cases, &[&["--prefix", &prefix][..], mode].concat());
    }
    // Through the API server the policy is the same; what differs is whether an agent can lose
    // it: a node's ingress denied but for a CIDR (nftables: its watch must not stall), and a
    // VM's interface policy (OVS: every node's and VM's interface moves, the first view comes
    // through it).
    let through_the_api = [("001-node-deny-all-except-cidr.yaml", "nftables"), ("005-externalnode-to-pod-and-back.yaml", "ovs")];
    for (case, realization) in through_the_api {
        common::suite::assert_all_pass(&cases.join(case), 1, &["--prefix", &prefix, "--node-policy", realization, "--kube"]);
    }
}
