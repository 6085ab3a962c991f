//! Printing the actions of `parse_action_ext` as OVS's `format_<ACTION>` functions do.

use std::fmt::Write;

use super::print::{CHex, Names, format_port};
use crate::action::{Action, BUNDLE_ALGORITHMS, ENCAP_HEADERS, Bundle, HASH_FIELDS, MULTIPATH_ALGORITHMS, ObsId, Sample, code_name, sample_direction};

/// Prints one of the actions of this module; the caller handles every other kind.
pub(super) fn format_ext(s: &mut String, a: &Action, names: Option<&Names>) {
    let _ = match a {
        Action::SetNwTtl(t) => write!(s, "mod_nw_ttl:{t}"),
        Action::SetMplsTtl(t) => write!(s, "set_mpls_ttl({t})"),
        Action::DecMplsTtl => write!(s, "dec_mpls_ttl"),
        Action::PushMpls(t) => write!(s, "push_mpls:0x{t:04x}"),
        Action::PopMpls(t) => write!(s, "pop_mpls:0x{t:04x}"),
        Action::DecTtlIds(ids) => {
            let ids: Vec<String> = ids.iter().map(u16::to_string).collect();
            write!(s, "dec_ttl({})", ids.join(","))
        }
        Action::FinTimeout { idle, hard } => {
            let mut args = Vec::new();
            if *idle != 0 {
                args.push(format!("idle_timeout={idle}"));
            }
            if *hard != 0 {
                args.push(format!("hard_timeout={hard}"));
            }
            write!(s, "fin_timeout({})", args.join(","))
        }
        Action::OutputTrunc { port, max_len } => {
            s.push_str("output(port=");
            format_port(s, *port, names);
            write!(s, ",max_len={max_len})")
        }
        Action::CheckPktLarger { pkt_len, dst } => write!(s, "check_pkt_larger({pkt_len})->{dst}"),
        Action::StackPush(r) => write!(s, "push:{r}"),
        Action::StackPop(r) => write!(s, "pop:{r}"),
        Action::Sample(x) => {
            format_sample(s, x, names);
            Ok(())
        }
        Action::Multipath(m) => write!(
            s,
            "multipath({},{},{},{},{},{})",
            code_name(HASH_FIELDS, m.fields).unwrap_or("<unknown>"),
            m.basis,
            code_name(MULTIPATH_ALGORITHMS, m.algorithm).unwrap_or("<unknown>"),
            u32::from(m.max_link) + 1,
            m.arg,
            m.dst
        ),
        Action::Bundle(b) => {
            format_bundle(s, b, names);
            Ok(())
        }
        Action::Encap(e) => {
            let name = ENCAP_HEADERS.iter().find(|(t, _)| *t == e.packet_type).map_or("UNKNOWN", |(_, n)| *n);
            match e.nsh_md_type {
                Some(t) => write!(s, "encap({name}(md_type={t}))"),
                None => write!(s, "encap({name})"),
            }
        }
        Action::Decap(None) => write!(s, "decap()"),
        Action::DeleteField(f) => write!(s, "delete_field:{f}"),
        Action::Decap(Some(t)) => write!(s, "decap(packet_type(ns={},type={}))", t.ns, CHex(t.ns_type)),
        other => unreachable!("format_action prints {other:?} itself"),
    };
}

fn format_obs_id(s: &mut String, id: &ObsId) {
    let _ = match id {
        ObsId::Imm(v) => write!(s, "{v}"),
        ObsId::Field(r) => write!(s, "{r}"),
    };
}

fn format_sample(s: &mut String, x: &Sample, names: Option<&Names>) {
    let _ = write!(s, "sample(probability={},collector_set_id={},obs_domain_id=", x.probability, x.collector_set_id);
    format_obs_id(s, &x.obs_domain);
    s.push_str(",obs_point_id=");
    format_obs_id(s, &x.obs_point);
    if let Some(p) = x.sampling_port {
        s.push_str(",sampling_port=");
        format_port(s, p, names);
    }
    match x.direction {
        sample_direction::INGRESS => s.push_str(",ingress"),
        sample_direction::EGRESS => s.push_str(",egress"),
        _ => {}
    }
    s.push(')');
}

fn format_bundle(s: &mut String, b: &Bundle, names: Option<&Names>) {
    let _ = write!(
        s,
        "{}({},{},{},ofport,",
        if b.dst.is_some() { "bundle_load" } else { "bundle" },
        code_name(HASH_FIELDS, b.fields).unwrap_or("<unknown>"),
        b.basis,
        code_name(BUNDLE_ALGORITHMS, b.algorithm).unwrap_or("<unknown>"),
    );
    if let Some(d) = b.dst {
        let _ = write!(s, "{d},");
    }
    s.push_str("members:");
    for (i, p) in b.members.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        format_port(s, *p, names);
    }
    s.push(')');
}
