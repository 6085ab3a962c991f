//! Parsing the actions the policy pipeline does not emit but ovs-ofctl accepts: TTL and MPLS
//! actions, `dec_ttl(ids)`, `fin_timeout`, truncating output, `check_pkt_larger`, the field
//! stack, `sample`, `multipath`, `bundle`, `encap` and `decap`. Each follows the `parse_<ACTION>` function of
//! OVS's `lib/ofp-actions.c` (or `lib/multipath.c`, `lib/bundle.c`).

use super::lex::{Item, items, parse_u8, parse_u16, parse_u32};
use super::parse::{ParseError, parse_port, parse_subfield};
use super::parse_action::Cx;
use crate::action::{
    Action, BUNDLE_ALGORITHMS, Bundle, ENCAP_HEADERS, Encap, HASH_FIELDS, MULTIPATH_ALGORITHMS, Multipath, ObsId, PacketType, Sample,
    code_of, sample_direction,
};
use crate::field::{Field, FieldRange};

/// The action `key` (already lower-case) if it is one of this module's, else `None`.
pub(super) fn parse_ext(key: &str, item: &Item<'_>, cx: &Cx<'_>) -> Result<Option<Action>, ParseError> {
    let v = item.value;
    let action = match key {
        "mod_nw_ttl" => Action::SetNwTtl(parse_u8(v, "mod_nw_ttl")?),
        "set_mpls_ttl" => Action::SetMplsTtl(parse_u8(v, "set_mpls_ttl")?),
        "dec_mpls_ttl" => Action::DecMplsTtl,
        "push_mpls" => Action::PushMpls(mpls_ethertype(item)?),
        "pop_mpls" => Action::PopMpls(parse_u16(v, "pop_mpls")?),
        "dec_ttl" if !v.is_empty() => Action::DecTtlIds(parse_cnt_ids(item)?),
        "fin_timeout" => parse_fin_timeout(item)?,
        "output" if item.delim == Some('(') => parse_output_trunc(item, cx)?,
        "check_pkt_larger" => parse_check_pkt_larger(item)?,
        "push" => Action::StackPush(parse_subfield(v)?),
        "pop" => Action::StackPop(parse_subfield(v)?),
        "sample" => Action::Sample(parse_sample(item, cx)?),
        "multipath" => Action::Multipath(parse_multipath(item)?),
        "bundle" | "bundle_load" => Action::Bundle(parse_bundle(item, key == "bundle_load", cx)?),
        "mod_tp_src" | "mod_tp_dst" => parse_mod_tp(key, item, cx)?,
        "encap" => Action::Encap(parse_encap(item)?),
        // As OVS prints a NAT that follows other actions inside ct's exec(...).
        "nat" => Action::Nat(super::parse_action::parse_nat(item)?),
        "decap" => Action::Decap(parse_decap(item)?),
        "delete_field" => Action::DeleteField(
            Field::from_name(v).ok_or_else(|| ParseError::new(item.text, format!("{v} is not a valid field name")))?,
        ),
        _ => return Ok(None),
    };
    Ok(Some(action))
}

fn mpls_ethertype(item: &Item<'_>) -> Result<u16, ParseError> {
    let t = parse_u16(item.value, "push_mpls")?;
    if t != 0x8847 && t != 0x8848 {
        return Err(ParseError::new(item.text, "push_mpls: the Ethernet type must be 0x8847 or 0x8848"));
    }
    Ok(t)
}

/// `mod_tp_src:N`/`mod_tp_dst:N` set the L4 port of the match's protocol (OVS checks the flow
/// is TCP, UDP or SCTP and encodes a set_field of that protocol's field).
fn parse_mod_tp(key: &str, item: &Item<'_>, cx: &Cx<'_>) -> Result<Action, ParseError> {
    let (src, dst) = cx.l4().ok_or_else(|| ParseError::new(item.text, format!("{key} needs a TCP, UDP or SCTP match")))?;
    let field = if key == "mod_tp_src" { src } else { dst };
    Ok(Action::SetField { field, value: u128::from(parse_u16(item.value, key)?), mask: None })
}

fn parse_cnt_ids(item: &Item<'_>) -> Result<Vec<u16>, ParseError> {
    let ids = item
        .value
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(|s| parse_u16(s, "dec_ttl controller id"))
        .collect::<Result<Vec<_>, _>>()?;
    if ids.is_empty() {
        return Err(ParseError::new(item.text, "dec_ttl_cnt_ids: expected at least one controller id."));
    }
    Ok(ids)
}

fn parse_fin_timeout(item: &Item<'_>) -> Result<Action, ParseError> {
    let (mut idle, mut hard) = (0, 0);
    for arg in items(item.value) {
        match arg.key {
            "idle_timeout" => idle = parse_u16(arg.value, "idle_timeout")?,
            "hard_timeout" => hard = parse_u16(arg.value, "hard_timeout")?,
            _ => return Err(ParseError::new(arg.text, "invalid key in fin_timeout argument")),
        }
    }
    Ok(Action::FinTimeout { idle, hard })
}

fn parse_output_trunc(item: &Item<'_>, cx: &Cx<'_>) -> Result<Action, ParseError> {
    let (mut port, mut max_len) = (None, None);
    for arg in items(item.value) {
        match arg.key {
            "port" => port = Some(parse_port(arg.value, cx.names())?),
            "max_len" => max_len = Some(parse_u32(arg.value, "max_len")?),
            _ => return Err(ParseError::new(arg.text, "invalid key in output argument")),
        }
    }
    match (port, max_len) {
        (Some(port), Some(max_len)) => Ok(Action::OutputTrunc { port, max_len }),
        _ => Err(ParseError::new(item.text, "output(...) needs port and max_len")),
    }
}

/// `check_pkt_larger(LEN)->DST`: the lexer leaves `LEN)->DST` as the value.
fn parse_check_pkt_larger(item: &Item<'_>) -> Result<Action, ParseError> {
    let (len, dst) = item
        .value
        .split_once(")->")
        .ok_or_else(|| ParseError::new(item.text, "check_pkt_larger: expected (LEN)->DST"))?;
    let dst = parse_subfield(dst)?;
    if dst.n_bits != 1 {
        return Err(ParseError::new(item.text, "check_pkt_larger: the destination must be one bit"));
    }
    Ok(Action::CheckPktLarger { pkt_len: parse_u16(len, "check_pkt_larger length")?, dst })
}

/// An observation id: a number, or up to 32 bits of a field.
fn obs_id(arg: &Item<'_>) -> Result<ObsId, ParseError> {
    if let Ok(v) = parse_u32(arg.value, arg.key) {
        return Ok(ObsId::Imm(v));
    }
    let r = parse_subfield(arg.value)?;
    if r.n_bits > 32 {
        return Err(ParseError::new(arg.text, format!("size of {} field ({}) exceeds maximum (32)", arg.key, r.n_bits)));
    }
    Ok(ObsId::Field(r))
}

fn parse_sample(item: &Item<'_>, cx: &Cx<'_>) -> Result<Sample, ParseError> {
    let mut s = Sample {
        probability: 0,
        collector_set_id: 0,
        obs_domain: ObsId::Imm(0),
        obs_point: ObsId::Imm(0),
        sampling_port: None,
        direction: sample_direction::DEFAULT,
    };
    for arg in items(item.value) {
        match arg.key {
            "probability" => s.probability = parse_u16(arg.value, "probability")?,
            "collector_set_id" => s.collector_set_id = parse_u32(arg.value, "collector_set_id")?,
            "obs_domain_id" => s.obs_domain = obs_id(&arg)?,
            "obs_point_id" => s.obs_point = obs_id(&arg)?,
            "sampling_port" => s.sampling_port = Some(parse_port(arg.value, cx.names())?),
            "ingress" => s.direction = sample_direction::INGRESS,
            "egress" => s.direction = sample_direction::EGRESS,
            _ => return Err(ParseError::new(arg.text, format!("invalid key \"{}\" in \"sample\" argument", arg.key))),
        }
    }
    if s.probability == 0 {
        return Err(ParseError::new(item.text, "non-zero \"probability\" must be specified on sample"));
    }
    Ok(s)
}

fn code(table: &[(u16, &str)], name: &str, what: &str, token: &str) -> Result<u16, ParseError> {
    code_of(table, name).ok_or_else(|| ParseError::new(token, format!("unknown {what} \"{name}\"")))
}

/// `multipath(fields, basis, algorithm, n_links, arg, dst)`.
fn parse_multipath(item: &Item<'_>) -> Result<Multipath, ParseError> {
    let args: Vec<&str> = item.value.split(',').map(str::trim).collect();
    let [fields, basis, algorithm, n_links, arg, dst] = args[..] else {
        return Err(ParseError::new(item.text, "multipath: expected six arguments"));
    };
    let n_links = parse_u32(n_links, "multipath n_links")?;
    if !(1..=65536).contains(&n_links) {
        return Err(ParseError::new(item.text, "multipath: n_links must be 1..65536"));
    }
    let dst = parse_subfield(dst)?;
    let max_link = (n_links - 1) as u16;
    if u32::from(dst.n_bits) < 32 - u32::from(max_link).leading_zeros() {
        return Err(ParseError::new(item.text, format!("multipath: {n_links} links need more than {} bits", dst.n_bits)));
    }
    Ok(Multipath {
        fields: code(HASH_FIELDS, fields, "fields", item.text)?,
        basis: parse_u16(basis, "multipath basis")?,
        algorithm: code(MULTIPATH_ALGORITHMS, algorithm, "algorithm", item.text)?,
        max_link,
        arg: parse_u32(arg, "multipath arg")?,
        dst,
    })
}

/// `bundle(fields, basis, algorithm, ofport, members:P,...)`, and `bundle_load` with a
/// destination before `members:` (members may be bracketed).
fn parse_bundle(item: &Item<'_>, load: bool, cx: &Cx<'_>) -> Result<Bundle, ParseError> {
    let bad = |why: &str| ParseError::new(item.text, format!("bundle: {why}"));
    let (head, members) = item.value.split_once("members:").ok_or_else(|| bad("expected members:"))?;
    let args: Vec<&str> = head.split(',').map(str::trim).filter(|a| !a.is_empty()).collect();
    let (fixed, dst): (&[&str], Option<FieldRange>) = match (load, args.len()) {
        (false, 4) => (&args[..], None),
        (true, 5) => (&args[..4], Some(parse_subfield(args[4])?)),
        _ => return Err(bad("wrong number of arguments")),
    };
    if fixed[3] != "ofport" {
        return Err(bad("member type must be ofport"));
    }
    if dst.is_some_and(|d| d.n_bits < 16) {
        return Err(bad("bundle_load needs a destination of at least 16 bits"));
    }
    let members = members
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(|m| parse_port(m, cx.names()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Bundle {
        fields: code(HASH_FIELDS, fixed[0], "fields", item.text)?,
        basis: parse_u16(fixed[1], "bundle basis")?,
        algorithm: code(BUNDLE_ALGORITHMS, fixed[2], "algorithm", item.text)?,
        members,
        dst,
    })
}

/// `encap(HEADER)` or `encap(nsh(md_type=N))`.
fn parse_encap(item: &Item<'_>) -> Result<Encap, ParseError> {
    let hdr = items(item.value).next().ok_or_else(|| ParseError::new(item.text, format!("Missing encap hdr: {}", item.value)))?;
    let (packet_type, _) = ENCAP_HEADERS
        .iter()
        .find(|(_, n)| *n == hdr.key)
        .ok_or_else(|| ParseError::new(item.text, format!("Encap hdr not supported: {}", hdr.value)))?;
    let mut e = Encap { packet_type: *packet_type, hdr_size: 0, nsh_md_type: None };
    for prop in items(hdr.value) {
        match (hdr.key, prop.key) {
            ("nsh", "md_type") if prop.value.is_empty() => return Err(ParseError::new(prop.text, "Value missing for encap property")),
            ("nsh", "md_type") => match parse_u8(prop.value, "md_type")? {
                t @ 1..=2 => e.nsh_md_type = Some(t),
                _ => return Err(ParseError::new(prop.text, "invalid md_type")),
            },
            _ => return Err(ParseError::new(prop.text, format!("Invalid property: {}", prop.key))),
        }
    }
    Ok(e)
}

/// `decap()` or `decap(packet_type(ns=N,type=T))`.
fn parse_decap(item: &Item<'_>) -> Result<Option<PacketType>, ParseError> {
    let Some(arg) = items(item.value).next() else { return Ok(None) };
    if arg.key != "packet_type" {
        return Err(ParseError::new(arg.text, format!("Invalid decap argument: {}", arg.key)));
    }
    let mut parts = items(arg.value);
    let ns = match parts.next() {
        Some(a) if a.key == "ns" => parse_u16(a.value, "ns")?,
        _ => return Err(ParseError::new(arg.text, "Missing packet_type attribute ns")),
    };
    if ns > 1 {
        return Err(ParseError::new(arg.text, format!("Unsupported ns value: {ns}")));
    }
    let ns_type = match parts.next() {
        Some(a) if a.key == "type" => parse_u16(a.value, "type")?,
        _ => return Err(ParseError::new(arg.text, "Missing packet_type attribute type")),
    };
    Ok(Some(PacketType { ns, ns_type }))
}
