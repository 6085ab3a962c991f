//! Printing actions and instructions as ovs-ofctl does after `actions=` (OVS's
//! `ofpacts_format`).

use std::fmt::Write;

use super::print::{CHex, Names, format_port, format_table, format_value};
use crate::action::{Action, Controller, Ct, CtZone, Learn, LearnSpec, LearnSrc, Nat, NatKind, PacketInReason};
use crate::flow::DEFAULT_PRIORITY;
use crate::instruction::Instruction;
use crate::port::PortNo;

fn format_hex_bytes(s: &mut String, b: &[u8]) {
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        let _ = write!(s, "{x:02x}");
    }
}

/// Prints a list of actions (`drop` when empty).
pub fn format_actions(s: &mut String, actions: &[Action], names: Option<&Names>) {
    if actions.is_empty() {
        s.push_str("drop");
        return;
    }
    for (i, a) in actions.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        format_action(s, a, names);
    }
}

fn format_controller(s: &mut String, c: &Controller) {
    if c.is_plain() {
        let _ = write!(s, "CONTROLLER:{}", c.max_len);
        return;
    }
    s.push_str("controller(");
    if c.reason != PacketInReason::ACTION {
        match c.reason.name() {
            Some(n) => {
                let _ = write!(s, "reason={n},");
            }
            None => {
                let _ = write!(s, "reason={},", c.reason.0);
            }
        }
    }
    if c.max_len != u16::MAX {
        let _ = write!(s, "max_len={},", c.max_len);
    }
    if c.controller_id != 0 {
        let _ = write!(s, "id={},", c.controller_id);
    }
    if !c.userdata.is_empty() {
        s.push_str("userdata=");
        format_hex_bytes(s, &c.userdata);
        s.push(',');
    }
    if c.pause {
        s.push_str("pause,");
    }
    if let Some(m) = c.meter_id {
        let _ = write!(s, "meter_id={m},");
    }
    if s.ends_with(',') {
        s.pop();
    }
    s.push(')');
}

fn format_nat(s: &mut String, nat: &Nat) {
    s.push_str("nat");
    let Some(kind) = nat.kind else { return };
    s.push('(');
    s.push_str(if kind == NatKind::Src { "src" } else { "dst" });
    if let Some((lo, hi)) = nat.addrs {
        s.push('=');
        let port = nat.ports.map_or(0, |p| p.0);
        let addr = |s: &mut String, a: std::net::IpAddr| match a {
            std::net::IpAddr::V4(a) => {
                let _ = write!(s, "{a}");
            }
            std::net::IpAddr::V6(a) => {
                if port != 0 {
                    let _ = write!(s, "[{a}]");
                } else {
                    let _ = write!(s, "{a}");
                }
            }
        };
        addr(s, lo);
        if hi != lo {
            s.push('-');
            addr(s, hi);
        }
        if let Some((plo, phi)) = nat.ports
            && plo != 0 {
                let _ = write!(s, ":{plo}");
                if phi != 0 && phi != plo {
                    let _ = write!(s, "-{phi}");
                }
            }
        s.push(',');
        if nat.persistent {
            s.push_str("persistent,");
        }
        if nat.hash {
            s.push_str("hash,");
        }
        if nat.random {
            s.push_str("random,");
        }
    }
    if s.ends_with(',') {
        s.pop();
    }
    s.push(')');
}

fn format_ct(s: &mut String, ct: &Ct, names: Option<&Names>) {
    s.push_str("ct(");
    if ct.commit {
        s.push_str("commit,");
    }
    if ct.force {
        s.push_str("force,");
    }
    if let Some(t) = ct.table {
        s.push_str("table=");
        format_table(s, t, names);
        s.push(',');
    }
    match ct.zone {
        CtZone::Field(r) => {
            let _ = write!(s, "zone={r},");
        }
        CtZone::Imm(0) => {}
        CtZone::Imm(z) => {
            let _ = write!(s, "zone={z},");
        }
    }
    if let Some(nat) = &ct.nat {
        format_nat(s, nat);
        s.push(',');
    }
    if !ct.exec.is_empty() {
        s.push_str("exec(");
        format_actions(s, &ct.exec, names);
        s.push_str("),");
    }
    match ct.alg {
        0 => {}
        21 => s.push_str("alg=ftp,"),
        69 => s.push_str("alg=tftp,"),
        n => {
            let _ = write!(s, "alg={n},");
        }
    }
    if s.ends_with(',') {
        s.pop();
    }
    s.push(')');
}

fn format_learn(s: &mut String, l: &Learn, names: Option<&Names>) {
    s.push_str("learn(table=");
    format_table(s, l.table_id, names);
    if l.idle_timeout != 0 {
        let _ = write!(s, ",idle_timeout={}", l.idle_timeout);
    }
    if l.hard_timeout != 0 {
        let _ = write!(s, ",hard_timeout={}", l.hard_timeout);
    }
    if l.fin_idle_timeout != 0 {
        let _ = write!(s, ",fin_idle_timeout={}", l.fin_idle_timeout);
    }
    if l.fin_hard_timeout != 0 {
        let _ = write!(s, ",fin_hard_timeout={}", l.fin_hard_timeout);
    }
    if l.priority != DEFAULT_PRIORITY {
        let _ = write!(s, ",priority={}", l.priority);
    }
    if l.flags & crate::action::learn_flags::SEND_FLOW_REM != 0 {
        s.push_str(",send_flow_rem");
    }
    if l.flags & crate::action::learn_flags::DELETE_LEARNED != 0 {
        s.push_str(",delete_learned");
    }
    if l.cookie != 0 {
        let _ = write!(s, ",cookie={}", CHex(l.cookie));
    }
    if l.limit != 0 {
        let _ = write!(s, ",limit={}", l.limit);
    }
    if let Some(r) = l.result_dst {
        let _ = write!(s, ",result_dst={r}");
    }
    for spec in &l.specs {
        s.push(',');
        match spec {
            LearnSpec::Match { dst, src: LearnSrc::Field(src) } => {
                if src == dst {
                    let _ = write!(s, "{dst}");
                } else {
                    let _ = write!(s, "{dst}={src}");
                }
            }
            LearnSpec::Match { dst, src: LearnSrc::Imm(v) } => {
                if dst.is_whole() {
                    let _ = write!(s, "{}=", dst.field);
                    format_value(s, dst.field, *v, None, names);
                } else {
                    let _ = write!(s, "{dst}={}", CHex(*v));
                }
            }
            LearnSpec::Load { dst, src: LearnSrc::Field(src) } => {
                let _ = write!(s, "load:{src}->{dst}");
            }
            LearnSpec::Load { dst, src: LearnSrc::Imm(v) } => {
                let _ = write!(s, "load:{}->{dst}", CHex(*v));
            }
            LearnSpec::Output { src } => {
                let _ = write!(s, "output:{src}");
            }
        }
    }
    s.push(')');
}

/// Prints one action.
pub fn format_action(s: &mut String, a: &Action, names: Option<&Names>) {
    match a {
        Action::Output { port, max_len } => {
            if port.0 < 0xff00 || (port.0 < PortNo::MAX.0 && port.reserved_name().is_none()) {
                s.push_str("output:");
            }
            format_port(s, *port, names);
            if *port == PortNo::CONTROLLER {
                let _ = write!(s, ":{max_len}");
            }
        }
        Action::OutputReg { src, .. } => {
            let _ = write!(s, "output:{src}");
        }
        Action::Controller(c) => format_controller(s, c),
        Action::Group(g) => {
            let _ = write!(s, "group:{g}");
        }
        Action::Meter(m) => {
            let _ = write!(s, "meter:{m}");
        }
        Action::SetQueue(q) => {
            let _ = write!(s, "set_queue:{q}");
        }
        Action::PopQueue => s.push_str("pop_queue"),
        Action::SetField { field, value, mask } => {
            s.push_str("set_field:");
            format_value(s, *field, *value, *mask, names);
            let _ = write!(s, "->{field}");
        }
        Action::Load { dst, value } => {
            let _ = write!(s, "load:{}->{dst}", CHex(*value));
        }
        Action::Move { src, dst } => {
            let _ = write!(s, "move:{src}->{dst}");
        }
        Action::PushVlan(t) => {
            let _ = write!(s, "push_vlan:{}", CHex(*t));
        }
        Action::PopVlan => s.push_str("pop_vlan"),
        Action::DecTtl => s.push_str("dec_ttl"),
        Action::Resubmit { port, table, ct } => {
            if port.is_some() && table.is_none() && !ct {
                s.push_str("resubmit:");
                format_port(s, port.expect("checked"), names);
            } else {
                s.push_str("resubmit(");
                if let Some(p) = port {
                    format_port(s, *p, names);
                }
                s.push(',');
                if let Some(t) = table {
                    format_table(s, *t, names);
                }
                if *ct {
                    s.push_str(",ct");
                }
                s.push(')');
            }
        }
        Action::Conjunction { id, clause, n_clauses } => {
            let _ = write!(s, "conjunction({id},{clause}/{n_clauses})");
        }
        Action::Ct(ct) => format_ct(s, ct, names),
        Action::Nat(nat) => format_nat(s, nat),
        Action::CtClear => s.push_str("ct_clear"),
        Action::Note(b) => {
            s.push_str("note:");
            format_hex_bytes(s, b);
        }
        Action::Learn(l) => format_learn(s, l, names),
        Action::Exit => s.push_str("exit"),
        Action::Clone(a) => {
            s.push_str("clone(");
            format_actions(s, a, names);
            s.push(')');
        }
        other => super::print_action_ext::format_ext(s, other, names),
    }
}

/// Prints instructions the way ovs-ofctl does after `actions=` (apply-actions flat).
pub fn format_instructions(s: &mut String, instructions: &[Instruction], names: Option<&Names>) {
    if instructions.is_empty() {
        s.push_str("drop");
        return;
    }
    let mut first = true;
    let mut sep = |s: &mut String| {
        if !first {
            s.push(',');
        }
        first = false;
    };
    for i in instructions {
        match i {
            Instruction::Meter(m) => {
                sep(s);
                let _ = write!(s, "meter:{m}");
            }
            Instruction::ApplyActions(a) => {
                sep(s);
                format_actions(s, a, names);
            }
            Instruction::ClearActions => {
                sep(s);
                s.push_str("clear_actions");
            }
            Instruction::WriteActions(a) => {
                sep(s);
                s.push_str("write_actions(");
                format_actions(s, a, names);
                s.push(')');
            }
            Instruction::WriteMetadata { value, mask } => {
                sep(s);
                let _ = write!(s, "write_metadata:{}", CHex(*value));
                if *mask != u64::MAX {
                    let _ = write!(s, "/{}", CHex(*mask));
                }
            }
            Instruction::GotoTable(t) => {
                sep(s);
                s.push_str("goto_table:");
                format_table(s, *t, names);
            }
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        format_action(&mut s, self, None);
        f.write_str(&s)
    }
}
