//! Parsing ovs-ofctl flow text: `table=,priority=,cookie=,idle_timeout=,... <matches>
//! actions=...`, following OVS's `parse_ofp_str__` and `mf_parse`. Actions are parsed in
//! [`super::parse_action`].
//!
//! Like OVS, fields whose prerequisites the flow does not match are dropped (OVS's match
//! normalization), and fields that share OVS's internal storage follow the protocol the flow
//! matches: `tp_dst` is `udp_dst` in a `udp` flow, `nw_src` is `arp_spa` in an `arp` flow.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::lex::{Item, items, parse_u16, parse_u64, parse_uint};
use super::parse_action::parse_instructions_in;
use super::print::{CT_STATE_NAMES, Names, TCP_FLAG_NAMES, TUN_FLAG_NAMES};
use crate::field::{Field, FieldRange, Format, ones};
use crate::flow::{ALL_TABLES, Flow, FlowFlags, FlowMod, FlowModCommand, GROUP_ANY};
use crate::flow_match::{Match, eth_type, ip_proto, prereqs_met};
use crate::mac::Mac;
use crate::port::PortNo;

/// Text that is not valid ovs-ofctl syntax, naming the offending token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{token:?}: {message}")]
pub struct ParseError {
    /// The token that could not be parsed.
    pub token: String,
    /// What is wrong with it.
    pub message: String,
}

impl ParseError {
    /// An error about `token`.
    pub fn new(token: impl Into<String>, message: impl Into<String>) -> Self {
        ParseError { token: token.into(), message: message.into() }
    }
}

/// A port by reserved name, number (OpenFlow 1.0 numbers ≥ 0xff00 are mapped like OVS does),
/// or name from `names`, optionally double-quoted.
pub fn parse_port(s: &str, names: Option<&Names>) -> Result<PortNo, ParseError> {
    if let Some(v) = parse_uint(s) {
        return match u32::try_from(v) {
            Ok(p) if p < 0xff00 => Ok(PortNo(p)),
            Ok(p) if p <= 0xffff => Ok(PortNo::from_ofp10(p as u16)),
            Ok(p) if p >= PortNo::MAX.0 => Ok(PortNo(p)),
            _ => Err(ParseError::new(s, "port number out of range")),
        };
    }
    if let Some(p) = PortNo::from_name(s) {
        return Ok(p);
    }
    let unquoted = s.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(s);
    names
        .and_then(|n| n.ports.iter().find(|(_, name)| name.as_str() == unquoted).map(|(no, _)| PortNo(*no)))
        .ok_or_else(|| ParseError::new(s, "not a valid OpenFlow port (number, reserved name, or known port name)"))
}

/// A table by number or by name from `names`.
pub fn parse_table(s: &str, names: Option<&Names>) -> Result<u8, ParseError> {
    if let Some(v) = parse_uint(s) {
        return u8::try_from(v).map_err(|_| ParseError::new(s, "table id must be 0..255"));
    }
    names
        .and_then(|n| n.tables.iter().find(|(_, name)| name.as_str() == s).map(|(id, _)| *id))
        .ok_or_else(|| ParseError::new(s, "unknown table (not a number or a configured table name)"))
}

fn parse_flags(s: &str, names: &[(u32, &str)], all: u32, what: &str) -> Result<(u128, Option<u128>), ParseError> {
    let bad = |m: &str| ParseError::new(s, format!("{what}: {m}"));
    // Unnamed bits are written `[hex]`, as OVS prints and parses them (`tcp_flags=+[200]`).
    let find = |name: &str| {
        names.iter().find(|(_, n)| *n == name).map(|(b, _)| *b).or_else(|| {
            let hex = name.strip_prefix('[')?.strip_suffix(']')?;
            let bit = u32::from_str_radix(hex, 16).ok()?;
            (bit.is_power_of_two() && bit & all != 0).then_some(bit)
        })
    };
    if s.starts_with('+') || s.starts_with('-') {
        let (mut v, mut m) = (0u32, 0u32);
        let mut rest = s;
        while !rest.is_empty() {
            let set = rest.starts_with('+');
            rest = &rest[1..];
            let end = rest.find(['+', '-']).unwrap_or(rest.len());
            let bit = find(&rest[..end]).ok_or_else(|| bad(&format!("unknown flag {:?}", &rest[..end])))?;
            if m & bit != 0 {
                return Err(bad("each flag can be given only once"));
            }
            m |= bit;
            if set {
                v |= bit;
            }
            rest = &rest[end..];
        }
        return Ok((u128::from(v), Some(u128::from(m))));
    }
    if let Some((v, m)) = s.split_once('/') {
        let v = parse_uint(v).ok_or_else(|| bad("expected a number"))?;
        let m = parse_uint(m).ok_or_else(|| bad("expected a number"))?;
        if (v | m) & !u128::from(all) != 0 {
            return Err(bad("unknown flag bits"));
        }
        return Ok((v, Some(m)));
    }
    if let Some(v) = parse_uint(s) {
        return Ok((v, None));
    }
    let mut v = 0u32;
    for part in s.split('|') {
        v |= find(part).ok_or_else(|| bad(&format!("unknown flag {part:?}")))?;
    }
    Ok((u128::from(v), None))
}

fn parse_int_masked(s: &str, field: Field) -> Result<(u128, Option<u128>), ParseError> {
    let bad = || ParseError::new(s, format!("{field}: expected an integer or integer/mask"));
    match s.split_once('/') {
        Some((v, m)) => Ok((parse_uint(v).ok_or_else(bad)?, Some(parse_uint(m).ok_or_else(bad)?))),
        None => Ok((parse_uint(s).ok_or_else(bad)?, None)),
    }
}

fn parse_ipv4_masked(s: &str, field: Field) -> Result<(u128, Option<u128>), ParseError> {
    let bad = || ParseError::new(s, format!("{field}: expected an IPv4 address, optionally /prefix or /mask"));
    let (a, m) = match s.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (s, None),
    };
    let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
    let mask = match m {
        None => None,
        Some(m) => Some(match m.parse::<Ipv4Addr>() {
            Ok(mask) => u32::from(mask),
            Err(_) => {
                let n: u32 = m.parse().map_err(|_| bad())?;
                if n > 32 {
                    return Err(bad());
                }
                (ones(n as u16) << (32 - n)) as u32
            }
        }),
    };
    Ok((u128::from(u32::from(addr)), mask.map(u128::from)))
}

fn parse_ipv6_masked(s: &str, field: Field) -> Result<(u128, Option<u128>), ParseError> {
    let bad = || ParseError::new(s, format!("{field}: expected an IPv6 address, optionally /prefix or /mask"));
    let (a, m) = match s.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (s, None),
    };
    let addr: Ipv6Addr = a.parse().map_err(|_| bad())?;
    let mask = match m {
        None => None,
        Some(m) => Some(match m.parse::<Ipv6Addr>() {
            Ok(mask) => u128::from(mask),
            Err(_) => {
                let n: u32 = m.parse().map_err(|_| bad())?;
                if n > 128 {
                    return Err(bad());
                }
                if n == 0 { 0 } else { u128::MAX << (128 - n) }
            }
        }),
    };
    Ok((u128::from(addr), mask))
}

fn parse_eth_masked(s: &str, field: Field) -> Result<(u128, Option<u128>), ParseError> {
    let bad = || ParseError::new(s, format!("{field}: expected an Ethernet address, optionally /mask"));
    let (a, m) = match s.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (s, None),
    };
    let addr: Mac = a.parse().map_err(|_| bad())?;
    let mask = m.map(|m| m.parse::<Mac>().map_err(|_| bad())).transpose()?;
    Ok((u128::from(addr.to_u64()), mask.map(|m| u128::from(m.to_u64()))))
}

/// A field's value (and mask, `None` for exact) in the field's text format, as OVS's
/// `mf_parse`. `*` is a zero mask (match anything).
pub fn parse_field_value(field: Field, s: &str, names: Option<&Names>) -> Result<(u128, Option<u128>), ParseError> {
    if s == "*" {
        return Ok((0, Some(0)));
    }
    let (v, m) = match field.def().format {
        Format::Decimal | Format::Hex => parse_int_masked(s, field)?,
        Format::Ipv4 => parse_ipv4_masked(s, field)?,
        Format::Ipv6 => parse_ipv6_masked(s, field)?,
        Format::Ethernet => parse_eth_masked(s, field)?,
        Format::Port => {
            let p = parse_port(s, names)?.0;
            // The 16-bit in_port holds reserved ports in their OpenFlow 1.0 form.
            let p = if field == Field::InPort16 && p >= PortNo::MAX.0 { p - 0xffff_0000 } else { p };
            (u128::from(p), None)
        }
        Format::CtState => parse_flags(s, CT_STATE_NAMES, 0xff, "ct_state")?,
        Format::TcpFlags => parse_flags(s, TCP_FLAG_NAMES, 0xfff, "tcp_flags")?,
        Format::TunFlags => parse_flags(s, TUN_FLAG_NAMES, 0x1, "tun_flags")?,
        Format::Frag => match s {
            "no" => (0, Some(3)),
            "yes" => (1, Some(1)),
            "first" => (1, Some(3)),
            "later" => (3, Some(3)),
            "not_later" => (0, Some(2)),
            _ => return Err(ParseError::new(s, "nw_frag: expected no, yes, first, later or not_later")),
        },
        Format::PacketType => {
            let bad = || ParseError::new(s, "packet_type: expected (namespace,type)");
            let inner = s.strip_prefix('(').and_then(|x| x.strip_suffix(')')).ok_or_else(bad)?;
            let (ns, t) = inner.split_once(',').ok_or_else(bad)?;
            let ns = parse_u16(ns, "packet_type namespace")?;
            let t = parse_u16(t, "packet_type type")?;
            ((u128::from(ns) << 16) | u128::from(t), None)
        }
    };
    let full = field.full_mask();
    if v & !full != 0 || m.is_some_and(|m| m & !full != 0) {
        return Err(ParseError::new(s, format!("value does not fit in field {field} ({} bits)", field.bits())));
    }
    Ok((v, m))
}

/// A subfield: `NXM_NX_REG0[0..15]`, `reg0[3]`, `reg0[]`, or a whole field by name.
pub fn parse_subfield(s: &str) -> Result<FieldRange, ParseError> {
    let (name, bits) = match s.find('[') {
        Some(i) => (&s[..i], Some(&s[i..])),
        None => (s, None),
    };
    let field = Field::from_name(name).ok_or_else(|| ParseError::new(s, format!("unknown field {name:?}")))?;
    // OVS's `in_port` subfield is the 16-bit NXM_OF_IN_PORT.
    let field = if name == "in_port" { Field::InPort16 } else { field };
    let width = field.bits();
    let (start, end) = match bits {
        None | Some("[]") => (0, width - 1),
        Some(b) => {
            let inner = b
                .strip_prefix('[')
                .and_then(|x| x.strip_suffix(']'))
                .ok_or_else(|| ParseError::new(s, "expected [] or [bit] or [start..end]"))?;
            let num = |x: &str| x.parse::<u16>().map_err(|_| ParseError::new(s, "expected [] or [bit] or [start..end]"));
            match inner.split_once("..") {
                Some((a, b)) => (num(a)?, num(b)?),
                None => {
                    let n = num(inner)?;
                    (n, n)
                }
            }
        }
    };
    if start > end {
        return Err(ParseError::new(s, format!("starting bit {start} is after ending bit {end}")));
    }
    if end >= width {
        return Err(ParseError::new(s, format!("bit {end} is beyond field {field}, which is {width} bits wide")));
    }
    Ok(FieldRange::bits(field, start, end))
}

/// Groups fields that OVS keeps in one place, so that the protocol decides which one it is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    NwSrc,
    NwDst,
    NwProto,
    TpSrc,
    TpDst,
}

fn slot(f: Field) -> Option<Slot> {
    use Field::*;
    Some(match f {
        Ipv4Src | ArpSpa => Slot::NwSrc,
        Ipv4Dst | ArpTpa => Slot::NwDst,
        IpProto | ArpOp => Slot::NwProto,
        TcpSrc | UdpSrc | SctpSrc | Icmpv4Type | Icmpv6Type => Slot::TpSrc,
        TcpDst | UdpDst | SctpDst | Icmpv4Code | Icmpv6Code => Slot::TpDst,
        _ => return None,
    })
}

/// The field a slot holds for this ethernet type and IP protocol.
fn slot_field(s: Slot, dl: Option<u16>, proto: Option<u8>) -> Option<Field> {
    use Field::*;
    let arp = matches!(dl, Some(eth_type::ARP | eth_type::RARP));
    let ip = matches!(dl, Some(eth_type::IPV4 | eth_type::IPV6));
    Some(match (s, proto) {
        (Slot::NwSrc, _) if arp => ArpSpa,
        (Slot::NwDst, _) if arp => ArpTpa,
        (Slot::NwProto, _) if arp => ArpOp,
        (Slot::NwSrc, _) => Ipv4Src,
        (Slot::NwDst, _) => Ipv4Dst,
        (Slot::NwProto, _) => IpProto,
        _ if !ip => return None,
        (Slot::TpSrc, Some(ip_proto::TCP)) => TcpSrc,
        (Slot::TpDst, Some(ip_proto::TCP)) => TcpDst,
        (Slot::TpSrc, Some(ip_proto::UDP)) => UdpSrc,
        (Slot::TpDst, Some(ip_proto::UDP)) => UdpDst,
        (Slot::TpSrc, Some(ip_proto::SCTP)) => SctpSrc,
        (Slot::TpDst, Some(ip_proto::SCTP)) => SctpDst,
        (Slot::TpSrc, Some(ip_proto::ICMP)) if dl == Some(eth_type::IPV4) => Icmpv4Type,
        (Slot::TpDst, Some(ip_proto::ICMP)) if dl == Some(eth_type::IPV4) => Icmpv4Code,
        (Slot::TpSrc, Some(ip_proto::ICMPV6)) if dl == Some(eth_type::IPV6) => Icmpv6Type,
        (Slot::TpDst, Some(ip_proto::ICMPV6)) if dl == Some(eth_type::IPV6) => Icmpv6Code,
        _ => return None,
    })
}

/// Builds a match from the (field, value, mask) settings in the order written, then resolves
/// shared slots and drops fields whose prerequisites are not met, as OVS does.
#[derive(Default)]
struct MatchBuilder {
    m: Match,
    /// Slot settings, applied once the protocol is known: (slot, value, mask, token).
    slots: Vec<(Slot, u128, Option<u128>, String)>,
}

impl MatchBuilder {
    fn set(&mut self, field: Field, v: u128, mask: Option<u128>, token: &str) -> Result<(), ParseError> {
        if let Some(s) = slot(field) {
            self.slots.retain(|(x, ..)| *x != s);
            self.slots.push((s, v, mask, token.to_string()));
            return Ok(());
        }
        self.m.set(field, v, mask).map_err(|e| ParseError::new(token, e.to_string()))
    }

    fn finish(mut self) -> Result<Match, ParseError> {
        // nw_proto first: the transport slots depend on it.
        self.slots.sort_by_key(|(s, ..)| *s != Slot::NwProto);
        for (s, v, mask, token) in std::mem::take(&mut self.slots) {
            let Some(field) = slot_field(s, self.m.eth_type(), self.m.ip_proto()) else { continue };
            let v = if field == Field::ArpOp && s == Slot::NwProto { v & 0xff } else { v };
            self.m.set(field, v, mask).map_err(|e| ParseError::new(&token, e.to_string()))?;
        }
        let fields: Vec<Field> = self.m.iter().map(|e| e.field).collect();
        for f in fields {
            if !prereqs_met(f, &self.m) {
                self.m.remove(f);
            }
        }
        Ok(self.m)
    }
}

/// Protocol shorthands: (name, eth type, IP protocol).
const PROTOCOLS: &[(&str, u16, Option<u8>)] = &[
    ("ip", eth_type::IPV4, None),
    ("ipv4", eth_type::IPV4, None),
    ("ip6", eth_type::IPV6, None),
    ("ipv6", eth_type::IPV6, None),
    ("icmp", eth_type::IPV4, Some(ip_proto::ICMP)),
    ("icmp6", eth_type::IPV6, Some(ip_proto::ICMPV6)),
    ("tcp", eth_type::IPV4, Some(ip_proto::TCP)),
    ("tcp6", eth_type::IPV6, Some(ip_proto::TCP)),
    ("udp", eth_type::IPV4, Some(ip_proto::UDP)),
    ("udp6", eth_type::IPV6, Some(ip_proto::UDP)),
    ("sctp", eth_type::IPV4, Some(ip_proto::SCTP)),
    ("sctp6", eth_type::IPV6, Some(ip_proto::SCTP)),
    ("arp", eth_type::ARP, None),
    ("rarp", eth_type::RARP, None),
    ("mpls", eth_type::MPLS, None),
    ("mplsm", eth_type::MPLS_MCAST, None),
];

/// Which keywords a flow-mod command accepts (OVS's F_* sets).
fn allows(cmd: FlowModCommand, key: &str) -> bool {
    use FlowModCommand::*;
    match key {
        "actions" | "idle_timeout" | "hard_timeout" | "flags" => matches!(cmd, Add | Modify | ModifyStrict),
        "priority" => cmd != Delete,
        "importance" => cmd == Add,
        "out_port" | "out_group" => matches!(cmd, Delete | DeleteStrict),
        _ => true,
    }
}

/// Splits off the actions the way OVS's `ofp_extract_actions` does: at the first `action`,
/// then after the next `=`.
fn split_actions(s: &str) -> Option<(&str, &str)> {
    let at = s.find("action")?;
    let eq = s[at..].find('=')?;
    Some((&s[..at], &s[at + eq + 1..]))
}

/// Parses a match on its own (`tcp,nw_src=10.0.0.0/8,tp_dst=80`).
pub fn parse_match(s: &str, names: Option<&Names>) -> Result<Match, ParseError> {
    let mut b = MatchBuilder::default();
    for item in items(s) {
        if !match_item(&mut b, &item, names)? {
            return Err(ParseError::new(item.text, "unknown field"));
        }
    }
    b.finish()
}

/// Applies a match item; `false` when the key is not a match field.
fn match_item(b: &mut MatchBuilder, item: &Item<'_>, names: Option<&Names>) -> Result<bool, ParseError> {
    let key = item.key;
    if let Some((_, dl, proto)) = PROTOCOLS.iter().find(|(n, ..)| *n == key) {
        b.set(Field::EthType, u128::from(*dl), None, item.text)?;
        if let Some(p) = proto {
            b.set(Field::IpProto, u128::from(*p), None, item.text)?;
        }
        return Ok(true);
    }
    match key {
        "eth" => return Ok(true),
        "dl_vlan" => {
            let v = parse_u16(item.value, "dl_vlan")?;
            match v {
                0xffff => b.set(Field::VlanTci, 0, Some(0x1fff), item.text)?,
                0..=0x0fff => b.set(Field::VlanVid, u128::from(v) | 0x1000, None, item.text)?,
                _ => return Err(ParseError::new(item.text, "dl_vlan must be 0..4095 or 0xffff")),
            }
            return Ok(true);
        }
        "dl_vlan_pcp" => {
            let v = super::lex::parse_uint_bits(item.value, 3, "dl_vlan_pcp")?;
            b.set(Field::VlanPcp, v, None, item.text)?;
            return Ok(true);
        }
        _ => {}
    }
    if let Some(field) = Field::from_name(key) {
        // A field without a value matches on its presence only: OVS's "0/0".
        let (v, m) = if item.value.is_empty() { (0, Some(0)) } else { parse_field_value(field, item.value, names)? };
        // (A tunnel option's presence is a match of its own, which OVS keeps.)
        if m == Some(0) && !matches!(field, Field::TunMetadata(_)) {
            return Ok(true);
        }
        b.set(field, v, m, item.text)?;
        return Ok(true);
    }
    if key.contains('[') {
        // `reg0[0..3]=5`: a subfield matched on its bits.
        let r = parse_subfield(key)?;
        let v = parse_uint(item.value).ok_or_else(|| ParseError::new(item.text, "expected an integer value"))?;
        if r.n_bits < 128 && v >> r.n_bits != 0 {
            return Err(ParseError::new(item.text, format!("value does not fit in {} bits", r.n_bits)));
        }
        let mask = ones(r.n_bits) << r.ofs;
        let (old_v, old_m) = b.m.get(r.field).map_or((0, 0), |e| (e.value, e.effective_mask()));
        b.set(r.field, (old_v & !mask) | (v << r.ofs), Some(old_m | mask), item.text)?;
        return Ok(true);
    }
    Ok(false)
}

/// Parses a flow-mod for `command` from ovs-ofctl text. Deletes and modifies without `table=`
/// apply to all tables, as in ovs-ofctl.
pub fn parse_flow_mod(s: &str, command: FlowModCommand, names: Option<&Names>) -> Result<FlowMod, ParseError> {
    let wants_actions = allows(command, "actions");
    let (head, actions) = if wants_actions {
        match split_actions(s) {
            Some((h, a)) => (h, Some(a)),
            None => return Err(ParseError::new(s.trim(), "must specify an action (actions=...)")),
        }
    } else {
        (s, None)
    };
    let mut fm = FlowMod::new(command, Flow::default());
    fm.flow.table_id = ALL_TABLES;
    let mut b = MatchBuilder::default();
    for item in items(head) {
        let key = item.key;
        if match_item(&mut b, &item, names)? {
            continue;
        }
        if let Some((bit, _)) = FlowFlags::NAMES.iter().find(|(_, n)| *n == key) {
            if !allows(command, "flags") {
                return Err(ParseError::new(item.text, format!("flags are not allowed in {command:?}")));
            }
            fm.flow.flags.0 |= bit;
            continue;
        }
        if matches!(key, "no_readonly_table" | "allow_hidden_fields") {
            continue;
        }
        if matches!(key, "duration" | "n_packets" | "n_bytes" | "idle_age" | "hard_age") {
            // dump-flows output fed back in.
            continue;
        }
        if item.value.is_empty() {
            return Err(ParseError::new(item.text, format!("field {key} missing value")));
        }
        if !allows(command, key) {
            return Err(ParseError::new(item.text, format!("{key} is not allowed in {command:?}")));
        }
        let v = item.value;
        match key {
            "table" => fm.flow.table_id = parse_table(v, names)?,
            "priority" => fm.flow.priority = parse_u16(v, "priority")?,
            "idle_timeout" => fm.flow.idle_timeout = parse_u16(v, "idle_timeout")?,
            "hard_timeout" => fm.flow.hard_timeout = parse_u16(v, "hard_timeout")?,
            "importance" => fm.flow.importance = parse_u16(v, "importance")?,
            "out_port" => fm.out_port = parse_port(v, names)?,
            "out_group" => {
                fm.out_group = match v {
                    "any" | "ANY" => GROUP_ANY,
                    _ => super::lex::parse_u32(v, "out_group")?,
                }
            }
            "cookie" => match v.split_once('/') {
                Some((c, m)) => {
                    if command == FlowModCommand::Add {
                        return Err(ParseError::new(item.text, "flow additions cannot use a cookie mask"));
                    }
                    fm.flow.cookie = parse_u64(c, "cookie")?;
                    fm.cookie_mask = if m == "-1" { u64::MAX } else { parse_u64(m, "cookie mask")? };
                }
                None => {
                    if matches!(command, FlowModCommand::Delete | FlowModCommand::DeleteStrict) {
                        return Err(ParseError::new(
                            item.text,
                            format!("cannot set cookie (to match on a cookie, specify a mask, e.g. cookie={v}/-1)"),
                        ));
                    }
                    fm.flow.cookie = parse_u64(v, "cookie")?;
                }
            },
            _ => return Err(ParseError::new(item.text, format!("unknown keyword {key}"))),
        }
    }
    fm.flow.matches = b.finish()?;
    if command == FlowModCommand::Add && fm.flow.table_id == ALL_TABLES {
        fm.flow.table_id = 0;
    }
    if let Some(a) = actions {
        let mut cx = super::parse_action::Cx::for_match(names, &fm.flow.matches);
        fm.flow.instructions = parse_instructions_in(a, &mut cx)?;
    }
    Ok(fm)
}

/// Parses a flow to add (`table=...,priority=...,<match> actions=...`).
pub fn parse_flow(s: &str, names: Option<&Names>) -> Result<Flow, ParseError> {
    parse_flow_mod(s, FlowModCommand::Add, names).map(|fm| fm.flow)
}

/// Parses one line of an `add-flows` file: an optional leading `add`, `modify`,
/// `modify_strict`, `delete` or `delete_strict` (abbreviations allowed, as in OVS), then the
/// flow.
pub fn parse_flow_mod_line(line: &str, names: Option<&Names>) -> Result<FlowMod, ParseError> {
    let s = line.trim_start();
    let len = s.find([',', ' ', '\t', '\r', '\n']).unwrap_or(s.len());
    let word = &s[..len];
    let commands = [
        ("add", FlowModCommand::Add),
        ("delete", FlowModCommand::Delete),
        ("delete_strict", FlowModCommand::DeleteStrict),
        ("modify", FlowModCommand::Modify),
        ("modify_strict", FlowModCommand::ModifyStrict),
    ];
    // OVS tries the commands in this order and takes the first the word is a prefix of.
    match commands.iter().find(|(name, _)| !word.is_empty() && name.starts_with(word)) {
        Some((_, cmd)) => parse_flow_mod(&s[len..], *cmd, names),
        None => parse_flow_mod(s, FlowModCommand::Add, names),
    }
}

/// The lines of a flow file as OVS reads them: `#` comments removed, lines ending in `\`
/// joined with the next, blank lines skipped. Yields (1-based line number, text).
pub fn flow_file_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        if cur.is_empty() {
            start = i + 1;
        }
        let line = raw.split('#').next().unwrap_or("");
        if let Some(cont) = line.strip_suffix('\\') {
            cur.push_str(cont);
            continue;
        }
        cur.push_str(line);
        if !cur.trim().is_empty() {
            out.push((start, std::mem::take(&mut cur)));
        }
        cur.clear();
    }
    if !cur.trim().is_empty() {
        out.push((start, cur));
    }
    out
}

impl std::str::FromStr for Flow {
    type Err = ParseError;

    /// ovs-ofctl `add-flow` syntax.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_flow(s, None)
    }
}

impl std::str::FromStr for Match {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_match(s, None)
    }
}
