//! OXM/NXM entries and `ofp_match`.
//!
//! A match is encoded in the order OVS's `nx_put_raw` uses for OpenFlow 1.5, so encoding the
//! same match gives the same bytes as ovs-ofctl, and registers are sent as `xreg` pairs.

use super::{DecodeError, DecodeErrorKind, OFP15_VERSION, Put, Reader, pad8};
use crate::field::{Field, OxmClass, ones};
use crate::flow_match::{Match, eth_type, ip_proto, prereqs_met};
use crate::port::PortNo;

/// OFPMT_OXM.
const OFPMT_OXM: u16 = 1;

/// A decoded OXM/NXM header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OxmHeaderBits {
    /// Class.
    pub class: u16,
    /// Field code.
    pub code: u8,
    /// Whether a mask follows the value.
    pub has_mask: bool,
    /// Payload length (value + mask, without the experimenter id).
    pub payload_len: usize,
    /// Experimenter id for class 0xffff.
    pub experimenter: Option<u32>,
}

/// Value bytes on the wire for `field` under the given header (NXM_OF_IN_PORT is 16-bit).
fn wire_bytes(field: Field, class: u16) -> usize {
    if field == Field::InPort && class == OxmClass::Nxm0.class() { 2 } else { field.bytes() }
}



/// Writes the header of `field` (OpenFlow 1.5 choice) for a payload of `len` value bytes.
pub fn put_header(out: &mut Vec<u8>, field: Field, has_mask: bool) {
    put_header_for(out, field, has_mask, OFP15_VERSION);
}

/// Writes the header OVS uses for `field` in OpenFlow `version`.
fn put_header_for(out: &mut Vec<u8>, field: Field, has_mask: bool, version: u8) {
    put_header_n(out, field, has_mask, version, field.bytes());
}

/// [`put_header_for`] for a value of `bytes` bytes.
fn put_header_n(out: &mut Vec<u8>, field: Field, has_mask: bool, version: u8, bytes: usize) {
    let h = field.header_for(version);
    let n = bytes * if has_mask { 2 } else { 1 };
    let exp = h.class.experimenter();
    let len = n + if exp.is_some() { 4 } else { 0 };
    out.put_u16(h.class.class());
    out.put_u8((h.code + field.index()) << 1 | u8::from(has_mask));
    out.put_u8(len as u8);
    if let Some(e) = exp {
        out.put_u32(e);
    }
}

/// The 32-bit NXM-style header used inside Nicira actions (`reg_move`, `output_reg`, `ct`).
pub fn nxm_header32(field: Field) -> u32 {
    let (class, code) = field.header();
    (u32::from(class.class()) << 16) | (u32::from(code) << 9) | field.bytes() as u32
}

/// The 32-bit header Nicira actions (learn, reg_load, output_reg, ct zone) name a field with:
/// its NXM header when it has one, as OVS's `mf_nxm_header`, else its OXM header.
pub fn nicira_header32(field: Field) -> u32 {
    use crate::field::OxmClass;
    let def = field.def();
    match def.headers.iter().find(|h| matches!(h.class, OxmClass::Nxm0 | OxmClass::Nxm1)) {
        Some(h) => (u32::from(h.class.class()) << 16) | (u32::from(h.code + field.index()) << 9) | field.bytes() as u32,
        None => nxm_header32(field),
    }
}

/// Looks up the field named by a 32-bit NXM header.
pub fn field_from_header32(h: u32) -> Option<Field> {
    Field::from_header((h >> 16) as u16, ((h >> 9) & 0x7f) as u8, None)
}

fn put_value(out: &mut Vec<u8>, v: u128, n: usize) {
    out.extend_from_slice(&v.to_be_bytes()[16 - n..]);
}

fn get_value(b: &[u8]) -> u128 {
    b.iter().fold(0u128, |acc, x| acc << 8 | u128::from(*x))
}

/// Writes one OXM entry: header, value and (when not all ones) the mask.
pub fn put_entry(out: &mut Vec<u8>, field: Field, value: u128, mask: Option<u128>) {
    put_entry_for(out, field, value, mask, OFP15_VERSION);
}

/// [`put_entry`] with the header OVS uses in OpenFlow `version`.
fn put_entry_for(out: &mut Vec<u8>, field: Field, value: u128, mask: Option<u128>, version: u8) {
    let n = match field {
        Field::TunMetadata(_) => crate::field::min_bytes(value | mask.unwrap_or(0)),
        _ => field.bytes(),
    };
    // OVS keeps ct_state and tun_flags narrower than their wire width and so always sends
    // them with a mask; everything else is unmasked when the mask covers the wire bytes.
    let mask = match mask {
        None if matches!(field, Field::CtState | Field::TunFlags) => Some(field.full_mask()),
        m => m.filter(|m| *m != ones(n as u16 * 8)),
    };
    put_header_n(out, field, mask.is_some(), version, n);
    put_value(out, value, n);
    if let Some(m) = mask {
        put_value(out, m, n);
    }
}

/// Reads an OXM header (with the experimenter id for class 0xffff).
pub fn read_header(r: &mut Reader<'_>) -> Result<OxmHeaderBits, DecodeError> {
    let class = r.u16()?;
    let fh = r.u8()?;
    let len = usize::from(r.u8()?);
    let (experimenter, payload_len) = if class == 0xffff {
        if len < 4 {
            return Err(r.err(DecodeErrorKind::BadLength(len)));
        }
        (Some(r.u32()?), len - 4)
    } else {
        (None, len)
    };
    Ok(OxmHeaderBits { class, code: fh >> 1, has_mask: fh & 1 == 1, payload_len, experimenter })
}

/// Reads one OXM entry: (field, value, mask). An unknown field is `OFPBMC_BAD_FIELD` and a
/// payload of the wrong size `OFPBMC_BAD_LEN`, as OVS answers.
pub fn read_entry(r: &mut Reader<'_>) -> Result<(Field, u128, Option<u128>), DecodeError> {
    let at = r.pos();
    let h = read_header(r)?;
    let field = Field::from_header(h.class, h.code, h.experimenter).ok_or_else(|| {
        let exp = h.experimenter.map(|e| format!(" (experimenter {e:#x})")).unwrap_or_default();
        DecodeError::rejected("OXM", at, "OFPBMC_BAD_FIELD", format!("unknown OXM field {:#06x}:{}{exp}", h.class, h.code))
    })?;
    let mut n = wire_bytes(field, h.class);
    if matches!(field, Field::TunMetadata(_)) {
        // As long as the switch's TLV table maps the option (up to what this crate carries).
        n = (h.payload_len / if h.has_mask { 2 } else { 1 }).clamp(1, n);
    }
    let want = if h.has_mask { 2 * n } else { n };
    if h.payload_len != want {
        let detail = format!("{field}: payload length {} (expected {want})", h.payload_len);
        return Err(DecodeError::rejected("OXM", at, "OFPBMC_BAD_LEN", detail));
    }
    let mut value = get_value(r.take(n)?);
    let mut mask = if h.has_mask { Some(get_value(r.take(n)?)) } else { None };
    if matches!(field, Field::TunMetadata(_)) {
        // All ones over the bytes the value and mask need is no mask (the entry is narrower
        // than the field): the same rule [`put_entry_for`] sends by, so decoding what it
        // sent gives the same match.
        mask = mask.filter(|m| *m != ones(8 * crate::field::min_bytes(value | *m) as u16));
    }
    if field == Field::InPort && n == 2 {
        value = u128::from(PortNo::from_ofp10(value as u16).0);
        mask = None;
    }
    Ok((field, value, mask))
}

/// Why OVS's strict match decoding (`nx_pull_raw`) refuses the entry `field=value/mask` after
/// the entries already in `m`: OVS's error name and a description.
fn refuse_entry(m: &Match, field: Field, value: u128, mask: Option<u128>) -> Option<(&'static str, String)> {
    let wire_ones = ones(field.bytes() as u16 * 8);
    if let Some(mk) = mask {
        if value & !mk != 0 {
            return Some(("OFPBMC_BAD_WILDCARDS", format!("{field}: value {value:#x} has 1-bits where the mask {mk:#x} has 0-bits")));
        }
        if !field.def().maskable && mk != 0 && mk != wire_ones {
            return Some(("OFPBMC_BAD_MASK", format!("{field} cannot be matched with mask {mk:#x}")));
        }
    }
    let is_port = matches!(field, Field::InPort | Field::ActsetOutput);
    // OVS keeps arp_op in 8 bits, takes NXM's TOS byte without its ECN bits, and maps 32-bit
    // ports only below 0xff00 or from 0xffffff00.
    if value & !field.full_mask() != 0
        || field == Field::ArpOp && value > 0xff
        || field == Field::NwTos && value & 0x03 != 0
        || is_port && (0xff00..PortNo::MAX.0 as u128).contains(&value)
    {
        return Some(("OFPBMC_BAD_VALUE", format!("{field}: bad value {value:#x}")));
    }
    let vlan_present = || m.get(Field::VlanTci).is_some_and(|t| t.value & 0x1000 != 0);
    if !prereqs_met(field, m) || field == Field::VlanPcp && !vlan_present() {
        return Some(("OFPBMC_BAD_PREREQ", format!("{field} is matched without its prerequisites")));
    }
    let matched = |f: Field, bits: u128| m.get(f).is_some_and(|e| e.effective_mask() & bits != 0);
    let dup = match field {
        Field::Xreg(n) => (0..2).any(|i| matched(Field::Reg(2 * n + i), u128::MAX)),
        Field::Xxreg(n) => (0..4).any(|i| matched(Field::Reg(4 * n + i), u128::MAX)),
        Field::VlanVid => matched(Field::VlanTci, 0x1fff),
        Field::VlanPcp => matched(Field::VlanTci, 0xe000),
        Field::IpDscp => matched(Field::NwTos, u128::MAX),
        Field::InPort16 => matched(Field::InPort, u128::MAX),
        f => matched(f, u128::MAX),
    };
    dup.then(|| ("OFPBMC_DUP_FIELD", format!("{field} is matched twice")))
}

/// Decodes the OXM entries of a match body into a canonical [`Match`], refusing what OVS's
/// strict decoding refuses, with OVS's error (see [`DecodeError::ofp_error`]): unknown fields,
/// value bits outside the mask, bad masks and values, a field before its prerequisites, and a
/// field matched twice. Also refuses a VLAN match OpenFlow 1.5 cannot express (see
/// [`decode_entries`] for NXM, which can).
pub fn decode_oxms(r: &mut Reader<'_>) -> Result<Match, DecodeError> {
    let m = decode_entries(r)?;
    // OpenFlow 1.5 matches the priority only together with a present VLAN (vlan_vid's 0x1000
    // bit); an NXM vlan_tci outside that cannot be written back, so it is refused.
    if let Some(t) = m.get(Field::VlanTci) {
        let (v, mask) = (t.value, t.effective_mask());
        let pcp = mask & 0xe000;
        if pcp != 0 && (pcp != 0xe000 || mask & 0x1000 == 0 || v & 0x1000 == 0) {
            return Err(r.invalid(format!("vlan_tci {v:#06x}/{mask:#06x} has no OpenFlow 1.5 form")));
        }
    }
    Ok(m)
}

/// Decodes OXM or NXM entries as OVS's strict `nx_pull_raw` does (the checks of
/// [`decode_oxms`], without the OpenFlow 1.5 one).
pub fn decode_entries(r: &mut Reader<'_>) -> Result<Match, DecodeError> {
    let mut m = Match::new();
    while r.remaining() > 0 {
        let at = r.pos();
        let (field, value, mask) = read_entry(r).map_err(|e| match e.kind {
            DecodeErrorKind::Truncated => DecodeError::rejected("OXM", at, "OFPBMC_BAD_LEN", "truncated entry"),
            _ => e,
        })?;
        if let Some((error, detail)) = refuse_entry(&m, field, value, mask) {
            return Err(DecodeError::rejected("OXM", at, error, detail));
        }
        // Mask bits beyond the field's width mean nothing (OVS drops them too).
        m.set(field, value, mask.map(|mk| mk & field.full_mask()))
            .map_err(|e| DecodeError::rejected("OXM", at, "OFPBMC_BAD_VALUE", e.to_string()))?;
    }
    Ok(m)
}

/// Decodes an `ofp_match` (type OXM) including its padding.
pub fn decode_match(r: &mut Reader<'_>) -> Result<Match, DecodeError> {
    let at = r.pos();
    let mtype = r.u16()?;
    if mtype != OFPMT_OXM {
        return Err(DecodeError::new("ofp_match", at, DecodeErrorKind::Unknown { what: "match type", code: u64::from(mtype) }));
    }
    let len = usize::from(r.u16()?);
    if len < 4 {
        return Err(DecodeError::new("ofp_match", at, DecodeErrorKind::BadLength(len)));
    }
    let mut body = r.sub(len - 4, "ofp_match")?;
    let m = decode_oxms(&mut body)?;
    r.skip((8 - len % 8) % 8)?;
    Ok(m)
}

/// Encodes an `ofp_match` with padding.
pub fn encode_match(m: &Match, out: &mut Vec<u8>) {
    let start = out.len();
    out.put_u16(OFPMT_OXM);
    out.put_u16(0);
    put_oxms(m, out);
    let len = (out.len() - start) as u16;
    out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
    pad8(out, start);
}

/// Writes the OXM entries of `m` in OVS's order, as OVS does in OpenFlow 1.5.
pub fn put_oxms(m: &Match, out: &mut Vec<u8>) {
    put_oxms_for(m, OFP15_VERSION, out);
}

/// NXM, OVS's OpenFlow 1.0 match extension, as a "version" for [`put_oxms_for`].
pub const NXM: u8 = 0;

/// Writes the OXM entries of `m` as OVS's `nx_put_raw` does for OpenFlow `version` (a version
/// byte, 1.2 or later, or [`NXM`]): the same order, but each field with the header of that
/// version (e.g. `ONFOXM_ET_ACTSET_OUTPUT` before 1.5) and, before 1.5, registers as 32-bit
/// `NXM_NX_REG<N>` instead of `OXM_OF_PKT_REG<N>` pairs. NXM has its own forms of three
/// fields: the 16-bit `NXM_OF_IN_PORT`, the whole `NXM_OF_VLAN_TCI`, and `NXM_OF_IP_TOS`.
pub fn put_oxms_for(m: &Match, version: u8, out: &mut Vec<u8>) {
    use Field::*;
    let put_entry = |out: &mut Vec<u8>, field: Field, value: u128, mask: Option<u128>| {
        put_entry_for(out, field, value, mask, version);
    };
    let put_if = |out: &mut Vec<u8>, m: &Match, field: Field| {
        if let Some(e) = m.get(field) {
            put_entry_for(out, field, e.value, e.mask, version);
        }
    };
    for f in [PacketType, DpHash, RecircId, ConjId] {
        put_if(out, m, f);
    }
    match m.exact(InPort) {
        Some(p) if version == NXM => put_entry(out, InPort16, u128::from(PortNo(p as u32).to_ofp10()), None),
        _ => put_if(out, m, InPort),
    }
    for f in [ActsetOutput, EthSrc, EthDst, EthType] {
        put_if(out, m, f);
    }
    if version == NXM {
        put_if(out, m, VlanTci);
    } else if let Some(tci) = m.get(VlanTci) {
        let (v, mask) = (tci.value, tci.effective_mask());
        let vid = v & 0x1fff;
        let vid_mask = mask & 0x1fff;
        if vid_mask == 0x1fff {
            put_entry(out, VlanVid, vid, None);
        } else if vid_mask != 0 {
            put_entry(out, VlanVid, vid, Some(vid_mask));
        }
        if vid != 0 && mask & 0xe000 != 0 {
            put_entry(out, VlanPcp, (v >> 13) & 7, None);
        }
    }
    let dl_type = m.eth_type();
    if matches!(dl_type, Some(eth_type::MPLS | eth_type::MPLS_MCAST)) {
        for f in [MplsTc, MplsBos, MplsTtl, MplsLabel] {
            put_if(out, m, f);
        }
    }
    match dl_type {
        Some(t @ (eth_type::IPV4 | eth_type::IPV6)) => {
            if t == eth_type::IPV4 {
                put_if(out, m, Ipv4Src);
                put_if(out, m, Ipv4Dst);
            } else {
                put_if(out, m, Ipv6Src);
                put_if(out, m, Ipv6Dst);
            }
            put_if(out, m, IpFrag);
            match m.get(NwTos) {
                Some(tos) if version == NXM => put_entry(out, NwTos, tos.value, None),
                Some(tos) => put_entry(out, IpDscp, tos.value >> 2, None),
                None => {}
            }
            for f in [IpEcn, IpTtl, Ipv6Label, IpProto] {
                put_if(out, m, f);
            }
            let l4: &[Field] = match m.ip_proto() {
                Some(ip_proto::TCP) => &[TcpSrc, TcpDst, TcpFlags],
                Some(ip_proto::UDP) => &[UdpSrc, UdpDst],
                Some(ip_proto::SCTP) => &[SctpSrc, SctpDst],
                Some(ip_proto::ICMP) if t == eth_type::IPV4 => &[Icmpv4Type, Icmpv4Code],
                Some(ip_proto::ICMPV6) if t == eth_type::IPV6 => &[Icmpv6Type, Icmpv6Code, NdTarget, NdSll, NdTll],
                _ => &[],
            };
            for f in l4 {
                put_if(out, m, *f);
            }
        }
        Some(eth_type::ARP | eth_type::RARP) => {
            for f in [ArpOp, ArpSpa, ArpTpa, ArpSha, ArpTha] {
                put_if(out, m, f);
            }
        }
        _ => {}
    }
    for f in [TunId, TunFlags, TunSrc, TunDst, TunIpv6Src, TunIpv6Dst, TunGbpId, TunGbpFlags] {
        put_if(out, m, f);
    }
    for i in 0..64 {
        put_if(out, m, TunMetadata(i));
    }
    for f in [TunErspanIdx, TunErspanVer, TunErspanDir, TunErspanHwid] {
        put_if(out, m, f);
    }
    if version < OFP15_VERSION {
        for i in 0..16 {
            put_if(out, m, Reg(i));
        }
    }
    for x in (0..8u8).filter(|_| version >= OFP15_VERSION) {
        let hi = m.get(Reg(2 * x));
        let lo = m.get(Reg(2 * x + 1));
        if hi.is_none() && lo.is_none() {
            continue;
        }
        let part = |e: Option<&crate::MatchField>| e.map_or((0, 0), |e| (e.value, e.effective_mask()));
        let (hv, hm) = part(hi);
        let (lv, lm) = part(lo);
        put_entry(out, Xreg(x), hv << 32 | lv, Some(hm << 32 | lm));
    }
    for f in [PktMark, CtState, CtZone, CtMark, CtLabel, CtNwSrc, CtIpv6Src, CtNwDst, CtIpv6Dst] {
        put_if(out, m, f);
    }
    if m.get(CtNwProto).is_some_and(|e| e.value != 0) {
        for f in [CtNwProto, CtTpSrc, CtTpDst] {
            put_if(out, m, f);
        }
    }
    put_if(out, m, Metadata);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn roundtrip(m: &Match) -> Match {
        let mut out = Vec::new();
        encode_match(m, &mut out);
        assert_eq!(out.len() % 8, 0);
        let mut r = Reader::new(&out, "test");
        let back = decode_match(&mut r).unwrap();
        r.finish().unwrap();
        back
    }

    #[test]
    fn a_tcp_match_with_registers_survives_encode_and_decode() {
        let m = Match::new()
            .tcp()
            .with_ipv4_prefix(Field::Ipv4Src, Ipv4Addr::new(10, 0, 0, 0), 8)
            .with(Field::TcpDst, 80u16)
            .with_masked(Field::Reg(3), 0x10u32, 0xf0u32)
            .with(Field::CtState, 0x21u32)
            .with(Field::InPort, PortNo(7));
        assert_eq!(roundtrip(&m), m);
    }

    #[test]
    fn registers_go_out_as_xreg_pairs() {
        let m = Match::new().with(Field::Reg(1), 5u32);
        let mut out = Vec::new();
        put_oxms(&m, &mut out);
        // OXM_OF_PKT_REG0, masked, 16 bytes: value 0x00000000_00000005, mask 0x00000000_ffffffff.
        assert_eq!(out[..4], [0x80, 0x01, 0x01, 16]);
        assert_eq!(out[4..12], [0, 0, 0, 0, 0, 0, 0, 5]);
    }

    #[test]
    fn an_unknown_oxm_is_an_error_naming_the_class_and_field() {
        let bytes = [0x00, 0x01, 0x7f << 1, 4, 0, 0, 0, 0];
        let mut r = Reader::new(&bytes, "test");
        let e = decode_oxms(&mut r).unwrap_err();
        assert_eq!(e.ofp_error(), Some("OFPBMC_BAD_FIELD"));
        assert_eq!(e.to_string(), "OXM at byte 0: unknown OXM field 0x0001:127 (OFPBMC_BAD_FIELD)");
    }
}
