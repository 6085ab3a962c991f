//! Flows as text: `dump-flows` lines (with and without statistics), and flow-mods as
//! ovs-ofctl prints an OFPT_FLOW_MOD message (OVS's `ofputil_flow_mod_format`, as
//! `ovs-ofctl parse-flow` and error replies show it) or in weir's own error messages.

use std::fmt::Write;

use super::print::{Names, format_match, format_port, format_table};
use super::print_action::format_instructions;
use crate::flow::{Flow, FlowFlags, FlowMod, FlowModCommand, NO_BUFFER};
use crate::port::PortNo;
use crate::wire::multipart::FlowStats;

pub(crate) fn format_flags_list(s: &mut String, flags: FlowFlags) {
    for (bit, name) in FlowFlags::NAMES {
        if flags.has(*bit) {
            // OVS separates flags with a space only (`send_flow_rem importance=3, `).
            let _ = write!(s, "{name} ");
        }
    }
}

/// Prints a flow as one `dump-flows --no-stats` line.
pub fn format_flow(s: &mut String, f: &Flow, names: Option<&Names>) {
    if f.cookie != 0 {
        let _ = write!(s, "cookie={:#x}, ", f.cookie);
    }
    if f.table_id != 0 || names.is_some_and(|n| n.tables.contains_key(&f.table_id)) {
        s.push_str("table=");
        format_table(s, f.table_id, names);
        s.push_str(", ");
    }
    format_flow_tail(s, f, names);
}

fn format_flow_tail(s: &mut String, f: &Flow, names: Option<&Names>) {
    format_timeouts(s, f);
    format_match_actions(s, f, names);
}

/// `idle_timeout=`, `hard_timeout=`, flags and `importance=`, where set.
fn format_timeouts(s: &mut String, f: &Flow) {
    if f.idle_timeout != 0 {
        let _ = write!(s, "idle_timeout={}, ", f.idle_timeout);
    }
    if f.hard_timeout != 0 {
        let _ = write!(s, "hard_timeout={}, ", f.hard_timeout);
    }
    format_flags_list(s, f.flags);
    if f.importance != 0 {
        let _ = write!(s, "importance={}, ", f.importance);
    }
}

/// The match (priority included) and `actions=`.
fn format_match_actions(s: &mut String, f: &Flow, names: Option<&Names>) {
    let before = s.len();
    format_match(s, &f.matches, f.priority, names);
    if s.len() != before {
        s.push(' ');
    }
    s.push_str("actions=");
    format_instructions(s, &f.instructions, names);
}

/// Prints a flow-stats entry as one `dump-flows` line with statistics (no leading space).
pub fn format_flow_stats(s: &mut String, fs: &FlowStats, names: Option<&Names>) {
    let f = &fs.flow;
    let _ = write!(s, "cookie={:#x}, duration=", f.cookie);
    let ms = fs.duration_nsec / 1_000_000;
    let _ = write!(s, "{}.{:03}s, ", fs.duration_sec, ms);
    s.push_str("table=");
    format_table(s, f.table_id, names);
    let _ = write!(s, ", n_packets={}, n_bytes={}, ", fs.packet_count, fs.byte_count);
    format_timeouts(s, f);
    if let Some(age) = fs.idle_age {
        let _ = write!(s, "idle_age={age}, ");
    }
    format_match_actions(s, f, names);
}

impl std::fmt::Display for Flow {
    /// The `dump-flows --no-stats` form.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        format_flow(&mut s, self, None);
        f.write_str(&s)
    }
}

/// A flow-mod as ovs-ofctl flow text (for error messages): the flow, with the command when it
/// is not `add`.
pub fn format_flow_mod(fm: &FlowMod) -> String {
    let mut s = String::new();
    if fm.command != FlowModCommand::Add {
        let _ = write!(s, "{:?}: ", fm.command);
    }
    format_flow(&mut s, &fm.flow, None);
    s
}

/// An OFPT_FLOW_MOD as ovs-ofctl prints it after the message header, with its leading space:
/// ` ADD table:1 priority=10,ip cookie:0x5 idle:10 send_flow_rem actions=drop`.
pub fn format_ofp_flow_mod(s: &mut String, fm: &FlowMod, names: Option<&Names>) {
    let f = &fm.flow;
    s.push_str(match fm.command {
        FlowModCommand::Add => " ADD",
        FlowModCommand::Modify => " MOD",
        FlowModCommand::ModifyStrict => " MOD_STRICT",
        FlowModCommand::Delete => " DEL",
        FlowModCommand::DeleteStrict => " DEL_STRICT",
    });
    if f.table_id != 0 || names.is_some_and(|n| n.tables.contains_key(&f.table_id)) {
        s.push_str(" table:");
        format_table(s, f.table_id, names);
    }
    s.push(' ');
    format_match(s, &f.matches, f.priority, names);
    if !s.ends_with(' ') {
        s.push(' ');
    }
    // OVS decodes an add's cookie as the new cookie, and a modify's or delete's as a cookie
    // to match (with its mask), the new cookie then being "unchanged" (all ones).
    let (new_cookie, cookie_mask) = match fm.command {
        FlowModCommand::Add => (f.cookie, 0),
        _ => (u64::MAX, fm.cookie_mask),
    };
    if new_cookie != 0 && new_cookie != u64::MAX {
        let _ = write!(s, "cookie:{new_cookie:#x} ");
    }
    if cookie_mask != 0 {
        let _ = write!(s, "cookie:{:#x}/{cookie_mask:#x} ", f.cookie);
    }
    for (name, v) in [("idle", f.idle_timeout), ("hard", f.hard_timeout), ("importance", f.importance)] {
        if v != 0 {
            let _ = write!(s, "{name}:{v} ");
        }
    }
    if fm.buffer_id != NO_BUFFER {
        let _ = write!(s, "buf:{:#x} ", fm.buffer_id);
    }
    if fm.out_port != PortNo::ANY {
        s.push_str("out_port:");
        format_port(s, fm.out_port, names);
        s.push(' ');
    }
    format_flags_list(s, f.flags);
    s.push_str("actions=");
    format_instructions(s, &f.instructions, names);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::parse_flow_mod_line;

    fn ofp(text: &str) -> String {
        let mut s = String::new();
        format_ofp_flow_mod(&mut s, &parse_flow_mod_line(text, None).unwrap(), None);
        s
    }

    #[test]
    fn an_add_prints_its_cookie_timeouts_and_flags_after_the_match() {
        assert_eq!(
            ofp("table=3,priority=7,cookie=0x10,idle_timeout=5,send_flow_rem,ip actions=drop"),
            " ADD table:3 priority=7,ip cookie:0x10 idle:5 send_flow_rem actions=drop"
        );
    }

    #[test]
    fn a_delete_prints_all_tables_and_its_cookie_mask() {
        assert_eq!(ofp("delete cookie=0x1/0xf,out_port=2"), " DEL table:255 cookie:0x1/0xf out_port:2 actions=drop");
    }
}
