//! The network-namespace testbed: emulated nodes (a network namespace each, with its own
//! `ovsdb-server` and userspace `ovs-vswitchd`), pods as namespaces on `br-int` (attached by
//! `weir-cni`), a weir agent per node fed by a manifests directory, and probes of real traffic
//! between pods.
//!
//! Everything this crate creates is named from a prefix it owns ([`layout`]), recorded in a
//! state file ([`state`]) and removed by pid and name ([`down`]), never by a pattern that could
//! touch something it did not create.
//!
//! Entry points: [`up()`] / [`Testbed::load`] / [`down()`]; [`Testbed::apply`] and
//! [`Testbed::sync`] for the agents' source; [`probe::probe_all`] for traffic;
//! [`spoof::check`] for forged frames; [`stream::Stream`] for a long-running TCP transfer. The pod-port contract with weir is in [`cni`].
//! For TrafficControl: [`capture::Capture`] on a node interface, [`collector::Collector`] for
//! tunnelled mirrors (decoded by [`encap`]), [`firewall::Firewall`] for redirects.
//! [`kube::KubeApi`] runs a real etcd + kube-apiserver on loopback for tests.
#![warn(unreachable_pub, missing_docs)]

pub mod capture;
pub mod cni;
pub mod collector;
pub mod command;
pub mod conformance;
pub mod down;
pub mod encap;
pub mod error;
pub mod firewall;
pub mod kube;
pub mod kube_source;
pub mod layout;
pub mod manifests;
pub mod model;
pub mod netns;
pub mod ovs;
pub mod packet;
pub mod probe;
pub mod process;
mod random;
pub mod sctp;
pub mod serve;
pub mod spoof;
pub mod state;
pub mod stream;
pub mod testbed;
pub mod truth_table;
pub mod vm;
pub mod external_hosts;
pub mod up;

pub use command::{CommandError, run};
pub use down::{down, status};
pub use error::Error;
pub use netns::Netns;
pub use ovs::{OvsSwitch, TestSwitch};
pub use probe::{ProbeOptions, ProbeResult, ProbeSpec, probe_all};
pub use process::Launcher;
pub use state::{NodePolicy, Tunnel};
pub use testbed::Testbed;
pub use up::{UpOptions, up};
