//! The spoofing helper: sends a hand-built UDP frame from a pod's `eth0` (AF_PACKET, so any
//! source MAC and IP can be forged) and watches the destination pod's `eth0` for it.
//!
//! [`check`] sends two frames with unique markers: a control frame with the pod's real
//! addresses and the forged one, both to the next hop the pod's kernel resolved (the
//! destination pod on the same subnet, else the gateway). A spoof guard is shown to work when
//! the control frame arrives and the forged one does not.
use crate::error::Error;
use crate::layout::POD_IFACE;
use crate::netns::enter_on_this_thread;
use crate::random;
use crate::state::PodState;
use crate::testbed::Testbed;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// The addresses to forge; `None` keeps the pod's real one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forgery {
    /// Source IPv4 address to put in the packet.
    pub src_ip: Option<Ipv4Addr>,
    /// Source MAC to put in the frame.
    pub src_mac: Option<[u8; 6]>,
}

/// What the destination saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoofOutcome {
    /// Whether the frame with the pod's real addresses arrived.
    pub control_delivered: bool,
    /// Whether the forged frame arrived.
    pub forged_delivered: bool,
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let parts: Vec<u8> = text.split(':').map(|p| u8::from_str_radix(p, 16).ok()).collect::<Option<_>>()?;
    parts.try_into().ok()
}

const ETH_P_IP: u16 = 0x0800;
const ETH_P_ALL: u16 = 0x0003;

/// An Ethernet frame carrying IPv4/UDP with correct IP and UDP checksums.
pub fn udp_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: SocketAddrV4,
    dst: SocketAddrV4,
    payload: &[u8],
) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let ip_len = 20 + udp_len;
    let mut f = Vec::with_capacity(14 + ip_len);
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&ETH_P_IP.to_be_bytes());
    let ip_start = f.len();
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&(ip_len as u16).to_be_bytes());
    f.extend_from_slice(&random::bytes::<2>());
    f.extend_from_slice(&[0x40, 0, 64, 17, 0, 0]); // DF, TTL 64, UDP, checksum later
    f.extend_from_slice(&src.ip().octets());
    f.extend_from_slice(&dst.ip().octets());
    let ip_sum = internet_checksum(&[&f[ip_start..]]);
    f[ip_start + 10..ip_start + 12].copy_from_slice(&ip_sum.to_be_bytes());
    let udp_start = f.len();
    f.extend_from_slice(&src.port().to_be_bytes());
    f.extend_from_slice(&dst.port().to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src.ip().octets());
    pseudo.extend_from_slice(&dst.ip().octets());
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&(udp_len as u16).to_be_bytes());
    let sum = match internet_checksum(&[&pseudo, &f[udp_start..]]) {
        0 => 0xffff,
        s => s,
    };
    f[udp_start + 6..udp_start + 8].copy_from_slice(&sum.to_be_bytes());
    f
}

/// The ones' complement of the ones' complement sum of `parts` taken as one byte string.
pub fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    let mut sum: u32 = bytes.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The MAC of `next_hop` in the calling thread's namespace's neighbour table, resolving it
/// first by sending a UDP datagram towards `dst`.
fn resolve_next_hop(pod: &PodState, dst: SocketAddrV4, next_hop: Ipv4Addr, timeout: Duration) -> Result<[u8; 6], Error> {
    let what = format!("resolve the MAC of next hop {next_hop} from pod {}", pod.key());
    let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(|e| Error::socket(&what, e))?;
    let deadline = Instant::now() + timeout;
    loop {
        let _ = sock.send_to(b"weir-testbed-resolve", dst);
        let out = crate::command::run(
            crate::netns::Netns::existing(&pod.netns)
                .command("ip")
                .args(["-4", "neigh", "show", &next_hop.to_string(), "dev", POD_IFACE]),
        )?;
        let mac = out.split_whitespace().skip_while(|w| *w != "lladdr").nth(1).and_then(parse_mac);
        if let Some(mac) = mac {
            return Ok(mac);
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout { what: format!("{what} (does anything answer its ARP?)"), seconds: timeout.as_secs_f64() });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends a control frame and a forged frame (UDP to `port`) from pod `from` to pod `to` and
/// reports which arrived at `to` within `timeout`.
pub fn check(tb: &Testbed, from: &str, to: &str, port: u16, forgery: Forgery, timeout: Duration) -> Result<SpoofOutcome, Error> {
    let src = tb.pod(from)?.clone();
    let dst = tb.pod(to)?.clone();
    for p in [&src, &dst] {
        if p.host_network {
            return Err(Error::invalid(format!("pod {}", p.key()), "hostNetwork", "the spoofing helper needs pods with their own eth0"));
        }
    }
    let node = tb.node(&src.node)?;
    let same_subnet = node.pod_cidr == tb.node(&dst.node)?.pod_cidr;
    let next_hop = if same_subnet { dst.ip } else { node.gateway };
    let real_mac = parse_mac(&src.mac).ok_or_else(|| Error::invalid(format!("pod {}", src.key()), "mac", src.mac.clone()))?;
    let markers = [random::bytes::<16>(), random::bytes::<16>()];

    // Capture first, on its own thread inside the destination's namespace.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), Error>>();
    let dst_netns = dst.netns.clone();
    let capture = std::thread::spawn(move || -> Result<[bool; 2], Error> {
        let what = format!("capture on {POD_IFACE} of netns {dst_netns}");
        let sock = enter_on_this_thread(&dst_netns).and_then(|_| crate::capture::bound_packet_socket(POD_IFACE, ETH_P_ALL));
        let sock = match sock {
            Ok(s) => {
                let _ = ready_tx.send(Ok(()));
                s
            }
            Err(e) => {
                let _ = ready_tx.send(Err(Error::socket(&what, std::io::Error::new(e.kind(), e.to_string()))));
                return Err(Error::socket(&what, e));
            }
        };
        let mut seen = [false; 2];
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 2048];
        while let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
            sock.set_read_timeout(Some(left)).map_err(|e| Error::socket(&what, e))?;
            let Ok(n) = (&sock).read(&mut buf) else { break };
            for (i, m) in markers.iter().enumerate() {
                if buf[..n].windows(m.len()).any(|w| w == m) {
                    seen[i] = true;
                }
            }
            if seen == [true, true] {
                break;
            }
        }
        Ok(seen)
    });
    ready_rx.recv().map_err(|_| Error::socket("capture thread", std::io::Error::other("ended early")))??;

    let sender = std::thread::spawn(move || -> Result<(), Error> {
        let what = format!("send raw frames from pod {}", src.key());
        enter_on_this_thread(&src.netns).map_err(|e| Error::socket(&what, e))?;
        let dst_addr = SocketAddrV4::new(dst.ip, port);
        let dst_mac = resolve_next_hop(&src, dst_addr, next_hop, Duration::from_secs(3))?;
        let sock = crate::capture::bound_packet_socket(POD_IFACE, ETH_P_IP).map_err(|e| Error::socket(&what, e))?;
        let sport = random::ephemeral_port();
        let frames = [
            udp_frame(dst_mac, real_mac, SocketAddrV4::new(src.ip, sport), dst_addr, &markers[0]),
            udp_frame(
                dst_mac,
                forgery.src_mac.unwrap_or(real_mac),
                SocketAddrV4::new(forgery.src_ip.unwrap_or(src.ip), sport),
                dst_addr,
                &markers[1],
            ),
        ];
        for frame in &frames {
            // SAFETY: plain send(2) of an owned buffer on a bound packet socket.
            let n = unsafe { libc::send(sock.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
            if n < 0 {
                return Err(Error::socket(&what, std::io::Error::last_os_error()));
            }
        }
        Ok(())
    });
    let sent = sender.join().map_err(|_| Error::socket("sender thread", std::io::Error::other("panicked")))?;
    let seen = capture.join().map_err(|_| Error::socket("capture thread", std::io::Error::other("panicked")))??;
    sent?;
    Ok(SpoofOutcome { control_delivered: seen[0], forged_delivered: seen[1] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_udp_frame_carries_valid_ip_and_udp_checksums() {
        let f = udp_frame(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            SocketAddrV4::new(Ipv4Addr::new(10, 244, 1, 10), 40000),
            SocketAddrV4::new(Ipv4Addr::new(10, 244, 2, 10), 80),
            b"marker",
        );
        assert_eq!(f.len(), 14 + 20 + 8 + 6);
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        assert_eq!(internet_checksum(&[&f[14..34]]), 0, "IP header sums to zero with its checksum");
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&f[26..34]);
        pseudo.extend_from_slice(&[0, 17, 0, 14]);
        assert_eq!(internet_checksum(&[&pseudo, &f[34..]]), 0, "UDP checksum verifies");
    }

    #[test]
    fn macs_parse_from_colon_hex() {
        assert_eq!(parse_mac("02:00:0a:f4:01:0A"), Some([2, 0, 10, 244, 1, 10]));
        assert_eq!(parse_mac("02:00:0a:f4:01"), None);
        assert_eq!(parse_mac("zz:00:0a:f4:01:0a"), None);
    }
}
