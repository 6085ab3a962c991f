//! The whole upstream NetworkPolicy e2e suite (ported to `conformance/netpol`) on real traffic:
//! a 2-node testbed, weir's agents, TCP/UDP/SCTP probes between pod namespaces.
mod common;

#[test]
fn every_netpol_conformance_case_passes_on_a_two_node_testbed() {
    let (cases, n_cases) = common::suite::cases("netpol");
    assert!(n_cases >= 48, "the suite has 48 upstream cases, found {n_cases}");
    common::suite::assert_all_pass(&cases, n_cases, &["--prefix", &format!("c{}", std::process::id() % 10000)]);
}
