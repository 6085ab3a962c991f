//! The network-namespace testbed: emulated nodes (a network namespace each, with its own
//! `ovsdb-server` and userspace `ovs-vswitchd`), pods as namespaces on `br-int`, and probes.
//!
//! Everything this crate creates is named from a prefix it owns and removed by pid and name,
//! never by a pattern that could touch something it did not create.
#![warn(unreachable_pub, missing_docs)]

pub mod netns;
pub mod ovs;
pub mod command;

pub use command::{CommandError, run};
pub use netns::Netns;
pub use ovs::{OvsSwitch, TestSwitch};
