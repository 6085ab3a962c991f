//! Properties of the pure layers: wire input never panics them, and encodings round-trip.
use ovsdb::framing::Framer;
use ovsdb::update::{Format, MonitorRequest, Replica};
use ovsdb::{Atom, Datum, Schema, Uuid};
use proptest::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-z0-9{}\\[\\]\" -]{0,8}".prop_map(Value::String),
        Just(Value::String("uuid".into())),
        Just(Value::String("set".into())),
        Just(Value::String("map".into())),
        Just(Value::String("11111111-1111-1111-1111-111111111111".into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("Interface".to_string()),
                    Just("11111111-1111-1111-1111-111111111111".to_string()),
                    Just("insert".to_string()),
                    Just("modify".to_string()),
                    Just("delete".to_string()),
                    Just("name".to_string()),
                    Just("ofport".to_string()),
                    "[a-z]{1,4}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn atom() -> impl Strategy<Value = Atom> {
    prop_oneof![
        any::<i64>().prop_map(Atom::Integer),
        any::<bool>().prop_map(Atom::Boolean),
        ".{0,6}".prop_map(Atom::String),
        any::<u128>().prop_map(|u| Atom::Uuid(Uuid(u))),
        (-1e9f64..1e9).prop_map(|r| Atom::Real(r + 0.5)),
    ]
}

fn datum() -> impl Strategy<Value = Datum> {
    prop_oneof![
        prop::collection::btree_set(atom(), 0..5).prop_map(Datum::Set),
        prop::collection::btree_map(atom(), atom(), 0..5).prop_map(Datum::Map),
    ]
}

fn schema() -> Schema {
    let text = std::fs::read_to_string("/usr/share/openvswitch/vswitch.ovsschema").unwrap();
    Schema::from_json(&serde_json::from_str(&text).unwrap()).unwrap()
}

proptest! {
    #[test]
    fn framer_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256), cut in 1usize..17) {
        let mut f = Framer::new();
        for chunk in bytes.chunks(cut) {
            f.push(chunk);
            while let Ok(Some(_)) = f.next_message() {}
        }
    }

    #[test]
    fn framer_recovers_every_message_of_a_stream_however_cut(values in prop::collection::vec(json_value(), 1..5), cut in 1usize..23) {
        let objects: Vec<Value> = values.into_iter().map(|v| serde_json::json!({"id": 1, "result": v})).collect();
        let stream: Vec<u8> = objects.iter().flat_map(|v| v.to_string().into_bytes()).collect();
        let mut f = Framer::new();
        let mut got = vec![];
        for chunk in stream.chunks(cut) {
            f.push(chunk);
            while let Some(v) = f.next_message().unwrap() {
                got.push(v);
            }
        }
        prop_assert_eq!(got, objects);
    }

    #[test]
    fn datums_round_trip_through_json(d in datum()) {
        // A map decoded without a schema is still a map; a set of one is written bare and
        // read back as a set of one.
        prop_assert_eq!(Datum::from_json(&d.to_json()), Some(d));
    }

    #[test]
    fn replica_never_panics_on_arbitrary_updates(v in json_value(), v1 in any::<bool>()) {
        let requests = BTreeMap::from([("Interface".to_string(), MonitorRequest::all())]);
        let mut r = Replica::default();
        let _ = r.apply(if v1 { Format::V1 } else { Format::V2 }, &v, &schema(), &requests);
    }
}
