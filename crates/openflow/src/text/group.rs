//! Groups in ovs-ofctl syntax: `group_id=1,type=select,bucket=weight:5,actions=output:1,...`,
//! parsed as OVS's `parse_ofp_group_mod_str` and printed as its `ofp_print_group` (OpenFlow 1.5
//! form, with bucket ids).

use std::fmt::Write;

use super::lex::{items, parse_u16, parse_u32};
use super::parse::{ParseError, parse_port};
use super::parse_action::parse_actions;
use super::print::{Names, format_actions, format_port};
use crate::port::PortNo;
use crate::wire::message::{Bucket, GroupMod, group_type};

/// Group type names by OFPGT_* value.
const TYPES: &[(u8, &str)] =
    &[(group_type::ALL, "all"), (group_type::SELECT, "select"), (group_type::INDIRECT, "indirect"), (group_type::FAST_FAILOVER, "ff")];

/// "Any group" in watch_group.
const GROUP_ANY: u32 = 0xffff_ffff;

/// The weight a bucket has when none is given: 1 in select groups, else 0.
fn default_weight(t: u8) -> u16 {
    u16::from(t == group_type::SELECT)
}

/// Prints a group (from a GROUP_DESC reply) as `dump-groups` does, without the leading space.
pub fn format_group(s: &mut String, g: &GroupMod, names: Option<&Names>) {
    let _ = write!(s, "group_id={}", g.group_id);
    let tname = TYPES.iter().find(|(t, _)| *t == g.group_type).map_or("unknown", |(_, n)| n);
    let _ = write!(s, ",type={tname}");
    if g.buckets.is_empty() {
        return;
    }
    s.push(',');
    for b in &g.buckets {
        let _ = write!(s, "bucket=bucket_id:{},", b.bucket_id);
        let w = b.weight.unwrap_or_else(|| default_weight(g.group_type));
        if w != default_weight(g.group_type) {
            let _ = write!(s, "weight:{w},");
        }
        if let Some(p) = b.watch_port.filter(|p| *p != PortNo::ANY) {
            s.push_str("watch_port:");
            format_port(s, p, names);
            s.push(',');
        }
        if let Some(wg) = b.watch_group.filter(|g| *g != GROUP_ANY) {
            let _ = write!(s, "watch_group:{wg},");
        }
        s.push_str("actions=");
        format_actions(s, &b.actions, names);
        s.push(',');
    }
    s.pop();
}

/// Parses one `add-groups` line into an OFPGC15_ADD group mod.
pub fn parse_group(s: &str, names: Option<&Names>) -> Result<GroupMod, ParseError> {
    let (head, buckets) = match s.find("bucket=") {
        Some(i) => (&s[..i], Some(&s[i..])),
        None => (s, None),
    };
    let mut g = GroupMod { command: 0, group_type: group_type::ALL, group_id: GROUP_ANY, command_bucket_id: 0xffff_ffff, buckets: Vec::new() };
    let mut had_id = false;
    for item in items(head) {
        match item.key {
            "group_id" => {
                g.group_id = parse_u32(item.value, "group_id")?;
                had_id = true;
            }
            "type" => {
                g.group_type = match item.value {
                    "fast_failover" => group_type::FAST_FAILOVER,
                    v => TYPES.iter().find(|(_, n)| *n == v).map(|(t, _)| *t).ok_or_else(|| {
                        ParseError::new(item.text, "group type must be all, select, indirect, ff or fast_failover")
                    })?,
                }
            }
            _ => return Err(ParseError::new(item.text, "unknown group keyword")),
        }
    }
    if !had_id {
        return Err(ParseError::new(s.trim(), "must specify a group_id"));
    }
    if let Some(text) = buckets {
        for part in text.split("bucket=").skip(1) {
            let next_id = g.buckets.last().map_or(0, |b: &Bucket| b.bucket_id + 1);
            g.buckets.push(parse_bucket(part, g.group_type, next_id, names)?);
        }
    }
    Ok(g)
}

fn parse_bucket(s: &str, gtype: u8, next_id: u32, names: Option<&Names>) -> Result<Bucket, ParseError> {
    let mut b = Bucket { bucket_id: next_id, actions: Vec::new(), weight: None, watch_port: None, watch_group: None };
    let mut actions = String::new();
    for item in items(s) {
        match item.key.to_ascii_lowercase().as_str() {
            "weight" => b.weight = Some(parse_u16(item.value, "weight")?),
            "watch_port" => b.watch_port = Some(parse_port(item.value, names)?),
            "watch_group" => b.watch_group = Some(parse_u32(item.value, "watch_group")?),
            "bucket_id" => b.bucket_id = parse_u32(item.value, "bucket_id")?,
            "action" | "actions" => {
                actions.push_str(item.value);
                actions.push(',');
            }
            _ => {
                actions.push_str(item.text);
                actions.push(',');
            }
        }
    }
    if actions.is_empty() {
        return Err(ParseError::new(s.trim(), "bucket must specify actions"));
    }
    b.actions = parse_actions(actions.trim_end_matches(','), names)?;
    if gtype == group_type::FAST_FAILOVER && b.watch_port.is_none() && b.watch_group.is_none() {
        return Err(ParseError::new(s.trim(), "fast failover bucket requires watch_port or watch_group"));
    }
    // OVS sends a weight for select buckets only.
    b.weight = if gtype == group_type::SELECT { Some(b.weight.unwrap_or(1)) } else { None };
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_select_group_prints_as_ovs_dump_groups() {
        let g = parse_group("group_id=1,type=select,bucket=output:5,bucket=weight:5,actions=output:LOCAL", None).unwrap();
        let mut s = String::new();
        format_group(&mut s, &g, None);
        assert_eq!(s, "group_id=1,type=select,bucket=bucket_id:0,actions=output:5,bucket=bucket_id:1,weight:5,actions=LOCAL");
    }

    #[test]
    fn a_fast_failover_bucket_without_liveness_is_rejected() {
        let e = parse_group("group_id=2,type=ff,bucket=output:1", None).unwrap_err();
        assert!(e.message.contains("watch_port"), "{e}");
    }
}
