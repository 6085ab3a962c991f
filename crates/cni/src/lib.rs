//! `weir-cni`: the CNI plugin (spec 1.0.0 and 1.1.0) that attaches pods to weir's `br-int`.
//!
//! ADD makes a veth pair, moves one end into the pod as `CNI_IFNAME` with its address
//! (allocated from the node's pod CIDR, [`ipam`]), MTU, MAC and default route via the pod
//! gateway ([`link`]), and adds the other end to the bridge with the CNI contract's
//! `external_ids` in the same OVSDB transaction ([`port`], keys in `ovsdb::cni`). DEL undoes it
//! (idempotently), CHECK verifies it, GC removes what `cni.dev/valid-attachments` does not
//! list, STATUS says whether ADD can work, VERSION lists the spec versions. [`config`] is the
//! configuration format; [`protocol`] the environment and the error codes.
#![warn(missing_docs)]

mod add;
mod check;
pub mod commands;
pub mod config;
pub mod ipam;
pub mod link;
pub mod port;
pub mod protocol;

pub use add::STALL_VAR;
