//! Transport protocols that Kubernetes network policy can name.
//!
//! Kubernetes spells them in capitals (`TCP`, `UDP`, `SCTP`) and defaults to TCP wherever a
//! protocol is optional (`NetworkPolicyPort.protocol`, `ContainerPort.protocol`).
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A transport protocol policy can match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub enum Protocol {
    /// TCP, IP protocol 6; the Kubernetes default.
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP, IP protocol 17.
    #[serde(rename = "UDP")]
    Udp,
    /// SCTP, IP protocol 132.
    #[serde(rename = "SCTP")]
    Sctp,
}

/// Every protocol, in the order tables and reports list them.
pub const PROTOCOLS: [Protocol; 3] = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp];

impl Protocol {
    /// The Kubernetes spelling (`TCP`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }

    /// The IP protocol number.
    pub fn ip_proto(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    /// Lower-case spelling, as used in container port names (`serve-80-tcp`).
    pub fn lower(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A protocol name that is not TCP, UDP or SCTP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported protocol {0:?}: expected TCP, UDP or SCTP")]
pub struct UnknownProtocol(pub String);

impl FromStr for Protocol {
    type Err = UnknownProtocol;
    /// Accepts the Kubernetes spelling and, for command lines, lower case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "TCP" | "tcp" => Ok(Protocol::Tcp),
            "UDP" | "udp" => Ok(Protocol::Udp),
            "SCTP" | "sctp" => Ok(Protocol::Sctp),
            _ => Err(UnknownProtocol(s.to_string())),
        }
    }
}
