//! The realization record (see [`crate::realization_record`]): trusted by a starting agent
//! whose inputs are the record's, and written once the agent has been quiet after a change.

use super::NodeAgent;
use crate::realization_record::{Digest, Record, flows_digest, inputs_digest};
use std::time::Instant;
use tracing::info;

impl NodeAgent {
    /// The flow digest of the record recalled at start, when this first compile may be skipped:
    /// there is no compiler yet and the inputs have the record's digest. Consulted once.
    pub(super) fn recalled_flows(&mut self) -> Option<Digest> {
        let record = self.recalled.take()?;
        if self.compiler.is_some() {
            return None;
        }
        let topology = self.topology()?;
        let started = Instant::now();
        let same = inputs_digest(&self.cluster, &topology) == record.inputs;
        info!(same, elapsed_ms = ms(started), "inputs compared with the record of the last realization");
        same.then_some(record.flows)
    }

    /// Ends a pass that skipped its compile: the switch holds exactly what this build compiles
    /// from these inputs when its flows have the record's digest, and the compile follows (for
    /// the next change) in a pass of its own; otherwise the pass compiles now and sends the
    /// difference.
    pub(super) fn verify_installed(&mut self, now: Instant, expected: Digest) {
        let installed = self.installed.as_ref().expect("read before diffing");
        let started = Instant::now();
        let same = flows_digest(installed) == expected;
        info!(same, flows = installed.len(), elapsed_ms = ms(started), "installed flows compared with the record of the last realization");
        if same {
            let counts = installed.counts();
            self.dirty = true;
            self.holds(now, counts);
        } else {
            // The record is spent: a compile from scratch, then the whole difference.
            self.compile(now);
        }
    }

    /// A record of what the compiler made of the current inputs, unless one was written
    /// already or the compiler is behind them (a change is waiting or being realized).
    pub(super) fn take_record(&mut self) -> Option<Record> {
        if self.busy() || self.dirty {
            return None;
        }
        let flows = flows_digest(self.compiler.as_ref()?.flows());
        let record = Record { inputs: inputs_digest(&self.cluster, &self.topology()?), flows };
        (self.recorded != Some(record)).then(|| {
            self.recorded = Some(record);
            record
        })
    }
}

/// Milliseconds since `t`, for the log.
fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}
