//! Printing in ovs-ofctl's canonical syntax, field order and number formats
//! (`ovs-ofctl -O OpenFlow15 dump-flows`): names, numbers, field values and matches (OVS's
//! `match_format`). Actions are printed by [`super::print_action`], flows by
//! [`super::print_flow`]; their functions are re-exported here.

use std::collections::HashMap;
use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::field::{Field, Format};
use crate::flow::DEFAULT_PRIORITY;
use crate::flow_match::{Match, MatchField, eth_type, ip_proto};
use crate::mac::Mac;
use crate::port::PortNo;

pub use super::print_action::{format_action, format_actions, format_instructions};
pub use super::print_flow::{format_flow, format_flow_stats};

/// Names to print instead of numbers (`--names`, named tables).
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// Port number → name.
    pub ports: HashMap<u32, String>,
    /// Table id → name.
    pub tables: HashMap<u8, String>,
}

/// A number as C's `%#x` prints it (OVS's hex format): `0` for zero, else `0x` and hex digits.
pub struct CHex<T>(pub T);

impl<T: std::fmt::LowerHex + Default + PartialEq> std::fmt::Display for CHex<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 == T::default() { f.write_str("0") } else { write!(f, "{:#x}", self.0) }
    }
}

/// ct_state bits in bit order.
pub const CT_STATE_NAMES: &[(u32, &str)] = &[
    (0x01, "new"),
    (0x02, "est"),
    (0x04, "rel"),
    (0x08, "rpl"),
    (0x10, "inv"),
    (0x20, "trk"),
    (0x40, "snat"),
    (0x80, "dnat"),
];

/// TCP flag bits in bit order.
pub const TCP_FLAG_NAMES: &[(u32, &str)] = &[
    (0x001, "fin"),
    (0x002, "syn"),
    (0x004, "rst"),
    (0x008, "psh"),
    (0x010, "ack"),
    (0x020, "urg"),
    (0x040, "ece"),
    (0x080, "cwr"),
    (0x100, "ns"),
];

/// Tunnel flag bits.
pub const TUN_FLAG_NAMES: &[(u32, &str)] = &[(0x1, "oam")];

fn flag_name(names: &[(u32, &'static str)], bit: u32) -> String {
    names.iter().find(|(b, _)| *b == bit).map_or_else(|| format!("[{bit:x}]"), |(_, n)| n.to_string())
}

fn format_flags(s: &mut String, names: &[(u32, &'static str)], flags: u32) {
    if flags == 0 {
        s.push('0');
        return;
    }
    let mut first = true;
    let mut f = flags;
    while f != 0 {
        let bit = f & f.wrapping_neg();
        if !first {
            s.push('|');
        }
        first = false;
        s.push_str(&flag_name(names, bit));
        f &= !bit;
    }
}

fn format_flags_masked(s: &mut String, names: &[(u32, &'static str)], flags: u32, mask: u32, max: u32) {
    if mask == max {
        format_flags(s, names, flags);
        return;
    }
    if mask == 0 {
        s.push_str("0/0");
        return;
    }
    let mut m = mask;
    while m != 0 {
        let bit = m & m.wrapping_neg();
        s.push(if flags & bit != 0 { '+' } else { '-' });
        s.push_str(&flag_name(names, bit));
        m &= !bit;
    }
}

/// An IPv4 address with its mask as OVS prints it (`10.0.0.0/8`, `1.2.3.4/255.0.255.0`).
pub fn format_ipv4_masked(s: &mut String, v: u32, m: u32) {
    let _ = write!(s, "{}", Ipv4Addr::from(v));
    if m != u32::MAX {
        if m.leading_ones() + m.trailing_zeros() == 32 {
            let _ = write!(s, "/{}", m.leading_ones());
        } else {
            let _ = write!(s, "/{}", Ipv4Addr::from(m));
        }
    }
}

/// An IPv6 address with its mask as OVS prints it.
pub fn format_ipv6_masked(s: &mut String, v: u128, m: u128) {
    let _ = write!(s, "{}", Ipv6Addr::from(v));
    if m != u128::MAX {
        if m.leading_ones() + m.trailing_zeros() == 128 {
            let _ = write!(s, "/{}", m.leading_ones());
        } else {
            let _ = write!(s, "/{}", Ipv6Addr::from(m));
        }
    }
}

fn format_eth_masked(s: &mut String, v: u128, m: u128) {
    let _ = write!(s, "{}", Mac::from_u64(v as u64));
    if m != 0xffff_ffff_ffff {
        let _ = write!(s, "/{}", Mac::from_u64(m as u64));
    }
}

/// A port as ovs-ofctl prints it: a reserved name, a name from `names`, or the number.
pub fn format_port(s: &mut String, p: PortNo, names: Option<&Names>) {
    if let Some(n) = p.reserved_name() {
        s.push_str(n);
    } else if let Some(name) = names.and_then(|n| n.ports.get(&p.0)) {
        if name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.') {
            s.push_str(name);
        } else {
            let _ = write!(s, "\"{name}\"");
        }
    } else {
        let _ = write!(s, "{}", p.0);
    }
}

pub(crate) fn format_table(s: &mut String, t: u8, names: Option<&Names>) {
    match names.and_then(|n| n.tables.get(&t)) {
        Some(name) => s.push_str(name),
        None => {
            let _ = write!(s, "{t}");
        }
    }
}

/// A field value in the field's text format (used by set_field and matches).
pub fn format_value(s: &mut String, field: Field, v: u128, mask: Option<u128>, names: Option<&Names>) {
    let def = field.def();
    let m = mask.unwrap_or_else(|| field.full_mask());
    match def.format {
        Format::Ipv4 => format_ipv4_masked(s, v as u32, m as u32),
        Format::Ipv6 => format_ipv6_masked(s, v, m),
        Format::Ethernet => format_eth_masked(s, v, m),
        Format::Port if mask.is_some() => {
            let _ = write!(s, "{v}/0x{m:x}");
        }
        Format::Port if field == Field::InPort16 => format_port(s, PortNo::from_ofp10(v as u16), names),
        Format::Port => format_port(s, PortNo(v as u32), names),
        Format::CtState => format_flags_masked(s, CT_STATE_NAMES, v as u32, m as u32, 0xff),
        Format::TcpFlags => format_flags_masked(s, TCP_FLAG_NAMES, v as u32, m as u32, 0xfff),
        Format::TunFlags => format_flags_masked(s, TUN_FLAG_NAMES, v as u32, m as u32, 1),
        Format::Decimal if mask.is_none() => {
            let _ = write!(s, "{v}");
        }
        // OVS's `mf_format_integer_string`: a decimal value, the mask in hex.
        Format::Decimal => {
            let _ = write!(s, "{v}/0x{m:x}");
        }
        Format::Hex | Format::Frag | Format::PacketType => {
            let _ = write!(s, "{}", CHex(v));
            if mask.is_some() {
                let _ = write!(s, "/{}", CHex(m));
            }
        }
    }
}

fn put_hex32(s: &mut String, name: &str, e: &MatchField) {
    let _ = write!(s, "{name}={}", CHex(e.value));
    if let Some(m) = e.mask {
        let _ = write!(s, "/{}", CHex(m));
    }
    s.push(',');
}

/// A 16-bit field as OVS's `format_be16_masked`: decimal when exact, else `0x` hex for both
/// value and mask, zero included (`tp_dst=0x0/0xfff0`).
fn put_dec16(s: &mut String, name: &str, e: &MatchField) {
    match e.mask {
        None => {
            let _ = write!(s, "{name}={},", e.value);
        }
        Some(m) => {
            let _ = write!(s, "{name}=0x{:x}/0x{m:x},", e.value);
        }
    }
}

/// Prints a match (with `priority=` first when not the default), as OVS's `match_format`.
pub fn format_match(s: &mut String, m: &Match, priority: u16, names: Option<&Names>) {
    use Field::*;
    let start = s.len();
    if priority != DEFAULT_PRIORITY {
        let _ = write!(s, "priority={priority},");
    }
    let g = |f: Field| m.get(f);
    if let Some(e) = g(PktMark) {
        put_hex32(s, "pkt_mark", e);
    }
    if let Some(e) = g(RecircId) {
        put_hex32(s, "recirc_id", e);
    }
    if let Some(e) = g(DpHash) {
        put_hex32(s, "dp_hash", e);
    }
    if let Some(e) = g(ConjId) {
        let _ = write!(s, "conj_id={},", e.value);
    }
    if let Some(e) = g(ActsetOutput) {
        s.push_str("actset_output=");
        format_port(s, PortNo(e.value as u32), names);
        s.push(',');
    }
    if let Some(e) = g(CtState) {
        s.push_str("ct_state=");
        format_flags_masked(s, CT_STATE_NAMES, e.value as u32, e.effective_mask() as u32, 0xff);
        s.push(',');
    }
    if let Some(e) = g(CtZone) {
        let _ = write!(s, "ct_zone={},", e.value);
    }
    if let Some(e) = g(CtMark) {
        put_hex32(s, "ct_mark", e);
    }
    if let Some(e) = g(CtLabel) {
        put_hex32(s, "ct_label", e);
    }
    for (f, name) in [(CtNwSrc, "ct_nw_src"), (CtIpv6Src, "ct_ipv6_src"), (CtNwDst, "ct_nw_dst"), (CtIpv6Dst, "ct_ipv6_dst")] {
        if let Some(e) = g(f) {
            let _ = write!(s, "{name}=");
            format_value(s, f, e.value, e.mask, names);
            s.push(',');
        }
    }
    if let Some(e) = g(CtNwProto) {
        let _ = write!(s, "ct_nw_proto={},", e.value);
        if let Some(e) = g(CtTpSrc) {
            put_dec16(s, "ct_tp_src", e);
        }
        if let Some(e) = g(CtTpDst) {
            put_dec16(s, "ct_tp_dst", e);
        }
    }
    // Ethernet, (0,0), is the default packet type and is not printed.
    if let Some(e) = g(PacketType).filter(|e| e.value != 0) {
        let _ = write!(s, "packet_type=({},{}),", e.value >> 16, CHex(e.value & 0xffff));
    }
    let dl_type = m.eth_type();
    let proto = m.ip_proto();
    let mut skip_type = false;
    let mut skip_proto = false;
    if let Some(t) = dl_type {
        skip_type = true;
        let name = match (t, proto) {
            (eth_type::IPV4, Some(ip_proto::ICMP)) => Some("icmp"),
            (eth_type::IPV4, Some(ip_proto::TCP)) => Some("tcp"),
            (eth_type::IPV4, Some(ip_proto::UDP)) => Some("udp"),
            (eth_type::IPV4, Some(ip_proto::SCTP)) => Some("sctp"),
            (eth_type::IPV6, Some(ip_proto::ICMPV6)) => Some("icmp6"),
            (eth_type::IPV6, Some(ip_proto::TCP)) => Some("tcp6"),
            (eth_type::IPV6, Some(ip_proto::UDP)) => Some("udp6"),
            (eth_type::IPV6, Some(ip_proto::SCTP)) => Some("sctp6"),
            _ => None,
        };
        if let Some(n) = name {
            skip_proto = true;
            let _ = write!(s, "{n},");
        } else {
            match t {
                eth_type::IPV4 => s.push_str("ip,"),
                eth_type::IPV6 => s.push_str("ipv6,"),
                eth_type::ARP => s.push_str("arp,"),
                eth_type::RARP => s.push_str("rarp,"),
                eth_type::MPLS => s.push_str("mpls,"),
                eth_type::MPLS_MCAST => s.push_str("mplsm,"),
                _ => skip_type = false,
            }
        }
    }
    for i in 0..16u8 {
        if let Some(e) = g(Reg(i)) {
            put_hex32(s, &format!("reg{i}"), e);
        }
    }
    if let Some(e) = g(TunId) {
        put_hex32(s, "tun_id", e);
    }
    for (f, name) in [(TunSrc, "tun_src"), (TunDst, "tun_dst"), (TunIpv6Src, "tun_ipv6_src"), (TunIpv6Dst, "tun_ipv6_dst")] {
        if let Some(e) = g(f) {
            let _ = write!(s, "{name}=");
            format_value(s, f, e.value, e.mask, names);
            s.push(',');
        }
    }
    if let Some(e) = g(TunGbpId) {
        put_dec16(s, "tun_gbp_id", e);
    }
    if let Some(e) = g(TunGbpFlags) {
        // OVS prints the value alone with C's %#x, whatever the mask (`format_flow_tunnel`).
        let _ = write!(s, "tun_gbp_flags={},", CHex(e.value));
    }
    // OVS prints ERSPAN fields as values only, the index for version 1 and direction and
    // hardware id for version 2 (`format_flow_tunnel`).
    let ver = g(TunErspanVer).map(|e| e.value);
    if let Some(v) = ver {
        let _ = write!(s, "tun_erspan_ver={v},");
    }
    if let Some(e) = g(TunErspanIdx).filter(|_| ver == Some(1)) {
        let _ = write!(s, "tun_erspan_idx={},", CHex(e.value));
    }
    if let Some(e) = g(TunErspanDir).filter(|_| ver == Some(2)) {
        let _ = write!(s, "tun_erspan_dir={},", e.value);
    }
    if let Some(e) = g(TunErspanHwid).filter(|_| ver == Some(2)) {
        let _ = write!(s, "tun_erspan_hwid={},", CHex(e.value));
    }
    if let Some(e) = g(TunFlags) {
        s.push_str("tun_flags=");
        // OVS compares with all tunnel flag bits, private ones included, so matches always print
        // in the +/- form.
        format_flags_masked(s, TUN_FLAG_NAMES, e.value as u32, e.effective_mask() as u32, 0xffff);
        s.push(',');
    }
    // OVS's `tun_metadata_match_format`: hex value, and the mask unless it is all ones over
    // the bytes ovs-ofctl reads the entry into, the fewest that hold value and mask.
    for e in m.iter().filter(|e| matches!(e.field, TunMetadata(_))) {
        if e.mask == Some(0) {
            let _ = write!(s, "{},", e.field);
            continue;
        }
        let _ = write!(s, "{}={}", e.field, CHex(e.value));
        if let Some(mask) = e.mask.filter(|m| *m != crate::field::ones(8 * crate::field::min_bytes(e.value | m) as u16)) {
            let _ = write!(s, "/{}", CHex(mask));
        }
        s.push(',');
    }
    if let Some(e) = g(Metadata) {
        put_hex32(s, "metadata", e);
    }
    if let Some(e) = g(InPort) {
        s.push_str("in_port=");
        format_port(s, PortNo(e.value as u32), names);
        s.push(',');
    }
    if let Some(e) = g(VlanTci) {
        let (v, mask) = (e.value as u16, e.effective_mask() as u16);
        let vid_mask = mask & 0x0fff;
        let pcp_mask = mask & 0xe000;
        let cfi = mask & 0x1000 != 0;
        if cfi
            && v & 0x1000 != 0
            && (vid_mask == 0 || vid_mask == 0x0fff)
            && (pcp_mask == 0 || pcp_mask == 0xe000)
            && (vid_mask != 0 || pcp_mask != 0)
        {
            if vid_mask != 0 {
                let _ = write!(s, "dl_vlan={},", v & 0x0fff);
            }
            if pcp_mask != 0 {
                let _ = write!(s, "dl_vlan_pcp={},", v >> 13);
            }
        } else if mask == 0xffff {
            let _ = write!(s, "vlan_tci=0x{v:04x},");
        } else {
            let _ = write!(s, "vlan_tci=0x{v:04x}/0x{mask:04x},");
        }
    }
    for (f, name) in [(EthSrc, "dl_src"), (EthDst, "dl_dst")] {
        if let Some(e) = g(f) {
            let _ = write!(s, "{name}=");
            format_eth_masked(s, e.value, e.effective_mask());
            s.push(',');
        }
    }
    if !skip_type
        && let Some(t) = dl_type {
            let _ = write!(s, "dl_type=0x{t:04x},");
        }
    let is_arp = matches!(dl_type, Some(eth_type::ARP | eth_type::RARP));
    let addr_fields: &[(Field, &str)] = match dl_type {
        Some(eth_type::IPV6) => &[(Ipv6Src, "ipv6_src"), (Ipv6Dst, "ipv6_dst")],
        _ if is_arp => &[(ArpSpa, "arp_spa"), (ArpTpa, "arp_tpa")],
        _ => &[(Ipv4Src, "nw_src"), (Ipv4Dst, "nw_dst")],
    };
    for (f, name) in addr_fields {
        if let Some(e) = g(*f) {
            let _ = write!(s, "{name}=");
            format_value(s, *f, e.value, e.mask, names);
            s.push(',');
        }
    }
    if dl_type == Some(eth_type::IPV6)
        && let Some(e) = g(Ipv6Label) {
            let _ = write!(s, "ipv6_label=0x{:05x}", e.value);
            if let Some(m) = e.mask {
                let _ = write!(s, "/0x{m:05x}");
            }
            s.push(',');
        }
    if !skip_proto {
        if is_arp {
            if let Some(e) = g(ArpOp) {
                let _ = write!(s, "arp_op={},", e.value);
            }
        } else if let Some(p) = proto {
            let _ = write!(s, "nw_proto={p},");
        }
    }
    if is_arp {
        for (f, name) in [(ArpSha, "arp_sha"), (ArpTha, "arp_tha")] {
            if let Some(e) = g(f) {
                let _ = write!(s, "{name}=");
                format_eth_masked(s, e.value, e.effective_mask());
                s.push(',');
            }
        }
    }
    if let Some(e) = g(NwTos) {
        let _ = write!(s, "nw_tos={},", e.value);
    }
    if let Some(e) = g(IpEcn) {
        let _ = write!(s, "nw_ecn={},", e.value);
    }
    if let Some(e) = g(IpTtl) {
        let _ = write!(s, "nw_ttl={},", e.value);
    }
    for (f, name) in [(MplsLabel, "mpls_label"), (MplsTc, "mpls_tc"), (MplsTtl, "mpls_ttl"), (MplsBos, "mpls_bos")] {
        if let Some(e) = g(f) {
            let _ = write!(s, "{name}={},", e.value);
        }
    }
    if let Some(e) = g(IpFrag) {
        let text = match (e.effective_mask(), e.value) {
            (3, 0) => "no",
            (3, 1) => "first",
            (3, 3) => "later",
            (1, 1) => "yes",
            (1, 0) => "no",
            (2, 2) => "later",
            (2, 0) => "not_later",
            _ => "<error>",
        };
        let _ = write!(s, "nw_frag={text},");
    }
    let l4: &[(Field, &str)] = match (dl_type, proto) {
        (Some(eth_type::IPV4), Some(ip_proto::ICMP)) => &[(Icmpv4Type, "icmp_type"), (Icmpv4Code, "icmp_code")],
        (Some(eth_type::IPV6), Some(ip_proto::ICMPV6)) => &[(Icmpv6Type, "icmp_type"), (Icmpv6Code, "icmp_code")],
        (_, Some(ip_proto::TCP)) => &[(TcpSrc, "tp_src"), (TcpDst, "tp_dst")],
        (_, Some(ip_proto::UDP)) => &[(UdpSrc, "tp_src"), (UdpDst, "tp_dst")],
        (_, Some(ip_proto::SCTP)) => &[(SctpSrc, "tp_src"), (SctpDst, "tp_dst")],
        _ => &[],
    };
    for (f, name) in l4 {
        if let Some(e) = g(*f) {
            put_dec16(s, name, e);
        }
    }
    if proto == Some(ip_proto::ICMPV6) {
        if let Some(e) = g(NdTarget) {
            s.push_str("nd_target=");
            format_ipv6_masked(s, e.value, e.effective_mask());
            s.push(',');
        }
        for (f, name) in [(NdSll, "nd_sll"), (NdTll, "nd_tll")] {
            if let Some(e) = g(f) {
                let _ = write!(s, "{name}=");
                format_eth_masked(s, e.value, e.effective_mask());
                s.push(',');
            }
        }
    }
    if proto == Some(ip_proto::TCP)
        && let Some(e) = g(TcpFlags) {
            s.push_str("tcp_flags=");
            format_flags_masked(s, TCP_FLAG_NAMES, e.value as u32, e.effective_mask() as u32, 0xfff);
            s.push(',');
        }
    if s.len() > start && s.ends_with(',') {
        s.pop();
    }
}

impl std::fmt::Display for Match {
    /// The match part of a flow (default priority).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        format_match(&mut s, self, DEFAULT_PRIORITY, None);
        f.write_str(&s)
    }
}

