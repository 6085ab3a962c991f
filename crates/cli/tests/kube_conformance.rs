//! The upstream NetworkPolicy e2e suite (`conformance/netpol`) on real traffic with every
//! object going through a real kube-apiserver (`weir testbed conformance --kube`): the
//! testbed creates the namespaces, nodes and pods through the API server, plays kubelet
//! (attaches each pod through weir-cni, then writes its `status.podIP`), applies each step's
//! policies and labels with server-side apply, and waits for the agents' sync token in the
//! API server. The same cases pass in file mode (`tests/conformance.rs`).
//!
//! Skips (saying why) only when the programs are not on PATH and `WEIR_REQUIRE_KUBE` is unset.
mod common;

use std::time::Instant;
use testbed::kube::Binaries;

#[test]
fn every_netpol_conformance_case_passes_with_every_object_in_a_real_api_server() {
    if !Binaries::available_for_tests() {
        return;
    }
    let (cases, n_cases) = common::suite::cases("netpol");
    assert!(n_cases >= 48, "the suite has 48 upstream cases, found {n_cases}");
    let started = Instant::now();
    let stderr = common::suite::assert_all_pass(&cases, n_cases, &["--kube", "--prefix", &format!("k{}", std::process::id() % 10000)]);
    assert!(stderr.contains("kube-apiserver and etcd on"), "the cases ran in cluster mode: {stderr}");
    eprintln!("{n_cases} cases through the API server in {:.0} s", started.elapsed().as_secs_f64());
}
