//! Multipart (stats) requests and replies used by weir: flow descriptions, aggregate, table
//! stats, port descriptions, group descriptions, meter descriptions and stats, switch
//! description.

use super::codes::multipart_type as mp;
use super::meter::{MeterFeatures, MeterMod, MeterStats, decode_meter_descs, decode_meter_stats, encode_meter_descs, encode_meter_stats};
use super::message::{GroupMod, PortDesc, decode_buckets, decode_port, encode_buckets, encode_port, pad_to_8};
use super::instruction::{decode_instructions, encode_instructions};
use super::oxm::{decode_match, encode_match};
use super::{DecodeError, DecodeErrorKind, Put, Reader, len_placeholder, patch_len};
use crate::flow::{ALL_TABLES, Flow, FlowFlags, GROUP_ANY};
use crate::flow_match::Match;
use crate::port::PortNo;

/// Which flows a flow-stats or aggregate request selects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowStatsRequest {
    /// Table, or [`ALL_TABLES`].
    pub table_id: u8,
    /// Only flows that output to this port (ANY = all).
    pub out_port: PortNo,
    /// Only flows that use this group (GROUP_ANY = all).
    pub out_group: u32,
    /// Cookie value.
    pub cookie: u64,
    /// Which cookie bits must match.
    pub cookie_mask: u64,
    /// Flows whose match is at least as specific as this.
    pub matches: Match,
}

impl Default for FlowStatsRequest {
    fn default() -> Self {
        FlowStatsRequest { table_id: ALL_TABLES, out_port: PortNo::ANY, out_group: GROUP_ANY, cookie: 0, cookie_mask: 0, matches: Match::new() }
    }
}

/// One flow in a flow-stats reply.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowStats {
    /// The flow.
    pub flow: Flow,
    /// Age, seconds.
    pub duration_sec: u32,
    /// Age, nanoseconds beyond the seconds.
    pub duration_nsec: u32,
    /// Seconds since last hit, if reported.
    pub idle_age: Option<u32>,
    /// Packets.
    pub packet_count: u64,
    /// Bytes.
    pub byte_count: u64,
}

/// A table's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TableStats {
    /// Table id.
    pub table_id: u8,
    /// Flows in the table.
    pub active_count: u32,
    /// Packets looked up.
    pub lookup_count: u64,
    /// Packets that hit.
    pub matched_count: u64,
}

/// The switch description strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SwitchDesc {
    /// Manufacturer.
    pub mfr: String,
    /// Hardware.
    pub hw: String,
    /// Software.
    pub sw: String,
    /// Serial number.
    pub serial: String,
    /// Datapath description.
    pub dp: String,
}

/// A multipart request body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MultipartRequest {
    /// OFPMP_DESC.
    Desc,
    /// OFPMP_FLOW_DESC.
    FlowDesc(FlowStatsRequest),
    /// OFPMP_AGGREGATE_STATS.
    Aggregate(FlowStatsRequest),
    /// OFPMP_TABLE_STATS.
    TableStats,
    /// OFPMP_PORT_DESC for one port or ANY.
    PortDesc(PortNo),
    /// OFPMP_GROUP_DESC for one group or ALL (0xfffffffc).
    GroupDesc(u32),
    /// OFPMP_METER_DESC for one meter or ALL (0xffffffff).
    MeterDesc(u32),
    /// OFPMP_METER_STATS for one meter or ALL (0xffffffff).
    MeterStats(u32),
    /// OFPMP_METER_FEATURES.
    MeterFeatures,
    /// Anything else, undecoded.
    Other {
        /// OFPMP_*.
        mp_type: u16,
        /// Body.
        body: Vec<u8>,
    },
}

/// One part of a multipart reply.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MultipartReply {
    /// OFPMP_DESC.
    Desc(SwitchDesc),
    /// OFPMP_FLOW_DESC.
    FlowDesc(Vec<FlowStats>),
    /// OFPMP_AGGREGATE_STATS.
    Aggregate {
        /// Packets.
        packet_count: u64,
        /// Bytes.
        byte_count: u64,
        /// Flows.
        flow_count: u32,
    },
    /// OFPMP_TABLE_STATS.
    TableStats(Vec<TableStats>),
    /// OFPMP_PORT_DESC.
    PortDesc(Vec<PortDesc>),
    /// OFPMP_GROUP_DESC (`command` and `command_bucket_id` unused).
    GroupDesc(Vec<GroupMod>),
    /// OFPMP_METER_DESC (`command` unused).
    MeterDesc(Vec<MeterMod>),
    /// OFPMP_METER_STATS.
    MeterStats(Vec<MeterStats>),
    /// OFPMP_METER_FEATURES.
    MeterFeatures(MeterFeatures),
    /// Anything else, undecoded.
    Other {
        /// OFPMP_*.
        mp_type: u16,
        /// Body.
        body: Vec<u8>,
    },
}

fn decode_flow_req(r: &mut Reader<'_>) -> Result<FlowStatsRequest, DecodeError> {
    let table_id = r.u8()?;
    r.skip(3)?;
    let out_port = PortNo(r.u32()?);
    let out_group = r.u32()?;
    r.skip(4)?;
    let cookie = r.u64()?;
    let cookie_mask = r.u64()?;
    Ok(FlowStatsRequest { table_id, out_port, out_group, cookie, cookie_mask, matches: decode_match(r)? })
}

fn encode_flow_req(q: &FlowStatsRequest, out: &mut Vec<u8>) {
    out.put_u8(q.table_id);
    out.put_zeros(3);
    out.put_u32(q.out_port.0);
    out.put_u32(q.out_group);
    out.put_zeros(4);
    out.put_u64(q.cookie);
    out.put_u64(q.cookie_mask);
    encode_match(&q.matches, out);
}

impl MultipartRequest {
    /// OFPMP_*.
    pub fn mp_type(&self) -> u16 {
        match self {
            MultipartRequest::Desc => mp::DESC,
            MultipartRequest::FlowDesc(_) => mp::FLOW_DESC,
            MultipartRequest::Aggregate(_) => mp::AGGREGATE_STATS,
            MultipartRequest::TableStats => mp::TABLE_STATS,
            MultipartRequest::PortDesc(_) => mp::PORT_DESC,
            MultipartRequest::GroupDesc(_) => mp::GROUP_DESC,
            MultipartRequest::MeterDesc(_) => mp::METER_DESC,
            MultipartRequest::MeterStats(_) => mp::METER_STATS,
            MultipartRequest::MeterFeatures => mp::METER_FEATURES,
            MultipartRequest::Other { mp_type, .. } => *mp_type,
        }
    }

    /// Decodes the body of a request of type `mp_type`.
    pub fn decode(mp_type: u16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match mp_type {
            mp::DESC => MultipartRequest::Desc,
            mp::FLOW_DESC => MultipartRequest::FlowDesc(decode_flow_req(r)?),
            mp::AGGREGATE_STATS => MultipartRequest::Aggregate(decode_flow_req(r)?),
            mp::TABLE_STATS => MultipartRequest::TableStats,
            mp::METER_FEATURES => MultipartRequest::MeterFeatures,
            mp::PORT_DESC => {
                let p = PortNo(r.u32()?);
                r.skip(4)?;
                MultipartRequest::PortDesc(p)
            }
            mp::GROUP_DESC => {
                let g = r.u32()?;
                r.skip(4)?;
                MultipartRequest::GroupDesc(g)
            }
            mp::METER_DESC | mp::METER_STATS => {
                let m = r.u32()?;
                r.skip(4)?;
                if mp_type == mp::METER_DESC { MultipartRequest::MeterDesc(m) } else { MultipartRequest::MeterStats(m) }
            }
            other => MultipartRequest::Other { mp_type: other, body: r.take(r.remaining())?.to_vec() },
        })
    }

    /// Encodes the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            MultipartRequest::Desc | MultipartRequest::TableStats | MultipartRequest::MeterFeatures => {}
            MultipartRequest::FlowDesc(q) | MultipartRequest::Aggregate(q) => encode_flow_req(q, out),
            MultipartRequest::PortDesc(p) => {
                out.put_u32(p.0);
                out.put_zeros(4);
            }
            MultipartRequest::GroupDesc(id) | MultipartRequest::MeterDesc(id) | MultipartRequest::MeterStats(id) => {
                out.put_u32(*id);
                out.put_zeros(4);
            }
            MultipartRequest::Other { body, .. } => out.extend_from_slice(body),
        }
    }
}

/// OXS stat fields (class OFPXSC_OPENFLOW_BASIC = 0x8002).
mod oxs {
    pub const CLASS: u16 = 0x8002;
    pub const DURATION: u8 = 0;
    pub const IDLE_TIME: u8 = 1;
    pub const FLOW_COUNT: u8 = 3;
    pub const PACKET_COUNT: u8 = 4;
    pub const BYTE_COUNT: u8 = 5;
}

#[derive(Default)]
struct OxsStats {
    duration: Option<u64>,
    idle: Option<u64>,
    flow_count: Option<u32>,
    packets: Option<u64>,
    bytes: Option<u64>,
}

fn decode_oxs(r: &mut Reader<'_>) -> Result<OxsStats, DecodeError> {
    r.skip(2)?;
    let len = usize::from(r.u16()?);
    if len < 4 {
        return Err(r.err(DecodeErrorKind::BadLength(len)));
    }
    let mut s = r.sub(len - 4, "ofp_oxs_stat")?;
    r.skip((8 - len % 8) % 8)?;
    let mut stats = OxsStats::default();
    while s.remaining() > 0 {
        let class = s.u16()?;
        let f = s.u8()? >> 1;
        let plen = usize::from(s.u8()?);
        let mut p = s.sub(plen, "OXS entry")?;
        if class == oxs::CLASS {
            match (f, plen) {
                (oxs::DURATION, 8) => stats.duration = Some(p.u64()?),
                (oxs::IDLE_TIME, 8) => stats.idle = Some(p.u64()?),
                (oxs::FLOW_COUNT, 4) => stats.flow_count = Some(p.u32()?),
                (oxs::PACKET_COUNT, 8) => stats.packets = Some(p.u64()?),
                (oxs::BYTE_COUNT, 8) => stats.bytes = Some(p.u64()?),
                _ => {}
            }
        }
        p.skip(p.remaining())?;
    }
    Ok(stats)
}

fn encode_oxs(entries: &[(u8, u64, usize)], out: &mut Vec<u8>) {
    let start = out.len();
    out.put_u16(0);
    let at = len_placeholder(out);
    for (f, v, n) in entries {
        out.put_u16(oxs::CLASS);
        out.put_u8(f << 1);
        out.put_u8(*n as u8);
        out.extend_from_slice(&v.to_be_bytes()[8 - n..]);
    }
    patch_len(out, at, start);
    pad_to_8(out, start);
}

fn decode_flow_stats(r: &mut Reader<'_>) -> Result<FlowStats, DecodeError> {
    let len = usize::from(r.u16()?);
    if len < 24 {
        return Err(r.err(DecodeErrorKind::BadLength(len)));
    }
    let mut e = r.sub(len - 2, "flow_desc")?;
    e.skip(2)?;
    let table_id = e.u8()?;
    e.skip(1)?;
    let priority = e.u16()?;
    let idle_timeout = e.u16()?;
    let hard_timeout = e.u16()?;
    let flags = FlowFlags(e.u16()?);
    let importance = e.u16()?;
    let cookie = e.u64()?;
    let matches = decode_match(&mut e)?;
    let s = decode_oxs(&mut e)?;
    let mut ir = e.sub(e.remaining(), "flow_desc instructions")?;
    let instructions = decode_instructions(&mut ir)?;
    let duration = s.duration.unwrap_or(0);
    Ok(FlowStats {
        flow: Flow { table_id, priority, matches, cookie, idle_timeout, hard_timeout, importance, flags, instructions },
        duration_sec: (duration >> 32) as u32,
        duration_nsec: duration as u32,
        idle_age: s.idle.map(|i| (i >> 32) as u32),
        packet_count: s.packets.unwrap_or(0),
        byte_count: s.bytes.unwrap_or(0),
    })
}

fn encode_flow_stats(fs: &FlowStats, out: &mut Vec<u8>) {
    let f = &fs.flow;
    let start = out.len();
    let at = len_placeholder(out);
    out.put_zeros(2);
    out.put_u8(f.table_id);
    out.put_u8(0);
    out.put_u16(f.priority);
    out.put_u16(f.idle_timeout);
    out.put_u16(f.hard_timeout);
    out.put_u16(f.flags.0);
    out.put_u16(f.importance);
    out.put_u64(f.cookie);
    encode_match(&f.matches, out);
    let mut entries = vec![(oxs::DURATION, u64::from(fs.duration_sec) << 32 | u64::from(fs.duration_nsec), 8)];
    if let Some(i) = fs.idle_age {
        entries.push((oxs::IDLE_TIME, u64::from(i) << 32, 8));
    }
    entries.push((oxs::PACKET_COUNT, fs.packet_count, 8));
    entries.push((oxs::BYTE_COUNT, fs.byte_count, 8));
    encode_oxs(&entries, out);
    encode_instructions(&f.instructions, out);
    patch_len(out, at, start);
}

fn fixed_str(r: &mut Reader<'_>, n: usize) -> Result<String, DecodeError> {
    Ok(super::fixed_ascii(r.take(n)?))
}

fn put_fixed_str(out: &mut Vec<u8>, s: &str, n: usize) {
    let k = s.len().min(n - 1);
    out.extend_from_slice(&s.as_bytes()[..k]);
    out.put_zeros(n - k);
}

impl MultipartReply {
    /// OFPMP_*.
    pub fn mp_type(&self) -> u16 {
        match self {
            MultipartReply::Desc(_) => mp::DESC,
            MultipartReply::FlowDesc(_) => mp::FLOW_DESC,
            MultipartReply::Aggregate { .. } => mp::AGGREGATE_STATS,
            MultipartReply::TableStats(_) => mp::TABLE_STATS,
            MultipartReply::PortDesc(_) => mp::PORT_DESC,
            MultipartReply::GroupDesc(_) => mp::GROUP_DESC,
            MultipartReply::MeterDesc(_) => mp::METER_DESC,
            MultipartReply::MeterStats(_) => mp::METER_STATS,
            MultipartReply::MeterFeatures(_) => mp::METER_FEATURES,
            MultipartReply::Other { mp_type, .. } => *mp_type,
        }
    }

    /// Decodes the body of a reply part of type `mp_type`.
    pub fn decode(mp_type: u16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match mp_type {
            mp::DESC => MultipartReply::Desc(SwitchDesc {
                mfr: fixed_str(r, 256)?,
                hw: fixed_str(r, 256)?,
                sw: fixed_str(r, 256)?,
                serial: fixed_str(r, 32)?,
                dp: fixed_str(r, 256)?,
            }),
            mp::FLOW_DESC => {
                let mut flows = Vec::new();
                while r.remaining() > 0 {
                    flows.push(decode_flow_stats(r)?);
                }
                MultipartReply::FlowDesc(flows)
            }
            mp::AGGREGATE_STATS => {
                let s = decode_oxs(r)?;
                MultipartReply::Aggregate {
                    packet_count: s.packets.unwrap_or(0),
                    byte_count: s.bytes.unwrap_or(0),
                    flow_count: s.flow_count.unwrap_or(0),
                }
            }
            mp::TABLE_STATS => {
                let mut v = Vec::new();
                while r.remaining() > 0 {
                    let table_id = r.u8()?;
                    r.skip(3)?;
                    v.push(TableStats { table_id, active_count: r.u32()?, lookup_count: r.u64()?, matched_count: r.u64()? });
                }
                MultipartReply::TableStats(v)
            }
            mp::PORT_DESC => {
                let mut v = Vec::new();
                while r.remaining() > 0 {
                    v.push(decode_port(r)?);
                }
                MultipartReply::PortDesc(v)
            }
            mp::GROUP_DESC => {
                let mut v = Vec::new();
                while r.remaining() > 0 {
                    let len = usize::from(r.u16()?);
                    if len < 16 {
                        return Err(r.err(DecodeErrorKind::BadLength(len)));
                    }
                    let mut g = r.sub(len - 2, "group_desc")?;
                    let group_type = g.u8()?;
                    g.skip(1)?;
                    let group_id = g.u32()?;
                    let blen = usize::from(g.u16()?);
                    g.skip(6)?;
                    let mut b = g.sub(blen, "buckets")?;
                    let buckets = decode_buckets(&mut b)?;
                    g.skip(g.remaining())?;
                    v.push(GroupMod { command: 0, group_type, group_id, command_bucket_id: 0, buckets });
                }
                MultipartReply::GroupDesc(v)
            }
            mp::METER_DESC => MultipartReply::MeterDesc(decode_meter_descs(r)?),
            mp::METER_STATS => MultipartReply::MeterStats(decode_meter_stats(r)?),
            mp::METER_FEATURES => MultipartReply::MeterFeatures(MeterFeatures::decode(r)?),
            other => MultipartReply::Other { mp_type: other, body: r.take(r.remaining())?.to_vec() },
        })
    }

    /// Encodes the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            MultipartReply::Desc(d) => {
                put_fixed_str(out, &d.mfr, 256);
                put_fixed_str(out, &d.hw, 256);
                put_fixed_str(out, &d.sw, 256);
                put_fixed_str(out, &d.serial, 32);
                put_fixed_str(out, &d.dp, 256);
            }
            MultipartReply::FlowDesc(flows) => {
                for f in flows {
                    encode_flow_stats(f, out);
                }
            }
            MultipartReply::Aggregate { packet_count, byte_count, flow_count } => encode_oxs(
                &[(oxs::FLOW_COUNT, u64::from(*flow_count), 4), (oxs::PACKET_COUNT, *packet_count, 8), (oxs::BYTE_COUNT, *byte_count, 8)],
                out,
            ),
            MultipartReply::TableStats(v) => {
                for t in v {
                    out.put_u8(t.table_id);
                    out.put_zeros(3);
                    out.put_u32(t.active_count);
                    out.put_u64(t.lookup_count);
                    out.put_u64(t.matched_count);
                }
            }
            MultipartReply::PortDesc(v) => {
                for p in v {
                    encode_port(p, out);
                }
            }
            MultipartReply::GroupDesc(v) => {
                for g in v {
                    let start = out.len();
                    let at = len_placeholder(out);
                    out.put_u8(g.group_type);
                    out.put_u8(0);
                    out.put_u32(g.group_id);
                    let bat = len_placeholder(out);
                    out.put_zeros(6);
                    let bstart = out.len();
                    encode_buckets(&g.buckets, out);
                    let blen = (out.len() - bstart) as u16;
                    out[bat..bat + 2].copy_from_slice(&blen.to_be_bytes());
                    patch_len(out, at, start);
                }
            }
            MultipartReply::MeterDesc(v) => encode_meter_descs(v, out),
            MultipartReply::MeterStats(v) => encode_meter_stats(v, out),
            MultipartReply::MeterFeatures(f) => f.encode(out),
            MultipartReply::Other { body, .. } => out.extend_from_slice(body),
        }
    }
}

/// OFPMP_TABLE_FEATURES.
pub const MP_TABLE_FEATURES: u16 = 12;

/// The (table id, name) of each `ofp_table_features` in a TABLE_FEATURES reply body; the
/// properties are skipped. OVS names a table by its `Flow_Table` row, else `table<N>`.
pub fn decode_table_feature_names(body: &[u8]) -> Result<Vec<(u8, String)>, DecodeError> {
    let mut r = Reader::new(body, "table features");
    let mut out = Vec::new();
    while r.remaining() > 0 {
        let len = usize::from(r.u16()?);
        if len < 64 {
            return Err(r.err(DecodeErrorKind::BadLength(len)));
        }
        let mut t = r.sub(len - 2, "table features")?;
        let table_id = t.u8()?;
        t.skip(5)?;
        let name = fixed_str(&mut t, 32)?;
        out.push((table_id, name));
    }
    Ok(out)
}
