//! Every CNI command of weir-cni against a real ovsdb-server + ovs-vswitchd, driven as a
//! runtime drives it (the binary, `CNI_*` variables, the configuration on stdin).
mod common;

use agent::local_ports::{InterfaceRow, local_ports};
use common::{Node, Pod, result_ip};
use policy::PodKey;
use serde_json::json;
use std::net::Ipv4Addr;

#[test]
fn add_check_del_attach_a_pod_the_agent_recognises_in_both_spec_versions() {
    let node = Node::start("10.244.1.0/24");
    for (k, version) in ["1.0.0", "1.1.0"].into_iter().enumerate() {
        let pod = Pod::new(&format!("a{k}"));
        let id = format!("ctr-{k}");
        let result = node.add(&id, &pod, version).expect_ok("ADD");
        assert_eq!(result["cniVersion"], version);
        let ip = result_ip(&result);
        assert!(ip != Ipv4Addr::new(10, 244, 1, 1) && result["ips"][0]["address"] == format!("{ip}/24"), "{result}");
        assert_eq!(result["ips"][0]["gateway"], "10.244.1.1");
        assert_eq!(result["routes"], json!([{"dst": "0.0.0.0/0", "gw": "10.244.1.1"}]));
        let pod_if = &result["interfaces"][1];
        assert_eq!((pod_if["name"].as_str(), pod_if["sandbox"].as_str()), (Some("eth0"), pod.path().to_str()));
        // `mtu` in interfaces exists from 1.1.0 on.
        assert_eq!(pod_if.get("mtu").is_some(), version == "1.1.0", "{result}");
        let host_name = result["interfaces"][0]["name"].as_str().unwrap().to_string();

        // The pod's side: address, MTU, MAC, default route via the gateway.
        let (addr, route) = pod.eth0();
        let mac = pod_if["mac"].as_str().unwrap();
        assert_eq!(addr[0]["mtu"], 1450, "{addr}");
        assert_eq!(addr[0]["address"], mac, "{addr}");
        assert_eq!(addr[0]["addr_info"][0]["local"], ip.to_string(), "{addr}");
        assert_eq!(addr[0]["addr_info"][0]["prefixlen"], 24, "{addr}");
        assert_eq!(route[0]["gateway"], "10.244.1.1", "{route}");
        let features = pod.run("ethtool", &["-k", "eth0"]);
        let features = String::from_utf8_lossy(&features.stdout);
        assert!(features.contains("tx-checksumming: off"), "{features}");

        // The node's side: the host end on br-int with the contract, which the agent reads.
        assert!(node.has_link(&host_name));
        let (ofport, ids) = node.interfaces().remove(&host_name).expect("port on br-int");
        assert!(ofport > 0, "ofport {ofport}");
        let rows = [InterfaceRow { name: host_name.clone(), ofport: Some(ofport), external_ids: ids }];
        let seen = local_ports(&rows);
        assert!(seen.errors.is_empty(), "{:?}", seen.errors);
        let local = &seen.pods[&PodKey::new("x", format!("a{k}"))];
        assert_eq!((local.ip, local.ofport, local.mac.to_string()), (ip, ofport as u32, mac.to_string()));

        let mut conf = node.conf(version);
        conf["prevResult"] = result.clone();
        let check = node.command("CHECK", Some(&id), Some(&pod.path()), Some(&pod.name));
        assert_eq!(node.call(check, &conf).expect_ok("CHECK"), serde_json::Value::Null);

        node.del(&id, version).expect_ok("DEL");
        assert!(!node.has_link(&host_name), "host end removed");
        assert!(!node.interfaces().contains_key(&host_name), "port removed");
        assert!(node.allocations().is_empty(), "address released: {:?}", node.allocations());
        assert!(pod.eth0().0.is_null() || pod.eth0().0.as_array().is_some_and(|a| a.is_empty()), "eth0 gone");
        node.del(&id, version).expect_ok("a second DEL");

        // CHECK of what is gone fails.
        let check = node.command("CHECK", Some(&id), Some(&pod.path()), Some(&pod.name));
        let details = node.call(check, &conf).expect_error("CHECK after DEL", 100);
        assert!(details.contains("no address is reserved"), "{details}");
    }
}

#[test]
fn check_finds_a_pod_interface_that_was_changed() {
    let node = Node::start("10.244.2.0/24");
    let pod = Pod::new("c");
    let result = node.add("ctr", &pod, "1.1.0").expect_ok("ADD");
    assert!(pod.run("ip", &["link", "set", "eth0", "mtu", "1400"]).status.success());
    let mut conf = node.conf("1.1.0");
    conf["prevResult"] = result;
    let check = node.command("CHECK", Some("ctr"), Some(&pod.path()), Some("c"));
    let details = node.call(check, &conf).expect_error("CHECK", 100);
    assert!(details.contains("MTU 1400 instead of 1450"), "{details}");
    let check = node.command("CHECK", Some("ctr"), Some(&pod.path()), Some("c"));
    let details = node.call(check, &node.conf("1.1.0")).expect_error("CHECK without prevResult", 7);
    assert!(details.starts_with("prevResult"), "{details}");
}

#[test]
fn del_of_an_unknown_container_succeeds() {
    let node = Node::start("10.244.3.0/24");
    node.del("never-added", "1.0.0").expect_ok("DEL of an unknown container");
    node.del("never-added", "1.1.0").expect_ok("DEL of an unknown container, 1.1.0");
}

#[test]
fn add_into_a_pod_that_already_has_the_interface_fails() {
    let node = Node::start("10.244.4.0/24");
    let pod = Pod::new("d");
    node.add("first", &pod, "1.1.0").expect_ok("ADD");
    let details = node.add("second", &pod, "1.1.0").expect_error("second ADD into the same pod", 100);
    assert!(details.starts_with("CNI_IFNAME: eth0 already exists"), "{details}");
    assert_eq!(node.allocations().len(), 1, "the failed ADD kept no address");
}

#[test]
fn gc_removes_attachments_not_listed_as_valid() {
    let node = Node::start("10.244.5.0/24");
    let pods: Vec<Pod> = (0..3).map(|k| Pod::new(&format!("g{k}"))).collect();
    for (k, pod) in pods.iter().enumerate() {
        node.add(&format!("ctr{k}"), pod, "1.1.0").expect_ok("ADD");
    }
    assert_eq!(node.cni_ports().len(), 3);
    node.gc(&["ctr1"]).expect_ok("GC");
    let left: Vec<String> =
        node.cni_ports().values().map(|(_, ids)| ids[ovsdb::cni::CNI_CONTAINER_ID].clone()).collect();
    assert_eq!(left, vec!["ctr1".to_string()]);
    assert_eq!(node.allocations().len(), 1);
    assert!(pods[0].eth0().0.as_array().is_none_or(|a| a.is_empty()), "ctr0's eth0 is gone");
    node.gc(&[]).expect_ok("GC of everything");
    assert!(node.cni_ports().is_empty() && node.allocations().is_empty());
}

#[test]
fn gc_and_status_need_spec_1_1() {
    let node = Node::start("10.244.6.0/24");
    for command in ["GC", "STATUS"] {
        let out = node.call(node.command(command, None, None, None), &node.conf("1.0.0"));
        let details = out.expect_error(command, 1);
        assert!(details.starts_with("cniVersion"), "{details}");
    }
}

#[test]
fn status_says_whether_add_can_work() {
    let node = Node::start("10.244.7.0/29"); // 5 pod addresses
    let status = |conf: &serde_json::Value| node.call(node.command("STATUS", None, None, None), conf);
    assert_eq!(status(&node.conf("1.1.0")).expect_ok("STATUS"), serde_json::Value::Null);
    let mut no_bridge = node.conf("1.1.0");
    no_bridge["bridge"] = json!("br-none");
    let details = status(&no_bridge).expect_error("STATUS without the bridge", 50);
    assert!(details.starts_with("bridge"), "{details}");
    let mut no_ovs = node.conf("1.1.0");
    no_ovs["ovsdb"] = json!("unix:/nonexistent/db.sock");
    let details = status(&no_ovs).expect_error("STATUS without OVSDB", 50);
    assert!(details.starts_with("ovsdb"), "{details}");
    let pods: Vec<Pod> = (0..5).map(|k| Pod::new(&format!("s{k}"))).collect();
    for (k, pod) in pods.iter().enumerate() {
        node.add(&format!("s{k}"), pod, "1.1.0").expect_ok("ADD");
    }
    let details = status(&node.conf("1.1.0")).expect_error("STATUS with the pool used up", 50);
    assert!(details.starts_with("ipam.subnet"), "{details}");
    let extra = Pod::new("s5");
    let details = node.add("s5", &extra, "1.1.0").expect_error("ADD with the pool used up", 102);
    assert!(details.starts_with("ipam.subnet"), "{details}");
}

#[test]
fn version_lists_the_supported_versions() {
    let node = Node::start("10.244.8.0/24");
    let out = node.call(node.command("VERSION", None, None, None), &json!({"cniVersion": "1.0.0"}));
    assert_eq!(out.expect_ok("VERSION"), json!({"cniVersion": "1.0.0", "supportedVersions": ["1.0.0", "1.1.0"]}));
}

#[test]
fn bad_configurations_and_environments_get_the_spec_error_codes_naming_the_field() {
    let node = Node::start("10.244.9.0/24");
    let pod = Pod::new("b");
    let add = || node.command("ADD", Some("ctr"), Some(&pod.path()), Some("b"));
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c = node.conf("1.1.0");
        f(&mut c);
        c
    };
    let cases: Vec<(serde_json::Value, u64, &str)> = vec![
        (with(&|c| c["cniVersion"] = json!("0.3.1")), 1, "cniVersion"),
        (with(&|c| c["ipam"]["type"] = json!("host-local")), 2, "ipam.type"),
        (with(&|c| c["ipam"]["subnet"] = json!("10.244.9.0/40")), 7, "ipam.subnet"),
        (with(&|c| c["ipam"]["gateway"] = json!("10.1.1.1")), 7, "ipam.gateway"),
        (with(&|c| c["mtu"] = json!(-1)), 7, "mtu"),
        (with(&|c| c["name"] = json!("../etc")), 7, "name"),
        (with(&|c| c.as_object_mut().unwrap().remove("ipam").map(drop).unwrap()), 7, "ipam"),
    ];
    for (conf, code, field) in cases {
        let details = node.call(add(), &conf).expect_error(field, code);
        assert!(details.starts_with(field), "{field}: {details}");
    }
    // Not JSON at all: code 6.
    let mut cmd = add();
    let child = common::feed(&mut cmd, &json!("ignored"));
    let out = common::Outcome::of(child.wait_with_output().unwrap());
    out.expect_error("a JSON string as configuration", 7);
    let mut cmd = add();
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"{\"cniVersion\": ").unwrap();
    common::Outcome::of(child.wait_with_output().unwrap()).expect_error("truncated JSON", 6);
    // Environment: code 4 naming the variable.
    let conf = node.conf("1.1.0");
    for (var, value) in [("CNI_COMMAND", "ATTACH"), ("CNI_CONTAINERID", "-bad"), ("CNI_NETNS", "/run/netns/none")] {
        let mut cmd = add();
        cmd.env(var, value);
        let details = node.call(cmd, &conf).expect_error(var, 4);
        assert!(details.starts_with(var), "{var}: {details}");
    }
    let mut cmd = add();
    cmd.env_remove("CNI_ARGS");
    let details = node.call(cmd, &conf).expect_error("ADD without the pod", 4);
    assert!(details.starts_with("CNI_ARGS") && details.contains("K8S_POD_NAMESPACE"), "{details}");
    assert!(node.allocations().is_empty() && node.cni_ports().is_empty(), "no bad call left anything");
}

#[test]
fn a_pod_gets_the_address_it_asks_for_with_cni_args_ip_when_free() {
    let node = Node::start("10.244.14.0/24");
    let (a, b) = (Pod::new("ia"), Pod::new("ib"));
    let ask = |id: &str, pod: &Pod| {
        let mut cmd = node.command("ADD", Some(id), Some(&pod.path()), Some(&pod.name));
        cmd.env("CNI_ARGS", format!("K8S_POD_NAMESPACE=x;K8S_POD_NAME={};IP=10.244.14.42", pod.name));
        node.call(cmd, &node.conf("1.1.0"))
    };
    let result = ask("ctr-a", &a).expect_ok("ADD asking for .42");
    assert_eq!(result_ip(&result), Ipv4Addr::new(10, 244, 14, 42));
    let details = ask("ctr-b", &b).expect_error("ADD asking for a taken address", 4);
    assert!(details.starts_with("CNI_ARGS: IP=10.244.14.42 is allocated to ctr-a/eth0"), "{details}");
    assert_eq!(node.allocations(), vec!["10.244.14.42".to_string()]);
}
