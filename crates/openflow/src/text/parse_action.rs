//! Parsing ovs-ofctl actions and instructions (`actions=...`), following OVS's
//! `ofpacts_parse__` and the `parse_<ACTION>` functions of `lib/ofp-actions.c`.
//!
//! Results are in the crate's canonical forms: `load:` and `mod_*` become set-field,
//! `output:CONTROLLER` and `controller` become [`Action::Controller`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::lex::{Item, items, parse_u8, parse_u16, parse_u32, parse_u64, parse_uint};
use super::parse::{ParseError, parse_field_value, parse_port, parse_subfield, parse_table};
use super::print::Names;
use crate::action::{Action, Controller, Ct, CtZone, Learn, LearnSpec, LearnSrc, Nat, NatKind, PacketInReason, learn_flags};
use crate::field::{Field, ones};
use crate::instruction::{Instruction, canonicalize};
use crate::port::PortNo;

/// How deep actions may nest (`clone(clone(...))`), as OVS's MAX_OFPACT_PARSE_DEPTH.
const MAX_DEPTH: usize = 100;

/// What parsing an action may depend on: port and table names, the nesting depth, and the
/// facts of the flow's match that OVS's `ofpact_check` consults, as the actions before it have
/// changed them (whether a VLAN header is present, which L4 protocol it is).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cx<'a> {
    names: Option<&'a Names>,
    depth: usize,
    /// The flow has (or an earlier action pushed) an 802.1Q header.
    vlan: bool,
    /// The L4 source and destination port fields of the match's IP protocol, if any.
    l4: Option<(Field, Field)>,
}

impl<'a> Cx<'a> {
    fn new(names: Option<&'a Names>) -> Self {
        Cx { names, depth: 1, vlan: false, l4: None }
    }

    /// The context of a flow with `m`.
    pub(crate) fn for_match(names: Option<&'a Names>, m: &crate::flow_match::Match) -> Self {
        let vlan = m.get(Field::VlanTci).is_some_and(|e| e.value & 0x1000 != 0)
            || m.get(Field::VlanVid).is_some_and(|e| e.value & 0x1000 != 0);
        let l4 = m.get(Field::IpProto).and_then(|e| match e.value {
            6 => Some((Field::TcpSrc, Field::TcpDst)),
            17 => Some((Field::UdpSrc, Field::UdpDst)),
            132 => Some((Field::SctpSrc, Field::SctpDst)),
            _ => None,
        });
        Cx { names, depth: 1, vlan, l4 }
    }

    pub(super) fn names(&self) -> Option<&'a Names> {
        self.names
    }

    pub(super) fn l4(&self) -> Option<(Field, Field)> {
        self.l4
    }

    fn nested(&self) -> Self {
        Cx { depth: self.depth + 1, ..*self }
    }
}

/// Parses the text after `actions=` into instructions in canonical order.
pub fn parse_instructions(s: &str, names: Option<&Names>) -> Result<Vec<Instruction>, ParseError> {
    parse_instructions_in(s, &mut Cx::new(names))
}

/// [`parse_instructions`] for a flow whose match gives the context `cx`.
pub(crate) fn parse_instructions_in(s: &str, cx: &mut Cx<'_>) -> Result<Vec<Instruction>, ParseError> {
    let names = cx.names;
    let mut apply = Vec::new();
    let mut out = Vec::new();
    let mut drop = false;
    for item in items(s) {
        let v = item.value;
        match item.key.to_ascii_lowercase().as_str() {
            "drop" => drop = true,
            "meter" => out.push(Instruction::Meter(parse_u32(v, "meter")?)),
            "clear_actions" => out.push(Instruction::ClearActions),
            "write_actions" => out.push(Instruction::WriteActions(parse_actions_at(v, &mut cx.clone())?)),
            "write_metadata" => {
                let (value, mask) = match v.split_once('/') {
                    Some((a, m)) => (parse_u64(a, "write_metadata")?, parse_u64(m, "write_metadata mask")?),
                    None => (parse_u64(v, "write_metadata")?, u64::MAX),
                };
                out.push(Instruction::WriteMetadata { value, mask });
            }
            "goto_table" => out.push(Instruction::GotoTable(parse_table(v, names)?)),
            "apply_actions" => return Err(ParseError::new(item.text, "apply_actions is the default instruction")),
            _ => parse_action_item(&item, cx, &mut apply)?,
        }
    }
    if drop && (!apply.is_empty() || !out.is_empty()) {
        return Err(ParseError::new(s.trim(), "\"drop\" must not be accompanied by any other action or instruction"));
    }
    for i in &out {
        if out.iter().filter(|j| j.rank() == i.rank()).count() > 1 {
            return Err(ParseError::new(s.trim(), "each instruction may be given only once"));
        }
    }
    if !apply.is_empty() {
        out.push(Instruction::ApplyActions(apply));
    }
    canonicalize(&mut out);
    Ok(out)
}

/// Parses a list of actions (no instructions), as inside `write_actions(...)` or `clone(...)`.
pub fn parse_actions(s: &str, names: Option<&Names>) -> Result<Vec<Action>, ParseError> {
    parse_actions_at(s, &mut Cx::new(names))
}

fn parse_actions_at(s: &str, cx: &mut Cx<'_>) -> Result<Vec<Action>, ParseError> {
    if cx.depth > MAX_DEPTH {
        return Err(ParseError::new(s, "actions nested too deeply"));
    }
    let mut out = Vec::new();
    let mut drop = false;
    for item in items(s) {
        if item.key.eq_ignore_ascii_case("drop") {
            drop = true;
            continue;
        }
        parse_action_item(&item, cx, &mut out)?;
    }
    if drop && !out.is_empty() {
        return Err(ParseError::new(s, "\"drop\" must not be accompanied by any other action"));
    }
    Ok(out)
}

/// `value->dst` split at the arrow.
fn arrow<'a>(item: &Item<'a>) -> Result<(&'a str, &'a str), ParseError> {
    item.value
        .split_once("->")
        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
        .ok_or_else(|| ParseError::new(item.text, format!("{}: expected SRC->DST", item.key)))
}

fn check_writable(f: Field, token: &str) -> Result<(), ParseError> {
    if f.is_writable() { Ok(()) } else { Err(ParseError::new(token, format!("{f} is read-only"))) }
}

fn set_field(field_name: &str, value: &str, token: &str, names: Option<&Names>) -> Result<Action, ParseError> {
    let field = match Field::from_name(field_name) {
        // OVS sets the input port through NXM_OF_IN_PORT: OXM_OF_IN_PORT (`in_port_oxm`) is
        // read-only to it.
        Some(Field::InPort) if field_name == "in_port" => Field::InPort16,
        Some(f) => f,
        None => return Err(ParseError::new(token, format!("{field_name} is not a valid OXM field name"))),
    };
    check_writable(field, token)?;
    let (v, m) = parse_field_value(field, value, names)?;
    let mask = match m {
        Some(m) if m == field.byte_mask() => None,
        Some(0) => return Err(ParseError::new(token, "set_field with an all-zero mask sets nothing")),
        m => m,
    };
    Ok(Action::SetField { field, value: v & mask.unwrap_or(u128::MAX), mask })
}

fn parse_action_item(item: &Item<'_>, cx: &mut Cx<'_>, out: &mut Vec<Action>) -> Result<(), ParseError> {
    let v = item.value;
    let names = cx.names;
    let key = item.key.to_ascii_lowercase();
    if let Some(a) = super::parse_action_ext::parse_ext(key.as_str(), item, cx)? {
        out.push(a);
        return Ok(());
    }
    let action = match key.as_str() {
        "output" => {
            // A port name wins over a field name (`output:in_port` is the IN_PORT port), as
            // in OVS, which takes only bracketed subfields as registers.
            match parse_port(v, names) {
                Ok(PortNo::ANY) => return Err(ParseError::new(item.text, "output to unsupported port ANY")),
                Ok(port) if !v.contains('[') => output_to(port, None),
                Err(e) if !v.contains('[') && Field::from_name(v).is_none() => return Err(e),
                _ => Action::OutputReg { src: parse_subfield(v)?, max_len: 0 },
            }
        }
        "controller" => parse_controller(item)?,
        "group" => Action::Group(parse_u32(v, "group")?),
        "meter" => Action::Meter(parse_u32(v, "meter")?),
        "set_queue" => Action::SetQueue(parse_u32(v, "set_queue")?),
        "pop_queue" => Action::PopQueue,
        "enqueue" => {
            let (p, q) = v
                .split_once([':', ','])
                .ok_or_else(|| ParseError::new(item.text, "enqueue: expected PORT:QUEUE"))?;
            out.push(Action::SetQueue(parse_u32(q, "enqueue queue")?));
            out.push(output_to(parse_port(p, names)?, None));
            Action::PopQueue
        }
        "set_field" => {
            let (value, field) = arrow(item)?;
            set_field(field, value, item.text, names)?
        }
        "load" => {
            let (value, dst) = arrow(item)?;
            let dst = parse_subfield(dst)?;
            check_writable(dst.field, item.text)?;
            let value = parse_uint(value).ok_or_else(|| ParseError::new(item.text, "load: cannot parse integer value"))?;
            if dst.n_bits < 128 && value >> dst.n_bits != 0 {
                return Err(ParseError::new(item.text, format!("load: value {value:#x} does not fit into {} bits", dst.n_bits)));
            }
            Action::load(dst, value)
        }
        "move" => {
            let (src, dst) = arrow(item)?;
            let (src, dst) = (parse_subfield(src)?, parse_subfield(dst)?);
            check_writable(dst.field, item.text)?;
            if src.n_bits != dst.n_bits {
                return Err(ParseError::new(
                    item.text,
                    format!("move: source field is {} bits wide but destination is {} bits wide", src.n_bits, dst.n_bits),
                ));
            }
            Action::Move { src, dst }
        }
        "mod_dl_src" => set_field("eth_src", v, item.text, names)?,
        "mod_dl_dst" => set_field("eth_dst", v, item.text, names)?,
        "mod_nw_src" => set_field("ip_src", v, item.text, names)?,
        "mod_nw_dst" => set_field("ip_dst", v, item.text, names)?,
        // OpenFlow 1.0 set actions and Nicira set_tunnel: OpenFlow 1.5 has set_field for
        // them, which is what OVS sends and prints back.
        "mod_nw_ecn" => set_field("nw_ecn", v, item.text, names)?,
        "mod_vlan_pcp" | "set_vlan_pcp" => {
            push_vlan_if_needed(&key, cx, out);
            set_field("vlan_pcp", v, item.text, names)?
        }
        "mod_vlan_vid" | "set_vlan_vid" => {
            let vid = parse_u16(v, "mod_vlan_vid")?;
            if vid > 0xfff {
                return Err(ParseError::new(item.text, format!("mod_vlan_vid: {vid} is not a valid VLAN VID")));
            }
            push_vlan_if_needed(&key, cx, out);
            // OVS sets the VID of a present VLAN (the 0x1000 bit of OXM's vlan_vid).
            Action::SetField { field: Field::VlanVid, value: u128::from(vid | 0x1000), mask: None }
        }
        "set_tunnel" | "set_tunnel64" => set_field("tun_id", v, item.text, names)?,
        "set_mpls_label" => set_field("mpls_label", v, item.text, names)?,
        "set_mpls_tc" => set_field("mpls_tc", v, item.text, names)?,
        "mod_nw_tos" => {
            let tos = parse_u8(v, "mod_nw_tos")?;
            if tos & 3 != 0 {
                return Err(ParseError::new(item.text, "mod_nw_tos: ECN bits must be zero"));
            }
            Action::SetField { field: Field::IpDscp, value: u128::from(tos >> 2), mask: None }
        }
        "push_vlan" => {
            cx.vlan = true;
            Action::PushVlan(parse_u16(v, "push_vlan")?)
        }
        "pop_vlan" | "strip_vlan" => {
            cx.vlan = false;
            Action::PopVlan
        }
        "dec_ttl" if v.is_empty() => Action::DecTtl,
        "resubmit" => parse_resubmit(item, names)?,
        "conjunction" => parse_conjunction(item)?,
        "ct" => Action::Ct(parse_ct(item, cx)?),
        "ct_clear" => Action::CtClear,
        "note" => Action::Note(parse_note(item)?),
        "learn" => Action::Learn(Box::new(parse_learn(item, names)?)),
        "exit" => Action::Exit,
        "clone" => Action::Clone(parse_actions_at(v, &mut cx.nested())?),
        "drop" => return Ok(()),
        _ => match parse_port(item.key, names) {
            Ok(port) if item.delim.is_none() || port == PortNo::CONTROLLER => {
                let max_len = if item.value.is_empty() { None } else { Some(parse_u16(v, "max_len")?) };
                output_to(port, max_len)
            }
            _ => return Err(ParseError::new(item.text, format!("unknown or unsupported action {}", item.key))),
        },
    };
    out.push(action);
    Ok(())
}

/// `mod_vlan_vid` and `mod_vlan_pcp` push a VLAN header when the packet has none, as OVS's
/// `ofpact_check` does for their `push_vlan_if_needed`; the OpenFlow 1.0 `set_vlan_*` never do.
fn push_vlan_if_needed(key: &str, cx: &mut Cx<'_>, out: &mut Vec<Action>) {
    if key.starts_with("mod_") && !cx.vlan {
        out.push(Action::PushVlan(0x8100));
    }
    cx.vlan = true;
}

/// An output, with output to the controller as [`Action::Controller`] (OVS does the same).
fn output_to(port: PortNo, max_len: Option<u16>) -> Action {
    if port == PortNo::CONTROLLER {
        Action::Controller(Controller { max_len: max_len.unwrap_or(u16::MAX), ..Controller::default() })
    } else {
        Action::Output { port, max_len: 0 }
    }
}

fn parse_controller(item: &Item<'_>) -> Result<Action, ParseError> {
    let mut c = Controller::default();
    if item.delim != Some('(') {
        if !item.value.is_empty() {
            c.max_len = parse_u16(item.value, "controller max_len")?;
        }
        return Ok(Action::Controller(c));
    }
    for arg in items(item.value) {
        let v = arg.value;
        match arg.key {
            "reason" => {
                c.reason = (0..=5u8)
                    .map(PacketInReason)
                    .find(|r| r.name() == Some(v))
                    .ok_or_else(|| ParseError::new(arg.text, "unknown controller reason"))?;
            }
            "max_len" => c.max_len = parse_u16(v, "max_len")?,
            "id" => c.controller_id = parse_u16(v, "controller id")?,
            "userdata" => c.userdata = parse_hex_bytes(v).ok_or_else(|| ParseError::new(arg.text, "userdata: expected hex bytes"))?,
            "pause" => c.pause = true,
            "meter_id" => c.meter_id = Some(parse_u32(v, "meter_id")?),
            _ => return Err(ParseError::new(arg.text, "unknown controller argument")),
        }
    }
    Ok(Action::Controller(c))
}

/// Hex bytes, optionally separated by dots (`01.02.ab` or `0102ab`), as OVS's note/userdata.
fn parse_hex_bytes(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'.' {
            i += 1;
            continue;
        }
        let pair = s.get(i..i + 2)?;
        out.push(u8::from_str_radix(pair, 16).ok()?);
        i += 2;
    }
    Some(out)
}

fn parse_note(item: &Item<'_>) -> Result<Vec<u8>, ParseError> {
    parse_hex_bytes(item.value).ok_or_else(|| ParseError::new(item.text, "note: expected hex bytes like 01.02.ab"))
}

fn parse_resubmit(item: &Item<'_>, names: Option<&Names>) -> Result<Action, ParseError> {
    if item.delim != Some('(') {
        return Ok(Action::Resubmit { port: Some(parse_port(item.value, names)?), table: None, ct: false });
    }
    let parts: Vec<&str> = item.value.split(',').map(str::trim).collect();
    if parts.len() > 3 {
        return Err(ParseError::new(item.text, "resubmit: expected (port,table[,ct])"));
    }
    let port = match parts.first() {
        None | Some(&"") => None,
        Some(p) => Some(parse_port(p, names)?),
    };
    let table = match parts.get(1) {
        None | Some(&"") => None,
        Some(t) => Some(parse_table(t, names)?),
    };
    let ct = match parts.get(2) {
        None => false,
        Some(&"ct") => true,
        Some(_) => return Err(ParseError::new(item.text, "resubmit: the third argument must be ct")),
    };
    if port.is_none() && table.is_none() {
        return Err(ParseError::new(item.text, "at least one \"in_port\" or \"table\" must be specified on resubmit"));
    }
    // OVS stores an omitted port as IN_PORT and prints it blank again.
    let port = port.filter(|p| *p != PortNo::IN_PORT);
    Ok(Action::Resubmit { port, table, ct })
}

fn parse_conjunction(item: &Item<'_>) -> Result<Action, ParseError> {
    let bad = || ParseError::new(item.text, "conjunction: expected (id,k/n)");
    let (id, kn) = item.value.split_once(',').ok_or_else(bad)?;
    let (k, n) = kn.split_once('/').ok_or_else(bad)?;
    let id = parse_u32(id.trim(), "conjunction id")?;
    let clause = parse_u8(k.trim(), "conjunction clause")?;
    let n_clauses = parse_u8(n.trim(), "conjunction clauses")?;
    if !(2..=64).contains(&n_clauses) || clause == 0 || clause > n_clauses {
        return Err(ParseError::new(item.text, "conjunction: k must be 1..n and n 2..64"));
    }
    Ok(Action::Conjunction { id, clause, n_clauses })
}

fn parse_ct(item: &Item<'_>, cx: &Cx<'_>) -> Result<Ct, ParseError> {
    let names = cx.names;
    let mut ct = Ct::default();
    for arg in items(item.value) {
        let v = arg.value;
        match arg.key {
            "commit" => ct.commit = true,
            "force" => ct.force = true,
            "table" => ct.table = Some(parse_table(v, names)?),
            "zone" => {
                ct.zone = match parse_uint(v) {
                    Some(z) => CtZone::Imm(u16::try_from(z).map_err(|_| ParseError::new(arg.text, "zone must fit 16 bits"))?),
                    None => {
                        let r = parse_subfield(v)?;
                        if r.n_bits != 16 {
                            return Err(ParseError::new(arg.text, "zone from a field must be exactly 16 bits"));
                        }
                        CtZone::Field(r)
                    }
                }
            }
            "alg" => {
                ct.alg = match v {
                    "ftp" => 21,
                    "tftp" => 69,
                    _ => parse_u16(v, "alg")?,
                }
            }
            // Nested actions keep their order: a NAT after exec's actions stays after them.
            "nat" if ct.nat.is_none() && ct.exec.is_empty() => ct.nat = Some(parse_nat(&arg)?),
            "nat" => ct.exec.push(Action::Nat(parse_nat(&arg)?)),
            "exec" => ct.exec.extend(parse_actions_at(v, &mut cx.nested())?),
            _ => return Err(ParseError::new(arg.text, "unknown ct argument")),
        }
    }
    if ct.force && !ct.commit {
        return Err(ParseError::new(item.text, "ct: force requires commit"));
    }
    Ok(ct)
}

/// An address of a NAT range: `10.0.0.1`, `fe80::1` or `[fe80::1]`.
fn nat_addr(s: &str, token: &str) -> Result<IpAddr, ParseError> {
    let bare = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(s);
    if let Ok(a) = bare.parse::<Ipv4Addr>() {
        return Ok(IpAddr::V4(a));
    }
    bare.parse::<Ipv6Addr>()
        .map(IpAddr::V6)
        .map_err(|_| ParseError::new(token, format!("nat: {s:?} is not an IP address")))
}

pub(super) fn parse_nat(arg: &Item<'_>) -> Result<Nat, ParseError> {
    let mut nat = Nat::default();
    if arg.delim != Some('(') {
        return Ok(nat);
    }
    for a in items(arg.value) {
        match a.key {
            "src" | "dst" => {
                if nat.kind.is_some() {
                    return Err(ParseError::new(a.text, "nat: only one of src and dst"));
                }
                nat.kind = Some(if a.key == "src" { NatKind::Src } else { NatKind::Dst });
                if !a.value.is_empty() {
                    parse_nat_range(a.value, a.text, &mut nat)?;
                }
            }
            "persistent" => nat.persistent = true,
            "hash" => nat.hash = true,
            "random" => nat.random = true,
            _ => return Err(ParseError::new(a.text, "unknown nat argument")),
        }
    }
    if nat.hash && nat.random {
        return Err(ParseError::new(arg.text, "nat: hash and random are mutually exclusive"));
    }
    if nat.kind.is_none() && (nat.persistent || nat.hash || nat.random) {
        return Err(ParseError::new(arg.text, "nat: flags are allowed only with src or dst"));
    }
    if nat.addrs.is_none() {
        // Without a range OVS neither uses nor prints the flags; dropping them keeps
        // print(parse(t)) a fixed point.
        (nat.persistent, nat.hash, nat.random) = (false, false, false);
    }
    Ok(nat)
}

/// `ADDR[-ADDR][:PORT[-PORT]]`, IPv6 addresses in brackets when ports follow.
fn parse_nat_range(s: &str, token: &str, nat: &mut Nat) -> Result<(), ParseError> {
    let (addrs, ports) = if s.starts_with('[') {
        // [a]-[b]:p-q
        match s.rfind("]:") {
            Some(i) => (&s[..=i], Some(&s[i + 2..])),
            None => (s, None),
        }
    } else if s.matches(':').count() == 1 {
        let (a, p) = s.split_once(':').expect("one colon");
        (a, Some(p))
    } else {
        (s, None)
    };
    let (lo, hi) = match addrs.split_once("]-[") {
        Some((a, b)) => (format!("{a}]"), Some(format!("[{b}"))),
        None => match addrs.split_once('-') {
            Some((a, b)) => (a.to_string(), Some(b.to_string())),
            None => (addrs.to_string(), None),
        },
    };
    let lo = nat_addr(&lo, token)?;
    let hi = match hi {
        Some(h) => nat_addr(&h, token)?,
        None => lo,
    };
    if lo.is_ipv4() != hi.is_ipv4() {
        return Err(ParseError::new(token, "nat: address range mixes IPv4 and IPv6"));
    }
    nat.addrs = Some((lo, hi));
    if let Some(p) = ports {
        let (a, b) = match p.split_once('-') {
            Some((a, b)) => (parse_u16(a, "nat port")?, parse_u16(b, "nat port")?),
            None => {
                let a = parse_u16(p, "nat port")?;
                (a, a)
            }
        };
        if b < a {
            return Err(ParseError::new(token, "nat: port range is reversed"));
        }
        // A zero lower bound is no port range to OVS (it neither encodes nor prints it).
        nat.ports = (a != 0).then_some((a, b));
    }
    Ok(())
}

fn parse_learn(item: &Item<'_>, names: Option<&Names>) -> Result<Learn, ParseError> {
    let mut l = Learn::default();
    for arg in items(item.value) {
        let v = arg.value;
        match arg.key {
            "table" => l.table_id = parse_table(v, names)?,
            "priority" => l.priority = parse_u16(v, "priority")?,
            "idle_timeout" => l.idle_timeout = parse_u16(v, "idle_timeout")?,
            "hard_timeout" => l.hard_timeout = parse_u16(v, "hard_timeout")?,
            "fin_idle_timeout" => l.fin_idle_timeout = parse_u16(v, "fin_idle_timeout")?,
            "fin_hard_timeout" => l.fin_hard_timeout = parse_u16(v, "fin_hard_timeout")?,
            "cookie" => l.cookie = parse_u64(v, "cookie")?,
            "limit" => l.limit = parse_u32(v, "limit")?,
            "send_flow_rem" => l.flags |= learn_flags::SEND_FLOW_REM,
            "delete_learned" => l.flags |= learn_flags::DELETE_LEARNED,
            "result_dst" => {
                let r = parse_subfield(v)?;
                if r.n_bits != 1 {
                    return Err(ParseError::new(arg.text, "result_dst must be a single bit"));
                }
                l.result_dst = Some(r);
            }
            "load" => {
                let (src, dst) = v
                    .split_once("->")
                    .ok_or_else(|| ParseError::new(arg.text, "load: missing `->'"))?;
                let dst = parse_subfield(dst)?;
                let src = match parse_uint(src) {
                    Some(imm) => {
                        if dst.n_bits < 128 && imm >> dst.n_bits != 0 {
                            return Err(ParseError::new(arg.text, format!("value does not fit into {} bits", dst.n_bits)));
                        }
                        LearnSrc::Imm(imm)
                    }
                    None => {
                        let s = parse_subfield(src)?;
                        if s.n_bits != dst.n_bits {
                            return Err(ParseError::new(arg.text, "bit widths of source and destination differ"));
                        }
                        LearnSrc::Field(s)
                    }
                };
                l.specs.push(LearnSpec::Load { dst, src });
            }
            "output" => l.specs.push(LearnSpec::Output { src: parse_subfield(v)? }),
            _ => l.specs.push(parse_learn_match(&arg, names)?),
        }
    }
    if l.result_dst.is_some() {
        l.flags |= learn_flags::WRITE_RESULT;
    }
    Ok(l)
}

/// `dst`, `dst=src_field` or `dst=value`: the learned flow matches `dst`.
fn parse_learn_match(arg: &Item<'_>, names: Option<&Names>) -> Result<LearnSpec, ParseError> {
    let dst = parse_subfield(arg.key).map_err(|e| ParseError::new(arg.text, format!("unknown learn argument ({})", e.message)))?;
    if arg.value.is_empty() {
        return Ok(LearnSpec::Match { dst, src: LearnSrc::Field(dst) });
    }
    if let Ok(src) = parse_subfield(arg.value) {
        if src.n_bits != dst.n_bits {
            return Err(ParseError::new(arg.text, "bit widths of source and destination differ"));
        }
        return Ok(LearnSpec::Match { dst, src: LearnSrc::Field(src) });
    }
    let imm = if dst.is_whole() {
        let (v, m) = parse_field_value(dst.field, arg.value, names)?;
        if m.is_some() {
            return Err(ParseError::new(arg.text, "learn: a matched value cannot have a mask"));
        }
        v
    } else {
        let v = parse_uint(arg.value).ok_or_else(|| ParseError::new(arg.text, "cannot parse integer value"))?;
        if v & !ones(dst.n_bits) != 0 {
            return Err(ParseError::new(arg.text, format!("value does not fit into {} bits", dst.n_bits)));
        }
        v
    };
    Ok(LearnSpec::Match { dst, src: LearnSrc::Imm(imm) })
}

impl std::str::FromStr for Action {
    type Err = ParseError;

    /// One action in ovs-ofctl syntax (`output:1`, `ct(commit)`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut v = parse_actions(s, None)?;
        match v.len() {
            1 => Ok(v.remove(0)),
            _ => Err(ParseError::new(s, "expected exactly one action")),
        }
    }
}

