//! weir's policy layer: the cluster view, Kubernetes NetworkPolicy, the normalized rules the
//! pipeline compiles, and the reference evaluator (the oracle) that says what the rules mean.
//!
//! Pure: data in, verdicts out. No OpenFlow, no I/O beyond parsing the text it is given.
#![warn(missing_docs, unreachable_pub)]

pub mod model;
pub mod objects;
pub mod protocol;

pub use model::{ClusterModel, ModelPod};
pub use objects::{ContainerPort, Labels, Namespace, Node, Pod, PodKey};
pub use protocol::Protocol;
