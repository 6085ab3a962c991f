//! Flow entries and flow-table modifications.

use crate::action::Action;
use crate::flow_match::Match;
use crate::instruction::{self, Instruction};
use crate::port::PortNo;

/// Flags of a flow entry (OFPFF_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FlowFlags(pub u16);

impl FlowFlags {
    /// Send a flow-removed message when the flow expires or is deleted.
    pub const SEND_FLOW_REM: u16 = 1 << 0;
    /// Refuse to add a flow that overlaps another at the same priority.
    pub const CHECK_OVERLAP: u16 = 1 << 1;
    /// Reset the counters when modified.
    pub const RESET_COUNTS: u16 = 1 << 2;
    /// Do not count packets.
    pub const NO_PKT_COUNTS: u16 = 1 << 3;
    /// Do not count bytes.
    pub const NO_BYT_COUNTS: u16 = 1 << 4;

    /// (flag, ovs-ofctl name) in the order ovs-ofctl prints them.
    pub const NAMES: &'static [(u16, &'static str)] = &[
        (Self::SEND_FLOW_REM, "send_flow_rem"),
        (Self::CHECK_OVERLAP, "check_overlap"),
        (Self::RESET_COUNTS, "reset_counts"),
        (Self::NO_PKT_COUNTS, "no_packet_counts"),
        (Self::NO_BYT_COUNTS, "no_byte_counts"),
    ];

    /// Whether `flag` is set.
    pub fn has(self, flag: u16) -> bool {
        self.0 & flag != 0
    }
}

/// What identifies and defines a flow entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Flow {
    /// The table.
    pub table_id: u8,
    /// The priority (OVS's default is 32768).
    pub priority: u16,
    /// The match.
    pub matches: Match,
    /// The cookie.
    pub cookie: u64,
    /// Seconds of inactivity before removal (0 = never).
    pub idle_timeout: u16,
    /// Seconds before removal (0 = never).
    pub hard_timeout: u16,
    /// Eviction importance.
    pub importance: u16,
    /// Flags.
    pub flags: FlowFlags,
    /// The instructions in canonical order (see [`instruction::canonicalize`]); empty = drop.
    pub instructions: Vec<Instruction>,
}

/// OVS's default priority.
pub const DEFAULT_PRIORITY: u16 = 0x8000;

impl Default for Flow {
    fn default() -> Self {
        Flow {
            table_id: 0,
            priority: DEFAULT_PRIORITY,
            matches: Match::new(),
            cookie: 0,
            idle_timeout: 0,
            hard_timeout: 0,
            importance: 0,
            flags: FlowFlags::default(),
            instructions: Vec::new(),
        }
    }
}

impl Flow {
    /// A flow in `table` at `priority` matching `matches`, with no actions (drop).
    pub fn new(table_id: u8, priority: u16, matches: Match) -> Self {
        Flow { table_id, priority, matches, ..Flow::default() }
    }

    /// Sets the cookie.
    pub fn cookie(mut self, cookie: u64) -> Self {
        self.cookie = cookie;
        self
    }

    /// Appends apply-actions (merged with earlier ones).
    pub fn actions(mut self, actions: impl IntoIterator<Item = Action>) -> Self {
        let actions: Vec<Action> = actions.into_iter().collect();
        if actions.is_empty() {
            return self;
        }
        if let Some(Instruction::ApplyActions(existing)) =
            self.instructions.iter_mut().find(|i| matches!(i, Instruction::ApplyActions(_)))
        {
            existing.extend(actions);
        } else {
            self.instructions.push(Instruction::ApplyActions(actions));
            instruction::canonicalize(&mut self.instructions);
        }
        self
    }

    /// Adds an instruction, keeping canonical order.
    pub fn instruction(mut self, i: Instruction) -> Self {
        self.instructions.push(i);
        instruction::canonicalize(&mut self.instructions);
        self
    }

    /// Continues in `table` (goto_table).
    pub fn goto(self, table: u8) -> Self {
        self.instruction(Instruction::GotoTable(table))
    }

    /// The apply-actions, if any.
    pub fn apply_actions(&self) -> &[Action] {
        self.instructions
            .iter()
            .find_map(|i| match i {
                Instruction::ApplyActions(a) => Some(a.as_slice()),
                _ => None,
            })
            .unwrap_or(&[])
    }
}

/// A flow-mod command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlowModCommand {
    /// Add (replacing an identical match at the same priority).
    Add,
    /// Modify the actions of all matching flows.
    Modify,
    /// Modify the flow with exactly this match and priority.
    ModifyStrict,
    /// Delete all matching flows.
    Delete,
    /// Delete the flow with exactly this match and priority.
    DeleteStrict,
}

impl FlowModCommand {
    /// The OFPFC_* code.
    pub fn code(self) -> u8 {
        match self {
            FlowModCommand::Add => 0,
            FlowModCommand::Modify => 1,
            FlowModCommand::ModifyStrict => 2,
            FlowModCommand::Delete => 3,
            FlowModCommand::DeleteStrict => 4,
        }
    }

    /// The command for an OFPFC_* code.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => FlowModCommand::Add,
            1 => FlowModCommand::Modify,
            2 => FlowModCommand::ModifyStrict,
            3 => FlowModCommand::Delete,
            4 => FlowModCommand::DeleteStrict,
            _ => return None,
        })
    }
}

/// "All tables" in flow-mod deletes and stats requests.
pub const ALL_TABLES: u8 = 0xff;
/// "Any group" (no restriction) in deletes and stats requests.
pub const GROUP_ANY: u32 = 0xffff_ffff;
/// "No buffer".
pub const NO_BUFFER: u32 = 0xffff_ffff;

/// A modification of the flow table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowMod {
    /// What to do.
    pub command: FlowModCommand,
    /// The flow (for deletes: table, match, cookie, priority when strict).
    pub flow: Flow,
    /// Which cookie bits must match (modify/delete); 0 = any cookie.
    pub cookie_mask: u64,
    /// Deletes: only flows that output to this port (ANY = no restriction).
    pub out_port: PortNo,
    /// Deletes: only flows that use this group (GROUP_ANY = no restriction).
    pub out_group: u32,
    /// A buffered packet to apply the flow to.
    pub buffer_id: u32,
}

impl FlowMod {
    /// A flow-mod with the defaults ovs-ofctl uses.
    pub fn new(command: FlowModCommand, flow: Flow) -> Self {
        FlowMod { command, flow, cookie_mask: 0, out_port: PortNo::ANY, out_group: GROUP_ANY, buffer_id: NO_BUFFER }
    }

    /// Adds `flow`.
    pub fn add(flow: Flow) -> Self {
        FlowMod::new(FlowModCommand::Add, flow)
    }

    /// Deletes exactly `flow` (same table, priority and match).
    pub fn delete_strict(flow: Flow) -> Self {
        FlowMod::new(FlowModCommand::DeleteStrict, flow)
    }
}
