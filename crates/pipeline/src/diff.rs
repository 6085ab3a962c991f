//! Desired versus installed: the fewest flow_mods that make the switch equal the desired set.

use crate::flow::{FlowKey, FlowSet};
use openflow::FlowMod;

/// The flow_mods that turn `installed` into `desired`: an add for every new or changed flow
/// (an add replaces the flow with the same table, priority and match) and a strict delete for
/// every flow no longer desired. Unchanged flows are not touched.
pub fn diff(desired: &FlowSet, installed: &FlowSet) -> Vec<FlowMod> {
    let mut mods = Vec::new();
    for (key, flow) in desired.as_map() {
        if installed.get(key) != Some(flow) {
            mods.push(FlowMod::add(flow.clone()));
        }
    }
    for (key, flow) in installed.as_map() {
        if desired.get(key).is_none() {
            mods.push(FlowMod::delete_strict(flow.clone()));
        }
    }
    mods
}

/// The flow_mods that bring `installed` to `desired` at `keys` only (the keys an update
/// touched), leaving `installed` as `desired` there.
pub fn diff_keys<'a>(
    desired: &FlowSet,
    installed: &mut FlowSet,
    keys: impl IntoIterator<Item = &'a FlowKey>,
) -> Vec<FlowMod> {
    let mut mods = Vec::new();
    for key in keys {
        match (desired.get(key), installed.get(key)) {
            (Some(want), have) if have != Some(want) => {
                mods.push(FlowMod::add(want.clone()));
                installed.replace(want.clone());
            }
            (None, Some(_)) => {
                let gone = installed.remove(key).expect("present");
                mods.push(FlowMod::delete_strict(gone));
            }
            _ => {}
        }
    }
    mods
}
