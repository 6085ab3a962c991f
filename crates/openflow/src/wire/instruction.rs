//! Instruction lists on the wire.

use super::action::{decode_actions, encode_actions};
use super::{DecodeError, DecodeErrorKind, Put, Reader, len_placeholder, patch_len};
use crate::instruction::{Instruction, canonicalize};

/// OFPIT_* codes.
mod ofpit {
    pub const GOTO_TABLE: u16 = 1;
    pub const WRITE_METADATA: u16 = 2;
    pub const WRITE_ACTIONS: u16 = 3;
    pub const APPLY_ACTIONS: u16 = 4;
    pub const CLEAR_ACTIONS: u16 = 5;
    pub const METER: u16 = 6;
}

/// Decodes instructions filling the reader, into canonical order.
pub fn decode_instructions(r: &mut Reader<'_>) -> Result<Vec<Instruction>, DecodeError> {
    let mut out = Vec::new();
    while r.remaining() > 0 {
        let start = r.pos();
        let mut peek = Reader::new(r.rest(), "instruction");
        let itype = peek.u16()?;
        let len = usize::from(peek.u16()?);
        if len < 8 || len % 8 != 0 {
            return Err(DecodeError::new("instruction", start, DecodeErrorKind::BadLength(len)));
        }
        let mut i = r.sub(len, "instruction")?;
        i.skip(4)?;
        let ins = match itype {
            ofpit::GOTO_TABLE => {
                let t = i.u8()?;
                i.skip(3)?;
                Instruction::GotoTable(t)
            }
            ofpit::WRITE_METADATA => {
                i.skip(4)?;
                Instruction::WriteMetadata { value: i.u64()?, mask: i.u64()? }
            }
            ofpit::WRITE_ACTIONS | ofpit::APPLY_ACTIONS => {
                i.skip(4)?;
                let mut body = i.sub(i.remaining(), "instruction actions")?;
                let actions = decode_actions(&mut body)
                    .map_err(|e| DecodeError::new(e.what, start + 8 + e.offset, e.kind))?;
                if itype == ofpit::APPLY_ACTIONS {
                    Instruction::ApplyActions(actions)
                } else {
                    Instruction::WriteActions(actions)
                }
            }
            ofpit::CLEAR_ACTIONS => {
                i.skip(4)?;
                Instruction::ClearActions
            }
            ofpit::METER => Instruction::Meter(i.u32()?),
            other => {
                return Err(DecodeError::new(
                    "instruction",
                    start,
                    DecodeErrorKind::Unknown { what: "instruction type", code: u64::from(other) },
                ));
            }
        };
        i.finish()?;
        if out.iter().any(|o: &Instruction| o.rank() == ins.rank()) {
            return Err(DecodeError::new("instruction", start, DecodeErrorKind::Invalid("duplicate instruction".into())));
        }
        out.push(ins);
    }
    canonicalize(&mut out);
    Ok(out)
}

/// Encodes instructions as OVS does for OpenFlow 1.5 (a meter is an action at the head of
/// apply-actions).
pub fn encode_instructions(instructions: &[Instruction], out: &mut Vec<u8>) {
    for ins in instructions {
        let start = out.len();
        let itype = match ins {
            Instruction::Meter(_) | Instruction::ApplyActions(_) => ofpit::APPLY_ACTIONS,
            Instruction::ClearActions => ofpit::CLEAR_ACTIONS,
            Instruction::WriteActions(_) => ofpit::WRITE_ACTIONS,
            Instruction::WriteMetadata { .. } => ofpit::WRITE_METADATA,
            Instruction::GotoTable(_) => ofpit::GOTO_TABLE,
        };
        out.put_u16(itype);
        let at = len_placeholder(out);
        match ins {
            Instruction::Meter(m) => {
                out.put_zeros(4);
                encode_actions(&[crate::Action::Meter(*m)], out);
            }
            Instruction::ApplyActions(a) | Instruction::WriteActions(a) => {
                out.put_zeros(4);
                encode_actions(a, out);
            }
            Instruction::ClearActions => out.put_zeros(4),
            Instruction::WriteMetadata { value, mask } => {
                out.put_zeros(4);
                out.put_u64(*value);
                out.put_u64(*mask);
            }
            Instruction::GotoTable(t) => {
                out.put_u8(*t);
                out.put_zeros(3);
            }
        }
        patch_len(out, at, start);
    }
}
