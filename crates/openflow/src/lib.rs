//! OpenFlow 1.5 with the Open vSwitch (Nicira/ONF) extensions that a policy pipeline needs:
//! value types ([`Flow`], [`FlowMod`], [`Match`], [`Action`], [`Instruction`]), a sans-IO wire
//! codec (decode with nom, encode with explicit writers) and the ovs-ofctl text syntax.
//!
//! No I/O happens here: the tokio connection lives in the agent crate.
#![warn(missing_docs)]

pub mod action;
pub mod field;
pub mod flow;
pub mod flow_match;
pub mod instruction;
pub mod mac;
pub mod port;
pub mod text;
pub mod wire;

pub use action::{Action, Controller, Ct, CtZone, Learn, LearnSpec, LearnSrc, Nat, NatKind, PacketInReason};
pub use field::{Field, FieldRange};
pub use flow::{Flow, FlowFlags, FlowMod, FlowModCommand};
pub use flow_match::{FieldValue, Match, MatchError, MatchField};
pub use instruction::Instruction;
pub use mac::Mac;
pub use port::PortNo;
