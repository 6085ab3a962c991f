use super::*;
use etherparse::PacketBuilder;
use pipeline::Table;
use pipeline::conjunction::RuleInfo;
use pipeline::cookie::{Category, cookie};
use policy::{Action, AuditLog as Audit, Direction, Origin, PolicyKind, PolicyRef, RuleId};
use std::path::PathBuf;

const CONJ: u32 = 4242;
const CLIENT: [u8; 4] = [10, 244, 2, 11];
const SERVER: [u8; 4] = [10, 244, 1, 10];

fn rules() -> Arc<BTreeMap<u32, ConjRules>> {
    let info = RuleInfo {
        rule: RuleId("ClusterNetworkPolicy.crd.antrea.io/log-x-a/ingress/0".into()),
        part: 0,
        origin: Origin {
            policy: PolicyRef { kind: PolicyKind::AntreaClusterNetworkPolicy, namespace: None, name: "log-x-a".into() },
            rule: "allow-80".into(),
        },
        direction: Direction::Ingress,
        action: Action::Allow,
        audit: Some(Audit { label: "web".into() }),
    };
    Arc::new([(CONJ, ConjRules { table: Table::IngressAdmin, rules: vec![info] })].into())
}

fn syn(src_port: u16) -> PacketIn {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4(CLIENT, SERVER, 64).tcp(src_port, 80, 1, 1024).syn().write(&mut frame, &[]).unwrap();
    PacketIn {
        buffer_id: u32::MAX,
        total_len: frame.len() as u16,
        reason: 1,
        table_id: Table::IngressAdmin.id(),
        cookie: cookie(Category::ClusterPolicy, CONJ),
        matches: openflow::Match::new(),
        data: frame,
    }
}

fn log(dir: &std::path::Path, lines_per_second: u32) -> (AuditLog, PathBuf) {
    let path = dir.join("audit.log");
    let config = AuditConfig { rotation: Rotation { path: path.clone(), max_bytes: 1 << 20, backups: 1 }, lines_per_second };
    let log = AuditLog::new("n1", &config);
    log.set_rules(rules());
    (log, path)
}

fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn a_logged_connection_is_one_line_naming_rule_connection_and_pods() {
    let dir = tempfile::tempdir().unwrap();
    let (log, path) = log(dir.path(), 100);
    let cluster = policy::Cluster::from_sources([(
        "c.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x}\nspec: {nodeName: n1}\nstatus: {podIP: 10.244.1.10}\n",
    )]);
    log.set_pods(&cluster);
    let t = Instant::now();
    log.record(t, &syn(41000));
    log.record(t + Duration::from_millis(900), &syn(41000)); // the SYN retransmitted
    let got = lines(&path);
    assert_eq!(got.len(), 1, "{got:?}");
    let l = &got[0];
    for (field, want) in [
        ("node", "n1"),
        ("tier", "admin"),
        ("table", "IngressAdmin"),
        ("kind", "ClusterNetworkPolicy.crd.antrea.io"),
        ("policy", "log-x-a"),
        ("rule", "allow-80"),
        ("action", "Allow"),
        ("direction", "Ingress"),
        ("label", "web"),
        ("protocol", "TCP"),
        ("src_ip", "10.244.2.11"),
        ("dst_ip", "10.244.1.10"),
        ("dst_pod", "x/a"),
    ] {
        assert_eq!(l[field], want, "{field} in {l}");
    }
    assert_eq!((l["src_port"].as_u64(), l["dst_port"].as_u64(), l["conj_id"].as_u64()), (Some(41000), Some(80), Some(u64::from(CONJ))));
    assert!(l.get("src_pod").is_none(), "no pod has the client's address: {l}");
    assert!(l["time"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok(), "{l}");
    let c = log.counts();
    assert_eq!((c.written.load(Ordering::Relaxed), c.duplicates.load(Ordering::Relaxed)), (1, 1));
}

#[test]
fn the_same_connection_is_logged_again_after_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let (log, path) = log(dir.path(), 100);
    let t = Instant::now();
    log.record(t, &syn(41000));
    log.record(t + DEDUP_WINDOW, &syn(41000));
    assert_eq!(lines(&path).len(), 2);
}

#[test]
fn a_flood_writes_the_rate_and_counts_the_rest_as_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (log, path) = log(dir.path(), 50);
    let t = Instant::now();
    // 1000 new connections in one second, then 1000 in the next.
    for i in 0..2000u32 {
        log.record(t + Duration::from_micros(u64::from(i) * 1000), &syn(10_000 + i as u16));
    }
    let written = lines(&path).len() as u64;
    let c = log.counts();
    // One second's burst (50) and 50 a second for the two seconds.
    assert!((140..=151).contains(&written), "{written} lines");
    assert_eq!(c.written.load(Ordering::Relaxed), written);
    assert_eq!(c.rate_limited.load(Ordering::Relaxed), 2000 - written);
}

#[test]
fn a_packet_of_an_unknown_rule_or_an_unparsable_frame_is_counted_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let (log, path) = log(dir.path(), 100);
    let mut other = syn(1);
    other.cookie = cookie(Category::ClusterPolicy, CONJ + 1);
    log.record(Instant::now(), &other);
    let mut broken = syn(2);
    broken.data.truncate(20);
    log.record(Instant::now(), &broken);
    assert!(lines(&path).is_empty());
    let c = log.counts();
    assert_eq!((c.unknown_rule.load(Ordering::Relaxed), c.unparsable.load(Ordering::Relaxed)), (1, 1));
}

#[test]
fn sctp_ports_are_read_from_the_packet() {
    let mut frame = Vec::new();
    let ip = etherparse::Ipv4Header::new(12, 64, etherparse::IpNumber(132), CLIENT, SERVER).unwrap();
    PacketBuilder::ethernet2([2; 6], [4; 6])
        .ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
        .write(&mut frame, etherparse::IpNumber(132), &[0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 0, 0, 0, 0, 0])
        .unwrap();
    let conn = Connection::of_frame(&frame).unwrap();
    assert_eq!((conn.protocol, conn.src_port, conn.dst_port), (132, Some(40000), Some(80)));
}
