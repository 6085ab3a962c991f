//! The masquerade table against the real `nft`, in a network namespace of its own: applied
//! twice it is one rule, applied with other CIDRs it is replaced, never duplicated.

use agent::masquerade::{CHAIN, Masquerade, TABLE};
use ipnetwork::Ipv4Network;

fn cidr(s: &str) -> Ipv4Network {
    s.parse().unwrap()
}

/// Applies each masquerade in turn inside `ns` and returns `nft list table ip weir` after each.
fn apply_in(ns: &str, each: Vec<Masquerade>) -> Vec<String> {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        testbed::netns::enter_on_this_thread(&ns).unwrap();
        // `nft` runs as a child of this thread, so in its namespace.
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        each.iter()
            .map(|m| {
                rt.block_on(m.apply()).unwrap();
                let out = std::process::Command::new("nft").args(["list", "table", "ip", TABLE]).output().unwrap();
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                String::from_utf8(out.stdout).unwrap()
            })
            .collect()
    })
    .join()
    .unwrap()
}

#[test]
fn the_table_is_replaced_whole_never_duplicated() {
    let ns = testbed::Netns::add(&format!("wmasq{}", std::process::id())).unwrap();
    let two =
        Masquerade { pod_cidr: cidr("10.244.1.0/24"), cluster_cidrs: vec![cidr("10.244.1.0/24"), cidr("10.244.2.0/24")], policy_hosts: vec![] };
    let three = Masquerade { cluster_cidrs: vec![cidr("10.244.1.0/24"), cidr("10.244.2.0/24"), cidr("10.244.7.0/24")],
        // A VM's interface (an ExternalEntity): it must see the pod's own address.
        policy_hosts: vec!["192.168.77.101".parse().unwrap()],
        ..two.clone()
    };
    let listed = apply_in(ns.name(), vec![two.clone(), two, three]);
    for (i, table) in listed.iter().enumerate() {
        assert_eq!(table.matches("masquerade").count(), 1, "after apply {i}:\n{table}");
        assert_eq!(table.matches(&format!("chain {CHAIN}")).count(), 1, "after apply {i}:\n{table}");
        assert!(table.contains("ip saddr 10.244.1.0/24"), "after apply {i}:\n{table}");
    }
    assert_eq!(listed[0], listed[1], "applying the same again changed the table");
    assert!(listed[1].contains("10.244.1.0-10.244.2.255") && !listed[1].contains("10.244.7.0"), "{}", listed[1]);
    assert!(listed[2].contains("10.244.7.0/24"), "the new CIDR is not excluded:\n{}", listed[2]);
    assert!(listed[2].contains("192.168.77.101"), "the ExternalEntity's address is not excluded:\n{}", listed[2]);
}
