//! Meters: METER_MOD bodies and the meter description (OFPMP_METER_DESC, OpenFlow 1.3's
//! METER_CONFIG) multipart, as `struct ofp_meter_mod` / `ofp_meter_desc` with their bands.

use super::{DecodeError, DecodeErrorKind, Put, Reader, len_placeholder, patch_len};

/// Meter ids with a meaning of their own (OFPM_*).
pub mod meter_id {
    /// The highest ordinary meter.
    pub const MAX: u32 = 0xffff_0000;
    /// The meter for packets sent to the slow datapath.
    pub const SLOWPATH: u32 = 0xffff_fffd;
    /// The meter for packets sent to the controller.
    pub const CONTROLLER: u32 = 0xffff_fffe;
    /// Every meter (requests and deletes).
    pub const ALL: u32 = 0xffff_ffff;
}

/// Meter-mod commands (OFPMC_*).
pub mod meter_command {
    /// Add a meter.
    pub const ADD: u16 = 0;
    /// Change a meter.
    pub const MODIFY: u16 = 1;
    /// Remove a meter.
    pub const DELETE: u16 = 2;
}

/// Meter flags (OFPMF_*).
pub mod meter_flags {
    /// Rates in kb/s.
    pub const KBPS: u16 = 1;
    /// Rates in packets/s.
    pub const PKTPS: u16 = 2;
    /// Bands have a burst size.
    pub const BURST: u16 = 4;
    /// Collect statistics.
    pub const STATS: u16 = 8;
}

/// Meter band types (OFPMBT_*).
pub mod band_type {
    /// Drop packets over the rate.
    pub const DROP: u16 = 1;
    /// Raise the drop precedence of the DSCP of packets over the rate.
    pub const DSCP_REMARK: u16 = 2;
}

/// A meter band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MeterBand {
    /// OFPMBT_* (1 drop, 2 dscp_remark).
    pub band_type: u16,
    /// Rate.
    pub rate: u32,
    /// Burst size.
    pub burst_size: u32,
    /// DSCP precedence increase (dscp_remark).
    pub prec_level: u8,
}

/// A meter modification, or (command 0) a meter's configuration in a METER_DESC reply.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MeterMod {
    /// OFPMC_* (0 add, 1 modify, 2 delete).
    pub command: u16,
    /// OFPMF_* flags (1 kbps, 2 pktps, 4 burst, 8 stats).
    pub flags: u16,
    /// The meter.
    pub meter_id: u32,
    /// The bands.
    pub bands: Vec<MeterBand>,
}

/// The fixed part of a band: type, length, rate, burst size.
const BAND_LEN: usize = 16;

/// Decodes the bands filling `r`.
pub fn decode_bands(r: &mut Reader<'_>) -> Result<Vec<MeterBand>, DecodeError> {
    let mut bands = Vec::new();
    while r.remaining() > 0 {
        let band_type = r.u16()?;
        let len = usize::from(r.u16()?);
        if len < BAND_LEN {
            return Err(r.err(DecodeErrorKind::BadLength(len)));
        }
        let rate = r.u32()?;
        let burst_size = r.u32()?;
        let mut rest = r.sub(len - 12, "meter band")?;
        let prec_level = if band_type == band_type::DSCP_REMARK { rest.u8()? } else { 0 };
        rest.skip(rest.remaining())?;
        bands.push(MeterBand { band_type, rate, burst_size, prec_level });
    }
    Ok(bands)
}

/// Encodes meter bands.
pub fn encode_bands(bands: &[MeterBand], out: &mut Vec<u8>) {
    for b in bands {
        out.put_u16(b.band_type);
        out.put_u16(BAND_LEN as u16);
        out.put_u32(b.rate);
        out.put_u32(b.burst_size);
        out.put_u8(b.prec_level);
        out.put_zeros(3);
    }
}

/// Decodes a METER_MOD body.
pub fn decode_meter_mod(r: &mut Reader<'_>) -> Result<MeterMod, DecodeError> {
    let command = r.u16()?;
    let flags = r.u16()?;
    let meter_id = r.u32()?;
    Ok(MeterMod { command, flags, meter_id, bands: decode_bands(r)? })
}

/// Encodes a METER_MOD body.
pub fn encode_meter_mod(m: &MeterMod, out: &mut Vec<u8>) {
    out.put_u16(m.command);
    out.put_u16(m.flags);
    out.put_u32(m.meter_id);
    encode_bands(&m.bands, out);
}

/// Decodes the `ofp_meter_desc` entries of a METER_DESC reply body (commands are 0).
pub fn decode_meter_descs(r: &mut Reader<'_>) -> Result<Vec<MeterMod>, DecodeError> {
    let mut v = Vec::new();
    while r.remaining() > 0 {
        let len = usize::from(r.u16()?);
        if len < 8 {
            return Err(r.err(DecodeErrorKind::BadLength(len)));
        }
        let flags = r.u16()?;
        let meter_id = r.u32()?;
        let mut b = r.sub(len - 8, "meter_desc bands")?;
        v.push(MeterMod { command: 0, flags, meter_id, bands: decode_bands(&mut b)? });
    }
    Ok(v)
}

/// Encodes `ofp_meter_desc` entries.
pub fn encode_meter_descs(meters: &[MeterMod], out: &mut Vec<u8>) {
    for m in meters {
        let start = out.len();
        let at = len_placeholder(out);
        out.put_u16(m.flags);
        out.put_u32(m.meter_id);
        encode_bands(&m.bands, out);
        patch_len(out, at, start);
    }
}

/// What the switch's meters can do (OFPMP_METER_FEATURES, `ofp_meter_features`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MeterFeatures {
    /// The largest meter id.
    pub max_meter: u32,
    /// Supported band types, bit `1 << t` for each [`band_type`] `t`.
    pub band_types: u32,
    /// Supported [`meter_flags`].
    pub capabilities: u32,
    /// Most bands per meter.
    pub max_bands: u8,
    /// Most colors (OVS: 0).
    pub max_color: u8,
}

impl MeterFeatures {
    /// Decodes the 16-byte reply body.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let f = MeterFeatures {
            max_meter: r.u32()?,
            band_types: r.u32()?,
            capabilities: r.u32()?,
            max_bands: r.u8()?,
            max_color: r.u8()?,
        };
        r.skip(2)?;
        Ok(f)
    }

    /// Encodes the reply body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.max_meter);
        out.put_u32(self.band_types);
        out.put_u32(self.capabilities);
        out.put_u8(self.max_bands);
        out.put_u8(self.max_color);
        out.put_zeros(2);
    }
}

/// A meter's statistics (OFPMP_METER_STATS).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MeterStats {
    /// The meter.
    pub meter_id: u32,
    /// Flows using the meter.
    pub flow_count: u32,
    /// Packets that entered the meter.
    pub packet_in_count: u64,
    /// Bytes that entered the meter.
    pub byte_in_count: u64,
    /// Age in seconds.
    pub duration_sec: u32,
    /// Age beyond `duration_sec`, in nanoseconds.
    pub duration_nsec: u32,
    /// Per band, in band order: (packets, bytes) over the band's rate.
    pub bands: Vec<(u64, u64)>,
}

/// The fixed part of `ofp_meter_stats`.
const METER_STATS_LEN: usize = 40;

/// Decodes the `ofp_meter_stats` entries of a METER_STATS reply body.
pub fn decode_meter_stats(r: &mut Reader<'_>) -> Result<Vec<MeterStats>, DecodeError> {
    let mut v = Vec::new();
    while r.remaining() > 0 {
        let meter_id = r.u32()?;
        let len = usize::from(r.u16()?);
        if len < METER_STATS_LEN || !(len - METER_STATS_LEN).is_multiple_of(16) {
            return Err(r.err(DecodeErrorKind::BadLength(len)));
        }
        let mut m = r.sub(len - 6, "meter_stats")?;
        m.skip(6)?;
        let mut stats = MeterStats {
            meter_id,
            flow_count: m.u32()?,
            packet_in_count: m.u64()?,
            byte_in_count: m.u64()?,
            duration_sec: m.u32()?,
            duration_nsec: m.u32()?,
            bands: Vec::new(),
        };
        while m.remaining() > 0 {
            stats.bands.push((m.u64()?, m.u64()?));
        }
        v.push(stats);
    }
    Ok(v)
}

/// Encodes `ofp_meter_stats` entries.
pub fn encode_meter_stats(stats: &[MeterStats], out: &mut Vec<u8>) {
    for m in stats {
        out.put_u32(m.meter_id);
        out.put_u16((METER_STATS_LEN + 16 * m.bands.len()) as u16);
        out.put_zeros(6);
        out.put_u32(m.flow_count);
        out.put_u64(m.packet_in_count);
        out.put_u64(m.byte_in_count);
        out.put_u32(m.duration_sec);
        out.put_u32(m.duration_nsec);
        for (packets, bytes) in &m.bands {
            out.put_u64(*packets);
            out.put_u64(*bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_descriptions_survive_encode_and_decode() {
        let meters = vec![
            MeterMod { command: 0, flags: meter_flags::KBPS | meter_flags::BURST, meter_id: 1, bands: vec![
                MeterBand { band_type: band_type::DROP, rate: 100, burst_size: 10, prec_level: 0 },
            ] },
            MeterMod { command: 0, flags: meter_flags::PKTPS, meter_id: 7, bands: vec![
                MeterBand { band_type: band_type::DSCP_REMARK, rate: 5, burst_size: 0, prec_level: 2 },
                MeterBand { band_type: band_type::DROP, rate: 9, burst_size: 0, prec_level: 0 },
            ] },
        ];
        let mut out = Vec::new();
        encode_meter_descs(&meters, &mut out);
        assert_eq!(out.len(), 8 + 16 + 8 + 32);
        assert_eq!(decode_meter_descs(&mut Reader::new(&out, "test")).unwrap(), meters);
    }

    #[test]
    fn meter_stats_survive_encode_and_decode() {
        let stats = vec![
            MeterStats { meter_id: 3, flow_count: 2, packet_in_count: 10, byte_in_count: 1500, duration_sec: 7, duration_nsec: 5_000_000, bands: vec![(1, 60), (0, 0)] },
            MeterStats { meter_id: 4, flow_count: 0, packet_in_count: 0, byte_in_count: 0, duration_sec: 0, duration_nsec: 0, bands: vec![] },
        ];
        let mut out = Vec::new();
        encode_meter_stats(&stats, &mut out);
        assert_eq!(out.len(), 40 + 32 + 40);
        assert_eq!(decode_meter_stats(&mut Reader::new(&out, "test")).unwrap(), stats);
    }

    #[test]
    fn a_meter_description_shorter_than_its_header_is_an_error() {
        let bytes = [0, 4, 0, 1, 0, 0, 0, 1];
        assert!(matches!(decode_meter_descs(&mut Reader::new(&bytes, "test")).unwrap_err().kind, DecodeErrorKind::BadLength(4)));
    }
}
