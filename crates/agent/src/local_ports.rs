//! Local pods learned from the bridge's Interface rows, by the CNI contract (README, and
//! `ovsdb::cni`): `external_ids` `iface-id=<ns>/<pod>`, `pod-namespace`, `pod-name`,
//! `ip-address` (comma-separated), `attached-mac`; the OpenFlow port from `ofport`.

use crate::status::ObjectErrorReport;
use openflow::Mac;
use ovsdb::cni::{ATTACHED_MAC, IFACE_ID, IP_ADDRESS, POD_NAME, POD_NAMESPACE};
use pipeline::LocalPod;
use policy::PodKey;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

/// One Interface row, as much of it as the contract reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceRow {
    /// Interface name.
    pub name: String,
    /// Its OpenFlow port, once ovs-vswitchd has assigned one (`-1` or absent before/on error).
    pub ofport: Option<i64>,
    /// `external_ids`.
    pub external_ids: BTreeMap<String, String>,
}

impl From<&ovsdb::tables::Interface> for InterfaceRow {
    fn from(i: &ovsdb::tables::Interface) -> Self {
        InterfaceRow { name: i.name.clone(), ofport: i.ofport, external_ids: i.external_ids.clone() }
    }
}

/// Pods whose ports carry the contract, and contract violations (reported, no forwarding).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalPorts {
    /// Pods by key.
    pub pods: BTreeMap<PodKey, LocalPod>,
    /// Rows with `iface-id` that break the contract.
    pub errors: Vec<ObjectErrorReport>,
}

/// Reads the contract out of every row with an `iface-id`; other rows are not pods.
pub fn local_ports<'a>(rows: impl IntoIterator<Item = &'a InterfaceRow>) -> LocalPorts {
    let mut out = LocalPorts::default();
    for row in rows {
        if !row.external_ids.contains_key(IFACE_ID) {
            continue;
        }
        match pod_of(row) {
            Ok(None) => {} // no OpenFlow port yet: learned when ovs-vswitchd assigns one
            Ok(Some((key, _))) if out.pods.contains_key(&key) => {
                out.errors.push(report(row, &field_name(IFACE_ID), format!("pod {key} already has a port")));
            }
            Ok(Some((key, pod))) => {
                out.pods.insert(key, pod);
            }
            Err((field, message)) => out.errors.push(report(row, &field, message)),
        }
    }
    out
}

fn report(row: &InterfaceRow, field: &str, message: String) -> ObjectErrorReport {
    ObjectErrorReport { object: format!("Interface {}", row.name), field: field.to_string(), message, source: String::new() }
}

type ContractError = (String, String);

fn pod_of(row: &InterfaceRow) -> Result<Option<(PodKey, LocalPod)>, ContractError> {
    let get = |key: &'static str| -> Result<&str, ContractError> {
        row.external_ids
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .ok_or((field_name(key), "missing".to_string()))
    };
    let iface_id = get(IFACE_ID)?;
    let key: PodKey = iface_id
        .parse()
        .map_err(|_| (field_name(IFACE_ID), format!("{iface_id:?} is not <namespace>/<name>")))?;
    if get(POD_NAMESPACE)? != key.namespace || get(POD_NAME)? != key.name {
        return Err((field_name(POD_NAME), format!("pod-namespace/pod-name disagree with iface-id {iface_id}")));
    }
    let ips = get(IP_ADDRESS)?;
    let mut ipv4: Option<Ipv4Addr> = None;
    for ip in ips.split(',').map(str::trim) {
        match ip.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => {
                ipv4.get_or_insert(v4);
            }
            Ok(IpAddr::V6(_)) => {} // the datapath is IPv4-only
            Err(_) => return Err((field_name(IP_ADDRESS), format!("{ip:?} is not an IP address"))),
        }
    }
    let ip = ipv4.ok_or((field_name(IP_ADDRESS), format!("{ips:?} has no IPv4 address")))?;
    let mac_text = get(ATTACHED_MAC)?;
    let mac: Mac = mac_text
        .parse()
        .map_err(|_| (field_name(ATTACHED_MAC), format!("{mac_text:?} is not a MAC address")))?;
    let ofport = match row.ofport {
        Some(p) if p > 0 && p < 0xffff_ff00 => p as u32,
        _ => return Ok(None),
    };
    Ok(Some((key, LocalPod { ofport, ip, mac })))
}

/// The field a contract error names: the `external_ids` key as `ovs-vsctl` spells the column.
fn field_name(key: &str) -> String {
    format!("external_ids:{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, ofport: i64, ids: &[(&str, &str)]) -> InterfaceRow {
        InterfaceRow {
            name: name.into(),
            ofport: Some(ofport),
            external_ids: ids.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn contract(ns: &str, pod: &str, ip: &str, mac: &str) -> Vec<(String, String)> {
        vec![
            ("iface-id".into(), format!("{ns}/{pod}")),
            ("pod-namespace".into(), ns.into()),
            ("pod-name".into(), pod.into()),
            ("ip-address".into(), ip.into()),
            ("attached-mac".into(), mac.into()),
        ]
    }

    fn with(ids: Vec<(String, String)>, name: &str, ofport: i64) -> InterfaceRow {
        InterfaceRow { name: name.into(), ofport: Some(ofport), external_ids: ids.into_iter().collect() }
    }

    #[test]
    fn a_row_with_the_contract_is_a_local_pod() {
        let r = with(contract("x", "a", "10.244.1.10", "02:00:0a:f4:01:0a"), "wbp1", 7);
        let got = local_ports([&r]);
        assert!(got.errors.is_empty(), "{:?}", got.errors);
        let pod = &got.pods[&PodKey::new("x", "a")];
        assert_eq!((pod.ofport, pod.ip), (7, Ipv4Addr::new(10, 244, 1, 10)));
    }

    #[test]
    fn rows_without_iface_id_are_not_pods() {
        let r = row("tun0", 1, &[("owner", "weir")]);
        assert_eq!(local_ports([&r]), LocalPorts::default());
    }

    #[test]
    fn a_port_without_an_ofport_yet_is_skipped_silently() {
        let r = with(contract("x", "a", "10.244.1.10", "02:00:0a:f4:01:0a"), "p", -1);
        assert_eq!(local_ports([&r]), LocalPorts::default());
    }

    #[test]
    fn bad_ip_is_reported_naming_the_interface_and_key() {
        let r = with(contract("x", "a", "10.244.1.300", "02:00:0a:f4:01:0a"), "wbp1", 7);
        let got = local_ports([&r]);
        assert!(got.pods.is_empty());
        assert_eq!(got.errors[0].object, "Interface wbp1");
        assert_eq!(got.errors[0].field, "external_ids:ip-address");
    }

    #[test]
    fn missing_mac_is_reported() {
        let mut ids = contract("x", "a", "10.244.1.10", "");
        ids.retain(|(k, _)| k != "attached-mac");
        let got = local_ports([&with(ids, "wbp1", 7)]);
        assert_eq!(got.errors[0].field, "external_ids:attached-mac");
    }

    #[test]
    fn two_ports_for_one_pod_keep_the_first_and_report_the_second() {
        let a = with(contract("x", "a", "10.244.1.10", "02:00:0a:f4:01:0a"), "p1", 7);
        let b = with(contract("x", "a", "10.244.1.11", "02:00:0a:f4:01:0b"), "p2", 8);
        let got = local_ports([&a, &b]);
        assert_eq!(got.pods[&PodKey::new("x", "a")].ofport, 7);
        assert_eq!(got.errors[0].object, "Interface p2");
    }
}
