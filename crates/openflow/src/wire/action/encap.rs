//! NXAST_ENCAP and NXAST_DECAP, checked as OVS's `decode_NXAST_RAW_ENCAP`/`_DECAP` and
//! `decode_ed_prop` check them.

use super::{begin_nx, end, nxast};
use crate::action::{ENCAP_HEADERS, Encap, PacketType};
use crate::wire::{DecodeError, Put, Reader};

/// Encap/decap property class and type of NSH's metadata type (OFPPPC_NSH, OFPPPT_PROP_NSH_MDTYPE).
const PROP_CLASS_NSH: u16 = 4;
const PROP_NSH_MDTYPE: u8 = 1;
/// The length field of that property: its header and the md_type byte, not the padding.
const MDTYPE_PROP_LEN: u8 = 5;
/// OVS's PT_USE_NEXT_PROTO: decap takes the next header's type from the one it removes.
const USE_NEXT_PROTO: u32 = 0xfffe;

fn rejected(at: usize, error: &'static str, detail: String) -> DecodeError {
    DecodeError::rejected("encap", at, error, detail)
}

pub(super) fn decode_encap(r: &mut Reader<'_>) -> Result<Encap, DecodeError> {
    let at = r.pos();
    let hdr_size = r.u16()?;
    let packet_type = PacketType::from_u32(r.u32()?);
    if !ENCAP_HEADERS.iter().any(|(t, _)| *t == packet_type) {
        return Err(rejected(at, "NXBAC_BAD_HEADER_TYPE", format!("encap of packet type {:#x}", packet_type.to_u32())));
    }
    let mut e = Encap { packet_type, hdr_size, nsh_md_type: None };
    while r.remaining() > 0 {
        let (class, ptype, len) = (r.u16()?, r.u8()?, r.u8()?);
        if class != PROP_CLASS_NSH || ptype != PROP_NSH_MDTYPE || len != MDTYPE_PROP_LEN {
            return Err(rejected(r.pos(), "NXBAC_UNKNOWN_ED_PROP", format!("encap property {class}/{ptype} of length {len}")));
        }
        let md_type = r.u8()?;
        // OVS ignores the padding (its vectors normalize nonzero padding to zeros).
        r.skip(3)?;
        if !(1..=2).contains(&md_type) {
            return Err(rejected(r.pos(), "NXBAC_BAD_ED_PROP", format!("NSH md_type {md_type}")));
        }
        e.nsh_md_type = Some(md_type);
    }
    Ok(e)
}

pub(super) fn encode_encap(e: &Encap, out: &mut Vec<u8>) {
    let h = begin_nx(out, nxast::ENCAP);
    out.put_u16(e.hdr_size);
    out.put_u32(e.packet_type.to_u32());
    if let Some(md_type) = e.nsh_md_type {
        out.put_u16(PROP_CLASS_NSH);
        out.put_u8(PROP_NSH_MDTYPE);
        out.put_u8(MDTYPE_PROP_LEN);
        out.put_u8(md_type);
        out.put_zeros(3);
    }
    end(out, h);
}

pub(super) fn decode_decap(r: &mut Reader<'_>) -> Result<Option<PacketType>, DecodeError> {
    r.skip(2)?;
    let t = r.u32()?;
    if r.remaining() > 0 {
        return Err(rejected(r.pos(), "NXBAC_UNKNOWN_ED_PROP", "decap with properties".into()));
    }
    Ok((t != USE_NEXT_PROTO).then(|| PacketType::from_u32(t)))
}

pub(super) fn encode_decap(t: Option<PacketType>, out: &mut Vec<u8>) {
    let h = begin_nx(out, nxast::DECAP);
    out.put_zeros(2);
    out.put_u32(t.map_or(USE_NEXT_PROTO, PacketType::to_u32));
    end(out, h);
}
