//! Acceptance 1 and 2: every port type is created, visible to ovs-vsctl and ovs-ofctl,
//! deleted again; a repeated ensure writes nothing.
mod common;
use common::*;
use ovsdb::{
    ErspanDir, ErspanVersion, Flowable, Inheritable, MirrorSpec, Outcome, PortKind, PortSpec, TunnelKind, TunnelSpec,
};
use std::collections::BTreeMap;
use std::time::Duration;

fn tunnel(kind: TunnelKind, remote: Flowable<std::net::IpAddr>) -> TunnelSpec {
    TunnelSpec::new(kind, remote)
}

fn every_port_type(ns: &str) -> Vec<PortSpec> {
    testbed::run(
        std::process::Command::new("ip")
            .args(["-n", ns, "link", "add", "veth0", "type", "veth", "peer", "name", "veth0p"]),
    )
    .expect("veth in the switch namespace");
    let mut internal = PortSpec::new("int0", PortKind::Internal);
    internal.ofport_request = Some(10);
    internal.mtu = Some(1400);
    internal.external_ids = BTreeMap::from([("k8s.pod".to_string(), "default/a".to_string())]);
    internal.no_flood = true;
    let system = PortSpec::new("veth0", PortKind::System);
    let patch = PortSpec::new("patch-a", PortKind::Patch { peer: "patch-b".into() });

    let mut vx = tunnel(TunnelKind::Vxlan, Flowable::Fixed("10.0.0.2".parse().unwrap()));
    vx.key = Some(Flowable::Flow);
    vx.local_ip = Some("10.0.0.1".parse().unwrap());
    vx.dst_port = Some(4790);
    vx.csum = Some(true);
    vx.tos = Some(Inheritable::Inherit);
    vx.ttl = Some(Inheritable::Value(64));
    let mut gnv = tunnel(TunnelKind::Geneve, Flowable::Flow);
    gnv.key = Some(Flowable::Fixed(5000));
    let mut gre = tunnel(TunnelKind::Gre, Flowable::Fixed("10.0.0.3".parse().unwrap()));
    gre.key = Some(Flowable::Fixed(42));
    gre.tos = Some(Inheritable::Value(0x20));
    let v1 = TunnelKind::Erspan { version: ErspanVersion::V1, index: Some(0x1f), dir: None, hwid: None };
    let mut ers1 = tunnel(v1, Flowable::Fixed("10.0.0.4".parse().unwrap()));
    ers1.key = Some(Flowable::Fixed(10));
    let v2 =
        TunnelKind::Erspan { version: ErspanVersion::V2, index: None, dir: Some(ErspanDir::Egress), hwid: Some(7) };
    let mut ers2 = tunnel(v2, Flowable::Fixed("10.0.0.5".parse().unwrap()));
    ers2.key = Some(Flowable::Fixed(11));
    let mut ports = vec![internal, system, patch];
    for (name, t) in [("vx0", vx), ("gnv0", gnv), ("gre0", gre), ("ers1", ers1), ("ers2", ers2)] {
        ports.push(PortSpec::new(name, PortKind::Tunnel(t)));
    }
    ports
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_port_type_is_created_shown_numbered_and_deleted() {
    let s = setup().await;
    assert_eq!(s.mgr.ensure_bridge(&bridge_spec("br0")).await.unwrap(), Outcome::Created);
    assert_eq!(s.mgr.ensure_bridge(&bridge_spec("br1")).await.unwrap(), Outcome::Created);
    wait_mgmt(&s.sw, "br0");
    let ports = every_port_type(s.sw.netns.name());
    for p in &ports {
        assert_eq!(s.mgr.ensure_port("br0", p).await.unwrap(), Outcome::Created, "{}", p.name);
    }
    let peer = PortSpec::new("patch-b", PortKind::Patch { peer: "patch-a".into() });
    assert_eq!(s.mgr.ensure_port("br1", &peer).await.unwrap(), Outcome::Created);

    // ovs-vswitchd can leave a stale "No usable peer" on the patch end created first (its
    // status transaction races the configuration that linked the pair); that the pair is
    // linked is checked by tracing a packet across it below.
    let mut show = String::new();
    let clean = testbed::ovs::wait_until(Duration::from_secs(8), || {
        show = vsctl(&s.sw, &["show"]);
        show.lines().filter(|l| l.trim_start().starts_with("error:")).all(|l| l.contains("No usable peer 'patch-b'"))
    });
    assert!(clean.is_ok(), "an interface has an error:\n{show}");
    for (needle, what) in [
        ("Port int0", "internal port"),
        ("type: internal", "internal type"),
        ("Port veth0", "system port"),
        ("type: patch", "patch type"),
        ("options: {peer=patch-b}", "patch peer"),
        ("type: vxlan", "vxlan type"),
        (
            r#"options: {csum="true", dst_port="4790", key=flow, local_ip="10.0.0.1", remote_ip="10.0.0.2", tos=inherit, ttl="64"}"#,
            "vxlan options",
        ),
        ("type: geneve", "geneve type"),
        (r#"options: {key="5000", remote_ip=flow}"#, "geneve options"),
        ("type: gre", "gre type"),
        (r#"options: {key="42", remote_ip="10.0.0.3", tos="32"}"#, "gre options"),
        ("type: erspan", "erspan type"),
        (r#"options: {erspan_idx="0x1f", erspan_ver="1", key="10", remote_ip="10.0.0.4"}"#, "erspan v1 options"),
        (
            r#"options: {erspan_dir="1", erspan_hwid="0x7", erspan_ver="2", key="11", remote_ip="10.0.0.5"}"#,
            "erspan v2 options",
        ),
    ] {
        assert!(show.contains(needle), "{what}: {needle:?} not in\n{show}");
    }

    for p in &ports {
        let n = s.mgr.wait_ofport(&p.name, Duration::from_secs(10)).await.unwrap();
        assert!(n > 0);
    }
    let ofshow = s.sw.ovs.ofctl("show", "br0", &[]).unwrap();
    for p in &ports {
        let n = s.mgr.wait_ofport(&p.name, Duration::ZERO).await.unwrap();
        assert!(ofshow.contains(&format!(" {n}({}): ", p.name)), "{} as port {n} not in\n{ofshow}", p.name);
    }
    assert!(ofshow.contains(" 10(int0): "), "ofport_request honoured:\n{ofshow}");
    assert_eq!(vsctl(&s.sw, &["get", "Interface", "int0", "mtu"]).trim(), "1400");
    assert_eq!(vsctl(&s.sw, &["get", "Interface", "int0", "external_ids:k8s.pod"]).trim(), "\"default/a\"");
    assert_eq!(vsctl(&s.sw, &["get", "Port", "int0", "external_ids:weir-no-flood"]).trim(), "\"true\"");

    // The patch pair links br0 to br1.
    s.sw.ovs.ofctl("add-flow", "br0", &["in_port=int0,actions=output:patch-a"]).unwrap();
    let trace = s.sw.ovs.appctl(&["ofproto/trace", "br0", "in_port=int0"]).unwrap();
    assert!(trace.contains("bridge(\"br1\")"), "{trace}");

    // Flow_Table rows name the tables (ovs-ofctl shows names by default on a terminal).
    s.sw.ovs.ofctl("add-flow", "br0", &["table=1,priority=1,actions=drop"]).unwrap();
    let flows = s.sw.ovs.ofctl("dump-flows", "br0", &["--no-stats", "--names"]).unwrap();
    assert!(flows.contains("table=SpoofGuard"), "{flows}");

    for p in &ports {
        assert_eq!(s.mgr.delete_port("br0", &p.name).await.unwrap(), Outcome::Deleted);
        assert_eq!(s.mgr.delete_port("br0", &p.name).await.unwrap(), Outcome::Absent);
    }
    let show = vsctl(&s.sw, &["show"]);
    for p in &ports {
        assert!(!show.contains(&format!("Port {}\n", p.name)), "{} still in\n{show}", p.name);
    }
    testbed::ovs::wait_until(Duration::from_secs(5), || {
        let of = s.sw.ovs.ofctl("show", "br0", &[]).unwrap();
        ports.iter().all(|p| !of.contains(&format!("({}): ", p.name)))
    })
    .expect("deleted ports leave ovs-ofctl show");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_identical_ensure_sends_no_transaction() {
    let s = setup().await;
    let bridge = {
        let mut b = bridge_spec("br0");
        b.controllers = vec!["tcp:127.0.0.1:6653".into()];
        b.external_ids.insert("owner".into(), "weir".into());
        b
    };
    s.mgr.ensure_bridge(&bridge).await.unwrap();
    wait_mgmt(&s.sw, "br0");
    let ports = every_port_type(s.sw.netns.name());
    s.mgr.ensure_ports("br0", &ports).await.unwrap();
    let mirror = MirrorSpec {
        name: "m0".into(),
        select_all: false,
        select_src_port: vec!["int0".into()],
        select_dst_port: vec!["veth0".into()],
        output_port: "gre0".into(),
        external_ids: BTreeMap::new(),
    };
    assert_eq!(s.mgr.ensure_mirror("br0", &mirror).await.unwrap(), Outcome::Created);

    // weir's show prints what ovs-vsctl show prints (retried: ovs-vswitchd may still be
    // writing ofports and errors between the two reads).
    let mut last = (String::new(), String::new());
    let same = testbed::ovs::wait_until(Duration::from_secs(5), || {
        last = (s.mgr.with_view(ovsdb::show::show), vsctl(&s.sw, &["show"]));
        last.0 == last.1
    });
    assert!(same.is_ok(), "weir:\n{}\novs-vsctl:\n{}", last.0, last.1);

    let (mgr_before, client_before) = (s.mgr.transactions(), s.client.transactions());

    assert_eq!(s.mgr.ensure_bridge(&bridge).await.unwrap(), Outcome::Unchanged);
    assert!(s.mgr.ensure_ports("br0", &ports).await.unwrap().iter().all(|o| *o == Outcome::Unchanged));
    for p in &ports {
        assert_eq!(s.mgr.ensure_port("br0", p).await.unwrap(), Outcome::Unchanged, "{}", p.name);
    }
    assert_eq!(s.mgr.ensure_mirror("br0", &mirror).await.unwrap(), Outcome::Unchanged);
    assert_eq!(s.mgr.reensure().await.unwrap(), 0);
    assert_eq!(s.mgr.transactions(), mgr_before, "manager transactions");
    assert_eq!(s.client.transactions(), client_before, "client transactions");

    // A real difference is one transaction, and only that.
    let mut changed = ports[0].clone();
    changed.mtu = Some(1300);
    assert_eq!(s.mgr.ensure_port("br0", &changed).await.unwrap(), Outcome::Updated);
    assert_eq!(s.mgr.transactions(), mgr_before + 1);
    assert_eq!(vsctl(&s.sw, &["get", "Interface", "int0", "mtu_request"]).trim(), "1300");
    let listed = vsctl(&s.sw, &["--columns=name", "list", "Mirror"]);
    assert_eq!(listed.matches("m0").count(), 1, "{listed}");
    assert_eq!(s.mgr.delete_mirror("br0", "m0").await.unwrap(), Outcome::Deleted);
    assert!(vsctl(&s.sw, &["list", "Mirror"]).trim().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_made_by_ovs_vsctl_is_adopted_and_deleting_it_takes_its_ports() {
    let sw = testbed::TestSwitch::with_bridge().unwrap();
    let client = ovsdb::Client::connect(&target(&sw)).await.unwrap();
    let mgr = ovsdb::Manager::new(&client).await.unwrap();
    let spec = bridge_spec("br-int");
    assert_eq!(mgr.ensure_bridge(&spec).await.unwrap(), Outcome::Updated, "table names were missing");
    assert_eq!(mgr.ensure_bridge(&spec).await.unwrap(), Outcome::Unchanged);
    let mut renamed = spec.clone();
    renamed.table_names = BTreeMap::from([(0, "Classifier".to_string()), (2, "Conntrack".to_string())]);
    assert_eq!(mgr.ensure_bridge(&renamed).await.unwrap(), Outcome::Updated);
    let tables = vsctl(&sw, &["get", "Bridge", "br-int", "flow_tables"]);
    assert_eq!(tables.matches('=').count(), 2, "{tables}");
    let names = vsctl(&sw, &["--columns=name", "--format=csv", "--no-headings", "list", "Flow_Table"]);
    let mut names: Vec<&str> = names.lines().map(|l| l.trim_matches('"')).collect();
    names.sort();
    assert_eq!(names, ["Classifier", "Conntrack"], "the dropped table's row is collected");

    mgr.ensure_port("br-int", &PortSpec::new("p0", PortKind::Internal)).await.unwrap();
    assert_eq!(mgr.delete_bridge("br-int").await.unwrap(), Outcome::Deleted);
    assert_eq!(mgr.delete_bridge("br-int").await.unwrap(), Outcome::Absent);
    assert!(vsctl(&sw, &["list-br"]).trim().is_empty());
    assert!(vsctl(&sw, &["list", "Port"]).trim().is_empty(), "ports go with their bridge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_keeps_the_ports_ovs_vswitchd_accepts_and_removes_the_rejected() {
    let s = setup().await;
    s.mgr.ensure_bridge(&bridge_spec("br0")).await.unwrap();
    let batch = [PortSpec::new("good0", PortKind::Internal), PortSpec::new("nodev0", PortKind::System)];
    let err = s.mgr.ensure_ports("br0", &batch).await.unwrap_err();
    assert_eq!(err.field(), Some("name"));
    assert!(err.to_string().contains("nodev0") && err.to_string().contains("No such device"), "{err}");
    let ports = vsctl(&s.sw, &["list-ports", "br0"]);
    assert_eq!(ports.lines().collect::<Vec<_>>(), ["good0"]);
    // good0 is owned: if a third party removes it, a re-ensure brings it back.
    vsctl(&s.sw, &["--no-wait", "del-port", "br0", "good0"]);
    testbed::ovs::wait_until(Duration::from_secs(5), || {
        s.mgr.with_view(|db| db.find("Port", "name", "good0").is_none())
    })
    .unwrap();
    assert_eq!(s.mgr.reensure().await.unwrap(), 1);
    assert_eq!(vsctl(&s.sw, &["list-ports", "br0"]).trim(), "good0");
}
