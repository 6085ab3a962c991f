//! Cluster policies updated incrementally: after every event (a cluster policy added, removed
//! or re-prioritized, a pod added, removed, relabelled or readdressed, a ClusterGroup changed)
//! `NodeCompiler::update` (and, for pod events, `NodeCompiler::pods_changed`), which derive
//! again only the cluster policies the event can change, give exactly the flows and conj_ids of
//! a compile from scratch.

mod incremental_node;

use incremental_node::Node;
use pipeline::{LocalPod, Topology, offline_topology};
use policy::synthetic::{Rng, Spec, Synthetic};
use policy::{Cluster, Pod, PodKey};
use std::net::{IpAddr, Ipv4Addr};

const NODE: &str = "syn-1";

/// Admin-tier policy `name` from random selectors of the synthetic cluster's labels.
fn admin_policy(rng: &mut Rng, name: &str) -> String {
    let action = ["Allow", "Deny", "Pass"][rng.below(3)];
    let egress_action = ["Allow", "Deny", "Pass"][rng.below(3)];
    format!(
        "apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {{name: {name}}}
spec:
  priority: {priority}
  subject: {{pods: {{namespaceSelector: {{matchLabels: {{team: t{team}}}}}, podSelector: {{matchLabels: {{app: app-{app}}}}}}}}}
  ingress:
  - {{name: in, action: {action}, from: [{{pods: {{namespaceSelector: {{}}, podSelector: {{matchLabels: {{app: app-{peer}}}}}}}}}], ports: [{{portNumber: {{protocol: TCP, port: {port}}}}}]}}
  egress:
  - {{name: out, action: {egress_action}, to: [{{namespaces: {{matchLabels: {{team: t{peer_team}}}}}}}, {{networks: [10.128.0.0/10]}}]}}
",
        priority = rng.below(40),
        team = rng.below(10),
        app = rng.below(10),
        peer = rng.below(10),
        port = 80 + rng.below(3),
        peer_team = rng.below(10),
    )
}

/// An Antrea tiered policy on a ClusterGroup's pods, and the group.
const GROUPED: &str = "
apiVersion: crd.antrea.io/v1beta1
kind: ClusterGroup
metadata: {name: web}
spec: {podSelector: {matchLabels: {tier: web}}}
---
apiVersion: crd.antrea.io/v1beta1
kind: ClusterNetworkPolicy
metadata: {name: guard-web}
spec:
  priority: 2
  tier: securityops
  appliedTo: [{group: web}]
  ingress:
  - {action: Drop, name: no-db, enableLogging: true, from: [{podSelector: {matchLabels: {tier: db}}}]}
";

impl Node {
    /// Applies `change` to the view (and the topology) and updates the compiler as the agent
    /// does, from the view before.
    fn event(&mut self, change: impl FnOnce(&mut Cluster, &mut Topology)) {
        let old = self.cluster.clone();
        change(&mut self.cluster, &mut self.topo);
        self.compiler.update(&old, &self.cluster, self.topo.clone());
    }

    /// A pod event: `pod` (`None`: the pod `key` is gone) with the topology changed by
    /// `port`, through `update` or, with `by_pod`, through `pods_changed` (the per-pod entry).
    fn pod_event(&mut self, by_pod: bool, key: PodKey, pod: Option<Pod>, port: impl FnOnce(&mut Topology)) {
        if !by_pod {
            return self.event(|c, t| {
                match pod {
                    Some(p) => c.pods.insert(key, p),
                    None => c.pods.remove(&key),
                };
                port(t);
            });
        }
        let old = match &pod {
            Some(p) => self.cluster.pods.insert(key.clone(), p.clone()),
            None => self.cluster.pods.remove(&key),
        };
        port(&mut self.topo);
        self.compiler.pods_changed(&self.cluster, &[(old.as_ref(), pod.as_ref())], Some(self.topo.clone()));
    }

}

fn cluster_with_policies(seed: u64, rng: &mut Rng) -> Cluster {
    let mut cluster = Synthetic::generate(Spec { pods: 300, policies: 30, seed }).cluster();
    let mut texts: Vec<String> = (0..12).map(|i| admin_policy(rng, &format!("anp-{i}"))).collect();
    texts.push(GROUPED.to_string());
    let extra = Cluster::from_sources(texts.iter().enumerate().map(|(i, t)| (["a.yaml", "b.yaml"][i % 2], t.as_str())));
    assert!(extra.errors.is_empty(), "{:?}", extra.errors);
    cluster.cluster_policies.extend(extra.cluster_policies);
    cluster.groups.extend(extra.groups);
    cluster
}

fn pick_pod(rng: &mut Rng, cluster: &Cluster) -> Pod {
    let pods: Vec<&Pod> = cluster.pods.values().collect();
    pods[rng.below(pods.len())].clone()
}

#[test]
fn random_cluster_policy_pod_and_group_events_keep_the_incremental_flows_equal_to_a_fresh_compile() {
    // WEIR_INCREMENTAL_SEEDS=N for a longer run (CI: 2).
    let seeds: u64 = std::env::var("WEIR_INCREMENTAL_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2);
    for seed in 1..=seeds {
        let mut rng = Rng::new(seed);
        let cluster = cluster_with_policies(seed, &mut rng);
        let topo = offline_topology(&cluster, NODE).expect("node");
        let mut node = Node::new(cluster, topo);
        for step in 0..40 {
            // Pod events come through `update` (the agent's way) or `pods_changed`.
            let by_pod = rng.below(2) == 0;
            let what = format!("seed {seed} step {step} (by pod: {by_pod})");
            match rng.below(8) {
                0 => {
                    let text = admin_policy(&mut rng, &format!("new-{step}"));
                    let added = Cluster::from_sources([("n.yaml", text.as_str())]);
                    node.event(|c, _| c.cluster_policies.extend(added.cluster_policies));
                }
                1 => {
                    let keys: Vec<_> = node.cluster.cluster_policies.keys().cloned().collect();
                    let key = keys[rng.below(keys.len())].clone();
                    node.event(|c, _| {
                        c.cluster_policies.remove(&key);
                    });
                }
                2 => {
                    let keys: Vec<_> = node.cluster.cluster_policies.keys().cloned().collect();
                    let key = keys[rng.below(keys.len())].clone();
                    let priority = rng.below(40) as u32;
                    node.event(|c, _| c.cluster_policies.get_mut(&key).expect("present").priority = priority);
                }
                3 => {
                    // Relabelled: may leave some policies' subjects or peers and join others'.
                    let mut pod = pick_pod(&mut rng, &node.cluster);
                    pod.labels.insert("app".into(), format!("app-{}", rng.below(10)));
                    node.pod_event(by_pod, pod.key.clone(), Some(pod), |_| {});
                }
                4 => {
                    let pod = pick_pod(&mut rng, &node.cluster);
                    let key = pod.key.clone();
                    node.pod_event(by_pod, pod.key, None, |t| {
                        t.local_pods.remove(&key);
                    });
                }
                5 => {
                    // A new pod on this node, with its port.
                    let mut pod = pick_pod(&mut rng, &node.cluster);
                    pod.key.name = format!("new-{step}");
                    let ip = Ipv4Addr::new(10, 128, 0, 200 + step as u8);
                    pod.ips = vec![IpAddr::V4(ip)];
                    pod.node = Some(NODE.into());
                    let local = LocalPod { ofport: 7000 + step as u32, ip, mac: pipeline::compile::pod_mac_for(ip) };
                    let key = pod.key.clone();
                    node.pod_event(by_pod, pod.key.clone(), Some(pod), |t| {
                        t.local_pods.insert(key, local);
                    });
                }
                6 => {
                    let mut pod = pick_pod(&mut rng, &node.cluster);
                    let ip = Ipv4Addr::new(10, 200, 0, step as u8);
                    pod.ips = vec![IpAddr::V4(ip)];
                    let key = pod.key.clone();
                    node.pod_event(by_pod, pod.key.clone(), Some(pod), |t| {
                        if let Some(local) = t.local_pods.get_mut(&key) {
                            local.ip = ip;
                        }
                    });
                }
                _ => {
                    // The group now holds the db tier instead (every policy derived again).
                    let tier = ["web", "api", "db"][rng.below(3)];
                    let text = GROUPED.replace("{tier: web}", &format!("{{tier: {tier}}}"));
                    let groups = Cluster::from_sources([("g.yaml", text.as_str())]).groups;
                    node.event(|c, _| c.groups.extend(groups));
                }
            }
            node.check(&what);
        }
    }
}
