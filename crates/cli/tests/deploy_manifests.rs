//! The DaemonSet in `deploy/` runs what the image holds, with options `weir agent` has.
//! (`crates/agent/tests/kube_deploy.rs` checks the same manifests against a real API server.)

use std::path::PathBuf;
use std::process::Command;

fn deploy(file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn daemonset() -> serde_json::Value {
    serde_saphyr::from_str(&deploy("30-daemonset.yaml")).expect("the DaemonSet is YAML")
}

#[test]
fn every_option_the_daemonset_gives_the_agent_is_one_weir_agent_has() {
    let ds = daemonset();
    let agent = &ds["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(agent["args"][0], "agent");
    let help = Command::new(env!("CARGO_BIN_EXE_weir")).args(["agent", "--help"]).output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let options: Vec<&str> = agent["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str()?.strip_prefix("--")?.split('=').next())
        .collect();
    assert!(options.contains(&"cni-conf-dir") && options.contains(&"state-dir"), "{options:?}");
    for option in options {
        assert!(help.contains(&format!("--{option}")), "`weir agent` has no --{option}");
    }
}

#[test]
fn every_program_the_daemonset_runs_is_copied_into_the_image() {
    let ds = daemonset();
    let pod = &ds["spec"]["template"]["spec"];
    let commands: Vec<String> = ["initContainers", "containers"]
        .iter()
        .flat_map(|k| pod[k].as_array().unwrap().iter())
        .flat_map(|c| c["command"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()))
        .collect();
    let programs: Vec<&str> = commands.iter().flat_map(|c| c.split_whitespace()).filter(|w| w.starts_with("/usr/local/bin/")).collect();
    assert!(programs.contains(&"/usr/local/bin/weir-cni"), "the init container installs the plugin: {programs:?}");
    let dockerfile = deploy("Dockerfile");
    let copy = dockerfile.lines().find(|l| l.starts_with("COPY --from=build")).expect("the image's COPY");
    for program in programs {
        let name = program.trim_start_matches("/usr/local/bin/");
        assert!(copy.contains(&format!("/target/release/{name} ")), "the image lacks {name}: {copy}");
    }
}
