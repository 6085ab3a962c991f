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

/// The actions of a Reject rule's flows: marked to be answered (and logged, with `audit`),
/// to the agent, through the meter. A logged Reject rule sends one packet-in for both.
pub fn reject_actions(audit: bool) -> Vec<Action> {
    let mut actions = vec![reg::ANSWER.load(1)];
    if audit {
        actions.push(reg::AUDIT.load(1));
    }
    actions.push(Action::Controller(Controller { meter_id: Some(PACKET_IN_METER), ..Controller::default() }));
    actions
}

/// The meter, as a meter_mod with `command` (`meter_command::ADD` or `MODIFY`).
pub fn packet_in_meter(command: u16) -> MeterMod {
    packets_per_second_meter(command, PACKET_IN_METER, PACKET_IN_RATE, PACKET_IN_BURST)
}

/// A meter dropping packets over `rate` per second (after a burst of `burst`).
pub(crate) fn packets_per_second_meter(command: u16, meter_id: u32, rate: u32, burst: u32) -> MeterMod {
    MeterMod {
        command,
        flags: meter_flags::PKTPS | meter_flags::BURST | meter_flags::STATS,
        meter_id,
        bands: vec![MeterBand { band_type: band_type::DROP, rate, burst_size: burst, prec_level: 0 }],
    }
}

/// What the agent is to do with a packet-in, read from the marks its flow set
/// ([`reg::ANSWER`], [`reg::AUDIT`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PacketInPurpose {
    /// Answer it (a Reject rule).
    pub answer: bool,
    /// Log its connection (a rule with audit logging).
    pub audit: bool,
}

impl PacketInPurpose {
    /// The purpose of a packet-in whose pipeline fields are `matches`.
    pub fn of(matches: &Match) -> PacketInPurpose {
        PacketInPurpose { answer: reg::ANSWER.value_in(matches) == 1, audit: reg::AUDIT.value_in(matches) == 1 }
    }
}

/// How an answer enters the pipeline: from the controller port, into L3Forwarding (which
/// routes it to the client, local or through the tunnel), as if the rejecting side's pod had
/// sent it (only pods' packets go into the tunnel) and marked as a reply, so the ingress
/// tables let it pass.
pub fn answer_entry() -> (Match, Vec<Action>) {
    let actions = vec![reg::SOURCE.load(reg::FROM_POD), reg::REPLY.load(1), Action::resubmit_table(Table::L3Forwarding.id())];
    (Match::new().in_port(PortNo::CONTROLLER), actions)
}
