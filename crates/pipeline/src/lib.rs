//! The pipeline compiler: cluster rules + the node's local endpoints + topology → the desired
//! flows of every table, as `openflow` values, and the diff against what is installed.
//!
//! Tables are declared once in [`table`]; every flow is built against that declaration
//! ([`flow`]). [`forwarding`] holds the pod-connectivity flows, [`conjunction`] the policy
//! flows, [`NodeCompiler`] puts them together and keeps them up to date as events arrive and [`diff()`] turns desired vs installed into
//! flow_mods.
#![warn(missing_docs)]

pub mod address;
pub mod audit;
pub mod compile;
pub mod conjunction;
pub mod cookie;
pub mod diff;
pub mod docs;
pub mod flow;
pub mod forwarding;
pub mod host_interface;
pub mod node_compiler;
pub mod node_policy;
pub mod placement;
pub mod port_range;
pub mod reg;
pub mod reject;
mod resolution;
pub mod rule_flows;
pub mod shared_conj;
pub mod table;
pub mod topology;
pub mod traffic_control;

pub use compile::{Compiled, compile, offline_topology};
pub use diff::{diff, diff_keys};
pub use flow::{FlowKey, FlowSet};
pub use node_compiler::NodeCompiler;
pub use table::Table;
pub use topology::{HostInterface, LocalPod, RemoteNode, Topology};
