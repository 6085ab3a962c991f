//! The Nicira `learn` action (NXAST_LEARN and NXAST_LEARN2) on the wire: the learned flow's
//! parameters and its match/load/output specs.

use super::{begin_nx, end, nxast, range_from};
use crate::action::{Learn, LearnSpec, LearnSrc, learn_flags};
use crate::wire::oxm::nicira_header32;
use crate::wire::{DecodeError, Put, Reader};

/// NX_LEARN spec header bits.
const LEARN_SRC_IMMEDIATE: u16 = 1 << 13;
const LEARN_DST_MASK: u16 = 3 << 11;
const LEARN_DST_LOAD: u16 = 1 << 11;
const LEARN_DST_OUTPUT: u16 = 2 << 11;

pub(super) fn decode_learn(r: &mut Reader<'_>, v2: bool) -> Result<Learn, DecodeError> {
    let mut l = Learn {
        idle_timeout: r.u16()?,
        hard_timeout: r.u16()?,
        priority: r.u16()?,
        cookie: r.u64()?,
        flags: r.u16()?,
        table_id: r.u8()?,
        ..Learn::default()
    };
    r.skip(1)?;
    l.fin_idle_timeout = r.u16()?;
    l.fin_hard_timeout = r.u16()?;
    if v2 {
        l.limit = r.u32()?;
        let result_ofs = r.u16()?;
        r.skip(2)?;
        if l.flags & learn_flags::WRITE_RESULT != 0 {
            let h = r.u32()?;
            l.result_dst = Some(range_from(r, h, result_ofs, 1)?);
        }
    }
    while r.remaining() >= 2 {
        let h = r.u16()?;
        if h == 0 {
            // The spec list ends at a zero header; what follows is padding.
            let rest = r.take(r.remaining())?;
            if rest.iter().any(|b| *b != 0) {
                return Err(r.invalid("nonzero bytes after learn specs"));
            }
            break;
        }
        let n_bits = h & 0x7ff;
        let src = if h & LEARN_SRC_IMMEDIATE != 0 {
            let n = usize::from(n_bits.div_ceil(16) * 2);
            let b = r.take(n)?;
            if n > 16 {
                return Err(r.invalid(format!("learn immediate of {n_bits} bits is too wide")));
            }
            LearnSrc::Imm(b.iter().fold(0u128, |a, x| a << 8 | u128::from(*x)))
        } else {
            let hdr = r.u32()?;
            let ofs = r.u16()?;
            LearnSrc::Field(range_from(r, hdr, ofs, n_bits)?)
        };
        let spec = match h & LEARN_DST_MASK {
            LEARN_DST_OUTPUT => match src {
                LearnSrc::Field(src) => LearnSpec::Output { src },
                LearnSrc::Imm(_) => return Err(r.invalid("learn output from an immediate")),
            },
            kind => {
                let hdr = r.u32()?;
                let ofs = r.u16()?;
                let dst = range_from(r, hdr, ofs, n_bits)?;
                if kind == LEARN_DST_LOAD { LearnSpec::Load { dst, src } } else { LearnSpec::Match { dst, src } }
            }
        };
        l.specs.push(spec);
    }
    let rest = r.take(r.remaining())?;
    if rest.iter().any(|b| *b != 0) {
        return Err(r.invalid("nonzero bytes after learn specs"));
    }
    Ok(l)
}

pub(super) fn encode_learn(l: &Learn, out: &mut Vec<u8>) {
    let v2 = l.limit != 0 || l.result_dst.is_some();
    let h = begin_nx(out, if v2 { nxast::LEARN2 } else { nxast::LEARN });
    out.put_u16(l.idle_timeout);
    out.put_u16(l.hard_timeout);
    out.put_u16(l.priority);
    out.put_u64(l.cookie);
    let mut flags = l.flags;
    if l.result_dst.is_some() {
        flags |= learn_flags::WRITE_RESULT;
    }
    out.put_u16(flags);
    out.put_u8(l.table_id);
    out.put_u8(0);
    out.put_u16(l.fin_idle_timeout);
    out.put_u16(l.fin_hard_timeout);
    if v2 {
        out.put_u32(l.limit);
        out.put_u16(l.result_dst.map_or(0, |r| r.ofs));
        out.put_u16(0);
        if let Some(r) = l.result_dst {
            out.put_u32(nicira_header32(r.field));
        }
    }
    for spec in &l.specs {
        let (dst_bits, dst, src, n_bits) = match spec {
            LearnSpec::Match { dst, src } => (0, Some(dst), Some(*src), dst.n_bits),
            LearnSpec::Load { dst, src } => (LEARN_DST_LOAD, Some(dst), Some(*src), dst.n_bits),
            LearnSpec::Output { src } => (LEARN_DST_OUTPUT, None, Some(LearnSrc::Field(*src)), src.n_bits),
        };
        let imm = matches!(src, Some(LearnSrc::Imm(_)));
        out.put_u16(if imm { LEARN_SRC_IMMEDIATE } else { 0 } | dst_bits | n_bits);
        match src {
            Some(LearnSrc::Imm(v)) => {
                let n = usize::from(n_bits.div_ceil(16) * 2).min(16);
                out.extend_from_slice(&v.to_be_bytes()[16 - n..]);
            }
            Some(LearnSrc::Field(r)) => {
                out.put_u32(nicira_header32(r.field));
                out.put_u16(r.ofs);
            }
            None => {}
        }
        if let Some(d) = dst {
            out.put_u32(nicira_header32(d.field));
            out.put_u16(d.ofs);
        }
    }
    end(out, h);
}
