//! The Nicira `sample` action in its four encodings. OVS picks the smallest one that carries the
//! action (`encode_SAMPLE`): NXAST_SAMPLE4 when an observation id comes from a field,
//! NXAST_SAMPLE3 for a direction, NXAST_SAMPLE2 for a sampling port, else NXAST_SAMPLE.

use super::{begin_nx, end, nxast, ofs_nbits, ofs_nbits_of, port16, range_from};
use crate::action::{ObsId, Sample, sample_direction};
use crate::port::PortNo;
use crate::wire::oxm::nicira_header32;
use crate::wire::{DecodeError, Put, Reader};

/// The 16-bit OFPP_NONE: no sampling port.
const NO_PORT: u16 = 0xffff;

fn bad(at: usize, detail: String) -> DecodeError {
    DecodeError::rejected("sample", at, "OFPBAC_BAD_ARGUMENT", detail)
}

/// An observation id of NXAST_SAMPLE4: a field header (0 for none), then the field's
/// ofs_nbits or the immediate value.
fn decode_obs_id(r: &mut Reader<'_>) -> Result<ObsId, DecodeError> {
    let header = r.u32()?;
    if header == 0 {
        return Ok(ObsId::Imm(r.u32()?));
    }
    let (ofs, n_bits) = ofs_nbits(r.u16()?);
    r.skip(2)?;
    let range = range_from(r, header, ofs, n_bits)?;
    if n_bits > 32 {
        return Err(bad(r.pos(), format!("observation id of {n_bits} bits")));
    }
    Ok(ObsId::Field(range))
}

pub(super) fn decode_sample(r: &mut Reader<'_>, subtype: u16) -> Result<Sample, DecodeError> {
    let at = r.pos();
    let probability = r.u16()?;
    let collector_set_id = r.u32()?;
    let (obs_domain, obs_point) = if subtype == nxast::SAMPLE4 {
        (decode_obs_id(r)?, decode_obs_id(r)?)
    } else {
        (ObsId::Imm(r.u32()?), ObsId::Imm(r.u32()?))
    };
    let mut s = Sample { probability, collector_set_id, obs_domain, obs_point, sampling_port: None, direction: 0 };
    if subtype != nxast::SAMPLE {
        let port = r.u16()?;
        s.sampling_port = (port != NO_PORT).then(|| PortNo::from_ofp10(port));
        let direction = r.u8()?;
        // NXAST_SAMPLE2 has no direction: OVS ignores the byte and the zeros after it.
        if subtype == nxast::SAMPLE2 {
            r.skip(r.remaining())?;
        } else {
            super::must_be_zero(r)?;
            s.direction = direction;
        }
    }
    if probability == 0 || s.direction > sample_direction::EGRESS {
        return Err(bad(at, format!("probability {probability}, direction {}", s.direction)));
    }
    Ok(s)
}

fn encode_obs_id(id: &ObsId, out: &mut Vec<u8>) {
    match id {
        ObsId::Imm(v) => {
            out.put_u32(0);
            out.put_u32(*v);
        }
        ObsId::Field(r) => {
            out.put_u32(nicira_header32(r.field));
            out.put_u16(ofs_nbits_of(r));
            out.put_zeros(2);
        }
    }
}

fn imm(id: &ObsId) -> Option<u32> {
    match id {
        ObsId::Imm(v) => Some(*v),
        ObsId::Field(_) => None,
    }
}

pub(super) fn encode_sample(s: &Sample, out: &mut Vec<u8>) {
    let imms = imm(&s.obs_domain).zip(imm(&s.obs_point));
    let subtype = match imms {
        None => nxast::SAMPLE4,
        Some(_) if s.direction != sample_direction::DEFAULT => nxast::SAMPLE3,
        Some(_) if s.sampling_port.is_some() => nxast::SAMPLE2,
        Some(_) => nxast::SAMPLE,
    };
    let h = begin_nx(out, subtype);
    out.put_u16(s.probability);
    out.put_u32(s.collector_set_id);
    match imms {
        Some((domain, point)) if subtype != nxast::SAMPLE4 => {
            out.put_u32(domain);
            out.put_u32(point);
        }
        _ => {
            encode_obs_id(&s.obs_domain, out);
            encode_obs_id(&s.obs_point, out);
        }
    }
    if subtype != nxast::SAMPLE {
        out.put_u16(s.sampling_port.map_or(NO_PORT, port16));
        out.put_u8(s.direction);
    }
    end(out, h);
}
