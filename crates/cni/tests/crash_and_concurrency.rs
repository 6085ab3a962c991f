//! weir-cni under many concurrent ADDs on one node, and ADDs killed midway.
mod common;

use common::{Node, Pod, feed, result_ip};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::time::Instant;

#[test]
fn two_hundred_concurrent_adds_get_two_hundred_distinct_addresses_and_ports() {
    const PODS: usize = 200;
    let node = Node::start("10.244.10.0/24");
    let pods: Vec<Pod> = (0..PODS).map(|k| Pod::new(&format!("p{k}"))).collect();
    let conf = node.conf("1.1.0");
    let start = Instant::now();
    let children: Vec<_> = pods
        .iter()
        .enumerate()
        .map(|(k, pod)| {
            let mut cmd = node.command("ADD", Some(&format!("ctr{k}")), Some(&pod.path()), Some(&pod.name));
            feed(&mut cmd, &conf)
        })
        .collect();
    let results: Vec<_> =
        children.into_iter().map(|c| common::Outcome::of(c.wait_with_output().unwrap()).expect_ok("ADD")).collect();
    let took = start.elapsed();
    eprintln!("{PODS} concurrent ADDs took {took:?}");

    let ips: BTreeSet<_> = results.iter().map(result_ip).collect();
    assert_eq!(ips.len(), PODS, "distinct addresses");
    assert_eq!(node.allocations().len(), PODS);
    let ports = node.cni_ports();
    assert_eq!(ports.len(), PODS, "one port per pod");
    let ofports: BTreeSet<i64> = ports.values().map(|(p, _)| *p).collect();
    assert!(ofports.len() == PODS && ofports.iter().all(|p| *p > 0), "{ofports:?}");
    let contract_ips: BTreeSet<String> = ports.values().map(|(_, ids)| ids[ovsdb::cni::IP_ADDRESS].clone()).collect();
    assert_eq!(contract_ips, ips.iter().map(|ip| ip.to_string()).collect::<BTreeSet<_>>());

    let start = Instant::now();
    let children: Vec<_> = (0..PODS)
        .map(|k| {
            let mut cmd = node.command("DEL", Some(&format!("ctr{k}")), None, None);
            feed(&mut cmd, &conf)
        })
        .collect();
    for c in children {
        common::Outcome::of(c.wait_with_output().unwrap()).expect_ok("DEL");
    }
    eprintln!("{PODS} concurrent DELs took {:?}", start.elapsed());
    assert!(node.cni_ports().is_empty() && node.allocations().is_empty());
}

#[derive(Debug, Clone, Copy)]
enum Cleaner {
    Add,
    Del,
    Gc,
}

/// Starts an ADD that stops at `step`, waits until it is there, and kills it (SIGKILL).
fn crashed_add(node: &Node, pod: &Pod, container: &str, step: &str) {
    let mut cmd = node.command("ADD", Some(container), Some(&pod.path()), Some(&pod.name));
    cmd.env(cni::STALL_VAR, step);
    let mut child = feed(&mut cmd, &node.conf("1.1.0"));
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let there = line.contains(&format!("stalled at {step}"));
        seen.push(line);
        if there {
            break;
        }
    }
    assert!(seen.last().is_some_and(|l| l.contains("stalled")), "ADD never reached {step}: {seen:?}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_killed_add_leaves_nothing_after_the_next_add_del_or_gc() {
    let node = Node::start("10.244.11.0/24");
    for step in ["allocated", "veth", "attached"] {
        for cleaner in [Cleaner::Add, Cleaner::Del, Cleaner::Gc] {
            let what = format!("ADD killed at {step}, then {cleaner:?}");
            let victim = Pod::new("victim");
            let id = format!("crash-{step}-{cleaner:?}");
            crashed_add(&node, &victim, &id, step);
            assert_eq!(node.allocations().len(), 1, "{what}: the killed ADD holds an address");
            if step == "attached" {
                let port = node.cni_ports().into_values().find(|(_, ids)| ids[ovsdb::cni::CNI_CONTAINER_ID] == id);
                assert!(port.is_some(), "{what}: the killed ADD left its port");
            }
            let other = Pod::new("other");
            let _ = match cleaner {
                Cleaner::Add => node.add("other", &other, "1.1.0").expect_ok(&what),
                Cleaner::Del => node.del("unrelated", "1.1.0").expect_ok(&what),
                // The crashed attachment is even listed as valid: its ADD never finished.
                Cleaner::Gc => node.gc(&[&id]).expect_ok(&what),
            };
            let left: Vec<String> =
                node.cni_ports().values().map(|(_, ids)| ids[ovsdb::cni::CNI_CONTAINER_ID].clone()).collect();
            assert!(!left.contains(&id), "{what}: port left: {left:?}");
            let expected = usize::from(matches!(cleaner, Cleaner::Add));
            assert_eq!(node.allocations().len(), expected, "{what}: {:?}", node.allocations());
            let names = cni::link::VethNames::of(&cni::protocol::Attachment {
                container_id: id.clone().try_into().unwrap(),
                ifname: "eth0".to_string().try_into().unwrap(),
            });
            assert!(!node.has_link(&names.host) && !node.has_link(&names.peer), "{what}: veth left on the node");
            let links = victim.run("ip", &["-o", "link", "show"]);
            let links = String::from_utf8_lossy(&links.stdout);
            assert_eq!(links.lines().count(), 1, "{what}: only lo is left in the pod: {links}");
            node.del("other", "1.1.0").expect_ok("DEL other");
            assert!(node.cni_ports().is_empty(), "{what}");
        }
    }
}
