//! Transaction operations (RFC 7047 §5.2) and their results.
//!
//! Every operation of the RFC is a variant of [`Operation`]; [`Operation::to_json`] writes
//! it, [`parse_results`] reads the `transact` reply and turns the first error into a
//! [`TransactionError`] naming the operation.
use crate::datum::{Datum, Uuid};
use crate::error::TransactionError;
use crate::row::Row;
use serde_json::{Value, json};

/// A condition `[column, function, value]` of a `where` clause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    /// The column (`_uuid` included).
    pub column: String,
    /// The comparison.
    pub function: Function,
    /// The value compared with.
    pub value: Datum,
}

impl Condition {
    /// `column == value`.
    pub fn eq(column: &str, value: Datum) -> Condition {
        Condition { column: column.into(), function: Function::Eq, value }
    }

    /// `_uuid == uuid`.
    pub fn uuid(uuid: Uuid) -> Condition {
        Condition::eq("_uuid", Datum::scalar(uuid))
    }

    fn to_json(&self) -> Value {
        json!([self.column, self.function.as_str(), self.value.to_json()])
    }
}

macro_rules! wire_names {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name { $($(#[$vm])* $variant),* }
        impl $name {
            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }
    };
}

wire_names!(
    /// A `where` comparison function.
    Function {
        /// `<`
        Lt = "<",
        /// `<=`
        Le = "<=",
        /// `==`
        Eq = "==",
        /// `!=`
        Ne = "!=",
        /// `>=`
        Ge = ">=",
        /// `>`
        Gt = ">",
        /// set/map inclusion
        Includes = "includes",
        /// set/map exclusion
        Excludes = "excludes",
    }
);

wire_names!(
    /// A `mutate` mutator.
    Mutator {
        /// `+=`
        Add = "+=",
        /// `-=`
        Sub = "-=",
        /// `*=`
        Mul = "*=",
        /// `/=`
        Div = "/=",
        /// `%=`
        Mod = "%=",
        /// add elements to a set or pairs (with new keys) to a map
        Insert = "insert",
        /// remove elements from a set, or pairs / keys from a map
        Delete = "delete",
    }
);

/// A mutation `[column, mutator, value]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mutation {
    /// The column.
    pub column: String,
    /// The mutator.
    pub mutator: Mutator,
    /// The operand.
    pub value: Datum,
}

impl Mutation {
    /// `column insert value`.
    pub fn insert(column: &str, value: Datum) -> Mutation {
        Mutation { column: column.into(), mutator: Mutator::Insert, value }
    }

    /// `column delete value`.
    pub fn delete(column: &str, value: Datum) -> Mutation {
        Mutation { column: column.into(), mutator: Mutator::Delete, value }
    }
}

/// One operation of a `transact` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Inserts a row; `uuid_name` lets later operations refer to it as `named-uuid`.
    Insert {
        /// The table.
        table: String,
        /// The new row's columns.
        row: Row,
        /// The name later operations use for the new row.
        uuid_name: Option<String>,
    },
    /// Selects rows.
    Select {
        /// The table.
        table: String,
        /// Conditions, all of which must hold.
        conditions: Vec<Condition>,
        /// Columns to return (all when `None`).
        columns: Option<Vec<String>>,
    },
    /// Sets columns of matching rows.
    Update {
        /// The table.
        table: String,
        /// Conditions.
        conditions: Vec<Condition>,
        /// The columns to set.
        row: Row,
    },
    /// Mutates columns of matching rows.
    Mutate {
        /// The table.
        table: String,
        /// Conditions.
        conditions: Vec<Condition>,
        /// The mutations.
        mutations: Vec<Mutation>,
    },
    /// Deletes matching rows.
    Delete {
        /// The table.
        table: String,
        /// Conditions.
        conditions: Vec<Condition>,
    },
    /// Waits until the matching rows' `columns` equal (or differ from) `rows`.
    Wait {
        /// The table.
        table: String,
        /// Conditions.
        conditions: Vec<Condition>,
        /// Columns compared.
        columns: Vec<String>,
        /// `true` for `"until": "=="`, `false` for `"!="`.
        until_equal: bool,
        /// The expected rows.
        rows: Vec<Row>,
        /// Milliseconds to wait; `Some(0)` fails at once when the condition does not hold.
        timeout_ms: Option<u64>,
    },
    /// Requests a durable commit.
    Commit {
        /// Whether the commit must reach disk before the reply.
        durable: bool,
    },
    /// Aborts the transaction (always fails with `aborted`).
    Abort,
    /// A comment for the database log.
    Comment(String),
    /// Fails unless this session owns the lock.
    Assert {
        /// The lock name.
        lock: String,
    },
}

fn conditions_json(c: &[Condition]) -> Value {
    Value::Array(c.iter().map(Condition::to_json).collect())
}

impl Operation {
    /// The `op` name.
    pub fn op(&self) -> &'static str {
        match self {
            Operation::Insert { .. } => "insert",
            Operation::Select { .. } => "select",
            Operation::Update { .. } => "update",
            Operation::Mutate { .. } => "mutate",
            Operation::Delete { .. } => "delete",
            Operation::Wait { .. } => "wait",
            Operation::Commit { .. } => "commit",
            Operation::Abort => "abort",
            Operation::Comment(_) => "comment",
            Operation::Assert { .. } => "assert",
        }
    }

    /// Whether the operation can change the database.
    pub fn writes(&self) -> bool {
        matches!(
            self,
            Operation::Insert { .. } | Operation::Update { .. } | Operation::Mutate { .. } | Operation::Delete { .. }
        )
    }

    /// The wire form.
    pub fn to_json(&self) -> Value {
        let op = self.op();
        match self {
            Operation::Insert { table, row, uuid_name } => {
                let mut v = json!({"op": op, "table": table, "row": row.to_json()});
                if let Some(n) = uuid_name {
                    v["uuid-name"] = json!(n);
                }
                v
            }
            Operation::Select { table, conditions, columns } => {
                let mut v = json!({"op": op, "table": table, "where": conditions_json(conditions)});
                if let Some(c) = columns {
                    v["columns"] = json!(c);
                }
                v
            }
            Operation::Update { table, conditions, row } => {
                json!({"op": op, "table": table, "where": conditions_json(conditions), "row": row.to_json()})
            }
            Operation::Mutate { table, conditions, mutations } => json!({
                "op": op, "table": table, "where": conditions_json(conditions),
                "mutations": mutations.iter()
                    .map(|m| json!([m.column, m.mutator.as_str(), m.value.to_json()]))
                    .collect::<Vec<_>>(),
            }),
            Operation::Delete { table, conditions } => {
                json!({"op": op, "table": table, "where": conditions_json(conditions)})
            }
            Operation::Wait { table, conditions, columns, until_equal, rows, timeout_ms } => {
                let mut v = json!({
                    "op": op, "table": table, "where": conditions_json(conditions), "columns": columns,
                    "until": if *until_equal { "==" } else { "!=" },
                    "rows": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
                });
                if let Some(t) = timeout_ms {
                    v["timeout"] = json!(t);
                }
                v
            }
            Operation::Commit { durable } => json!({"op": op, "durable": durable}),
            Operation::Abort => json!({"op": op}),
            Operation::Comment(c) => json!({"op": op, "comment": c}),
            Operation::Assert { lock } => json!({"op": op, "lock": lock}),
        }
    }
}

/// The result of one successful operation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperationResult {
    /// Rows affected (update, mutate, delete).
    pub count: Option<u64>,
    /// The new row's UUID (insert).
    pub uuid: Option<Uuid>,
    /// Selected rows (select).
    pub rows: Option<Vec<Row>>,
}

/// Reads a `transact` result array. Per RFC 7047 §4.1.3 the array has one element per
/// operation, with `null` for operations not executed after a failure, plus an extra
/// element when the commit itself failed; the first `{"error": ...}` element fails the
/// whole transaction.
pub fn parse_results(ops: &[Operation], result: &Value) -> Result<Vec<OperationResult>, ParseOutcome> {
    let items = result.as_array().ok_or_else(|| ParseOutcome::Malformed("transact result is not an array".into()))?;
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        if let Some(err) = item.get("error") {
            return Err(ParseOutcome::Failed(TransactionError {
                index,
                op: ops.get(index).map_or("commit", Operation::op).to_string(),
                error: err.as_str().unwrap_or("unknown error").to_string(),
                details: item.get("details").and_then(Value::as_str).map(str::to_string),
            }));
        }
        let mut r = OperationResult { count: item.get("count").and_then(Value::as_u64), ..Default::default() };
        if let Some(u) = item.get("uuid") {
            let uuid = crate::datum::Atom::from_json(u).and_then(|a| a.as_uuid());
            r.uuid = Some(uuid.ok_or_else(|| ParseOutcome::Malformed(format!("bad uuid in result {index}")))?);
        }
        if let Some(rows) = item.get("rows").and_then(Value::as_array) {
            let rows: Result<Vec<Row>, String> = rows.iter().map(Row::from_json).collect();
            r.rows = Some(rows.map_err(ParseOutcome::Malformed)?);
        }
        out.push(r);
    }
    if out.len() < ops.len() {
        return Err(ParseOutcome::Malformed(format!("{} results for {} operations", out.len(), ops.len())));
    }
    Ok(out)
}

/// Why [`parse_results`] did not return results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseOutcome {
    /// The transaction failed.
    Failed(TransactionError),
    /// The reply did not have the RFC's shape.
    Malformed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_and_mutate_encode_as_the_rfc_shows() {
        let ops = [
            Operation::Insert {
                table: "Port".into(),
                row: Row::new().with("name", Datum::scalar("p1")),
                uuid_name: Some("port0".into()),
            },
            Operation::Mutate {
                table: "Bridge".into(),
                conditions: vec![Condition::eq("name", Datum::scalar("br-int"))],
                mutations: vec![Mutation::insert(
                    "ports",
                    Datum::scalar(crate::datum::Atom::NamedUuid("port0".into())),
                )],
            },
        ];
        assert_eq!(
            serde_json::to_string(&ops[0].to_json()).unwrap(),
            r#"{"op":"insert","row":{"name":"p1"},"table":"Port","uuid-name":"port0"}"#
        );
        assert_eq!(
            ops[1].to_json(),
            json!({"op": "mutate", "table": "Bridge", "where": [["name", "==", "br-int"]],
                   "mutations": [["ports", "insert", ["named-uuid", "port0"]]]})
        );
    }

    #[test]
    fn wait_encodes_until_and_timeout() {
        let w = Operation::Wait {
            table: "Port".into(),
            conditions: vec![Condition::eq("name", Datum::scalar("p1"))],
            columns: vec!["name".into()],
            until_equal: true,
            rows: vec![],
            timeout_ms: Some(0),
        };
        assert_eq!(w.to_json()["until"], json!("=="));
        assert_eq!(w.to_json()["timeout"], json!(0));
    }

    #[test]
    fn recorded_success_reply_yields_uuids_and_counts() {
        let ops = [
            Operation::Insert { table: "Port".into(), row: Row::new(), uuid_name: None },
            Operation::Mutate { table: "Bridge".into(), conditions: vec![], mutations: vec![] },
            Operation::Select { table: "Port".into(), conditions: vec![], columns: None },
        ];
        let reply: Value = serde_json::from_str(
            r#"[{"uuid":["uuid","3a1b5a0e-6f39-4e4a-8f41-0f7c6a4b9b01"]},{"count":1},{"rows":[{"name":"p1"}]}]"#,
        )
        .unwrap();
        let r = parse_results(&ops, &reply).unwrap();
        assert_eq!(r[0].uuid.unwrap().to_string(), "3a1b5a0e-6f39-4e4a-8f41-0f7c6a4b9b01");
        assert_eq!(r[1].count, Some(1));
        assert_eq!(r[2].rows.as_ref().unwrap()[0].str("name"), "p1");
    }

    #[test]
    fn recorded_failure_names_the_failing_operation() {
        let ops = [
            Operation::Insert { table: "Port".into(), row: Row::new(), uuid_name: None },
            Operation::Wait {
                table: "Port".into(),
                conditions: vec![],
                columns: vec![],
                until_equal: true,
                rows: vec![],
                timeout_ms: Some(0),
            },
        ];
        let reply: Value =
            serde_json::from_str(r#"[{"uuid":["uuid","3a1b5a0e-6f39-4e4a-8f41-0f7c6a4b9b01"]},{"error":"timed out","details":"\"wait\" timed out"}]"#)
                .unwrap();
        let ParseOutcome::Failed(e) = parse_results(&ops, &reply).unwrap_err() else { panic!() };
        assert_eq!((e.index, e.op.as_str(), e.error.as_str()), (1, "wait", "timed out"));
        let commit: Value = serde_json::from_str(
            r#"[{"uuid":["uuid","3a1b5a0e-6f39-4e4a-8f41-0f7c6a4b9b01"]},{},{"error":"referential integrity violation","details":"row is referenced"}]"#,
        )
        .unwrap();
        let ParseOutcome::Failed(e) = parse_results(&ops, &commit).unwrap_err() else { panic!() };
        assert_eq!((e.index, e.op.as_str()), (2, "commit"));
        assert!(e.to_string().contains("row is referenced"));
    }
}
