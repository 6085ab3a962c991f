//! Action lists on the wire: OpenFlow 1.5 actions and the Nicira extensions, encoded as OVS
//! encodes them for OpenFlow 1.5 (so the bytes match ovs-ofctl's).

use super::codes::NX_VENDOR_ID;
use super::oxm::{self, field_from_header32, nicira_header32};
use super::{DecodeError, DecodeErrorKind, Put, Reader, len_placeholder, pad8, patch_len};
use crate::action::{Action, Controller, PacketInReason};
use crate::field::{Field, FieldRange};
use crate::port::PortNo;

/// OpenFlow action types (OFPAT_*).
mod ofpat {
    pub const OUTPUT: u16 = 0;
    pub const PUSH_VLAN: u16 = 17;
    pub const SET_MPLS_TTL: u16 = 15;
    pub const DEC_MPLS_TTL: u16 = 16;
    pub const POP_VLAN: u16 = 18;
    pub const PUSH_MPLS: u16 = 19;
    pub const POP_MPLS: u16 = 20;
    pub const SET_QUEUE: u16 = 21;
    pub const GROUP: u16 = 22;
    pub const SET_NW_TTL: u16 = 23;
    pub const DEC_NW_TTL: u16 = 24;
    pub const SET_FIELD: u16 = 25;
    pub const COPY_FIELD: u16 = 28;
    pub const METER: u16 = 29;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// Nicira action subtypes (NXAST_*).
mod nxast {
    pub const RESUBMIT: u16 = 1;
    pub const POP_QUEUE: u16 = 5;
    /// Encoded for [`Action::Load`] only: OpenFlow 1.5 decoding refuses it, as OVS does.
    pub const REG_LOAD: u16 = 7;
    pub const NOTE: u16 = 8;
    pub const MULTIPATH: u16 = 10;
    pub const BUNDLE: u16 = 12;
    pub const BUNDLE_LOAD: u16 = 13;
    pub const RESUBMIT_TABLE: u16 = 14;
    pub const OUTPUT_REG: u16 = 15;
    pub const LEARN: u16 = 16;
    pub const EXIT: u16 = 17;
    pub const FIN_TIMEOUT: u16 = 19;
    pub const CONTROLLER: u16 = 20;
    pub const DEC_TTL_CNT_IDS: u16 = 21;
    pub const STACK_PUSH: u16 = 27;
    pub const STACK_POP: u16 = 28;
    pub const SAMPLE: u16 = 29;
    pub const CONJUNCTION: u16 = 34;
    pub const CT: u16 = 35;
    pub const NAT: u16 = 36;
    pub const CONTROLLER2: u16 = 37;
    pub const SAMPLE2: u16 = 38;
    pub const OUTPUT_TRUNC: u16 = 39;
    pub const SAMPLE3: u16 = 41;
    pub const CLONE: u16 = 42;
    pub const CT_CLEAR: u16 = 43;
    pub const RESUBMIT_TABLE_CT: u16 = 44;
    pub const LEARN2: u16 = 45;
    pub const ENCAP: u16 = 46;
    pub const DECAP: u16 = 47;
    pub const CHECK_PKT_LARGER: u16 = 49;
    pub const DELETE_FIELD: u16 = 50;
    pub const SAMPLE4: u16 = 51;
}

/// NXAC2PT_* properties of NXAST_CONTROLLER2.
mod controller2_prop {
    pub const MAX_LEN: u16 = 0;
    pub const CONTROLLER_ID: u16 = 1;
    pub const REASON: u16 = 2;
    pub const USERDATA: u16 = 3;
    pub const PAUSE: u16 = 4;
    pub const METER_ID: u16 = 5;
}

/// The 16-bit OFPP_IN_PORT used by NXAST_RESUBMIT.
const OFPP10_IN_PORT: u16 = 0xfff8;
const NO_TABLE: u8 = 0xff;

/// OpenFlow action types OVS 3.1 decodes in OpenFlow 1.5 (recorded by probing `ovs-ofctl
/// parse-actions OpenFlow15`); any other type is OVS's `OFPBAC_BAD_TYPE`. This crate decodes a
/// subset (see [`ofpat`]); the rest are valid but unsupported here.
const OVS_OF15_TYPES: &[u16] = &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 28, 29, ofpat::EXPERIMENTER];

/// Nicira action subtypes OVS 3.1 decodes in OpenFlow 1.5 (probed likewise), plus OVS 3.5's
/// NXAST_SAMPLE4 (51); any other is `OFPBAC_BAD_VENDOR_TYPE`. NXAST_REG_MOVE (6) and
/// NXAST_REG_LOAD (7) are OpenFlow 1.0-1.4 only: OpenFlow 1.5 has copy_field and set_field.
const OVS_OF15_NX_SUBTYPES: &[u16] = &[
    1, 2, 5, 8, 9, 10, 12, 13, 14, 15, 16, 17, 19, 20, 21, 22, 27, 28, 29, 32, 34, 35, 36, 37, 38, 39, 41, 42, 43, 44, 45,
    46, 47, 48, 49, 50, 51,
];

/// NXAST_WRITE_METADATA: OVS's write_metadata instruction in Nicira action form.
const NXAST_WRITE_METADATA: u16 = 22;

/// The ONF experimenter id (its actions, e.g. OpenFlow 1.3's copy_field, are not OpenFlow 1.5).
const ONF_VENDOR_ID: u32 = 0x4f4e_4600;

/// Decodes a list of actions filling the whole reader. A list that is not a whole number of
/// 8-byte units is OVS's `OFPBRC_BAD_LEN`.
pub fn decode_actions(r: &mut Reader<'_>) -> Result<Vec<Action>, DecodeError> {
    if !r.remaining().is_multiple_of(8) {
        let detail = format!("actions length {} is not a multiple of 8", r.remaining());
        return Err(DecodeError::rejected("actions", r.pos(), "OFPBRC_BAD_LEN", detail));
    }
    let mut out = Vec::new();
    while r.remaining() > 0 {
        out.push(decode_action(r)?);
    }
    Ok(out)
}

/// Checks an action's header as OVS's `ofpact_decode_raw`/`ofpact_pull_raw` do, in their
/// order, so that a bad action gets OVS's error: the header must be there, the type (and
/// experimenter and subtype) known to OVS in OpenFlow 1.5, and the length a multiple of 8
/// within the bytes left. Returns the type and length.
fn check_action_header(outer: &Reader<'_>) -> Result<(u16, usize), DecodeError> {
    let start = outer.pos();
    let bad = |error: &'static str, detail: String| DecodeError::rejected("action", start, error, detail);
    let rest = outer.rest();
    if rest.len() < 8 {
        return Err(bad("OFPBAC_BAD_LEN", format!("{} bytes left for an action header", rest.len())));
    }
    let mut peek = Reader::new(rest, "action");
    let atype = peek.u16()?;
    let len = usize::from(peek.u16()?);
    if atype == ofpat::EXPERIMENTER {
        let vendor = peek.u32()?;
        if vendor != NX_VENDOR_ID && vendor != ONF_VENDOR_ID {
            return Err(bad("OFPBAC_BAD_VENDOR", format!("unknown action experimenter {vendor:#x}")));
        }
        if rest.len() < 16 {
            return Err(bad("OFPBAC_BAD_LEN", format!("{} bytes left for an experimenter action", rest.len())));
        }
        let subtype = peek.u16()?;
        if vendor == NX_VENDOR_ID && subtype == NXAST_WRITE_METADATA {
            // OVS decodes it, then refuses an instruction in an action list.
            return Err(bad("OFPBIC_UNSUP_INST", "write_metadata is an instruction, not an action".into()));
        }
        if vendor == ONF_VENDOR_ID || !OVS_OF15_NX_SUBTYPES.contains(&subtype) {
            return Err(bad("OFPBAC_BAD_VENDOR_TYPE", format!("no OpenFlow 1.5 action for experimenter {vendor:#x} and type {subtype}")));
        }
    } else if !OVS_OF15_TYPES.contains(&atype) {
        return Err(bad("OFPBAC_BAD_TYPE", format!("no OpenFlow 1.5 action type {atype}")));
    }
    if len > rest.len() || len < 8 || len % 8 != 0 {
        return Err(bad("OFPBAC_BAD_LEN", format!("action length {len} with {} bytes left", rest.len())));
    }
    Ok((atype, len))
}

fn ofs_nbits(v: u16) -> (u16, u16) {
    (v >> 6, (v & 0x3f) + 1)
}

fn range_from(r: &Reader<'_>, header: u32, ofs: u16, n_bits: u16) -> Result<FieldRange, DecodeError> {
    let field = field_from_header32(header)
        .ok_or_else(|| r.err(DecodeErrorKind::Unknown { what: "NXM field", code: u64::from(header) }))?;
    let range = FieldRange { field, ofs, n_bits };
    if !range.is_valid() {
        return Err(r.invalid(format!("bits {ofs}..{} out of range for {field}", u32::from(ofs) + u32::from(n_bits))));
    }
    Ok(range)
}

/// Decodes one action.
pub fn decode_action(outer: &mut Reader<'_>) -> Result<Action, DecodeError> {
    let start = outer.pos();
    let (atype, len) = check_action_header(outer)?;
    let mut r = outer.sub(len, "action")?;
    // An action body shorter or longer than its type's is OVS's OFPBAC_BAD_LEN.
    decode_action_body(&mut r, atype).and_then(|a| r.finish().map(|()| a)).map_err(|e| match e.kind {
        DecodeErrorKind::Truncated | DecodeErrorKind::TrailingBytes(_) | DecodeErrorKind::BadLength(_) => {
            DecodeError::rejected("action", start, "OFPBAC_BAD_LEN", format!("{} in a {len}-byte action", e.kind))
        }
        _ => DecodeError::new(e.what, start + e.offset, e.kind),
    })
}

/// Decodes the action of type `atype` filling `r` (header included).
fn decode_action_body(r: &mut Reader<'_>, atype: u16) -> Result<Action, DecodeError> {
    r.skip(4)?;
    let action = match atype {
        ofpat::OUTPUT => {
            let port = PortNo(r.u32()?);
            // As OVS: ANY is no port to send to, and 32-bit ports exist below 0xff00 and from
            // 0xffffff00 only.
            if port == PortNo::ANY || (0xff00..PortNo::MAX.0).contains(&port.0) {
                return Err(DecodeError::rejected("output", 4, "OFPBAC_BAD_OUT_PORT", format!("output to port {:#x}", port.0)));
            }
            let max_len = r.u16()?;
            r.skip(6)?;
            Action::Output { port, max_len }
        }
        ofpat::PUSH_VLAN => Action::PushVlan(u16_arg(r)?),
        ofpat::POP_VLAN => {
            r.skip(4)?;
            Action::PopVlan
        }
        ofpat::SET_QUEUE => Action::SetQueue(r.u32()?),
        ofpat::SET_NW_TTL => Action::SetNwTtl(u8_arg(r)?),
        ofpat::SET_MPLS_TTL => Action::SetMplsTtl(u8_arg(r)?),
        ofpat::DEC_MPLS_TTL => {
            r.skip(4)?;
            Action::DecMplsTtl
        }
        ofpat::PUSH_MPLS => Action::PushMpls(mpls_ethertype(r)?),
        ofpat::POP_MPLS => Action::PopMpls(u16_arg(r)?),
        ofpat::GROUP => Action::Group(r.u32()?),
        ofpat::DEC_NW_TTL => {
            r.skip(4)?;
            Action::DecTtl
        }
        ofpat::METER => Action::Meter(r.u32()?),
        ofpat::SET_FIELD => {
            let (field, value, mask) = decode_set_field(r)?;
            Action::SetField { field, value, mask }
        }
        ofpat::COPY_FIELD => {
            let n_bits = r.u16()?;
            let src_ofs = r.u16()?;
            let dst_ofs = r.u16()?;
            r.skip(2)?;
            let src = r.u32()?;
            let dst = r.u32()?;
            r.skip(r.remaining())?;
            Action::Move { src: range_from(r, src, src_ofs, n_bits)?, dst: range_from(r, dst, dst_ofs, n_bits)? }
        }
        ofpat::EXPERIMENTER => {
            // check_action_header let only Nicira actions OVS knows through.
            r.skip(4)?;
            let subtype = r.u16()?;
            decode_nx(r, subtype)?
        }
        // A type OVS decodes but this crate does not support.
        other => return Err(DecodeError::new("action", 0, DecodeErrorKind::Unknown { what: "action type", code: u64::from(other) })),
    };
    Ok(action)
}

/// The one-byte argument of a short OpenFlow action, then its padding.
fn u8_arg(r: &mut Reader<'_>) -> Result<u8, DecodeError> {
    let v = r.u8()?;
    r.skip(3)?;
    Ok(v)
}

/// The 16-bit argument of a short OpenFlow action, then its padding.
fn u16_arg(r: &mut Reader<'_>) -> Result<u16, DecodeError> {
    let v = r.u16()?;
    r.skip(2)?;
    Ok(v)
}

/// push_mpls's Ethernet type, which OVS requires to be an MPLS one.
fn mpls_ethertype(r: &mut Reader<'_>) -> Result<u16, DecodeError> {
    let t = u16_arg(r)?;
    if t != 0x8847 && t != 0x8848 {
        return Err(DecodeError::rejected("push_mpls", 4, "OFPBAC_BAD_ARGUMENT", format!("push_mpls of Ethernet type {t:#06x}")));
    }
    Ok(t)
}

/// The entry of a set_field action, checked as OVS's `decode_ofpat_set_field`, in canonical
/// form (an all-ones mask is no mask).
fn decode_set_field(r: &mut Reader<'_>) -> Result<(Field, u128, Option<u128>), DecodeError> {
    let at = r.pos();
    let bad = |error: &'static str, detail: String| DecodeError::rejected("set_field", at, error, detail);
    let (field, value, mask) = oxm::read_entry(r).map_err(|e| match e.ofp_error() {
        // In an action, an unknown field is a bad set type and a known field of the wrong
        // length a bad set length. (OVS answers some unknown fields with OFPBAC_BAD_SET_LEN
        // too, depending on which fields share a bucket of its header hash table.)
        Some("OFPBMC_BAD_FIELD") => bad("OFPBAC_BAD_SET_TYPE", e.to_string()),
        Some("OFPBMC_BAD_LEN") => bad("OFPBAC_BAD_SET_LEN", e.to_string()),
        // A header cut short is a match-entry length error in actions as well.
        _ if e.kind == DecodeErrorKind::Truncated => bad("OFPBMC_BAD_LEN", "truncated set_field entry".into()),
        _ => e,
    })?;
    if let Some(m) = mask.filter(|m| value & !m != 0) {
        return Err(bad("OFPBMC_BAD_WILDCARDS", format!("set_field {field}: value {value:#x} has 1-bits outside the mask {m:#x}")));
    }
    if r.take(r.remaining())?.iter().any(|b| *b != 0) {
        return Err(bad("OFPBAC_BAD_SET_ARGUMENT", "nonzero padding after set_field".into()));
    }
    if field == Field::InPort || !field.is_writable() {
        return Err(bad("OFPBAC_BAD_SET_ARGUMENT", format!("set_field to read-only field {field}")));
    }
    let vlan_vid_absent = field == Field::VlanVid && (value & 0x1000 == 0 || mask.is_some_and(|m| m & 0x1000 == 0));
    if (value | mask.unwrap_or(0)) & !field.full_mask() != 0 || vlan_vid_absent {
        return Err(bad("OFPBAC_BAD_SET_ARGUMENT", format!("set_field value {value:#x} is not valid for {field}")));
    }
    Ok((field, value, mask.filter(|m| *m != field.byte_mask())))
}

fn decode_nx(r: &mut Reader<'_>, subtype: u16) -> Result<Action, DecodeError> {
    Ok(match subtype {
        nxast::RESUBMIT | nxast::RESUBMIT_TABLE | nxast::RESUBMIT_TABLE_CT => {
            let in_port = r.u16()?;
            let table = r.u8()?;
            r.skip(3)?;
            let port = if in_port == OFPP10_IN_PORT { None } else { Some(PortNo::from_ofp10(in_port)) };
            let table = if subtype == nxast::RESUBMIT || table == NO_TABLE { None } else { Some(table) };
            Action::Resubmit { port, table, ct: subtype == nxast::RESUBMIT_TABLE_CT }
        }
        nxast::POP_QUEUE => {
            r.skip(6)?;
            Action::PopQueue
        }
        nxast::EXIT => {
            r.skip(6)?;
            Action::Exit
        }
        nxast::CT_CLEAR => {
            r.skip(6)?;
            Action::CtClear
        }
        nxast::NOTE => Action::Note(r.take(r.remaining())?.to_vec()),
        nxast::OUTPUT_REG => {
            let (ofs, n_bits) = ofs_nbits(r.u16()?);
            let src = r.u32()?;
            let max_len = r.u16()?;
            r.skip(6)?;
            Action::OutputReg { src: range_from(r, src, ofs, n_bits)?, max_len }
        }
        nxast::CONTROLLER => {
            let max_len = r.u16()?;
            let controller_id = r.u16()?;
            let reason = PacketInReason(r.u8()?);
            r.skip(1)?;
            Action::Controller(Controller { max_len, controller_id, reason, ..Controller::default() })
        }
        nxast::CONTROLLER2 => {
            r.skip(6)?;
            let mut c = Controller::default();
            while r.remaining() > 0 {
                let ptype = r.u16()?;
                let plen = usize::from(r.u16()?);
                if plen < 4 {
                    return Err(r.err(DecodeErrorKind::BadLength(plen)));
                }
                let mut p = r.sub(plen - 4, "controller2 property")?;
                match ptype {
                    // OpenFlow gives 16-bit properties a length of 8; OVS accepts any padding.
                    controller2_prop::MAX_LEN => {
                        c.max_len = p.u16()?;
                        p.skip(p.remaining())?;
                    }
                    controller2_prop::CONTROLLER_ID => {
                        c.controller_id = p.u16()?;
                        p.skip(p.remaining())?;
                    }
                    controller2_prop::REASON => c.reason = PacketInReason(p.u8()?),
                    controller2_prop::USERDATA => c.userdata = p.take(p.remaining())?.to_vec(),
                    controller2_prop::PAUSE => c.pause = true,
                    controller2_prop::METER_ID => c.meter_id = Some(p.u32()?),
                    other => return Err(p.err(DecodeErrorKind::Unknown { what: "controller2 property", code: u64::from(other) })),
                }
                p.finish()?;
                r.skip((8 - plen % 8) % 8)?;
            }
            Action::Controller(c)
        }
        nxast::CONJUNCTION => {
            let clause = r.u8()?;
            let n_clauses = r.u8()?;
            let id = r.u32()?;
            if !(2..=64).contains(&n_clauses) || clause >= n_clauses {
                return Err(r.invalid(format!("conjunction clause {clause} of {n_clauses}")));
            }
            Action::Conjunction { id, clause: clause + 1, n_clauses }
        }
        nxast::CT => Action::Ct(decode_ct(r)?),
        nxast::CLONE => {
            r.skip(6)?;
            Action::Clone(decode_actions(r)?)
        }
        nxast::LEARN | nxast::LEARN2 => Action::Learn(Box::new(decode_learn(r, subtype == nxast::LEARN2)?)),
        nxast::FIN_TIMEOUT => {
            let (idle, hard) = (r.u16()?, r.u16()?);
            r.skip(2)?;
            Action::FinTimeout { idle, hard }
        }
        nxast::DEC_TTL_CNT_IDS => {
            let n = r.u16()?;
            r.skip(4)?;
            let ids = (0..n).map(|_| r.u16()).collect::<Result<Vec<_>, _>>()?;
            r.skip(r.remaining())?;
            Action::DecTtlIds(ids)
        }
        nxast::OUTPUT_TRUNC => {
            let port = PortNo::from_ofp10(r.u16()?);
            Action::OutputTrunc { port, max_len: r.u32()? }
        }
        nxast::CHECK_PKT_LARGER => {
            let (pkt_len, ofs, header) = (r.u16()?, r.u16()?, r.u32()?);
            let dst = range_from(r, header, ofs, 1)?;
            must_be_zero(r)?;
            Action::CheckPktLarger { pkt_len, dst }
        }
        nxast::STACK_PUSH | nxast::STACK_POP => {
            let (ofs, header, n_bits) = (r.u16()?, r.u32()?, r.u16()?);
            let range = range_from(r, header, ofs, n_bits)?;
            must_be_zero(r)?;
            if subtype == nxast::STACK_PUSH { Action::StackPush(range) } else { Action::StackPop(range) }
        }
        nxast::SAMPLE | nxast::SAMPLE2 | nxast::SAMPLE3 | nxast::SAMPLE4 => Action::Sample(decode_sample(r, subtype)?),
        nxast::MULTIPATH => Action::Multipath(decode_multipath(r)?),
        nxast::ENCAP => Action::Encap(decode_encap(r)?),
        nxast::DELETE_FIELD => {
            let header = r.u32()?;
            let field = field_from_header32(header)
                .ok_or_else(|| r.err(DecodeErrorKind::Unknown { what: "NXM field", code: u64::from(header) }))?;
            r.skip(r.remaining())?;
            Action::DeleteField(field)
        }
        nxast::DECAP => Action::Decap(decode_decap(r)?),
        nxast::BUNDLE | nxast::BUNDLE_LOAD => Action::Bundle(decode_bundle(r, subtype == nxast::BUNDLE_LOAD)?),
        other => return Err(r.err(DecodeErrorKind::Unknown { what: "Nicira action subtype", code: u64::from(other) })),
    })
}

/// The rest of an action, which OVS requires to be zero (NXBRC_MUST_BE_ZERO).
fn must_be_zero(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    let at = r.pos();
    if r.take(r.remaining())?.iter().any(|b| *b != 0) {
        return Err(DecodeError::rejected("action", at, "NXBRC_MUST_BE_ZERO", "nonzero padding"));
    }
    Ok(())
}

mod ct;
mod encap;
mod hash;
mod learn;
mod sample;

use ct::{decode_ct, encode_ct, encode_nat};
use encap::{decode_decap, decode_encap, encode_decap, encode_encap};
use hash::{decode_bundle, decode_multipath, encode_bundle, encode_multipath};
use learn::{decode_learn, encode_learn};
use sample::{decode_sample, encode_sample};

/// Encodes a list of actions.
pub fn encode_actions(actions: &[Action], out: &mut Vec<u8>) {
    for a in actions {
        encode_action(a, out);
    }
}

/// Starts an action: type and a length placeholder. Returns (start, length offset).
fn begin(out: &mut Vec<u8>, atype: u16) -> (usize, usize) {
    let start = out.len();
    out.put_u16(atype);
    let at = len_placeholder(out);
    (start, at)
}

fn begin_nx(out: &mut Vec<u8>, subtype: u16) -> (usize, usize) {
    let (start, at) = begin(out, ofpat::EXPERIMENTER);
    out.put_u32(NX_VENDOR_ID);
    out.put_u16(subtype);
    (start, at)
}

fn end(out: &mut Vec<u8>, (start, at): (usize, usize)) {
    pad8(out, start);
    patch_len(out, at, start);
}

fn ofs_nbits_of(r: &FieldRange) -> u16 {
    r.ofs << 6 | (r.n_bits - 1)
}

/// Encodes one action.
pub fn encode_action(a: &Action, out: &mut Vec<u8>) {
    match a {
        Action::Output { port, max_len } => {
            let h = begin(out, ofpat::OUTPUT);
            out.put_u32(port.0);
            out.put_u16(*max_len);
            out.put_zeros(6);
            end(out, h);
        }
        Action::OutputReg { src, max_len } => {
            let h = begin_nx(out, nxast::OUTPUT_REG);
            out.put_u16(ofs_nbits_of(src));
            out.put_u32(nicira_header32(src.field));
            out.put_u16(*max_len);
            out.put_zeros(6);
            end(out, h);
        }
        Action::Controller(c) => encode_controller(c, out),
        Action::Group(g) => simple32(out, ofpat::GROUP, *g),
        Action::Meter(m) => simple32(out, ofpat::METER, *m),
        Action::SetQueue(q) => simple32(out, ofpat::SET_QUEUE, *q),
        Action::PopQueue => nx_empty(out, nxast::POP_QUEUE),
        Action::Exit => nx_empty(out, nxast::EXIT),
        Action::CtClear => nx_empty(out, nxast::CT_CLEAR),
        Action::SetField { field, value, mask } => {
            let h = begin(out, ofpat::SET_FIELD);
            oxm::put_entry(out, *field, *value, *mask);
            end(out, h);
        }
        Action::Load { dst, value } => {
            let h = begin_nx(out, nxast::REG_LOAD);
            out.put_u16(ofs_nbits_of(dst));
            out.put_u32(nicira_header32(dst.field));
            out.put_u64(*value as u64);
            end(out, h);
        }
        Action::Move { src, dst } => {
            let h = begin(out, ofpat::COPY_FIELD);
            out.put_u16(dst.n_bits);
            out.put_u16(src.ofs);
            out.put_u16(dst.ofs);
            out.put_zeros(2);
            oxm::put_header(out, src.field, false);
            oxm::put_header(out, dst.field, false);
            end(out, h);
        }
        Action::PushVlan(t) => simple16(out, ofpat::PUSH_VLAN, *t),
        Action::PushMpls(t) => simple16(out, ofpat::PUSH_MPLS, *t),
        Action::PopMpls(t) => simple16(out, ofpat::POP_MPLS, *t),
        Action::SetNwTtl(t) => simple8(out, ofpat::SET_NW_TTL, *t),
        Action::SetMplsTtl(t) => simple8(out, ofpat::SET_MPLS_TTL, *t),
        Action::DecMplsTtl => simple32(out, ofpat::DEC_MPLS_TTL, 0),
        Action::DecTtlIds(ids) => {
            let h = begin_nx(out, nxast::DEC_TTL_CNT_IDS);
            out.put_u16(ids.len() as u16);
            out.put_zeros(4);
            ids.iter().for_each(|id| out.put_u16(*id));
            end(out, h);
        }
        Action::FinTimeout { idle, hard } => {
            let h = begin_nx(out, nxast::FIN_TIMEOUT);
            out.put_u16(*idle);
            out.put_u16(*hard);
            end(out, h);
        }
        Action::OutputTrunc { port, max_len } => {
            let h = begin_nx(out, nxast::OUTPUT_TRUNC);
            out.put_u16(port16(*port));
            out.put_u32(*max_len);
            end(out, h);
        }
        Action::CheckPktLarger { pkt_len, dst } => {
            let h = begin_nx(out, nxast::CHECK_PKT_LARGER);
            out.put_u16(*pkt_len);
            out.put_u16(dst.ofs);
            out.put_u32(nicira_header32(dst.field));
            out.put_zeros(6);
            end(out, h);
        }
        Action::StackPush(r) => encode_stack(out, nxast::STACK_PUSH, r),
        Action::StackPop(r) => encode_stack(out, nxast::STACK_POP, r),
        Action::Sample(s) => encode_sample(s, out),
        Action::Multipath(m) => encode_multipath(m, out),
        Action::Bundle(b) => encode_bundle(b, out),
        Action::Encap(e) => encode_encap(e, out),
        Action::Decap(t) => encode_decap(*t, out),
        Action::DeleteField(f) => {
            // struct nx_action_delete_field: the field's header at the start of 14 bytes.
            let h = begin_nx(out, nxast::DELETE_FIELD);
            out.put_u32(nicira_header32(*f));
            out.put_zeros(10);
            end(out, h);
        }
        Action::PopVlan => {
            let h = begin(out, ofpat::POP_VLAN);
            out.put_zeros(4);
            end(out, h);
        }
        Action::DecTtl => {
            let h = begin(out, ofpat::DEC_NW_TTL);
            out.put_zeros(4);
            end(out, h);
        }
        Action::Resubmit { port, table, ct } => {
            let subtype = if *ct {
                nxast::RESUBMIT_TABLE_CT
            } else if table.is_none() {
                nxast::RESUBMIT
            } else {
                nxast::RESUBMIT_TABLE
            };
            let h = begin_nx(out, subtype);
            out.put_u16(port.map_or(OFPP10_IN_PORT, port16));
            out.put_u8(if subtype == nxast::RESUBMIT { 0 } else { table.unwrap_or(NO_TABLE) });
            out.put_zeros(3);
            end(out, h);
        }
        Action::Conjunction { id, clause, n_clauses } => {
            let h = begin_nx(out, nxast::CONJUNCTION);
            out.put_u8(clause.saturating_sub(1));
            out.put_u8(*n_clauses);
            out.put_u32(*id);
            end(out, h);
        }
        Action::Ct(ct) => encode_ct(ct, out),
        Action::Nat(nat) => encode_nat(nat, out),
        Action::Note(bytes) => {
            let h = begin_nx(out, nxast::NOTE);
            out.extend_from_slice(bytes);
            // At least the 6 note bytes of struct nx_action_note.
            let min = h.0 + 16;
            if out.len() < min {
                out.resize(min, 0);
            }
            end(out, h);
        }
        Action::Learn(l) => encode_learn(l, out),
        Action::Clone(actions) => {
            let h = begin_nx(out, nxast::CLONE);
            out.put_zeros(6);
            encode_actions(actions, out);
            end(out, h);
        }
    }
}

/// A 32-bit OpenFlow 1.1 port as the 16-bit port OVS's Nicira actions carry.
fn port16(p: PortNo) -> u16 {
    if p.0 >= 0xffff_ff00 { (p.0 - 0xffff_0000) as u16 } else { p.0 as u16 }
}

fn simple8(out: &mut Vec<u8>, atype: u16, v: u8) {
    let h = begin(out, atype);
    out.put_u8(v);
    end(out, h);
}

fn simple16(out: &mut Vec<u8>, atype: u16, v: u16) {
    let h = begin(out, atype);
    out.put_u16(v);
    end(out, h);
}

/// NXAST_STACK_PUSH/POP: offset, field header, width, zeros to 24 bytes.
fn encode_stack(out: &mut Vec<u8>, subtype: u16, r: &FieldRange) {
    let h = begin_nx(out, subtype);
    out.put_u16(r.ofs);
    out.put_u32(nicira_header32(r.field));
    out.put_u16(r.n_bits);
    out.put_zeros(4);
    end(out, h);
}

fn simple32(out: &mut Vec<u8>, atype: u16, v: u32) {
    let h = begin(out, atype);
    out.put_u32(v);
    end(out, h);
}

fn nx_empty(out: &mut Vec<u8>, subtype: u16) {
    let h = begin_nx(out, subtype);
    out.put_zeros(6);
    end(out, h);
}

fn encode_controller(c: &Controller, out: &mut Vec<u8>) {
    if c.userdata.is_empty() && !c.pause && c.meter_id.is_none() {
        let h = begin_nx(out, nxast::CONTROLLER);
        out.put_u16(c.max_len);
        out.put_u16(c.controller_id);
        out.put_u8(c.reason.0);
        out.put_u8(0);
        end(out, h);
        return;
    }
    let h = begin_nx(out, nxast::CONTROLLER2);
    out.put_zeros(6);
    let prop = |out: &mut Vec<u8>, ptype: u16, payload: &[u8]| {
        let start = out.len();
        out.put_u16(ptype);
        out.put_u16((4 + payload.len()) as u16);
        out.extend_from_slice(payload);
        pad8(out, start);
    };
    if c.max_len != u16::MAX {
        // 16-bit properties carry two bytes of padding inside their length, as OVS writes them.
        let [a, b] = c.max_len.to_be_bytes();
        prop(out, controller2_prop::MAX_LEN, &[a, b, 0, 0]);
    }
    if c.controller_id != 0 {
        let [a, b] = c.controller_id.to_be_bytes();
        prop(out, controller2_prop::CONTROLLER_ID, &[a, b, 0, 0]);
    }
    if c.reason != PacketInReason::ACTION {
        prop(out, controller2_prop::REASON, &[c.reason.0]);
    }
    if !c.userdata.is_empty() {
        prop(out, controller2_prop::USERDATA, &c.userdata);
    }
    if c.pause {
        prop(out, controller2_prop::PAUSE, &[]);
    }
    if let Some(m) = c.meter_id {
        prop(out, controller2_prop::METER_ID, &m.to_be_bytes());
    }
    end(out, h);
}

/// Whether `field` fits a 32-bit NXM header (the Nicira actions need that).
pub fn has_nxm_header(field: Field) -> bool {
    field.header().0.experimenter().is_none()
}

#[cfg(test)]
mod tests;
