//! The network configuration weir-cni reads from stdin (CNI spec section 1 plus weir's keys):
//!
//! ```json
//! { "cniVersion": "1.1.0", "name": "weir", "type": "weir-cni",
//!   "bridge": "br-int", "ovsdb": "unix:/var/run/openvswitch/db.sock",
//!   "mtu": 1450, "txChecksumOffload": false,
//!   "ipam": { "subnet": "10.244.1.0/24", "gateway": "10.244.1.1", "dataDir": "/var/lib/weir/cni" } }
//! ```
//!
//! `ipam.gateway` may be left out: it can only be the subnet's first address, the gateway of
//! the CNI contract (`ovsdb::cni::pod_gateway`).
//!
//! Only `cniVersion`, `name` and `ipam.subnet` are required. Unknown keys are allowed (the
//! runtime adds its own); a key weir-cni knows with a value it cannot use is an error naming it.
use crate::protocol::{Attachment, CniError, Code, SUPPORTED_VERSIONS};
use ipnetwork::Ipv4Network;
use serde::Deserialize;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// Default bridge: the integration bridge weir programs.
pub const DEFAULT_BRIDGE: &str = "br-int";
/// Default OVSDB socket of a packaged Open vSwitch.
pub const DEFAULT_OVSDB: &str = "unix:/var/run/openvswitch/db.sock";
/// Default MTU: a 1500-byte underlay less GENEVE/VXLAN overhead.
pub const DEFAULT_MTU: u32 = 1450;
/// Default state directory (allocations live in `<dataDir>/<network name>/`).
pub const DEFAULT_DATA_DIR: &str = "/var/lib/weir/cni";
/// The only `ipam.type` accepted: weir-cni allocates addresses itself.
pub const IPAM_TYPE: &str = "weir-cni";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    cni_version: String,
    name: String,
    #[serde(default)]
    bridge: Option<String>,
    #[serde(default)]
    ovsdb: Option<String>,
    #[serde(default)]
    mtu: Option<u32>,
    #[serde(default)]
    tx_checksum_offload: Option<bool>,
    ipam: Option<RawIpam>,
    #[serde(default)]
    prev_result: Option<serde_json::Value>,
    #[serde(default, rename = "cni.dev/valid-attachments")]
    valid_attachments: Option<Vec<Attachment>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawIpam {
    #[serde(rename = "type")]
    kind: Option<String>,
    subnet: Option<String>,
    gateway: Option<String>,
    data_dir: Option<PathBuf>,
}

/// The pod address pool: the node's pod CIDR and its gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// The node's pod CIDR.
    pub subnet: Ipv4Network,
    /// The pods' default gateway ([`ovsdb::cni::pod_gateway`]: answered by weir on `br-int`,
    /// held by the host gateway port), never handed out.
    pub gateway: Ipv4Addr,
}

impl Pool {
    /// Every address a pod may get, in order: the subnet less its network and broadcast
    /// addresses and the gateway.
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        let first = u32::from(self.subnet.network()) + 1;
        let last = u32::from(self.subnet.broadcast()) - 1;
        (first..=last).map(Ipv4Addr::from).filter(move |a| *a != self.gateway)
    }
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct NetConf {
    /// `cniVersion`: one of [`SUPPORTED_VERSIONS`].
    pub cni_version: String,
    /// `name`: the network (names the state subdirectory).
    pub name: String,
    /// `bridge`.
    pub bridge: String,
    /// `ovsdb`: `unix:PATH` or `tcp:HOST:PORT`.
    pub ovsdb: String,
    /// `mtu` of both veth ends.
    pub mtu: u32,
    /// `txChecksumOffload`: false turns it off in the pod (OVS's userspace datapath forwards
    /// TCP/UDP with bad checksums otherwise).
    pub tx_checksum_offload: bool,
    /// `ipam.subnet` / `ipam.gateway`.
    pub pool: Pool,
    /// `ipam.dataDir`.
    pub data_dir: PathBuf,
    /// `prevResult` (CHECK, DEL).
    pub prev_result: Option<serde_json::Value>,
    /// `cni.dev/valid-attachments` (GC).
    pub valid_attachments: Option<Vec<Attachment>>,
}

fn invalid(field: &str, why: impl std::fmt::Display) -> CniError {
    CniError::new(Code::InvalidConfig, "invalid network configuration", format!("{field}: {why}"))
}

/// The `cniVersion` of a configuration, as far as it can be read (for error results).
pub fn version_of(bytes: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    v.get("cniVersion")?.as_str().map(str::to_string)
}

/// Checks `cniVersion` against what this plugin speaks (code 1 otherwise).
pub fn check_version(version: &str) -> Result<(), CniError> {
    if SUPPORTED_VERSIONS.contains(&version) {
        return Ok(());
    }
    Err(CniError::new(
        Code::IncompatibleVersion,
        "incompatible CNI version",
        format!("cniVersion: {version:?} is not one of {}", SUPPORTED_VERSIONS.join(", ")),
    ))
}

/// Parses and validates the configuration (not JSON: code 6; a bad value: code 7 naming the
/// field; an unsupported IPAM type: code 2; an unknown version: code 1).
pub fn parse(bytes: &[u8]) -> Result<NetConf, CniError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| CniError::new(Code::Decode, "the network configuration is not JSON", e.to_string()))?;
    let raw: Raw = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "the configuration".to_string() } else { path };
        invalid(&field, e.into_inner())
    })?;
    check_version(&raw.cni_version)?;
    check_name(&raw.name)?;
    let bridge = raw.bridge.unwrap_or_else(|| DEFAULT_BRIDGE.to_string());
    if bridge.is_empty() || bridge.len() > 15 || bridge.contains(['/', ' ']) {
        return Err(invalid("bridge", format!("{bridge:?} is not a bridge name")));
    }
    let ovsdb = raw.ovsdb.unwrap_or_else(|| DEFAULT_OVSDB.to_string());
    ovsdb::client::Target::parse(&ovsdb).map_err(|e| invalid("ovsdb", e))?;
    let mtu = raw.mtu.unwrap_or(DEFAULT_MTU);
    if !(576..=9000).contains(&mtu) {
        return Err(invalid("mtu", format!("{mtu} is outside 576..=9000")));
    }
    let ipam = raw.ipam.ok_or_else(|| invalid("ipam", "missing (weir-cni needs ipam.subnet, the node's pod CIDR)"))?;
    if let Some(kind) = ipam.kind.as_deref().filter(|k| *k != IPAM_TYPE) {
        return Err(CniError::new(
            Code::UnsupportedField,
            "unsupported field in the network configuration",
            format!("ipam.type: {kind:?} (weir-cni allocates addresses itself: leave it out or say {IPAM_TYPE:?})"),
        ));
    }
    let pool = pool(ipam.subnet.as_deref(), ipam.gateway.as_deref())?;
    Ok(NetConf {
        cni_version: raw.cni_version,
        name: raw.name,
        bridge,
        ovsdb,
        mtu,
        tx_checksum_offload: raw.tx_checksum_offload.unwrap_or(false),
        pool,
        data_dir: ipam.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        prev_result: raw.prev_result,
        valid_attachments: raw.valid_attachments,
    })
}

/// The network name becomes a directory name: letters, digits, `_`, `.`, `-`.
fn check_name(name: &str) -> Result<(), CniError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok { Ok(()) } else { Err(invalid("name", format!("{name:?} is not letters, digits, '_', '.', '-'"))) }
}

fn pool(subnet: Option<&str>, gateway_text: Option<&str>) -> Result<Pool, CniError> {
    let text = subnet.ok_or_else(|| invalid("ipam.subnet", "missing (the node's pod CIDR, e.g. 10.244.1.0/24)"))?;
    let parsed: Ipv4Network = text.parse().map_err(|e| invalid("ipam.subnet", format!("{text:?}: {e}")))?;
    if parsed.prefix() > 29 {
        return Err(invalid("ipam.subnet", format!("{text}: a /{} leaves no room for pods", parsed.prefix())));
    }
    let subnet = Ipv4Network::new(parsed.network(), parsed.prefix()).expect("prefix checked");
    if subnet.ip() != parsed.ip() {
        return Err(invalid("ipam.subnet", format!("{text} has host bits set (the network is {subnet})")));
    }
    // The agent answers for (and puts on weir-gw0) the contract's gateway, nothing else: a
    // configured gateway may only say the same.
    let gateway = ovsdb::cni::pod_gateway(subnet.network());
    if let Some(g) = gateway_text {
        let given = g.parse::<Ipv4Addr>().map_err(|e| invalid("ipam.gateway", format!("{g:?}: {e}")))?;
        if given != gateway {
            return Err(invalid(
                "ipam.gateway",
                format!("{given} is not {gateway}, the first address of {subnet} (weir's gateway; leave it out)"),
            ));
        }
    }
    Ok(Pool { subnet, gateway })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(json: &str) -> Result<NetConf, CniError> {
        parse(json.as_bytes())
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let c = conf(r#"{"cniVersion":"1.0.0","name":"weir","type":"weir-cni","ipam":{"subnet":"10.244.1.0/24"}}"#)
            .unwrap();
        assert_eq!((c.bridge.as_str(), c.ovsdb.as_str(), c.mtu), (DEFAULT_BRIDGE, DEFAULT_OVSDB, 1450));
        assert_eq!(c.pool.gateway, Ipv4Addr::new(10, 244, 1, 1));
        assert!(!c.tx_checksum_offload);
        let hosts: Vec<Ipv4Addr> = c.pool.hosts().collect();
        assert_eq!(
            (hosts.len(), hosts[0], hosts[252]),
            (253, Ipv4Addr::new(10, 244, 1, 2), Ipv4Addr::new(10, 244, 1, 254))
        );
    }

    #[test]
    fn bad_configs_get_the_spec_code_and_name_the_field() {
        let cases = [
            ("{not json", Code::Decode, ""),
            (
                r#"{"cniVersion":"0.4.0","name":"w","ipam":{"subnet":"10.0.0.0/24"}}"#,
                Code::IncompatibleVersion,
                "cniVersion",
            ),
            (
                r#"{"name":"w","ipam":{"subnet":"10.0.0.0/24"}}"#,
                Code::InvalidConfig,
                "the configuration: missing field `cniVersion`",
            ),
            (r#"{"cniVersion":"1.0.0","name":"w/x","ipam":{"subnet":"10.0.0.0/24"}}"#, Code::InvalidConfig, "name"),
            (r#"{"cniVersion":"1.0.0","name":"w"}"#, Code::InvalidConfig, "ipam"),
            (r#"{"cniVersion":"1.0.0","name":"w","ipam":{}}"#, Code::InvalidConfig, "ipam.subnet"),
            (
                r#"{"cniVersion":"1.0.0","name":"w","ipam":{"subnet":"10.0.0.0/33"}}"#,
                Code::InvalidConfig,
                "ipam.subnet",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"w","ipam":{"subnet":"10.0.0.1/24"}}"#,
                Code::InvalidConfig,
                "ipam.subnet",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"w","ipam":{"subnet":"10.0.0.0/24","gateway":"10.0.1.1"}}"#,
                Code::InvalidConfig,
                "ipam.gateway",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"w","ipam":{"subnet":"10.0.0.0/24","gateway":"10.0.0.5"}}"#,
                Code::InvalidConfig,
                "ipam.gateway: 10.0.0.5 is not 10.0.0.1",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"w","ipam":{"subnet":"10.0.0.0/24","type":"host-local"}}"#,
                Code::UnsupportedField,
                "ipam.type",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"w","mtu":"big","ipam":{"subnet":"10.0.0.0/24"}}"#,
                Code::InvalidConfig,
                "mtu",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"w","mtu":70000,"ipam":{"subnet":"10.0.0.0/24"}}"#,
                Code::InvalidConfig,
                "mtu",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"w","ovsdb":"db.sock","ipam":{"subnet":"10.0.0.0/24"}}"#,
                Code::InvalidConfig,
                "ovsdb",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"w","bridge":"","ipam":{"subnet":"10.0.0.0/24"}}"#,
                Code::InvalidConfig,
                "bridge",
            ),
        ];
        for (json, code, field) in cases {
            let err = conf(json).unwrap_err();
            assert_eq!(err.code, code, "{json}: {err}");
            assert!(err.details.starts_with(field), "{json}: {err}");
        }
    }

    #[test]
    fn gc_reads_the_valid_attachments() {
        let c = conf(
            r#"{"cniVersion":"1.1.0","name":"w","ipam":{"subnet":"10.0.0.0/24"},
                "cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}]}"#,
        )
        .unwrap();
        assert_eq!(c.valid_attachments.unwrap()[0].to_string(), "c1/eth0");
    }
}
