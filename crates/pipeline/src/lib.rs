//! The pipeline compiler: cluster rules + the node's local endpoints + topology → the desired
//! flows of every table, as `openflow` values.
//!
//! Tables are declared once in [`table`]; every flow is built against that declaration.
#![warn(missing_docs)]

pub mod address;
pub mod cookie;
pub mod port_range;
pub mod table;
