//! The two SCTP packets a probe needs (RFC 9260): the client's INIT and the server's INIT-ACK,
//! each a 12-byte common header plus one chunk, protected by CRC32c. This kernel has no SCTP
//! sockets, so probes send and receive these on raw IPPROTO_SCTP sockets.
//!
//! [`Handshake`] is the meaningful content (the `Repr`); [`Handshake::emit`] writes a packet
//! with a correct checksum and [`Handshake::parse`] checks length, checksum and chunk layout
//! of untrusted bytes and never panics.
use std::net::Ipv4Addr;

/// Byte ranges of the common header and of the INIT / INIT-ACK chunk that follows it.
mod field {
    use std::ops::Range;
    pub(super) const SRC_PORT: Range<usize> = 0..2;
    pub(super) const DST_PORT: Range<usize> = 2..4;
    pub(super) const VERIFICATION_TAG: Range<usize> = 4..8;
    pub(super) const CHECKSUM: Range<usize> = 8..12;
    pub(super) const CHUNK_TYPE: usize = 12;
    pub(super) const CHUNK_FLAGS: usize = 13;
    pub(super) const CHUNK_LENGTH: Range<usize> = 14..16;
    pub(super) const INITIATE_TAG: Range<usize> = 16..20;
    pub(super) const A_RWND: Range<usize> = 20..24;
    pub(super) const OUTBOUND_STREAMS: Range<usize> = 24..26;
    pub(super) const INBOUND_STREAMS: Range<usize> = 26..28;
    pub(super) const INITIAL_TSN: Range<usize> = 28..32;
    /// Where optional/variable parameters start.
    pub(super) const PARAMS: usize = 32;
}

/// Common header plus the fixed part of an INIT or INIT-ACK chunk.
pub const MIN_LEN: usize = field::PARAMS;
/// Chunk type of INIT.
pub const CHUNK_INIT: u8 = 1;
/// Chunk type of INIT ACK.
pub const CHUNK_INIT_ACK: u8 = 2;
/// Parameter type of the State Cookie, mandatory in INIT ACK.
pub const PARAM_STATE_COOKIE: u16 = 7;
/// IP protocol number of SCTP.
pub const IPPROTO_SCTP: i32 = 132;

/// Which of the two chunks a packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// INIT, sent by the client with verification tag 0.
    Init,
    /// INIT ACK, sent back with the INIT's initiate tag as verification tag.
    InitAck,
}

/// An INIT or INIT-ACK packet's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// Which chunk.
    pub kind: Kind,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Verification tag of the common header (0 in an INIT).
    pub verification_tag: u32,
    /// Initiate tag: the tag the sender wants to see on packets sent to it (never 0).
    pub initiate_tag: u32,
    /// Advertised receiver window credit.
    pub a_rwnd: u32,
    /// Number of outbound streams.
    pub outbound_streams: u16,
    /// Maximum inbound streams.
    pub inbound_streams: u16,
    /// Initial TSN.
    pub initial_tsn: u32,
    /// State Cookie parameter (INIT ACK only; empty in an INIT).
    pub cookie: Vec<u8>,
}

/// Why bytes are not a valid INIT or INIT ACK.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SctpError {
    /// Shorter than the structure it must hold.
    #[error("SCTP packet truncated: {what} needs {needed} bytes, got {got}")]
    Truncated {
        /// The structure.
        what: &'static str,
        /// Bytes it needs.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// The CRC32c does not match.
    #[error("SCTP checksum {found:#010x} does not match the computed {expected:#010x}")]
    BadChecksum {
        /// Computed over the packet.
        expected: u32,
        /// Found in the header.
        found: u32,
    },
    /// The first chunk is neither INIT nor INIT ACK.
    #[error("SCTP chunk type {0} is not INIT (1) or INIT ACK (2)")]
    NotHandshake(u8),
    /// A length field points outside the packet or below the minimum.
    #[error("SCTP {what} length {length} is invalid for a {available}-byte remainder")]
    BadLength {
        /// The structure whose length is wrong.
        what: &'static str,
        /// The length field.
        length: usize,
        /// Bytes available.
        available: usize,
    },
    /// An INIT with a non-zero verification tag, or an initiate tag of 0 (RFC 9260 §3.3.2).
    #[error("SCTP {0}")]
    BadTag(&'static str),
    /// An INIT ACK without a State Cookie.
    #[error("SCTP INIT ACK has no State Cookie parameter")]
    NoCookie,
}

/// CRC32c of a packet whose checksum field holds zero, as RFC 9260 appendix A computes it.
/// It is stored in the header in little-endian byte order (the order the CRC's reflected
/// computation produces; OVS's `crc32c()` and Linux store it the same way).
pub fn checksum(packet: &[u8]) -> u32 {
    let mut zeroed = packet.to_vec();
    if zeroed.len() >= field::CHECKSUM.end {
        zeroed[field::CHECKSUM].fill(0);
    }
    crc32c::crc32c(&zeroed)
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn padded(len: usize) -> usize {
    len.div_ceil(4) * 4
}

impl Handshake {
    /// An INIT from `src_port` to `dst_port` announcing `initiate_tag` (must not be 0).
    pub fn init(src_port: u16, dst_port: u16, initiate_tag: u32) -> Self {
        Handshake {
            kind: Kind::Init,
            src_port,
            dst_port,
            verification_tag: 0,
            initiate_tag,
            a_rwnd: 65535,
            outbound_streams: 1,
            inbound_streams: 1,
            initial_tsn: initiate_tag,
            cookie: Vec::new(),
        }
    }

    /// The INIT ACK answering this INIT, with the server's own `initiate_tag` and `cookie`.
    pub fn ack(&self, initiate_tag: u32, cookie: Vec<u8>) -> Self {
        Handshake {
            kind: Kind::InitAck,
            src_port: self.dst_port,
            dst_port: self.src_port,
            verification_tag: self.initiate_tag,
            initiate_tag,
            a_rwnd: 65535,
            outbound_streams: self.inbound_streams.min(1),
            inbound_streams: 1,
            initial_tsn: initiate_tag,
            cookie,
        }
    }

    /// Whether `reply` is the INIT ACK of this INIT (tags and ports match).
    pub fn is_answered_by(&self, reply: &Handshake) -> bool {
        reply.kind == Kind::InitAck
            && reply.verification_tag == self.initiate_tag
            && reply.src_port == self.dst_port
            && reply.dst_port == self.src_port
    }

    /// The packet's bytes, checksum included.
    pub fn emit(&self) -> Vec<u8> {
        let params_len = if self.kind == Kind::InitAck { 4 + self.cookie.len() } else { 0 };
        let chunk_len = (MIN_LEN - field::CHUNK_TYPE) + params_len;
        let mut b = vec![0u8; field::CHUNK_TYPE + padded(chunk_len)];
        b[field::SRC_PORT].copy_from_slice(&self.src_port.to_be_bytes());
        b[field::DST_PORT].copy_from_slice(&self.dst_port.to_be_bytes());
        b[field::VERIFICATION_TAG].copy_from_slice(&self.verification_tag.to_be_bytes());
        b[field::CHUNK_TYPE] = match self.kind {
            Kind::Init => CHUNK_INIT,
            Kind::InitAck => CHUNK_INIT_ACK,
        };
        b[field::CHUNK_FLAGS] = 0;
        b[field::CHUNK_LENGTH].copy_from_slice(&(chunk_len as u16).to_be_bytes());
        b[field::INITIATE_TAG].copy_from_slice(&self.initiate_tag.to_be_bytes());
        b[field::A_RWND].copy_from_slice(&self.a_rwnd.to_be_bytes());
        b[field::OUTBOUND_STREAMS].copy_from_slice(&self.outbound_streams.to_be_bytes());
        b[field::INBOUND_STREAMS].copy_from_slice(&self.inbound_streams.to_be_bytes());
        b[field::INITIAL_TSN].copy_from_slice(&self.initial_tsn.to_be_bytes());
        if self.kind == Kind::InitAck {
            let p = field::PARAMS;
            b[p..p + 2].copy_from_slice(&PARAM_STATE_COOKIE.to_be_bytes());
            b[p + 2..p + 4].copy_from_slice(&(params_len as u16).to_be_bytes());
            b[p + 4..p + 4 + self.cookie.len()].copy_from_slice(&self.cookie);
        }
        let crc = checksum(&b);
        b[field::CHECKSUM].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Reads an INIT or INIT ACK (the SCTP packet, without IP header).
    pub fn parse(b: &[u8]) -> Result<Self, SctpError> {
        if b.len() < MIN_LEN {
            return Err(SctpError::Truncated { what: "INIT/INIT ACK packet", needed: MIN_LEN, got: b.len() });
        }
        let found = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
        let expected = checksum(b);
        if found != expected {
            return Err(SctpError::BadChecksum { expected, found });
        }
        let kind = match b[field::CHUNK_TYPE] {
            CHUNK_INIT => Kind::Init,
            CHUNK_INIT_ACK => Kind::InitAck,
            other => return Err(SctpError::NotHandshake(other)),
        };
        let chunk_len = usize::from(be16(&b[field::CHUNK_LENGTH]));
        let available = b.len() - field::CHUNK_TYPE;
        if chunk_len < MIN_LEN - field::CHUNK_TYPE || chunk_len > available {
            return Err(SctpError::BadLength { what: "chunk", length: chunk_len, available });
        }
        let verification_tag = be32(&b[field::VERIFICATION_TAG]);
        let initiate_tag = be32(&b[field::INITIATE_TAG]);
        if initiate_tag == 0 {
            return Err(SctpError::BadTag("initiate tag is 0"));
        }
        if kind == Kind::Init && verification_tag != 0 {
            return Err(SctpError::BadTag("INIT with a non-zero verification tag"));
        }
        let mut cookie = None;
        let end = field::CHUNK_TYPE + chunk_len;
        let mut p = field::PARAMS;
        while p + 4 <= end {
            let ptype = be16(&b[p..p + 2]);
            let plen = usize::from(be16(&b[p + 2..p + 4]));
            if plen < 4 || p + plen > end {
                return Err(SctpError::BadLength { what: "parameter", length: plen, available: end - p });
            }
            if ptype == PARAM_STATE_COOKIE {
                cookie = Some(b[p + 4..p + plen].to_vec());
            }
            p += padded(plen);
        }
        if kind == Kind::InitAck && cookie.is_none() {
            return Err(SctpError::NoCookie);
        }
        Ok(Handshake {
            kind,
            src_port: be16(&b[field::SRC_PORT]),
            dst_port: be16(&b[field::DST_PORT]),
            verification_tag,
            initiate_tag,
            a_rwnd: be32(&b[field::A_RWND]),
            outbound_streams: be16(&b[field::OUTBOUND_STREAMS]),
            inbound_streams: be16(&b[field::INBOUND_STREAMS]),
            initial_tsn: be32(&b[field::INITIAL_TSN]),
            cookie: if kind == Kind::InitAck { cookie.unwrap_or_default() } else { Vec::new() },
        })
    }
}

/// The source, destination and payload of an IPv4 datagram as a raw socket delivers it
/// (header included); `None` if it is not a well-formed, unfragmented IPv4 datagram of
/// `protocol`.
pub fn ipv4_payload(datagram: &[u8], protocol: u8) -> Option<(Ipv4Addr, Ipv4Addr, &[u8])> {
    let first = *datagram.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < 20 || datagram.len() < ihl {
        return None;
    }
    let total = usize::from(be16(&datagram[2..4])).min(datagram.len());
    let fragmented = be16(&datagram[6..8]) & 0x3fff != 0;
    if datagram[9] != protocol || fragmented || total < ihl {
        return None;
    }
    let src = Ipv4Addr::new(datagram[12], datagram[13], datagram[14], datagram[15]);
    let dst = Ipv4Addr::new(datagram[16], datagram[17], datagram[18], datagram[19]);
    Some((src, dst, &datagram[ihl..total]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_iscsi_test_vector_and_is_stored_little_endian() {
        // RFC 3720 B.4: 32 bytes of zeros give 0x8a9136aa, transmitted as aa 36 91 8a.
        assert_eq!(crc32c::crc32c(&[0u8; 32]), 0x8a91_36aa);
        let init = Handshake::init(40000, 80, 0x0102_0304).emit();
        let stored = &init[8..12];
        assert_eq!(stored, &checksum(&init).to_le_bytes());
    }

    #[test]
    fn an_init_is_written_field_by_field() {
        let b = Handshake::init(0x9c40, 80, 0xdead_beef).emit();
        assert_eq!(b.len(), 32);
        assert_eq!(&b[0..4], &[0x9c, 0x40, 0x00, 0x50], "ports");
        assert_eq!(&b[4..8], &[0, 0, 0, 0], "INIT carries verification tag 0");
        assert_eq!(&b[12..16], &[1, 0, 0, 20], "chunk type 1, flags 0, length 20");
        assert_eq!(&b[16..20], &[0xde, 0xad, 0xbe, 0xef], "initiate tag");
        assert_eq!(&b[24..28], &[0, 1, 0, 1], "one stream each way");
    }

    #[test]
    fn an_init_ack_round_trips_and_answers_its_init() {
        let init = Handshake::init(40000, 81, 77);
        let ack = init.ack(99, b"cookie!".to_vec());
        let bytes = ack.emit();
        assert_eq!(bytes.len() % 4, 0, "padded to 4 bytes");
        let parsed = Handshake::parse(&bytes).unwrap();
        assert_eq!(parsed, ack);
        assert!(init.is_answered_by(&parsed));
        assert!(!Handshake::init(40000, 81, 78).is_answered_by(&parsed), "another probe's tag");
        assert_eq!(Handshake::parse(&init.emit()).unwrap(), init);
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let mut b = Handshake::init(1, 2, 3).emit();
        b[20] ^= 0x01;
        assert!(matches!(Handshake::parse(&b), Err(SctpError::BadChecksum { .. })));
    }

    #[test]
    fn an_init_ack_without_cookie_is_refused() {
        let mut ack = Handshake::init(1, 2, 3).ack(4, Vec::new());
        ack.kind = Kind::InitAck;
        let mut b = ack.emit();
        // Drop the cookie parameter: chunk length back to the fixed part, packet cut.
        b.truncate(MIN_LEN);
        b[14..16].copy_from_slice(&20u16.to_be_bytes());
        let crc = checksum(&b);
        b[8..12].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(Handshake::parse(&b), Err(SctpError::NoCookie));
    }

    #[test]
    fn other_chunks_and_bad_tags_are_refused() {
        let mut b = Handshake::init(1, 2, 3).emit();
        b[12] = 6; // ABORT
        let crc = checksum(&b);
        b[8..12].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(Handshake::parse(&b), Err(SctpError::NotHandshake(6)));
        let zero = Handshake::init(1, 2, 0).emit();
        assert!(matches!(Handshake::parse(&zero), Err(SctpError::BadTag(_))));
    }

    #[test]
    fn every_truncation_and_garbage_is_an_error_not_a_panic() {
        let ack = Handshake::init(5, 6, 7).ack(8, vec![1, 2, 3, 4, 5]).emit();
        for len in 0..ack.len() {
            assert!(Handshake::parse(&ack[..len]).is_err(), "truncated to {len}");
        }
        let mut x: u32 = 0x1234_5678;
        for _ in 0..2000 {
            let mut b = ack.clone();
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let i = x as usize % b.len();
                b[i] = (x >> 8) as u8;
            }
            // Fix the checksum so the layout checks behind it run too.
            let crc = checksum(&b);
            b[8..12].copy_from_slice(&crc.to_le_bytes());
            let _ = Handshake::parse(&b);
        }
    }

    #[test]
    fn the_ip_header_of_a_raw_datagram_is_skipped() {
        let sctp = Handshake::init(1, 2, 3).emit();
        let mut d = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 132, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        let total = (d.len() + sctp.len()) as u16;
        d[2..4].copy_from_slice(&total.to_be_bytes());
        d.extend_from_slice(&sctp);
        let (src, dst, payload) = ipv4_payload(&d, 132).unwrap();
        assert_eq!((src, dst), (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(payload, &sctp[..]);
        assert!(ipv4_payload(&d, 17).is_none(), "other protocol");
        assert!(ipv4_payload(&d[..10], 132).is_none(), "truncated header");
    }
}
