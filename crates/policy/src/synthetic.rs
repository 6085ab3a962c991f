//! Seeded synthetic clusters for benchmarks: namespaces, nodes, pods with labels and named
//! container ports, and a realistic NetworkPolicy mix, as Kubernetes-shaped objects.
//!
//! The shape follows what production clusters look like at scale rather than what stresses
//! one feature: 100 pods per namespace in 10 apps of three tiers, 100 pods per node spread
//! by a seeded shuffle (so each node hosts a few pods of most namespaces), and policies
//! spread over the namespaces, at least [`MIN_POLICIES_PER_NAMESPACE`] in each that has any. Each namespace's first policy is a default deny and its
//! second allows the namespace itself (namespace isolation); the rest are drawn from:
//! app-to-app allows on named ports, cross-namespace allows by namespace labels, ipBlocks
//! with `except`, `endPort` ranges, multi-protocol port lists and egress policies (to a
//! tier on a named port, and to the internet except private ranges).
//!
//! Equal [`Spec`]s give equal clusters, so runs of a benchmark compare like with like.
//! Objects come out as `serde_json::Value`s in the Kubernetes API shape: they go through the
//! same validation as manifests ([`Synthetic::manifests`]) and render as YAML for a file-mode
//! agent ([`to_yaml`]).
use crate::cluster::Cluster;
use crate::manifest::{self, Manifests};
use crate::objects::{ContainerPort, Labels};
use crate::protocol::Protocol;
use serde_json::{Value, json};
use std::net::Ipv4Addr;

/// Pods per node: Kubernetes' default limit is 110.
pub const PODS_PER_NODE: usize = 100;
/// Pods per namespace.
pub const PODS_PER_NAMESPACE: usize = 100;
/// Apps (values of the `app` label) per namespace.
pub const APPS_PER_NAMESPACE: usize = 10;
/// Teams (values of the namespaces' `team` label).
pub const TEAMS: usize = 10;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// Number of pods.
    pub pods: usize,
    /// Number of NetworkPolicies.
    pub policies: usize,
    /// Seed of every random choice.
    pub seed: u64,
}

/// A node of the synthetic cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynNode {
    /// `syn-<n>`, from 1.
    pub name: String,
    /// Its pod CIDR's network address (a /24).
    pub pod_network: Ipv4Addr,
    /// Its InternalIP.
    pub internal_ip: Ipv4Addr,
}

/// A pod of the synthetic cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynPod {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The node it runs on.
    pub node: String,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Its labels (`app`, `tier`, `version`).
    pub labels: Labels,
    /// Its container ports (named `http`, `metrics`, and `db` or `grpc` by tier).
    pub ports: Vec<ContainerPort>,
}

/// A generated cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Synthetic {
    /// Namespace name → labels (`team`, `env`).
    pub namespaces: Vec<(String, Labels)>,
    /// The nodes.
    pub nodes: Vec<SynNode>,
    /// The pods.
    pub pods: Vec<SynPod>,
    /// The NetworkPolicies, as manifests.
    pub policies: Vec<Value>,
}

/// SplitMix64: tiny, seedable and good enough to pick benchmark shapes.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A copy of `items` in a random order (Fisher-Yates): benchmarks measure their
    /// configurations in a new order each round, so drift does not favour one.
    pub fn shuffled<T: Clone>(&mut self, items: &[T]) -> Vec<T> {
        let mut out = items.to_vec();
        for i in (1..out.len()).rev() {
            out.swap(i, self.below(i + 1));
        }
        out
    }
}

const TIERS: [&str; 3] = ["web", "api", "db"];
const ENVS: [&str; 3] = ["prod", "staging", "dev"];

fn app(k: usize) -> String {
    format!("app-{k}")
}

fn tier_of(app: usize) -> &'static str {
    TIERS[app % TIERS.len()]
}

/// The container ports of a pod of app `k`: `http` differs between even and odd apps so
/// named ports resolve to different numbers on different pods, as they do in real clusters.
fn ports_of(k: usize) -> Vec<ContainerPort> {
    let tcp = |name: &str, port: u16| ContainerPort { name: Some(name.into()), port, protocol: Protocol::Tcp };
    let mut ports = vec![tcp("http", if k.is_multiple_of(2) { 8080 } else { 8000 }), tcp("metrics", 9090)];
    match tier_of(k) {
        "db" => ports.push(tcp("db", 5432)),
        "api" => ports.push(tcp("grpc", 50051)),
        _ => {}
    }
    ports
}

impl Synthetic {
    /// Generates the cluster `spec` describes.
    pub fn generate(spec: Spec) -> Synthetic {
        let mut rng = Rng::new(spec.seed);
        let n_ns = spec.pods.div_ceil(PODS_PER_NAMESPACE).max(1);
        let n_nodes = spec.pods.div_ceil(PODS_PER_NODE).max(1);
        let namespaces: Vec<(String, Labels)> = (0..n_ns)
            .map(|i| {
                let labels = Labels::from([
                    ("team".to_string(), format!("t{}", i % TEAMS)),
                    ("env".to_string(), ENVS[i % ENVS.len()].to_string()),
                ]);
                (format!("ns-{i:03}"), labels)
            })
            .collect();
        let nodes: Vec<SynNode> = (0..n_nodes)
            .map(|n| SynNode {
                name: format!("syn-{}", n + 1),
                pod_network: Ipv4Addr::new(10, 128 + (n / 256) as u8, (n % 256) as u8, 0),
                internal_ip: Ipv4Addr::new(192, 168, (n / 250) as u8, (n % 250 + 2) as u8),
            })
            .collect();
        // Node slots shuffled (Fisher-Yates), so each node hosts pods of many namespaces.
        let mut slots: Vec<(usize, usize)> = (0..spec.pods).map(|g| (g % n_nodes, g / n_nodes)).collect();
        for i in (1..slots.len()).rev() {
            slots.swap(i, rng.below(i + 1));
        }
        let pods = (0..spec.pods)
            .map(|g| {
                let (ns, j) = (g / PODS_PER_NAMESPACE, g % PODS_PER_NAMESPACE);
                let k = j % APPS_PER_NAMESPACE;
                let (node, host) = slots[g];
                let net = nodes[node].pod_network.octets();
                SynPod {
                    namespace: namespaces[ns].0.clone(),
                    name: format!("{}-{j}", app(k)),
                    node: nodes[node].name.clone(),
                    ip: Ipv4Addr::new(net[0], net[1], net[2], (host + 2) as u8),
                    labels: Labels::from([
                        ("app".to_string(), app(k)),
                        ("tier".to_string(), tier_of(k).to_string()),
                        ("version".to_string(), format!("v{}", j % 3)),
                    ]),
                    ports: ports_of(k),
                }
            })
            .collect();
        let policies = (0..spec.policies).map(|q| policy(q, spec.policies, &namespaces, &mut rng)).collect();
        Synthetic { namespaces, nodes, pods, policies }
    }

    /// Every object: namespaces, nodes, pods, then policies.
    pub fn objects(&self) -> Vec<Value> {
        let mut out: Vec<Value> = self.namespaces.iter().map(|(n, l)| namespace_value(n, l)).collect();
        out.extend(self.nodes.iter().map(node_value));
        out.extend(self.pods.iter().map(pod_value));
        out.extend(self.policies.iter().cloned());
        out
    }

    /// The objects validated as manifests are (source `synthetic`).
    pub fn manifests(&self) -> Manifests {
        let mut m = Manifests::default();
        for (i, v) in self.objects().into_iter().enumerate() {
            manifest::add_value("synthetic", &format!("object {}", i + 1), v, &mut m);
        }
        m
    }

    /// The cluster view of the objects.
    pub fn cluster(&self) -> Cluster {
        Cluster::from_manifests(self.manifests())
    }
}

/// A v1 Namespace.
pub fn namespace_value(name: &str, labels: &Labels) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

/// A v1 Node with a /24 pod CIDR and an InternalIP.
pub fn node_value(n: &SynNode) -> Value {
    let cidr = format!("{}/24", n.pod_network);
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": n.name, "labels": {"kubernetes.io/hostname": n.name}},
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
        "status": {"addresses": [{"type": "InternalIP", "address": n.internal_ip.to_string()}]},
    })
}

/// A running v1 Pod.
pub fn pod_value(p: &SynPod) -> Value {
    let ports: Vec<Value> = p
        .ports
        .iter()
        .map(|c| json!({"name": c.name, "containerPort": c.port, "protocol": c.protocol.as_str()}))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": p.name, "namespace": p.namespace, "labels": p.labels},
        "spec": {"nodeName": p.node, "containers": [{"name": "main", "image": "app", "ports": ports}]},
        "status": {"phase": "Running", "podIP": p.ip.to_string(), "podIPs": [{"ip": p.ip.to_string()}]},
    })
}

/// A multi-document YAML stream of `objects`.
pub fn to_yaml(objects: &[Value]) -> Result<String, serde_saphyr::SerializeError> {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(o)?);
    }
    Ok(out)
}

fn netpol(namespace: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
}

fn app_selector(k: usize) -> Value {
    json!({"matchLabels": {"app": app(k)}})
}

/// Policies per namespace at least (fewer policies than that use fewer namespaces), so
/// every namespace with policies has its default deny, its namespace allow and app rules.
pub const MIN_POLICIES_PER_NAMESPACE: usize = 10;

/// Policy `q` of `total`: spread round-robin over the namespaces that have policies, kind by
/// its place in the namespace and a seeded draw.
fn policy(q: usize, total: usize, namespaces: &[(String, Labels)], rng: &mut Rng) -> Value {
    let used = namespaces.len().min((total / MIN_POLICIES_PER_NAMESPACE).max(1));
    let ns = &namespaces[q % used].0;
    let nth = q / used;
    let a = rng.below(APPS_PER_NAMESPACE);
    let b = rng.below(APPS_PER_NAMESPACE);
    let name = |kind: &str| format!("p{q:05}-{kind}");
    if nth == 0 {
        return netpol(ns, &name("default-deny"), json!({"podSelector": {}, "policyTypes": ["Ingress"]}));
    }
    if nth == 1 {
        return netpol(ns, &name("same-namespace"), json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}));
    }
    match rng.below(100) {
        0..35 => {
            // App to app in the namespace, on a named port (or its number for even apps).
            let port = if rng.below(2) == 0 { json!("http") } else { json!(8080) };
            netpol(
                ns,
                &name("app-to-app"),
                json!({"podSelector": app_selector(a), "ingress": [{"from": [{"podSelector": app_selector(b)}],
                    "ports": [{"port": port, "protocol": "TCP"}]}]}),
            )
        }
        35..50 => netpol(
            ns,
            &name("cross-namespace"),
            json!({"podSelector": app_selector(a), "ingress": [{"from": [{
                "namespaceSelector": {"matchLabels": {"team": format!("t{}", rng.below(TEAMS))}},
                "podSelector": {"matchLabels": {"tier": TIERS[rng.below(3)]}}}],
                "ports": [{"port": "grpc"}, {"port": "metrics"}]}]}),
        ),
        50..65 => {
            // An external range minus a few of its /24s.
            let second = 16 + rng.below(16) as u8;
            let except: Vec<String> = (0..1 + rng.below(3)).map(|_| format!("172.{second}.{}.0/24", rng.below(256))).collect();
            netpol(
                ns,
                &name("ipblock"),
                json!({"podSelector": app_selector(a), "ingress": [{"from": [{"ipBlock": {
                    "cidr": format!("172.{second}.0.0/16"), "except": except}}],
                    "ports": [{"port": 443}, {"port": 8443}]}]}),
            )
        }
        65..75 => {
            let (lo, hi) = if rng.below(2) == 0 { (30000, 32767) } else { (8000, 8100) };
            netpol(
                ns,
                &name("port-range"),
                json!({"podSelector": app_selector(a), "ingress": [{"from": [{
                    "namespaceSelector": {"matchLabels": {"env": ENVS[rng.below(3)]}}}],
                    "ports": [{"port": lo, "endPort": hi, "protocol": "TCP"}]}]}),
            )
        }
        75..85 => netpol(
            ns,
            &name("multi-protocol"),
            json!({"podSelector": app_selector(a), "ingress": [{"from": [{"podSelector": app_selector(b)}],
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"},
                          {"port": 9090}, {"port": 4000, "endPort": 4099, "protocol": "UDP"}]}]}),
        ),
        85..93 => netpol(
            ns,
            &name("egress-db"),
            json!({"podSelector": app_selector(a), "policyTypes": ["Egress"], "egress": [
                {"to": [{"podSelector": {"matchLabels": {"tier": "db"}}}], "ports": [{"port": "db"}]},
                {"to": [{"namespaceSelector": {}}], "ports": [{"port": 53, "protocol": "UDP"}]}]}),
        ),
        _ => netpol(
            ns,
            &name("egress-internet"),
            json!({"podSelector": app_selector(a), "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {
                "cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}}],
                "ports": [{"port": 443}, {"port": 80}]}]}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Spec {
        Spec { pods: 1000, policies: 100, seed: 7 }
    }

    #[test]
    fn every_generated_object_is_valid() {
        let m = Synthetic::generate(small()).manifests();
        assert!(m.errors.is_empty(), "{:#?}", &m.errors[..m.errors.len().min(5)]);
        assert_eq!(m.objects.len(), 10 + 10 + 1000 + 100);
    }

    #[test]
    fn equal_seeds_give_equal_clusters_and_other_seeds_differ() {
        assert_eq!(Synthetic::generate(small()), Synthetic::generate(small()));
        assert_ne!(Synthetic::generate(small()), Synthetic::generate(Spec { seed: 8, ..small() }));
    }

    #[test]
    fn pods_fill_their_nodes_with_unique_addresses_in_the_node_cidr() {
        let s = Synthetic::generate(small());
        let c = s.cluster();
        assert_eq!(c.pods.len(), 1000, "no pod lost to an address clash");
        for n in &s.nodes {
            let on: Vec<_> = s.pods.iter().filter(|p| p.node == n.name).collect();
            assert_eq!(on.len(), PODS_PER_NODE, "node {}", n.name);
            assert!(on.iter().all(|p| p.ip.octets()[..3] == n.pod_network.octets()[..3]));
        }
    }

    #[test]
    fn the_mix_has_every_policy_kind() {
        let s = Synthetic::generate(Spec { pods: 1000, policies: 1000, seed: 1 });
        let names: Vec<String> = s.policies.iter().map(|p| p["metadata"]["name"].as_str().unwrap().to_string()).collect();
        for kind in [
            "default-deny",
            "same-namespace",
            "app-to-app",
            "cross-namespace",
            "ipblock",
            "port-range",
            "multi-protocol",
            "egress-db",
            "egress-internet",
        ] {
            assert!(names.iter().any(|n| n.ends_with(kind)), "no {kind} policy");
        }
        assert_eq!(s.cluster().policies.len(), 1000);
    }

    #[test]
    fn yaml_output_parses_back_to_the_same_cluster() {
        let s = Synthetic::generate(Spec { pods: 200, policies: 30, seed: 3 });
        let text = to_yaml(&s.objects()).unwrap();
        let from_yaml = Cluster::from_sources([("synthetic", text.as_str())]);
        let direct = s.cluster();
        assert_eq!(from_yaml.pods, direct.pods);
        assert_eq!(from_yaml.policies, direct.policies);
    }
}
