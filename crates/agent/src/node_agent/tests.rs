//! The agent's timing and recovery behaviour, in virtual time: a [`World`] performs the
//! agent's actions against a simulated switch and OVSDB at once (no sockets, no sleeping)
//! and records what was done when, and the tests read that record.
//!
//! The world and the cluster it realizes are in [`fixture`]; each other module specifies one
//! behaviour.

use super::*;
use fixture::*;

mod bootstrap;
mod failures;
mod fixture;
mod passes;
mod pod_network;
mod purge;
mod record;
mod timers;
mod unusable_inputs;
