//! Monitor requests and the local replica they keep (RFC 7047 §4.1.5–4.1.6 and
//! ovsdb-server(7) §4.1.12–4.1.16). Pure: the client feeds it decoded JSON.
//!
//! [`Replica::apply`] reads `<table-updates>` (`update`, full new rows) and
//! `<table-updates2>` (`update2`/`update3`: `initial`/`insert` rows without default-valued
//! columns, `modify` column diffs, `delete`) into the same [`Database`], and reports each
//! row change with its whole old and new row, so consumers never see diffs.
use crate::datum::Uuid;
use crate::operation::Condition;
use crate::row::Row;
use crate::schema::Schema;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The monitor flavour, which fixes the notification format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MonitorMethod {
    /// RFC 7047 `monitor`: `update` notifications with whole rows.
    Monitor,
    /// `monitor_cond`: `update2` notifications with diffs, optional `where` conditions.
    Cond,
    /// `monitor_cond_since`: `update3`, and after a reconnect only what changed since the
    /// last transaction seen (when the server still has it).
    #[default]
    CondSince,
}

impl MonitorMethod {
    /// The request method name.
    pub fn method(self) -> &'static str {
        match self {
            MonitorMethod::Monitor => "monitor",
            MonitorMethod::Cond => "monitor_cond",
            MonitorMethod::CondSince => "monitor_cond_since",
        }
    }
}

/// What to monitor in one table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MonitorRequest {
    /// Columns to report (all when `None`).
    pub columns: Option<Vec<String>>,
    /// Only rows matching all conditions (`monitor_cond*` only; ignored by `monitor`).
    pub conditions: Option<Vec<Condition>>,
}

impl MonitorRequest {
    /// Every column of every row.
    pub fn all() -> MonitorRequest {
        MonitorRequest::default()
    }

    /// Only these columns.
    pub fn columns(cols: &[&str]) -> MonitorRequest {
        MonitorRequest { columns: Some(cols.iter().map(|c| c.to_string()).collect()), conditions: None }
    }

    fn to_json(&self, method: MonitorMethod) -> Value {
        let mut v = json!({});
        if let Some(c) = &self.columns {
            v["columns"] = json!(c);
        }
        if method != MonitorMethod::Monitor
            && let Some(conds) = &self.conditions
        {
            v["where"] =
                Value::Array(conds.iter().map(|c| json!([c.column, c.function.as_str(), c.value.to_json()])).collect());
        }
        v
    }
}

/// The `params` of a monitor request.
pub fn monitor_params(
    method: MonitorMethod,
    db: &str,
    monitor_id: &Value,
    requests: &BTreeMap<String, MonitorRequest>,
    last_txn_id: Option<Uuid>,
) -> Value {
    let reqs: serde_json::Map<String, Value> = requests.iter().map(|(t, r)| (t.clone(), r.to_json(method))).collect();
    let mut p = json!([db, monitor_id, reqs]);
    if method == MonitorMethod::CondSince {
        p.as_array_mut().expect("array").push(json!(last_txn_id.unwrap_or(Uuid::ZERO).to_string()));
    }
    p
}

/// Rows by table and UUID.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Database {
    /// Tables by name; each maps row UUID to row.
    pub tables: BTreeMap<String, BTreeMap<Uuid, Row>>,
}

impl Database {
    /// The rows of a table.
    pub fn rows(&self, table: &str) -> impl Iterator<Item = (&Uuid, &Row)> {
        self.tables.get(table).into_iter().flatten()
    }

    /// One row.
    pub fn row(&self, table: &str, uuid: &Uuid) -> Option<&Row> {
        self.tables.get(table)?.get(uuid)
    }

    /// The first row of `table` whose `column` is the string `value`.
    pub fn find(&self, table: &str, column: &str, value: &str) -> Option<(Uuid, &Row)> {
        self.rows(table).find(|(_, r)| r.str(column) == value).map(|(u, r)| (*u, r))
    }
}

/// One row's change: `old` is `None` for an insert, `new` is `None` for a delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowChange {
    /// The table.
    pub table: String,
    /// The row.
    pub uuid: Uuid,
    /// The row before (all monitored columns).
    pub old: Option<Row>,
    /// The row after (all monitored columns).
    pub new: Option<Row>,
}

/// A monitor's local copy of the monitored tables.
#[derive(Clone, Debug, Default)]
pub struct Replica {
    /// The current contents.
    pub db: Database,
    /// The last transaction seen (`update3` / `monitor_cond_since` only).
    pub last_txn_id: Option<Uuid>,
}

/// The notification format of an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `<table-updates>`.
    V1,
    /// `<table-updates2>`.
    V2,
}

impl Replica {
    /// Applies table updates and returns the row changes. `requests` says which columns are
    /// monitored (to fill in defaults that `update2` rows omit), `schema` gives the column
    /// types that decide how `modify` diffs apply.
    pub fn apply(
        &mut self,
        format: Format,
        updates: &Value,
        schema: &Schema,
        requests: &BTreeMap<String, MonitorRequest>,
    ) -> Result<Vec<RowChange>, String> {
        let tables = updates.as_object().ok_or("table updates are not an object")?;
        let mut changes = vec![];
        for (tname, rows) in tables {
            let rows = rows.as_object().ok_or_else(|| format!("updates of table {tname} are not an object"))?;
            let table = self.db.tables.entry(tname.clone()).or_default();
            for (uuid_text, update) in rows {
                let uuid = Uuid::parse(uuid_text).ok_or_else(|| format!("bad row UUID {uuid_text:?} in {tname}"))?;
                let old = table.get(&uuid).cloned();
                let new = match format {
                    Format::V1 => match update.get("new") {
                        Some(r) => Some(Row::from_json(r).map_err(|e| format!("{tname} row {uuid}: {e}"))?),
                        None => None,
                    },
                    Format::V2 => {
                        let obj = update.as_object().ok_or_else(|| format!("{tname} row {uuid}: not an object"))?;
                        let (kind, row) =
                            obj.iter().next().ok_or_else(|| format!("{tname} row {uuid}: empty update"))?;
                        match kind.as_str() {
                            "initial" | "insert" => {
                                let mut r = defaults(schema, tname, requests.get(tname));
                                let sent = Row::from_json(row).map_err(|e| format!("{tname} row {uuid}: {e}"))?;
                                r.0.extend(sent.0);
                                Some(r)
                            }
                            "modify" => {
                                let mut r = old.clone().unwrap_or_else(|| defaults(schema, tname, requests.get(tname)));
                                let diff = Row::from_json(row).map_err(|e| format!("{tname} row {uuid}: {e}"))?;
                                for (col, d) in diff.0 {
                                    match schema.column(tname, &col) {
                                        Some(ty) if ty.is_composite() => {
                                            r.0.entry(col).or_insert_with(|| ty.default_datum()).apply_diff(&d)
                                        }
                                        _ => {
                                            r.0.insert(col, d);
                                        }
                                    }
                                }
                                Some(r)
                            }
                            "delete" => None,
                            other => return Err(format!("{tname} row {uuid}: unknown update kind {other:?}")),
                        }
                    }
                };
                match &new {
                    Some(r) => table.insert(uuid, r.clone()),
                    None => table.remove(&uuid),
                };
                changes.push(RowChange { table: tname.clone(), uuid, old, new });
            }
        }
        Ok(changes)
    }
}

fn defaults(schema: &Schema, table: &str, request: Option<&MonitorRequest>) -> Row {
    let mut r = Row::new();
    let Some(t) = schema.tables.get(table) else { return r };
    for (name, ty) in &t.columns {
        let wanted = request.and_then(|q| q.columns.as_ref()).is_none_or(|cols| cols.iter().any(|c| c == name));
        if wanted {
            r.0.insert(name.clone(), ty.default_datum());
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datum::Datum;

    fn schema() -> Schema {
        let text = std::fs::read_to_string("/usr/share/openvswitch/vswitch.ovsschema").unwrap();
        Schema::from_json(&serde_json::from_str(&text).unwrap()).unwrap()
    }

    const U: &str = "3a1b5a0e-6f39-4e4a-8f41-0f7c6a4b9b01";

    fn reqs() -> BTreeMap<String, MonitorRequest> {
        BTreeMap::from([(
            "Interface".to_string(),
            MonitorRequest::columns(&["name", "ofport", "external_ids", "error"]),
        )])
    }

    #[test]
    fn monitor_cond_since_params_carry_the_last_txn_id() {
        let p = monitor_params(MonitorMethod::CondSince, "Open_vSwitch", &json!("m1"), &reqs(), None);
        assert_eq!(p[3], json!("00000000-0000-0000-0000-000000000000"));
        assert_eq!(p[2]["Interface"]["columns"][0], json!("name"));
        let p1 = monitor_params(MonitorMethod::Monitor, "Open_vSwitch", &json!("m1"), &reqs(), None);
        assert_eq!(p1.as_array().unwrap().len(), 3);
    }

    #[test]
    fn update2_insert_fills_defaults_and_modify_applies_diffs() {
        let s = schema();
        let mut rep = Replica::default();
        let ins: Value = serde_json::from_str(&format!(
            r#"{{"Interface":{{"{U}":{{"insert":{{"name":"p1","external_ids":["map",[["a","1"],["b","2"]]]}}}}}}}}"#
        ))
        .unwrap();
        let ch = rep.apply(Format::V2, &ins, &s, &reqs()).unwrap();
        assert_eq!(ch.len(), 1);
        let new = ch[0].new.as_ref().unwrap();
        assert_eq!(new.get("ofport"), Some(&Datum::empty()));
        assert_eq!(new.get("error"), Some(&Datum::empty()));
        assert!(new.get("mtu").is_none(), "unmonitored columns are not invented");

        let m: Value = serde_json::from_str(&format!(
            r#"{{"Interface":{{"{U}":{{"modify":{{"ofport":5,"external_ids":["map",[["a","1"],["b","3"]]]}}}}}}}}"#
        ))
        .unwrap();
        let ch = rep.apply(Format::V2, &m, &s, &reqs()).unwrap();
        let new = ch[0].new.as_ref().unwrap();
        assert_eq!(new.opt_integer("ofport"), Some(5));
        assert_eq!(new.string_map("external_ids"), BTreeMap::from([("b".into(), "3".into())]));
        assert_eq!(ch[0].old.as_ref().unwrap().opt_integer("ofport"), None);

        let d: Value = serde_json::from_str(&format!(r#"{{"Interface":{{"{U}":{{"delete":null}}}}}}"#)).unwrap();
        let ch = rep.apply(Format::V2, &d, &s, &reqs()).unwrap();
        assert!(ch[0].new.is_none() && ch[0].old.is_some());
        assert_eq!(rep.db.rows("Interface").count(), 0);
    }

    #[test]
    fn update_v1_replaces_rows_and_deletes_on_missing_new() {
        let s = schema();
        let mut rep = Replica::default();
        let u: Value = serde_json::from_str(&format!(
            r#"{{"Interface":{{"{U}":{{"new":{{"name":"p1","ofport":["set",[]]}}}}}}}}"#
        ))
        .unwrap();
        rep.apply(Format::V1, &u, &s, &reqs()).unwrap();
        assert_eq!(rep.db.find("Interface", "name", "p1").unwrap().0.to_string(), U);
        let d: Value =
            serde_json::from_str(&format!(r#"{{"Interface":{{"{U}":{{"old":{{"name":"p1"}}}}}}}}"#)).unwrap();
        rep.apply(Format::V1, &d, &s, &reqs()).unwrap();
        assert!(rep.db.find("Interface", "name", "p1").is_none());
    }

    #[test]
    fn malformed_updates_are_errors_not_panics() {
        let s = schema();
        let mut rep = Replica::default();
        for bad in [
            json!([]),
            json!({"Interface": 1}),
            json!({"Interface": {"not-a-uuid": {"insert": {}}}}),
            json!({"Interface": {U: {"frobnicate": {}}}}),
            json!({"Interface": {U: {}}}),
            json!({"Interface": {U: {"insert": {"name": {"x": 1}}}}}),
        ] {
            assert!(rep.apply(Format::V2, &bad, &s, &reqs()).is_err(), "{bad}");
        }
    }
}
