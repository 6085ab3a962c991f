//! The weir node agent: sources (a manifests directory, or the Kubernetes API with the `kube`
//! feature) feed the cluster view, the OVSDB monitor
//! reports local ports, the pipeline compiles desired flows, and the realizer keeps the switch
//! equal to them with atomic bundles.
#![warn(missing_docs)]

pub mod agent;
pub mod cni_conf;
pub mod external_host;
pub mod external_node;
pub mod audit;
pub mod cluster_source;
pub mod host_gateway;
#[cfg(feature = "kube")]
pub mod kube_source;
pub mod local_ports;
pub mod manifest_cache;
pub mod manifest_store;
pub mod masquerade;
pub mod netlink;
pub mod node_firewall;
pub mod metrics;
pub mod node_agent;
pub mod ovs_bugs;
pub mod realization_record;
pub mod packet_ins;
pub mod reject;
pub mod source;
mod state_file;
pub mod status;
pub mod switch;
pub mod tc_ports;

pub use agent::{Config, TunnelKind, run};
pub use cluster_source::ClusterSource;
