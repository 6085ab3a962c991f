//! `churn`: single pod, policy and cluster-policy events on a node of the synthetic cluster
//! (plus AdminNetworkPolicies on some of its apps) whose flows are installed on a real switch. Each event does what the agent does after its cluster view
//! changes: update the node compiler, diff the touched flows against the installed ones, one bundle, then a barrier; the
//! latency from the change to the barrier's reply is the figure. The floor is the round trip
//! of an empty bundle (open, barrier, commit) plus a barrier on the same connection.
use super::scale::{self, Scale};
use super::{Check, Report, fmt_num, median, ms, percentile};
use agent::switch::Switch;
use openflow::FlowMod;
use pipeline::{FlowSet, LocalPod, NodeCompiler, diff_keys};
use policy::manifest::{Manifests, Object, add_value};
use policy::synthetic::{Spec, Synthetic};
use policy::cluster_policy::ClusterPolicy;
use policy::{Cluster, NetworkPolicy, Pod, PodKey, PolicyKind};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    LocalPodAdd,
    LocalPodRemove,
    RemotePodAdd,
    RemotePodRemove,
    PolicyAdd,
    PolicyRemove,
    ClusterPolicyAdd,
    ClusterPolicyReprioritize,
    ClusterPolicyRemove,
}

impl Kind {
    const ALL: [Kind; 9] = [
        Kind::LocalPodAdd,
        Kind::LocalPodRemove,
        Kind::RemotePodAdd,
        Kind::RemotePodRemove,
        Kind::PolicyAdd,
        Kind::PolicyRemove,
        Kind::ClusterPolicyAdd,
        Kind::ClusterPolicyReprioritize,
        Kind::ClusterPolicyRemove,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::LocalPodAdd => "pod add (this node)",
            Kind::LocalPodRemove => "pod remove (this node)",
            Kind::RemotePodAdd => "pod add (other node)",
            Kind::RemotePodRemove => "pod remove (other node)",
            Kind::PolicyAdd => "policy add",
            Kind::PolicyRemove => "policy remove",
            Kind::ClusterPolicyAdd => "cluster policy add",
            Kind::ClusterPolicyReprioritize => "cluster policy priority change",
            Kind::ClusterPolicyRemove => "cluster policy remove",
        }
    }

    fn is_pod(self) -> bool {
        matches!(self, Kind::LocalPodAdd | Kind::LocalPodRemove | Kind::RemotePodAdd | Kind::RemotePodRemove)
    }
}

#[derive(Default)]
struct Samples {
    total_ms: Vec<f64>,
    compile_ms: Vec<f64>,
    bundle_ms: Vec<f64>,
    flow_mods: Vec<f64>,
}

/// A pod joining app `app` of namespace `ns` on `node` with address `ip`.
fn churn_pod(syn: &Synthetic, i: usize, node: &str, ip: Ipv4Addr) -> Pod {
    let template = &syn.pods[(i * 37) % syn.pods.len()];
    Pod {
        key: PodKey::new(&template.namespace, format!("churn-{i}")),
        labels: template.labels.clone(),
        node: Some(node.to_string()),
        host_network: false,
        ips: vec![IpAddr::V4(ip)],
        ports: template.ports.clone(),
    }
}

/// AdminNetworkPolicy `name` at `priority` on the pods of app `i` (a pod of the cluster picked
/// by `i`): denies a TCP port from another team's namespaces, passes DNS to NetworkPolicy.
fn admin_policy(syn: &Synthetic, name: &str, i: usize, priority: u32) -> anyhow::Result<ClusterPolicy> {
    let pod = &syn.pods[(i * 53) % syn.pods.len()];
    let team = |ns: &str| syn.namespaces.iter().find(|(n, _)| n == ns).map(|(_, l)| l.clone()).unwrap_or_default();
    let other = &syn.namespaces[(i * 7 + 1) % syn.namespaces.len()].0;
    let v = json!({
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "AdminNetworkPolicy",
        "metadata": {"name": name},
        "spec": {
            "priority": priority,
            "subject": {"pods": {"namespaceSelector": {"matchLabels": team(&pod.namespace)}, "podSelector": {"matchLabels": {"app": pod.labels.get("app")}}}},
            "ingress": [{"name": "deny-other-team", "action": "Deny", "from": [{"namespaces": {"matchLabels": team(other)}}],
                         "ports": [{"portNumber": {"protocol": "TCP", "port": 9000 + (i % 1000) as u16}}]}],
            "egress": [{"name": "dns-by-networkpolicy", "action": "Pass", "to": [{"namespaces": {}}],
                        "ports": [{"portNumber": {"protocol": "UDP", "port": 53}}]}],
        },
    });
    let mut m = Manifests::default();
    add_value("churn", name, v, &mut m);
    match m.objects.pop() {
        Some((_, Object::ClusterPolicy(p))) => Ok(p),
        _ => anyhow::bail!("churn cluster policy invalid: {:?}", m.errors.first()),
    }
}

/// AdminNetworkPolicies in force before the events (and after them).
fn base_admin_policies(quick: bool) -> usize {
    if quick { 50 } else { 1000 }
}

fn parse_policy(v: serde_json::Value) -> anyhow::Result<NetworkPolicy> {
    let mut m = Manifests::default();
    add_value("churn", "policy", v, &mut m);
    match m.objects.pop() {
        Some((_, Object::NetworkPolicy(p))) => Ok(p),
        _ => anyhow::bail!("churn policy invalid: {:?}", m.errors.first()),
    }
}

/// One event of the benchmark.
enum Change {
    /// A pod appears; with a port on this node if `local` is given.
    AddPod(Pod, Option<LocalPod>),
    /// A pod (and its port, if it had one here) goes away.
    RemovePod(PodKey),
    /// A policy is added.
    AddPolicy(NetworkPolicy),
    /// A policy is removed.
    RemovePolicy(String, String),
    /// A cluster policy is added or changed.
    SetClusterPolicy(ClusterPolicy),
    /// A cluster policy is removed.
    RemoveClusterPolicy(PolicyKind, String),
}

struct Node {
    cluster: Cluster,
    topo: pipeline::Topology,
    compiler: NodeCompiler,
    installed: FlowSet,
    switch: Switch,
}

impl Node {
    /// Applies `change` to the view and the compiler (as the agent does), diffs the flows
    /// the compiler touched, sends one bundle, then a barrier.
    async fn event(&mut self, change: Change) -> anyhow::Result<(f64, f64, f64, usize)> {
        // The agent keeps the view it compiled from and compares it with the new one (a
        // cluster-policy change goes through `NodeCompiler::update`); the copy is not timed.
        let old = matches!(change, Change::SetClusterPolicy(_) | Change::RemoveClusterPolicy(..)).then(|| self.cluster.clone());
        let t = Instant::now();
        match change {
            Change::AddPod(pod, local) => {
                let old = self.cluster.pods.insert(pod.key.clone(), pod.clone());
                let topo = local.map(|l| {
                    self.topo.local_pods.insert(pod.key.clone(), l);
                    self.topo.clone()
                });
                self.compiler.pods_changed(&self.cluster, &[(old.as_ref(), Some(&pod))], topo);
            }
            Change::RemovePod(key) => {
                let old = self.cluster.pods.remove(&key);
                let topo = self.topo.local_pods.remove(&key).map(|_| self.topo.clone());
                self.compiler.pods_changed(&self.cluster, &[(old.as_ref(), None)], topo);
            }
            Change::AddPolicy(p) => {
                let (ns, name) = (p.namespace.clone(), p.name.clone());
                self.cluster.policies.insert((ns.clone(), name.clone()), p);
                self.compiler.policy_changed(&self.cluster, &ns, &name);
            }
            Change::RemovePolicy(ns, name) => {
                self.cluster.policies.remove(&(ns.clone(), name.clone()));
                self.compiler.policy_changed(&self.cluster, &ns, &name);
            }
            Change::SetClusterPolicy(p) => {
                self.cluster.cluster_policies.insert((p.kind, p.name.clone()), p);
                self.compiler.update(&old.expect("copied"), &self.cluster, self.topo.clone());
            }
            Change::RemoveClusterPolicy(kind, name) => {
                self.cluster.cluster_policies.remove(&(kind, name));
                self.compiler.update(&old.expect("copied"), &self.cluster, self.topo.clone());
            }
        }
        let keys = self.compiler.take_changed();
        let mods = diff_keys(self.compiler.flows(), &mut self.installed, &keys);
        let compiled_at = t.elapsed();
        if !mods.is_empty() {
            self.switch.bundle(&mods).await?;
        }
        self.switch.barrier().await?;
        let total = t.elapsed();
        Ok((ms(total), ms(compiled_at), ms(total - compiled_at), mods.len()))
    }
}

pub(crate) async fn run(quick: bool, seed: u64, events: Option<usize>) -> anyhow::Result<Report> {
    let spec = scale::spec(quick, seed);
    let per_kind = events.unwrap_or(if quick { 5 } else { 50 });
    let mut s = Scale::new(spec)?;
    let base = base_admin_policies(quick);
    for i in 0..base {
        let p = admin_policy(&s.syn, &format!("base-{i}"), i, (i % 1000) as u32)?;
        s.cluster.cluster_policies.insert((p.kind, p.name.clone()), p);
    }
    // The same seed with more policies gives the same cluster plus extra policies to add.
    let extra = Synthetic::generate(Spec { policies: spec.policies + per_kind, ..spec });
    let extra_policies: Vec<NetworkPolicy> =
        extra.policies[spec.policies..].iter().cloned().map(parse_policy).collect::<anyhow::Result<_>>()?;

    let sw = tokio::task::spawn_blocking(testbed::TestSwitch::with_bridge).await??;
    let switch = Switch::connect(&format!("unix:{}", sw.ovs.mgmt_socket("br-int").display())).await?;
    let initial = s.compile();
    let t = Instant::now();
    switch.bundle(&initial.flows.iter().cloned().map(FlowMod::add).collect::<Vec<_>>()).await?;
    let initial_ms = ms(t.elapsed());
    let flows = initial.flows.len();
    let compiler = NodeCompiler::new(&s.cluster, s.topo.clone());
    let mut node = Node { cluster: s.cluster.clone(), topo: s.topo.clone(), compiler, installed: initial.flows, switch };

    // The floor: an empty bundle and a barrier on the same connection.
    let mut floor = Vec::new();
    for _ in 0..(per_kind * 2).max(20) {
        let t = Instant::now();
        node.switch.bundle(&[]).await?;
        node.switch.barrier().await?;
        floor.push(ms(t.elapsed()));
    }

    let local_net = s.syn.nodes[0].pod_network.octets();
    let remote = s.syn.nodes.get(1).unwrap_or(&s.syn.nodes[0]).clone();
    let remote_net = remote.pod_network.octets();
    let mut samples: BTreeMap<Kind, Samples> = BTreeMap::new();
    let mut record = |k: Kind, (total, compile, bundle, mods): (f64, f64, f64, usize)| {
        let e = samples.entry(k).or_default();
        e.total_ms.push(total);
        e.compile_ms.push(compile);
        e.bundle_ms.push(bundle);
        e.flow_mods.push(mods as f64);
    };
    for (i, p) in extra_policies.iter().take(per_kind).enumerate() {
        super::progress(format_args!("churn: event round {} of {per_kind}", i + 1));
        let host = 150 + (i % 100) as u8;
        let pod = churn_pod(&s.syn, i, scale::NODE, Ipv4Addr::new(local_net[0], local_net[1], local_net[2], host));
        let (key, ip) = (pod.key.clone(), Ipv4Addr::new(local_net[0], local_net[1], local_net[2], host));
        let local = LocalPod { ofport: 5000 + i as u32, ip, mac: pipeline::compile::pod_mac_for(ip) };
        record(Kind::LocalPodAdd, node.event(Change::AddPod(pod, Some(local))).await?);
        record(Kind::LocalPodRemove, node.event(Change::RemovePod(key)).await?);

        let pod = churn_pod(&s.syn, i + 1, &remote.name, Ipv4Addr::new(remote_net[0], remote_net[1], remote_net[2], host));
        let key = pod.key.clone();
        record(Kind::RemotePodAdd, node.event(Change::AddPod(pod, None)).await?);
        record(Kind::RemotePodRemove, node.event(Change::RemovePod(key)).await?);

        let (ns, name) = (p.namespace.clone(), p.name.clone());
        record(Kind::PolicyAdd, node.event(Change::AddPolicy(p.clone())).await?);
        record(Kind::PolicyRemove, node.event(Change::RemovePolicy(ns, name)).await?);

        let added = admin_policy(&s.syn, &format!("churn-{i}"), base + i, (i % 1000) as u32)?;
        let (kind, name) = (added.kind, added.name.clone());
        record(Kind::ClusterPolicyAdd, node.event(Change::SetClusterPolicy(added)).await?);
        record(Kind::ClusterPolicyRemove, node.event(Change::RemoveClusterPolicy(kind, name)).await?);
        // A base policy moves to another priority and back.
        let moved = &s.cluster.cluster_policies[&(kind, format!("base-{}", i % base))];
        let elsewhere = policy::cluster_policy::ClusterPolicy { priority: (moved.priority + 500) % 1000, ..moved.clone() };
        record(Kind::ClusterPolicyReprioritize, node.event(Change::SetClusterPolicy(elsewhere)).await?);
        record(Kind::ClusterPolicyReprioritize, node.event(Change::SetClusterPolicy(moved.clone())).await?);
    }
    // The view must be back where it started: the last event restored the initial flows.
    anyhow::ensure!(node.installed == s.compile().flows, "after every add was removed, the flows differ from the start");

    // What the file-mode agent pays on top: re-reading every manifest on each change.
    let yaml = policy::synthetic::to_yaml(&s.syn.objects())?;
    let t = Instant::now();
    let reparsed = Cluster::from_sources([("cluster.yaml", yaml.as_str())]);
    let reparse_ms = ms(t.elapsed());
    anyhow::ensure!(reparsed.pods.len() == s.cluster.pods.len(), "re-parsed cluster lost pods");

    let mut report = Report::new(&["event", "n", "p50 ms", "p99 ms", "p99 / floor p50", "compile+diff p50 ms", "bundle+barrier p50 ms", "flow_mods p50", "flow_mods max"]);
    let floor_p50 = median(&floor);
    let mut data = serde_json::Map::new();
    let mut pod_totals = Vec::new();
    for k in Kind::ALL {
        let e = &samples[&k];
        if k.is_pod() {
            pod_totals.extend(e.total_ms.iter().copied());
        }
        report.row(vec![
            k.name().into(),
            e.total_ms.len().to_string(),
            fmt_num(median(&e.total_ms)),
            fmt_num(percentile(&e.total_ms, 99.0)),
            format!("{:.1}", percentile(&e.total_ms, 99.0) / floor_p50),
            fmt_num(median(&e.compile_ms)),
            fmt_num(median(&e.bundle_ms)),
            fmt_num(median(&e.flow_mods)),
            fmt_num(e.flow_mods.iter().copied().fold(0.0, f64::max)),
        ]);
        data.insert(k.name().into(), json!({"total_ms": e.total_ms, "compile_ms": e.compile_ms, "bundle_ms": e.bundle_ms, "flow_mods": e.flow_mods}));
    }
    report.row(vec![
        "empty bundle + barrier (floor)".into(),
        floor.len().to_string(),
        fmt_num(floor_p50),
        fmt_num(percentile(&floor, 99.0)),
        "1.0".into(),
        "".into(),
        fmt_num(floor_p50),
        "0".into(),
        "0".into(),
    ]);
    report.notes.push(format!(
        "Node {} of a {}-pod / {}-policy cluster with {base} AdminNetworkPolicies (seed {seed}), {flows} flows installed on a real ovs-vswitchd (initial bundle {:.0} ms). \
         Each event: change the cluster view in memory, update the node compiler (only the policies the change can affect), \
         diff the flows it touched, one bundle, barrier. flow_mods are the exact diff (the minimal delta by construction). The file-mode agent also parses the manifest file that changed \
         (cached per file; this whole cluster as one YAML file takes {reparse_ms:.0} ms), not included above.",
        scale::NODE,
        spec.pods,
        spec.policies,
        initial_ms,
    ));
    report.checks.push(Check::below("pod event p99 (event to barrier ack)", percentile(&pod_totals, 99.0), "ms", 20.0));
    data.insert("floor_ms".into(), json!(floor));
    data.insert("reparse_ms".into(), json!(reparse_ms));
    data.insert("flows".into(), json!(flows));
    report.data = serde_json::Value::Object(data);
    Ok(report)
}
