//! The upstream NetworkPolicy e2e suite (`conformance/netpol`) on real traffic with every
//! object going through a real kube-apiserver (`weir testbed conformance --kube`): the
//! testbed creates the namespaces, nodes and pods through the API server, plays kubelet
//! (attaches each pod through weir-cni, then writes its `status.podIP`), applies each step's
//! policies and labels with server-side apply, and waits for the agents' sync token in the
//! API server. The same cases pass in file mode (`tests/conformance.rs`).
//!
//! Skips (saying why) only when the programs are not on PATH and `WEIR_REQUIRE_KUBE` is unset.
use std::path::Path;
use std::process::Command;
use std::time::Instant;
use testbed::kube::Binaries;

#[test]
fn every_netpol_conformance_case_passes_with_every_object_in_a_real_api_server() {
    if !Binaries::available_for_tests() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cases = root.join("conformance/netpol");
    let n_cases =
        std::fs::read_dir(&cases).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "yaml")).count();
    assert!(n_cases >= 48, "the suite has 48 upstream cases, found {n_cases}");
    let tmp = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["testbed", "--dir"])
        .arg(tmp.path().join("tb"))
        .args(["conformance", "--kube", "--prefix", &format!("k{}", std::process::id() % 10000)])
        .arg(&cases)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stdout.lines().last().unwrap_or("");
    assert_eq!(last, format!("{n_cases} passed, 0 failed"), "{stdout}\n{stderr}");
    assert!(out.status.success());
    assert!(stderr.contains("kube-apiserver and etcd on"), "the cases ran in cluster mode: {stderr}");
    eprintln!("{n_cases} cases through the API server in {:.0} s", started.elapsed().as_secs_f64());
}
