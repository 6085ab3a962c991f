//! The kinds the agent watches: the built-in ones and the custom ones (whose CRDs are in
//! `deploy/crds/`, or Antrea's for `crd.antrea.io`), all read as `DynamicObject`s, since
//! crates/policy does the typed checking for both sources alike.
//!
//! Antrea's tiered policy and host-endpoint kinds are watched in both groups that serve them:
//! `crd.antrea.io` (installed by Antrea) and `weir.io` (weir's CRDs of the same shapes, for
//! clusters without Antrea). A group whose CRD is not installed has no objects, and says so
//! once (see `view`).

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
    /// How weir names it in sources and sync tokens: the kind, or `Kind.group` (as kubectl
    /// names a resource unambiguously) for kinds that two groups serve.
    pub name: &'static str,
    /// Where each node reports a rejected object (and, for conditions, a realized one).
    pub report: Report,
}

/// Where a node's agent reports on an object of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// A condition per node in the object's status (weir's `NodeConditions`): the kinds whose
    /// CRD has a status weir owns.
    Conditions,
    /// A Warning Event on a rejected object: the built-in kinds, and the Antrea kinds, whose
    /// status is Antrea's controller's (or, under `weir.io`, has none).
    Events,
}

impl WatchedKind {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }

    /// Where its CRD comes from, for a warning that it is not served.
    pub fn install_hint(&self) -> &'static str {
        match self.group {
            ANTREA_GROUP => "Antrea's CRDs are not installed; without Antrea, weir.io/v1alpha1 serves the same kind (deploy/crds/)",
            _ => "is its CRD installed? see deploy/crds/",
        }
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

/// The group Antrea's own CRDs serve.
const ANTREA_GROUP: &str = "crd.antrea.io";

const fn builtin(group: &'static str, version: &'static str, kind: &'static str, plural: &'static str) -> WatchedKind {
    WatchedKind { group, version, kind, plural, custom: false, name: kind, report: Report::Events }
}

/// A custom kind whose every node reports on it in its status.
const fn custom(group: &'static str, version: &'static str, kind: &'static str, plural: &'static str) -> WatchedKind {
    WatchedKind { group, version, kind, plural, custom: true, name: kind, report: Report::Conditions }
}

/// One of Antrea's kinds, served under `group` (`crd.antrea.io` or `weir.io`), named `name`.
const fn antrea(group: &'static str, version: &'static str, kind: &'static str, plural: &'static str, name: &'static str) -> WatchedKind {
    WatchedKind { group, version, kind, plural, custom: true, name, report: Report::Events }
}

/// Every kind the cluster view is made of. Where two groups serve a kind, Antrea's comes first,
/// so of two objects with one name (a duplicate), Antrea's is the one in force.
pub const WATCHED: [WatchedKind; 18] = [
    builtin("", "v1", "Node", "nodes"),
    builtin("", "v1", "Namespace", "namespaces"),
    builtin("", "v1", "Pod", "pods"),
    builtin("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies"),
    custom("policy.networking.k8s.io", "v1alpha2", "ClusterNetworkPolicy", "clusternetworkpolicies"),
    custom("policy.networking.k8s.io", "v1alpha1", "AdminNetworkPolicy", "adminnetworkpolicies"),
    custom("policy.networking.k8s.io", "v1alpha1", "BaselineAdminNetworkPolicy", "baselineadminnetworkpolicies"),
    custom("weir.io", "v1alpha1", "TrafficControl", "trafficcontrols"),
    antrea("crd.antrea.io", "v1beta1", "Tier", "tiers", "Tier.crd.antrea.io"),
    antrea("weir.io", "v1alpha1", "Tier", "tiers", "Tier.weir.io"),
    antrea("crd.antrea.io", "v1beta1", "ClusterGroup", "clustergroups", "ClusterGroup.crd.antrea.io"),
    antrea("weir.io", "v1alpha1", "ClusterGroup", "clustergroups", "ClusterGroup.weir.io"),
    antrea("crd.antrea.io", "v1beta1", "ClusterNetworkPolicy", "clusternetworkpolicies", "ClusterNetworkPolicy.crd.antrea.io"),
    antrea("weir.io", "v1alpha1", "ClusterNetworkPolicy", "clusternetworkpolicies", "ClusterNetworkPolicy.weir.io"),
    antrea("crd.antrea.io", "v1alpha1", "ExternalNode", "externalnodes", "ExternalNode.crd.antrea.io"),
    antrea("weir.io", "v1alpha1", "ExternalNode", "externalnodes", "ExternalNode.weir.io"),
    antrea("crd.antrea.io", "v1alpha2", "ExternalEntity", "externalentities", "ExternalEntity.crd.antrea.io"),
    antrea("weir.io", "v1alpha1", "ExternalEntity", "externalentities", "ExternalEntity.weir.io"),
];

/// The watched kind `kind` of `api_version` (the first of that kind without one).
pub fn find(kind: &str, api_version: Option<&str>) -> Option<&'static WatchedKind> {
    WATCHED.iter().find(|k| k.kind == kind && api_version.is_none_or(|v| k.api_version() == v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_watched_kind_has_its_own_name() {
        let mut names: Vec<&str> = WATCHED.iter().map(|k| k.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), WATCHED.len());
        assert!(WATCHED.iter().all(|k| k.name == k.kind || k.name == format!("{}.{}", k.kind, k.group)));
    }

    #[test]
    fn a_kind_is_found_by_its_api_version_or_as_the_first_of_its_kind() {
        assert_eq!(find("ClusterNetworkPolicy", None).map(|k| k.group), Some("policy.networking.k8s.io"));
        assert_eq!(find("ClusterNetworkPolicy", Some("crd.antrea.io/v1beta1")).map(|k| k.name), Some("ClusterNetworkPolicy.crd.antrea.io"));
        assert_eq!(find("ExternalNode", Some("weir.io/v1alpha1")).map(|k| k.name), Some("ExternalNode.weir.io"));
        assert_eq!(find("ExternalNode", Some("crd.antrea.io/v1beta1")), None, "not a served version");
        assert_eq!(find("Secret", None), None);
    }
}
