//! Answers to packets a Reject rule sent to the agent ([`pipeline::reject`]): a TCP segment
//! gets a RST (RFC 9293 §3.10.7.1: the sequence numbers come from the segment), anything else
//! IPv4 an ICMP "communication administratively prohibited" quoting its header and first
//! eight bytes (RFC 792, RFC 1812). The answer goes back from the rejected packet's
//! destination to its source, as the destination would have sent it.

use etherparse::icmpv4::DestUnreachableHeader;
use etherparse::{Icmpv4Type, LinkSlice, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use openflow::wire::Message;
use openflow::wire::message::{PacketIn, PacketOut};
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::warn;

use crate::switch::Switch;

/// TTL of the answers (as a host's own packets).
const TTL: u8 = 64;
/// Bytes of the rejected packet's payload an ICMP error quotes after its IP header.
const QUOTED: usize = 8;

/// The answer to a rejected Ethernet frame, or `None` when there is none to give (not IPv4,
/// a TCP RST itself, an ICMP error, a fragment after the first, a frame that does not parse).
pub fn answer(frame: &[u8]) -> Option<Vec<u8>> {
    let packet = SlicedPacket::from_ethernet(frame).ok()?;
    let Some(LinkSlice::Ethernet2(eth)) = &packet.link else { return None };
    let Some(NetSlice::Ipv4(ip)) = &packet.net else { return None };
    let header = ip.header();
    if header.is_fragmenting_payload() && header.fragments_offset().value() != 0 {
        return None;
    }
    let (src, dst) = (header.source(), header.destination());
    let builder = PacketBuilder::ethernet2(eth.destination(), eth.source()).ipv4(dst, src, TTL);
    let mut out = Vec::new();
    match &packet.transport {
        Some(TransportSlice::Tcp(tcp)) => {
            if tcp.rst() {
                return None;
            }
            let builder = if tcp.ack() {
                builder.tcp(tcp.destination_port(), tcp.source_port(), tcp.acknowledgment_number(), 0).rst()
            } else {
                // SYN and FIN occupy a sequence number each.
                let len = tcp.payload().len() as u32;
                let acked = tcp.sequence_number().wrapping_add(len + u32::from(tcp.syn()) + u32::from(tcp.fin()));
                builder.tcp(tcp.destination_port(), tcp.source_port(), 0, 0).rst().ack(acked)
            };
            builder.write(&mut out, &[]).ok()?;
        }
        Some(TransportSlice::Icmpv4(icmp)) if !is_query(icmp.icmp_type()) => return None,
        _ => {
            let payload = ip.payload().payload;
            let mut quoted = header.slice().to_vec();
            quoted.extend_from_slice(&payload[..payload.len().min(QUOTED)]);
            builder
                .icmpv4(Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FilterProhibited))
                .write(&mut out, &quoted)
                .ok()?;
        }
    }
    Some(out)
}

/// ICMP queries may be answered with an error; ICMP errors never are (RFC 1122 3.2.2).
fn is_query(t: Icmpv4Type) -> bool {
    matches!(t, Icmpv4Type::EchoRequest(_) | Icmpv4Type::TimestampRequest(_))
}

/// How many rejected packets the agent answered, and how many it could not.
#[derive(Debug, Default)]
pub struct Counts {
    /// Answers sent.
    pub answered: AtomicU64,
    /// Packets that got no answer (see [`answer`]) or whose answer could not be sent.
    pub unanswered: AtomicU64,
}

/// Answers a rejected packet (a packet-in marked [`pipeline::reg::ANSWER`]) with a
/// packet-out into the pipeline.
pub fn answer_packet_in(sw: &Switch, packet_in: &PacketIn, counts: &Counts) {
    let Some(data) = answer(&packet_in.data) else {
        counts.unanswered.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let (entry, actions) = pipeline::reject::answer_entry();
    let out = Message::PacketOut(PacketOut { buffer_id: openflow::flow::NO_BUFFER, matches: entry, actions, data });
    match sw.send_unchecked(&out) {
        Ok(()) => counts.answered.fetch_add(1, Ordering::Relaxed),
        Err(e) => {
            warn!("answering a rejected packet: {e}");
            counts.unanswered.fetch_add(1, Ordering::Relaxed)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{PacketHeaders, TransportHeader};

    const CLIENT_MAC: [u8; 6] = [2, 0, 10, 244, 1, 2];
    const SERVER_MAC: [u8; 6] = [2, 0, 10, 244, 2, 3];
    const CLIENT: [u8; 4] = [10, 244, 1, 2];
    const SERVER: [u8; 4] = [10, 244, 2, 3];

    fn from_client() -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
        PacketBuilder::ethernet2(CLIENT_MAC, SERVER_MAC).ipv4(CLIENT, SERVER, 63)
    }

    /// The answer, checked to go from the server back to the client, and its transport header.
    fn answered(frame: &[u8]) -> (TransportHeader, Vec<u8>) {
        let out = answer(frame).expect("an answer");
        let h = PacketHeaders::from_ethernet_slice(&out).expect("the answer parses");
        let eth = h.link.unwrap().ethernet2().unwrap();
        assert_eq!((eth.source, eth.destination), (SERVER_MAC, CLIENT_MAC));
        let Some(etherparse::NetHeaders::Ipv4(ip, _)) = h.net else { panic!("IPv4") };
        assert_eq!((ip.source, ip.destination), (SERVER, CLIENT));
        (h.transport.unwrap(), h.payload.slice().to_vec())
    }

    #[test]
    fn a_syn_gets_a_rst_that_acknowledges_it() {
        let mut syn = Vec::new();
        from_client().tcp(40000, 80, 1000, 64240).syn().write(&mut syn, &[]).unwrap();
        let (TransportHeader::Tcp(rst), _) = answered(&syn) else { panic!("TCP") };
        assert_eq!((rst.source_port, rst.destination_port), (80, 40000));
        assert!(rst.rst && rst.ack && !rst.syn);
        assert_eq!((rst.sequence_number, rst.acknowledgment_number), (0, 1001));
    }

    #[test]
    fn a_segment_of_an_established_connection_gets_a_rst_at_its_acknowledgment() {
        let mut data = Vec::new();
        from_client().tcp(40000, 80, 5000, 64240).ack(777).psh().write(&mut data, b"GET / HTTP/1.1\r\n").unwrap();
        let (TransportHeader::Tcp(rst), _) = answered(&data) else { panic!("TCP") };
        assert!(rst.rst && !rst.ack);
        assert_eq!(rst.sequence_number, 777);
    }

    #[test]
    fn a_fin_with_data_is_acknowledged_past_both() {
        let mut fin = Vec::new();
        from_client().tcp(40000, 80, 9, 64240).fin().write(&mut fin, b"bye").unwrap();
        let (TransportHeader::Tcp(rst), _) = answered(&fin) else { panic!("TCP") };
        assert_eq!(rst.acknowledgment_number, 9 + 3 + 1);
    }

    #[test]
    fn udp_gets_icmp_administratively_prohibited_quoting_its_header_and_first_eight_bytes() {
        let mut udp = Vec::new();
        from_client().udp(5353, 53).write(&mut udp, b"a dns query, longer than eight bytes").unwrap();
        let (TransportHeader::Icmpv4(icmp), quoted) = answered(&udp) else { panic!("ICMP") };
        assert_eq!(icmp.icmp_type, Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FilterProhibited));
        assert_eq!(quoted, udp[14..14 + 20 + 8].to_vec(), "the IP header and the UDP header");
    }

    #[test]
    fn a_ping_is_refused_but_icmp_errors_and_rsts_never_get_an_answer() {
        let mut ping = Vec::new();
        from_client().icmpv4_echo_request(1, 1).write(&mut ping, b"ping").unwrap();
        assert!(matches!(answered(&ping).0, TransportHeader::Icmpv4(_)));
        let mut error = Vec::new();
        let unreachable = Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port);
        from_client().icmpv4(unreachable).write(&mut error, &ping[14..42]).unwrap();
        assert_eq!(answer(&error), None);
        let mut rst = Vec::new();
        from_client().tcp(40000, 80, 1, 0).rst().write(&mut rst, &[]).unwrap();
        assert_eq!(answer(&rst), None);
    }

    #[test]
    fn anything_else_gets_no_answer_and_no_panic() {
        assert_eq!(answer(&[]), None);
        assert_eq!(answer(&[0xff; 13]), None);
        let arp = [&SERVER_MAC[..], &CLIENT_MAC[..], &[0x08, 0x06], &[0u8; 28]].concat();
        assert_eq!(answer(&arp), None);
        let mut syn = Vec::new();
        from_client().tcp(1, 2, 3, 4).syn().write(&mut syn, &[]).unwrap();
        for cut in 0..syn.len() {
            let _ = answer(&syn[..cut]);
        }
    }

    proptest::proptest! {
        #[test]
        fn random_frames_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = answer(&bytes);
        }
    }
}
