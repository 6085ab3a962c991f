//! Decoding captured Ethernet frames far enough to tell probe traffic apart: MACs, an optional
//! 802.1Q tag, then IPv4 (addresses, protocol, TCP/UDP/SCTP ports, TCP flags) or ARP.
//!
//! Frames come from the wire (captures, the inline firewall), so decoding never panics: a frame
//! too short for a header it announces is a [`DecodeError`] naming that header.
use std::fmt;
use std::net::Ipv4Addr;

/// EtherType of IPv4.
pub const ETH_P_IP: u16 = 0x0800;
/// EtherType of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// EtherType of an 802.1Q tag.
pub const ETH_P_8021Q: u16 = 0x8100;
/// EtherType of transparent Ethernet bridging (an Ethernet frame inside GRE or GENEVE).
pub const ETH_P_TEB: u16 = 0x6558;

/// IP protocol numbers the testbed's probes use.
pub mod ip_proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// GRE (plain GRE and ERSPAN tunnels).
    pub const GRE: u8 = 47;
    /// SCTP.
    pub const SCTP: u8 = 132;
}

/// Byte offsets of the headers decoded here.
mod field {
    use std::ops::Range;
    pub(super) const ETH_DST: Range<usize> = 0..6;
    pub(super) const ETH_SRC: Range<usize> = 6..12;
    pub(super) const ETH_TYPE: Range<usize> = 12..14;
    pub(super) const ETH_LEN: usize = ETH_TYPE.end;
    /// An 802.1Q tag: TCI, then the inner EtherType.
    pub(super) const VLAN_TYPE: Range<usize> = 2..4;
    pub(super) const VLAN_LEN: usize = 4;

    pub(super) const IP_VER_IHL: usize = 0;
    pub(super) const IP_TOTAL_LEN: Range<usize> = 2..4;
    pub(super) const IP_FRAG: Range<usize> = 6..8;
    pub(super) const IP_PROTO: usize = 9;
    pub(super) const IP_SRC: Range<usize> = 12..16;
    pub(super) const IP_DST: Range<usize> = 16..20;
    pub(super) const IP_MIN_LEN: usize = IP_DST.end;

    /// TCP, UDP and SCTP all start with source and destination port.
    pub(super) const L4_SRC_PORT: Range<usize> = 0..2;
    pub(super) const L4_DST_PORT: Range<usize> = 2..4;
    pub(super) const TCP_FLAGS: usize = 13;
    pub(super) const TCP_MIN_LEN: usize = 20;
    pub(super) const UDP_LEN: usize = 8;
    pub(super) const SCTP_COMMON_LEN: usize = 12;

    /// ARP for IPv4 over Ethernet.
    pub(super) const ARP_OP: Range<usize> = 6..8;
    pub(super) const ARP_SENDER_IP: Range<usize> = 14..18;
    pub(super) const ARP_TARGET_IP: Range<usize> = 24..28;
    pub(super) const ARP_LEN: usize = ARP_TARGET_IP.end;
}

/// A frame (or a header inside it) shorter than the header it announces, or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{header}: {message}")]
pub struct DecodeError {
    /// The header that could not be read, e.g. `IPv4 header`.
    pub header: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl DecodeError {
    pub(crate) fn short(header: &'static str, needed: usize, got: usize) -> Self {
        DecodeError { header, message: format!("needs {needed} bytes, {got} present") }
    }

    pub(crate) fn new(header: &'static str, message: impl Into<String>) -> Self {
        DecodeError { header, message: message.into() }
    }
}

/// `bytes[range]`, or an error naming `header` when the slice is too short.
pub(crate) fn take<'a>(
    bytes: &'a [u8],
    range: std::ops::Range<usize>,
    header: &'static str,
) -> Result<&'a [u8], DecodeError> {
    bytes.get(range.clone()).ok_or_else(|| DecodeError::short(header, range.end, bytes.len()))
}

pub(crate) fn be16(bytes: &[u8], range: std::ops::Range<usize>, header: &'static str) -> Result<u16, DecodeError> {
    let b = take(bytes, range, header)?;
    Ok(u16::from_be_bytes([b[0], b[1]]))
}

pub(crate) fn be32(bytes: &[u8], range: std::ops::Range<usize>, header: &'static str) -> Result<u32, DecodeError> {
    let b = take(bytes, range, header)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn ipv4(bytes: &[u8], range: std::ops::Range<usize>, header: &'static str) -> Result<Ipv4Addr, DecodeError> {
    let b = take(bytes, range, header)?;
    Ok(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
}

/// What an Ethernet frame carries, as far as the testbed cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// IPv4.
    Ipv4(Ipv4),
    /// ARP (IPv4 over Ethernet).
    Arp {
        /// 1 request, 2 reply.
        op: u16,
        /// Sender protocol address.
        sender: Ipv4Addr,
        /// Target protocol address.
        target: Ipv4Addr,
    },
    /// Anything else (its EtherType is in [`Packet::ethertype`]).
    Other,
}

/// An IPv4 packet's addresses and transport ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4 {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// IP protocol number ([`ip_proto`]).
    pub protocol: u8,
    /// Source port (TCP, UDP, SCTP; absent in later fragments and other protocols).
    pub src_port: Option<u16>,
    /// Destination port.
    pub dst_port: Option<u16>,
    /// TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10).
    pub tcp_flags: Option<u8>,
    /// The IP payload (transport header and data), cut to the IP total length.
    pub payload: Vec<u8>,
}

/// A decoded Ethernet frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// 802.1Q VLAN id, if tagged.
    pub vlan: Option<u16>,
    /// EtherType after any VLAN tag.
    pub ethertype: u16,
    /// What it carries.
    pub payload: Payload,
}

impl Packet {
    /// Decodes an Ethernet frame.
    pub fn decode(frame: &[u8]) -> Result<Packet, DecodeError> {
        const ETH: &str = "Ethernet header";
        let mut dst_mac = [0; 6];
        dst_mac.copy_from_slice(take(frame, field::ETH_DST, ETH)?);
        let mut src_mac = [0; 6];
        src_mac.copy_from_slice(take(frame, field::ETH_SRC, ETH)?);
        let mut ethertype = be16(frame, field::ETH_TYPE, ETH)?;
        let mut rest = &frame[field::ETH_LEN..];
        let mut vlan = None;
        if ethertype == ETH_P_8021Q {
            const TAG: &str = "802.1Q tag";
            vlan = Some(be16(rest, 0..2, TAG)? & 0x0fff);
            ethertype = be16(rest, field::VLAN_TYPE, TAG)?;
            rest = &rest[field::VLAN_LEN..];
        }
        let payload = match ethertype {
            ETH_P_IP => Payload::Ipv4(Ipv4::decode(rest)?),
            ETH_P_ARP => {
                const ARP: &str = "ARP header";
                take(rest, 0..field::ARP_LEN, ARP)?;
                Payload::Arp {
                    op: be16(rest, field::ARP_OP, ARP)?,
                    sender: ipv4(rest, field::ARP_SENDER_IP, ARP)?,
                    target: ipv4(rest, field::ARP_TARGET_IP, ARP)?,
                }
            }
            _ => Payload::Other,
        };
        Ok(Packet { dst_mac, src_mac, vlan, ethertype, payload })
    }

    /// The IPv4 part, if it is IPv4.
    pub fn ipv4(&self) -> Option<&Ipv4> {
        match &self.payload {
            Payload::Ipv4(ip) => Some(ip),
            _ => None,
        }
    }
}

impl Ipv4 {
    /// Decodes an IPv4 packet (header and transport ports).
    pub fn decode(bytes: &[u8]) -> Result<Ipv4, DecodeError> {
        const IP: &str = "IPv4 header";
        take(bytes, 0..field::IP_MIN_LEN, IP)?;
        let ver_ihl = bytes[field::IP_VER_IHL];
        if ver_ihl >> 4 != 4 {
            return Err(DecodeError::new(IP, format!("version {} is not 4", ver_ihl >> 4)));
        }
        let header_len = usize::from(ver_ihl & 0x0f) * 4;
        if header_len < field::IP_MIN_LEN {
            return Err(DecodeError::new(IP, format!("header length {header_len} is below 20")));
        }
        let total = usize::from(be16(bytes, field::IP_TOTAL_LEN, IP)?);
        if total < header_len {
            return Err(DecodeError::new(IP, format!("total length {total} is below the header length {header_len}")));
        }
        // Frames shorter than 60 bytes are padded on the wire: the total length says where
        // the packet ends.
        let packet = take(bytes, 0..total, IP)?;
        let payload = &packet[header_len..];
        let protocol = bytes[field::IP_PROTO];
        let first_fragment = be16(bytes, field::IP_FRAG, IP)? & 0x1fff == 0;
        let (mut src_port, mut dst_port, mut tcp_flags) = (None, None, None);
        if first_fragment {
            let ports = |header: &'static str, min: usize| -> Result<(Option<u16>, Option<u16>), DecodeError> {
                take(payload, 0..min, header)?;
                Ok((Some(be16(payload, field::L4_SRC_PORT, header)?), Some(be16(payload, field::L4_DST_PORT, header)?)))
            };
            match protocol {
                ip_proto::TCP => {
                    (src_port, dst_port) = ports("TCP header", field::TCP_MIN_LEN)?;
                    tcp_flags = Some(payload[field::TCP_FLAGS]);
                }
                ip_proto::UDP => (src_port, dst_port) = ports("UDP header", field::UDP_LEN)?,
                ip_proto::SCTP => (src_port, dst_port) = ports("SCTP common header", field::SCTP_COMMON_LEN)?,
                _ => {}
            }
        }
        Ok(Ipv4 {
            src: ipv4(bytes, field::IP_SRC, IP)?,
            dst: ipv4(bytes, field::IP_DST, IP)?,
            protocol,
            src_port,
            dst_port,
            tcp_flags,
            payload: payload.to_vec(),
        })
    }

    /// The protocol's name (`TCP`, `UDP`, `SCTP`, `ICMP`) or number.
    pub fn protocol_name(&self) -> String {
        match self.protocol {
            ip_proto::TCP => "TCP".into(),
            ip_proto::UDP => "UDP".into(),
            ip_proto::SCTP => "SCTP".into(),
            ip_proto::ICMP => "ICMP".into(),
            ip_proto::GRE => "GRE".into(),
            n => format!("proto {n}"),
        }
    }

    /// The L4 payload after a UDP header (empty for other protocols).
    pub fn udp_data(&self) -> &[u8] {
        match self.protocol {
            ip_proto::UDP => self.payload.get(field::UDP_LEN..).unwrap_or_default(),
            _ => &[],
        }
    }
}

impl fmt::Display for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.payload {
            Payload::Ipv4(ip) => {
                let port = |p: Option<u16>| p.map(|p| format!(":{p}")).unwrap_or_default();
                write!(f, "{} {}{} > {}{}", ip.protocol_name(), ip.src, port(ip.src_port), ip.dst, port(ip.dst_port))?;
                if let Some(flags) = ip.tcp_flags {
                    write!(f, " flags {flags:#04x}")?;
                }
                Ok(())
            }
            Payload::Arp { op, sender, target } => write!(f, "ARP op {op} {sender} > {target}"),
            Payload::Other => write!(f, "ethertype {:#06x}", self.ethertype),
        }
    }
}

/// An L4 protocol's IP protocol number, for the probe protocols.
pub fn protocol_number(p: policy::Protocol) -> u8 {
    match p {
        policy::Protocol::Tcp => ip_proto::TCP,
        policy::Protocol::Udp => ip_proto::UDP,
        policy::Protocol::Sctp => ip_proto::SCTP,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::spoof::udp_frame;
    use std::net::SocketAddrV4;

    /// One UDP frame, the same on every call (`udp_frame` picks a random IP id).
    pub(crate) fn sample_udp() -> Vec<u8> {
        static FRAME: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        FRAME.get_or_init(build_sample_udp).clone()
    }

    fn build_sample_udp() -> Vec<u8> {
        udp_frame(
            [2, 0, 10, 244, 2, 10],
            [2, 0, 10, 244, 1, 10],
            SocketAddrV4::new(Ipv4Addr::new(10, 244, 1, 10), 40000),
            SocketAddrV4::new(Ipv4Addr::new(10, 244, 2, 10), 80),
            b"nonce-1234",
        )
    }

    #[test]
    fn a_udp_frame_decodes_to_its_addresses_ports_and_data() {
        let p = Packet::decode(&sample_udp()).unwrap();
        assert_eq!(p.src_mac, [2, 0, 10, 244, 1, 10]);
        let ip = p.ipv4().unwrap();
        assert_eq!((ip.src, ip.dst), (Ipv4Addr::new(10, 244, 1, 10), Ipv4Addr::new(10, 244, 2, 10)));
        assert_eq!((ip.protocol, ip.src_port, ip.dst_port, ip.tcp_flags), (ip_proto::UDP, Some(40000), Some(80), None));
        assert_eq!(ip.udp_data(), b"nonce-1234");
        assert_eq!(p.to_string(), "UDP 10.244.1.10:40000 > 10.244.2.10:80");
    }

    #[test]
    fn ethernet_padding_after_the_ip_total_length_is_not_payload() {
        let mut f = sample_udp();
        f.extend_from_slice(&[0; 12]);
        assert_eq!(Packet::decode(&f).unwrap().ipv4().unwrap().udp_data(), b"nonce-1234");
    }

    #[test]
    fn a_vlan_tag_is_skipped_and_reported() {
        let plain = sample_udp();
        let mut tagged = plain[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x20, 0x07]);
        tagged.extend_from_slice(&plain[12..]);
        let p = Packet::decode(&tagged).unwrap();
        assert_eq!(p.vlan, Some(7));
        assert_eq!(p.ipv4().unwrap().dst_port, Some(80));
    }

    #[test]
    fn an_arp_request_decodes_to_sender_and_target() {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
        f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 244, 1, 10]);
        f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 10, 244, 1, 1]);
        let p = Packet::decode(&f).unwrap();
        assert_eq!(
            p.payload,
            Payload::Arp { op: 1, sender: Ipv4Addr::new(10, 244, 1, 10), target: Ipv4Addr::new(10, 244, 1, 1) }
        );
    }

    #[test]
    fn every_truncation_of_a_frame_is_an_error_naming_a_header_never_a_panic() {
        let f = sample_udp();
        for n in 0..f.len() {
            let err = Packet::decode(&f[..n]).unwrap_err();
            assert!(err.header.ends_with("header"), "{n}: {err}");
        }
    }

    #[test]
    fn a_header_length_below_twenty_is_refused() {
        let mut f = sample_udp();
        f[14] = 0x44;
        assert!(Packet::decode(&f).unwrap_err().message.contains("header length 16"));
    }
}
