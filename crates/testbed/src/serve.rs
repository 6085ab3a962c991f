//! The probe server each pod runs (`weir testbed serve`): a TCP echo listener and a UDP echo
//! socket on every TCP/UDP port of the pod, and one raw SCTP socket that answers an INIT to
//! any of the pod's SCTP ports with an INIT ACK.
use crate::error::Error;
use crate::random;
use crate::sctp::{self, Handshake, Kind};
use policy::Protocol;
use socket2::{Domain, Socket, Type};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

/// What a server listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// Protocol and port pairs.
    pub ports: Vec<(Protocol, u16)>,
    /// Created once every socket is bound, so the starter knows the server is ready.
    pub ready_file: Option<PathBuf>,
}

/// Parses `tcp:80,udp:80,sctp:81`.
pub fn parse_ports(text: &str) -> Result<Vec<(Protocol, u16)>, Error> {
    let bad = |item: &str, why: &str| Error::invalid("serve", "--ports", format!("{item:?}: {why}"));
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (proto, port) = item.split_once(':').ok_or_else(|| bad(item, "expected PROTOCOL:PORT"))?;
        let protocol = match proto.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            _ => return Err(bad(item, "protocol must be tcp, udp or sctp")),
        };
        let port: u16 = port.parse().ok().filter(|&p| p != 0).ok_or_else(|| bad(item, "port must be 1..65535"))?;
        out.push((protocol, port));
    }
    Ok(out)
}

/// Binds every socket, writes the ready file, then serves until the process is killed.
pub fn serve(config: &ServeConfig) -> Result<std::convert::Infallible, Error> {
    let mut threads = Vec::new();
    let mut sctp_ports = BTreeSet::new();
    for &(protocol, port) in &config.ports {
        let addr = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
        match protocol {
            Protocol::Tcp => {
                let listener = TcpListener::bind(addr).map_err(|e| Error::socket(format!("bind TCP {addr}"), e))?;
                threads.push(std::thread::spawn(move || tcp_accept(listener)));
            }
            Protocol::Udp => {
                let socket = UdpSocket::bind(addr).map_err(|e| Error::socket(format!("bind UDP {addr}"), e))?;
                threads.push(std::thread::spawn(move || udp_echo(socket)));
            }
            Protocol::Sctp => {
                sctp_ports.insert(port);
            }
        }
    }
    if !sctp_ports.is_empty() {
        let raw = raw_sctp_socket().map_err(|e| Error::socket("open raw SCTP socket", e))?;
        threads.push(std::thread::spawn(move || sctp_answer(raw, sctp_ports)));
    }
    if let Some(ready) = &config.ready_file {
        std::fs::write(ready, format!("{}\n", std::process::id())).map_err(|e| Error::io(ready, e))?;
    }
    for t in threads {
        let _ = t.join();
    }
    // The loops only end if their socket fails for good.
    Err(Error::socket("serve", std::io::Error::other("every listener stopped")))
}

/// A raw IPv4 socket that receives every SCTP datagram of the namespace (IP header included)
/// and sends SCTP packets for which the kernel writes the IP header.
pub fn raw_sctp_socket() -> std::io::Result<Socket> {
    Socket::new(Domain::IPV4, Type::RAW, Some(socket2::Protocol::from(sctp::IPPROTO_SCTP)))
}

fn tcp_accept(listener: TcpListener) {
    for stream in listener.incoming() {
        match stream {
            Ok(s) => {
                std::thread::spawn(move || tcp_echo(s));
            }
            // Out of file descriptors or similar: back off instead of spinning.
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Echoes until the client closes: probes just connect and close; long transfers (e.g. a
/// stream that must survive an agent restart) read their bytes back.
fn tcp_echo(mut s: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn udp_echo(socket: UdpSocket) {
    let mut buf = [0u8; 2048];
    loop {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                let _ = socket.send_to(&buf[..n], from);
            }
            // ICMP errors from earlier replies surface here; they do not stop the server.
            Err(_) => continue,
        }
    }
}

fn sctp_answer(raw: Socket, ports: BTreeSet<u16>) {
    let mut buf = [0u8; 2048];
    loop {
        let n = match (&raw).read(&mut buf) {
            Ok(n) => n,
            Err(_) => continue,
        };
        let Some((src, _dst, payload)) = sctp::ipv4_payload(&buf[..n], sctp::IPPROTO_SCTP as u8) else { continue };
        let Ok(init) = Handshake::parse(payload) else { continue };
        if init.kind != Kind::Init || !ports.contains(&init.dst_port) {
            continue;
        }
        let ack = init.ack(random::nonzero_u32(), random::bytes::<8>().to_vec());
        let _ = raw.send_to(&ack.emit(), &SocketAddrV4::new(src, 0).into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_read_as_protocol_and_number() {
        assert_eq!(
            parse_ports("tcp:80, udp:81,SCTP:82").unwrap(),
            vec![(Protocol::Tcp, 80), (Protocol::Udp, 81), (Protocol::Sctp, 82)]
        );
    }

    #[test]
    fn a_bad_port_item_is_named_in_the_error() {
        for bad in ["tcp80", "icmp:1", "udp:0", "udp:70000"] {
            let err = parse_ports(bad).unwrap_err().to_string();
            assert!(err.contains("--ports") && err.contains(bad), "{err}");
        }
    }
}
