//! Tracing one packet through the real switch with `ovs-appctl ofproto/trace`, and reading
//! what the switch did with it.
//!
//! The trace runs the first pass up to conntrack, then resumes with `--ct-next trk,new` as if
//! conntrack had seen a new connection: exactly the path a connection's first packet takes,
//! where policy is decided.

use policy::Protocol;
use std::fmt;
use std::net::Ipv4Addr;
use testbed::ovs::OvsSwitch;

/// Where a traced packet enters the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingress {
    /// From a local pod's port, sent by the pod itself (its MAC, its address).
    Pod {
        /// The pod's OpenFlow port.
        ofport: u32,
        /// The pod's MAC.
        mac: openflow::Mac,
    },
    /// From the tunnel port, encapsulated by another node.
    Tunnel {
        /// The tunnel's OpenFlow port.
        ofport: u32,
        /// The sending node's tunnel endpoint.
        tun_src: Ipv4Addr,
        /// This node's tunnel endpoint.
        tun_dst: Ipv4Addr,
    },
}

/// A packet to trace: the first packet of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Where it enters.
    pub ingress: Ingress,
    /// Destination MAC as sent (the gateway's, or the tunnel MAC).
    pub eth_dst: openflow::Mac,
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Transport protocol.
    pub protocol: Protocol,
    /// Destination port.
    pub dst_port: u16,
}

impl Probe {
    /// The flow in ovs-ofctl syntax, as `ofproto/trace` takes it.
    pub fn flow(&self) -> String {
        let mut f = match self.ingress {
            Ingress::Pod { ofport, mac } => format!("in_port={ofport},dl_src={mac}"),
            Ingress::Tunnel { ofport, tun_src, tun_dst } => {
                format!("in_port={ofport},tun_src={tun_src},tun_dst={tun_dst},tun_id=0,dl_src=02:00:00:00:00:01")
            }
        };
        let proto = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        };
        // `tp_dst` is an alias of `tcp_dst` only; each protocol has its own port fields.
        f += &format!(
            ",{proto},dl_dst={},nw_src={},nw_dst={},nw_ttl=64,{proto}_src=40000,{proto}_dst={}",
            self.eth_dst, self.src, self.dst, self.dst_port
        );
        if self.protocol == Protocol::Tcp {
            f += ",tcp_flags=0x002"; // SYN
        }
        f
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = match self.ingress {
            Ingress::Pod { ofport, .. } => format!("local port {ofport}"),
            Ingress::Tunnel { tun_src, .. } => format!("tunnel from {tun_src}"),
        };
        write!(f, "{} {} -> {}:{} ({from})", self.protocol, self.src, self.dst, self.dst_port)
    }
}

/// What the switch did with a traced packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traced {
    /// The OpenFlow port the pipeline output to after conntrack, if any.
    pub output: Option<u32>,
    /// The last `Datapath actions:` line, without the prefix.
    pub datapath_actions: String,
    /// The whole trace, for reports.
    pub text: String,
}

/// A trace that did not run or does not read as expected.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// ovs-appctl failed.
    #[error("ofproto/trace failed: {0}")]
    Command(#[from] testbed::command::CommandError),
    /// The trace has no `Datapath actions:` line.
    #[error("trace has no \"Datapath actions:\" line:\n{0}")]
    NoActions(String),
}

/// The connection state conntrack reports when the trace resumes after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtNext {
    /// The first packet of a connection: policy decides.
    New,
    /// A packet of an established connection, in its original direction: only the admin
    /// tiers are checked again.
    Established,
    /// A reply of an established connection: policy was already applied.
    Reply,
    /// A packet conntrack cannot place.
    Invalid,
}

impl CtNext {
    /// The `--ct-next` argument.
    pub fn flags(self) -> &'static str {
        match self {
            CtNext::New => "trk,new",
            CtNext::Established => "trk,est",
            CtNext::Reply => "trk,est,rpl",
            CtNext::Invalid => "trk,inv",
        }
    }
}

/// Traces `probe` through `bridge`, conntrack answering `ct`.
pub fn trace(ovs: &OvsSwitch, bridge: &str, probe: &Probe, ct: CtNext) -> Result<Traced, TraceError> {
    let text = ovs.appctl(&["ofproto/trace", bridge, &probe.flow(), "--ct-next", ct.flags()])?;
    parse(text)
}

/// Reads a trace. When the packet went through conntrack, only the part after the
/// recirculation decides: before it the packet has not been through policy. (SCTP skips
/// conntrack, whose userspace implementation tracks it by address pair only; its trace is one
/// pass.)
pub fn parse(text: String) -> Result<Traced, TraceError> {
    let datapath_actions = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("Datapath actions:"))
        .map(|s| s.trim().to_string())
        .ok_or_else(|| TraceError::NoActions(text.clone()))?;
    let after = text.rfind("resume conntrack").map_or(text.as_str(), |at| &text[at..]);
    let output = after
        .lines()
        .filter_map(|l| l.trim().strip_prefix("-> output port is "))
        .filter_map(|p| p.trim().parse().ok())
        .next_back();
    Ok(Traced { output, datapath_actions, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_probe_from_a_pod_is_a_syn_from_its_mac() {
        let p = Probe {
            ingress: Ingress::Pod { ofport: 10, mac: openflow::Mac([2, 0, 10, 10, 1, 10]) },
            eth_dst: openflow::Mac([10, 0, 10, 10, 1, 1]),
            src: Ipv4Addr::new(10, 10, 1, 10),
            dst: Ipv4Addr::new(10, 10, 1, 11),
            protocol: Protocol::Tcp,
            dst_port: 80,
        };
        assert_eq!(
            p.flow(),
            "in_port=10,dl_src=02:00:0a:0a:01:0a,tcp,dl_dst=0a:00:0a:0a:01:01,nw_src=10.10.1.10,nw_dst=10.10.1.11,\
             nw_ttl=64,tcp_src=40000,tcp_dst=80,tcp_flags=0x002"
        );
    }
}
