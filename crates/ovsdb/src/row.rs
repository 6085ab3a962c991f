//! Untyped rows: column name → [`Datum`], with accessors that read the OVSDB encodings
//! (optional values as 0/1-element sets, references as UUID atoms) so typed rows never
//! look at JSON.
use crate::datum::{Atom, Datum, Uuid};
use serde_json::Value;
use std::collections::BTreeMap;

/// One row (or the subset of its columns that was sent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Row(pub BTreeMap<String, Datum>);

impl Row {
    /// An empty row.
    pub fn new() -> Row {
        Row::default()
    }

    /// Sets a column (builder style).
    pub fn with(mut self, column: &str, value: Datum) -> Row {
        self.0.insert(column.to_string(), value);
        self
    }

    /// Sets a column.
    pub fn set(&mut self, column: &str, value: Datum) {
        self.0.insert(column.to_string(), value);
    }

    /// A column's value, if present.
    pub fn get(&self, column: &str) -> Option<&Datum> {
        self.0.get(column)
    }

    /// A string column (`""` when absent).
    pub fn str(&self, column: &str) -> &str {
        self.opt_str(column).unwrap_or("")
    }

    /// An optional string column.
    pub fn opt_str(&self, column: &str) -> Option<&str> {
        self.get(column)?.single()?.as_str()
    }

    /// An optional integer column.
    pub fn opt_integer(&self, column: &str) -> Option<i64> {
        self.get(column)?.single()?.as_integer()
    }

    /// A boolean column (`false` when absent).
    pub fn boolean(&self, column: &str) -> bool {
        matches!(self.get(column).and_then(Datum::single), Some(Atom::Boolean(true)))
    }

    /// A set of strings.
    pub fn strings(&self, column: &str) -> Vec<String> {
        self.get(column).into_iter().flat_map(Datum::atoms).filter_map(|a| a.as_str().map(str::to_string)).collect()
    }

    /// A set of integers.
    pub fn integers(&self, column: &str) -> Vec<i64> {
        self.get(column).into_iter().flat_map(Datum::atoms).filter_map(Atom::as_integer).collect()
    }

    /// A set of row references.
    pub fn uuids(&self, column: &str) -> Vec<Uuid> {
        self.get(column).into_iter().flat_map(Datum::atoms).filter_map(Atom::as_uuid).collect()
    }

    /// An optional row reference.
    pub fn opt_uuid(&self, column: &str) -> Option<Uuid> {
        self.get(column)?.single()?.as_uuid()
    }

    /// A string → string map.
    pub fn string_map(&self, column: &str) -> BTreeMap<String, String> {
        self.get(column)
            .into_iter()
            .flat_map(Datum::pairs)
            .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
            .collect()
    }

    /// An integer → row reference map.
    pub fn integer_uuid_map(&self, column: &str) -> BTreeMap<i64, Uuid> {
        self.get(column)
            .into_iter()
            .flat_map(Datum::pairs)
            .filter_map(|(k, v)| Some((k.as_integer()?, v.as_uuid()?)))
            .collect()
    }

    /// The JSON object form (`<row>`).
    pub fn to_json(&self) -> Value {
        Value::Object(self.0.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
    }

    /// Decodes a `<row>`; the error names the malformed column.
    pub fn from_json(v: &Value) -> Result<Row, String> {
        let o = v.as_object().ok_or("row is not a JSON object")?;
        let mut row = Row::new();
        for (k, v) in o {
            let d = Datum::from_json(v).ok_or_else(|| format!("column {k} holds no OVSDB value: {v}"))?;
            row.0.insert(k.clone(), d);
        }
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_interface_row_reads_through_accessors() {
        let v: Value = serde_json::from_str(
            r#"{"name":"p1","ofport":3,"type":"","error":["set",[]],
                "external_ids":["map",[["k8s.pod","default/a"]]],
                "mac_in_use":"6a:2c:11:00:00:01","ofport_request":["set",[]]}"#,
        )
        .unwrap();
        let r = Row::from_json(&v).unwrap();
        assert_eq!(r.str("name"), "p1");
        assert_eq!(r.opt_integer("ofport"), Some(3));
        assert_eq!(r.opt_str("error"), None);
        assert_eq!(r.opt_integer("ofport_request"), None);
        assert_eq!(r.string_map("external_ids")["k8s.pod"], "default/a");
        assert_eq!(Row::from_json(&r.to_json()).unwrap(), r);
    }

    #[test]
    fn malformed_column_is_named() {
        let v = serde_json::json!({"name": {"x": 1}});
        assert!(Row::from_json(&v).unwrap_err().starts_with("column name"));
    }
}
