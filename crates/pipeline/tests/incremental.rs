//! Updating the node compiler event by event gives exactly the flows of compiling the new
//! view from scratch, and the keys it reports as changed are all a switch needs to catch up.

mod incremental_node;

use incremental_node::Node;
use pipeline::{LocalPod, offline_topology};
use policy::synthetic::{Rng, Spec, Synthetic};
use policy::{Cluster, NetworkPolicy, Pod, PodKey};
use std::net::{IpAddr, Ipv4Addr};

const NODE: &str = "syn-1";

impl Node {
    fn of(cluster: Cluster) -> Node {
        let mut topo = offline_topology(&cluster, NODE).expect("node");
        topo.ports.insert("tap0".to_string(), 900);
        Node::new(cluster, topo)
    }

    fn upsert_pod(&mut self, pod: Pod, local: Option<LocalPod>) {
        // The pod and its port in one update (remove_pod takes two).
        let old = self.cluster.pods.insert(pod.key.clone(), pod.clone());
        match local {
            Some(l) => self.topo.local_pods.insert(pod.key.clone(), l),
            None => self.topo.local_pods.remove(&pod.key),
        };
        self.compiler.pods_changed(&self.cluster, &[(old.as_ref(), Some(&pod))], Some(self.topo.clone()));
    }

    fn remove_pod(&mut self, key: &PodKey) {
        let old = self.cluster.pods.remove(key);
        self.compiler.pod_changed(&self.cluster, old.as_ref(), None);
        self.topo.local_pods.remove(key);
        self.compiler.set_topology(&self.cluster, self.topo.clone());
    }

    fn upsert_policy(&mut self, p: NetworkPolicy) {
        let (ns, name) = (p.namespace.clone(), p.name.clone());
        self.cluster.policies.insert((ns.clone(), name.clone()), p);
        self.compiler.policy_changed(&self.cluster, &ns, &name);
    }

    fn remove_policy(&mut self, ns: &str, name: &str) {
        self.cluster.policies.remove(&(ns.to_string(), name.to_string()));
        self.compiler.policy_changed(&self.cluster, ns, name);
    }
}

/// Egress rules whose named ports resolve on whichever pod is the destination: to any
/// address, and to a block holding every pod address.
const NAMED_PORT_EGRESS: &str = "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-http-anywhere, namespace: ns-000}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - ports: [{port: http}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-http-block, namespace: ns-001}
spec:
  podSelector: {matchLabels: {tier: web}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 10.128.0.0/9, except: [10.128.1.0/24]}}]
    ports: [{port: http}, {port: 53, protocol: UDP}]
";

/// A mirror of one app's pods, so pod events change TrafficControl flows too.
const MIRROR: &str = "
apiVersion: weir.io/v1alpha1
kind: TrafficControl
metadata: {name: mirror-app-1}
spec:
  appliedTo: {podSelector: {matchLabels: {app: app-1}}}
  direction: Both
  action: Mirror
  targetPort: {ovsInternal: {name: tap0}}
";

fn with_named_port_egress_and_a_mirror(mut cluster: Cluster) -> Cluster {
    let extra = Cluster::from_sources([("named.yaml", NAMED_PORT_EGRESS), ("mirror.yaml", MIRROR)]);
    assert!(extra.errors.is_empty(), "{:?}", extra.errors);
    cluster.policies.extend(extra.policies);
    cluster.traffic_controls.extend(extra.traffic_controls);
    cluster
}

fn local(ip: Ipv4Addr, ofport: u32) -> LocalPod {
    LocalPod { ofport, ip, mac: pipeline::compile::pod_mac_for(ip) }
}

fn pick<T: Clone>(rng: &mut Rng, items: impl Iterator<Item = T>) -> T {
    let v: Vec<T> = items.collect();
    v[rng.below(v.len())].clone()
}

fn ipv4(pod: &Pod) -> Ipv4Addr {
    match pod.ips[0] {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(_) => unreachable!("synthetic pods are IPv4"),
    }
}

#[test]
fn random_pod_policy_and_port_events_keep_the_incremental_flows_equal_to_a_fresh_compile() {
    // WEIR_INCREMENTAL_SEEDS=N for a longer run (CI: 3).
    let seeds: u64 = std::env::var("WEIR_INCREMENTAL_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    for seed in 1..=seeds {
        let syn = Synthetic::generate(Spec { pods: 300, policies: 60, seed });
        // Policies to add later: another draw over the same namespaces and labels.
        let pool: Vec<NetworkPolicy> = Synthetic::generate(Spec { pods: 300, policies: 60, seed: seed + 100 })
            .cluster()
            .policies
            .into_values()
            .collect();
        let mut node = Node::of(with_named_port_egress_and_a_mirror(syn.cluster()));
        let mut rng = Rng::new(seed);
        let mut next_ofport = 1000;
        for step in 0..120 {
            let what = format!("seed {seed} step {step}");
            match rng.below(7) {
                0 => {
                    // A new pod, copying a random pod's labels and ports, here or elsewhere.
                    let template = pick(&mut rng, node.cluster.pods.values().cloned());
                    let here = rng.below(2) == 0;
                    let ip = Ipv4Addr::new(10, 250, (step / 200) as u8, (step % 200) as u8 + 2);
                    let pod = Pod {
                        key: PodKey::new(&template.key.namespace, format!("new-{step}")),
                        ips: vec![IpAddr::V4(ip)],
                        node: Some(if here { NODE.to_string() } else { "syn-2".to_string() }),
                        ..template
                    };
                    next_ofport += 1;
                    node.upsert_pod(pod, here.then(|| local(ip, next_ofport)));
                }
                1 => {
                    let key = pick(&mut rng, node.cluster.pods.keys().cloned());
                    node.remove_pod(&key);
                }
                2 => {
                    // Relabel: the pod moves between selections.
                    let mut pod = pick(&mut rng, node.cluster.pods.values().cloned());
                    let app = format!("app-{}", rng.below(10));
                    pod.labels.insert("app".to_string(), app);
                    let l = node.topo.local_pods.get(&pod.key).cloned();
                    node.upsert_pod(pod, l);
                }
                3 => {
                    let p = pool[rng.below(pool.len())].clone();
                    node.upsert_policy(p);
                }
                4 => {
                    let (ns, name) = pick(&mut rng, node.cluster.policies.keys().cloned());
                    node.remove_policy(&ns, &name);
                }
                5 => {
                    // A pod's port comes or goes (the CNI attaches or detaches it).
                    let pod = pick(&mut rng, node.cluster.pods.values().filter(|p| p.node.as_deref() == Some(NODE)).cloned());
                    let l = match node.topo.local_pods.get(&pod.key) {
                        Some(_) => None,
                        None => {
                            next_ofport += 1;
                            Some(local(ipv4(&pod), next_ofport))
                        }
                    };
                    node.upsert_pod(pod, l);
                }
                _ => {
                    // A whole-view update, as the agent does after re-reading the manifests.
                    let old = node.cluster.clone();
                    let key = pick(&mut rng, node.cluster.pods.keys().cloned());
                    node.cluster.pods.remove(&key);
                    node.topo.local_pods.remove(&key);
                    let (ns, name) = pick(&mut rng, node.cluster.policies.keys().cloned());
                    node.cluster.policies.remove(&(ns, name));
                    node.compiler.update(&old, &node.cluster, node.topo.clone());
                }
            }
            node.check(&what);
        }
    }
}

#[test]
fn a_namespace_relabel_recompiles_everything_and_still_matches_a_fresh_compile() {
    let syn = Synthetic::generate(Spec { pods: 300, policies: 60, seed: 9 });
    let mut node = Node::of(syn.cluster());
    let old = node.cluster.clone();
    let ns = node.cluster.namespaces.values_mut().next().expect("a namespace");
    ns.labels.insert("team".to_string(), "team-other".to_string());
    node.compiler.update(&old, &node.cluster, node.topo.clone());
    node.check("namespace relabel");
}

#[test]
fn a_peer_pod_leaving_keeps_its_address_when_an_ip_block_of_the_rule_names_it() {
    let syn = Synthetic::generate(Spec { pods: 300, policies: 0, seed: 5 });
    let mut cluster = syn.cluster();
    let local = offline_topology(&cluster, NODE).expect("node").local_pods.keys().next().cloned().expect("a local pod");
    let peer = cluster.pods.values().find(|p| p.key.namespace != local.namespace).cloned().expect("a peer");
    let yaml = format!(
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: both, namespace: {ns}}}
spec:
  podSelector: {{}}
  ingress:
  - from:
    - namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {peer_ns}}}}}
    - ipBlock: {{cidr: {ip}/32}}
",
        ns = local.namespace,
        peer_ns = peer.key.namespace,
        ip = ipv4(&peer),
    );
    let extra = Cluster::from_sources([("both.yaml", yaml.as_str())]);
    assert!(extra.errors.is_empty(), "{:?}", extra.errors);
    cluster.policies.extend(extra.policies);
    let mut node = Node::of(cluster);
    node.remove_pod(&peer.key);
    node.check("peer removed, block keeps its address");
    let mut back = peer.clone();
    back.key = PodKey::new(&peer.key.namespace, "again");
    node.upsert_pod(back, None);
    node.check("another pod at the same address");
}
