//! The host-endpoint cases (`conformance/node`: node policy, ExternalNodes, pods selecting
//! hosts) on real traffic, in both realizations of a host's policy: a 2-node testbed with a VM
//! per ExternalNode of the case, all in nftables (`table inet weir-node`), then all on OVS
//! (each node's uplink and each VM's interface moved onto its br-int).

use std::path::Path;
use std::process::Command;

#[test]
fn every_host_endpoint_case_passes_in_nftables_and_on_ovs() {
    let cases = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/node");
    let n_cases =
        std::fs::read_dir(&cases).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "yaml")).count();
    assert!(n_cases >= 7, "found {n_cases} cases");
    // One realization after the other: two testbeds at once would be two more on a loaded CI machine.
    for realization in ["nftables", "ovs"] {
        let tmp = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["testbed", "--dir"])
            .arg(tmp.path().join("tb"))
            .args(["conformance", "--prefix", &format!("h{}", std::process::id() % 10000), "--node-policy", realization])
            .arg(&cases)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout.lines().last().unwrap_or("");
        assert_eq!(last, format!("{n_cases} passed, 0 failed"), "{realization}:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{realization}");
    }
}
