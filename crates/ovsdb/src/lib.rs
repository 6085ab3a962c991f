//! An OVSDB (RFC 7047) client on tokio and the bridge/port manager weir builds on it.
//!
//! Layers, bottom up:
//! - [`datum`], [`row`], [`schema`]: OVSDB values and their JSON encodings, in one place;
//! - [`framing`], [`jsonrpc`], [`operation`], [`update`]: the protocol, pure (no I/O) and
//!   tested on recorded JSON;
//! - [`client`]: the tokio connection (transact, monitor, echo, cancel, reconnect);
//! - [`tables`]: typed rows of the Open_vSwitch tables weir uses;
//! - [`manager`]: idempotent, one-transaction `ensure`/`delete` of bridges, ports and
//!   mirrors; [`interfaces`]: the Interface view the agent consumes; [`show`]: the
//!   `ovs-vsctl show` printer; [`unixctl`]: the control socket of OVS daemons (`ovs-appctl`);
//!   [`cni`]: the `external_ids` keys of the CNI contract (pod ports on `br-int`).
#![warn(unreachable_pub, missing_docs)]

pub mod client;
pub mod cni;
pub mod datum;
pub mod error;
pub mod framing;
pub mod interfaces;
pub mod jsonrpc;
pub mod manager;
pub mod operation;
pub mod row;
pub mod schema;
pub mod show;
pub mod tables;
pub mod unixctl;
pub mod update;

pub use client::{Client, ConnState, Monitor, MonitorEvent, Options, Target};
pub use datum::{Atom, Datum, Uuid};
pub use error::{Error, TransactionError};
pub use interfaces::{InterfaceMonitor, InterfaceSet};
pub use manager::{
    BridgeSpec, DatapathType, ErspanDir, ErspanVersion, FailMode, Flowable, Inheritable, Manager, ManagerOptions,
    MirrorSpec, Outcome, PortKind, PortSpec, TunnelKind, TunnelSpec, parse_port,
};
pub use operation::{Condition, Function, Mutation, Mutator, Operation, OperationResult};
pub use row::Row;
pub use schema::Schema;
pub use update::{Database, MonitorMethod, MonitorRequest, RowChange};
