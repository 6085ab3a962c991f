//! The `ovs-vsctl show` view of a database, printed the way ovs-vsctl prints it
//! (utilities/ovs-vsctl.c `cmd_show_tables`, lib/db-ctl-base.c `cmd_show_row`): rows nest
//! by reference, columns at their default value are left out, strings are quoted unless
//! they are plain identifiers (lib/ovsdb-data.c `string_needs_quotes`).
use crate::datum::{Atom, Datum, Uuid};
use crate::row::Row;
use crate::update::Database;
use std::fmt::Write;

/// Which references nest (a reference column shows the referenced row, named by its
/// name column) and which plain columns are printed, per table, in ovs-vsctl's order.
struct ShowTable {
    table: &'static str,
    name_column: Option<&'static str>,
    columns: &'static [(&'static str, Option<&'static str>)],
}

const SHOW: [ShowTable; 6] = [
    ShowTable {
        table: "Open_vSwitch",
        name_column: None,
        columns: &[("manager_options", Some("Manager")), ("bridges", Some("Bridge")), ("ovs_version", None)],
    },
    ShowTable {
        table: "Bridge",
        name_column: Some("name"),
        columns: &[
            ("controller", Some("Controller")),
            ("fail_mode", None),
            ("datapath_type", None),
            ("ports", Some("Port")),
        ],
    },
    ShowTable {
        table: "Port",
        name_column: Some("name"),
        columns: &[("tag", None), ("trunks", None), ("interfaces", Some("Interface"))],
    },
    ShowTable {
        table: "Interface",
        name_column: Some("name"),
        columns: &[("type", None), ("options", None), ("error", None), ("bfd_status", None)],
    },
    ShowTable { table: "Controller", name_column: Some("target"), columns: &[("is_connected", None)] },
    ShowTable { table: "Manager", name_column: Some("target"), columns: &[("is_connected", None)] },
];

/// The columns [`show`] reads, per table (monitor at least these).
pub fn columns(table: &str) -> Vec<&'static str> {
    SHOW.iter()
        .filter(|t| t.table == table)
        .flat_map(|t| t.name_column.into_iter().chain(t.columns.iter().map(|(c, _)| *c)))
        .collect()
}

/// Prints the database like `ovs-vsctl show`.
pub fn show(db: &Database) -> String {
    let mut out = String::new();
    for (uuid, row) in db.rows("Open_vSwitch") {
        show_row(db, &SHOW[0], *uuid, row, 0, &mut out);
    }
    out
}

fn show_row(db: &Database, t: &ShowTable, uuid: Uuid, row: &Row, level: usize, out: &mut String) {
    let indent = " ".repeat(level * 4);
    match t.name_column {
        Some(c) => {
            let _ = writeln!(out, "{indent}{} {}", t.table, datum_text(row.get(c).unwrap_or(&Datum::empty())));
        }
        None => {
            let _ = writeln!(out, "{indent}{uuid}");
        }
    }
    let inner = " ".repeat((level + 1) * 4);
    for (column, refers) in t.columns {
        let value = row.get(column).cloned().unwrap_or_default();
        if let Some(target) = refers
            && let Some(rt) = SHOW.iter().find(|s| s.table == *target)
        {
            for u in value.atoms().filter_map(Atom::as_uuid) {
                if let Some(r) = db.row(target, &u) {
                    show_row(db, rt, u, r, level + 1, out);
                }
            }
            continue;
        }
        if !is_default(&value) {
            let _ = writeln!(out, "{inner}{column}: {}", datum_text(&value));
        }
    }
}

fn is_default(d: &Datum) -> bool {
    match d {
        Datum::Set(s) if s.is_empty() => true,
        Datum::Map(m) => m.is_empty(),
        Datum::Set(_) => {
            matches!(d.single(), Some(Atom::String(s)) if s.is_empty())
                || matches!(d.single(), Some(Atom::Boolean(false)))
                || matches!(d.single(), Some(Atom::Integer(0)))
        }
    }
}

fn atom_text(a: &Atom) -> String {
    match a {
        Atom::String(s) if needs_quotes(s) => serde_json::to_string(s).expect("strings serialize"),
        Atom::String(s) => s.clone(),
        Atom::Integer(i) => i.to_string(),
        Atom::Real(r) => r.to_string(),
        Atom::Boolean(b) => b.to_string(),
        Atom::Uuid(u) => u.to_string(),
        Atom::NamedUuid(n) => n.clone(),
    }
}

fn datum_text(d: &Datum) -> String {
    match d {
        Datum::Map(m) => {
            let pairs: Vec<String> = m.iter().map(|(k, v)| format!("{}={}", atom_text(k), atom_text(v))).collect();
            format!("{{{}}}", pairs.join(", "))
        }
        Datum::Set(_) if d.len() == 1 => atom_text(d.single().expect("one element")),
        Datum::Set(s) => format!("[{}]", s.iter().map(atom_text).collect::<Vec<_>>().join(", ")),
    }
}

fn needs_quotes(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return true,
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        return true;
    }
    s == "true" || s == "false" || Uuid::parse(s).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_quoted_as_ovs_vsctl_quotes_them() {
        assert_eq!(atom_text(&Atom::string("br-int")), "br-int");
        assert_eq!(atom_text(&Atom::string("flow")), "flow");
        for quoted in ["4790", "10.0.0.1", "true", "tcp:127.0.0.1:6653", "", "a b"] {
            assert_eq!(atom_text(&Atom::string(quoted)), format!("{quoted:?}"));
        }
        assert_eq!(
            datum_text(&Datum::map([("key", "flow"), ("remote_ip", "10.0.0.2")])),
            r#"{key=flow, remote_ip="10.0.0.2"}"#
        );
    }
}
