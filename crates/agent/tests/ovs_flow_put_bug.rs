//! Regression test, at the OVS level, for the userspace-datapath bug that upstream fixed
//! in "dpif-netdev: Fix dpif_netdev_flow_put" (commit 9c600710b; OVS 3.1.3, 3.0.5, 2.17.8,
//! 3.2.0 and later; Debian 12's 3.1.0 lacks the fix). weir issue 12.
//!
//! What it checks: after a flow change, no packet keeps being forwarded by a cached datapath
//! flow (megaflow) whose packets the OpenFlow tables now drop, when that flow overlaps another
//! cached flow. Real frames go through a netdev bridge; the tables are checked to drop them
//! (`ofproto/trace`) and the receiving port must see none.
//!
//! The bug: in `flow_put_on_pmd()` (lib/dpif-netdev.c), a `DPIF_FP_MODIFY` put from the
//! revalidator looks the flow up with a classifier lookup of the modified flow's key
//! (`dp_netdev_pmd_lookup_flow`), not by its UFID. The datapath classifier (dpcls) tries its
//! subtables (one per mask) in a fixed order and takes the first match; when another cached
//! flow that also covers the key sits in an earlier subtable, that flow gets the new actions,
//! the flow the revalidator meant keeps its old ones, and the revalidator's record (ukey) of
//! it says it has the new ones, so later passes find nothing to fix.
//!
//! The sequence, deterministic on an affected OVS (each step one atomic bundle, then two
//! `revalidator/wait`s). H1 = 10.0.0.1 and H3 = 10.0.0.3 send from the sender's port with
//! MAC 02:00:00:00:00:01; X is sent from MAC 02:00:00:00:00:03; H2 = 10.0.0.2 and
//! H4 = 10.0.0.4 are behind the receiver's port (OpenFlow port 2). A rule matching a MAC that
//! never sends (`MAC_GUARD`, as a port-security table would have) is in every table, so every
//! megaflow matches `eth_src` exactly and flows to H2 and H4 share one dpcls subtable.
//! Without DPDK ports all packets are handled by the main (non-PMD) thread, which never
//! re-sorts its dpcls subtables by hits (only PMD threads do, every second): they stay in
//! the order they were created, which the steps fix.
//! 1. `ip,nw_dst=H4 → output:2`. X (H3 → H4) caches megaflow {eth_src, nw_dst=H4}: the
//!    subtable of that mask is created first.
//! 2. Added: `priority=10,ip,dl_src=..:01,nw_src=H1,nw_dst=H2 → output:2`. P1 (H1 → H2) caches
//!    the narrow M1 {eth_src, nw_src=H1, nw_dst=H2}, in a second subtable (X's lookup fails
//!    this rule at its `dl_src`, so X stays as it is).
//! 3. That rule is replaced by `priority=5,ip,nw_dst=H2 → output:2`: M1 is still right and
//!    kept. P3 (H3 → H2) misses both cached flows and caches the broad M2 {eth_src, nw_dst=H2}
//!    in the first subtable. M1 and M2 overlap, with equal actions.
//! 4. H2's rule now drops. Both M1 and M2 are modified to drop. On an affected OVS, M1's
//!    modification finds M2 first and lands there: M1 keeps `output`, its ukey says `drop`.
//!    (P1 packets still hit M2 first and are dropped, so nothing shows yet, unless the
//!    exact-match cache, filled at random, sends them straight to M1.)
//! 5. Added: `priority=10,ip,nw_src=H3,nw_dst=H2 → drop`. M2 is now too broad and is deleted (by
//!    UFID, correctly); M1 is still right by its ukey and kept, with its stale `output`. P1
//!    packets now hit M1 and reach port 2, although every table drops them.
//!
//! On a fixed OVS the modification finds M1 by its UFID and no packet passes. weir's agent
//! mitigates the bug on affected switches by purging the datapath's cached flows
//! (`revalidator/purge`) after each flow change; this test does the same after each step
//! when `WEIR_DATAPATH_CACHE_PURGE` says so:
//! - `auto` (default): purge exactly when `agent::ovs_bugs::bugs_affecting` lists a bug for
//!   the running ovs-vswitchd's version on the `netdev` datapath (as the agent does);
//! - `never`: never purge: on OVS 3.1.0 this test must FAIL (it shows the bug);
//! - `always`: purge whatever the version.
//!
//! It runs on the OVS first on PATH (`PATH="$(bash scripts/ovs.sh)$PATH"` for the fixed one).
//! `WEIR_FLOW_PUT_ROUNDS` (default 3) sets how many times the sequence runs on one switch; a
//! failure says in how many rounds packets leaked.
//! ovs-vswitchd's `max-idle` is raised to 60 s so no cached flow idles out while a slow
//! machine runs the steps (the default 10 s would do on an idle one).

use agent::ovs_bugs::{OvsVersion, bugs_affecting};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use testbed::capture::{Capture, inject, received_packets};
use testbed::spoof::udp_frame;
use testbed::{Netns, TestSwitch, run};

const BRIDGE: &str = "br-int";
const H1: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const H2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const H3: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
const H4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 4);
/// The sender's MAC, for H1 and H3.
const SENDER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
/// The MAC X is sent from.
const OTHER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 3];
const RECEIVER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const DST_PORT: u16 = 9999;
/// Frames of P1 sent after each of steps 4 and 5.
const PROBES: u16 = 20;

/// In every table: makes every megaflow match `eth_src` exactly.
const MAC_GUARD: &str = "priority=100,dl_src=02:00:00:00:00:99,actions=drop";
const TO_H4: &str = "priority=5,ip,nw_dst=10.0.0.4,actions=output:2";
const H1_TO_H2: &str = "priority=10,ip,dl_src=02:00:00:00:00:01,nw_src=10.0.0.1,nw_dst=10.0.0.2,actions=output:2";
const TO_H2: &str = "priority=5,ip,nw_dst=10.0.0.2,actions=output:2";
const DENY_TO_H2: &str = "priority=5,ip,nw_dst=10.0.0.2,actions=drop";
const DENY_H3_TO_H2: &str = "priority=10,ip,nw_src=10.0.0.3,nw_dst=10.0.0.2,actions=drop";

/// A netdev bridge with a sender's and a receiver's veth, each in its own namespace.
struct Rig {
    /// Dropped first: the daemons stop and the switch's namespace (with the veths) goes.
    ts: TestSwitch,
    sender: Netns,
    receiver: Netns,
    version: OvsVersion,
    purge: bool,
    table: PathBuf,
}

fn sh(cmd: &mut Command) {
    run(cmd).unwrap_or_else(|e| panic!("{e}"));
}

impl Rig {
    fn new() -> Rig {
        let ts = TestSwitch::with_bridge().expect("test switch");
        let sw = ts.netns.name().to_string();
        let sender = Netns::add(&format!("{sw}s")).expect("sender namespace");
        let receiver = Netns::add(&format!("{sw}r")).expect("receiver namespace");
        for (port, peer, ns, mac) in [("s1", "s0", &sender, SENDER_MAC), ("r1", "r0", &receiver, RECEIVER_MAC)] {
            let peer_ns = ns.name();
            sh(Command::new("ip").args(
                format!("-n {sw} link add {port} type veth peer name {peer} netns {peer_ns}").split_whitespace(),
            ));
            sh(Command::new("ip").args(["-n", &sw, "link", "set", port, "up"]));
            sh(Command::new("ip").args(["-n", ns.name(), "link", "set", peer, "address", &mac_text(mac), "up"]));
        }
        let add_ports = format!(
            "add-port {BRIDGE} s1 -- set interface s1 ofport_request=1 -- add-port {BRIDGE} r1 -- set interface r1 \
             ofport_request=2 -- set Open_vSwitch . other_config:max-idle=60000"
        );
        ts.ovs.vsctl(&add_ports.split_whitespace().collect::<Vec<_>>()).expect("add the ports");
        for (port, ofport) in [("s1", "1"), ("r1", "2")] {
            let got = ts.ovs.vsctl(&["get", "interface", port, "ofport"]).expect("ofport");
            assert_eq!(got.trim(), ofport, "{port} did not get its OpenFlow port");
        }
        let version_line = ts.ovs.appctl(&["version"]).expect("ovs-vswitchd's version");
        let version = OvsVersion::parse(version_line.lines().next().unwrap_or_default())
            .unwrap_or_else(|| panic!("no version in {version_line:?}"));
        let affected = !bugs_affecting(version, "netdev").is_empty();
        let purge = match std::env::var("WEIR_DATAPATH_CACHE_PURGE").as_deref() {
            Err(_) | Ok("auto") => affected,
            Ok("never") => false,
            Ok("always") => true,
            Ok(other) => panic!("WEIR_DATAPATH_CACHE_PURGE={other:?}: expected never, auto or always"),
        };
        let table = ts.tmp.path().join("table.txt");
        Rig { ts, sender, receiver, version, purge, table }
    }

    /// Replaces the bridge's flows with `flows` in one bundle (as weir's agent does), purges
    /// the datapath's cached flows if this run mitigates, and waits for a revalidation pass
    /// that started after the change.
    fn install(&self, flows: &[&str]) {
        std::fs::write(&self.table, flows.join("\n") + "\n").expect("write the flow table");
        self.ts.ovs.ofctl("replace-flows", BRIDGE, &["--bundle", self.table.to_str().unwrap()]).expect("replace-flows");
        if self.purge {
            self.ts.ovs.appctl(&["revalidator/purge"]).expect("revalidator/purge");
        }
        self.ts.ovs.wait_revalidated().expect("revalidator/wait");
    }

    /// Sends `count` UDP frames `src` → `dst` from the sender's port (source ports from
    /// `sport` on, one each) and returns how many of them the receiver's port got.
    fn deliver(&self, src_mac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr, sport: u16, count: u16) -> usize {
        let capture = Capture::start(self.receiver.name(), "r0").expect("capture on the receiver's port");
        let frames: Vec<Vec<u8>> = (0..count)
            .map(|i| {
                udp_frame(
                    RECEIVER_MAC,
                    src_mac,
                    SocketAddrV4::new(src, sport + i),
                    SocketAddrV4::new(dst, DST_PORT),
                    b"weir-ovs-flow-put-bug",
                )
            })
            .collect();
        inject(self.sender.name(), "s0", &frames).expect("send frames");
        let frames = capture.stop_after(Duration::from_millis(400)).expect("stop the capture");
        let (packets, _) = received_packets(&frames);
        packets
            .iter()
            .filter_map(|p| p.ipv4())
            .filter(|ip| {
                (ip.src, ip.dst, ip.dst_port) == (src, dst, Some(DST_PORT))
                    && ip.src_port.is_some_and(|p| (sport..sport + count).contains(&p))
            })
            .count()
    }

    /// The datapath's cached IPv4 flows, shortened to what they match and do.
    fn cached_flows(&self) -> Vec<String> {
        let dump = self.ts.ovs.appctl(&["dpctl/dump-flows"]).expect("dpctl/dump-flows");
        dump.lines()
            .filter(|l| l.contains("ipv4("))
            .map(|l| {
                let from = l.find("eth(").unwrap_or(0);
                let actions = l.rfind("actions:").map(|i| &l[i..]).unwrap_or_default();
                let matched = l[from..].split(", packets:").next().unwrap_or_default();
                format!("{matched} {actions}")
            })
            .collect()
    }

    /// What the tables do with a P1 frame.
    fn trace_p1(&self, sport: u16) -> String {
        let flow = format!(
            "in_port=1,udp,dl_src={},dl_dst={},nw_src={H1},nw_dst={H2},udp_src={sport},udp_dst={DST_PORT}",
            mac_text(SENDER_MAC),
            mac_text(RECEIVER_MAC)
        );
        let trace = self.ts.ovs.appctl(&["ofproto/trace", BRIDGE, &flow]).expect("ofproto/trace");
        trace.lines().rev().find(|l| l.starts_with("Datapath actions:")).unwrap_or_default().to_string()
    }

    /// One run of the sequence in the module's docs, from an empty datapath. Returns what
    /// went wrong (denied packets that passed), if anything.
    fn round(&self, round: u16) -> Option<String> {
        // From a clean slate: no flows, nothing cached (a reset, not the mitigation).
        self.install(&[]);
        self.ts.ovs.appctl(&["revalidator/purge"]).expect("revalidator/purge");
        self.ts.ovs.wait_revalidated().expect("revalidator/wait");
        let sport = 10_000 + (round % 50) * 1_000;
        let must_arrive = |what: &str, got: usize, sent: u16| {
            assert_eq!(got, usize::from(sent), "round {round}, {what}: the allowed frames did not all arrive");
        };

        self.install(&[MAC_GUARD, TO_H4]);
        must_arrive("step 1 (X: H3 → H4)", self.deliver(OTHER_MAC, H3, H4, sport, 3), 3);
        self.install(&[MAC_GUARD, TO_H4, H1_TO_H2]);
        must_arrive("step 2 (P1: H1 → H2)", self.deliver(SENDER_MAC, H1, H2, sport, 3), 3);
        self.install(&[MAC_GUARD, TO_H4, TO_H2]);
        must_arrive("step 3 (P3: H3 → H2)", self.deliver(SENDER_MAC, H3, H2, sport, 3), 3);
        let overlap = self.cached_flows();
        if !self.purge {
            // The setup must build the overlap, or a pass would prove nothing.
            let has = |needle: &str| overlap.iter().any(|f| f.contains(needle));
            assert!(
                has("ipv4(src=10.0.0.1,dst=10.0.0.2,") && has("ipv4(dst=10.0.0.2,") && has("ipv4(dst=10.0.0.4,"),
                "round {round}: after step 3 the datapath should cache X, the narrow M1 and the broad M2:\n{}",
                overlap.join("\n")
            );
        }

        let mut leaks = Vec::new();
        let mut cached = vec![format!("after step 3:\n  {}", overlap.join("\n  "))];
        let steps: [(&str, &[&str]); 2] = [
            ("step 4 (H2's rule drops)", &[MAC_GUARD, TO_H4, DENY_TO_H2]),
            ("step 5 (+ H3 → H2 drops)", &[MAC_GUARD, TO_H4, DENY_TO_H2, DENY_H3_TO_H2]),
        ];
        for (i, (step, flows)) in steps.iter().enumerate() {
            self.install(flows);
            let probe_sport = sport + 100 * (i as u16 + 1);
            let verdict = self.trace_p1(probe_sport);
            assert_eq!(verdict, "Datapath actions: drop", "round {round}, {step}: the tables must drop P1");
            let passed = self.deliver(SENDER_MAC, H1, H2, probe_sport, PROBES);
            cached.push(format!("after {step}:\n  {}", self.cached_flows().join("\n  ")));
            if passed > 0 {
                leaks.push(format!(
                    "round {round}, {step}: {passed} of {PROBES} frames H1 → H2 reached port 2 (ofproto/trace: {verdict})"
                ));
            }
        }
        (!leaks.is_empty()).then(|| format!("{}\ncached flows {}", leaks.join("\n"), cached.join("\ncached flows ")))
    }
}

fn mac_text(mac: [u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

#[test]
fn no_cached_flow_keeps_forwarding_packets_the_tables_now_drop_when_two_cached_flows_overlap() {
    let rounds: u16 = match std::env::var("WEIR_FLOW_PUT_ROUNDS") {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("WEIR_FLOW_PUT_ROUNDS={v:?} is not a number")),
        Err(_) => 3,
    };
    let rig = Rig::new();
    let failed: Vec<String> = (0..rounds).filter_map(|r| rig.round(r)).collect();
    let context = format!(
        "OVS {} (netdev datapath), purging the datapath's cached flows after each change: {}",
        rig.version,
        if rig.purge { "yes" } else { "no" }
    );
    assert!(
        failed.is_empty(),
        "{context}: denied packets passed in {} of {rounds} rounds (the OVS bug fixed by \
         \"dpif-netdev: Fix dpif_netdev_flow_put\", commit 9c600710b):\n{}",
        failed.len(),
        failed.join("\n")
    );
    eprintln!("{context}: {rounds} rounds, no denied packet passed");
}
