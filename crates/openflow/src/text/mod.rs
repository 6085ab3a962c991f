//! The ovs-ofctl text syntax: printing in the canonical form of
//! `ovs-ofctl -O OpenFlow15 dump-flows`, and parsing what ovs-ofctl accepts.

pub mod group;
pub mod lex;
pub mod meter;
pub mod parse;
pub mod parse_action;
mod parse_action_ext;
pub mod print;
pub mod print_action;
mod print_action_ext;
pub mod print_flow;
pub mod print_switch;

pub use parse::{ParseError, flow_file_lines, parse_field_value, parse_flow, parse_flow_mod, parse_flow_mod_line, parse_match, parse_port, parse_subfield, parse_table};
pub use parse_action::{parse_actions, parse_instructions};
pub use print::{Names, format_action, format_actions, format_flow, format_flow_stats, format_instructions, format_match};
pub use print_flow::{format_flow_mod, format_ofp_flow_mod};

#[cfg(test)]
mod parse_tests;
