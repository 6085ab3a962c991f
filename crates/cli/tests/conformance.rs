//! The whole upstream NetworkPolicy e2e suite (ported to `conformance/netpol`) on real traffic:
//! a 2-node testbed, weir's agents, TCP/UDP/SCTP probes between pod namespaces.

use std::path::Path;
use std::process::Command;

#[test]
fn every_netpol_conformance_case_passes_on_a_two_node_testbed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cases = root.join("conformance/netpol");
    let n_cases = std::fs::read_dir(&cases).unwrap().filter(|e| {
        e.as_ref().unwrap().path().extension().is_some_and(|x| x == "yaml")
    }).count();
    assert!(n_cases >= 48, "the suite has 48 upstream cases, found {n_cases}");
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["testbed", "--dir"])
        .arg(tmp.path().join("tb"))
        .args(["conformance", "--prefix", &format!("c{}", std::process::id() % 10000)])
        .arg(&cases)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("");
    assert_eq!(last, format!("{n_cases} passed, 0 failed"), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());
}
