//! Random clusters and NetworkPolicies for the oracle-vs-switch test, from a seeded RNG.
//!
//! A cluster has one local node (whose pods get ports on the test bridge) and one remote node
//! (reached through the tunnel), namespaces and pods with labels from a small vocabulary (so
//! selectors actually select something), and container ports where one name maps to different
//! numbers on different pods. Policies use every NetworkPolicy feature the oracle knows: pod and
//! namespace selectors alone and combined, matchLabels and all matchExpressions operators,
//! ipBlocks with except, numeric, named and endPort ports, TCP/UDP/SCTP, policyTypes variants,
//! absent vs empty lists. A few policies are deliberately invalid: they must fail closed.
//!
//! The manifests are JSON documents (valid YAML), so a failing case prints as a file
//! `weir policy eval --cluster` reads.
#![allow(dead_code)]

use policy::Protocol;
use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// The node whose pipeline is tested.
pub const LOCAL_NODE: &str = "local";
/// The other node, behind the tunnel.
pub const REMOTE_NODE: &str = "remote";
/// Pod CIDRs and tunnel endpoint addresses of the two nodes.
pub const LOCAL_POD_CIDR: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 10, 1, 0), 24);
/// The remote node's pod CIDR.
pub const REMOTE_POD_CIDR: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 10, 2, 0), 24);
/// The local node's InternalIP (tunnel endpoint).
pub const LOCAL_NODE_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 1);
/// The remote node's InternalIP; also the address of its hostNetwork pod.
pub const REMOTE_NODE_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 2);
/// At most this many local pods (the test creates one bridge port for each).
pub const MAX_LOCAL_PODS: usize = 6;

/// Addresses that belong to no pod: outside the cluster, in the cluster range but unused, and
/// the remote node itself.
pub const EXTERNALS: [Ipv4Addr; 5] = [
    Ipv4Addr::new(172, 16, 5, 5),
    Ipv4Addr::new(203, 0, 113, 9),
    Ipv4Addr::new(10, 10, 3, 7),
    Ipv4Addr::new(10, 10, 2, 200),
    REMOTE_NODE_IP,
];

const NAMESPACES: [&str; 3] = ["alpha", "beta", "gamma"];
const NS_LABELS: [(&str, &[&str]); 2] = [("team", &["red", "blue"]), ("env", &["prod", "dev"])];
const POD_LABELS: [(&str, &[&str]); 3] = [("app", &["web", "db", "api"]), ("tier", &["front", "back"]), ("canary", &["true"])];
/// Container ports a pod may declare: (name, protocol, numbers to choose from).
const CONTAINER_PORTS: [(Option<&str>, &str, &[u16]); 6] = [
    (Some("web"), "TCP", &[80, 8080]),
    (Some("web"), "UDP", &[8081]),
    (Some("dns"), "UDP", &[53, 5353]),
    (Some("sig"), "SCTP", &[9000, 9001]),
    (Some("metrics"), "TCP", &[9090]),
    (None, "TCP", &[7000]),
];
const PORT_NAMES: [&str; 5] = ["web", "dns", "sig", "metrics", "nope"];
const PORT_NUMBERS: [u16; 9] = [53, 80, 443, 5353, 7000, 8080, 8081, 9000, 9090];
const PROTOCOLS: [&str; 3] = ["TCP", "UDP", "SCTP"];

/// A seeded source of choices.
pub struct Dice(TestRng);

impl Dice {
    /// Choices determined by `seed`.
    pub fn new(seed: u64) -> Self {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        Dice(TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        self.0.random_range(0..n)
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: usize, hi: usize) -> usize {
        self.0.random_range(lo..=hi)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u32) -> bool {
        self.0.random_ratio(percent, 100)
    }

    /// One element.
    pub fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }

    /// A random 16-bit number.
    pub fn u16(&mut self) -> u16 {
        self.0.random()
    }

    /// Up to `max` distinct elements, at least `min`, in their original order.
    pub fn subset<T: Clone>(&mut self, items: &[T], min: usize, max: usize) -> Vec<T> {
        let n = self.between(min, max.min(items.len()));
        let mut idx: Vec<usize> = (0..items.len()).collect();
        for i in 0..n {
            let j = self.between(i, idx.len() - 1);
            idx.swap(i, j);
        }
        let mut chosen = idx[..n].to_vec();
        chosen.sort_unstable();
        chosen.into_iter().map(|i| items[i].clone()).collect()
    }

    /// The length of a NetworkPolicy list: `None` (absent) with `absent`%, `Some(0)` (empty)
    /// with `empty`%, else 1..=3.
    fn list_len(&mut self, absent: u32, empty: u32) -> Option<usize> {
        let roll = self.below(100) as u32;
        if roll < absent {
            None
        } else if roll < absent + empty {
            Some(0)
        } else {
            Some(self.between(1, 3))
        }
    }
}

/// A generated cluster.
pub struct RandomCluster {
    /// Every manifest, as one multi-document YAML text.
    pub yaml: String,
    /// Destination ports worth probing on any protocol: every port a pod may declare and a few
    /// more.
    pub ports: Vec<u16>,
    /// Protocol and port pairs the policies name (named ports resolved on every pod that may
    /// declare them), with the ports just outside each range.
    pub services: Vec<(Protocol, u16)>,
    /// How many policies were made invalid on purpose.
    pub invalid_policies: usize,
}

/// Generates one cluster with its policies.
pub fn generate(d: &mut Dice) -> RandomCluster {
    let mut docs = vec![node(LOCAL_NODE, LOCAL_POD_CIDR, LOCAL_NODE_IP), node(REMOTE_NODE, REMOTE_POD_CIDR, REMOTE_NODE_IP)];
    let namespaces = d.subset(&NAMESPACES, 2, 3);
    for ns in &namespaces {
        docs.push(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": labels(d, &NS_LABELS)}}));
    }
    let ports: BTreeSet<u16> = PORT_NUMBERS.into_iter().chain(CONTAINER_PORTS.iter().flat_map(|c| c.2.iter().copied())).collect();
    let mut services = BTreeSet::new();
    let n_local = d.between(2, MAX_LOCAL_PODS);
    let n_remote = d.between(1, 3);
    for i in 0..n_local + n_remote {
        let (name, node_name, ip) = if i < n_local {
            (format!("l{i}"), LOCAL_NODE, pod_ip(LOCAL_POD_CIDR, i))
        } else {
            (format!("r{}", i - n_local), REMOTE_NODE, pod_ip(REMOTE_POD_CIDR, i - n_local))
        };
        let ns = d.pick(&namespaces);
        docs.push(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels(d, &POD_LABELS)},
            "spec": {"nodeName": node_name, "containers": [{"name": "c", "ports": container_ports(d)}]},
            "status": {"podIP": ip.to_string()}}));
    }
    if d.chance(50) {
        // Shares the remote node's address; no policy may select it.
        let ns = d.pick(&namespaces);
        docs.push(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "host", "namespace": ns, "labels": labels(d, &POD_LABELS)},
            "spec": {"nodeName": REMOTE_NODE, "hostNetwork": true, "containers": [{"name": "c"}]}}));
    }
    let n_policies = if d.chance(5) { 0 } else { d.between(1, 5) };
    let mut invalid_policies = 0;
    for i in 0..n_policies {
        let mut g = PolicyGen { d: &mut *d, namespaces: &namespaces, services: &mut services, invalid: false, n_local, n_remote };
        let doc = g.policy(i);
        invalid_policies += usize::from(g.invalid);
        docs.push(doc);
    }
    let yaml = docs.iter().map(|doc| format!("---\n{}\n", serde_json::to_string_pretty(doc).expect("json"))).collect();
    services.retain(|(_, port)| *port != 0);
    RandomCluster { yaml, ports: ports.into_iter().collect(), services: services.into_iter().collect(), invalid_policies }
}

fn node(name: &str, cidr: (Ipv4Addr, u8), ip: Ipv4Addr) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
        "spec": {"podCIDR": format!("{}/{}", cidr.0, cidr.1)},
        "status": {"addresses": [{"type": "InternalIP", "address": ip.to_string()}]}})
}

/// The `i`th pod address of a /24 pod CIDR (from .10, leaving the gateway alone).
pub fn pod_ip(cidr: (Ipv4Addr, u8), i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(cidr.0) + 10 + i as u32)
}

fn labels(d: &mut Dice, vocab: &[(&str, &[&str])]) -> Value {
    let mut out = serde_json::Map::new();
    for (k, values) in vocab {
        if d.chance(60) {
            out.insert((*k).to_string(), json!(d.pick(values)));
        }
    }
    Value::Object(out)
}

fn container_ports(d: &mut Dice) -> Value {
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for (name, proto, numbers) in CONTAINER_PORTS {
        // A pod's port names are unique; "web" is TCP on most pods and UDP on a few.
        if d.chance(55) && name.is_none_or(|n| names.insert(n)) {
            let mut p = json!({"containerPort": d.pick(numbers)});
            if let Some(n) = name {
                p["name"] = json!(n);
            }
            if proto != "TCP" || d.chance(50) {
                p["protocol"] = json!(proto);
            }
            out.push(p);
        }
    }
    Value::Array(out)
}

/// Selector over `vocab`: empty, matchLabels, matchExpressions (every operator) or both;
/// mostly one condition, so that selectors select something.
fn selector(d: &mut Dice, vocab: &[(&str, Vec<&str>)]) -> Value {
    let label = |d: &mut Dice| {
        let (k, vs) = d.pick(vocab);
        json!({ k: d.pick(&vs) })
    };
    let expression = |d: &mut Dice| {
        let (k, mut vs) = d.pick(vocab);
        vs.push("zzz");
        match d.pick(&["In", "NotIn", "Exists", "DoesNotExist"]) {
            op @ ("In" | "NotIn") => json!({"key": k, "operator": op, "values": d.subset(&vs, 1, 2)}),
            op => json!({"key": k, "operator": op}),
        }
    };
    match d.below(20) {
        0..=4 => json!({}),
        5..=11 => json!({"matchLabels": label(d)}),
        12..=16 => json!({"matchExpressions": [expression(d)]}),
        17 | 18 => json!({"matchLabels": label(d), "matchExpressions": [expression(d)]}),
        _ => json!({"matchExpressions": [expression(d), expression(d)]}),
    }
}

struct PolicyGen<'a> {
    d: &'a mut Dice,
    namespaces: &'a [&'static str],
    services: &'a mut BTreeSet<(Protocol, u16)>,
    invalid: bool,
    n_local: usize,
    n_remote: usize,
}

impl PolicyGen<'_> {
    fn pod_vocab() -> Vec<(&'static str, Vec<&'static str>)> {
        POD_LABELS.iter().map(|(k, v)| (*k, v.to_vec())).collect()
    }

    fn ns_vocab(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        let mut v: Vec<_> = NS_LABELS.iter().map(|(k, v)| (*k, v.to_vec())).collect();
        v.push((policy::objects::NAMESPACE_NAME_LABEL, NAMESPACES.to_vec()));
        v
    }

    fn policy(&mut self, index: usize) -> Value {
        let ns = self.d.pick(self.namespaces);
        let mut spec = json!({"podSelector": selector(self.d, &Self::pod_vocab())});
        match self.d.below(20) {
            0..=7 => {}
            8..=10 => spec["policyTypes"] = json!(["Ingress"]),
            11..=13 => spec["policyTypes"] = json!(["Egress"]),
            14..=18 => spec["policyTypes"] = json!(["Ingress", "Egress"]),
            _ => spec["policyTypes"] = json!([]),
        }
        for (key, peer_key) in [("ingress", "from"), ("egress", "to")] {
            if let Some(n) = self.d.list_len(25, 10) {
                spec[key] = (0..n).map(|_| self.rule(peer_key)).collect();
            }
        }
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": format!("p{index}"), "namespace": ns}, "spec": spec})
    }

    fn rule(&mut self, peer_key: &str) -> Value {
        let mut r = json!({});
        if let Some(n) = self.d.list_len(25, 5) {
            r[peer_key] = (0..n).map(|_| self.peer()).collect();
        }
        if let Some(n) = self.d.list_len(30, 5) {
            r["ports"] = (0..n).map(|_| self.port()).collect();
        }
        r
    }

    fn peer(&mut self) -> Value {
        match self.d.below(10) {
            0..=2 => json!({"podSelector": selector(self.d, &Self::pod_vocab())}),
            3 | 4 => json!({"namespaceSelector": selector(self.d, &self.ns_vocab())}),
            5 | 6 => json!({"podSelector": selector(self.d, &Self::pod_vocab()),
                            "namespaceSelector": selector(self.d, &self.ns_vocab())}),
            _ => self.ip_block(),
        }
    }

    /// An address worth building a block around: a pod's, an external one, or a node's.
    fn interesting_address(&mut self) -> Ipv4Addr {
        match self.d.below(3) {
            0 => pod_ip(LOCAL_POD_CIDR, self.d.below(self.n_local)),
            1 => pod_ip(REMOTE_POD_CIDR, self.d.below(self.n_remote)),
            _ => self.d.pick(&EXTERNALS),
        }
    }

    fn ip_block(&mut self) -> Value {
        let anchor = self.interesting_address();
        let prefix = self.d.pick(&[32u8, 30, 28, 24, 24, 16, 16, 8, 0]);
        let cidr = network(anchor, prefix);
        let mut except = Vec::new();
        if prefix < 32 && self.d.chance(50) {
            for _ in 0..self.d.between(1, 2) {
                // Usually an exception carved around an interesting address inside the block.
                let inner = self.interesting_address();
                let inner = if contains(cidr, inner) { inner } else { Ipv4Addr::from(u32::from(cidr.0) | u32::from(self.d.u16())) };
                let inner = if contains(cidr, inner) { inner } else { cidr.0 };
                let p = self.d.between(usize::from(prefix) + 1, 32) as u8;
                except.push(network(inner, p));
            }
        }
        if self.d.chance(2) {
            // An exception outside the block: the whole policy is rejected.
            self.invalid = true;
            return json!({"ipBlock": {"cidr": "198.51.100.0/25", "except": ["198.51.100.0/24"]}});
        }
        let text = |(a, p): (Ipv4Addr, u8)| format!("{a}/{p}");
        let mut block = json!({"cidr": text(cidr)});
        if !except.is_empty() {
            block["except"] = json!(except.into_iter().map(text).collect::<Vec<_>>());
        }
        json!({"ipBlock": block})
    }

    fn port(&mut self) -> Value {
        let mut p = json!({});
        let protocol = if self.d.chance(65) { self.d.pick(&PROTOCOLS) } else { "TCP" };
        if protocol != "TCP" || self.d.chance(50) {
            p["protocol"] = json!(protocol);
        }
        let proto = protocol_of(protocol);
        // The ports this entry admits, and its edges.
        let mut named: Vec<u16> = Vec::new();
        match self.d.below(20) {
            0..=2 => named.push(self.d.pick(&PORT_NUMBERS)),
            3..=9 => {
                let n = self.d.pick(&PORT_NUMBERS);
                named.extend([n - 1, n, n + 1]);
                p["port"] = json!(n);
            }
            10..=12 => {
                let lo = if self.d.chance(20) { self.d.u16().max(1) } else { self.d.pick(&PORT_NUMBERS) };
                let hi = lo.saturating_add(self.d.pick(&[0u16, 1, 2, 7, 100, 1000, 30000]));
                let (lo, hi) = if self.d.chance(1) {
                    self.invalid = true;
                    (hi.max(2), hi.max(2) - 1) // endPort below port
                } else {
                    (lo, hi)
                };
                named.extend([lo.saturating_sub(1), lo, lo.saturating_add(1), lo / 2 + hi / 2, hi.saturating_sub(1), hi, hi.saturating_add(1)]);
                p["port"] = json!(lo);
                p["endPort"] = json!(hi);
            }
            _ => {
                let name = self.d.pick(&PORT_NAMES);
                for (n, cproto, numbers) in CONTAINER_PORTS {
                    if n == Some(name) && cproto == protocol {
                        named.extend(numbers);
                    }
                }
                p["port"] = json!(name);
            }
        }
        self.services.extend(named.into_iter().map(|n| (proto, n)));
        p
    }
}

fn protocol_of(name: &str) -> Protocol {
    match name {
        "UDP" => Protocol::Udp,
        "SCTP" => Protocol::Sctp,
        _ => Protocol::Tcp,
    }
}

fn network(addr: Ipv4Addr, prefix: u8) -> (Ipv4Addr, u8) {
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
    (Ipv4Addr::from(u32::from(addr) & mask), prefix)
}

fn contains((net, prefix): (Ipv4Addr, u8), addr: Ipv4Addr) -> bool {
    network(addr, prefix).0 == net
}
