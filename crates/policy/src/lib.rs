//! weir's policy layer: the cluster view, Kubernetes NetworkPolicy, the normalized rules the
//! pipeline compiles, and the reference evaluator (the oracle) that says what the rules mean.
//!
//! Pure: data in, verdicts out. No OpenFlow, no I/O beyond parsing the text it is given.
//!
//! - [`manifest`]: YAML manifests → checked objects, or errors naming object and field;
//! - [`Cluster`]: the in-memory view built from them, host endpoints ([`external_node`],
//!   Kubernetes Nodes) beside pods;
//! - [`cluster_policy`]: the admin and baseline tiers (ClusterNetworkPolicy, AdminNetworkPolicy,
//!   BaselineAdminNetworkPolicy) in one checked shape;
//! - [`Cluster::rules`] → [`RuleSet`]: every policy as normalized [`Rule`]s plus isolation;
//! - [`RuleSet::concrete`]: the addresses-and-numbers form the pipeline compiles;
//! - [`evaluate`]: the oracle's verdict for one packet, naming the deciding rule;
//! - [`model`] and [`conformance`]: the conformance case format and its runner.
#![warn(missing_docs, unreachable_pub)]

pub mod cluster;
pub mod cluster_policy;
pub mod concrete;
pub mod conformance;
#[cfg(feature = "crd")]
pub mod crd;
pub mod evaluate;
pub mod external_node;
pub mod manifest;
pub mod model;
pub mod netpol;
pub mod objects;
pub mod protocol;
pub mod rules;
pub mod selector;
pub mod syntax;
pub mod synthetic;
pub mod traffic_control;
pub mod truth_table;

pub use cluster::Cluster;
pub use concrete::{ConcreteRule, ConcreteServices, PeerAddrs, PortRange};
pub use evaluate::{Decision, Outcome, Packet, Verdict, evaluate};
pub use external_node::{ExternalEntity, ExternalEntityKey, ExternalNode, HostInterface};
pub use manifest::{Manifests, Object, ObjectError};
pub use model::{ClusterModel, ModelPod};
pub use netpol::{Direction, IpBlock, NetworkPolicy, PortMatch, Service};
pub use objects::{ContainerPort, Labels, Namespace, Node, Pod, PodKey};
pub use protocol::Protocol;
pub use rules::{Action, AuditLog, Dependence, Endpoint, Isolation, Origin, Peers, PolicyKind, PolicyRef, Rule, RuleId, RuleSet, Services, Tier};
pub use selector::{FieldError, Selector};
pub use truth_table::TruthTable;
