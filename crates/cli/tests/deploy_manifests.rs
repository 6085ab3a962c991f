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

#[test]
fn every_variable_the_agent_reads_is_defined_from_a_key_the_config_map_has() {
    let ds = daemonset();
    let agent = &ds["spec"]["template"]["spec"]["containers"][0];
    let config: serde_json::Value = serde_saphyr::from_str(&deploy("20-config.yaml")).expect("the ConfigMap is YAML");
    let env = agent["env"].as_array().unwrap();
    for arg in agent["args"].as_array().unwrap().iter().filter_map(|a| a.as_str()) {
        let Some((_, var)) = arg.split_once("$(") else { continue };
        let var = var.trim_end_matches(')');
        let def = env.iter().find(|e| e["name"] == var).unwrap_or_else(|| panic!("{arg}: no env {var}"));
        let Some(key) = def["valueFrom"]["configMapKeyRef"]["key"].as_str() else { continue };
        assert!(config["data"][key].is_string(), "{var} reads key {key}, which the ConfigMap lacks");
    }
}

#[test]
fn the_service_range_the_agent_is_given_is_the_clusters() {
    let config: serde_json::Value = serde_saphyr::from_str(&deploy("20-config.yaml")).unwrap();
    let kubeadm = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testbed/vagrant/kubeadm.yaml")).unwrap();
    let subnet = kubeadm.lines().find_map(|l| l.trim().strip_prefix("serviceSubnet:")).expect("kubeadm sets serviceSubnet").trim();
    assert_eq!(config["data"]["serviceCIDR"], subnet);
}
