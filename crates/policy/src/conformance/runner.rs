//! Plays conformance cases against a [`Prober`] and compares what it sees with the
//! expectations, cell by cell.
//!
//! The runner owns the case logic — model expansion, label updates (which persist into later
//! steps), placeholder substitution, the manifests of each step, the loopback rule — and the
//! prober owns the world: [`OracleProber`] asks the reference evaluator, the testbed's prober
//! sends real packets.
use super::placeholder::substitute_targets;
use super::target::Target;
use super::{Case, CaseError, CaseSpec, Expectation, StepSpec};
use crate::cluster::Cluster;
use crate::evaluate::{Packet, evaluate};
use crate::manifest::{self, Manifests};
use crate::model::{self, ModelPod};
use crate::objects::{Namespace, PodKey};
use crate::protocol::Protocol;
use crate::rules::RuleSet;
use crate::truth_table::TruthTable;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

/// Any error a prober reports.
pub type ProbeError = Box<dyn std::error::Error + Send + Sync>;

/// Where a prober put the case's pods.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Deployment {
    /// Each pod's address (a hostNetwork pod's is its node's).
    pub pod_ips: BTreeMap<PodKey, IpAddr>,
    /// Each pod's node.
    pub pod_nodes: BTreeMap<PodKey, String>,
    /// Each node's internal address.
    pub node_ips: BTreeMap<String, IpAddr>,
    /// Each ExternalNode's interface address, by (namespace, name).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub external_node_ips: BTreeMap<(String, String), IpAddr>,
}

impl Deployment {
    /// The address of a probe target.
    pub fn address(&self, target: &Target) -> Option<IpAddr> {
        match target {
            Target::Pod(k) => self.pod_ips.get(k).copied(),
            Target::Node(n) => self.node_ips.get(n).copied(),
            Target::ExternalNode { namespace, name } => self.external_node_ips.get(&(namespace.clone(), name.clone())).copied(),
        }
    }

    /// Every target's address: what placeholders are filled with.
    pub fn addresses(&self) -> BTreeMap<Target, IpAddr> {
        let pods = self.pod_ips.iter().map(|(k, ip)| (Target::Pod(k.clone()), *ip));
        let nodes = self.node_ips.iter().map(|(n, ip)| (Target::Node(n.clone()), *ip));
        let external = self.external_node_ips.iter().map(|((ns, n), ip)| (Target::ExternalNode { namespace: ns.clone(), name: n.clone() }, *ip));
        pods.chain(nodes).chain(external).collect()
    }
}

/// The state a step asks the prober to enforce.
#[derive(Debug)]
pub struct StepState<'a> {
    /// The case.
    pub case: &'a Case,
    /// The step.
    pub step: &'a StepSpec,
    /// Every manifest in force: Nodes, Namespaces, Pods (with nodeName and podIP) and the
    /// step's policies with placeholders filled. Write them out for an agent to read.
    pub manifests: &'a [Value],
    /// The same manifests as a cluster view.
    pub cluster: &'a Cluster,
}

/// The world a case is played in.
pub trait Prober {
    /// Brings up the case's pods; `pods` come from the model (some pinned to nodes).
    fn start(&mut self, case: &Case, pods: &[ModelPod]) -> Result<Deployment, ProbeError>;
    /// Enforces a step's state; returns once it is in force.
    fn apply(&mut self, state: &StepState<'_>) -> Result<(), ProbeError>;
    /// Whether a connection from `from` to `to` on `port`/`protocol` succeeds.
    fn probe(&mut self, from: &PodKey, to: &PodKey, port: u16, protocol: Protocol) -> bool;
    /// Probes many pairs (a prober may run them in parallel); in order of `pairs`.
    fn probe_many(&mut self, pairs: &[(PodKey, PodKey)], port: u16, protocol: Protocol) -> Vec<bool> {
        pairs.iter().map(|(a, b)| self.probe(a, b, port, protocol)).collect()
    }
    /// Whether a connection between two targets, pods or host endpoints, succeeds. A prober
    /// that cannot reach host endpoints says so (an error fails the step, never a guess).
    fn probe_target(&mut self, from: &Target, to: &Target, port: u16, protocol: Protocol) -> Result<bool, ProbeError> {
        match (from.pod(), to.pod()) {
            (Some(a), Some(b)) => Ok(self.probe(a, b, port, protocol)),
            _ => Err(format!("this prober cannot probe host endpoints yet ({from} -> {to})").into()),
        }
    }
    /// Tears down after a case, whatever happened.
    fn finish(&mut self) {}
}

/// One cell that differs from the expectation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CellDiff {
    /// Client.
    pub from: Target,
    /// Server.
    pub to: Target,
    /// Expected to connect.
    pub expected: bool,
    /// Connected.
    pub actual: bool,
}

/// The result of one probe entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeReport {
    /// Port.
    pub port: u16,
    /// Protocol.
    pub protocol: Protocol,
    /// The observed table (matrix probes only).
    pub actual: Option<TruthTable>,
    /// Cells that differ (never the diagonal when the case ignores loopback).
    pub diffs: Vec<CellDiff>,
}

/// The result of one step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StepReport {
    /// Step number.
    pub step: u32,
    /// Problems that are not cell differences (bad placeholders, rejected manifests, a
    /// prober failure).
    pub errors: Vec<String>,
    /// Probe results.
    pub probes: Vec<ProbeReport>,
}

/// The result of one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseReport {
    /// The case file.
    pub source: String,
    /// The case name.
    pub name: String,
    /// A failure that stopped the case.
    pub error: Option<String>,
    /// Per step.
    pub steps: Vec<StepReport>,
    /// Cells compared.
    pub cells: usize,
}

impl CaseReport {
    /// Whether everything matched.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.steps.iter().all(|s| s.errors.is_empty() && s.probes.iter().all(|p| p.diffs.is_empty()))
    }

    /// A human-readable account of what failed (empty when it passed).
    pub fn render_failures(&self) -> String {
        let mut out = String::new();
        if let Some(e) = &self.error {
            let _ = writeln!(out, "  error: {e}");
        }
        for s in &self.steps {
            for e in &s.errors {
                let _ = writeln!(out, "  step {}: {e}", s.step);
            }
            for p in s.probes.iter().filter(|p| !p.diffs.is_empty()) {
                let _ = writeln!(out, "  step {}, {}/{}: {} wrong cell(s)", s.step, p.port, p.protocol, p.diffs.len());
                for d in &p.diffs {
                    let sym = |b: bool| if b { "." } else { "X" };
                    let _ = writeln!(out, "    {} -> {}: expected {}, got {}", d.from, d.to, sym(d.expected), sym(d.actual));
                }
                if let Some(t) = &p.actual {
                    let _ = writeln!(out, "    observed (wrong cells marked !):");
                    let marked = t.render_marked(|i, j| {
                        p.diffs.iter().any(|d| d.from.pod() == Some(&t.pods[i]) && d.to.pod() == Some(&t.pods[j]))
                    });
                    for line in marked.lines() {
                        let _ = writeln!(out, "      {line}");
                    }
                }
            }
        }
        out
    }
}

fn manifests_of(
    model: &crate::model::ClusterModel,
    namespaces: &[Namespace],
    pods: &[ModelPod],
    deployment: &Deployment,
    policies: Vec<Value>,
) -> Vec<Value> {
    // Every node carries the model's node labels (what `nodes` peers select), and a named
    // node its own labels too.
    let common = model.nodes.as_ref().map(|n| n.labels.clone()).unwrap_or_default();
    let named = model.named_nodes();
    let mut out: Vec<Value> = deployment
        .node_ips
        .iter()
        .map(|(name, ip)| {
            let labels = named.get(name).unwrap_or(&common);
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
                   "status": {"addresses": [{"type": "InternalIP", "address": ip.to_string()}]}})
        })
        .collect();
    for n in &model.external_nodes {
        let ips: Vec<String> = deployment.external_node_ips.get(&(n.namespace.clone(), n.name.clone())).map(IpAddr::to_string).into_iter().collect();
        out.push(json!({"apiVersion": "crd.antrea.io/v1alpha1", "kind": "ExternalNode",
            "metadata": {"name": n.name, "namespace": n.namespace, "labels": n.labels},
            "spec": {"interfaces": [{"name": n.interface, "ips": ips}]}}));
    }
    out.extend(namespaces.iter().map(|ns| {
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns.name, "labels": ns.labels}})
    }));
    for pod in pods {
        let key = pod.key();
        let ports: Vec<Value> = pod
            .ports
            .iter()
            .map(|p| {
                let mut v = json!({"containerPort": p.port, "protocol": p.protocol.as_str()});
                if let Some(n) = &p.name {
                    v["name"] = json!(n);
                }
                v
            })
            .collect();
        let mut spec = json!({"hostNetwork": pod.host_network, "containers": [{"name": "server", "ports": ports}]});
        if let Some(node) = deployment.pod_nodes.get(&key).or(pod.node.as_ref()) {
            spec["nodeName"] = json!(node);
        }
        let mut doc = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod.name, "namespace": pod.namespace, "labels": pod.labels}, "spec": spec});
        if let Some(ip) = deployment.pod_ips.get(&key) {
            doc["status"] = json!({"podIP": ip.to_string(), "podIPs": [{"ip": ip.to_string()}]});
        }
        out.push(doc);
    }
    out.extend(policies);
    out
}

fn probe_matrix(
    prober: &mut dyn Prober,
    expected: &TruthTable,
    pairs: &[(PodKey, PodKey)],
    port: u16,
    protocol: Protocol,
) -> TruthTable {
    let mut it = prober.probe_many(pairs, port, protocol).into_iter();
    TruthTable::build(expected.pods.clone(), |_, _| it.next().unwrap_or(false))
}

fn differs(expected: &TruthTable, actual: &TruthTable, ignore_loopback: bool) -> bool {
    let n = expected.pods.len();
    (0..n).any(|i| (0..n).any(|j| !(i == j && ignore_loopback) && expected.cells[i][j] != actual.cells[i][j]))
}

/// Plays one case.
pub fn run_case(case: &Case, prober: &mut dyn Prober) -> CaseReport {
    let mut report = CaseReport {
        source: case.source.clone(),
        name: case.spec.name.clone(),
        error: None,
        steps: Vec::new(),
        cells: 0,
    };
    let mut namespaces = case.spec.model.namespaces();
    let mut pods = case.spec.model.expand();
    let deployment = match prober.start(case, &pods) {
        Ok(d) => d,
        Err(e) => {
            report.error = Some(format!("starting the pods: {e}"));
            prober.finish();
            return report;
        }
    };
    for (step, probes) in case.spec.steps.iter().zip(&case.probes) {
        let mut sr = StepReport { step: step.step, ..StepReport::default() };
        if let Some(Err(e)) = step.model_updates.as_ref().map(|u| u.apply(&mut namespaces, &mut pods)) {
            sr.errors.push(e.to_string());
        }
        let mut policies = Vec::new();
        let addresses = deployment.addresses();
        for (i, p) in step.policies.iter().enumerate() {
            match substitute_targets(p, &addresses) {
                Ok(v) => policies.push(v),
                Err(e) => sr.errors.push(format!("policies[{i}]: {e}")),
            }
        }
        let manifests = manifests_of(&case.spec.model, &namespaces, &pods, &deployment, policies);
        let mut parsed = Manifests::default();
        for (i, v) in manifests.iter().enumerate() {
            manifest::add_value(&case.source, &format!("manifest {i}"), v.clone(), &mut parsed);
        }
        let cluster = Cluster::from_manifests(parsed);
        sr.errors.extend(cluster.errors.iter().map(|e| format!("rejected: {e}")));
        sr.errors.extend(cluster.notes.iter().filter(|n| n.contains("skipped")).cloned());
        sr.errors.extend(unexpected_warnings(&cluster, &step.warnings));
        let state = StepState { case, step, manifests: &manifests, cluster: &cluster };
        if let Err(e) = prober.apply(&state) {
            sr.errors.push(format!("applying the step: {e}"));
            report.steps.push(sr);
            continue;
        }
        for probe in probes {
            let mut pr = ProbeReport { port: probe.port, protocol: probe.protocol, actual: None, diffs: Vec::new() };
            match &probe.expect {
                Expectation::Matrix(expected) => {
                    let pairs: Vec<(PodKey, PodKey)> = expected
                        .pods
                        .iter()
                        .flat_map(|a| expected.pods.iter().map(move |b| (a.clone(), b.clone())))
                        .collect();
                    let mut actual = probe_matrix(prober, expected, &pairs, probe.port, probe.protocol);
                    // As upstream's ValidateOrFail: a matrix with wrong cells is probed once more
                    // and the second pass is the verdict.
                    if differs(expected, &actual, case.spec.ignore_loopback) {
                        actual = probe_matrix(prober, expected, &pairs, probe.port, probe.protocol);
                    }
                    for (i, from) in expected.pods.iter().enumerate() {
                        for (j, to) in expected.pods.iter().enumerate() {
                            if i == j && case.spec.ignore_loopback {
                                continue;
                            }
                            report.cells += 1;
                            if expected.cells[i][j] != actual.cells[i][j] {
                                pr.diffs.push(CellDiff {
                                    from: Target::Pod(from.clone()),
                                    to: Target::Pod(to.clone()),
                                    expected: expected.cells[i][j],
                                    actual: actual.cells[i][j],
                                });
                            }
                        }
                    }
                    pr.actual = Some(actual);
                }
                Expectation::Pair { from, to, allowed } => {
                    if !(from == to && case.spec.ignore_loopback) {
                        report.cells += 1;
                        let actual = match (from.pod(), to.pod()) {
                            (Some(a), Some(b)) => Ok(prober.probe(a, b, probe.port, probe.protocol)),
                            _ => prober.probe_target(from, to, probe.port, probe.protocol),
                        };
                        match actual {
                            Ok(actual) if actual != *allowed => {
                                pr.diffs.push(CellDiff { from: from.clone(), to: to.clone(), expected: *allowed, actual })
                            }
                            Ok(_) => {}
                            Err(e) => sr.errors.push(format!("probing {from} -> {to} {}/{}: {e}", probe.port, probe.protocol)),
                        }
                    }
                }
            }
            sr.probes.push(pr);
        }
        report.steps.push(sr);
    }
    prober.finish();
    report
}

/// The warnings of a step that differ from those it expects (`object: field` each): one
/// expected and missing, or one raised and not expected.
fn unexpected_warnings(cluster: &Cluster, expected: &[String]) -> Vec<String> {
    let raised: Vec<String> = cluster.warnings.iter().map(|w| format!("{}: {}", w.object, w.field)).collect();
    let missing = expected.iter().filter(|e| !raised.contains(e)).map(|e| format!("expected warning not raised: {e}"));
    let extra = cluster.warnings.iter().filter(|w| !expected.contains(&format!("{}: {}", w.object, w.field))).map(|w| format!("unexpected warning: {w}"));
    missing.chain(extra).collect()
}

/// The reference evaluator as a prober: pods get made-up addresses inside 10.0.0.0/8 (so
/// the cases' `{{cidr P 4}}` blocks hold every pod), nodes inside 172.18.0.0/16, external
/// nodes inside 192.168.50.0/24 (outside both).
#[derive(Debug, Default)]
pub struct OracleProber {
    nodes: Vec<String>,
    cluster: Cluster,
    rules: RuleSet,
    deployment: Deployment,
}

impl OracleProber {
    /// An oracle spreading unplaced pods over two nodes.
    pub fn new() -> Self {
        OracleProber { nodes: vec!["node-1".into(), "node-2".into()], ..Default::default() }
    }

    fn ip(&self, key: &PodKey) -> Option<IpAddr> {
        self.cluster.pod(key).and_then(|p| p.ips.first().copied())
    }
}

impl Prober for OracleProber {
    fn start(&mut self, case: &Case, pods: &[ModelPod]) -> Result<Deployment, ProbeError> {
        let mut pods = pods.to_vec();
        let named: Vec<String> = case.spec.model.named_nodes().into_keys().collect();
        let nodes = if named.is_empty() { &self.nodes } else { &named };
        let placed = model::spread(&mut pods, nodes);
        let mut d = Deployment::default();
        let mut node_names: Vec<String> = placed.values().cloned().chain(named.iter().cloned()).collect();
        node_names.sort();
        node_names.dedup();
        for (n, node) in node_names.iter().enumerate() {
            let n = u8::try_from(n + 2).map_err(|_| "too many nodes for the oracle's address plan")?;
            d.node_ips.insert(node.clone(), IpAddr::from([172, 18, 0, n]));
        }
        for (i, pod) in pods.iter().enumerate() {
            let node = placed[&pod.key()].clone();
            let ip = if pod.host_network {
                d.node_ips[&node]
            } else {
                let hi = u8::try_from(i / 200).map_err(|_| "too many pods for the oracle's address plan")?;
                IpAddr::from([10, 244, hi, (i % 200) as u8 + 10])
            };
            d.pod_ips.insert(pod.key(), ip);
            d.pod_nodes.insert(pod.key(), node);
        }
        for (i, n) in case.spec.model.external_nodes.iter().enumerate() {
            let i = u8::try_from(i + 10).map_err(|_| "too many external nodes for the oracle's address plan")?;
            d.external_node_ips.insert((n.namespace.clone(), n.name.clone()), IpAddr::from([192, 168, 50, i]));
        }
        self.deployment = d.clone();
        Ok(d)
    }

    fn apply(&mut self, state: &StepState<'_>) -> Result<(), ProbeError> {
        self.cluster = state.cluster.clone();
        self.rules = self.cluster.rules();
        Ok(())
    }

    fn probe(&mut self, from: &PodKey, to: &PodKey, port: u16, protocol: Protocol) -> bool {
        let (Some(src), Some(dst)) = (self.ip(from), self.ip(to)) else { return false };
        evaluate(&self.cluster, &self.rules, &Packet { src, dst, protocol, dst_port: port }).allowed
    }

    fn probe_target(&mut self, from: &Target, to: &Target, port: u16, protocol: Protocol) -> Result<bool, ProbeError> {
        let address = |t: &Target| self.deployment.address(t).ok_or_else(|| format!("{t} has no address"));
        let (src, dst) = (address(from)?, address(to)?);
        Ok(evaluate(&self.cluster, &self.rules, &Packet { src, dst, protocol, dst_port: port }).allowed)
    }
}

/// The case of `spec` with every probe a matrix over all the model's pods, expected as the
/// oracle decides each step: for histories whose truth nobody wrote down (generated change
/// sequences, regression sequences). Each probe's `port` and `protocol` are kept; any
/// `matrix`, `from`, `to` or `expect` it had is replaced. A step the oracle cannot play (a
/// rejected policy, a bad placeholder) is an error naming the step.
pub fn with_oracle_matrices(source: &str, mut spec: CaseSpec) -> Result<Case, CaseError> {
    let pods: Vec<PodKey> = spec.model.expand().iter().map(ModelPod::key).collect();
    let blank = TruthTable::build(pods, |_, _| false);
    set_matrices(&mut spec, |_, _| &blank);
    let draft = Case::from_spec(source, spec.clone())?;
    let report = run_case(&draft, &mut OracleProber::new());
    let err = |field: String, message: String| CaseError { file: source.to_string(), field, message };
    if let Some(e) = &report.error {
        return Err(err("model".into(), e.clone()));
    }
    for (i, step) in report.steps.iter().enumerate() {
        if let Some(e) = step.errors.first() {
            return Err(err(format!("steps[{i}]"), e.clone()));
        }
    }
    let actual = |s: usize, p: usize| report.steps[s].probes[p].actual.as_ref().expect("every probe is a matrix");
    set_matrices(&mut spec, actual);
    Case::from_spec(source, spec)
}

/// Makes every probe of `spec` a matrix probe with `table(step, probe)` as its expectation.
fn set_matrices<'t>(spec: &mut CaseSpec, table: impl Fn(usize, usize) -> &'t TruthTable) {
    for (s, step) in spec.steps.iter_mut().enumerate() {
        for (p, probe) in step.probes.iter_mut().enumerate() {
            probe.matrix = Some(table(s, p).to_string().lines().map(str::to_string).collect());
            (probe.from, probe.to, probe.expect) = (None, None, None);
        }
    }
}

/// Totals over many cases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed.
    pub failed: usize,
}

impl Summary {
    /// Counts a report.
    pub fn add(&mut self, r: &CaseReport) {
        if r.passed() {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)
    }
}
