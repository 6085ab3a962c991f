//! Groups: GROUP_MOD bodies (OpenFlow 1.5, with bucket ids and bucket properties) and the
//! buckets that GROUP_DESC replies carry too.

use super::action::{decode_actions, encode_actions};
use super::{DecodeError, DecodeErrorKind, Put, Reader, len_placeholder, patch_len};
use crate::action::Action;
use crate::port::PortNo;

/// A group bucket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bucket {
    /// Bucket id.
    pub bucket_id: u32,
    /// Actions.
    pub actions: Vec<Action>,
    /// Weight (select groups).
    pub weight: Option<u16>,
    /// Liveness port (fast failover).
    pub watch_port: Option<PortNo>,
    /// Liveness group (fast failover).
    pub watch_group: Option<u32>,
}

/// Group types (OFPGT_*).
#[allow(missing_docs)]
pub mod group_type {
    pub const ALL: u8 = 0;
    pub const SELECT: u8 = 1;
    pub const INDIRECT: u8 = 2;
    pub const FAST_FAILOVER: u8 = 3;
}

/// A group modification (or a group description from a GROUP_DESC reply).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupMod {
    /// OFPGC15_* (0 add, 1 modify, 2 delete, 3 insert bucket, 5 remove bucket).
    pub command: u16,
    /// [`group_type`].
    pub group_type: u8,
    /// The group.
    pub group_id: u32,
    /// Bucket id for insert/remove bucket.
    pub command_bucket_id: u32,
    /// The buckets.
    pub buckets: Vec<Bucket>,
}

/// Decodes a GROUP_MOD body. Group properties are skipped: weir does not use them.
pub fn decode_group_mod(r: &mut Reader<'_>) -> Result<GroupMod, DecodeError> {
    let command = r.u16()?;
    let group_type = r.u8()?;
    r.skip(1)?;
    let group_id = r.u32()?;
    let blen = usize::from(r.u16()?);
    r.skip(2)?;
    let command_bucket_id = r.u32()?;
    let mut b = r.sub(blen, "buckets")?;
    let buckets = decode_buckets(&mut b)?;
    r.skip(r.remaining())?;
    Ok(GroupMod { command, group_type, group_id, command_bucket_id, buckets })
}

/// Encodes a GROUP_MOD body.
pub fn encode_group_mod(g: &GroupMod, out: &mut Vec<u8>) {
    out.put_u16(g.command);
    out.put_u8(g.group_type);
    out.put_u8(0);
    out.put_u32(g.group_id);
    let at = len_placeholder(out);
    out.put_zeros(2);
    out.put_u32(g.command_bucket_id);
    let bstart = out.len();
    encode_buckets(&g.buckets, out);
    let blen = (out.len() - bstart) as u16;
    out[at..at + 2].copy_from_slice(&blen.to_be_bytes());
}

/// Decodes OpenFlow 1.5 buckets filling the reader.
pub fn decode_buckets(r: &mut Reader<'_>) -> Result<Vec<Bucket>, DecodeError> {
    let mut buckets = Vec::new();
    while r.remaining() > 0 {
        let len = usize::from(r.u16()?);
        let alen = usize::from(r.u16()?);
        if len < 8 + alen {
            return Err(r.err(DecodeErrorKind::BadLength(len)));
        }
        let bucket_id = r.u32()?;
        let mut a = r.sub(alen, "bucket actions")?;
        let actions = decode_actions(&mut a)?;
        let mut props = r.sub(len - 8 - alen, "bucket properties")?;
        let mut b = Bucket { bucket_id, actions, weight: None, watch_port: None, watch_group: None };
        while props.remaining() > 0 {
            let ptype = props.u16()?;
            let plen = usize::from(props.u16()?);
            if plen < 4 {
                return Err(props.err(DecodeErrorKind::BadLength(plen)));
            }
            let mut p = props.sub(plen - 4, "bucket property")?;
            match ptype {
                0 => b.weight = Some(p.u16()?),
                1 => b.watch_port = Some(PortNo(p.u32()?)),
                2 => b.watch_group = Some(p.u32()?),
                _ => {}
            }
            p.skip(p.remaining())?;
            props.skip(((8 - plen % 8) % 8).min(props.remaining()))?;
        }
        buckets.push(b);
    }
    Ok(buckets)
}

/// Encodes OpenFlow 1.5 buckets as OVS does.
pub fn encode_buckets(buckets: &[Bucket], out: &mut Vec<u8>) {
    for b in buckets {
        let start = out.len();
        let at = len_placeholder(out);
        let aat = len_placeholder(out);
        out.put_u32(b.bucket_id);
        let astart = out.len();
        encode_actions(&b.actions, out);
        let alen = (out.len() - astart) as u16;
        out[aat..aat + 2].copy_from_slice(&alen.to_be_bytes());
        if let Some(w) = b.weight {
            out.put_u16(0);
            out.put_u16(6);
            out.put_u16(w);
            out.put_zeros(2);
        }
        if let Some(p) = b.watch_port {
            out.put_u16(1);
            out.put_u16(8);
            out.put_u32(p.0);
        }
        if let Some(g) = b.watch_group {
            out.put_u16(2);
            out.put_u16(8);
            out.put_u32(g);
        }
        patch_len(out, at, start);
    }
}
