//! Traffic no node policy may cut (Antrea's `policyBypassRules`): a direction, a protocol, an
//! address block and optionally a port, e.g. `ingress,tcp,10.0.0.0/8,22` for SSH from the
//! management network. Loopback is always bypassed besides these.
use ipnetwork::IpNetwork;
use policy::netpol::Direction;
use std::fmt;
use std::str::FromStr;

/// The protocol of a bypass entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BypassProtocol {
    /// Every IP protocol.
    Ip,
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
    /// ICMP (and ICMPv6 for IPv6 blocks).
    Icmp,
}

impl BypassProtocol {
    /// The `meta l4proto` name, for protocols that are one.
    pub fn l4proto(self, ipv6: bool) -> Option<&'static str> {
        match self {
            BypassProtocol::Ip => None,
            BypassProtocol::Tcp => Some("tcp"),
            BypassProtocol::Udp => Some("udp"),
            BypassProtocol::Sctp => Some("sctp"),
            BypassProtocol::Icmp if ipv6 => Some("ipv6-icmp"),
            BypassProtocol::Icmp => Some("icmp"),
        }
    }

    fn has_ports(self) -> bool {
        matches!(self, BypassProtocol::Tcp | BypassProtocol::Udp | BypassProtocol::Sctp)
    }
}

/// One bypass entry: traffic of `direction` (from the host's side) with a peer in `cidr`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bypass {
    /// Ingress: traffic to the host from `cidr`; egress: from the host to `cidr`.
    pub direction: Direction,
    /// The protocol.
    pub protocol: BypassProtocol,
    /// The peer's block.
    pub cidr: IpNetwork,
    /// The host's port (ingress) or the peer's (egress); `None` is every port.
    pub port: Option<u16>,
}

impl FromStr for Bypass {
    type Err = String;

    /// `DIRECTION,PROTOCOL,CIDR[,PORT]`, e.g. `ingress,tcp,10.0.0.0/8,22` or `egress,udp,0.0.0.0/0,53`.
    fn from_str(s: &str) -> Result<Bypass, String> {
        let fields: Vec<&str> = s.split(',').map(str::trim).collect();
        let [direction, protocol, cidr, rest @ ..] = fields.as_slice() else {
            return Err(format!("bypass rule {s:?}: expected DIRECTION,PROTOCOL,CIDR[,PORT]"));
        };
        let direction = match direction.to_ascii_lowercase().as_str() {
            "ingress" => Direction::Ingress,
            "egress" => Direction::Egress,
            other => return Err(format!("bypass rule {s:?}: direction {other:?} is neither ingress nor egress")),
        };
        let protocol = match protocol.to_ascii_lowercase().as_str() {
            "ip" => BypassProtocol::Ip,
            "tcp" => BypassProtocol::Tcp,
            "udp" => BypassProtocol::Udp,
            "sctp" => BypassProtocol::Sctp,
            "icmp" => BypassProtocol::Icmp,
            other => return Err(format!("bypass rule {s:?}: protocol {other:?} is not ip, tcp, udp, sctp or icmp")),
        };
        let cidr: IpNetwork = cidr.parse().map_err(|e| format!("bypass rule {s:?}: cidr {cidr:?}: {e}"))?;
        let port = match rest {
            [] => None,
            [p] if protocol.has_ports() => Some(p.parse().map_err(|e| format!("bypass rule {s:?}: port {p:?}: {e}"))?),
            [_] => return Err(format!("bypass rule {s:?}: protocol {protocol:?} has no ports")),
            _ => return Err(format!("bypass rule {s:?}: expected DIRECTION,PROTOCOL,CIDR[,PORT]")),
        };
        Ok(Bypass { direction, protocol, cidr: IpNetwork::new(cidr.network(), cidr.prefix()).expect("same prefix"), port })
    }
}

impl fmt::Display for Bypass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{:?},{}", self.direction.lower(), self.protocol, self.cidr)?;
        match self.port {
            Some(p) => write!(f, ",{p}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_direction_protocol_block_and_port() {
        let b: Bypass = "ingress,tcp,10.0.0.7/8,22".parse().unwrap();
        assert_eq!(b.direction, Direction::Ingress);
        assert_eq!(b.protocol, BypassProtocol::Tcp);
        assert_eq!(b.cidr.to_string(), "10.0.0.0/8");
        assert_eq!(b.port, Some(22));
    }

    #[test]
    fn bad_entries_name_the_field() {
        for (text, field) in [
            ("sideways,tcp,10.0.0.0/8", "direction"),
            ("ingress,gre,10.0.0.0/8", "protocol"),
            ("ingress,tcp,10.0.0.0/33", "cidr"),
            ("ingress,icmp,10.0.0.0/8,22", "no ports"),
            ("ingress,tcp", "expected"),
        ] {
            let e = text.parse::<Bypass>().unwrap_err();
            assert!(e.contains(field), "{text}: {e}");
        }
    }
}
