//! Decoding tunnel encapsulations as they arrive at a collector: VXLAN (RFC 7348), GENEVE
//! (RFC 8926), GRE (RFC 2784/2890) with transparent Ethernet bridging, and ERSPAN type II
//! (version 1, GRE protocol 0x88be) and type III (version 2, 0x22eb) as OVS writes them
//! (`lib/packets.h`, `lib/netdev-native-tnl.c`). The result names the tunnel's identifiers
//! (VNI, key, session id, index, hardware id, direction) and carries the inner Ethernet frame.
//!
//! tcpdump does not decode ERSPAN, so the tests read it here. Input is untrusted: truncated or
//! malformed headers are a [`DecodeError`], never a panic.
use crate::packet::{DecodeError, ETH_P_TEB, Ipv4, Packet, Payload, be16, be32, ip_proto, take};
use std::net::Ipv4Addr;

/// GRE protocol type of ERSPAN type II (version 1).
pub const GRE_PROTO_ERSPAN1: u16 = 0x88be;
/// GRE protocol type of ERSPAN type III (version 2).
pub const GRE_PROTO_ERSPAN2: u16 = 0x22eb;
/// IANA UDP port of VXLAN.
pub const VXLAN_PORT: u16 = 4789;
/// IANA UDP port of GENEVE.
pub const GENEVE_PORT: u16 = 6081;

/// Byte offsets and bits of the tunnel headers.
mod field {
    use std::ops::Range;
    pub(super) const UDP_DST_PORT: Range<usize> = 2..4;
    pub(super) const UDP_LEN: usize = 8;

    /// VXLAN: flags byte (I = 0x08: the VNI is valid), 3 reserved, VNI (24 bits), 1 reserved.
    pub(super) const VXLAN_FLAGS: usize = 0;
    pub(super) const VXLAN_FLAG_I: u8 = 0x08;
    pub(super) const VXLAN_VNI: Range<usize> = 4..8;
    pub(super) const VXLAN_LEN: usize = 8;

    /// GENEVE: version (2 bits) and option length in 4-byte words (6 bits), flags, protocol
    /// type, VNI (24 bits), reserved; then the options.
    pub(super) const GENEVE_VER_OPTLEN: usize = 0;
    pub(super) const GENEVE_PROTO: Range<usize> = 2..4;
    pub(super) const GENEVE_VNI: Range<usize> = 4..8;
    pub(super) const GENEVE_LEN: usize = 8;

    /// GRE: flags and version, protocol type; then checksum (C), key (K), sequence (S), each
    /// 4 bytes and present when its flag is set, in that order.
    pub(super) const GRE_FLAGS: Range<usize> = 0..2;
    pub(super) const GRE_PROTO: Range<usize> = 2..4;
    pub(super) const GRE_BASE_LEN: usize = 4;
    pub(super) const GRE_C: u16 = 0x8000;
    pub(super) const GRE_K: u16 = 0x2000;
    pub(super) const GRE_S: u16 = 0x1000;
    pub(super) const GRE_VERSION: u16 = 0x0007;

    /// ERSPAN base header (both versions): version (4 bits), VLAN (12), COS (3), En/BSO (2),
    /// T (1), session id (10).
    pub(super) const ERSPAN_WORD0: Range<usize> = 0..4;
    pub(super) const ERSPAN_SESSION_MASK: u32 = 0x3ff;
    /// Type II: reserved (12 bits), index (20 bits).
    pub(super) const ERSPAN1_INDEX: Range<usize> = 4..8;
    pub(super) const ERSPAN1_INDEX_MASK: u32 = 0xfffff;
    pub(super) const ERSPAN1_LEN: usize = 8;
    /// Type III: timestamp (32 bits), then SGT (16), P (1), FT (5), hardware id (6), D (1),
    /// granularity (2), O (1: an 8-byte platform-specific subheader follows).
    pub(super) const ERSPAN2_WORD2: Range<usize> = 8..12;
    pub(super) const ERSPAN2_HWID_SHIFT: u32 = 4;
    pub(super) const ERSPAN2_HWID_MASK: u32 = 0x3f;
    pub(super) const ERSPAN2_DIR_BIT: u32 = 0x08;
    pub(super) const ERSPAN2_O_BIT: u32 = 0x01;
    pub(super) const ERSPAN2_LEN: usize = 12;
    pub(super) const ERSPAN2_PLATFORM_LEN: usize = 8;
}

/// A tunnel header and its identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Encap {
    /// VXLAN.
    Vxlan {
        /// The 24-bit VNI.
        vni: u32,
    },
    /// GENEVE.
    Geneve {
        /// The 24-bit VNI.
        vni: u32,
    },
    /// GRE carrying an Ethernet frame.
    Gre {
        /// The key, if the K bit is set.
        key: Option<u32>,
    },
    /// ERSPAN type II.
    ErspanV1 {
        /// The 10-bit session id.
        session_id: u16,
        /// The 20-bit index (port or module id of the source).
        index: u32,
    },
    /// ERSPAN type III.
    ErspanV2 {
        /// The 10-bit session id.
        session_id: u16,
        /// The 6-bit hardware id.
        hardware_id: u8,
        /// The direction bit (0 ingress, 1 egress at the source).
        dir: u8,
    },
}

impl std::fmt::Display for Encap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Encap::Vxlan { vni } => write!(f, "VXLAN vni {vni}"),
            Encap::Geneve { vni } => write!(f, "GENEVE vni {vni}"),
            Encap::Gre { key: Some(k) } => write!(f, "GRE key {k}"),
            Encap::Gre { key: None } => write!(f, "GRE (no key)"),
            Encap::ErspanV1 { session_id, index } => write!(f, "ERSPAN v1 session {session_id} index {index}"),
            Encap::ErspanV2 { session_id, hardware_id, dir } => {
                write!(f, "ERSPAN v2 session {session_id} hwid {hardware_id} dir {dir}")
            }
        }
    }
}

/// The UDP destination ports read as VXLAN and as GENEVE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpPorts {
    /// VXLAN ports.
    pub vxlan: Vec<u16>,
    /// GENEVE ports.
    pub geneve: Vec<u16>,
}

impl Default for UdpPorts {
    fn default() -> Self {
        UdpPorts { vxlan: vec![VXLAN_PORT], geneve: vec![GENEVE_PORT] }
    }
}

/// A tunnelled frame: outer addresses, the tunnel header, the inner Ethernet frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encapsulated {
    /// Outer source (the sending node).
    pub outer_src: Ipv4Addr,
    /// Outer destination (the collector).
    pub outer_dst: Ipv4Addr,
    /// The tunnel header.
    pub encap: Encap,
    /// The inner Ethernet frame.
    pub inner: Vec<u8>,
}

impl Encapsulated {
    /// The inner frame, decoded.
    pub fn inner_packet(&self) -> Result<Packet, DecodeError> {
        Packet::decode(&self.inner)
    }
}

/// Decodes an outer Ethernet frame. `Ok(None)`: not a tunnel this module knows (not IPv4, or
/// neither GRE nor UDP to one of `ports`); `Err`: it is one, but malformed.
pub fn decode(frame: &[u8], ports: &UdpPorts) -> Result<Option<Encapsulated>, DecodeError> {
    let outer = Packet::decode(frame)?;
    let Payload::Ipv4(ip) = outer.payload else { return Ok(None) };
    decode_ipv4(&ip, ports)
}

/// As [`decode`], from a decoded outer IPv4 packet.
pub fn decode_ipv4(ip: &Ipv4, ports: &UdpPorts) -> Result<Option<Encapsulated>, DecodeError> {
    let found = match ip.protocol {
        ip_proto::UDP => {
            let dst_port = be16(&ip.payload, field::UDP_DST_PORT, "UDP header")?;
            let body = &ip.payload[field::UDP_LEN..];
            if ports.vxlan.contains(&dst_port) {
                vxlan(body)?
            } else if ports.geneve.contains(&dst_port) {
                geneve(body)?
            } else {
                return Ok(None);
            }
        }
        ip_proto::GRE => gre(&ip.payload)?,
        _ => return Ok(None),
    };
    let (encap, inner) = found;
    Ok(Some(Encapsulated { outer_src: ip.src, outer_dst: ip.dst, encap, inner: inner.to_vec() }))
}

fn vxlan(b: &[u8]) -> Result<(Encap, &[u8]), DecodeError> {
    const H: &str = "VXLAN header";
    take(b, 0..field::VXLAN_LEN, H)?;
    if b[field::VXLAN_FLAGS] & field::VXLAN_FLAG_I == 0 {
        return Err(DecodeError::new(H, "the I flag (valid VNI) is not set"));
    }
    let vni = be32(b, field::VXLAN_VNI, H)? >> 8;
    Ok((Encap::Vxlan { vni }, &b[field::VXLAN_LEN..]))
}

fn geneve(b: &[u8]) -> Result<(Encap, &[u8]), DecodeError> {
    const H: &str = "GENEVE header";
    take(b, 0..field::GENEVE_LEN, H)?;
    let version = b[field::GENEVE_VER_OPTLEN] >> 6;
    if version != 0 {
        return Err(DecodeError::new(H, format!("version {version} is not 0")));
    }
    let options = usize::from(b[field::GENEVE_VER_OPTLEN] & 0x3f) * 4;
    let protocol = be16(b, field::GENEVE_PROTO, H)?;
    if protocol != ETH_P_TEB {
        return Err(DecodeError::new(H, format!("protocol type {protocol:#06x} is not Ethernet (0x6558)")));
    }
    let vni = be32(b, field::GENEVE_VNI, H)? >> 8;
    let start = field::GENEVE_LEN + options;
    let inner = b.get(start..).ok_or_else(|| DecodeError::short("GENEVE options", start, b.len()))?;
    Ok((Encap::Geneve { vni }, inner))
}

fn gre(b: &[u8]) -> Result<(Encap, &[u8]), DecodeError> {
    const H: &str = "GRE header";
    let flags = be16(b, field::GRE_FLAGS, H)?;
    if flags & field::GRE_VERSION != 0 {
        return Err(DecodeError::new(H, format!("version {} is not 0", flags & field::GRE_VERSION)));
    }
    let protocol = be16(b, field::GRE_PROTO, H)?;
    let mut at = field::GRE_BASE_LEN;
    if flags & field::GRE_C != 0 {
        at += 4;
    }
    let mut key = None;
    if flags & field::GRE_K != 0 {
        key = Some(be32(b, at..at + 4, H)?);
        at += 4;
    }
    if flags & field::GRE_S != 0 {
        at += 4;
    }
    let body = b.get(at..).ok_or_else(|| DecodeError::short(H, at, b.len()))?;
    match protocol {
        ETH_P_TEB => Ok((Encap::Gre { key }, body)),
        GRE_PROTO_ERSPAN1 => erspan_v1(body),
        GRE_PROTO_ERSPAN2 => erspan_v2(body),
        other => Err(DecodeError::new(H, format!("protocol type {other:#06x} is neither Ethernet nor ERSPAN"))),
    }
}

fn erspan_version(word0: u32, expected: u32, header: &'static str) -> Result<(), DecodeError> {
    let version = word0 >> 28;
    if version != expected {
        return Err(DecodeError::new(header, format!("version field {version} is not {expected}")));
    }
    Ok(())
}

fn erspan_v1(b: &[u8]) -> Result<(Encap, &[u8]), DecodeError> {
    const H: &str = "ERSPAN type II header";
    let word0 = be32(b, field::ERSPAN_WORD0, H)?;
    // The header's version field counts from 0: type II carries 1, type III carries 2.
    erspan_version(word0, 1, H)?;
    let index = be32(b, field::ERSPAN1_INDEX, H)? & field::ERSPAN1_INDEX_MASK;
    let session_id = (word0 & field::ERSPAN_SESSION_MASK) as u16;
    Ok((Encap::ErspanV1 { session_id, index }, &b[field::ERSPAN1_LEN..]))
}

fn erspan_v2(b: &[u8]) -> Result<(Encap, &[u8]), DecodeError> {
    const H: &str = "ERSPAN type III header";
    let word0 = be32(b, field::ERSPAN_WORD0, H)?;
    erspan_version(word0, 2, H)?;
    let word2 = be32(b, field::ERSPAN2_WORD2, H)?;
    let session_id = (word0 & field::ERSPAN_SESSION_MASK) as u16;
    let hardware_id = ((word2 >> field::ERSPAN2_HWID_SHIFT) & field::ERSPAN2_HWID_MASK) as u8;
    let dir = u8::from(word2 & field::ERSPAN2_DIR_BIT != 0);
    let mut start = field::ERSPAN2_LEN;
    if word2 & field::ERSPAN2_O_BIT != 0 {
        start += field::ERSPAN2_PLATFORM_LEN;
    }
    let inner = b.get(start..).ok_or_else(|| DecodeError::short("ERSPAN platform subheader", start, b.len()))?;
    Ok((Encap::ErspanV2 { session_id, hardware_id, dir }, inner))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::tests::sample_udp;
    use crate::spoof::internet_checksum;

    const NODE: [u8; 4] = [192, 168, 77, 11];
    const COLLECTOR: [u8; 4] = [192, 168, 77, 200];

    /// An outer Ethernet + IPv4 frame of protocol `proto` around `body`.
    fn outer(proto: u8, body: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 192, 168, 77, 200, 2, 0, 192, 168, 77, 11, 0x08, 0x00];
        let total = (20 + body.len()) as u16;
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
        ip.extend_from_slice(&NODE);
        ip.extend_from_slice(&COLLECTOR);
        let sum = internet_checksum(&[&ip]);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(body);
        f
    }

    fn udp(dst_port: u16, body: &[u8]) -> Vec<u8> {
        let mut u = vec![0xc3, 0x50];
        u.extend_from_slice(&dst_port.to_be_bytes());
        u.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(body);
        outer(ip_proto::UDP, &u)
    }

    fn decoded(frame: &[u8]) -> Encapsulated {
        let e = decode(frame, &UdpPorts::default()).unwrap().expect("a tunnel frame");
        assert_eq!((e.outer_src, e.outer_dst), (Ipv4Addr::from(NODE), Ipv4Addr::from(COLLECTOR)));
        assert_eq!(e.inner, sample_udp(), "the inner frame is returned whole");
        e
    }

    /// Every frame built here, for the truncation test.
    fn all_frames() -> Vec<Vec<u8>> {
        vec![vxlan_frame(), geneve_frame(), gre_frame(), erspan1_frame(), erspan2_frame(false), erspan2_frame(true)]
    }

    fn vxlan_frame() -> Vec<u8> {
        let mut h = vec![0x08, 0, 0, 0, 0x00, 0x13, 0x89, 0];
        h.extend_from_slice(&sample_udp());
        udp(4789, &h)
    }

    fn geneve_frame() -> Vec<u8> {
        // One 8-byte option (2 words) before the frame.
        let mut h = vec![0x02, 0, 0x65, 0x58, 0x00, 0x13, 0x8a, 0];
        h.extend_from_slice(&[0x01, 0x02, 0x03, 0x01, 0xde, 0xad, 0xbe, 0xef]);
        h.extend_from_slice(&sample_udp());
        udp(6081, &h)
    }

    fn gre_frame() -> Vec<u8> {
        // K and S set: key 7, then a sequence number.
        let mut h = vec![0x30, 0x00, 0x65, 0x58, 0, 0, 0, 7, 0, 0, 0, 42];
        h.extend_from_slice(&sample_udp());
        outer(ip_proto::GRE, &h)
    }

    fn erspan1_frame() -> Vec<u8> {
        // GRE with S (OVS's 8-byte GRE header), then version 1, session 9, index 3.
        let mut h = vec![0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 5];
        h.extend_from_slice(&[0x10, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x03]);
        h.extend_from_slice(&sample_udp());
        outer(ip_proto::GRE, &h)
    }

    fn erspan2_frame(platform: bool) -> Vec<u8> {
        // Version 2, session 0x20a (522); timestamp; SGT 0, hardware id 0x2c (44: upper two
        // bits 10, lower four 1100), D = 1, granularity 0b01, O as asked.
        let mut h = vec![0x10, 0x00, 0x22, 0xeb, 0, 0, 0, 5];
        let o = u8::from(platform);
        h.extend_from_slice(&[
            0x20,
            0x00,
            0x02,
            0x0a,
            0x12,
            0x34,
            0x56,
            0x78,
            0x00,
            0x00,
            0x02,
            0xc0 | 0x08 | 0x02 | o,
        ]);
        if platform {
            h.extend_from_slice(&[0xaa; 8]);
        }
        h.extend_from_slice(&sample_udp());
        outer(ip_proto::GRE, &h)
    }

    #[test]
    fn vxlan_gives_its_vni_and_the_inner_frame() {
        assert_eq!(decoded(&vxlan_frame()).encap, Encap::Vxlan { vni: 5001 });
    }

    #[test]
    fn geneve_skips_its_options_and_gives_its_vni() {
        assert_eq!(decoded(&geneve_frame()).encap, Encap::Geneve { vni: 5002 });
    }

    #[test]
    fn gre_with_key_and_sequence_gives_the_key() {
        assert_eq!(decoded(&gre_frame()).encap, Encap::Gre { key: Some(7) });
        let mut plain = vec![0x00, 0x00, 0x65, 0x58];
        plain.extend_from_slice(&sample_udp());
        assert_eq!(decoded(&outer(ip_proto::GRE, &plain)).encap, Encap::Gre { key: None });
    }

    #[test]
    fn erspan_type_two_gives_session_and_index() {
        assert_eq!(decoded(&erspan1_frame()).encap, Encap::ErspanV1 { session_id: 9, index: 3 });
    }

    #[test]
    fn erspan_type_three_gives_session_hardware_id_and_direction_with_or_without_platform_subheader() {
        let want = Encap::ErspanV2 { session_id: 522, hardware_id: 44, dir: 1 };
        assert_eq!(decoded(&erspan2_frame(false)).encap, want);
        assert_eq!(decoded(&erspan2_frame(true)).encap, want);
    }

    #[test]
    fn the_inner_frame_decodes_to_the_mirrored_packet() {
        let p = decoded(&erspan1_frame()).inner_packet().unwrap();
        assert_eq!(p.ipv4().unwrap().dst_port, Some(80));
    }

    #[test]
    fn udp_to_other_ports_and_other_protocols_are_not_tunnels() {
        let other = udp(53, b"not a tunnel");
        assert_eq!(decode(&other, &UdpPorts::default()), Ok(None));
        assert_eq!(decode(&sample_udp(), &UdpPorts::default()), Ok(None));
        // A configured port is decoded.
        let mut h = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        h.extend_from_slice(&sample_udp());
        let ports = UdpPorts { vxlan: vec![8472], geneve: vec![] };
        assert_eq!(decode(&udp(8472, &h), &ports).unwrap().unwrap().encap, Encap::Vxlan { vni: 1 });
    }

    #[test]
    fn malformed_tunnel_headers_are_errors_naming_the_header() {
        let mut v = vxlan_frame();
        v[14 + 20 + 8] = 0; // clear the I flag
        assert_eq!(decode(&v, &UdpPorts::default()).unwrap_err().header, "VXLAN header");
        let mut e = erspan1_frame();
        e[14 + 20 + 8] = 0x20; // version 2 in a type II header
        assert!(decode(&e, &UdpPorts::default()).unwrap_err().message.contains("version field 2"));
        let mut g = gre_frame();
        g[14 + 20 + 2] = 0x08; // protocol 0x0858
        assert!(decode(&g, &UdpPorts::default()).unwrap_err().message.contains("0x0858"));
    }

    #[test]
    fn no_truncation_of_any_tunnel_frame_panics() {
        for frame in all_frames() {
            for n in 0..frame.len() {
                // Short frames may still decode (the inner frame is cut), or fail; never panic.
                let _ = decode(&frame[..n], &UdpPorts::default());
            }
        }
    }
}
