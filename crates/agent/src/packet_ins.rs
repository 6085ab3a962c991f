//! The switch's packet-ins: weir's flows send packets to the agent for two reasons, marked in
//! the packet's registers ([`pipeline::reject::PacketInPurpose`]): a Reject rule's packet is
//! answered ([`crate::reject`]), a logged rule's connection is written to the audit log
//! ([`crate::audit`]); a logged Reject rule's packet is both.

use crate::audit::AuditLog;
use crate::reject::{Counts, answer_packet_in};
use crate::switch::Switch;
use openflow::wire::Message;
use pipeline::reject::PacketInPurpose;
use std::sync::Arc;
use std::time::Instant;
use tracing::debug;

/// Handles the switch's packet-ins until the connection closes.
pub async fn serve(sw: Arc<Switch>, answers: Arc<Counts>, audit: Option<Arc<AuditLog>>) {
    while let Some(msg) = sw.next_event().await {
        let Message::PacketIn(p) = msg else { continue };
        let purpose = PacketInPurpose::of(&p.matches);
        if purpose == PacketInPurpose::default() {
            debug!(table = p.table_id, cookie = p.cookie, "a packet-in weir's flows did not mark: ignored");
            continue;
        }
        if purpose.answer {
            answer_packet_in(&sw, &p, &answers);
        }
        match (&audit, purpose.audit) {
            (Some(log), true) => log.record(Instant::now(), &p),
            (None, true) => debug!("a packet-in marked for the audit log, which is off"),
            _ => {}
        }
    }
}
