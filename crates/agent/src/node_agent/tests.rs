//! The agent's timing and recovery behaviour, in virtual time: a [`World`] performs the
//! agent's actions against a simulated switch and OVSDB at once (no sockets, no sleeping)
//! and records what was done when, and the tests read that record.

use super::*;
use openflow::FlowModCommand;
use ovsdb::datum::Uuid;
use ovsdb::tables::Interface;
use pipeline::flow::key;

// ---------------------------------------------------------------- the cluster and the bridge

const NODE: &str = "n1";
const SWITCH: &str = "unix:/run/openvswitch/br-int.mgmt";

/// Two nodes; x/a and x/b on n1, x/c on n2.
const BASE: &str = "\
apiVersion: v1
kind: Node
metadata: {name: n1}
spec: {podCIDR: 10.0.1.0/24}
status: {addresses: [{type: InternalIP, address: 192.168.1.1}]}
---
apiVersion: v1
kind: Node
metadata: {name: n2}
spec: {podCIDR: 10.0.2.0/24}
status: {addresses: [{type: InternalIP, address: 192.168.1.2}]}
---
apiVersion: v1
kind: Namespace
metadata: {name: x}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: a}}
spec: {nodeName: n1}
status: {podIP: 10.0.1.10}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x, labels: {app: b}}
spec: {nodeName: n1}
status: {podIP: 10.0.1.11}
---
apiVersion: v1
kind: Pod
metadata: {name: c, namespace: x, labels: {app: c}}
spec: {nodeName: n2}
status: {podIP: 10.0.2.10}
";

/// A NetworkPolicy isolating x/a: only x/b may reach it, on TCP `port`.
fn policy(name: &str, port: u16) -> String {
    format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: x}}\n\
         spec:\n  podSelector: {{matchLabels: {{app: a}}}}\n  ingress:\n  - from:\n    - podSelector: {{matchLabels: {{app: b}}}}\n    \
         ports: [{{protocol: TCP, port: {port}}}]\n"
    )
}

/// The cluster view of `docs` (YAML documents, `---` separated).
fn view(docs: &str) -> Cluster {
    let cluster = Cluster::from_sources([("cluster.yaml", docs)]);
    assert!(cluster.errors.is_empty(), "{:?}", cluster.errors);
    cluster
}

fn manifests(docs: &str, token: &str) -> Event {
    Event::Manifests { cluster: Box::new(view(docs)), token: Some(token.to_string()) }
}

fn interface(i: u128, name: &str, ofport: i64, ids: &[(&str, &str)]) -> (String, Interface) {
    let iface = Interface {
        uuid: Uuid(i),
        name: name.to_string(),
        iface_type: String::new(),
        options: BTreeMap::new(),
        ofport: Some(ofport),
        ofport_request: None,
        mtu_request: None,
        mtu: None,
        mac: None,
        mac_in_use: None,
        error: None,
        link_state: Some("up".into()),
        external_ids: ids.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    };
    (name.to_string(), iface)
}

fn pod_port(i: u128, pod: &str, ofport: i64, ip: &str, mac: &str) -> (String, Interface) {
    let iface_id = format!("x/{pod}");
    interface(
        i,
        &format!("veth-{pod}"),
        ofport,
        &[("iface-id", &iface_id), ("pod-namespace", "x"), ("pod-name", pod), ("ip-address", ip), ("attached-mac", mac)],
    )
}

/// n1's bridge: the tunnel port and the ports of x/a and x/b.
fn bridge() -> Event {
    Event::Interfaces(Arc::new(
        [
            interface(1, TUNNEL_PORT, 10, &[]),
            pod_port(2, "a", 1, "10.0.1.10", "02:00:0a:00:01:0a"),
            pod_port(3, "b", 2, "10.0.1.11", "02:00:0a:00:01:0b"),
        ]
        .into_iter()
        .collect(),
    ))
}

// ---------------------------------------------------------------- the simulated world

/// ovs-vswitchd as the agent sees it.
struct Switch {
    /// Whether its socket accepts connections.
    accepting: bool,
    connected: bool,
    flows: FlowSet,
    version: Option<&'static str>,
    datapath_type: &'static str,
    /// How many of the next bundles it rejects (the connection stays up).
    reject_bundles: usize,
    /// How many of the next purges fail.
    fail_purges: usize,
    /// How many of the next flow-restore-wait clearings fail.
    fail_restores: usize,
}

impl Switch {
    /// A fixed OVS (no known bug) on the userspace datapath.
    fn fixed() -> Switch {
        Switch::of(Some("3.5.0"), "netdev")
    }

    fn of(version: Option<&'static str>, datapath_type: &'static str) -> Switch {
        Switch {
            accepting: true,
            connected: false,
            flows: FlowSet::default(),
            version,
            datapath_type,
            reject_bundles: 0,
            fail_purges: 0,
            fail_restores: 0,
        }
    }

    fn apply(&mut self, mods: &[FlowMod]) {
        for m in mods {
            match m.command {
                FlowModCommand::Add => self.flows.replace(m.flow.clone()),
                FlowModCommand::DeleteStrict => {
                    self.flows.remove(&key(&m.flow));
                }
                other => panic!("the agent sends adds and strict deletes only, not {other:?}"),
            }
        }
    }
}

/// What the world did at the agent's request.
#[derive(Debug, Clone)]
enum Done {
    Status(Box<Status>),
    TcPorts(Vec<String>),
    Connect { accepted: bool },
    Disconnect,
    ReadSwitch,
    Bundle { mods: Vec<FlowMod>, accepted: bool },
    Purge { ok: bool },
    FlowRestore { ok: bool },
    Count,
    Record(Record),
    PodNetwork(PodNetwork),
}

impl Done {
    /// A short name, for sequences.
    fn name(&self) -> &'static str {
        match self {
            Done::Status(_) => "status",
            Done::TcPorts(_) => "tc-ports",
            Done::Connect { accepted: true } => "connect",
            Done::Connect { accepted: false } => "connect (refused)",
            Done::Disconnect => "disconnect",
            Done::ReadSwitch => "read-switch",
            Done::Bundle { accepted: true, .. } => "bundle",
            Done::Bundle { accepted: false, .. } => "bundle (rejected)",
            Done::Purge { ok: true } => "purge",
            Done::Purge { ok: false } => "purge (failed)",
            Done::FlowRestore { ok: true } => "flow-restore",
            Done::FlowRestore { ok: false } => "flow-restore (failed)",
            Done::Count => "count",
            Done::Record(_) => "record",
            Done::PodNetwork(_) => "pod-network",
        }
    }
}

/// The agent, a switch, and a virtual clock.
struct World {
    agent: NodeAgent,
    start: Instant,
    now: Instant,
    switch: Switch,
    /// Everything done, with its time since the start.
    log: Vec<(Duration, Done)>,
    /// A bundle result held back (see [`World::hold_bundles`]).
    held: Option<Event>,
    hold_bundles: bool,
    /// Every realization reported, with its time since the start.
    realizations: Vec<(Duration, Realization)>,
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

impl World {
    fn new(switch: Switch) -> World {
        World::with_purge(switch, CachePurge::Auto)
    }

    /// A restarted agent on `switch` (its flows kept), which recalls `record` from the state
    /// directory before its inputs arrive.
    fn restarted(mut switch: Switch, record: Record) -> World {
        switch.connected = false;
        let mut w = World::new(switch);
        w.agent.recall(record);
        w
    }

    fn with_purge(switch: Switch, datapath_cache_purge: CachePurge) -> World {
        World::with_settings(switch, |s| s.datapath_cache_purge = datapath_cache_purge)
    }

    /// A world whose agent's settings are the usual ones as `change` leaves them.
    fn with_settings(switch: Switch, change: impl FnOnce(&mut Settings)) -> World {
        let start = Instant::now();
        let mut settings = Settings {
            node: NODE.into(),
            openflow: SWITCH.into(),
            datapath_cache_purge: CachePurge::Auto,
            report_rules: true,
            keep_record: true,
            publish_pod_network: false,
            service_cidrs: Vec::new(),
            node_firewall: false,
            host_bypass: Vec::new(),
            node_policy_ovs: false,
            tunnel_udp_port: 6081,
        };
        change(&mut settings);
        let mut w = World {
            agent: NodeAgent::new(settings, start),
            start,
            now: start,
            switch,
            log: Vec::new(),
            held: None,
            hold_bundles: false,
            realizations: Vec::new(),
        };
        w.perform_all();
        w
    }

    /// A world whose agent has realized `docs` (token `t0`) and gone quiet.
    fn realized(switch: Switch, docs: &str) -> World {
        World::with_settings_realized(switch, docs, |_| {})
    }

    /// As [`World::realized`], with settings as `change` leaves them.
    fn with_settings_realized(switch: Switch, docs: &str, change: impl FnOnce(&mut Settings)) -> World {
        let mut w = World::with_settings(switch, change);
        w.input(manifests(docs, "t0"));
        w.input(bridge());
        w.advance(ms(10));
        assert_eq!(w.status().source_token.as_deref(), Some("t0"), "realized at the start");
        assert!(w.status().realized);
        w
    }

    /// Virtual time since the start.
    fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    fn input(&mut self, event: Event) {
        self.agent.handle(self.now, event);
        self.perform_all();
    }

    /// Lets `d` pass, waking the agent whenever it asked to be.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        let mut turns = 0;
        while let Some(t) = self.agent.poll_timeout()
            && t <= end
        {
            turns += 1;
            assert!(turns < 100_000, "the agent asks to be woken without end at {:?}", t - self.start);
            self.now = self.now.max(t);
            self.agent.handle_timeout(self.now);
            self.perform_all();
        }
        self.now = end;
    }

    /// Lets `d` pass without waking the agent (a stalled loop), then wakes it once.
    fn stall(&mut self, d: Duration) {
        self.now += d;
        self.agent.handle_timeout(self.now);
        self.perform_all();
    }

    fn perform_all(&mut self) {
        while let Some(action) = self.agent.poll_action() {
            if let Some(result) = self.perform(action) {
                self.agent.handle(self.now, result);
            }
        }
    }

    fn record(&mut self, done: Done) {
        self.log.push((self.elapsed(), done));
    }

    fn perform(&mut self, action: Action) -> Option<Event> {
        let sw = &mut self.switch;
        match action {
            Action::WriteStatus(status) => {
                self.record(Done::Status(status));
                None
            }
            Action::ReconcileTcPorts { wanted, .. } => {
                let names: Vec<String> = wanted.keys().cloned().collect();
                let ofports = names.iter().enumerate().map(|(i, n)| (n.clone(), 100 + i as u32)).collect();
                self.record(Done::TcPorts(names));
                Some(Event::TcPortsReconciled(Reconciled { errors: BTreeMap::new(), ofports }))
            }
            Action::Connect => {
                let accepted = sw.accepting;
                sw.connected = accepted;
                self.record(Done::Connect { accepted });
                Some(if accepted { Event::Connected } else { Event::ConnectFailed("Connection refused (os error 111)".into()) })
            }
            Action::Disconnect => {
                sw.connected = false;
                self.record(Done::Disconnect);
                None
            }
            Action::ReadSwitch => {
                assert!(sw.connected, "read from a switch that is not connected");
                let facts = SwitchFacts {
                    version: sw.version.map(|v| (OvsVersion::parse(v).unwrap(), "ovs-vswitchd")),
                    datapath_type: sw.datapath_type.to_string(),
                };
                let flows = Ok(weirs_flows(sw.flows.iter().cloned().collect()));
                self.record(Done::ReadSwitch);
                Some(Event::SwitchRead { facts, flows })
            }
            Action::SendBundle(mods) => {
                assert!(sw.connected, "a bundle to a switch that is not connected");
                let accepted = sw.reject_bundles == 0;
                let result = if accepted {
                    sw.apply(&mods);
                    Ok(())
                } else {
                    sw.reject_bundles -= 1;
                    Err(Failure::up("bundle rejected flow #0: OFPET_BAD_ACTION"))
                };
                self.record(Done::Bundle { mods, accepted });
                let event = Event::BundleDone(result);
                if self.hold_bundles {
                    self.held = Some(event);
                    None
                } else {
                    Some(event)
                }
            }
            Action::PurgeDatapathCache => {
                let ok = sw.fail_purges == 0;
                sw.fail_purges = sw.fail_purges.saturating_sub(1);
                self.record(Done::Purge { ok });
                Some(Event::Purged(if ok { Ok(()) } else { Err(Failure::up("ovs-appctl: connection refused")) }))
            }
            Action::FinishFlowRestore => {
                let ok = sw.fail_restores == 0;
                sw.fail_restores = sw.fail_restores.saturating_sub(1);
                self.record(Done::FlowRestore { ok });
                Some(Event::FlowRestoreDone(if ok {
                    Ok(())
                } else {
                    Err(Failure::up("clearing flow-restore-wait: OVSDB did not answer within 5 s"))
                }))
            }
            Action::CountFlows => {
                let n = sw.flows.len();
                self.record(Done::Count);
                Some(Event::FlowsCounted(Ok(n)))
            }
            Action::Realized(r) => {
                self.realizations.push((self.elapsed(), *r));
                None
            }
            Action::WriteRecord(r) => {
                self.record(Done::Record(r));
                None
            }
            Action::PublishPodNetwork(net) => {
                self.record(Done::PodNetwork(net));
                None
            }
        }
    }

    /// Answers the bundle held back.
    fn answer_held_bundle(&mut self) {
        self.hold_bundles = false;
        let event = self.held.take().expect("a bundle held back");
        self.input(event);
    }

    /// The connection drops (the switch keeps its flows).
    fn lose_connection(&mut self, why: &str) {
        self.switch.connected = false;
        self.input(Event::SwitchLost(why.to_string()));
    }

    /// ovs-vswitchd dies: the connection closes, its flows are gone, it accepts nothing
    /// until [`World::switch_back`].
    fn kill_switch(&mut self) {
        self.switch.accepting = false;
        self.switch.flows = FlowSet::default();
        self.lose_connection("the switch closed the connection");
    }

    fn switch_back(&mut self) {
        self.switch.accepting = true;
    }

    /// A mark in the log: [`World::since`] returns what was done after it.
    fn mark(&self) -> usize {
        self.log.len()
    }

    fn since(&self, mark: usize) -> &[(Duration, Done)] {
        &self.log[mark..]
    }

    /// The names of what was done since `mark`, heartbeats and audits left out.
    fn steps_since(&self, mark: usize) -> Vec<&'static str> {
        self.since(mark).iter().map(|(_, d)| d.name()).filter(|n| *n != "count").collect()
    }

    /// When each thing named `name` was done since `mark`.
    fn times_of(&self, mark: usize, name: &str) -> Vec<Duration> {
        self.since(mark).iter().filter(|(_, d)| d.name() == name).map(|(t, _)| *t).collect()
    }

    fn bundles_since(&self, mark: usize) -> Vec<&[FlowMod]> {
        self.since(mark)
            .iter()
            .filter_map(|(_, d)| match d {
                Done::Bundle { mods, .. } => Some(mods.as_slice()),
                _ => None,
            })
            .collect()
    }

    /// The last status written.
    fn status(&self) -> &Status {
        self.log
            .iter()
            .rev()
            .find_map(|(_, d)| match d {
                Done::Status(s) => Some(&**s),
                _ => None,
            })
            .expect("a status was written")
    }

    /// Every status written since `mark`, with its time.
    fn statuses_since(&self, mark: usize) -> Vec<(Duration, &Status)> {
        self.since(mark)
            .iter()
            .filter_map(|(t, d)| match d {
                Done::Status(s) => Some((*t, &**s)),
                _ => None,
            })
            .collect()
    }
}

/// Every record written since `mark`.
fn records_since(w: &World, mark: usize) -> Vec<Record> {
    w.since(mark)
        .iter()
        .filter_map(|(_, d)| match d {
            Done::Record(r) => Some(*r),
            _ => None,
        })
        .collect()
}

/// The flows an agent started afresh on `docs` installs.
fn flows_of(docs: &str) -> FlowSet {
    World::realized(Switch::fixed(), docs).switch.flows
}

/// A flow weir did not install.
fn foreign_flow() -> Flow {
    Flow { table_id: 0, priority: 12345, cookie: 0xdead, ..Flow::default() }
}

// ---------------------------------------------------------------- starting

#[test]
fn nothing_is_realized_before_both_the_manifests_and_the_interfaces_arrived() {
    let mut w = World::new(Switch::fixed());
    assert_eq!(w.steps_since(0), ["status"], "a starting agent writes its status at once");
    w.input(manifests(&format!("{BASE}{}", policy("p", 80)), "t1"));
    w.advance(Duration::from_secs(10));
    assert!(!w.steps_since(0).contains(&"connect"), "manifests alone realize nothing: {:?}", w.steps_since(0));
    assert!(!w.status().realized);
    assert_eq!(w.status().last_error.as_deref(), Some("not realized yet: waiting for the manifests and the bridge's interfaces"));

    let mark = w.mark();
    w.input(bridge());
    w.advance(COALESCE - ms(1));
    assert!(w.steps_since(mark).is_empty(), "the coalescing pause first");
    w.advance(ms(1));
    assert_eq!(w.steps_since(mark), ["connect", "read-switch", "bundle", "flow-restore", "status"]);
    assert!(w.status().realized);
    assert_eq!(w.status().source_token.as_deref(), Some("t1"));
    assert_eq!(w.status().generation, 1);
    assert_eq!(w.status().local_pods, 2);
    assert_eq!(w.status().objects["Pod"], 3);
    assert_eq!(w.status().flows.values().sum::<usize>(), w.switch.flows.len());
}

#[test]
fn interfaces_alone_realize_nothing_either() {
    let mut w = World::new(Switch::fixed());
    w.input(bridge());
    w.advance(Duration::from_secs(10));
    assert!(!w.steps_since(0).contains(&"connect"), "{:?}", w.steps_since(0));
    w.input(manifests(BASE, "t1"));
    w.advance(COALESCE);
    assert_eq!(w.status().source_token.as_deref(), Some("t1"));
}

#[test]
fn flow_restore_wait_is_cleared_only_after_the_flows_are_installed_and_once_per_connection() {
    let mut w = World::realized(Switch::fixed(), BASE);
    let first = w.steps_since(0);
    let bundle = first.iter().position(|s| *s == "bundle").unwrap();
    let restore = first.iter().position(|s| *s == "flow-restore").unwrap();
    assert!(bundle < restore, "{first:?}");

    let mark = w.mark();
    w.input(manifests(&format!("{BASE}{}", policy("p", 80)), "t1"));
    w.advance(ms(10));
    assert_eq!(w.steps_since(mark), ["bundle", "status"], "a later change on the same connection");

    let mark = w.mark();
    w.lose_connection("the switch sent nothing for 3.0 s, not even an echo reply");
    w.advance(ms(10));
    assert_eq!(w.times_of(mark, "flow-restore").len(), 1, "again on the new connection: {:?}", w.steps_since(mark));
}

// ---------------------------------------------------------------- coalescing

#[test]
fn a_burst_of_snapshots_is_coalesced_into_one_bundle() {
    let mut w = World::realized(Switch::fixed(), BASE);
    let mark = w.mark();
    let t0 = w.elapsed();
    let mut docs = BASE.to_string();
    for i in 0..4 {
        docs.push_str(&policy(&format!("p{i}"), 80 + i));
        w.input(manifests(&docs, &format!("t{i}")));
        w.advance(ms(1));
    }
    w.advance(ms(100));
    assert_eq!(w.times_of(mark, "bundle"), [t0 + COALESCE], "one bundle, one pause after the first snapshot");
    assert_eq!(w.switch.flows, flows_of(&docs), "the switch holds the last snapshot's flows");
    assert_eq!(w.status().source_token.as_deref(), Some("t3"));
    assert_eq!(w.status().generation, 2);
}

#[test]
fn a_snapshot_that_changes_nothing_sends_no_bundle_but_reports_its_token() {
    let mut w = World::realized(Switch::fixed(), BASE);
    let mark = w.mark();
    w.input(manifests(BASE, "t1"));
    w.advance(ms(10));
    assert_eq!(w.steps_since(mark), ["status"]);
    assert_eq!(w.status().source_token.as_deref(), Some("t1"));
    assert_eq!(w.status().last_flow_mods, 0);
    assert_eq!(w.status().generation, 1, "no new generation without a change");
}

#[test]
fn a_change_that_arrives_during_a_bundle_is_realized_right_after_it() {
    let mut w = World::realized(Switch::fixed(), BASE);
    let mark = w.mark();
    w.hold_bundles = true;
    let one = format!("{BASE}{}", policy("p1", 81));
    w.input(manifests(&one, "t1"));
    w.advance(ms(10));
    assert_eq!(w.steps_since(mark), ["bundle"], "the bundle is outstanding");
    let two = format!("{one}{}", policy("p2", 82));
    w.input(manifests(&two, "t2"));
    w.advance(ms(100));
    assert_eq!(w.steps_since(mark), ["bundle"], "nothing else while the bundle is outstanding (heartbeats aside)");

    w.answer_held_bundle();
    assert_eq!(w.status().source_token.as_deref(), Some("t1"), "the pass that sent the bundle reports its own token");
    w.advance(ms(10));
    assert_eq!(w.bundles_since(mark).len(), 2);
    assert_eq!(w.status().source_token.as_deref(), Some("t2"));
    assert_eq!(w.switch.flows, flows_of(&two));
}

// ---------------------------------------------------------------- realization reports (metrics)

#[test]
fn a_realization_reports_when_its_snapshot_arrived_and_when_the_switch_acknowledged_it() {
    let mut w = World::realized(Switch::fixed(), BASE);
    let (mark, t0) = (w.realizations.len(), w.elapsed());
    w.input(manifests(&format!("{BASE}{}", policy("p", 80)), "t1"));
    w.advance(ms(10));
    let (at, r) = &w.realizations[mark];
    assert_eq!(r.input_at, Some(w.start + t0));
    assert_eq!(r.acked_at, w.start + t0 + COALESCE, "acknowledged at the bundle's answer");
    assert_eq!(*at, t0 + COALESCE);
    let rules = r.rules.as_ref().expect("flows were sent: the rules are reported");
    let names: Vec<String> = rules.values().flat_map(|c| c.rules.iter().map(|i| i.origin.to_string())).collect();
    assert_eq!(names, ["NetworkPolicy x/p ingress[0]"]);

    // A snapshot that changes nothing is realized too, and reports no rules.
    w.input(manifests(&format!("{BASE}{}", policy("p", 80)), "t2"));
    w.advance(ms(10));
    let r = &w.realizations.last().unwrap().1;
    assert_eq!((r.flow_mods, r.rules.is_none()), (0, true));
}

#[test]
fn a_snapshot_whose_bundle_failed_counts_from_its_arrival_to_the_retry_that_realized_it() {
    let mut w = World::realized(Switch::fixed(), BASE);
    w.switch.reject_bundles = 1;
    let (mark, t0) = (w.realizations.len(), w.elapsed());
    w.input(manifests(&format!("{BASE}{}", policy("p", 80)), "t1"));
    w.advance(Duration::from_secs(1));
    assert_eq!(w.realizations.len(), mark + 1, "one realization, by the retry");
    let r = &w.realizations[mark].1;
    assert_eq!(r.input_at, Some(w.start + t0));
    assert_eq!(r.acked_at - w.start, t0 + COALESCE + BACKOFF[0] + COALESCE);
}

// ---------------------------------------------------------------- losing the switch

#[test]
fn a_lost_switch_makes_the_status_unrealized_at_once_and_reconnects_per_the_backoff_table() {
    let mut w = World::realized(Switch::fixed(), BASE);
    let before = w.switch.flows.clone();
    let mark = w.mark();
    let lost = w.elapsed();
    w.kill_switch();

    let (when, status) = w.statuses_since(mark)[0];
    assert_eq!(when, lost, "written at the moment the connection is lost");
    assert!(!status.realized);
    assert_eq!(
        status.last_error.as_deref(),
        Some("OpenFlow connection to unix:/run/openvswitch/br-int.mgmt lost: the switch closed the connection; reconnecting")
    );

    w.advance(Duration::from_secs(1));
    let attempts = w.times_of(mark, "connect (refused)");
    // Each attempt comes one reconnect delay (and the coalescing pause) after the last.
    let mut expected = vec![lost + COALESCE];
    for i in 0..5 {
        expected.push(expected[i] + RECONNECT[i.min(RECONNECT.len() - 1)] + COALESCE);
    }
    assert_eq!(&attempts[..6], expected.as_slice());
    assert!(!w.status().realized);
    assert!(
        w.status().last_error.as_deref().unwrap().starts_with("connecting to unix:/run/openvswitch/br-int.mgmt: Connection refused"),
        "{:?}",
        w.status().last_error
    );

    // The restarted switch accepts: the next attempt connects and puts every flow back.
    w.switch_back();
    let mark = w.mark();
    let back = w.elapsed();
    w.advance(RECONNECT[RECONNECT.len() - 1] + COALESCE);
    assert_eq!(w.steps_since(mark), ["connect", "read-switch", "bundle", "flow-restore", "status"]);
    assert!(w.times_of(mark, "connect")[0] - back <= RECONNECT[RECONNECT.len() - 1] + COALESCE);
    assert_eq!(w.switch.flows, before);
    assert!(w.status().realized);
    assert_eq!(w.status().last_error, None);
}

#[test]
fn a_reconnect_reads_the_flows_back_and_sends_only_the_difference() {
    let mut w = World::realized(Switch::fixed(), BASE);
    let before = w.switch.flows.clone();
    // While the connection is down, someone deletes one of weir's flows and adds one.
    let victim = before.iter().nth(before.len() / 2).unwrap().clone();
    w.switch.flows.remove(&key(&victim));
    w.switch.flows.insert(foreign_flow());

    let mark = w.mark();
    w.lose_connection("no reply to OFPT_BARRIER_REQUEST within 5.0 s");
    w.advance(ms(10));
    assert_eq!(w.steps_since(mark), ["status", "connect", "read-switch", "bundle", "flow-restore", "status"]);
    let bundles = w.bundles_since(mark);
    let sent: Vec<(FlowModCommand, &Flow)> = bundles[0].iter().map(|m| (m.command, &m.flow)).collect();
    assert_eq!(sent, [(FlowModCommand::Add, &victim), (FlowModCommand::DeleteStrict, &foreign_flow())]);
    assert_eq!(w.switch.flows, before);
}

#[test]
fn a_reconnect_to_a_switch_that_kept_its_flows_sends_nothing() {
    let mut w = World::realized(Switch::fixed(), BASE);
    let mark = w.mark();
    w.lose_connection("the connection failed: Broken pipe");
    w.advance(ms(10));
    assert_eq!(w.steps_since(mark), ["status", "connect", "read-switch", "flow-restore", "status"]);
    assert!(w.status().realized);
}

#[test]
fn a_bundle_that_finds_the_connection_down_reconnects_after_the_short_delay() {
    let mut w = World::realized(Switch::fixed(), BASE);
    let mark = w.mark();
    // The connection dies under the bundle: the driver reports the failure as connection-down.
    w.hold_bundles = true;
    w.input(manifests(&format!("{BASE}{}", policy("p", 80)), "t1"));
    w.advance(ms(10));
    w.hold_bundles = false;
    w.held = None;
    let failed = w.elapsed();
    w.switch.connected = false;
    w.input(Event::BundleDone(Err(Failure::down("OpenFlow connection down: the switch closed the connection"))));
    assert_eq!(w.steps_since(mark), ["bundle", "disconnect", "status"]);
    assert!(w.status().last_error.as_deref().unwrap().starts_with("installing "), "{:?}", w.status().last_error);

    w.advance(ms(100));
    assert_eq!(w.times_of(mark, "connect"), [failed + RECONNECT[0] + COALESCE]);
    assert_eq!(w.status().source_token.as_deref(), Some("t1"));
}

#[test]
fn a_connection_lost_under_a_bundle_abandons_the_pass_and_the_next_connection_starts_over() {
    let mut w = World::realized(Switch::fixed(), BASE);
    w.hold_bundles = true;
    let docs = format!("{BASE}{}", policy("p", 80));
    w.input(manifests(&docs, "t1"));
    w.advance(ms(10));
    // The switch applied the bundle, but the connection died before its answer came.
    w.lose_connection("the switch closed the connection");
    w.answer_held_bundle();
    assert!(!w.status().realized, "a late answer to an abandoned pass realizes nothing");
    assert_eq!(w.status().source_token.as_deref(), Some("t0"));

    let mark = w.mark();
    w.advance(ms(10));
    assert_eq!(w.steps_since(mark), ["connect", "read-switch", "flow-restore", "status"], "nothing left to send");
    assert!(w.status().realized);
    assert_eq!(w.status().source_token.as_deref(), Some("t1"));
    assert_eq!(w.switch.flows, flows_of(&docs));
}

// ---------------------------------------------------------------- failures on a live switch

#[test]
fn a_rejected_bundle_is_retried_with_backoff_and_the_flows_read_back_first() {
    let mut w = World::realized(Switch::fixed(), BASE);
    w.switch.reject_bundles = 3;
    let mark = w.mark();
    let t0 = w.elapsed();
    let docs = format!("{BASE}{}", policy("p", 80));
    w.input(manifests(&docs, "t1"));
    w.advance(ms(20));
    assert!(!w.status().realized);
    assert!(w.status().last_error.as_deref().unwrap().contains("flow_mods: bundle rejected flow #0"), "{:?}", w.status().last_error);

    w.advance(Duration::from_secs(5));
    let rejected = w.times_of(mark, "bundle (rejected)");
    let accepted = w.times_of(mark, "bundle");
    let mut expected = vec![t0 + COALESCE];
    for delay in &BACKOFF[..3] {
        expected.push(*expected.last().unwrap() + *delay + COALESCE);
    }
    assert_eq!(rejected, expected[..3]);
    assert_eq!(accepted, expected[3..]);
    assert_eq!(
        w.steps_since(mark).iter().filter(|s| !s.starts_with("status") && **s != "record").copied().collect::<Vec<_>>(),
        ["bundle (rejected)", "read-switch", "bundle (rejected)", "read-switch", "bundle (rejected)", "read-switch", "bundle"],
        "each retry reads the flows back before it diffs"
    );
    assert!(!w.steps_since(mark).contains(&"disconnect"), "the connection stays");
    assert!(w.status().realized);
    assert_eq!(w.status().source_token.as_deref(), Some("t1"));
    assert_eq!(w.switch.flows, flows_of(&docs));
}

#[test]
fn the_backoff_stays_at_its_last_delay_and_resets_after_a_success() {
    let mut w = World::realized(Switch::fixed(), BASE);
    w.switch.reject_bundles = 8;
    let mark = w.mark();
    w.input(manifests(&format!("{BASE}{}", policy("p", 80)), "t1"));
    w.advance(Duration::from_secs(30));
    let tries: Vec<Duration> = w.since(mark).iter().filter(|(_, d)| matches!(d, Done::Bundle { .. })).map(|(t, _)| *t).collect();
    let gaps: Vec<Duration> = tries.windows(2).map(|p| p[1] - p[0] - COALESCE).collect();
    assert_eq!(gaps, [BACKOFF[0], BACKOFF[1], BACKOFF[2], BACKOFF[3], BACKOFF[4], BACKOFF[4], BACKOFF[4], BACKOFF[4]]);

    w.switch.reject_bundles = 1;
    let mark = w.mark();
    w.input(manifests(&format!("{BASE}{}", policy("q", 81)), "t2"));
    w.advance(Duration::from_secs(1));
    let tries: Vec<Duration> = w.since(mark).iter().filter(|(_, d)| matches!(d, Done::Bundle { .. })).map(|(t, _)| *t).collect();
    assert_eq!(tries[1] - tries[0] - COALESCE, BACKOFF[0], "a new streak starts from the first delay");
}

#[test]
fn a_failed_flow_restore_leaves_the_status_unrealized_and_is_retried() {
    let mut switch = Switch::fixed();
    switch.fail_restores = 1;
    let mut w = World::new(switch);
    w.input(manifests(BASE, "t0"));
    w.input(bridge());
    w.advance(ms(10));
    assert!(!w.status().realized, "installed, but a waiting switch may not forward yet");
    assert_eq!(w.status().last_error.as_deref(), Some("clearing flow-restore-wait: OVSDB did not answer within 5 s"));
    let mark = w.mark();
    w.advance(BACKOFF[0] + COALESCE);
    assert_eq!(w.steps_since(mark), ["flow-restore", "status"], "retried without resending flows");
    assert!(w.status().realized);
    assert_eq!(w.status().source_token.as_deref(), Some("t0"));
}

// ---------------------------------------------------------------- the datapath cache purge

#[test]
fn the_datapath_cache_is_purged_after_each_bundle_on_an_affected_switch() {
    let mut w = World::realized(Switch::of(Some("3.1.0"), "netdev"), BASE);
    assert_eq!(w.steps_since(0)[1..], ["connect", "read-switch", "bundle", "purge", "flow-restore", "status"]);
    let report = w.status().switch.clone().unwrap();
    assert!(report.purges_after_change);
    assert_eq!(report.ovs_version.as_deref(), Some("3.1.0"));
    assert_eq!(w.status().datapath_cache_purges, 1);

    let mark = w.mark();
    w.input(manifests(&format!("{BASE}{}", policy("p", 80)), "t1"));
    w.advance(ms(10));
    assert_eq!(w.steps_since(mark), ["bundle", "purge", "status"]);
    assert_eq!(w.status().datapath_cache_purges, 2);

    let mark = w.mark();
    w.input(manifests(&format!("{BASE}{}", policy("p", 80)), "t2"));
    w.advance(ms(10));
    assert_eq!(w.steps_since(mark), ["status"], "no change, no bundle, no purge");
    assert_eq!(w.status().datapath_cache_purges, 2);
}

#[test]
fn whether_the_datapath_cache_is_purged_depends_on_the_switch_and_the_setting() {
    let cases = [
        (Some("3.1.0"), "netdev", CachePurge::Auto, true),
        (Some("3.1.3"), "netdev", CachePurge::Auto, false),
        (Some("3.5.0"), "netdev", CachePurge::Auto, false),
        (Some("3.1.0"), "system", CachePurge::Auto, false),
        (None, "netdev", CachePurge::Auto, true),
        (Some("3.5.0"), "netdev", CachePurge::Always, true),
        (Some("3.1.0"), "netdev", CachePurge::Never, false),
    ];
    for (version, datapath, mode, purges) in cases {
        let mut w = World::with_purge(Switch::of(version, datapath), mode);
        w.input(manifests(BASE, "t0"));
        w.input(bridge());
        w.advance(ms(10));
        w.input(manifests(&format!("{BASE}{}", policy("p", 80)), "t1"));
        w.advance(ms(10));
        let n = w.times_of(0, "purge").len();
        assert_eq!(n, if purges { 2 } else { 0 }, "{version:?} {datapath} {mode:?}: {:?}", w.steps_since(0));
        assert_eq!(w.status().datapath_cache_purges, n as u64);
        assert_eq!(w.status().switch.as_ref().unwrap().purges_after_change, purges);
        assert!(w.status().realized);
    }
}

#[test]
fn a_failed_purge_stays_owed_and_is_retried() {
    let mut w = World::realized(Switch::of(Some("3.1.0"), "netdev"), BASE);
    w.switch.fail_purges = 1;
    let mark = w.mark();
    w.input(manifests(&format!("{BASE}{}", policy("p", 80)), "t1"));
    w.advance(ms(10));
    assert_eq!(w.steps_since(mark), ["bundle", "purge (failed)", "status"]);
    assert!(!w.status().realized, "a denied packet could still pass on a stale cached flow");
    assert_eq!(w.status().last_error.as_deref(), Some("purging the datapath's cached flows: ovs-appctl: connection refused"));
    assert_eq!(w.status().source_token.as_deref(), Some("t0"));

    let mark = w.mark();
    w.advance(BACKOFF[0] + COALESCE);
    assert_eq!(w.steps_since(mark), ["purge", "status"], "the purge is owed though there is nothing new to send");
    assert!(w.status().realized);
    assert_eq!(w.status().source_token.as_deref(), Some("t1"));
    assert_eq!(w.status().datapath_cache_purges, 2);
}

// ---------------------------------------------------------------- timers

#[test]
fn an_idle_agent_rewrites_its_status_every_two_seconds_and_audits_every_five() {
    let mut w = World::realized(Switch::fixed(), BASE);
    let mark = w.mark();
    w.advance(Duration::from_secs(10) - w.elapsed());
    let secs = |v: Vec<Duration>| v.into_iter().map(|d| d.as_secs_f64()).collect::<Vec<_>>();
    assert_eq!(secs(w.times_of(mark, "status")), [2.0, 4.0, 6.0, 8.0, 10.0]);
    assert_eq!(secs(w.times_of(mark, "count")), [5.0, 10.0]);
    assert_eq!(
        w.steps_since(mark),
        ["record", "status", "status", "status", "status", "status"],
        "nothing else happens but the record of the realization, once quiet"
    );
    assert_eq!(w.times_of(mark, "record"), [w.times_of(0, "flow-restore")[0] + RECORD_QUIET]);
    assert!(w.statuses_since(mark).iter().all(|(_, s)| s.realized && s.source_token.as_deref() == Some("t0")));
}

#[test]
fn heartbeats_missed_while_the_loop_stalled_are_not_burst_afterwards() {
    let mut w = World::realized(Switch::fixed(), BASE);
    w.advance(Duration::from_secs(2) - w.elapsed());
    let mark = w.mark();
    w.stall(Duration::from_secs(7));
    assert_eq!(w.times_of(mark, "status"), [Duration::from_secs(9)], "one write, not three");
    w.advance(Duration::from_secs(2));
    assert_eq!(w.times_of(mark, "status"), [Duration::from_secs(9), Duration::from_secs(11)]);
}

#[test]
fn flows_changed_behind_weirs_back_are_found_by_the_audit_and_corrected() {
    let mut w = World::realized(Switch::fixed(), BASE);
    let before = w.switch.flows.clone();
    let victim = before.iter().next().unwrap().clone();
    w.switch.flows.remove(&key(&victim)); // ovs-ofctl del-flows, say
    let mark = w.mark();
    w.advance(AUDIT + ms(10) - w.elapsed());
    assert_eq!(w.times_of(mark, "count"), [AUDIT]);
    assert_eq!(w.times_of(mark, "read-switch"), [AUDIT + COALESCE], "read back after the audit");
    assert_eq!(w.bundles_since(mark), [[FlowMod::add(victim)].as_slice()]);
    assert_eq!(w.switch.flows, before);
    assert!(!w.steps_since(mark).contains(&"connect"), "on the same connection");
}

#[test]
fn no_audit_runs_while_the_switch_is_disconnected() {
    let mut w = World::realized(Switch::fixed(), BASE);
    w.kill_switch();
    let mark = w.mark();
    w.advance(Duration::from_secs(12));
    assert!(w.times_of(mark, "count").is_empty());
}

// ---------------------------------------------------------------- inputs that cannot be used

#[test]
fn a_compiler_panic_keeps_the_installed_flows_and_waits_for_the_next_change() {
    let mut w = World::realized(Switch::fixed(), BASE);
    let before = w.switch.flows.clone();
    w.agent.fail_next_compile = true;
    let mark = w.mark();
    w.input(manifests(&format!("{BASE}{}", policy("p", 80)), "t1"));
    w.advance(ms(10));
    assert_eq!(w.steps_since(mark), ["status"]);
    assert!(!w.status().realized);
    assert_eq!(w.status().last_error.as_deref(), Some("internal compiler error, installed flows kept: injected compiler fault"));
    assert_eq!(w.switch.flows, before, "installed flows kept");
    w.advance(Duration::from_secs(10));
    assert!(w.bundles_since(mark).is_empty(), "no retry: the same input would panic again");

    // The next change compiles from scratch and sends only what differs from the switch.
    let docs = format!("{BASE}{}", policy("p", 80)) + &policy("q", 81);
    w.input(manifests(&docs, "t2"));
    w.advance(ms(10));
    assert!(w.status().realized);
    assert_eq!(w.status().source_token.as_deref(), Some("t2"));
    assert_eq!(w.switch.flows, flows_of(&docs));
    let expected = diff(&flows_of(&docs), &before);
    assert_eq!(w.bundles_since(mark), [expected.as_slice()]);
}

#[test]
fn without_its_node_object_the_node_fails_closed_and_says_why() {
    let no_node = BASE.replacen("apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nspec: {podCIDR: 10.0.1.0/24}\nstatus: {addresses: [{type: InternalIP, address: 192.168.1.1}]}\n---\n", "", 1);
    assert!(!no_node.contains("name: n1}"));
    let mut w = World::realized(Switch::fixed(), &no_node);
    assert_eq!(w.switch.flows, miss_flows(), "only the table-miss flows: everything drops");
    assert_eq!(w.status().warnings, ["node \"n1\" is not in the cluster view or has no IPv4 pod CIDR: all traffic is dropped"]);

    // The Node appears: forwarding and policy come back, the warning goes.
    w.input(manifests(BASE, "t1"));
    w.advance(ms(10));
    assert_eq!(w.switch.flows, flows_of(BASE));
    assert!(w.status().warnings.is_empty());
}

#[test]
fn an_interface_that_cannot_be_moved_is_in_the_status_until_it_is_moved() {
    let mut w = World::realized(Switch::fixed(), BASE);
    w.input(Event::InterfaceMoveFailures(BTreeMap::from([("eth7".into(), "no such interface".into())])));
    let e = &w.status().errors[0];
    assert_eq!((e.object.as_str(), e.field.as_str()), ("Node n1", "--external-interface"), "{e}");
    assert!(e.message.contains("\"eth7\"") && e.message.contains("no such interface"), "{e}");
    assert!(w.status().realized, "the rest stays enforced");
    w.input(Event::InterfaceMoveFailures(BTreeMap::new()));
    assert!(w.status().errors.is_empty());
}

/// An Antrea node policy (appliedTo.nodeSelector) dropping port 22 to nodes labelled `role`.
fn node_policy(name: &str, role: &str) -> String {
    format!(
        "---\napiVersion: crd.antrea.io/v1beta1\nkind: ClusterNetworkPolicy\nmetadata: {{name: {name}}}\nspec:\n  priority: 5\n  \
         appliedTo: [{{nodeSelector: {{matchLabels: {{role: {role}}}}}}}]\n  ingress: [{{action: Drop, ports: [{{protocol: TCP, port: 22}}]}}]\n"
    )
}

#[test]
fn a_node_policy_is_reported_as_not_realized_without_a_node_policy_realization_and_leaves_the_pod_flows_alone() {
    let worker = BASE.replacen("metadata: {name: n1}", "metadata: {name: n1, labels: {role: worker}}", 1);
    let docs = format!("{worker}{}{}", policy("p", 80), node_policy("ssh", "worker"));
    let w = World::realized(Switch::fixed(), &docs);
    assert_eq!(w.switch.flows, flows_of(&format!("{worker}{}", policy("p", 80))), "no flow for the node's rules");
    assert_eq!(
        w.status().warnings,
        [
            "ClusterNetworkPolicy.crd.antrea.io ssh applies to node n1: node policy is not realized (run the agent with --node-policy nftables or ovs)"
        ]
    );
    // With the node firewall the policy is realized there: no warning, the same flows.
    let w = World::with_settings_realized(Switch::fixed(), &docs, |s| s.node_firewall = true);
    assert_eq!(w.switch.flows, flows_of(&format!("{worker}{}", policy("p", 80))));
    assert!(w.status().warnings.is_empty(), "{:?}", w.status().warnings);
    // On the bridge (--node-policy ovs) the node's rules are compiled on its gateway port.
    let with_gateway = |s: &mut Settings| s.node_policy_ovs = true;
    let mut w = World::with_settings_realized(Switch::fixed(), &docs, with_gateway);
    assert!(w.status().warnings.is_empty(), "{:?}", w.status().warnings);
    let pods_only: std::collections::BTreeSet<String> = w.switch.flows.iter().map(ToString::to_string).collect();
    let mut ports = match bridge() {
        Event::Interfaces(i) => (*i).clone(),
        _ => unreachable!(),
    };
    let (name, row) = interface(9, ovsdb::cni::GATEWAY_PORT, 7, &[]);
    ports.insert(name, row);
    w.input(Event::Interfaces(Arc::new(ports)));
    w.advance(ms(10));
    let on_gateway: Vec<String> = w.switch.flows.iter().map(ToString::to_string).filter(|f| !pods_only.contains(f)).collect();
    assert!(
        on_gateway.iter().any(|f| f.contains("reg1=0x7") && f.contains("conjunction(")),
        "the rule's applied-to clause: {on_gateway:#?}"
    );
    assert!(on_gateway.iter().any(|f| f.contains("tp_dst=22") && f.contains("conjunction(")), "its port clause: {on_gateway:#?}");
    let nowhere = format!("{worker}{}", node_policy("gpu", "gpu"));
    let w = World::realized(Switch::fixed(), &nowhere);
    assert_eq!(
        w.status().warnings,
        [
            "cluster.yaml: ClusterNetworkPolicy.crd.antrea.io gpu: spec.appliedTo[0].nodeSelector: selects no Node: the policy applies to no host here"
        ]
    );
}

#[test]
fn an_unreadable_manifests_directory_keeps_the_last_snapshot_in_force() {
    let mut w = World::new(Switch::fixed());
    w.input(Event::ManifestsUnreadable("manifests directory /m does not exist".into()));
    assert_eq!(
        w.status().source_warning.as_deref(),
        Some("manifests directory /m does not exist: nothing is realized until it can be read")
    );

    let mut w = World::realized(Switch::fixed(), BASE);
    let before = w.switch.flows.clone();
    let mark = w.mark();
    let at = w.elapsed();
    w.input(Event::ManifestsUnreadable("manifests directory /m does not exist".into()));
    assert_eq!(w.statuses_since(mark).len(), 1);
    assert_eq!(w.statuses_since(mark)[0].0, at, "reported at once");
    assert_eq!(w.status().source_warning.as_deref(), Some("manifests directory /m does not exist: the last snapshot read stays in force"));
    assert!(w.status().realized);
    w.advance(Duration::from_secs(3));
    assert!(w.bundles_since(mark).is_empty());
    assert_eq!(w.switch.flows, before);

    w.input(manifests(BASE, "t1"));
    w.advance(ms(10));
    assert_eq!(w.status().source_warning, None, "readable again");
}

#[test]
fn rejected_objects_and_contract_violations_are_in_the_status() {
    let bad_pod = "---\napiVersion: v1\nkind: Pod\nmetadata: {name: d, namespace: x}\nspec: {nodeName: n1}\nstatus: {podIP: not-an-ip}\n";
    let cluster = Cluster::from_sources([("cluster.yaml", format!("{BASE}{bad_pod}").as_str())]);
    let mut w = World::new(Switch::fixed());
    w.input(Event::Manifests { cluster: Box::new(cluster), token: None });
    let mut ports = match bridge() {
        Event::Interfaces(i) => (*i).clone(),
        _ => unreachable!(),
    };
    let (name, row) = interface(9, "veth-e", 5, &[("iface-id", "x/e")]);
    ports.insert(name, row);
    w.input(Event::Interfaces(Arc::new(ports)));
    w.advance(ms(10));
    let errors: Vec<String> = w.status().errors.iter().map(ToString::to_string).collect();
    assert!(errors.iter().any(|e| e.contains("Pod x/d") && e.contains("status.podIP")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("Interface veth-e")), "{errors:?}");
    assert!(w.status().realized, "the rest is enforced");
}

// ---------------------------------------------------------------- TrafficControl ports

#[test]
fn traffic_control_ports_are_ensured_before_the_flows_that_use_them() {
    let mirror = "---\napiVersion: crd.antrea.io/v1alpha2\nkind: TrafficControl\nmetadata: {name: mirror-x-a}\n\
                  spec:\n  appliedTo:\n    podSelector: {matchLabels: {app: a}}\n  direction: Egress\n  action: Mirror\n  \
                  targetPort: {ovsInternal: {name: tap0}}\n";
    let mut w = World::new(Switch::fixed());
    w.input(manifests(&format!("{BASE}{mirror}"), "t0"));
    w.input(bridge());
    w.advance(ms(10));
    assert_eq!(w.steps_since(0)[1..], ["tc-ports", "connect", "read-switch", "bundle", "flow-restore", "status"]);
    assert!(matches!(&w.log[1].1, Done::TcPorts(names) if names == &["tap0"]));
    let report = &w.status().traffic_controls["mirror-x-a"];
    assert!(report.realized, "{report:?}");
    assert_eq!(report.pods, ["x/a"]);

    // Without TrafficControls and without weir's ports on the bridge, OVSDB is not asked.
    let w = World::realized(Switch::fixed(), BASE);
    assert!(!w.steps_since(0).contains(&"tc-ports"));
}

mod pod_network;
mod record;
