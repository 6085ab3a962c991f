//! Conformance cases (`/work/shared/conformance/README.md`): each file a cluster model and
//! ordered steps, each step the full set of policies in force and the connectivity expected.
//!
//! [`Case::parse`] reads a case file (netpol matrices or anp pair probes), [`placeholder`]
//! fills in addresses, and [`runner`] plays a case against any [`runner::Prober`]: the
//! oracle ([`runner::OracleProber`]) or real traffic on the testbed; [`history`] generates long
//! change sequences whose expectations are the oracle's.
pub mod history;
pub mod placeholder;
pub mod runner;
pub mod target;

use crate::model::{ClusterModel, ModelUpdates};
use crate::objects::PodKey;
use crate::protocol::Protocol;
use crate::truth_table::TruthTable;
use serde::{Deserialize, Serialize};
use target::Target;
use serde_json::Value;

/// A case file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    /// Upstream's test name.
    pub name: String,
    /// Upstream suite.
    #[serde(default)]
    pub source: Option<String>,
    /// anp: upstream's description.
    #[serde(default)]
    pub description: Option<String>,
    /// Upstream file, commit and details.
    #[serde(default)]
    pub upstream: Option<Value>,
    /// Whether pod-to-itself cells are not compared.
    #[serde(default)]
    pub ignore_loopback: bool,
    /// anp: how upstream probes.
    #[serde(default)]
    pub probe_semantics: Option<String>,
    /// anp: steps mutate the same objects, in order.
    #[serde(default)]
    pub sequential: Option<bool>,
    /// The cluster.
    pub model: ClusterModel,
    /// Free-form notes.
    #[serde(default)]
    pub notes: Option<String>,
    /// The steps, in order.
    pub steps: Vec<StepSpec>,
}

/// One step of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Step number.
    pub step: u32,
    /// anp: the subtest's name.
    #[serde(default)]
    pub name: Option<String>,
    /// netpol: what upstream changed before this step.
    #[serde(default)]
    pub change: Option<String>,
    /// anp: what changed before this step.
    #[serde(default)]
    pub changes: Option<Vec<String>>,
    /// Label changes made before the probes (they persist into later steps).
    #[serde(default)]
    pub model_updates: Option<ModelUpdates>,
    /// The complete set of policies in force (manifests, placeholders unfilled).
    #[serde(default)]
    pub policies: Vec<Value>,
    /// node: the warnings the step's objects must raise, each `object: field` (e.g.
    /// `ClusterNetworkPolicy.crd.antrea.io p: spec.appliedTo[0].nodeSelector`); any other
    /// warning fails the step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// What to probe and expect.
    pub probes: Vec<ProbeSpec>,
}

/// A probe entry: a matrix (netpol) or a pair (anp).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    /// Destination port.
    pub port: u16,
    /// Protocol.
    pub protocol: Protocol,
    /// netpol: the expected matrix lines.
    #[serde(default)]
    pub matrix: Option<Vec<String>>,
    /// anp: client pod (node: any [`Target`]).
    #[serde(default)]
    pub from: Option<String>,
    /// anp: server pod (node: any [`Target`]).
    #[serde(default)]
    pub to: Option<String>,
    /// anp: `allow` or `deny`.
    #[serde(default)]
    pub expect: Option<Expect>,
}

/// An anp probe's expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// The connection succeeds.
    Allow,
    /// The connection fails (times out).
    Deny,
}

/// What a probe expects, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expectation {
    /// Every pair of the matrix.
    Matrix(TruthTable),
    /// One pair.
    Pair {
        /// Client.
        from: Target,
        /// Server.
        to: Target,
        /// Whether it connects.
        allowed: bool,
    },
}

/// A checked probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Destination port.
    pub port: u16,
    /// Protocol.
    pub protocol: Protocol,
    /// What is expected.
    pub expect: Expectation,
}

/// A parsed and checked case.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// Where it was read from.
    pub source: String,
    /// The file as written.
    pub spec: CaseSpec,
    /// Probes per step, checked (same order as `spec.steps`).
    pub probes: Vec<Vec<Probe>>,
}

/// A case file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {field}: {message}")]
pub struct CaseError {
    /// The case file.
    pub file: String,
    /// The field path, e.g. `steps[0].probes[1].matrix`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl Case {
    /// Parses a case file's text.
    pub fn parse(source: &str, text: &str) -> Result<Case, CaseError> {
        let err = |field: String, message: String| CaseError { file: source.to_string(), field, message };
        let value: Value = crate::manifest::yaml_value(text).map_err(|e| err("-".into(), format!("not valid YAML: {e}")))?;
        let spec: CaseSpec = serde_path_to_error::deserialize(value).map_err(|e| err(e.path().to_string(), e.inner().to_string()))?;
        Case::from_spec(source, spec)
    }

    /// Checks a case written as a value (a generated history, say) as [`Case::parse`] checks
    /// a file.
    pub fn from_spec(source: &str, spec: CaseSpec) -> Result<Case, CaseError> {
        let err = |field: String, message: String| CaseError { file: source.to_string(), field, message };
        spec.model.check().map_err(|e| err(format!("model.{}", e.field), e.message))?;
        let known: Vec<PodKey> = spec.model.expand().iter().map(|p| p.key()).collect();
        let nodes = spec.model.named_nodes();
        let target = |s: &str, field: String| -> Result<Target, CaseError> {
            let t: Target = s.parse().map_err(|e: target::BadTarget| err(field.clone(), e.to_string()))?;
            let present = match &t {
                Target::Pod(k) => known.contains(k),
                Target::Node(n) => nodes.contains_key(n),
                Target::ExternalNode { namespace, name } => {
                    spec.model.external_nodes.iter().any(|e| &e.namespace == namespace && &e.name == name)
                }
            };
            if !present {
                return Err(err(field, format!("{t} is not in the model")));
            }
            Ok(t)
        };
        let mut probes = Vec::new();
        for (s, step) in spec.steps.iter().enumerate() {
            let mut list = Vec::new();
            for (i, p) in step.probes.iter().enumerate() {
                let at = format!("steps[{s}].probes[{i}]");
                let expect = match (&p.matrix, &p.from, &p.to, p.expect) {
                    (Some(lines), None, None, None) => {
                        let t = TruthTable::parse(lines).map_err(|e| err(format!("{at}.matrix"), e.to_string()))?;
                        for k in &t.pods {
                            if !known.contains(k) {
                                return Err(err(format!("{at}.matrix"), format!("pod {k} is not in the model")));
                            }
                        }
                        Expectation::Matrix(t)
                    }
                    (None, Some(from), Some(to), Some(e)) => Expectation::Pair {
                        from: target(from, format!("{at}.from"))?,
                        to: target(to, format!("{at}.to"))?,
                        allowed: e == Expect::Allow,
                    },
                    _ => {
                        return Err(err(at, "a probe has either `matrix` or all of `from`, `to` and `expect`".into()));
                    }
                };
                list.push(Probe { port: p.port, protocol: p.protocol, expect });
            }
            probes.push(list);
        }
        Ok(Case { source: source.to_string(), spec, probes })
    }
}
