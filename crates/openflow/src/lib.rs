//! openflow (being built).
