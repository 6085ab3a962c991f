//! Shared setup: a real ovsdb-server + ovs-vswitchd in a namespace, a client and a manager.
#![allow(dead_code)]
use ovsdb::{BridgeSpec, Client, DatapathType, Manager, Options};
use std::collections::BTreeMap;
use std::time::Duration;
use testbed::TestSwitch;

pub struct Setup {
    pub sw: TestSwitch,
    pub client: Client,
    pub mgr: Manager,
}

pub fn target(sw: &TestSwitch) -> String {
    format!("unix:{}", sw.ovs.db_socket().display())
}

pub fn fast_options() -> Options {
    Options { backoff_min: Duration::from_millis(20), backoff_max: Duration::from_millis(200), ..Options::default() }
}

/// A switch with no bridge, a client and a manager.
pub async fn setup() -> Setup {
    let sw = TestSwitch::start().expect("start OVS");
    let client = Client::connect_with(&target(&sw), fast_options()).await.expect("connect");
    let mgr = Manager::new(&client).await.expect("manager");
    Setup { sw, client, mgr }
}

/// weir's bridge spec for tests: netdev datapath, two named tables.
pub fn bridge_spec(name: &str) -> BridgeSpec {
    let mut b = BridgeSpec::new(name);
    b.datapath_type = DatapathType::Netdev;
    b.table_names = BTreeMap::from([(0, "Classifier".to_string()), (1, "SpoofGuard".to_string())]);
    b
}

/// Waits for the bridge's OpenFlow management socket.
pub fn wait_mgmt(sw: &TestSwitch, bridge: &str) {
    let sock = sw.ovs.mgmt_socket(bridge);
    testbed::ovs::wait_until(Duration::from_secs(10), || sock.exists()).expect("management socket");
}

pub fn vsctl(sw: &TestSwitch, args: &[&str]) -> String {
    sw.ovs.vsctl(args).unwrap_or_else(|e| panic!("{e}"))
}
