//! The Nicira actions that pick among links or ports by hashing: `multipath` (NXAST_MULTIPATH)
//! and `bundle`/`bundle_load` (NXAST_BUNDLE, NXAST_BUNDLE_LOAD), checked as OVS's
//! `decode_NXAST_RAW_MULTIPATH` and `decode_bundle` check them.

use super::{begin_nx, end, nxast, ofs_nbits, ofs_nbits_of, range_from};
use crate::action::{BUNDLE_ALGORITHMS, Bundle, HASH_FIELDS, MULTIPATH_ALGORITHMS, Multipath, code_name};
use crate::field::{Field, FieldRange};
use crate::port::PortNo;
use crate::wire::oxm::nicira_header32;
use crate::wire::{DecodeError, Put, Reader};

/// OVS's BUNDLE_MAX_MEMBERS.
const MAX_MEMBERS: u16 = 2048;

fn bad(what: &'static str, at: usize, detail: String) -> DecodeError {
    DecodeError::rejected(what, at, "OFPBAC_BAD_ARGUMENT", detail)
}

fn check_codes(what: &'static str, at: usize, fields: u16, algorithms: &[(u16, &'static str)], algorithm: u16) -> Result<(), DecodeError> {
    if code_name(HASH_FIELDS, fields).is_none() {
        return Err(bad(what, at, format!("unsupported hash fields {fields}")));
    }
    if code_name(algorithms, algorithm).is_none() {
        return Err(bad(what, at, format!("unsupported algorithm {algorithm}")));
    }
    Ok(())
}

pub(super) fn decode_multipath(r: &mut Reader<'_>) -> Result<Multipath, DecodeError> {
    let at = r.pos();
    let (fields, basis) = (r.u16()?, r.u16()?);
    r.skip(2)?;
    let (algorithm, max_link, arg) = (r.u16()?, r.u16()?, r.u32()?);
    r.skip(2)?;
    let (ofs, n_bits) = ofs_nbits(r.u16()?);
    let header = r.u32()?;
    let dst = range_from(r, header, ofs, n_bits)?;
    check_codes("multipath", at, fields, MULTIPATH_ALGORITHMS, algorithm)?;
    // The destination must hold every link number (OVS: log_2_ceil(n_links) bits).
    let needed = 32 - u32::from(max_link).leading_zeros();
    if u32::from(dst.n_bits) < needed {
        return Err(bad("multipath", at, format!("{} links need {needed} bits", u32::from(max_link) + 1)));
    }
    Ok(Multipath { fields, basis, algorithm, max_link, arg, dst })
}

pub(super) fn encode_multipath(m: &Multipath, out: &mut Vec<u8>) {
    let h = begin_nx(out, nxast::MULTIPATH);
    out.put_u16(m.fields);
    out.put_u16(m.basis);
    out.put_zeros(2);
    out.put_u16(m.algorithm);
    out.put_u16(m.max_link);
    out.put_u32(m.arg);
    out.put_zeros(2);
    out.put_u16(ofs_nbits_of(&m.dst));
    out.put_u32(nicira_header32(m.dst.field));
    end(out, h);
}

pub(super) fn decode_bundle(r: &mut Reader<'_>, load: bool) -> Result<Bundle, DecodeError> {
    let at = r.pos();
    let (algorithm, fields, basis) = (r.u16()?, r.u16()?, r.u16()?);
    let (member_type, n_members, ofs_bits, header) = (r.u32()?, r.u16()?, r.u16()?, r.u32()?);
    let zero = r.u32()?;
    check_codes("bundle", at, fields, BUNDLE_ALGORITHMS, algorithm)?;
    if member_type != nicira_header32(Field::InPort16) || n_members > MAX_MEMBERS || zero != 0 {
        return Err(bad("bundle", at, format!("member type {member_type:#x}, {n_members} members")));
    }
    let dst = if load {
        let (ofs, n_bits) = ofs_nbits(ofs_bits);
        let dst = range_from(r, header, ofs, n_bits)?;
        if dst.n_bits < 16 {
            return Err(bad("bundle_load", at, "bundle_load needs a destination of at least 16 bits".into()));
        }
        Some(dst)
    } else if ofs_bits != 0 || header != 0 {
        return Err(bad("bundle", at, "bundle with a destination".into()));
    } else {
        None
    };
    if r.remaining() < 2 * usize::from(n_members) {
        return Err(DecodeError::rejected("bundle", at, "OFPBAC_BAD_LEN", format!("no room for {n_members} members")));
    }
    let members = (0..n_members).map(|_| r.u16().map(PortNo::from_ofp10)).collect::<Result<Vec<_>, _>>()?;
    r.skip(r.remaining())?;
    Ok(Bundle { fields, basis, algorithm, members, dst })
}

pub(super) fn encode_bundle(b: &Bundle, out: &mut Vec<u8>) {
    let h = begin_nx(out, if b.dst.is_some() { nxast::BUNDLE_LOAD } else { nxast::BUNDLE });
    out.put_u16(b.algorithm);
    out.put_u16(b.fields);
    out.put_u16(b.basis);
    out.put_u32(nicira_header32(Field::InPort16));
    out.put_u16(b.members.len() as u16);
    out.put_u16(b.dst.as_ref().map_or(0, ofs_nbits_of));
    out.put_u32(b.dst.map_or(0, |d: FieldRange| nicira_header32(d.field)));
    out.put_zeros(4);
    b.members.iter().for_each(|p| out.put_u16(super::port16(*p)));
    end(out, h);
}
