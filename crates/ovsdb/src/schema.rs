//! The parts of a database schema (RFC 7047 §3.2) the client needs: each column's type, to
//! apply `update2` diffs (only columns that can hold more than one element are diffed
//! element-wise) and to fill in the defaults that `update2` rows leave out.
use crate::datum::{Atom, Datum, Uuid};
use serde_json::Value;
use std::collections::BTreeMap;

/// A database schema: name, version and tables.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    /// The database name (`Open_vSwitch`).
    pub name: String,
    /// The schema version, as the server reports it.
    pub version: String,
    /// Tables by name.
    pub tables: BTreeMap<String, TableSchema>,
}

/// One table of a schema.
#[derive(Clone, Debug, Default)]
pub struct TableSchema {
    /// Columns by name (without the implicit `_uuid` and `_version`).
    pub columns: BTreeMap<String, ColumnType>,
    /// Whether rows live without being referenced (non-root rows are garbage-collected).
    pub is_root: bool,
}

/// A column's type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnType {
    /// The key (or only) atomic type: `integer`, `real`, `boolean`, `string` or `uuid`.
    pub key: String,
    /// The value atomic type, for maps.
    pub value: Option<String>,
    /// Minimum number of elements (0 or 1).
    pub min: u64,
    /// Maximum number of elements (`unlimited` is `u64::MAX`).
    pub max: u64,
}

impl ColumnType {
    /// Whether `update2` diffs of this column are element-wise (ovsdb-data.c
    /// `ovsdb_type_is_composite`: more than one element allowed).
    pub fn is_composite(&self) -> bool {
        self.max > 1
    }

    /// The column's default value: empty for optional, set and map columns; otherwise the
    /// zero of the key type.
    pub fn default_datum(&self) -> Datum {
        if self.value.is_some() {
            return Datum::Map(BTreeMap::new());
        }
        if self.min == 0 {
            return Datum::empty();
        }
        Datum::scalar(match self.key.as_str() {
            "integer" => Atom::Integer(0),
            "real" => Atom::Real(0.0),
            "boolean" => Atom::Boolean(false),
            "uuid" => Atom::Uuid(Uuid::ZERO),
            _ => Atom::String(String::new()),
        })
    }

    fn from_json(v: &Value) -> Option<ColumnType> {
        let base = |b: &Value| match b {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("type")?.as_str().map(str::to_string),
            _ => None,
        };
        match v {
            Value::String(s) => Some(ColumnType { key: s.clone(), value: None, min: 1, max: 1 }),
            Value::Object(o) => Some(ColumnType {
                key: base(o.get("key")?)?,
                value: match o.get("value") {
                    Some(v) => Some(base(v)?),
                    None => None,
                },
                min: o.get("min").map_or(Some(1), Value::as_u64)?,
                max: match o.get("max") {
                    None => 1,
                    Some(Value::String(s)) if s == "unlimited" => u64::MAX,
                    Some(n) => n.as_u64()?,
                },
            }),
            _ => None,
        }
    }
}

impl Schema {
    /// Parses a `get_schema` result; the error says what was malformed.
    pub fn from_json(v: &Value) -> Result<Schema, String> {
        let name = v.get("name").and_then(Value::as_str).ok_or("schema has no name")?;
        let tables = v.get("tables").and_then(Value::as_object).ok_or("schema has no tables")?;
        let mut schema = Schema {
            name: name.to_string(),
            version: v.get("version").and_then(Value::as_str).unwrap_or_default().to_string(),
            tables: BTreeMap::new(),
        };
        for (tname, t) in tables {
            let cols =
                t.get("columns").and_then(Value::as_object).ok_or_else(|| format!("table {tname} has no columns"))?;
            let mut table = TableSchema {
                columns: BTreeMap::new(),
                is_root: t.get("isRoot").and_then(Value::as_bool).unwrap_or(false),
            };
            for (cname, c) in cols {
                let ty = c
                    .get("type")
                    .and_then(ColumnType::from_json)
                    .ok_or_else(|| format!("column {tname}.{cname} has a malformed type"))?;
                table.columns.insert(cname.clone(), ty);
            }
            schema.tables.insert(tname.clone(), table);
        }
        Ok(schema)
    }

    /// The type of `table.column`, if the schema has it.
    pub fn column(&self, table: &str, column: &str) -> Option<&ColumnType> {
        self.tables.get(table)?.columns.get(column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_vswitch_schema_parses_with_column_shapes() {
        let text = std::fs::read_to_string("/usr/share/openvswitch/vswitch.ovsschema").unwrap();
        let s = Schema::from_json(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(s.name, "Open_vSwitch");
        let ofport = s.column("Interface", "ofport").unwrap();
        assert!(!ofport.is_composite());
        assert_eq!(ofport.default_datum(), Datum::empty());
        let ports = s.column("Bridge", "ports").unwrap();
        assert!(ports.is_composite());
        assert_eq!(s.column("Interface", "options").unwrap().default_datum(), Datum::Map(BTreeMap::new()));
        assert_eq!(s.column("Port", "name").unwrap().default_datum(), Datum::scalar(""));
        assert!(!s.tables["Bridge"].is_root && s.tables["Open_vSwitch"].is_root);
    }

    #[test]
    fn malformed_column_type_is_named() {
        let v = serde_json::json!({"name": "d", "tables": {"T": {"columns": {"c": {"type": 5}}}}});
        assert_eq!(Schema::from_json(&v).unwrap_err(), "column T.c has a malformed type");
    }
}
