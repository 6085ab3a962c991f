//! The contract between the agent, which writes the node's CNI configuration list
//! (`agent::cni_conf`), and weir-cni, which reads each plugin entry of it.

use agent::cni_conf::{PodNetwork, conflist};
use cni::config::{IPAM_TYPE, Pool, parse};

#[test]
fn the_configuration_the_agent_writes_is_accepted_by_weir_cni_with_the_nodes_pool() {
    let node = policy::Node {
        name: "n7".into(),
        labels: Default::default(),
        pod_cidrs: vec!["10.244.7.0/24".parse().unwrap()],
        internal_ips: Vec::new(),
    };
    let net = PodNetwork::of(&node).unwrap();
    let list = conflist(&net, "br-int", "unix:/var/run/openvswitch/db.sock");

    // The runtime (libcni) hands each plugin its entry with the list's cniVersion and name.
    let mut plugin = list["plugins"][0].clone();
    plugin["cniVersion"] = list["cniVersion"].clone();
    plugin["name"] = list["name"].clone();
    let conf = parse(&serde_json::to_vec(&plugin).unwrap()).expect("weir-cni accepts the agent's configuration");
    assert_eq!(conf.pool, Pool { subnet: "10.244.7.0/24".parse().unwrap(), gateway: "10.244.7.1".parse().unwrap() });
    assert_eq!((conf.bridge.as_str(), conf.ovsdb.as_str()), ("br-int", "unix:/var/run/openvswitch/db.sock"));
    assert_eq!(plugin["ipam"]["type"], IPAM_TYPE);
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_weir-cni")).file_name().unwrap().to_str().unwrap();
    assert_eq!(plugin["type"], binary, "the runtime runs the plugin binary the type names");
}
