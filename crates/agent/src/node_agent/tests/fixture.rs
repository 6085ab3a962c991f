//! What the tests share: the cluster and the bridge they realize, and the simulated [`World`]
//! (a switch, OVSDB and a virtual clock) that performs the agent's actions and records them.

use crate::cni_conf::PodNetwork;
use crate::node_agent::{Action, Event, Failure, NodeAgent, Realization, Settings, SwitchFacts, TUNNEL_PORT, weirs_flows};
use crate::ovs_bugs::{CachePurge, OvsVersion};
use crate::realization_record::Record;
use crate::status::Status;
use crate::tc_ports::Reconciled;
use openflow::{Flow, FlowMod, FlowModCommand};
use ovsdb::datum::Uuid;
use ovsdb::tables::Interface;
use pipeline::FlowSet;
use pipeline::flow::key;
use policy::Cluster;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- the cluster and the bridge

const NODE: &str = "n1";
const SWITCH: &str = "unix:/run/openvswitch/br-int.mgmt";

/// Two nodes; x/a and x/b on n1, x/c on n2.
pub(super) const BASE: &str = "\
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
pub(super) fn policy(name: &str, port: u16) -> String {
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

pub(super) fn manifests(docs: &str, token: &str) -> Event {
    Event::Manifests { cluster: Box::new(view(docs)), token: Some(token.to_string()) }
}

pub(super) fn interface(i: u128, name: &str, ofport: i64, ids: &[(&str, &str)]) -> (String, Interface) {
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

pub(super) fn pod_port(i: u128, pod: &str, ofport: i64, ip: &str, mac: &str) -> (String, Interface) {
    let iface_id = format!("x/{pod}");
    interface(
        i,
        &format!("veth-{pod}"),
        ofport,
        &[("iface-id", &iface_id), ("pod-namespace", "x"), ("pod-name", pod), ("ip-address", ip), ("attached-mac", mac)],
    )
}

/// n1's bridge: the tunnel port and the ports of x/a and x/b.
pub(super) fn bridge() -> Event {
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
pub(super) struct Switch {
    /// Whether its socket accepts connections.
    pub(super) accepting: bool,
    pub(super) connected: bool,
    pub(super) flows: FlowSet,
    version: Option<&'static str>,
    datapath_type: &'static str,
    /// How many of the next bundles it rejects (the connection stays up).
    pub(super) reject_bundles: usize,
    /// How many of the next purges fail.
    pub(super) fail_purges: usize,
    /// How many of the next flow-restore-wait clearings fail.
    pub(super) fail_restores: usize,
}

impl Switch {
    /// A fixed OVS (no known bug) on the userspace datapath.
    pub(super) fn fixed() -> Switch {
        Switch::of(Some("3.5.0"), "netdev")
    }

    pub(super) fn of(version: Option<&'static str>, datapath_type: &'static str) -> Switch {
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
pub(super) enum Done {
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
pub(super) struct World {
    pub(super) agent: NodeAgent,
    pub(super) start: Instant,
    now: Instant,
    pub(super) switch: Switch,
    /// Everything done, with its time since the start.
    pub(super) log: Vec<(Duration, Done)>,
    /// A bundle result held back (see [`World::hold_bundles`]).
    pub(super) held: Option<Event>,
    pub(super) hold_bundles: bool,
    /// Every realization reported, with its time since the start.
    pub(super) realizations: Vec<(Duration, Realization)>,
}

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

impl World {
    pub(super) fn new(switch: Switch) -> World {
        World::with_purge(switch, CachePurge::Auto)
    }

    /// A restarted agent on `switch` (its flows kept), which recalls `record` from the state
    /// directory before its inputs arrive.
    pub(super) fn restarted(mut switch: Switch, record: Record) -> World {
        switch.connected = false;
        let mut w = World::new(switch);
        w.agent.recall(record);
        w
    }

    pub(super) fn with_purge(switch: Switch, datapath_cache_purge: CachePurge) -> World {
        World::with_settings(switch, |s| s.datapath_cache_purge = datapath_cache_purge)
    }

    /// A world whose agent's settings are the usual ones as `change` leaves them.
    pub(super) fn with_settings(switch: Switch, change: impl FnOnce(&mut Settings)) -> World {
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
    pub(super) fn realized(switch: Switch, docs: &str) -> World {
        World::with_settings_realized(switch, docs, |_| {})
    }

    /// As [`World::realized`], with settings as `change` leaves them.
    pub(super) fn with_settings_realized(switch: Switch, docs: &str, change: impl FnOnce(&mut Settings)) -> World {
        let mut w = World::with_settings(switch, change);
        w.input(manifests(docs, "t0"));
        w.input(bridge());
        w.advance(ms(10));
        assert_eq!(w.status().source_token.as_deref(), Some("t0"), "realized at the start");
        assert!(w.status().realized);
        w
    }

    /// Virtual time since the start.
    pub(super) fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    pub(super) fn input(&mut self, event: Event) {
        self.agent.handle(self.now, event);
        self.perform_all();
    }

    /// Lets `d` pass, waking the agent whenever it asked to be.
    pub(super) fn advance(&mut self, d: Duration) {
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
    pub(super) fn stall(&mut self, d: Duration) {
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
    pub(super) fn answer_held_bundle(&mut self) {
        self.hold_bundles = false;
        let event = self.held.take().expect("a bundle held back");
        self.input(event);
    }

    /// The connection drops (the switch keeps its flows).
    pub(super) fn lose_connection(&mut self, why: &str) {
        self.switch.connected = false;
        self.input(Event::SwitchLost(why.to_string()));
    }

    /// ovs-vswitchd dies: the connection closes, its flows are gone, it accepts nothing
    /// until [`World::switch_back`].
    pub(super) fn kill_switch(&mut self) {
        self.switch.accepting = false;
        self.switch.flows = FlowSet::default();
        self.lose_connection("the switch closed the connection");
    }

    pub(super) fn switch_back(&mut self) {
        self.switch.accepting = true;
    }

    /// A mark in the log: [`World::since`] returns what was done after it.
    pub(super) fn mark(&self) -> usize {
        self.log.len()
    }

    pub(super) fn since(&self, mark: usize) -> &[(Duration, Done)] {
        &self.log[mark..]
    }

    /// The names of what was done since `mark`, heartbeats and audits left out.
    pub(super) fn steps_since(&self, mark: usize) -> Vec<&'static str> {
        self.since(mark).iter().map(|(_, d)| d.name()).filter(|n| *n != "count").collect()
    }

    /// When each thing named `name` was done since `mark`.
    pub(super) fn times_of(&self, mark: usize, name: &str) -> Vec<Duration> {
        self.since(mark).iter().filter(|(_, d)| d.name() == name).map(|(t, _)| *t).collect()
    }

    pub(super) fn bundles_since(&self, mark: usize) -> Vec<&[FlowMod]> {
        self.since(mark)
            .iter()
            .filter_map(|(_, d)| match d {
                Done::Bundle { mods, .. } => Some(mods.as_slice()),
                _ => None,
            })
            .collect()
    }

    /// The last status written.
    pub(super) fn status(&self) -> &Status {
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
    pub(super) fn statuses_since(&self, mark: usize) -> Vec<(Duration, &Status)> {
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
pub(super) fn records_since(w: &World, mark: usize) -> Vec<Record> {
    w.since(mark)
        .iter()
        .filter_map(|(_, d)| match d {
            Done::Record(r) => Some(*r),
            _ => None,
        })
        .collect()
}

/// The flows an agent started afresh on `docs` installs.
pub(super) fn flows_of(docs: &str) -> FlowSet {
    World::realized(Switch::fixed(), docs).switch.flows
}

/// A flow weir did not install.
pub(super) fn foreign_flow() -> Flow {
    Flow { table_id: 0, priority: 12345, cookie: 0xdead, ..Flow::default() }
}
