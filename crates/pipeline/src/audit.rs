//! Audit logging: a rule with logging on (Antrea's `enableLogging`) also sends the first
//! packets of each connection it decides to the agent, which writes a line about it. The
//! packet is marked ([`reg::AUDIT`]) so the agent knows why it came, and its flow's cookie
//! names the rule ([`crate::cookie`], the conj_id).
//!
//! Only packets of connections not yet established are sent (see
//! [`crate::placement::Conn`]), and they pass [`AUDIT_METER`] first, their own meter: a flood
//! of logged connections is dropped by the switch before it reaches the agent, and cannot
//! take the Reject answers' share ([`crate::reject::PACKET_IN_METER`]). A logged Reject
//! rule's packet-in is the Reject one, marked for both.

use crate::reg;
use openflow::wire::meter::MeterMod;
use openflow::{Action, Controller};

/// The meter every audit packet-in passes.
pub const AUDIT_METER: u32 = 2;
/// Audit packets per second the agent is sent at most.
pub const AUDIT_RATE: u32 = 200;
/// The burst [`AUDIT_METER`] lets through above its rate.
pub const AUDIT_BURST: u32 = 200;

/// The actions a logged rule's flow adds for packets of new connections: marked, a copy to
/// the agent through the meter; the packet itself goes on as the rule decides.
pub fn audit_actions() -> Vec<Action> {
    let to_agent = Controller { meter_id: Some(AUDIT_METER), ..Controller::default() };
    vec![reg::AUDIT.load(1), Action::Controller(to_agent)]
}

/// The meter, as a meter_mod with `command` (`meter_command::ADD` or `MODIFY`).
pub fn audit_meter(command: u16) -> MeterMod {
    crate::reject::packets_per_second_meter(command, AUDIT_METER, AUDIT_RATE, AUDIT_BURST)
}
