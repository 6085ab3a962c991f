//! Reject: the switch cannot write a TCP RST (its sequence numbers come from the packet) or
//! an ICMP error (it quotes the packet), so a Reject rule sends the packet to the agent,
//! which builds the answer and injects it where routing starts, marked as a reply so that no
//! policy stops it on its way back to the client.
//!
//! A flood of rejected packets must not overload the agent: every packet-in passes
//! [`PACKET_IN_METER`] first, and the packets over its rate are dropped by the switch (a
//! dropped answer reads as Deny to the client, never as Allow).

use crate::reg;
use crate::table::Table;
use openflow::wire::meter::{MeterBand, MeterMod, band_type, meter_flags};
use openflow::{Action, Controller, Match, PortNo};

/// The meter every packet-in of weir's flows passes.
pub const PACKET_IN_METER: u32 = 1;
/// Packets per second the agent is sent at most.
pub const PACKET_IN_RATE: u32 = 500;
/// The burst [`PACKET_IN_METER`] lets through above its rate.
pub const PACKET_IN_BURST: u32 = 100;

/// The actions of a Reject rule's flows: to the agent, through the meter.
pub fn reject_actions() -> Vec<Action> {
    vec![Action::Controller(Controller { meter_id: Some(PACKET_IN_METER), ..Controller::default() })]
}

/// The meter, as a meter_mod with `command` (`meter_command::ADD` or `MODIFY`).
pub fn packet_in_meter(command: u16) -> MeterMod {
    MeterMod {
        command,
        flags: meter_flags::PKTPS | meter_flags::BURST | meter_flags::STATS,
        meter_id: PACKET_IN_METER,
        bands: vec![MeterBand { band_type: band_type::DROP, rate: PACKET_IN_RATE, burst_size: PACKET_IN_BURST, prec_level: 0 }],
    }
}

/// Whether a packet-in from `table` comes from a Reject rule (weir's only packet-ins): only
/// the admin and baseline tiers have Reject rules ([`crate::placement`]).
pub fn is_reject(table: Table) -> bool {
    crate::placement::is_tiered(table)
}

/// How an answer enters the pipeline: from the controller port, into L3Forwarding (which
/// routes it to the client, local or through the tunnel), as if the rejecting side's pod had
/// sent it (only pods' packets go into the tunnel) and marked as a reply, so the ingress
/// tables let it pass.
pub fn answer_entry() -> (Match, Vec<Action>) {
    let actions = vec![reg::SOURCE.load(reg::FROM_POD), reg::REPLY.load(1), Action::resubmit_table(Table::L3Forwarding.id())];
    (Match::new().in_port(PortNo::CONTROLLER), actions)
}
