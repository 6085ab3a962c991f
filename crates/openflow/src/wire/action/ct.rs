//! The Nicira `ct` action (NXAST_CT) and the `nat` action nested in it (NXAST_NAT) on the
//! wire, as OVS encodes them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{NO_TABLE, begin_nx, decode_action, encode_actions, end, nxast, ofpat, ofs_nbits, ofs_nbits_of, range_from};
use crate::action::{Action, Ct, CtZone, Nat, NatKind};
use crate::wire::codes::NX_VENDOR_ID;
use crate::wire::oxm::nicira_header32;
use crate::wire::{DecodeError, Put, Reader};

const CT_F_COMMIT: u16 = 1;
const CT_F_FORCE: u16 = 2;
const NAT_F_SRC: u16 = 1;
const NAT_F_DST: u16 = 2;
const NAT_F_PERSISTENT: u16 = 4;
const NAT_F_HASH: u16 = 8;
const NAT_F_RANDOM: u16 = 16;
const NAT_RANGE_IPV4_MIN: u16 = 1;
const NAT_RANGE_IPV4_MAX: u16 = 2;
const NAT_RANGE_IPV6_MIN: u16 = 4;
const NAT_RANGE_IPV6_MAX: u16 = 8;
const NAT_RANGE_PROTO_MIN: u16 = 16;
const NAT_RANGE_PROTO_MAX: u16 = 32;

pub(super) fn decode_ct(r: &mut Reader<'_>) -> Result<Ct, DecodeError> {
    let flags = r.u16()?;
    let zone_src = r.u32()?;
    let zone_val = r.u16()?;
    let table = r.u8()?;
    r.skip(3)?;
    let alg = r.u16()?;
    let zone = if zone_src == 0 {
        CtZone::Imm(zone_val)
    } else {
        let (ofs, n_bits) = ofs_nbits(zone_val);
        CtZone::Field(range_from(r, zone_src, ofs, n_bits)?)
    };
    let mut ct = Ct {
        commit: flags & CT_F_COMMIT != 0,
        force: flags & CT_F_FORCE != 0,
        zone,
        table: if table == NO_TABLE { None } else { Some(table) },
        alg,
        nat: None,
        exec: Vec::new(),
    };
    if flags & !(CT_F_COMMIT | CT_F_FORCE) != 0 {
        return Err(r.invalid(format!("unknown ct flags {flags:#x}")));
    }
    // Nested actions: a NAT first is `ct.nat`, the rest (NATs included) are `ct.exec` in order.
    while r.remaining() > 0 {
        let mut peek = Reader::new(r.rest(), "ct nested action");
        let (t, _len, vendor, sub) = (peek.u16()?, peek.u16()?, peek.u32().unwrap_or(0), peek.u16().unwrap_or(0));
        if t == ofpat::EXPERIMENTER && vendor == NX_VENDOR_ID && sub == nxast::NAT {
            let mut nr = r.sub(usize::from(_len), "nat")?;
            nr.skip(10)?;
            let nat = decode_nat(&mut nr)?;
            if ct.nat.is_none() && ct.exec.is_empty() {
                ct.nat = Some(nat);
            } else {
                ct.exec.push(Action::Nat(nat));
            }
        } else {
            ct.exec.push(decode_action(r)?);
        }
    }
    Ok(ct)
}

fn decode_nat(r: &mut Reader<'_>) -> Result<Nat, DecodeError> {
    r.skip(2)?;
    let flags = r.u16()?;
    let present = r.u16()?;
    let mut nat = Nat {
        kind: match (flags & NAT_F_SRC != 0, flags & NAT_F_DST != 0) {
            (true, false) => Some(NatKind::Src),
            (false, true) => Some(NatKind::Dst),
            (false, false) => None,
            (true, true) => return Err(r.invalid("nat with both src and dst")),
        },
        persistent: flags & NAT_F_PERSISTENT != 0,
        hash: flags & NAT_F_HASH != 0,
        random: flags & NAT_F_RANDOM != 0,
        ..Nat::default()
    };
    let mut min: Option<IpAddr> = None;
    let mut max: Option<IpAddr> = None;
    if present & NAT_RANGE_IPV4_MIN != 0 {
        min = Some(IpAddr::V4(Ipv4Addr::from(r.u32()?)));
    }
    if present & NAT_RANGE_IPV4_MAX != 0 {
        max = Some(IpAddr::V4(Ipv4Addr::from(r.u32()?)));
    }
    if present & NAT_RANGE_IPV6_MIN != 0 {
        min = Some(IpAddr::V6(Ipv6Addr::from(u128::from_be_bytes(r.take(16)?.try_into().expect("16 bytes")))));
    }
    if present & NAT_RANGE_IPV6_MAX != 0 {
        max = Some(IpAddr::V6(Ipv6Addr::from(u128::from_be_bytes(r.take(16)?.try_into().expect("16 bytes")))));
    }
    // Canonical form (what the encoder writes back, and what OVS means): an unspecified
    // address or a zero port is no bound, and ports count only with an address range.
    if present & (NAT_RANGE_IPV4_MIN | NAT_RANGE_IPV4_MAX) != 0 && present & (NAT_RANGE_IPV6_MIN | NAT_RANGE_IPV6_MAX) != 0 {
        return Err(r.invalid("nat range mixes IPv4 and IPv6"));
    }
    let min = min.filter(|a| !a.is_unspecified());
    let max = max.filter(|a| !a.is_unspecified());
    if let Some(lo) = min {
        nat.addrs = Some((lo, max.unwrap_or(lo)));
    }
    let pmin = if present & NAT_RANGE_PROTO_MIN != 0 { Some(r.u16()?) } else { None };
    let pmax = if present & NAT_RANGE_PROTO_MAX != 0 { Some(r.u16()?) } else { None };
    if let Some(lo) = pmin.filter(|p| *p != 0 && nat.addrs.is_some()) {
        nat.ports = Some((lo, pmax.filter(|p| *p != 0).unwrap_or(lo)));
    }
    let rest = r.take(r.remaining())?;
    if rest.iter().any(|b| *b != 0) {
        return Err(r.invalid("nonzero padding in nat"));
    }
    Ok(nat)
}

pub(super) fn encode_ct(ct: &Ct, out: &mut Vec<u8>) {
    let h = begin_nx(out, nxast::CT);
    let flags = if ct.commit { CT_F_COMMIT } else { 0 } | if ct.force { CT_F_FORCE } else { 0 };
    out.put_u16(flags);
    match ct.zone {
        CtZone::Imm(z) => {
            out.put_u32(0);
            out.put_u16(z);
        }
        CtZone::Field(r) => {
            out.put_u32(nicira_header32(r.field));
            out.put_u16(ofs_nbits_of(&r));
        }
    }
    out.put_u8(ct.table.unwrap_or(NO_TABLE));
    out.put_zeros(3);
    out.put_u16(ct.alg);
    if let Some(nat) = &ct.nat {
        encode_nat(nat, out);
    }
    encode_actions(&ct.exec, out);
    end(out, h);
}

pub(super) fn encode_nat(nat: &Nat, out: &mut Vec<u8>) {
    let h = begin_nx(out, nxast::NAT);
    out.put_zeros(2);
    let mut flags = match nat.kind {
        Some(NatKind::Src) => NAT_F_SRC,
        Some(NatKind::Dst) => NAT_F_DST,
        None => 0,
    };
    if nat.persistent {
        flags |= NAT_F_PERSISTENT;
    }
    if nat.hash {
        flags |= NAT_F_HASH;
    }
    if nat.random {
        flags |= NAT_F_RANDOM;
    }
    out.put_u16(flags);
    let present_at = out.len();
    out.put_u16(0);
    let mut present = 0u16;
    match nat.addrs {
        Some((IpAddr::V4(lo), hi)) => {
            if !lo.is_unspecified() {
                out.put_u32(lo.into());
                present |= NAT_RANGE_IPV4_MIN;
            }
            if let IpAddr::V4(hi) = hi
                && !hi.is_unspecified() && hi != lo {
                    out.put_u32(hi.into());
                    present |= NAT_RANGE_IPV4_MAX;
                }
        }
        Some((IpAddr::V6(lo), hi)) => {
            if !lo.is_unspecified() {
                out.extend_from_slice(&lo.octets());
                present |= NAT_RANGE_IPV6_MIN;
            }
            if let IpAddr::V6(hi) = hi
                && !hi.is_unspecified() && hi != lo {
                    out.extend_from_slice(&hi.octets());
                    present |= NAT_RANGE_IPV6_MAX;
                }
        }
        None => {}
    }
    if nat.addrs.is_some()
        && let Some((lo, hi)) = nat.ports {
            if lo != 0 {
                out.put_u16(lo);
                present |= NAT_RANGE_PROTO_MIN;
            }
            if hi != 0 && hi != lo {
                out.put_u16(hi);
                present |= NAT_RANGE_PROTO_MAX;
            }
        }
    out[present_at..present_at + 2].copy_from_slice(&present.to_be_bytes());
    end(out, h);
}

