//! The VM testbed (`Vagrantfile`, `testbed/vagrant/`) cannot boot here (no hypervisor): what
//! can be checked without one is checked. Ruby parses the Vagrantfile, ShellCheck passes every
//! provisioning script, every script the Vagrantfile names exists, and kubeadm's configuration
//! gives nodes the pod CIDRs weir needs. (`scripts/setup.sh` installs ruby and shellcheck.)

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (scripts/setup.sh installs it)"));
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn scripts() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("testbed/vagrant"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sh"))
        .map(|n| format!("testbed/vagrant/{n}"))
        .collect();
    names.sort();
    names
}

#[test]
fn ruby_parses_the_vagrantfile() {
    let (ok, out) = run("ruby", &["-c", "Vagrantfile"]);
    assert!(ok && out.contains("Syntax OK"), "{out}");
}

#[test]
fn shellcheck_passes_every_provisioning_script() {
    let scripts = scripts();
    assert!(scripts.len() >= 5, "{scripts:?}");
    let mut args = vec!["--severity=style"];
    args.extend(scripts.iter().map(String::as_str));
    let (ok, out) = run("shellcheck", &args);
    assert!(ok, "{out}");
}

#[test]
fn every_script_the_vagrantfile_provisions_with_exists() {
    let vagrantfile = std::fs::read_to_string(root().join("Vagrantfile")).unwrap();
    let named: Vec<&str> = vagrantfile.split('"').filter(|s| s.starts_with("testbed/vagrant/")).collect();
    assert_eq!(named.len(), 5, "common, image, control-plane, smoke, worker: {named:?}");
    for script in named {
        assert!(Path::new(&root().join(script)).is_file(), "{script} is missing");
    }
}

#[test]
fn kubeadm_gives_every_node_a_pod_cidr_for_weir() {
    let text = std::fs::read_to_string(root().join("testbed/vagrant/kubeadm.yaml")).unwrap();
    let docs: Vec<serde_json::Value> = text.split("\n---\n").map(|d| serde_saphyr::from_str(d).expect("YAML")).collect();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["InitConfiguration", "ClusterConfiguration"]);
    let cluster = &docs[1];
    let pod_subnet: ipnetwork::Ipv4Network = cluster["networking"]["podSubnet"].as_str().unwrap().parse().unwrap();
    let mask = cluster["controllerManager"]["extraArgs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "node-cidr-mask-size")
        .and_then(|a| a["value"].as_str()?.parse::<u8>().ok())
        .expect("node-cidr-mask-size");
    assert!(mask > pod_subnet.prefix() && mask <= 28, "a /{mask} per node out of {pod_subnet}");
    assert!(text.contains("ADVERTISE_ADDRESS") && text.contains("BOOTSTRAP_TOKEN"), "control-plane.sh fills both");
}
