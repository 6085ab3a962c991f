//! The connection against a real ovs-vswitchd (userspace datapath, in its own namespace).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use openflow::action::{Controller, Ct, CtZone, Learn, LearnSpec, LearnSrc, Nat, NatKind};
use openflow::{Action, Field, FieldRange, Flow, FlowMod, Instruction, Match, PortNo};
use testbed::TestSwitch;

use super::*;

/// Flows using the features the pipeline relies on, built with the value API.
fn sample_flows() -> Vec<Flow> {
    let reg0 = FieldRange::bits(Field::Reg(0), 0, 15);
    vec![
        Flow::new(0, 100, Match::new().in_port(PortNo(1))).actions([Action::resubmit_table(1)]),
        Flow::new(0, 0, Match::new()).goto(10),
        Flow::new(1, 200, Match::new().tcp().with_ipv4_prefix(Field::Ipv4Src, Ipv4Addr::new(10, 1, 0, 0), 16).with(Field::TcpDst, 80u16))
            .cookie(0x1234_0000_0000_0001)
            .actions([Action::Conjunction { id: 7, clause: 1, n_clauses: 3 }]),
        Flow::new(1, 200, Match::new().with(Field::ConjId, 7u32)).actions([Action::SetField { field: Field::Reg(3), value: 0x10, mask: Some(0xf0) }]).goto(20),
        Flow::new(2, 300, Match::new().ipv4().with_masked(Field::CtState, 0x20u32, 0x21u32)).actions([Action::Ct(Ct {
            zone: CtZone::Field(reg0),
            table: Some(3),
            ..Ct::default()
        })]),
        Flow::new(2, 310, Match::new().ipv4().with_masked(Field::CtState, 0x21u32, 0x21u32).with(Field::Reg(1), 5u32)).actions([Action::Ct(Ct {
            commit: true,
            zone: CtZone::Imm(5),
            nat: Some(Nat {
                kind: Some(NatKind::Src),
                addrs: Some(("10.0.0.1".parse().unwrap(), "10.0.0.9".parse().unwrap())),
                ports: Some((1000, 2000)),
                random: true,
                ..Nat::default()
            }),
            exec: vec![Action::SetField { field: Field::CtMark, value: 1, mask: None }],
            ..Ct::default()
        })]),
        Flow::new(3, 10, Match::new().arp().with(Field::ArpOp, 1u16)).actions([Action::output(PortNo::NORMAL)]),
        Flow::new(3, 11, Match::new().udp().with_masked(Field::UdpDst, 0x1000u16, 0xf000u16)).actions([
            Action::Controller(Controller { userdata: vec![1, 2, 3, 4], meter_id: None, ..Controller::default() }),
        ]),
        Flow::new(3, 12, Match::new().ipv4().with(Field::TunId, 0x55u64).with_ipv4_prefix(Field::TunDst, Ipv4Addr::new(192, 168, 1, 1), 32))
            .actions([Action::Move { src: FieldRange::whole(Field::TunId), dst: FieldRange::bits(Field::Xreg(1), 0, 63) }, Action::DecTtl]),
        Flow::new(4, 1, Match::new().ipv4().with_masked(Field::CtState, 0x20u32, 0x30u32).with(Field::Metadata, 9u64))
            .actions([Action::Resubmit { port: None, table: Some(5), ct: true }, Action::CtClear, Action::Note(vec![0xab, 0xcd, 0, 0, 0, 0])])
            .instruction(Instruction::WriteMetadata { value: 1, mask: 0xff }),
        Flow::new(5, 1, Match::new().with(Field::EthType, 0x86ddu16)).actions([Action::Learn(Box::new(Learn {
            table_id: 6,
            idle_timeout: 30,
            specs: vec![
                LearnSpec::Match { dst: FieldRange::whole(Field::EthDst), src: LearnSrc::Field(FieldRange::whole(Field::EthSrc)) },
                LearnSpec::Load { dst: FieldRange::whole(Field::Reg(2)), src: LearnSrc::Imm(3) },
                LearnSpec::Output { src: FieldRange::bits(Field::Reg(1), 0, 15) },
            ],
            ..Learn::default()
        }))]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_read_back_from_the_switch_equals_what_was_sent_and_prints_like_ovs_ofctl() {
    let ts = TestSwitch::with_bridge().expect("test switch");
    let target = format!("unix:{}", ts.ovs.mgmt_socket("br-int").display());
    let sw = Switch::connect(&target).await.expect("connect");
    assert!(sw.features().n_tables > 0);
    let flows = sample_flows();
    let mods: Vec<FlowMod> = flows.iter().cloned().map(FlowMod::add).collect();
    sw.bundle(&mods).await.expect("bundle");
    let installed: BTreeSet<Flow> = sw.dump_flows().await.expect("dump").into_iter().collect();
    let sent: BTreeSet<Flow> = flows.iter().cloned().collect();
    for f in sent.difference(&installed) {
        eprintln!("sent, not read back: {f}");
    }
    for f in installed.difference(&sent) {
        eprintln!("read back, not sent: {f}");
    }
    assert_eq!(installed, sent);

    let ovs_text = ts.ovs.ofctl("dump-flows", "br-int", &["--no-stats"]).expect("ovs-ofctl dump-flows");
    let ovs_lines: BTreeSet<String> = ovs_text.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
    let ours: BTreeSet<String> = installed.iter().map(|f| f.to_string()).collect();
    for l in ovs_lines.difference(&ours) {
        eprintln!("ovs-ofctl: {l}");
    }
    for l in ours.difference(&ovs_lines) {
        eprintln!("weir:      {l}");
    }
    assert_eq!(ours, ovs_lines);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_flow_in_a_bundle_is_reported_with_its_index_and_text_and_nothing_is_applied() {
    let ts = TestSwitch::with_bridge().expect("test switch");
    let target = format!("unix:{}", ts.ovs.mgmt_socket("br-int").display());
    let sw = Switch::connect(&target).await.expect("connect");
    let good = Flow::new(0, 1, Match::new()).actions([Action::output(PortNo::NORMAL)]);
    // goto_table must move forward; a flow in table 5 going to table 2 is invalid.
    let bad = Flow::new(5, 1, Match::new()).goto(2);
    let err = sw.bundle(&[FlowMod::add(good), FlowMod::add(bad)]).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, SwitchError::BundleFlow { index: 1, .. }), "{text}");
    assert!(text.contains("OFPBIC_BAD_TABLE_ID") && text.contains("goto_table:2"), "{text}");
    assert!(sw.dump_flows().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_and_barrier_work_on_a_bridge_name_resolved_in_the_rundir() {
    let ts = TestSwitch::with_bridge().expect("test switch");
    let dir = ts.ovs.mgmt_socket("br-int");
    let rundir = dir.parent().unwrap().to_path_buf();
    // SAFETY: this test binary does not read OVS_RUNDIR concurrently elsewhere.
    unsafe { std::env::set_var("OVS_RUNDIR", &rundir) };
    let sw = Switch::connect("br-int").await.expect("connect by bridge name");
    sw.barrier().await.expect("barrier");
    let r = sw.request(&Message::EchoRequest(vec![1, 2, 3])).await.expect("echo");
    assert_eq!(r, vec![Message::EchoReply(vec![1, 2, 3])]);
    let ports = sw.port_desc().await.expect("ports");
    assert!(ports.iter().any(|p| p.name == "br-int"));
}

/// 100k /32 drop flows, the benchmark shape of performance.md.
fn many_flows(n: u32) -> Vec<Flow> {
    (0..n)
        .map(|i| Flow::new(200, 100, Match::new().ipv4().with(Field::Ipv4Dst, Ipv4Addr::from(0x0a00_0000 + i))))
        .collect()
}

/// One bundle of 100k flows is accepted whole. How fast, against `ovs-ofctl --bundle`, is a
/// benchmark's question (`weir bench ofctl-install`), not a timed test's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100k_flow_bundle_installs_every_flow() {
    let ts = TestSwitch::with_bridge().expect("test switch");
    let target = format!("unix:{}", ts.ovs.mgmt_socket("br-int").display());
    let sw = Switch::connect(&target).await.expect("connect");
    let mods: Vec<FlowMod> = many_flows(100_000).into_iter().map(FlowMod::add).collect();
    sw.bundle(&mods).await.expect("bundle");
    assert_eq!(sw.dump_flows().await.unwrap().len(), 100_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_ovs_vswitchd_takes_the_connection_down_at_once_and_fails_requests() {
    let ts = TestSwitch::with_bridge().expect("test switch");
    let target = format!("unix:{}", ts.ovs.mgmt_socket("br-int").display());
    let sw = Switch::connect(&target).await.expect("connect");
    sw.barrier().await.expect("barrier");
    let down = sw.down();
    let t0 = std::time::Instant::now();
    assert!(ts.ovs.kill("ovs-vswitchd"), "ovs-vswitchd was running");
    let why = tokio::time::timeout(std::time::Duration::from_secs(1), down).await.expect("down within 1 s of the kill");
    assert_eq!(why, Down::Closed);
    eprintln!("connection down {:?} after kill -9 (kill() waits for the process to be gone)", t0.elapsed());
    assert!(matches!(sw.barrier().await, Err(SwitchError::Down(Down::Closed))));
}
