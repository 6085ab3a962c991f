//! Instructions: how a flow's actions apply and where processing goes next.
//!
//! The variants are declared in the order OVS keeps and encodes them (meter, apply, clear,
//! write, write-metadata, goto), and a decoded instruction list is sorted into that order, so
//! equal flows compare equal whatever order the wire had.

use crate::action::Action;

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Instruction {
    /// Meter the packet (the OpenFlow 1.3/1.4 instruction; in 1.5 OVS encodes it as an action).
    Meter(u32),
    /// Apply actions now.
    ApplyActions(Vec<Action>),
    /// Clear the action set.
    ClearActions,
    /// Merge actions into the action set.
    WriteActions(Vec<Action>),
    /// Write bits of the metadata register.
    WriteMetadata {
        /// The value.
        value: u64,
        /// Which bits.
        mask: u64,
    },
    /// Continue in a later table.
    GotoTable(u8),
}

impl Instruction {
    /// Position in OVS's instruction order.
    pub fn rank(&self) -> u8 {
        match self {
            Instruction::Meter(_) => 0,
            Instruction::ApplyActions(_) => 1,
            Instruction::ClearActions => 2,
            Instruction::WriteActions(_) => 3,
            Instruction::WriteMetadata { .. } => 4,
            Instruction::GotoTable(_) => 5,
        }
    }
}

/// Puts instructions in the form OVS keeps for OpenFlow 1.5: a meter instruction becomes a
/// meter action at the head of apply-actions, empty apply-actions are dropped (an empty list
/// and no instruction both mean drop), and the rest is sorted into OVS's order.
pub fn canonicalize(instructions: &mut Vec<Instruction>) {
    let meters: Vec<u32> = instructions
        .iter()
        .filter_map(|i| match i {
            Instruction::Meter(m) => Some(*m),
            _ => None,
        })
        .collect();
    if !meters.is_empty() {
        instructions.retain(|i| !matches!(i, Instruction::Meter(_)));
        let head = meters.into_iter().map(Action::Meter);
        match instructions.iter_mut().find(|i| matches!(i, Instruction::ApplyActions(_))) {
            Some(Instruction::ApplyActions(a)) => {
                let rest = std::mem::take(a);
                *a = head.chain(rest).collect();
            }
            _ => instructions.push(Instruction::ApplyActions(head.collect())),
        }
    }
    instructions.retain(|i| !matches!(i, Instruction::ApplyActions(a) if a.is_empty()));
    instructions.sort_by_key(Instruction::rank);
}
