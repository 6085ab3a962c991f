//! Registers and marks, each bit range declared once.
//!
//! ```text
//! reg0[0..3]  packet source: 1 = tunnel, 2 = local pod, 3 = host gateway, 4 = uplink, 5 = host interface
//! reg0[4]     established: the packet belongs to a connection policy already allowed (NetworkPolicy lets it pass)
//! reg0[5]     returned: the packet came back from a TrafficControl redirect (no TrafficControl again)
//! reg0[6]     reply: the packet goes the reply way of a connection policy already allowed (skips the admin tiers too)
//! reg0[7]     to gateway: a reply of a connection that came in from the host gateway goes back to it
//! reg0[8]     audit: the packet-in it comes with is to be logged (a rule with audit logging)
//! reg0[9]     answer: the packet-in it comes with is to be answered (a Reject rule)
//! ct_mark 0x1 the connection came in from the host gateway (its replies go back to the host, which may have DNATed it)
//! reg1        output port, chosen by L2Forwarding; ingress policy matches the destination pod on it
//! ```
//! Flow code uses these names, never raw `reg0[0..3]`.

use openflow::{Action, Field, FieldRange, Match};

/// A named range of register bits.
#[derive(Debug, Clone, Copy)]
pub struct RegField {
    /// The register and bits.
    pub range: FieldRange,
}

impl RegField {
    const fn new(reg: u8, start: u16, end: u16) -> Self {
        RegField { range: FieldRange { field: Field::Reg(reg), ofs: start, n_bits: end - start + 1 } }
    }

    fn mask(&self) -> u128 {
        ((1u128 << self.range.n_bits) - 1) << self.range.ofs
    }

    /// Matches packets whose bits hold `value`.
    pub fn matches(&self, m: Match, value: u32) -> Match {
        if self.range.n_bits == 32 {
            return m.with(self.range.field, value);
        }
        m.with_masked(self.range.field, (u128::from(value) << self.range.ofs) as u32, self.mask() as u32)
    }

    /// The bits' value in `m` (a packet-in's pipeline fields: registers that are zero are
    /// left out, so a missing register reads 0).
    pub fn value_in(&self, m: &Match) -> u32 {
        let reg = m.get(self.range.field).map_or(0, |e| e.value);
        ((reg & self.mask()) >> self.range.ofs) as u32
    }

    /// Loads `value` into the bits.
    pub fn load(&self, value: u32) -> Action {
        Action::load(self.range, u128::from(value))
    }
}

/// Where the packet entered the bridge.
pub const SOURCE: RegField = RegField::new(0, 0, 3);
/// [`SOURCE`]: from a tunnel port.
pub const FROM_TUNNEL: u32 = 1;
/// [`SOURCE`]: from a local pod.
pub const FROM_POD: u32 = 2;
/// [`SOURCE`]: from the host gateway port (the node's own network stack).
pub const FROM_GATEWAY: u32 = 3;
/// [`SOURCE`]: from the uplink of a host interface moved onto the bridge (the network).
pub const FROM_UPLINK: u32 = 4;
/// [`SOURCE`]: from the internal port of a host interface moved onto the bridge (the host).
pub const FROM_HOST_INTERFACE: u32 = 5;

/// The packet belongs to a connection policy already allowed (set by ConntrackState from
/// `ct_state`, or by a learned SCTP reply flow); the NetworkPolicy tables let it pass, the
/// admin tables check it again unless it is a [`REPLY`].
pub const ESTABLISHED: RegField = RegField::new(0, 4, 4);

/// The packet came back through a TrafficControl return port: it is delivered without being
/// mirrored or redirected again (no loops).
pub const RETURNED: RegField = RegField::new(0, 5, 5);

/// The packet travels in the reply direction of a connection policy already allowed (set with
/// [`ESTABLISHED`] by ConntrackState): it skips the admin tiers as well. Established packets in
/// the original direction do not: admin rules are checked on every such packet, so a Deny
/// added after a connection began still stops it (see `crate::placement`).
pub const REPLY: RegField = RegField::new(0, 6, 6);

/// The packet is a reply of a connection that entered from the host gateway: L3Forwarding
/// sends it back there (set by ConntrackState from [`CT_MARK_FROM_GATEWAY`]), so the host can
/// undo its DNAT (Services) or masquerade.
pub const TO_GATEWAY: RegField = RegField::new(0, 7, 7);

/// `ct_mark` of a connection that entered from the host gateway (committed by ConntrackCommit).
pub const CT_MARK_FROM_GATEWAY: u32 = 0x1;
/// Set on a packet a rule with audit logging sends to the agent: the agent writes a line
/// about its connection (see [`crate::audit`]). Read back from the packet-in's registers.
pub const AUDIT: RegField = RegField::new(0, 8, 8);

/// Set on a packet a Reject rule sends to the agent: the agent answers it (see
/// [`crate::reject`]). Read back from the packet-in's registers.
pub const ANSWER: RegField = RegField::new(0, 9, 9);

/// The output port (whole reg1).
pub const OUT_PORT: RegField = RegField::new(1, 0, 31);

/// The local endpoint whose egress policy the packet meets: its OpenFlow port. Classifier sets
/// it from `in_port` for a pod's own packets and for what a host interface's internal port sends
/// (see `crate::host_interface`); ConntrackState sets it for a packet the host
/// gateway forwards with a local pod's source address (a Service connection after the host's
/// DNAT), so egress policy judges the real destination, not the ClusterIP.
pub const SENDER: RegField = RegField::new(3, 0, 31);

/// The conntrack zone weir uses for all pod traffic.
pub const CT_ZONE: u16 = 65520;

/// Scratch register for swapping the ARP sender and target addresses.
pub const ARP_SWAP: RegField = RegField::new(2, 0, 31);

/// Every register range with what it holds, for the documentation (`pipeline-docs`).
pub const REGISTERS: &[(RegField, &str)] = &[
    (SOURCE, "packet source: 1 tunnel, 2 local pod, 3 host gateway, 4 uplink, 5 host interface"),
    (ESTABLISHED, "established: a connection policy already allowed (NetworkPolicy and baseline let it pass)"),
    (RETURNED, "returned through a TrafficControl return port (not mirrored or redirected again)"),
    (REPLY, "reply direction of an allowed connection (the admin tiers let it pass too)"),
    (TO_GATEWAY, "reply of a connection that came from the host gateway: back to the gateway (ct_mark 0x1 marks such connections)"),
    (AUDIT, "the packet-in of this packet is to be logged (a rule with audit logging)"),
    (ANSWER, "the packet-in of this packet is to be answered (a Reject rule)"),
    (OUT_PORT, "output port, chosen by L2Forwarding; ingress policy matches the destination pod on it"),
    (ARP_SWAP, "scratch for the ARP responder"),
    (SENDER, "the local pod egress policy applies to (its OpenFlow port): the pod itself, or the source of a connection the host gateway forwards after DNAT; or a host interface's internal port"),
];

impl RegField {
    /// The range as OVS writes it: `reg0[4]`, `reg0[0..3]`, `reg1`.
    pub fn name(&self) -> String {
        let reg = self.range.field.to_string();
        match self.range.n_bits {
            32 => reg.to_string(),
            1 => format!("{reg}[{}]", self.range.ofs),
            n => format!("{reg}[{}..{}]", self.range.ofs, self.range.ofs + n - 1),
        }
    }
}

/// `ct_state` bits (OVS `CS_*`).
pub mod ct_state {
    /// The first packet of a connection.
    pub const NEW: u32 = 0x01;
    /// Part of an established connection.
    pub const EST: u32 = 0x02;
    /// In the reply direction of its connection.
    pub const RPL: u32 = 0x08;
    /// Invalid (conntrack could not make sense of it).
    pub const INV: u32 = 0x10;
    /// Has been through conntrack.
    pub const TRK: u32 = 0x20;
}

/// Matches `ct_state` with the bits in `set` on and those in `clear` off (`+trk-new` is
/// `ct_match(m, TRK, NEW)`).
pub fn ct_match(m: Match, set: u32, clear: u32) -> Match {
    m.with_masked(Field::CtState, set, set | clear)
}
