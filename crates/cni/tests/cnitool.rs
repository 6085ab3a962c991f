//! weir-cni driven by the reference runtime library: `cnitool` (github.com/containernetworking/
//! cni, built by scripts/cnitool.sh), which executes a network configuration list through
//! libcni as container runtimes do (result cache, prevResult for CHECK, DEL on GC).
mod common;

use common::{Node, Pod, result_ip};
use serde_json::json;
use std::path::Path;
use std::process::Command;

/// `cnitool` on PATH, or `None` (the test then says why it did not run, unless
/// `WEIR_REQUIRE_CNITOOL` makes that a failure).
fn cnitool() -> Option<()> {
    let found = Command::new("cnitool").arg("--help").output().is_ok();
    if !found {
        assert!(
            std::env::var_os("WEIR_REQUIRE_CNITOOL").is_none(),
            "cnitool is not on PATH: run PATH=\"$(bash scripts/cnitool.sh)$PATH\""
        );
        eprintln!("skipped: cnitool is not on PATH (PATH=\"$(bash scripts/cnitool.sh)$PATH\" provides it)");
        return None;
    }
    Some(())
}

struct Tool<'a> {
    node: &'a Node,
    netconf: tempfile::TempDir,
    plugins: tempfile::TempDir,
    network: String,
}

impl Tool<'_> {
    fn run(&self, command: &str, pod: &Pod) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", self.node.sw.netns.name(), "cnitool", command, &self.network])
            .arg(pod.path())
            .env("NETCONFPATH", self.netconf.path())
            .env("CNI_PATH", self.plugins.path())
            .env("CNI_IFNAME", "eth0")
            .env("CNI_ARGS", format!("K8S_POD_NAMESPACE=x;K8S_POD_NAME={}", pod.name))
            .output()
            .unwrap()
    }

    fn ok(&self, command: &str, pod: &Pod) -> String {
        let out = self.run(command, pod);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "cnitool {command}: {stdout} {}", String::from_utf8_lossy(&out.stderr));
        stdout
    }

    fn allocations(&self) -> usize {
        let dir = self.node.state.path().join(&self.network);
        std::fs::read_dir(dir).map_or(0, |d| {
            d.filter(|e| e.as_ref().unwrap().file_name().to_str().unwrap().parse::<std::net::Ipv4Addr>().is_ok())
                .count()
        })
    }
}

#[test]
fn cnitool_runs_status_add_check_del_and_gc_through_libcni() {
    let Some(()) = cnitool() else { return };
    let node = Node::start("10.244.13.0/24");
    let network = format!("weir-cnitool-{}", std::process::id());
    let mut plugin = node.conf("1.1.0");
    plugin.as_object_mut().unwrap().remove("cniVersion");
    plugin.as_object_mut().unwrap().remove("name");
    let list = json!({ "cniVersion": "1.1.0", "name": network, "plugins": [plugin] });
    let tool =
        Tool { node: &node, netconf: tempfile::tempdir().unwrap(), plugins: tempfile::tempdir().unwrap(), network };
    std::fs::write(tool.netconf.path().join("10-weir.conflist"), list.to_string()).unwrap();
    std::os::unix::fs::symlink(common::plugin(), tool.plugins.path().join("weir-cni")).unwrap();
    let pod = Pod::new("t");

    tool.ok("status", &pod);
    let result: serde_json::Value = serde_json::from_str(&tool.ok("add", &pod)).expect("cnitool prints the result");
    assert_eq!(result["cniVersion"], "1.1.0");
    let ip = result_ip(&result);
    let (addr, _) = pod.eth0();
    assert_eq!(addr[0]["addr_info"][0]["local"], ip.to_string(), "{addr}");
    assert_eq!(node.cni_ports().len(), 1);
    tool.ok("check", &pod);

    // CHECK fails once the pod's interface is broken.
    assert!(pod.run("ip", &["link", "set", "eth0", "down"]).status.success());
    let out = tool.run("check", &pod);
    assert!(!out.status.success(), "cnitool check passed with eth0 down");
    assert!(String::from_utf8_lossy(&out.stderr).contains("is down"), "{}", String::from_utf8_lossy(&out.stderr));

    tool.ok("del", &pod);
    assert!(node.cni_ports().is_empty() && tool.allocations() == 0);
    tool.ok("del", &pod);

    // GC without valid attachments (what cnitool sends) removes the new attachment.
    tool.ok("add", &pod);
    assert_eq!((node.cni_ports().len(), tool.allocations()), (1, 1));
    tool.ok("gc", &pod);
    assert!(node.cni_ports().is_empty() && tool.allocations() == 0, "GC left {:?}", node.cni_ports());
    assert!(Path::new(&pod.path()).exists());
}
