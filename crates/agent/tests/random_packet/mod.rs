//! Random packets for the oracle-vs-switch test, and which part of the oracle's verdict the
//! local node decides for each.
//!
//! Half the packets are aimed at a rule: from or to a pod the rule applies to on this node,
//! with a peer the rule names (a selected pod, or an address in, at the edge of, or excepted
//! from one of its blocks) and a port at or around one the rule names. The rest are drawn
//! from everything, so default denies and unrelated traffic are covered too. Aiming only
//! chooses packets; the expected verdict always comes from the oracle.

use crate::ofproto_trace::{Ingress, Probe};
use crate::random_cluster::{Dice, EXTERNALS, LOCAL_NODE_IP, RandomCluster, REMOTE_NODE, REMOTE_NODE_IP};
use pipeline::{LocalPod, Topology};
use policy::netpol::{PortMatch, Service};
use policy::{Cluster, Direction, Endpoint, Peers, Protocol, RuleSet, Services, Verdict};
use std::net::{IpAddr, Ipv4Addr};

/// Which part of the oracle's verdict a packet's path on this node decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Path {
    /// Local pod to local pod: egress and ingress.
    LocalToLocal,
    /// Local pod to a remote pod: egress only, out through the tunnel.
    LocalToRemote,
    /// From the tunnel to a local pod: ingress only.
    TunnelToLocal,
}

impl Path {
    /// Every path.
    pub const ALL: [Path; 3] = [Path::LocalToLocal, Path::LocalToRemote, Path::TunnelToLocal];

    /// The oracle's answer for the part of the path this node enforces.
    pub fn oracle_allows(self, v: &Verdict) -> bool {
        match self {
            Path::LocalToLocal => v.allowed,
            Path::LocalToRemote => v.egress.allows(),
            Path::TunnelToLocal => v.ingress.allows(),
        }
    }

    /// Whether a rule (rather than isolation or its absence) decided that part.
    pub fn decided_by_rule(self, v: &Verdict) -> bool {
        match self {
            Path::LocalToLocal => v.egress.rule.is_some() || v.ingress.rule.is_some(),
            Path::LocalToRemote => v.egress.rule.is_some(),
            Path::TunnelToLocal => v.ingress.rule.is_some(),
        }
    }
}

/// One packet to check.
pub struct Case {
    /// Its path through this node.
    pub path: Path,
    /// The packet as traced.
    pub probe: Probe,
    /// The port it must leave through when policy allows it.
    pub allowed_port: u32,
}

/// Everything a packet can be drawn from.
pub struct Scene<'a> {
    /// The cluster.
    pub cluster: &'a Cluster,
    /// Its rules.
    pub rules: &'a RuleSet,
    /// This node.
    pub topo: &'a Topology,
    /// The generator's notes on it.
    pub generated: &'a RandomCluster,
    /// The tunnel's OpenFlow port.
    pub tunnel_ofport: u32,
}

impl Scene<'_> {
    fn remote_pods(&self) -> Vec<Ipv4Addr> {
        self.cluster
            .policy_pods()
            .filter(|p| p.node.as_deref() == Some(REMOTE_NODE))
            .filter_map(|p| match p.ips.first() {
                Some(IpAddr::V4(ip)) => Some(*ip),
                _ => None,
            })
            .collect()
    }

    fn local(&self, ip: Ipv4Addr) -> Option<&LocalPod> {
        self.topo.local_pods.values().find(|p| p.ip == ip)
    }

    /// A packet, aimed at a rule half of the time.
    pub fn case(&self, d: &mut Dice) -> Case {
        if d.chance(50)
            && let Some(c) = self.aimed(d)
        {
            return c;
        }
        self.anything(d)
    }

    fn anything(&self, d: &mut Dice) -> Case {
        let locals: Vec<Ipv4Addr> = self.topo.local_pods.values().map(|p| p.ip).collect();
        let remotes = self.remote_pods();
        let (protocol, dst_port) = if d.chance(60) && !self.generated.services.is_empty() {
            d.pick(&self.generated.services)
        } else {
            let protocol = d.pick(&[Protocol::Tcp, Protocol::Udp, Protocol::Sctp]);
            (protocol, if d.chance(70) { d.pick(&self.generated.ports) } else { d.u16().max(1) })
        };
        let roll = d.below(100);
        let (src, dst) = if roll < 40 && locals.len() >= 2 {
            // Traffic from a pod to itself never reaches the bridge; pick two different pods.
            let s = d.below(locals.len());
            let t = (s + 1 + d.below(locals.len() - 1)) % locals.len();
            (locals[s], locals[t])
        } else if roll < 65 && !remotes.is_empty() {
            (d.pick(&locals), d.pick(&remotes))
        } else {
            let src = if d.chance(55) && !remotes.is_empty() { d.pick(&remotes) } else { d.pick(&EXTERNALS) };
            (src, d.pick(&locals))
        };
        self.between(src, dst, protocol, dst_port).expect("src or dst is local")
    }

    /// A packet aimed at a random rule that applies to a local pod, if there is one.
    fn aimed(&self, d: &mut Dice) -> Option<Case> {
        let rules: Vec<_> = self
            .rules
            .rules
            .iter()
            .filter(|r| r.applied_to.iter().any(|e| matches!(e, Endpoint::Pod(k) if self.topo.local_pods.contains_key(k))))
            .collect();
        if rules.is_empty() {
            return None;
        }
        let rule = d.pick(&rules);
        let applied: Vec<Ipv4Addr> = rule
            .applied_to
            .iter()
            .filter_map(|e| match e {
                Endpoint::Pod(k) => self.topo.local_pods.get(k).map(|p| p.ip),
                Endpoint::Node(_) | Endpoint::ExternalEntity(_) => None,
            })
            .collect();
        let me = d.pick(&applied);
        let peer = self.peer_of(d, &rule.peers, rule.direction)?;
        if peer == me {
            return None;
        }
        let (src, dst) = match rule.direction {
            Direction::Egress => (me, peer),
            Direction::Ingress => (peer, me),
        };
        let dst_pod = self.cluster.pod_by_ip(dst.into());
        let (protocol, dst_port) = match &rule.services {
            Services::List(list) if !list.is_empty() => {
                let service = d.pick(list);
                service_port(d, &service, dst_pod)
            }
            _ => (d.pick(&[Protocol::Tcp, Protocol::Udp, Protocol::Sctp]), d.pick(&self.generated.ports)),
        };
        self.between(src, dst, protocol, dst_port)
    }

    /// An address the rule names as peer: a selected pod, or one in, at the edge of, or
    /// excepted from a block. `None` when it names nothing this node could see.
    fn peer_of(&self, d: &mut Dice, peers: &Peers, direction: Direction) -> Option<Ipv4Addr> {
        let pods: Vec<Ipv4Addr> = match peers {
            Peers::Any => self.cluster.policy_pods().filter_map(|p| v4(p.ips.first()?)).collect(),
            Peers::Set { pods, .. } => pods.iter().filter_map(|k| v4(self.cluster.pod(k)?.ips.first()?)).collect(),
        };
        let mut candidates = pods;
        if let Peers::Set { blocks, .. } = peers {
            for b in blocks {
                let ipnetwork::IpNetwork::V4(net) = b.cidr else { continue };
                candidates.extend([net.network(), net.broadcast()]);
                candidates.extend(b.except.iter().filter_map(|e| match e {
                    ipnetwork::IpNetwork::V4(e) => Some(e.network()),
                    ipnetwork::IpNetwork::V6(_) => None,
                }));
            }
            candidates.extend(EXTERNALS);
        }
        // Egress peers must be pods this node can route to; ingress peers come from anywhere.
        candidates.retain(|ip| match direction {
            Direction::Egress => self.cluster.pod_by_ip((*ip).into()).is_some_and(|p| !p.host_network),
            Direction::Ingress => true,
        });
        (!candidates.is_empty()).then(|| d.pick(&candidates))
    }

    /// The case for a packet from `src` to `dst`, if one of them is a local pod and the other
    /// reachable as this pipeline routes: local to local or remote pod, tunnel to local.
    fn between(&self, src: Ipv4Addr, dst: Ipv4Addr, protocol: Protocol, dst_port: u16) -> Option<Case> {
        let dst_port = dst_port.max(1);
        if let Some(from) = self.local(src) {
            let (path, allowed_port) = match self.local(dst) {
                Some(to) => (Path::LocalToLocal, to.ofport),
                None if self.remote_pods().contains(&dst) => (Path::LocalToRemote, self.tunnel_ofport),
                None => return None,
            };
            let ingress = Ingress::Pod { ofport: from.ofport, mac: from.mac };
            let probe = Probe { ingress, eth_dst: self.topo.gateway_mac, src, dst, protocol, dst_port };
            return Some(Case { path, probe, allowed_port });
        }
        let to = self.local(dst)?;
        let ingress = Ingress::Tunnel { ofport: self.tunnel_ofport, tun_src: REMOTE_NODE_IP, tun_dst: LOCAL_NODE_IP };
        let probe = Probe { ingress, eth_dst: pipeline::topology::TUNNEL_MAC, src, dst, protocol, dst_port };
        Some(Case { path: Path::TunnelToLocal, probe, allowed_port: to.ofport })
    }
}

fn v4(ip: &IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(v4) => Some(*v4),
        IpAddr::V6(_) => None,
    }
}

/// A protocol and port at or around what `service` admits on `dst`.
fn service_port(d: &mut Dice, service: &Service, dst: Option<&policy::Pod>) -> (Protocol, u16) {
    let port = match &service.port {
        PortMatch::Any => d.u16(),
        PortMatch::Range(lo, hi) => {
            d.pick(&[lo.saturating_sub(1), *lo, lo / 2 + hi / 2, *hi, hi.saturating_add(1)])
        }
        PortMatch::Named(name) => match dst.and_then(|p| p.named_port(name, service.protocol)) {
            Some(n) => d.pick(&[n, n, n.saturating_add(1)]),
            None => d.u16(),
        },
    };
    // Now and then the same port on another protocol.
    let protocol = if d.chance(15) { d.pick(&[Protocol::Tcp, Protocol::Udp, Protocol::Sctp]) } else { service.protocol };
    (protocol, port)
}
