//! `up`, `apply`/`delete` and `down` on real namespaces and OVS instances.
mod common;
use common::*;
use std::time::Duration;

fn no_progress(_: &str) {}

#[test]
fn up_then_down_leaves_no_namespace_process_veth_or_file() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options('l', tmp.path(), standard_model(), 2, Some(fake_agent(tmp.path())));
    let tb = Running::up(&opts);
    let prefix = opts.prefix.clone();

    let mut pids: Vec<i32> = tb.pods().iter().map(|p| p.server.expect("server recorded").pid).collect();
    pids.extend(tb.nodes().iter().map(|n| n.agent.expect("agent recorded").pid));
    for node in tb.nodes() {
        let sw = tb.switch(&node.name).unwrap();
        pids.extend(["ovsdb-server", "ovs-vswitchd"].map(|d| sw.pid(d).expect("daemon runs")));
    }
    assert_eq!(pids.len(), 9 + 2 + 4);
    assert!(pids.iter().all(|&p| testbed::ovs::process_alive(p)));
    assert_eq!(namespaces_with(&prefix).len(), 9 + 2, "9 pod and 2 node namespaces");
    assert!(opts.dir.join("testbed.json").exists());

    assert!(testbed::down(&opts.dir, &mut no_progress).expect("down"));
    for pid in pids {
        assert!(!testbed::ovs::process_alive(pid), "pid {pid} still runs");
    }
    assert_eq!(namespaces_with(&prefix), Vec::<String>::new());
    assert_eq!(root_links_with(&prefix), Vec::<String>::new());
    assert!(!opts.dir.exists(), "state dir {} removed", opts.dir.display());
    assert!(!testbed::down(&opts.dir, &mut no_progress).unwrap(), "a second down finds nothing");
}

#[test]
fn pods_get_their_address_mac_mtu_route_offload_and_cni_external_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options('p', tmp.path(), standard_model(), 2, None);
    let tb = Running::up(&opts);
    let pod = tb.pod("y/b").unwrap().clone();
    let node = tb.node(&pod.node).unwrap().clone();

    let addr = sh(&["ip", "-n", &pod.netns, "-o", "-4", "addr", "show", "dev", "eth0"]);
    assert!(addr.contains(&format!("inet {}/24", pod.ip)), "{addr}");
    let link = sh(&["ip", "-n", &pod.netns, "link", "show", "dev", "eth0"]);
    assert!(link.contains("mtu 1450") && link.contains(&pod.mac), "{link}");
    let route = sh(&["ip", "-n", &pod.netns, "route", "show", "default"]);
    assert!(route.contains(&format!("via {}", node.gateway)), "{route}");
    let offload = sh(&["ip", "netns", "exec", &pod.netns, "ethtool", "-k", "eth0"]);
    assert!(offload.contains("tx-checksumming: off"), "{offload}");
    assert_eq!(pod.mac, testbed::layout::mac_for(pod.ip));

    let sw = tb.switch(&node.name).unwrap();
    let veth = pod.interface.clone().unwrap();
    let ids = sw.vsctl(&["get", "Interface", &veth, "external_ids"]).unwrap();
    for expected in [
        "iface-id=\"y/b\"".to_string(),
        "pod-namespace=y".to_string(),
        "pod-name=b".to_string(),
        format!("ip-address=\"{}\"", pod.ip),
        format!("attached-mac=\"{}\"", pod.mac),
    ] {
        assert!(ids.contains(&expected), "{expected} in {ids}");
    }
    // Attached by weir-cni through the CNI protocol: the port names its CNI attachment.
    assert!(ids.contains("weir-cni-container-id=") && ids.contains(&pod.netns), "weir-cni attachment in {ids}");
    // br-int is secure until the agent programs it: no flow at all, so no NORMAL.
    let flows = sw.ofctl("dump-flows", "br-int", &["--no-stats"]).unwrap();
    assert!(!flows.contains("actions="), "{flows}");
    let fail_mode = sw.vsctl(&["get-fail-mode", "br-int"]).unwrap();
    assert_eq!(fail_mode.trim(), "secure");

    // Every pod has an address from its node's CIDR, unique across the testbed.
    let mut ips: Vec<_> = tb.pods().iter().map(|p| p.ip).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 9);
    for p in tb.pods() {
        let n = tb.node(&p.node).unwrap();
        assert_eq!(p.ip.octets()[2] as usize, n.index, "{} is in {}", p.ip, n.pod_cidr);
    }
    testbed::down(&opts.dir, &mut no_progress).unwrap();
}

#[test]
fn up_again_changes_nothing_and_a_different_model_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path(), "namespaces: {x: {}}\npods: {a: {}, b: {}}\nports: [80]\nprotocols: [TCP]\n");
    let opts = options('i', tmp.path(), model, 1, None);
    let first = Running::up(&opts);
    let second = testbed::up(&opts, &mut no_progress).expect("up again");
    assert_eq!(first.state(), second.state(), "same pids, names and addresses");
    drop(second);

    let mut more = opts.clone();
    more.nodes = 2;
    let err = testbed::up(&more, &mut no_progress).unwrap_err().to_string();
    assert!(err.contains("node count") && err.contains("down"), "{err}");
    testbed::down(&opts.dir, &mut no_progress).unwrap();
}

#[test]
fn apply_and_delete_return_once_every_agent_reports_the_new_token() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path(), "namespaces: {x: {}}\npods: {a: {}}\nports: [80]\nprotocols: [UDP]\n");
    let opts = options('a', tmp.path(), model, 2, Some(fake_agent(tmp.path())));
    let tb = Running::up(&opts);
    let manifests = tmp.path().join("policies");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(manifests.join("good.yaml"), "kind: NetworkPolicy\n").unwrap();
    std::fs::write(manifests.join("bad-port.yaml"), "kind: NetworkPolicy\n").unwrap();

    let (names, report) = tb.apply(std::slice::from_ref(&manifests), Duration::from_secs(20)).expect("apply");
    assert_eq!(names, ["bad-port.yaml", "good.yaml"]);
    let report = report.expect("agents ran");
    assert_eq!(report.len(), 2);
    for (node, status) in &report {
        let dir = tb.node(node).unwrap().dir.join("manifests");
        let token = std::fs::read_to_string(dir.join(".weir-sync")).unwrap();
        assert_eq!(status.source_token.as_deref(), Some(token.trim()), "{node}");
        assert!(dir.join("good.yaml").exists() && dir.join("cluster.yaml").exists());
        assert_eq!(status.errors.len(), 1, "{node}: the agent's rejection is passed on");
        assert_eq!(status.errors[0].object, "file bad-port.yaml");
    }

    let (deleted, report) =
        tb.delete(&[manifests.join("bad-port.yaml")], Duration::from_secs(20)).expect("delete");
    assert_eq!(deleted, ["bad-port.yaml"]);
    assert!(report.unwrap().iter().all(|(_, s)| s.errors.is_empty()));

    let reserved = tmp.path().join("cluster.yaml");
    std::fs::write(&reserved, "").unwrap();
    let err = tb.apply(&[reserved], Duration::from_secs(1)).unwrap_err();
    assert!(err.to_string().contains("reserved"), "{err}");
    testbed::down(&opts.dir, &mut no_progress).unwrap();
}

#[test]
fn a_dead_agent_fails_the_sync_with_its_log() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path(), "namespaces: {x: {}}\npods: {a: {}}\nports: [80]\nprotocols: [TCP]\n");
    let agent = testbed::Launcher { program: "/bin/sh".into(), args: vec!["-c".into(), "echo agent gives up; exit 3".into()] };
    let opts = options('d', tmp.path(), model, 1, Some(agent));
    let tb = Running::up(&opts);
    let err = tb.sync(Duration::from_secs(10)).unwrap_err().to_string();
    assert!(err.contains("agent of node-1 is not running") && err.contains("agent gives up"), "{err}");
    testbed::down(&opts.dir, &mut no_progress).unwrap();
}

#[test]
fn three_nodes_reach_each_other_through_the_underlay_switch() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path(), "namespaces: {x: {}}\npods: {a: {}, b: {}, c: {}}\nports: [80]\nprotocols: [TCP]\n");
    let opts = options('u', tmp.path(), model, 3, None);
    let tb = Running::up(&opts);
    assert!(tb.state().underlay_netns.is_some());
    for a in tb.nodes() {
        for b in tb.nodes().iter().filter(|b| b.name != a.name) {
            sh(&["ip", "netns", "exec", &a.netns, "ping", "-c", "1", "-W", "2", &b.underlay_ip.to_string()]);
        }
        // The tunnel neighbours are pre-seeded.
        let neigh = tb.switch(&a.name).unwrap().appctl(&["tnl/neigh/show"]).unwrap();
        assert_eq!(neigh.matches("br-phy").count(), 2, "{neigh}");
    }
    let prefix = opts.prefix.clone();
    testbed::down(&opts.dir, &mut no_progress).unwrap();
    assert_eq!(namespaces_with(&prefix), Vec::<String>::new());
}

#[test]
fn a_host_network_pod_uses_its_node_address_and_namespace() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(
        tmp.path(),
        "namespaces: {f: {}}
pods:
  - {namespace: f, name: web, ports: [{port: 80, protocol: TCP, name: web}]}
  - {namespace: f, name: centaur, hostNetwork: true, ports: [{port: 34345, protocol: UDP}]}
",
    );
    let opts = options('h', tmp.path(), model, 1, None);
    let tb = Running::up(&opts);
    let node = tb.node("node-1").unwrap();
    let host = tb.pod("f/centaur").unwrap();
    assert_eq!((host.ip, host.netns.as_str(), host.interface.as_ref()), (node.underlay_ip, node.netns.as_str(), None));
    let listening = sh(&["ip", "netns", "exec", &node.netns, "ss", "-Hlun", "sport = :34345"]);
    assert!(listening.contains("34345"), "the server listens in the node namespace: {listening}");
    let cluster = std::fs::read_to_string(node.dir.join("manifests/cluster.yaml")).unwrap();
    assert!(cluster.contains("hostNetwork: true"), "{cluster}");
    assert_eq!(namespaces_with(&opts.prefix).len(), 2, "one node and one pod namespace");
}

#[test]
fn an_agent_can_be_stopped_and_started_again_by_pid() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path(), "namespaces: {x: {}}\npods: {a: {}}\nports: [80]\nprotocols: [TCP]\n");
    let opts = options('r', tmp.path(), model, 2, Some(fake_agent(tmp.path())));
    let running = Running::up(&opts);
    let mut tb = (*running).clone();
    let old = tb.node("node-2").unwrap().agent.unwrap();
    tb.stop_agent("node-2", Duration::from_secs(2)).unwrap();
    assert!(!old.alive(), "the agent of node-2 is stopped");
    assert!(tb.node("node-1").unwrap().agent.unwrap().alive(), "node-1's agent is untouched");
    assert!(tb.sync(Duration::from_secs(5)).unwrap_err().to_string().contains("agent of node-2 is not running"));

    tb.start_agent("node-2").unwrap();
    let new = tb.node("node-2").unwrap().agent.unwrap();
    assert_ne!(new, old);
    assert_eq!(testbed::Testbed::load(&opts.dir).unwrap().node("node-2").unwrap().agent, Some(new), "recorded for down");
    tb.sync(Duration::from_secs(10)).expect("both agents sync again");
}

#[test]
fn label_changes_reach_the_agents_source() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options('b', tmp.path(), standard_model(), 1, Some(fake_agent(tmp.path())));
    let running = Running::up(&opts);
    let mut tb = (*running).clone();
    let ns = [("y".to_string(), [("ns2".to_string(), "updated".to_string())].into())].into();
    let pods = [("x/b".to_string(), [("pod2".to_string(), "updated".to_string())].into())].into();
    tb.set_labels(&ns, &pods).unwrap();
    tb.sync(Duration::from_secs(10)).unwrap();
    let text = std::fs::read_to_string(tb.node("node-1").unwrap().dir.join("manifests/cluster.yaml")).unwrap();
    let cluster = policy::cluster::Cluster::from_sources([("cluster.yaml", text.as_str())]);
    assert_eq!(cluster.namespaces["y"].labels.get("ns2").map(String::as_str), Some("updated"));
    let b = cluster.pod(&policy::PodKey::new("x", "b")).unwrap();
    assert_eq!(b.labels.get("pod2").map(String::as_str), Some("updated"));
    assert_eq!(testbed::Testbed::load(&opts.dir).unwrap().pod("x/b").unwrap().labels, b.labels, "recorded");
    let unknown = [("x/q".to_string(), Default::default())].into();
    assert!(tb.set_labels(&Default::default(), &unknown).unwrap_err().to_string().contains("x/q"));
}

#[test]
fn a_second_testbed_with_the_same_prefix_elsewhere_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let model = write_model(tmp.path(), "namespaces: {x: {}}\npods: {a: {}}\nports: [80]\nprotocols: [TCP]\n");
    let opts = options('q', tmp.path(), model, 1, None);
    let _first = Running::up(&opts);
    let mut other = opts.clone();
    other.dir = tmp.path().join("elsewhere");
    let err = testbed::up(&other, &mut no_progress).unwrap_err().to_string();
    assert!(err.contains("already exists") && err.contains(&opts.prefix), "{err}");
    assert!(!other.dir.exists(), "nothing was created for the refused testbed");
}
