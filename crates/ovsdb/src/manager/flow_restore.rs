//! OVS's `flow-restore-wait` (`Open_vSwitch` `other_config`), for a controller that owns
//! its bridge's flows across ovs-vswitchd restarts.
//!
//! Semantics (ovs-vswitchd.conf.db(5), and `bridge_run` / `type_run` in OVS's
//! vswitchd/bridge.c and ofproto/ofproto-dpif.c): an ovs-vswitchd that *starts* with the key
//! `true` neither flushes nor expires the datapath's flows and neither receives nor sends
//! packets on it, and connects to no configured controller; its OpenFlow management socket
//! works, so flows can be restored through it. The first configuration it reads with the key
//! absent (or `false`) latches "restored" for the life of the process: it enables the
//! datapath, flushes the datapath's cached flows (so packets meet the restored tables) and
//! never looks at the key again. Setting the key on a running ovs-vswitchd therefore changes
//! nothing until it restarts, which is what lets a controller keep it armed:
//!
//! 1. after installing its flows, [`Manager::finish_flow_restore`] removes the key and waits
//!    until ovs-vswitchd has applied a configuration without it (`cur_cfg` reaches the
//!    `next_cfg` of the same transaction);
//! 2. then [`Manager::arm_flow_restore_wait`] sets it again, for the next restart.
//!
//! Removing and re-setting without the wait in between could let ovs-vswitchd read only the
//! final state (`true`) and never latch, leaving it waiting forever.

use super::Manager;
use crate::datum::Datum;
use crate::error::Error;
use crate::operation::{Condition, Mutation, Mutator, Operation};
use crate::tables::{DB, OpenVswitch, TableRow};
use std::time::Duration;

/// The `Open_vSwitch` `other_config` key.
pub const FLOW_RESTORE_WAIT: &str = "flow-restore-wait";

impl Manager {
    /// The root `Open_vSwitch` row, from the view.
    fn root(&self) -> Result<OpenVswitch, Error> {
        self.with_view(|db| OpenVswitch::all(db).into_iter().next())
            .ok_or_else(|| Error::invalid("Open_vSwitch", "_uuid", "the database has no Open_vSwitch row (run `ovs-vsctl init`)"))
    }

    /// Whether the database says `flow-restore-wait=true` now.
    pub fn flow_restore_wait(&self) -> bool {
        self.root().is_ok_and(|r| r.other_config.get(FLOW_RESTORE_WAIT).map(String::as_str) == Some("true"))
    }

    /// Sets `flow-restore-wait=true`, so that an ovs-vswitchd started from now on keeps the
    /// datapath as it was (and forwards nothing new) until [`Manager::finish_flow_restore`].
    /// Returns whether it wrote (nothing when the key is already `true`).
    pub async fn arm_flow_restore_wait(&self) -> Result<bool, Error> {
        let root = self.root()?;
        if root.other_config.get(FLOW_RESTORE_WAIT).map(String::as_str) == Some("true") {
            return Ok(false);
        }
        // `insert` keeps an existing key's value, so a `false` is deleted first.
        let ops = vec![
            Operation::Mutate {
                table: OpenVswitch::TABLE.into(),
                conditions: vec![Condition::uuid(root.uuid)],
                mutations: vec![
                    Mutation::delete("other_config", Datum::set([FLOW_RESTORE_WAIT])),
                    Mutation::insert("other_config", Datum::map([(FLOW_RESTORE_WAIT, "true")])),
                ],
            },
            Operation::Comment(format!("weir: arm {FLOW_RESTORE_WAIT} for the next ovs-vswitchd restart")),
        ];
        self.client().transact(DB, &ops).await?;
        Ok(true)
    }

    /// Removes `flow-restore-wait` and waits, up to `timeout`, until ovs-vswitchd has applied
    /// a configuration without it: from then on it forwards with the flows it holds, and
    /// setting the key again only affects its next start. Always bumps `next_cfg`, so the wait
    /// also covers a removal by someone else that ovs-vswitchd has not read yet.
    pub async fn finish_flow_restore(&self, timeout: Duration) -> Result<(), Error> {
        let root = self.root()?;
        let ops = vec![
            Operation::Mutate {
                table: OpenVswitch::TABLE.into(),
                conditions: vec![Condition::uuid(root.uuid)],
                mutations: vec![
                    Mutation::delete("other_config", Datum::set([FLOW_RESTORE_WAIT])),
                    Mutation { column: "next_cfg".into(), mutator: Mutator::Add, value: Datum::scalar(1i64) },
                ],
            },
            Operation::Select {
                table: OpenVswitch::TABLE.into(),
                conditions: vec![Condition::uuid(root.uuid)],
                columns: Some(vec!["next_cfg".into()]),
            },
            Operation::Comment(format!("weir: flows restored, clear {FLOW_RESTORE_WAIT}")),
        ];
        let results = self.client().transact(DB, &ops).await?;
        let next_cfg = results
            .get(1)
            .and_then(|r| r.rows.as_ref()?.first()?.opt_integer("next_cfg"))
            .ok_or_else(|| Error::invalid("Open_vSwitch", "next_cfg", "missing from the select's reply"))?;
        let applied = |db: &crate::update::Database| {
            OpenVswitch::all(db).into_iter().any(|r| r.uuid == root.uuid && r.cur_cfg >= next_cfg).then_some(())
        };
        if self.wait_view(timeout, applied).await {
            Ok(())
        } else {
            Err(Error::Timeout(format!("ovs-vswitchd to apply configuration {next_cfg} ({FLOW_RESTORE_WAIT} removed)")))
        }
    }
}
