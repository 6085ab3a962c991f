//! Turning "what weir wants" plus the current view into the operations of one transaction.
//! Pure: reads a [`Database`], writes [`Operation`]s; an empty plan means nothing differs.
use super::spec::{BridgeSpec, MirrorSpec, NO_FLOOD_KEY, PortKind, PortSpec};
use crate::datum::{Atom, Datum, Uuid};
use crate::error::Error;
use crate::operation::{Condition, Mutation, Operation};
use crate::row::Row;
use crate::tables::{Bridge, Controller, FlowTable, Interface, Mirror, Port, TableRow};
use crate::update::Database;
use std::collections::{BTreeMap, BTreeSet};

/// What an ensure or delete did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Already as wanted: nothing was written.
    Unchanged,
    /// Created.
    Created,
    /// Existed and was changed.
    Updated,
    /// Deleted.
    Deleted,
    /// Was not there: nothing to delete.
    Absent,
}

/// The operations of one transaction under construction.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub(crate) ops: Vec<Operation>,
    names: usize,
}

impl Plan {
    fn name(&mut self, prefix: &str) -> String {
        self.names += 1;
        format!("{prefix}{}", self.names)
    }

    pub(crate) fn writes(&self) -> bool {
        self.ops.iter().any(Operation::writes)
    }

    fn insert(&mut self, table: &str, row: Row, prefix: &str) -> Atom {
        let name = self.name(prefix);
        self.ops.push(Operation::Insert { table: table.into(), row, uuid_name: Some(name.clone()) });
        Atom::NamedUuid(name)
    }

    fn mutate(&mut self, table: &str, uuid: Uuid, mutations: Vec<Mutation>) {
        if !mutations.is_empty() {
            self.ops.push(Operation::Mutate {
                table: table.into(),
                conditions: vec![Condition::uuid(uuid)],
                mutations,
            });
        }
    }

    fn update(&mut self, table: &str, uuid: Uuid, row: Row) {
        if !row.0.is_empty() {
            self.ops.push(Operation::Update { table: table.into(), conditions: vec![Condition::uuid(uuid)], row });
        }
    }
}

/// Mutations that make `column` hold every pair of `want` and keep other keys.
fn merge_map(column: &str, have: &BTreeMap<String, String>, want: &BTreeMap<String, String>) -> Vec<Mutation> {
    let stale: Vec<&str> =
        want.iter().filter(|(k, v)| have.get(*k).is_some_and(|h| h != *v)).map(|(k, _)| k.as_str()).collect();
    let missing: Vec<(&str, &str)> =
        want.iter().filter(|(k, v)| have.get(*k) != Some(*v)).map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut m = vec![];
    if !stale.is_empty() {
        m.push(Mutation::delete(column, Datum::set(stale)));
    }
    if !missing.is_empty() {
        m.push(Mutation::insert(column, Datum::map(missing)));
    }
    m
}

fn root_uuid(db: &Database) -> Result<Uuid, Error> {
    db.rows("Open_vSwitch")
        .next()
        .map(|(u, _)| *u)
        .ok_or_else(|| Error::Protocol("the Open_vSwitch table has no row (database not initialized)".into()))
}

/// Plans `spec`; `Unchanged` with no operations when the bridge is already as wanted.
pub(crate) fn bridge(db: &Database, spec: &BridgeSpec) -> Result<(Plan, Outcome), Error> {
    let mut plan = Plan::default();
    let obj = || format!("bridge {:?}", spec.name);
    let Some(br) = Bridge::named(db, &spec.name) else {
        if let Some(p) = Port::named(db, &spec.name) {
            let owner = owner_of(db, p.uuid).unwrap_or_default();
            return Err(Error::invalid(obj(), "name", format!("a port of that name exists on bridge {owner:?}")));
        }
        let root = root_uuid(db)?;
        let iface = plan.insert(
            "Interface",
            Row::new().with("name", Datum::scalar(spec.name.as_str())).with("type", Datum::scalar("internal")),
            "iface",
        );
        let port = plan.insert(
            "Port",
            Row::new().with("name", Datum::scalar(spec.name.as_str())).with("interfaces", Datum::scalar(iface)),
            "port",
        );
        let mut tables = BTreeMap::new();
        for (id, name) in &spec.table_names {
            let ft = plan.insert("Flow_Table", Row::new().with("name", Datum::scalar(name.as_str())), "table");
            tables.insert(Atom::Integer(*id as i64), ft);
        }
        let mut controllers = BTreeSet::new();
        for target in &spec.controllers {
            controllers.insert(plan.insert(
                "Controller",
                Row::new().with("target", Datum::scalar(target.as_str())),
                "ctl",
            ));
        }
        let row = Row::new()
            .with("name", Datum::scalar(spec.name.as_str()))
            .with("datapath_type", Datum::scalar(spec.datapath_type.as_str()))
            .with("protocols", Datum::set(spec.protocols.iter().map(String::as_str)))
            .with("fail_mode", Datum::scalar(spec.fail_mode.as_str()))
            .with("other_config", Datum::string_map(&spec.other_config))
            .with("external_ids", Datum::string_map(&spec.external_ids))
            .with("ports", Datum::scalar(port))
            .with("flow_tables", Datum::Map(tables))
            .with("controller", Datum::Set(controllers));
        let b = plan.insert("Bridge", row, "bridge");
        plan.mutate("Open_vSwitch", root, vec![Mutation::insert("bridges", Datum::scalar(b))]);
        return Ok((plan, Outcome::Created));
    };

    let mut row = Row::new();
    if br.datapath_type != spec.datapath_type.as_str()
        && !(br.datapath_type.is_empty() && spec.datapath_type == super::spec::DatapathType::System)
    {
        row.set("datapath_type", Datum::scalar(spec.datapath_type.as_str()));
    }
    let want_protocols: BTreeSet<&str> = spec.protocols.iter().map(String::as_str).collect();
    if br.protocols.iter().map(String::as_str).collect::<BTreeSet<_>>() != want_protocols {
        row.set("protocols", Datum::set(want_protocols));
    }
    if br.fail_mode.as_deref() != Some(spec.fail_mode.as_str()) {
        row.set("fail_mode", Datum::scalar(spec.fail_mode.as_str()));
    }
    plan.update("Bridge", br.uuid, row);

    let mut mutations = merge_map("other_config", &br.other_config, &spec.other_config);
    mutations.extend(merge_map("external_ids", &br.external_ids, &spec.external_ids));

    // Flow_Table rows: exactly the tables of the spec are named.
    let mut drop_ids = vec![];
    for (id, uuid) in &br.flow_tables {
        let wanted = u8::try_from(*id).ok().and_then(|i| spec.table_names.get(&i));
        match wanted {
            None => drop_ids.push(*id),
            Some(name) => {
                let have = db.row("Flow_Table", uuid).map(|r| FlowTable::from_row(*uuid, r));
                if have.as_ref().and_then(|t| t.name.as_deref()) != Some(name.as_str()) {
                    plan.update("Flow_Table", *uuid, Row::new().with("name", Datum::scalar(name.as_str())));
                }
            }
        }
    }
    if !drop_ids.is_empty() {
        mutations.push(Mutation::delete("flow_tables", Datum::set(drop_ids)));
    }
    let mut new_tables = BTreeMap::new();
    for (id, name) in &spec.table_names {
        if !br.flow_tables.contains_key(&(*id as i64)) {
            let ft = plan.insert("Flow_Table", Row::new().with("name", Datum::scalar(name.as_str())), "table");
            new_tables.insert(Atom::Integer(*id as i64), ft);
        }
    }
    if !new_tables.is_empty() {
        mutations.push(Mutation::insert("flow_tables", Datum::Map(new_tables)));
    }

    // Controllers: exactly the targets of the spec.
    let have: Vec<Controller> =
        br.controller.iter().filter_map(|u| db.row("Controller", u).map(|r| Controller::from_row(*u, r))).collect();
    let stale: Vec<Uuid> = have.iter().filter(|c| !spec.controllers.contains(&c.target)).map(|c| c.uuid).collect();
    if !stale.is_empty() {
        mutations.push(Mutation::delete("controller", Datum::set(stale)));
    }
    let mut added = BTreeSet::new();
    for target in &spec.controllers {
        if !have.iter().any(|c| &c.target == target) {
            added.insert(plan.insert("Controller", Row::new().with("target", Datum::scalar(target.as_str())), "ctl"));
        }
    }
    if !added.is_empty() {
        mutations.push(Mutation::insert("controller", Datum::Set(added)));
    }
    plan.mutate("Bridge", br.uuid, mutations);
    let outcome = if plan.writes() { Outcome::Updated } else { Outcome::Unchanged };
    Ok((plan, outcome))
}

/// The bridge that holds port `port`.
pub(crate) fn owner_of(db: &Database, port: Uuid) -> Option<String> {
    Bridge::all(db).into_iter().find(|b| b.ports.contains(&port)).map(|b| b.name)
}

fn iface_row(spec: &PortSpec) -> Row {
    Row::new()
        .with("type", Datum::scalar(spec.kind.iface_type()))
        .with("options", Datum::string_map(&spec.options()))
        .with("ofport_request", Datum::optional(spec.ofport_request.map(i64::from)))
        .with("mtu_request", Datum::optional(spec.mtu.map(i64::from)))
        .with("mac", Datum::optional(spec.mac.as_deref()))
}

/// Plans a batch of ports on one bridge as one transaction; returns each port's outcome.
pub(crate) fn ports(db: &Database, bridge: &str, specs: &[PortSpec]) -> Result<(Plan, Vec<Outcome>), Error> {
    let mut plan = Plan::default();
    let mut outcomes = vec![];
    let mut seen = BTreeSet::new();
    let mut requested: BTreeMap<u16, &str> = BTreeMap::new();
    let Some(br) = Bridge::named(db, bridge) else {
        let obj = specs.first().map_or_else(|| "ports".into(), PortSpec::object);
        return Err(Error::invalid(obj, "bridge", format!("no bridge named {bridge:?}")));
    };
    // OpenFlow port numbers already taken on this bridge, by interface name.
    let mut taken: BTreeMap<i64, String> = BTreeMap::new();
    for p in br.ports.iter().filter_map(|u| db.row("Port", u).map(|r| Port::from_row(*u, r))) {
        for i in p.interfaces.iter().filter_map(|u| db.row("Interface", u).map(|r| Interface::from_row(*u, r))) {
            for n in [i.ofport, i.ofport_request].into_iter().flatten().filter(|n| *n > 0) {
                taken.insert(n, i.name.clone());
            }
        }
    }
    // Name indexes, so a batch of n ports costs O(n log n), not n table scans.
    let port_by_name: BTreeMap<&str, Uuid> = db.rows("Port").map(|(u, r)| (r.str("name"), *u)).collect();
    let iface_names: BTreeSet<&str> = db.rows("Interface").map(|(_, r)| r.str("name")).collect();
    let mut new_ports = BTreeSet::new();
    for spec in specs {
        spec.validate()?;
        let obj = || spec.object();
        if !seen.insert(spec.name.as_str()) {
            return Err(Error::invalid(obj(), "name", "appears twice in one request"));
        }
        if spec.name == bridge {
            return Err(Error::invalid(obj(), "name", "is the bridge's own local port"));
        }
        if let Some(req) = spec.ofport_request {
            if let Some(other) = requested.insert(req, &spec.name) {
                return Err(Error::invalid(
                    obj(),
                    "ofport_request",
                    format!("{req} is also requested by port {other:?}"),
                ));
            }
            if let Some(holder) = taken.get(&(req as i64)).filter(|h| **h != spec.name) {
                return Err(Error::invalid(obj(), "ofport_request", format!("{req} is taken by interface {holder:?}")));
            }
        }
        let existing =
            port_by_name.get(spec.name.as_str()).and_then(|u| db.row("Port", u).map(|r| Port::from_row(*u, r)));
        let Some(port) = existing else {
            if iface_names.contains(spec.name.as_str()) {
                return Err(Error::invalid(obj(), "name", "an interface of that name belongs to another port"));
            }
            let mut irow = iface_row(spec).with("name", Datum::scalar(spec.name.as_str()));
            irow.set("external_ids", Datum::string_map(&spec.external_ids));
            let iface = plan.insert("Interface", irow, "iface");
            let mut prow =
                Row::new().with("name", Datum::scalar(spec.name.as_str())).with("interfaces", Datum::scalar(iface));
            if spec.no_flood {
                prow.set("external_ids", Datum::map([(NO_FLOOD_KEY, "true")]));
            }
            new_ports.insert(plan.insert("Port", prow, "port"));
            outcomes.push(Outcome::Created);
            continue;
        };
        if !br.ports.contains(&port.uuid) {
            let owner = owner_of(db, port.uuid).unwrap_or_else(|| "(none)".into());
            return Err(Error::invalid(obj(), "name", format!("a port of that name exists on bridge {owner:?}")));
        }
        let before = plan.ops.len();
        let ifaces: Vec<Interface> =
            port.interfaces.iter().filter_map(|u| db.row("Interface", u).map(|r| Interface::from_row(*u, r))).collect();
        let Some(iface) = ifaces.iter().find(|i| i.name == spec.name) else {
            return Err(Error::invalid(obj(), "name", "the existing port has no interface of its name (a bond?)"));
        };
        let want = iface_row(spec);
        let mut row = Row::new();
        let same_type = iface.iface_type == spec.kind.iface_type()
            || (spec.kind == PortKind::System && iface.iface_type == "system");
        if !same_type {
            row.set("type", want.get("type").cloned().unwrap_or_default());
        }
        if iface.options != spec.options() {
            row.set("options", want.get("options").cloned().unwrap_or_default());
        }
        if iface.ofport_request != spec.ofport_request.map(i64::from) {
            row.set("ofport_request", want.get("ofport_request").cloned().unwrap_or_default());
        }
        if iface.mtu_request != spec.mtu.map(i64::from) {
            row.set("mtu_request", want.get("mtu_request").cloned().unwrap_or_default());
        }
        if iface.mac != spec.mac {
            row.set("mac", want.get("mac").cloned().unwrap_or_default());
        }
        plan.update("Interface", iface.uuid, row);
        plan.mutate("Interface", iface.uuid, merge_map("external_ids", &iface.external_ids, &spec.external_ids));
        let flagged = port.external_ids.get(NO_FLOOD_KEY).is_some_and(|v| v == "true");
        if spec.no_flood && !flagged {
            plan.mutate(
                "Port",
                port.uuid,
                merge_map(
                    "external_ids",
                    &port.external_ids,
                    &BTreeMap::from([(NO_FLOOD_KEY.to_string(), "true".to_string())]),
                ),
            );
        } else if !spec.no_flood && port.external_ids.contains_key(NO_FLOOD_KEY) {
            plan.mutate("Port", port.uuid, vec![Mutation::delete("external_ids", Datum::set([NO_FLOOD_KEY]))]);
        }
        outcomes.push(if plan.ops.len() > before { Outcome::Updated } else { Outcome::Unchanged });
    }
    if !new_ports.is_empty() {
        plan.mutate("Bridge", br.uuid, vec![Mutation::insert("ports", Datum::Set(new_ports))]);
    }
    Ok((plan, outcomes))
}

/// Plans deleting ports from a bridge (absent ones are skipped).
pub(crate) fn delete_ports(db: &Database, bridge: &str, names: &[&str]) -> Result<(Plan, Vec<Outcome>), Error> {
    let mut plan = Plan::default();
    let mut gone = BTreeSet::new();
    let mut outcomes = vec![];
    let br = Bridge::named(db, bridge);
    for name in names {
        match (Port::named(db, name), &br) {
            (Some(p), Some(b)) if b.ports.contains(&p.uuid) => {
                gone.insert(Atom::Uuid(p.uuid));
                outcomes.push(Outcome::Deleted);
            }
            (Some(p), _) => {
                let owner = owner_of(db, p.uuid).unwrap_or_else(|| "(none)".into());
                return Err(Error::invalid(
                    format!("port {name:?}"),
                    "bridge",
                    format!("the port is on bridge {owner:?}, not {bridge:?}"),
                ));
            }
            (None, _) => outcomes.push(Outcome::Absent),
        }
    }
    if let Some(b) = br
        && !gone.is_empty()
    {
        plan.mutate("Bridge", b.uuid, vec![Mutation::delete("ports", Datum::Set(gone))]);
    }
    Ok((plan, outcomes))
}

/// Plans a bridge's deletion (its ports, mirrors, tables and controllers go with it: none
/// of them is a root row).
pub(crate) fn delete_bridge(db: &Database, name: &str) -> Result<(Plan, Outcome), Error> {
    let mut plan = Plan::default();
    let Some(br) = Bridge::named(db, name) else { return Ok((plan, Outcome::Absent)) };
    let root = root_uuid(db)?;
    plan.mutate("Open_vSwitch", root, vec![Mutation::delete("bridges", Datum::scalar(br.uuid))]);
    Ok((plan, Outcome::Deleted))
}

/// Plans a mirror on a bridge.
pub(crate) fn mirror(db: &Database, bridge: &str, spec: &MirrorSpec) -> Result<(Plan, Outcome), Error> {
    spec.validate()?;
    let obj = || spec.object();
    let mut plan = Plan::default();
    let Some(br) = Bridge::named(db, bridge) else {
        return Err(Error::invalid(obj(), "bridge", format!("no bridge named {bridge:?}")));
    };
    let resolve = |field: &str, name: &str| -> Result<Uuid, Error> {
        Port::named(db, name)
            .filter(|p| br.ports.contains(&p.uuid))
            .map(|p| p.uuid)
            .ok_or_else(|| Error::invalid(obj(), field, format!("no port {name:?} on bridge {bridge:?}")))
    };
    let src: BTreeSet<Uuid> =
        spec.select_src_port.iter().map(|n| resolve("select_src_port", n)).collect::<Result<_, _>>()?;
    let dst: BTreeSet<Uuid> =
        spec.select_dst_port.iter().map(|n| resolve("select_dst_port", n)).collect::<Result<_, _>>()?;
    let out = resolve("output_port", &spec.output_port)?;
    let want = Row::new()
        .with("select_all", Datum::scalar(spec.select_all))
        .with("select_src_port", Datum::set(src.iter().copied()))
        .with("select_dst_port", Datum::set(dst.iter().copied()))
        .with("output_port", Datum::scalar(out));
    let existing = br
        .mirrors
        .iter()
        .filter_map(|u| db.row("Mirror", u).map(|r| Mirror::from_row(*u, r)))
        .find(|m| m.name == spec.name);
    let Some(m) = existing else {
        let row = want
            .with("name", Datum::scalar(spec.name.as_str()))
            .with("external_ids", Datum::string_map(&spec.external_ids));
        let named = plan.insert("Mirror", row, "mirror");
        plan.mutate("Bridge", br.uuid, vec![Mutation::insert("mirrors", Datum::scalar(named))]);
        return Ok((plan, Outcome::Created));
    };
    let mut row = Row::new();
    if m.select_all != spec.select_all {
        row.set("select_all", Datum::scalar(spec.select_all));
    }
    if m.select_src_port.iter().copied().collect::<BTreeSet<_>>() != src {
        row.set("select_src_port", Datum::set(src.iter().copied()));
    }
    if m.select_dst_port.iter().copied().collect::<BTreeSet<_>>() != dst {
        row.set("select_dst_port", Datum::set(dst.iter().copied()));
    }
    if m.output_port != Some(out) {
        row.set("output_port", Datum::scalar(out));
    }
    plan.update("Mirror", m.uuid, row);
    plan.mutate("Mirror", m.uuid, merge_map("external_ids", &m.external_ids, &spec.external_ids));
    let outcome = if plan.writes() { Outcome::Updated } else { Outcome::Unchanged };
    Ok((plan, outcome))
}

/// Plans a mirror's deletion.
pub(crate) fn delete_mirror(db: &Database, bridge: &str, name: &str) -> (Plan, Outcome) {
    let mut plan = Plan::default();
    let Some(br) = Bridge::named(db, bridge) else { return (plan, Outcome::Absent) };
    let found = br.mirrors.iter().find(|u| db.row("Mirror", u).is_some_and(|r| r.str("name") == name));
    match found {
        Some(u) => {
            plan.mutate("Bridge", br.uuid, vec![Mutation::delete("mirrors", Datum::scalar(*u))]);
            (plan, Outcome::Deleted)
        }
        None => (plan, Outcome::Absent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_merge_touches_only_differing_keys() {
        let have =
            BTreeMap::from([("a".to_string(), "1".to_string()), ("b".into(), "2".into()), ("x".into(), "9".into())]);
        let want =
            BTreeMap::from([("a".to_string(), "1".to_string()), ("b".into(), "3".into()), ("c".into(), "4".into())]);
        let m = merge_map("external_ids", &have, &want);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].value, Datum::set(["b"]));
        assert_eq!(m[1].value, Datum::map([("b", "3"), ("c", "4")]));
        assert!(merge_map("external_ids", &have, &BTreeMap::new()).is_empty());
    }
}
