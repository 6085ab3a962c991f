//! The ovs-ofctl text syntax: printing in the canonical form of
//! `ovs-ofctl -O OpenFlow15 dump-flows`.

pub mod print;

pub use print::{Names, format_action, format_actions, format_flow, format_flow_mod, format_flow_stats, format_instructions, format_match};
