//! The tunnel collector: a namespace on the testbed's underlay with its own address
//! ([`Layout::COLLECTOR_IP`], `192.168.77.200`), standing for a monitoring host that receives
//! mirrored traffic over VXLAN, GENEVE, GRE or ERSPAN; and for any host outside the cluster
//! that pods reach through their node's gateway (masqueraded to the node's address).
//!
//! It is plugged into the **last node's `br-phy`** (a standalone OVS bridge, so a learning
//! switch) through a veth: with two nodes the underlay is a bare veth between the nodes, and
//! `br-phy` is the one switch every node's tunnel traffic can reach it through; with more nodes
//! it works the same. Seen from node 1, the collector is "on another node". Every node's
//! userspace tunnel neighbour table is pre-seeded with the collector's MAC (as `up` does for the
//! nodes), so the first mirrored packet is not lost to ARP; its kernel still answers ARP.
//!
//! [`Collector::start`] captures on its `eth0` (AF_PACKET); [`CollectorCapture::stop`] decodes
//! what arrived with [`crate::encap`].
use crate::capture::{Capture, Direction};
use crate::command::{run, run_with_input};
use crate::encap::{self, Encap, Encapsulated, UdpPorts};
use crate::error::Error;
use crate::layout::{self, Layout, PHY_BRIDGE, POD_IFACE};
use crate::netns::Netns;
use crate::packet::{DecodeError, Packet};
use crate::state::{CollectorState, State};
use crate::testbed::Testbed;
use std::process::Command;
use std::time::Duration;

/// The collector's interface inside its namespace.
pub const COLLECTOR_IFACE: &str = POD_IFACE;

/// A collector attached to a testbed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collector {
    state: CollectorState,
}

impl Collector {
    /// Attaches the collector (or checks and repairs the one already attached): its namespace,
    /// its veth on the last node's `br-phy`, its address, and every node's tunnel neighbour
    /// entry for it. Recorded in the state file, so `testbed down` removes it.
    pub fn attach(tb: &mut Testbed) -> Result<Collector, Error> {
        let mut state = State::load(tb.dir())?;
        let layout = Layout::new(&state.prefix)?;
        let host = state
            .nodes
            .last()
            .ok_or_else(|| Error::invalid("testbed", "nodes", "has no node to attach the collector to"))?
            .clone();
        let ip = Layout::COLLECTOR_IP;
        if let Some(clash) = state.nodes.iter().find(|n| n.underlay_ip == ip) {
            return Err(Error::invalid("collector", "ip", format!("{ip} is also the underlay IP of {}", clash.name)));
        }
        let collector = match &state.collector {
            Some(c) => c.clone(),
            None => {
                let c = CollectorState {
                    netns: layout.collector_netns(),
                    node: host.name.clone(),
                    veth: layout.collector_veth(),
                    ip,
                    mac: layout::mac_for(ip),
                };
                if Netns::exists(&c.netns) {
                    return Err(Error::invalid(
                        "collector",
                        "netns",
                        format!(
                            "{} exists but {} records no collector; it belongs to something else",
                            c.netns,
                            tb.dir().display()
                        ),
                    ));
                }
                // Recorded before it exists, so an interrupted attach is still torn down.
                state.collector = Some(c.clone());
                state.save()?;
                c
            }
        };
        Netns::add(&collector.netns)?.keep();
        let host = state.node(&collector.node).ok_or_else(|| Error::NoSuchTarget(collector.node.clone()))?;
        let in_node = run(Command::new("ip").args(["-n", &host.netns, "link", "show", "dev", &collector.veth])).is_ok();
        if !in_node {
            run(Command::new("ip").args([
                "link",
                "add",
                &collector.veth,
                "netns",
                &host.netns,
                "type",
                "veth",
                "peer",
                "name",
                COLLECTOR_IFACE,
                "netns",
                &collector.netns,
            ]))?;
        }
        let batch = format!(
            "link set {COLLECTOR_IFACE} address {mac}\n\
             addr replace {ip}/{len} dev {COLLECTOR_IFACE}\n\
             link set {COLLECTOR_IFACE} up\n",
            mac = collector.mac,
            ip = collector.ip,
            len = Layout::UNDERLAY_PREFIX_LEN,
        );
        run_with_input(Command::new("ip").args(["-n", &collector.netns, "-batch", "-"]), &batch)?;
        // What it sends crosses OVS's userspace datapath, which forwards a checksum the kernel
        // left to offload unfilled (as for pods): TCP replies to a node would be dropped there.
        run(Command::new("ip").args(["netns", "exec", &collector.netns, "ethtool", "-K", COLLECTOR_IFACE, "tx", "off"]))?;
        run(Command::new("ip").args(["-n", &host.netns, "link", "set", &collector.veth, "up"]))?;
        let host_switch = tb.switch(&host.name)?;
        host_switch.vsctl(&["--may-exist", "add-port", PHY_BRIDGE, &collector.veth])?;
        for node in &state.nodes {
            tb.switch(&node.name)?.appctl(&["tnl/neigh/set", PHY_BRIDGE, &collector.ip.to_string(), &collector.mac])?;
        }
        tb.reload()?;
        Ok(Collector { state: collector })
    }

    /// The collector of the testbed, if one is attached.
    pub fn of(tb: &Testbed) -> Option<Collector> {
        tb.state().collector.clone().map(|state| Collector { state })
    }

    /// Its underlay address (a tunnel's `remoteIP`).
    pub fn ip(&self) -> std::net::Ipv4Addr {
        self.state.ip
    }

    /// Its network namespace.
    pub fn netns(&self) -> &str {
        &self.state.netns
    }

    /// Starts capturing what reaches the collector; VXLAN and GENEVE are recognised on the UDP
    /// ports in `ports` (`UdpPorts::default()`: the IANA ones).
    pub fn start(&self, ports: UdpPorts) -> Result<CollectorCapture, Error> {
        Ok(CollectorCapture { capture: Capture::start(&self.state.netns, COLLECTOR_IFACE)?, ports, ip: self.state.ip })
    }
}

/// A running capture on the collector.
#[derive(Debug)]
pub struct CollectorCapture {
    capture: Capture,
    ports: UdpPorts,
    ip: std::net::Ipv4Addr,
}

impl CollectorCapture {
    /// Waits `settle` for packets still in flight, stops and decodes.
    pub fn stop_after(self, settle: Duration) -> Result<Collected, Error> {
        std::thread::sleep(settle);
        self.stop()
    }

    /// Stops and decodes everything addressed to the collector.
    pub fn stop(self) -> Result<Collected, Error> {
        let frames = self.capture.stop()?;
        let mut out = Collected::default();
        for f in frames.iter().filter(|f| f.direction == Direction::Received) {
            let packet = match Packet::decode(&f.bytes) {
                Ok(p) => p,
                Err(e) => {
                    out.malformed.push((e, f.bytes.clone()));
                    continue;
                }
            };
            let Some(ip) = packet.ipv4().filter(|ip| ip.dst == self.ip) else {
                out.other.push(packet);
                continue;
            };
            match encap::decode_ipv4(ip, &self.ports) {
                Ok(Some(e)) => out.tunnelled.push(e),
                Ok(None) => out.other.push(packet),
                Err(e) => out.malformed.push((e, f.bytes.clone())),
            }
        }
        Ok(out)
    }
}

/// What a collector received.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    /// Tunnelled frames to the collector, decoded.
    pub tunnelled: Vec<Encapsulated>,
    /// Tunnel frames whose headers did not decode, with the reason.
    pub malformed: Vec<(DecodeError, Vec<u8>)>,
    /// Everything else (ARP, non-tunnel traffic).
    pub other: Vec<Packet>,
}

impl Collected {
    /// The inner packets of the frames with exactly this encapsulation (inner frames that do
    /// not decode are left out; see [`Collected::summary`]).
    pub fn inner(&self, encap: Encap) -> Vec<Packet> {
        self.tunnelled.iter().filter(|e| e.encap == encap).filter_map(|e| e.inner_packet().ok()).collect()
    }

    /// One line per frame, for assertion messages.
    pub fn summary(&self) -> String {
        let mut lines: Vec<String> = self
            .tunnelled
            .iter()
            .map(|e| {
                let inner = e
                    .inner_packet()
                    .map(|p| p.to_string())
                    .unwrap_or_else(|err| format!("undecodable inner frame: {err}"));
                format!("{} > {} {}: {inner}", e.outer_src, e.outer_dst, e.encap)
            })
            .collect();
        lines.extend(self.malformed.iter().map(|(e, b)| format!("malformed ({} bytes): {e}", b.len())));
        lines.extend(self.other.iter().map(|p| format!("other: {p}")));
        if lines.is_empty() {
            return "(nothing)".into();
        }
        lines.join("\n")
    }
}
