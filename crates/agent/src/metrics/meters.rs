//! The packet-in meters' statistics (Reject answers, audit log; see [`pipeline::reject`] and
//! [`pipeline::audit`]): what went into each and what its band dropped, read from the switch
//! with the per-rule counters and exported as `weir_packet_in_meter_packets_total` and
//! `weir_packet_in_meter_dropped_total` with a `meter` label (`reject`, `audit`). The dropped
//! packets are the ones the agent never saw: a Reject client that got no answer, a logged
//! connection with no line.

use crate::switch::{Switch, SwitchError};
use openflow::wire::multipart::{MultipartReply, MultipartRequest};
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// weir's packet-in meters by id, with their label.
const METERS: [(u32, &str); 2] = [(pipeline::reject::PACKET_IN_METER, "reject"), (pipeline::audit::AUDIT_METER, "audit")];

/// Packets into a meter and packets its band dropped.
pub type MeterCounts = BTreeMap<u32, (u64, u64)>;

/// Reads weir's packet-in meters' statistics.
pub async fn read(switch: &Switch) -> Result<MeterCounts, SwitchError> {
    let mut out = MeterCounts::new();
    for (id, _) in METERS {
        for part in switch.multipart(MultipartRequest::MeterStats(id)).await? {
            let MultipartReply::MeterStats(stats) = part else {
                return Err(SwitchError::Unexpected(format!("{part:?} to a meter stats request")));
            };
            for m in stats.into_iter().filter(|m| m.meter_id == id) {
                out.insert(id, (m.packet_in_count, m.bands.iter().map(|b| b.0).sum()));
            }
        }
    }
    Ok(out)
}

/// The last meter statistics read, for the metrics.
#[derive(Debug, Default)]
pub struct Meters(Mutex<MeterCounts>);

impl Meters {
    /// Takes statistics read from the switch.
    pub fn set(&self, counts: MeterCounts) {
        *self.0.lock().expect("not poisoned") = counts;
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MeterLabel {
    meter: String,
}

impl prometheus_client::collector::Collector for Meters {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counts = self.0.lock().expect("not poisoned").clone();
        type Field = fn(&(u64, u64)) -> u64;
        let families: [(&str, &str, Field); 2] = [
            ("weir_packet_in_meter_packets", "Packets that went into a packet-in meter (reject: Reject rules; audit: logged rules)", |c| {
                c.0
            }),
            ("weir_packet_in_meter_dropped", "Packets a packet-in meter dropped over its rate (never seen by the agent)", |c| c.1),
        ];
        for (name, help, field) in families {
            let mut family = encoder.encode_descriptor(name, help, None, ConstCounter::new(0u64).metric_type())?;
            for (id, label) in METERS {
                let value = counts.get(&id).map_or(0, field);
                ConstCounter::new(value).encode(family.encode_family(&MeterLabel { meter: label.to_string() })?)?;
            }
        }
        Ok(())
    }
}
