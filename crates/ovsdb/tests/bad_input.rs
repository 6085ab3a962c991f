//! Acceptance 5: bad input gets an error naming the object and the field, and the
//! database is left exactly as it was.
mod common;
use common::*;
use ovsdb::{BridgeSpec, Database, Error, MirrorSpec, Outcome, PortKind, PortSpec, parse_port};
use std::collections::BTreeMap;

fn o(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Rows as stored, without the columns ovs-vswitchd refreshes on its own.
fn stable(db: &Database) -> Database {
    let mut db = db.clone();
    for rows in db.tables.values_mut() {
        for row in rows.values_mut() {
            for volatile in ["link_state", "is_connected", "cur_cfg", "mac_in_use", "mtu"] {
                row.0.remove(volatile);
            }
        }
    }
    db
}

enum Case {
    Text(&'static str, &'static str, &'static [(&'static str, &'static str)]),
    Port(&'static str, PortSpec),
    Ports(&'static str, Vec<PortSpec>),
    Bridge(BridgeSpec),
    Mirror(MirrorSpec),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_input_names_its_field_and_leaves_the_database_unchanged() {
    let s = setup().await;
    s.mgr.ensure_bridge(&bridge_spec("br0")).await.unwrap();
    s.mgr.ensure_bridge(&bridge_spec("br1")).await.unwrap();
    let mut taken = PortSpec::new("int0", PortKind::Internal);
    taken.ofport_request = Some(20);
    s.mgr.ensure_port("br0", &taken).await.unwrap();
    s.mgr.ensure_port("br1", &PortSpec::new("other0", PortKind::Internal)).await.unwrap();
    s.mgr.wait_ofport("other0", std::time::Duration::from_secs(10)).await.unwrap();

    let internal = |name: &'static str| PortSpec::new(name, PortKind::Internal);
    let with = |mut p: PortSpec, f: &dyn Fn(&mut PortSpec)| {
        f(&mut p);
        p
    };
    let mirror = |out: &str, src: &[&str]| MirrorSpec {
        name: "m0".into(),
        select_all: false,
        select_src_port: src.iter().map(|s| s.to_string()).collect(),
        select_dst_port: vec![],
        output_port: out.into(),
        external_ids: BTreeMap::new(),
    };
    let vx = &[("remote_ip", "10.0.0.2")];
    let cases: Vec<(Case, &str, &str)> = vec![
        (Case::Text("p1", "frobnicator", &[]), "type", "p1"),
        (Case::Text("p1", "vxlan", &[("remote_ip", "1.2.3")]), "remote_ip", "p1"),
        (Case::Text("p1", "vxlan", &[("remote_ip", "239.1.1.1")]), "remote_ip", "p1"),
        (Case::Text("p1", "geneve", &[("remote_ip", "10.0.0.2"), ("local_ip", "nope")]), "local_ip", "p1"),
        (Case::Text("p1", "vxlan", &[("remote_ip", "10.0.0.2"), ("local_ip", "fd00::1")]), "local_ip", "p1"),
        (Case::Text("p1", "vxlan", &[("remote_ip", "10.0.0.2"), ("key", "16777216")]), "key", "p1"),
        (Case::Text("p1", "gre", &[("remote_ip", "10.0.0.2"), ("dst_port", "4789")]), "dst_port", "p1"),
        (Case::Text("p1", "gre", &[("remote_ip", "10.0.0.2"), ("tos", "3")]), "tos", "p1"),
        (Case::Text("p1", "gre", &[("remote_ip", "10.0.0.2"), ("ttl", "0")]), "ttl", "p1"),
        (Case::Text("p1", "erspan", &[("remote_ip", "10.0.0.2"), ("erspan_ver", "3")]), "erspan_ver", "p1"),
        (Case::Text("p1", "erspan", &[("remote_ip", "10.0.0.2"), ("erspan_idx", "0x100000")]), "erspan_idx", "p1"),
        (
            Case::Text("p1", "erspan", &[("remote_ip", "10.0.0.2"), ("erspan_ver", "2"), ("erspan_hwid", "0x40")]),
            "erspan_hwid",
            "p1",
        ),
        (
            Case::Text("p1", "erspan", &[("remote_ip", "10.0.0.2"), ("erspan_ver", "2"), ("erspan_dir", "up")]),
            "erspan_dir",
            "p1",
        ),
        (Case::Text("p1", "vxlan", &[("remote_ip", "10.0.0.2"), ("colour", "blue")]), "colour", "p1"),
        (Case::Text("p1", "patch", &[("peer", "p1")]), "peer", "p1"),
        (Case::Text("p1", "patch", &[("peer", "p1"), ("mtu", "1400")]), "mtu", "p1"),
        (Case::Text("p1", "internal", &[("ofport_request", "0")]), "ofport_request", "p1"),
        (Case::Text("p1", "internal", &[("mtu", "20")]), "mtu", "p1"),
        (Case::Port("br0", with(internal("p1"), &|p| p.ofport_request = Some(20))), "ofport_request", "p1"),
        (Case::Port("br0", internal("other0")), "name", "other0"),
        (Case::Port("br0", internal("br0")), "name", "br0"),
        (Case::Port("br0", internal("a-name-too-long-for-linux")), "name", "a-name-too-long-for-linux"),
        (Case::Port("br0", internal("a/b")), "name", "a/b"),
        (Case::Port("br9", internal("p1")), "bridge", "p1"),
        (
            Case::Port(
                "br0",
                with(internal("p1"), &|p| {
                    p.external_ids.insert(String::new(), "x".into());
                }),
            ),
            "external_ids",
            "p1",
        ),
        (Case::Port("br0", PortSpec::new("nosuchdev0", PortKind::System)), "name", "nosuchdev0"),
        (Case::Ports("br0", vec![internal("p1"), internal("p2"), internal("p1")]), "name", "p1"),
        (
            Case::Ports(
                "br0",
                vec![
                    internal("p1"),
                    parse_port("p2", "vxlan", &o(vx))
                        .map(|mut p| {
                            p.mtu = Some(1400);
                            p
                        })
                        .unwrap_or_else(|_| internal("p2")),
                ],
            ),
            "mtu",
            "p2",
        ),
        (
            Case::Bridge({
                let mut b = bridge_spec("br2");
                b.protocols = vec!["OpenFlow99".into()];
                b
            }),
            "protocols",
            "br2",
        ),
        (
            Case::Bridge({
                let mut b = bridge_spec("br2");
                b.controllers = vec!["tcp:controller.example:6653".into()];
                b
            }),
            "controllers",
            "br2",
        ),
        (
            Case::Bridge({
                let mut b = bridge_spec("br2");
                b.table_names.insert(255, "All".into());
                b
            }),
            "table_names",
            "br2",
        ),
        (Case::Bridge(bridge_spec("int0")), "name", "int0"),
        (Case::Mirror(mirror("missing0", &["int0"])), "output_port", "m0"),
        (Case::Mirror(mirror("int0", &["ghost0"])), "select_src_port", "m0"),
        (Case::Mirror(mirror("int0", &["int0"])), "output_port", "m0"),
    ];
    assert!(cases.len() >= 15);

    let before = s.mgr.with_view(stable);
    let show_before = vsctl(&s.sw, &["show"]);
    for (i, (case, field, object)) in cases.into_iter().enumerate() {
        let result: Result<(), Error> = match case {
            Case::Text(name, kind, opts) => parse_port(name, kind, &o(opts)).map(drop),
            Case::Port(br, p) => s.mgr.ensure_port(br, &p).await.map(drop),
            Case::Ports(br, ps) => s.mgr.ensure_ports(br, &ps).await.map(drop),
            Case::Bridge(b) => s.mgr.ensure_bridge(&b).await.map(drop),
            Case::Mirror(m) => s.mgr.ensure_mirror("br0", &m).await.map(drop),
        };
        let err = result.expect_err(&format!("case {i} was accepted"));
        assert_eq!(err.field(), Some(field), "case {i}: {err}");
        let text = err.to_string();
        assert!(text.contains(&format!("{object:?}")) && text.contains(&format!("`{field}`")), "case {i}: {text}");
        assert_eq!(s.mgr.with_view(stable), before, "case {i} ({text}) changed the database");
        println!("case {i:2}: {text}");
    }
    assert_eq!(vsctl(&s.sw, &["show"]), show_before);
    // The corpus leaves the manager usable.
    assert_eq!(s.mgr.ensure_port("br0", &internal("p1")).await.unwrap(), Outcome::Created);
}
