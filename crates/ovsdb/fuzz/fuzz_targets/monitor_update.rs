//! A monitor session with an ovsdb-server that sends anything never makes the replica or
//! the typed rows panic, and what the replica holds stays self-consistent: each reported
//! change is what the replica now holds, and every row survives its own JSON form.
//!
//! Input: byte 0 picks the session (bits 0-1: monitor, monitor_cond, monitor_cond_since;
//! bit 2: no schema fetched; bit 3: weir's InterfaceMonitor columns instead of all); the
//! rest is the server's byte stream. Each message is handled as the connection task does
//! (client/driver.rs `install_view` for a reply, `on_update` for update/update2/update3);
//! a value that is no JSON-RPC message is applied as bare table updates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ovsdb::framing::Framer;
use ovsdb::jsonrpc::Message;
use ovsdb::tables::{Bridge, Controller, FlowTable, Interface, Manager, Mirror, OpenVswitch, Port, TableRow};
use ovsdb::update::{Format, Replica};
use ovsdb::{Datum, MonitorMethod, MonitorRequest, Row, Schema, Uuid};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::LazyLock;

static VSWITCH: LazyLock<Schema> = LazyLock::new(|| {
    let text = include_str!("/usr/share/openvswitch/vswitch.ovsschema");
    Schema::from_json(&serde_json::from_str(text).expect("schema is JSON")).expect("schema parses")
});
static NO_SCHEMA: LazyLock<Schema> = LazyLock::new(Schema::default);

struct Session {
    method: MonitorMethod,
    schema: &'static Schema,
    requests: BTreeMap<String, MonitorRequest>,
    replica: Replica,
}

impl Session {
    fn new(selector: u8) -> Session {
        let method = match selector & 3 {
            0 => MonitorMethod::Monitor,
            1 => MonitorMethod::Cond,
            _ => MonitorMethod::CondSince,
        };
        let schema = if selector & 4 == 0 { &*VSWITCH } else { &*NO_SCHEMA };
        let requests = if selector & 8 == 0 {
            BTreeMap::new()
        } else {
            BTreeMap::from([("Interface".to_string(), MonitorRequest::columns(&ovsdb::interfaces::COLUMNS))])
        };
        Session { method, schema, requests, replica: Replica::default() }
    }

    /// The reply to the monitor request: the new whole view.
    fn reply(&mut self, v: &Value) {
        let (found, last, updates) = match self.method {
            MonitorMethod::Monitor | MonitorMethod::Cond => (false, None, v),
            MonitorMethod::CondSince => {
                let Some(a) = v.as_array().filter(|a| a.len() == 3) else { return };
                (a[0].as_bool().unwrap_or(false), a[1].as_str().and_then(Uuid::parse), &a[2])
            }
        };
        let format = if self.method == MonitorMethod::Monitor { Format::V1 } else { Format::V2 };
        let mut replica = if found { self.replica.clone() } else { Replica::default() };
        if self.apply(&mut replica, format, updates) {
            replica.last_txn_id = last.filter(|u| *u != Uuid::ZERO);
            self.replica = replica;
        }
    }

    fn notification(&mut self, method: &str, params: &Value) {
        let Some(p) = params.as_array() else { return };
        if p.first().and_then(Value::as_str).is_none() {
            return;
        }
        let (format, updates, last) = match method {
            "update" => (Format::V1, p.get(1), None),
            "update2" => (Format::V2, p.get(1), None),
            "update3" => (Format::V2, p.get(2), p.get(1).and_then(Value::as_str).and_then(Uuid::parse)),
            _ => return,
        };
        let Some(updates) = updates else { return };
        let mut replica = std::mem::take(&mut self.replica);
        if self.apply(&mut replica, format, updates) {
            if last.is_some() {
                replica.last_txn_id = last;
            }
        } else {
            // Kept as partly updated: monitor readers can see it until the reconnect.
            replica.last_txn_id = None;
        }
        self.replica = replica;
    }

    fn apply(&self, replica: &mut Replica, format: Format, updates: &Value) -> bool {
        let Ok(changes) = replica.apply(format, updates, self.schema, &self.requests) else { return false };
        for c in &changes {
            assert_eq!(replica.db.row(&c.table, &c.uuid), c.new.as_ref(), "change of {} {}", c.table, c.uuid);
        }
        true
    }

    fn check(&self) {
        let db = &self.replica.db;
        for rows in db.tables.values() {
            for row in rows.values() {
                assert_eq!(Row::from_json(&row.to_json()).as_ref(), Ok(row), "row {}", row.to_json());
                for d in row.0.values() {
                    assert_eq!(Datum::from_json(&d.to_json()).as_ref(), Some(d));
                }
            }
        }
        let _ = OpenVswitch::all(db);
        let _ = Bridge::all(db);
        let _ = Port::all(db);
        let _ = Interface::all(db);
        let _ = Mirror::all(db);
        let _ = FlowTable::all(db);
        let _ = Controller::all(db);
        let _ = Manager::all(db);
        let _ = Interface::named(db, "br-int");
        let _ = ovsdb::show::show(db);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, stream)) = data.split_first() else { return };
    let mut session = Session::new(selector);
    let mut framer = Framer::new();
    framer.push(stream);
    while let Ok(Some(v)) = framer.next_message() {
        match Message::from_json(v.clone()) {
            Ok(Message::Response { result, .. }) => session.reply(&result),
            Ok(Message::Notification { method, params }) => session.notification(&method, &params),
            Ok(Message::Request { .. }) => continue,
            Err(_) => {
                let format = if session.method == MonitorMethod::Monitor { Format::V1 } else { Format::V2 };
                let mut replica = std::mem::take(&mut session.replica);
                session.apply(&mut replica, format, &v);
                session.replica = replica;
            }
        }
        session.check();
    }
});
