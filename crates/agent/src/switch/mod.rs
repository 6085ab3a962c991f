//! The OpenFlow 1.5 connection to a switch (being built).
