//! The kinds the agent watches: the built-in ones and the custom ones (whose CRDs are in
//! `deploy/crds/`), all read as `DynamicObject`s, since crates/policy does the typed checking
//! for both sources alike.

use kube::core::ApiResource;

/// One watched kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchedKind {
    /// API group (`""` for the core group).
    pub group: &'static str,
    /// API version within the group.
    pub version: &'static str,
    /// The kind.
    pub kind: &'static str,
    /// The resource name in URLs.
    pub plural: &'static str,
    /// Whether a CRD defines it (so the API server may not serve it).
    pub custom: bool,
}

impl WatchedKind {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }

    /// What kube-rs needs to address it.
    pub fn resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.to_string(),
            version: self.version.to_string(),
            api_version: self.api_version(),
            kind: self.kind.to_string(),
            plural: self.plural.to_string(),
        }
    }
}

const fn builtin(group: &'static str, version: &'static str, kind: &'static str, plural: &'static str) -> WatchedKind {
    WatchedKind { group, version, kind, plural, custom: false }
}

const fn custom(group: &'static str, version: &'static str, kind: &'static str, plural: &'static str) -> WatchedKind {
    WatchedKind { group, version, kind, plural, custom: true }
}

/// Every kind the cluster view is made of.
pub const WATCHED: [WatchedKind; 8] = [
    builtin("", "v1", "Node", "nodes"),
    builtin("", "v1", "Namespace", "namespaces"),
    builtin("", "v1", "Pod", "pods"),
    builtin("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies"),
    custom("policy.networking.k8s.io", "v1alpha2", "ClusterNetworkPolicy", "clusternetworkpolicies"),
    custom("policy.networking.k8s.io", "v1alpha1", "AdminNetworkPolicy", "adminnetworkpolicies"),
    custom("policy.networking.k8s.io", "v1alpha1", "BaselineAdminNetworkPolicy", "baselineadminnetworkpolicies"),
    custom("weir.io", "v1alpha1", "TrafficControl", "trafficcontrols"),
];
