//! What the manager is asked to make true: bridges, ports and mirrors as plain values,
//! with validation that names the object and the field before anything is written.
use crate::error::Error;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// The datapath a bridge runs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DatapathType {
    /// The kernel datapath.
    #[default]
    System,
    /// The userspace datapath.
    Netdev,
}

/// What a bridge does without a controller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailMode {
    /// Keep the flows; add none (what weir wants).
    #[default]
    Secure,
    /// Act as a learning switch.
    Standalone,
}

macro_rules! text_enum {
    ($ty:ident, $what:literal, { $($variant:ident = $text:literal),* $(,)? }) => {
        impl $ty {
            /// The OVSDB spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),* }
            }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($ty::$variant),)*
                    _ => Err(format!(concat!("unknown ", $what, " {:?} (expected one of: {})"), s,
                        [$($text),*].join(", "))),
                }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(DatapathType, "datapath type", { System = "system", Netdev = "netdev" });
text_enum!(FailMode, "fail mode", { Secure = "secure", Standalone = "standalone" });

/// The OpenFlow versions OVS accepts in `Bridge.protocols`.
pub const PROTOCOLS: [&str; 6] = ["OpenFlow10", "OpenFlow11", "OpenFlow12", "OpenFlow13", "OpenFlow14", "OpenFlow15"];

/// A bridge as weir wants it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeSpec {
    /// Bridge name (also its local internal port).
    pub name: String,
    /// Datapath.
    pub datapath_type: DatapathType,
    /// OpenFlow versions allowed (weir: `OpenFlow15` only).
    pub protocols: Vec<String>,
    /// Fail mode.
    pub fail_mode: FailMode,
    /// `other_config` keys to set (other keys are left alone).
    pub other_config: BTreeMap<String, String>,
    /// OpenFlow table id → name, as `Flow_Table` rows (exactly these tables are named).
    pub table_names: BTreeMap<u8, String>,
    /// Controller targets (exactly these).
    pub controllers: Vec<String>,
    /// `external_ids` keys to set (other keys are left alone).
    pub external_ids: BTreeMap<String, String>,
}

impl BridgeSpec {
    /// A bridge with weir's defaults: OpenFlow15 only, `fail_mode=secure`, in-band control
    /// disabled, the system datapath.
    pub fn new(name: &str) -> BridgeSpec {
        BridgeSpec {
            name: name.to_string(),
            datapath_type: DatapathType::System,
            protocols: vec!["OpenFlow15".into()],
            fail_mode: FailMode::Secure,
            other_config: BTreeMap::from([("disable-in-band".into(), "true".into())]),
            table_names: BTreeMap::new(),
            controllers: vec![],
            external_ids: BTreeMap::new(),
        }
    }

    /// Checks every field; the error names the bridge and the field.
    pub fn validate(&self) -> Result<(), Error> {
        let obj = || format!("bridge {:?}", self.name);
        check_device_name(&self.name).map_err(|r| Error::invalid(obj(), "name", r))?;
        if self.protocols.is_empty() {
            return Err(Error::invalid(obj(), "protocols", "at least one OpenFlow version is required"));
        }
        for p in &self.protocols {
            if !PROTOCOLS.contains(&p.as_str()) {
                return Err(Error::invalid(obj(), "protocols", format!("unknown OpenFlow version {p:?}")));
            }
        }
        for (id, name) in &self.table_names {
            if *id == 255 {
                return Err(Error::invalid(obj(), "table_names", "table 255 is not a flow table (OFPTT_ALL)"));
            }
            if name.is_empty() {
                return Err(Error::invalid(obj(), "table_names", format!("table {id} has an empty name")));
            }
        }
        for c in &self.controllers {
            check_controller(c).map_err(|r| Error::invalid(obj(), "controllers", r))?;
        }
        check_map(&self.other_config).map_err(|r| Error::invalid(obj(), "other_config", r))?;
        check_map(&self.external_ids).map_err(|r| Error::invalid(obj(), "external_ids", r))
    }
}

/// A value that is either fixed in the port or taken from each packet's flow metadata
/// (set by the OpenFlow pipeline with `set_field` on `tun_dst` / `tun_id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flowable<T> {
    /// Fixed in the port's options.
    Fixed(T),
    /// `flow`: chosen per packet.
    Flow,
}

/// A tunnel TOS/TTL: copied from the inner packet, or fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inheritable<T> {
    /// `inherit`.
    Inherit,
    /// A fixed value.
    Value(T),
}

/// ERSPAN version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErspanVersion {
    /// Version 1 (type II): needs an index.
    V1,
    /// Version 2 (type III): direction and hardware id.
    V2,
}

/// ERSPAN v2 mirrored-traffic direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErspanDir {
    /// Ingress (0).
    Ingress,
    /// Egress (1).
    Egress,
}

/// The tunnel protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelKind {
    /// VXLAN (UDP 4789).
    Vxlan,
    /// GENEVE (UDP 6081).
    Geneve,
    /// GRE.
    Gre,
    /// ERSPAN over GRE.
    Erspan {
        /// Version.
        version: ErspanVersion,
        /// v1: 20-bit index (port/direction id).
        index: Option<u32>,
        /// v2: direction.
        dir: Option<ErspanDir>,
        /// v2: 6-bit hardware id.
        hwid: Option<u8>,
    },
}

impl TunnelKind {
    /// The Interface `type`.
    pub fn as_str(&self) -> &'static str {
        match self {
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
            TunnelKind::Gre => "gre",
            TunnelKind::Erspan { .. } => "erspan",
        }
    }

    /// The largest key the protocol carries (VNI: 24 bits; GRE key: 32; ERSPAN session
    /// id: 10).
    fn key_max(&self) -> u32 {
        match self {
            TunnelKind::Vxlan | TunnelKind::Geneve => (1 << 24) - 1,
            TunnelKind::Gre => u32::MAX,
            TunnelKind::Erspan { .. } => (1 << 10) - 1,
        }
    }
}

/// A tunnel port's options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelSpec {
    /// Protocol.
    pub kind: TunnelKind,
    /// Remote endpoint.
    pub remote_ip: Flowable<IpAddr>,
    /// Tunnel key (VNI, GRE key, ERSPAN session id); none means 0.
    pub key: Option<Flowable<u32>>,
    /// Local endpoint.
    pub local_ip: Option<IpAddr>,
    /// UDP destination port (VXLAN, GENEVE only).
    pub dst_port: Option<u16>,
    /// Outer checksum.
    pub csum: Option<bool>,
    /// Outer TOS (DSCP bits only: the low two bits must be zero).
    pub tos: Option<Inheritable<u8>>,
    /// Outer TTL.
    pub ttl: Option<Inheritable<u8>>,
}

impl TunnelSpec {
    /// A tunnel of `kind` to `remote_ip` with everything else default.
    pub fn new(kind: TunnelKind, remote_ip: Flowable<IpAddr>) -> TunnelSpec {
        TunnelSpec { kind, remote_ip, key: None, local_ip: None, dst_port: None, csum: None, tos: None, ttl: None }
    }
}

/// What a port is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortKind {
    /// An OVS internal port (a device OVS creates).
    Internal,
    /// An existing device (veth end, NIC) named like the port.
    System,
    /// One end of a patch pair to another bridge.
    Patch {
        /// The port at the other end.
        peer: String,
    },
    /// A tunnel.
    Tunnel(TunnelSpec),
}

impl PortKind {
    /// The Interface `type` (`""` for system devices, as ovs-vsctl writes it).
    pub fn iface_type(&self) -> &'static str {
        match self {
            PortKind::Internal => "internal",
            PortKind::System => "",
            PortKind::Patch { .. } => "patch",
            PortKind::Tunnel(t) => t.kind.as_str(),
        }
    }
}

/// Where weir marks ports that must not be flooded to. OpenFlow 1.5 has no
/// `OFPPC_NO_FLOOD` bit (it exists in OpenFlow 1.0 only) and OVSDB has no column for it,
/// so weir's pipeline, which builds its own flood lists, reads this `Port.external_ids` key.
pub const NO_FLOOD_KEY: &str = "weir-no-flood";

/// A port as weir wants it (one interface of the same name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    /// Port and interface name.
    pub name: String,
    /// What it is.
    pub kind: PortKind,
    /// Requested OpenFlow port number.
    pub ofport_request: Option<u16>,
    /// Interface `external_ids` keys to set (others are left alone).
    pub external_ids: BTreeMap<String, String>,
    /// Requested MTU (internal and system ports).
    pub mtu: Option<u32>,
    /// The MAC an internal port is to carry (Interface `mac`, lower-case `xx:xx:xx:xx:xx:xx`);
    /// ovs-vswitchd gives it again whenever it re-creates the device.
    pub mac: Option<String>,
    /// Exclude the port from weir's flood lists (see [`NO_FLOOD_KEY`]).
    pub no_flood: bool,
}

impl PortSpec {
    /// A port of `kind` with nothing else requested.
    pub fn new(name: &str, kind: PortKind) -> PortSpec {
        PortSpec {
            name: name.into(),
            kind,
            ofport_request: None,
            external_ids: BTreeMap::new(),
            mtu: None,
            mac: None,
            no_flood: false,
        }
    }

    pub(crate) fn object(&self) -> String {
        format!("port {:?}", self.name)
    }

    /// Checks every field that can be checked without the database; the error names the
    /// port and the field.
    pub fn validate(&self) -> Result<(), Error> {
        let obj = || self.object();
        check_device_name(&self.name).map_err(|r| Error::invalid(obj(), "name", r))?;
        if let Some(p) = self.ofport_request
            && !(1..=0xfeff).contains(&p)
        {
            return Err(Error::invalid(obj(), "ofport_request", format!("{p} is outside 1..=65279")));
        }
        if let Some(m) = self.mtu {
            if !matches!(self.kind, PortKind::Internal | PortKind::System) {
                return Err(Error::invalid(obj(), "mtu", "only internal and system ports have an MTU to set"));
            }
            if !(68..=65535).contains(&m) {
                return Err(Error::invalid(obj(), "mtu", format!("{m} is outside 68..=65535")));
            }
        }
        if let Some(mac) = &self.mac {
            if self.kind != PortKind::Internal {
                return Err(Error::invalid(obj(), "mac", "only internal ports have a MAC to set"));
            }
            if !is_mac(mac) {
                return Err(Error::invalid(obj(), "mac", format!("{mac:?} is not a lower-case xx:xx:xx:xx:xx:xx MAC")));
            }
        }
        check_map(&self.external_ids).map_err(|r| Error::invalid(obj(), "external_ids", r))?;
        match &self.kind {
            PortKind::Internal | PortKind::System => Ok(()),
            PortKind::Patch { peer } => {
                check_device_name(peer).map_err(|r| Error::invalid(obj(), "peer", r))?;
                if *peer == self.name {
                    return Err(Error::invalid(obj(), "peer", "a patch port cannot be its own peer"));
                }
                Ok(())
            }
            PortKind::Tunnel(t) => self.validate_tunnel(t),
        }
    }

    fn validate_tunnel(&self, t: &TunnelSpec) -> Result<(), Error> {
        let obj = || self.object();
        if let Flowable::Fixed(ip) = t.remote_ip
            && (ip.is_unspecified() || ip.is_multicast())
        {
            return Err(Error::invalid(obj(), "remote_ip", format!("{ip} is not a unicast address")));
        }
        if let Some(local) = t.local_ip {
            if local.is_multicast() {
                return Err(Error::invalid(obj(), "local_ip", format!("{local} is not a unicast address")));
            }
            if let Flowable::Fixed(remote) = t.remote_ip
                && remote.is_ipv4() != local.is_ipv4()
            {
                return Err(Error::invalid(
                    obj(),
                    "local_ip",
                    format!("{local} and remote_ip {remote} differ in family"),
                ));
            }
        }
        if let Some(Flowable::Fixed(k)) = t.key
            && k > t.kind.key_max()
        {
            return Err(Error::invalid(
                obj(),
                "key",
                format!("{k} exceeds {} for {}", t.kind.key_max(), t.kind.as_str()),
            ));
        }
        if let Some(p) = t.dst_port {
            if !matches!(t.kind, TunnelKind::Vxlan | TunnelKind::Geneve) {
                return Err(Error::invalid(obj(), "dst_port", format!("{} tunnels have no UDP port", t.kind.as_str())));
            }
            if p == 0 {
                return Err(Error::invalid(obj(), "dst_port", "port 0 is not a destination"));
            }
        }
        if t.csum.is_some() && matches!(t.kind, TunnelKind::Erspan { .. }) {
            return Err(Error::invalid(obj(), "csum", "erspan tunnels have no checksum option"));
        }
        if let Some(Inheritable::Value(tos)) = t.tos
            && tos & 0x03 != 0
        {
            return Err(Error::invalid(
                obj(),
                "tos",
                format!("{tos} sets ECN bits; only DSCP (multiples of 4) is allowed"),
            ));
        }
        if let Some(Inheritable::Value(0)) = t.ttl {
            return Err(Error::invalid(obj(), "ttl", "0 would drop every packet"));
        }
        if let TunnelKind::Erspan { version, index, dir, hwid } = t.kind {
            match version {
                ErspanVersion::V1 => {
                    let Some(i) = index else {
                        return Err(Error::invalid(obj(), "erspan_idx", "ERSPAN v1 needs an index"));
                    };
                    if i >= 1 << 20 {
                        return Err(Error::invalid(obj(), "erspan_idx", format!("{i:#x} exceeds 20 bits")));
                    }
                    if dir.is_some() || hwid.is_some() {
                        let f = if dir.is_some() { "erspan_dir" } else { "erspan_hwid" };
                        return Err(Error::invalid(obj(), f, "only ERSPAN v2 has a direction and hardware id"));
                    }
                }
                ErspanVersion::V2 => {
                    if index.is_some() {
                        return Err(Error::invalid(obj(), "erspan_idx", "only ERSPAN v1 has an index"));
                    }
                    if let Some(h) = hwid
                        && h >= 64
                    {
                        return Err(Error::invalid(obj(), "erspan_hwid", format!("{h:#x} exceeds 6 bits")));
                    }
                }
            }
        }
        Ok(())
    }

    /// The Interface `options` this spec asks for (the whole map: weir owns a port's options).
    pub fn options(&self) -> BTreeMap<String, String> {
        let mut o = BTreeMap::new();
        match &self.kind {
            PortKind::Internal | PortKind::System => {}
            PortKind::Patch { peer } => {
                o.insert("peer".into(), peer.clone());
            }
            PortKind::Tunnel(t) => {
                o.insert("remote_ip".into(), flow_text(&t.remote_ip));
                if let Some(k) = &t.key {
                    o.insert("key".into(), flow_text(k));
                }
                if let Some(ip) = t.local_ip {
                    o.insert("local_ip".into(), ip.to_string());
                }
                if let Some(p) = t.dst_port {
                    o.insert("dst_port".into(), p.to_string());
                }
                if let Some(c) = t.csum {
                    o.insert("csum".into(), c.to_string());
                }
                if let Some(v) = &t.tos {
                    o.insert("tos".into(), inherit_text(v));
                }
                if let Some(v) = &t.ttl {
                    o.insert("ttl".into(), inherit_text(v));
                }
                if let TunnelKind::Erspan { version, index, dir, hwid } = t.kind {
                    o.insert("erspan_ver".into(), if version == ErspanVersion::V1 { "1" } else { "2" }.into());
                    // netdev-vport.c reads erspan_idx and erspan_hwid with strtol(.., 16).
                    if let Some(i) = index {
                        o.insert("erspan_idx".into(), format!("{i:#x}"));
                    }
                    if let Some(d) = dir {
                        o.insert("erspan_dir".into(), if d == ErspanDir::Ingress { "0" } else { "1" }.into());
                    }
                    if let Some(h) = hwid {
                        o.insert("erspan_hwid".into(), format!("{h:#x}"));
                    }
                }
            }
        }
        o
    }
}

fn flow_text<T: fmt::Display>(v: &Flowable<T>) -> String {
    match v {
        Flowable::Fixed(x) => x.to_string(),
        Flowable::Flow => "flow".into(),
    }
}

fn inherit_text<T: fmt::Display>(v: &Inheritable<T>) -> String {
    match v {
        Inheritable::Value(x) => x.to_string(),
        Inheritable::Inherit => "inherit".into(),
    }
}

/// A mirror as weir wants it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorSpec {
    /// Mirror name (unique per bridge).
    pub name: String,
    /// Mirror every packet on the bridge.
    pub select_all: bool,
    /// Ports whose received packets are mirrored.
    pub select_src_port: Vec<String>,
    /// Ports whose sent packets are mirrored.
    pub select_dst_port: Vec<String>,
    /// The port that receives the copies.
    pub output_port: String,
    /// `external_ids` keys to set.
    pub external_ids: BTreeMap<String, String>,
}

impl MirrorSpec {
    pub(crate) fn object(&self) -> String {
        format!("mirror {:?}", self.name)
    }

    /// Checks what can be checked without the database.
    pub fn validate(&self) -> Result<(), Error> {
        let obj = || self.object();
        if self.name.is_empty() {
            return Err(Error::invalid(obj(), "name", "must not be empty"));
        }
        if !self.select_all && self.select_src_port.is_empty() && self.select_dst_port.is_empty() {
            return Err(Error::invalid(obj(), "select_src_port", "selects nothing (set select_all or name ports)"));
        }
        if self.output_port.is_empty() {
            return Err(Error::invalid(obj(), "output_port", "must name a port"));
        }
        if self.select_src_port.contains(&self.output_port) || self.select_dst_port.contains(&self.output_port) {
            return Err(Error::invalid(obj(), "output_port", "is also selected: mirrored copies would loop"));
        }
        check_map(&self.external_ids).map_err(|r| Error::invalid(obj(), "external_ids", r))
    }
}

/// Linux device-name rules (`dev_valid_name`): 1..=15 bytes, no `/`, `:` or whitespace,
/// not `.` or `..`.
fn check_device_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 15 {
        return Err(format!("{name:?} is longer than 15 bytes (IFNAMSIZ)"));
    }
    if name == "." || name == ".." || name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        return Err(format!("{name:?} is not a valid device name"));
    }
    Ok(())
}

fn check_controller(target: &str) -> Result<(), String> {
    let (method, rest) = target.split_once(':').ok_or_else(|| format!("{target:?} has no method prefix"))?;
    match method {
        "unix" | "punix" if !rest.is_empty() => Ok(()),
        "tcp" | "ssl" => {
            let (host, port) = rest.rsplit_once(':').unwrap_or((rest, "6653"));
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.parse::<IpAddr>().is_err() {
                return Err(format!("{target:?}: {host:?} is not an IP address"));
            }
            port.parse::<u16>().map(drop).map_err(|_| format!("{target:?}: bad port {port:?}"))
        }
        "ptcp" | "pssl" => Ok(()),
        _ => Err(format!("{target:?}: unknown connection method {method:?}")),
    }
}

fn check_map(m: &BTreeMap<String, String>) -> Result<(), String> {
    if m.keys().any(String::is_empty) {
        return Err("keys must not be empty".into());
    }
    Ok(())
}

/// Whether `s` is a MAC as OVSDB stores it: six lower-case hex pairs joined by `:`.
fn is_mac(s: &str) -> bool {
    let pairs: Vec<&str> = s.split(':').collect();
    pairs.len() == 6 && pairs.iter().all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tunnel(kind: TunnelKind) -> PortSpec {
        PortSpec::new("tun0", PortKind::Tunnel(TunnelSpec::new(kind, Flowable::Fixed("10.0.0.2".parse().unwrap()))))
    }

    #[test]
    fn erspan_options_use_the_hex_that_ovs_parses() {
        let mut p = tunnel(TunnelKind::Erspan { version: ErspanVersion::V1, index: Some(0x1f), dir: None, hwid: None });
        if let PortKind::Tunnel(t) = &mut p.kind {
            t.key = Some(Flowable::Fixed(7));
        }
        let o = p.options();
        assert_eq!(o["erspan_ver"], "1");
        assert_eq!(o["erspan_idx"], "0x1f");
        assert_eq!(o["key"], "7");
        assert!(p.validate().is_ok());
    }

    #[test]
    fn flow_remote_and_key_are_written_as_flow() {
        let mut p = tunnel(TunnelKind::Geneve);
        if let PortKind::Tunnel(t) = &mut p.kind {
            t.remote_ip = Flowable::Flow;
            t.key = Some(Flowable::Flow);
            t.tos = Some(Inheritable::Inherit);
        }
        let o = p.options();
        assert_eq!((o["remote_ip"].as_str(), o["key"].as_str(), o["tos"].as_str()), ("flow", "flow", "inherit"));
    }

    #[test]
    fn vxlan_key_over_24_bits_names_the_key_field() {
        let mut p = tunnel(TunnelKind::Vxlan);
        if let PortKind::Tunnel(t) = &mut p.kind {
            t.key = Some(Flowable::Fixed(1 << 24));
        }
        assert_eq!(p.validate().unwrap_err().field(), Some("key"));
    }

    #[test]
    fn controller_targets_are_checked() {
        assert!(check_controller("tcp:127.0.0.1:6653").is_ok());
        assert!(check_controller("punix:/run/weir.sock").is_ok());
        assert!(check_controller("tcp:example.com:6653").is_err());
        assert!(check_controller("udp:1.2.3.4:1").is_err());
    }

    #[test]
    fn names_follow_linux_device_rules() {
        assert!(check_device_name("veth-a1b2c3d4").is_ok());
        assert!(check_device_name("a-very-long-name-x").is_err());
        assert!(check_device_name("a/b").is_err());
        assert!(check_device_name("").is_err());
    }
}
