//! Conformance cases on real traffic: a [`policy::conformance::Prober`] backed by the testbed.
//!
//! A case's pods are brought up once and reused by every later case with the same pods (all
//! upstream netpol cases share the standard model); each step's labels are written into the
//! agents' cluster view and its policies into one manifest file, and the step is in force once
//! every agent reports the new sync token. Probes are real TCP/UDP/SCTP exchanges.

use crate::probe::{ProbeOptions, ProbeSpec, probe_all, probe_all_with};
use crate::up::{UpOptions, up};
use crate::{Error, Testbed};
use policy::conformance::Case;
use policy::conformance::runner::{Deployment, ProbeError, Prober, StepState};
use policy::conformance::target::Target;
use policy::{ModelPod, PodKey, Protocol};
use std::collections::BTreeMap;
use std::time::Duration;

/// The file every step's policies go into, in each agent's manifests directory.
const POLICY_FILE: &str = "conformance-policies.yaml";

/// Plays conformance cases on a testbed it brings up (and takes down when dropped).
pub struct TestbedProber {
    /// How to bring the testbed up; `model` is replaced by each case's file.
    options: UpOptions,
    /// How long a step may take to be realized.
    sync_timeout: Duration,
    tb: Option<Testbed>,
    /// What the running testbed was built for ([`built_for`]).
    built: Option<serde_json::Value>,
    scratch: tempfile::TempDir,
    progress: Box<dyn FnMut(&str)>,
}

impl TestbedProber {
    /// A prober that brings testbeds up with `options` (any `model` there is ignored).
    pub fn new(options: UpOptions, progress: Box<dyn FnMut(&str)>) -> Result<Self, Error> {
        let scratch = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
        Ok(TestbedProber { options, sync_timeout: Duration::from_secs(60), tb: None, built: None, scratch, progress })
    }

    fn testbed(&self) -> Result<&Testbed, ProbeError> {
        self.tb.as_ref().ok_or_else(|| "the testbed is not up".into())
    }

    /// Whether the running testbed was built for what this case needs (labels aside, which
    /// every step writes).
    fn holds(&self, case: &Case, pods: &[ModelPod]) -> bool {
        self.tb.is_some() && self.built.as_ref() == Some(&built_for(case, pods))
    }

    /// The testbed the last case ran on, while it is up.
    pub fn current(&self) -> Option<&Testbed> {
        self.tb.as_ref()
    }

    /// Leaves the testbed up when the prober is dropped.
    pub fn keep(&mut self) {
        self.tb = None;
    }

    fn take_down(&mut self) {
        if let Some(tb) = self.tb.take() {
            let _ = crate::down(tb.dir(), &mut |_| {});
        }
    }
}

/// What a testbed is built from: every pod with its node, ports and host network, the ports
/// the hosts serve, the nodes named and the VMs. Labels are not: every step writes them.
fn built_for(case: &Case, pods: &[ModelPod]) -> serde_json::Value {
    let model = &case.spec.model;
    let mut pods: Vec<_> = pods.iter().map(|p| (p.key().to_string(), &p.node, &p.ports, p.host_network)).collect();
    pods.sort_by(|a, b| a.0.cmp(&b.0));
    let nodes: Vec<&String> = model.nodes.iter().flat_map(|n| n.named.keys()).collect();
    let vms: Vec<_> = model.external_nodes.iter().map(|e| (&e.namespace, &e.name, &e.interface)).collect();
    serde_json::json!({ "pods": pods, "host_ports": model.host_ports, "nodes": nodes, "vms": vms })
}

impl Drop for TestbedProber {
    fn drop(&mut self) {
        self.take_down();
    }
}

impl Prober for TestbedProber {
    fn start(&mut self, case: &Case, pods: &[ModelPod]) -> Result<Deployment, ProbeError> {
        if !self.holds(case, pods) {
            self.take_down();
            // The case's model, written out: a generated case has no file of its own.
            let model = self.scratch.path().join("model.json");
            let text = serde_json::to_string(&serde_json::json!({ "model": case.spec.model })).map_err(|e| e.to_string())?;
            std::fs::write(&model, text).map_err(|e| Error::io(&model, e))?;
            let mut opts = self.options.clone();
            opts.model = model;
            (self.progress)(&format!("bringing up a testbed for {}", case.source));
            let tb = up(&opts, &mut |line| (self.progress)(line)).inspect_err(|_| {
                // A testbed that failed half way is not left behind (its namespaces and daemons).
                let _ = crate::down(&opts.dir, &mut |_| {});
            })?;
            self.tb = Some(tb);
            self.built = Some(built_for(case, pods));
        }
        let tb = self.testbed()?;
        let mut d = Deployment::default();
        for p in tb.pods() {
            let key: PodKey = p.key().parse().map_err(|e| format!("{e:?}"))?;
            d.pod_ips.insert(key.clone(), p.ip.into());
            d.pod_nodes.insert(key, p.node.clone());
        }
        for n in tb.nodes() {
            d.node_ips.insert(n.name.clone(), n.underlay_ip.into());
        }
        for v in tb.vms() {
            d.external_node_ips.insert((v.namespace.clone(), v.name.clone()), v.ip.into());
        }
        Ok(d)
    }

    fn apply(&mut self, state: &StepState<'_>) -> Result<(), ProbeError> {
        let sync_timeout = self.sync_timeout;
        let path = self.scratch.path().join(POLICY_FILE);
        let tb = self.tb.as_mut().ok_or("the testbed is not up")?;
        // Labels as the step has them (model updates included).
        let namespaces: BTreeMap<String, policy::Labels> =
            state.cluster.namespaces.iter().map(|(n, ns)| (n.clone(), ns.labels.clone())).collect();
        let pods: BTreeMap<String, policy::Labels> =
            state.cluster.pods.values().map(|p| (p.key.to_string(), p.labels.clone())).collect();
        let vms: BTreeMap<String, policy::Labels> =
            state.cluster.external_nodes.values().map(|e| (format!("{}/{}", e.namespace, e.name), e.labels.clone())).collect();
        tb.set_vm_labels(&vms)?;
        tb.set_labels(&namespaces, &pods)?;
        // Everything but the cluster objects the testbed writes itself.
        let mut text = String::from("# policies of the current conformance step\n");
        for m in state.manifests {
            let kind = m.get("kind").and_then(|k| k.as_str()).unwrap_or("");
            if matches!(kind, "Namespace" | "Pod" | "Node" | "ExternalNode") {
                continue;
            }
            text.push_str("---\n");
            text.push_str(&serde_json::to_string(m).map_err(|e| e.to_string())?);
            text.push('\n');
        }
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        let (_, report) = tb.apply(&[path], sync_timeout)?;
        if let Some(report) = report {
            let errors: Vec<String> = report
                .iter()
                .flat_map(|(node, s)| s.errors.iter().map(move |e| format!("{node}: {}: {}: {}", e.object, e.field, e.message)))
                .collect();
            if !errors.is_empty() {
                return Err(format!("the agents rejected objects: {}", errors.join("; ")).into());
            }
        }
        Ok(())
    }

    fn probe(&mut self, from: &PodKey, to: &PodKey, port: u16, protocol: Protocol) -> bool {
        self.probe_many(&[(from.clone(), to.clone())], port, protocol).pop().unwrap_or(false)
    }

    /// Pods, nodes' hosts (`node:NAME`: a probe from or to the node's own namespace and
    /// address) and VMs (`externalnode:ns/NAME`: the VM's namespace and address).
    fn probe_target(&mut self, from: &Target, to: &Target, port: u16, protocol: Protocol) -> Result<bool, ProbeError> {
        let spec = ProbeSpec { from: from.to_string(), to: to.to_string(), port, protocol };
        let tb = self.testbed()?;
        Ok(probe_answered(tb, &[spec])?.pop().unwrap_or(false))
    }

    fn probe_many(&mut self, pairs: &[(PodKey, PodKey)], port: u16, protocol: Protocol) -> Vec<bool> {
        let Ok(tb) = self.testbed() else { return vec![false; pairs.len()] };
        let specs: Vec<ProbeSpec> = pairs
            .iter()
            .map(|(a, b)| ProbeSpec { from: a.to_string(), to: b.to_string(), port, protocol })
            .collect();
        match probe_all(tb, &specs) {
            Ok(results) => results.into_iter().map(|r| r.allowed).collect(),
            Err(e) => {
                (self.progress)(&format!("probing failed: {e}"));
                vec![false; pairs.len()]
            }
        }
    }
}

/// Whether each probe from or to a host was answered: those that were not are asked once
/// more, waiting past TCP's first retransmission (1 s). A host's path crosses moved interfaces
/// (a VM's, an OVS-mode node's uplink) whose neighbours resolve through the bridges' upcalls,
/// so on a loaded machine a host's first SYN can wait out the first timeout. A cell counts as
/// allowed if any attempt was answered, so a connection that should be denied and gets
/// through even once is still caught. (Pods' probes, most of the cells, are asked once.)
fn probe_answered(tb: &Testbed, specs: &[ProbeSpec]) -> Result<Vec<bool>, Error> {
    let mut answered: Vec<bool> = probe_all(tb, specs)?.into_iter().map(|r| r.allowed).collect();
    let again: Vec<usize> = (0..specs.len()).filter(|&i| !answered[i]).collect();
    if again.is_empty() {
        return Ok(answered);
    }
    let retry = ProbeOptions { timeout: RETRY_TIMEOUT, ..ProbeOptions::default() };
    let specs_again: Vec<ProbeSpec> = again.iter().map(|&i| specs[i].clone()).collect();
    for (i, r) in again.into_iter().zip(probe_all_with(tb, &specs_again, retry)?) {
        answered[i] = r.allowed;
    }
    Ok(answered)
}

/// How long an unanswered probe's second attempt waits: past TCP's first retransmission.
const RETRY_TIMEOUT: Duration = Duration::from_millis(1500);
