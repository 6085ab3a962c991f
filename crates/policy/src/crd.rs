//! weir's CustomResourceDefinitions, made from its Rust types (kube's `CustomResource` derive and
//! schemars), and the status every weir kind carries: one condition per node.
//!
//! `deploy/crds/` holds [`files`]'s output; `tests/crds.rs` fails when the checked-in files and
//! the types differ, and rewrites them with `WEIR_WRITE_CRDS=1`. The network-policy-api kinds
//! weir consumes (AdminNetworkPolicy, BaselineAdminNetworkPolicy, ClusterNetworkPolicy) are not
//! weir's: their CRDs in `deploy/crds/` are upstream's release files, unchanged.

use kube::CustomResourceExt;
use serde::{Deserialize, Serialize};

/// The condition type a node's agent reports under: `realized.weir.io/<node>`. Node names are
/// DNS subdomains, so this is a valid `metav1.Condition` type (a DNS prefix, then a name).
pub const REALIZED_PREFIX: &str = "realized.weir.io/";

/// The `status` of weir's kinds: what each node's agent reports about the object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NodeConditions {
    /// One condition per node (type `realized.weir.io/<node>`), each written by that node's
    /// agent with server-side apply under its own field manager, so agents never overwrite
    /// each other.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// `metav1.Condition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `realized.weir.io/<node>`.
    #[serde(rename = "type")]
    #[schemars(length(max = 316))]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    #[schemars(extend("enum" = ["True", "False", "Unknown"]))]
    pub status: String,
    /// The object's `metadata.generation` the condition is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When `status` last changed (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub last_transition_time: String,
    /// Why, in CamelCase (`Realized`, `NotRealized`, `Rejected`).
    #[schemars(length(min = 1, max = 1024))]
    pub reason: String,
    /// For a human: what is wrong, naming the field.
    #[schemars(length(max = 32768))]
    pub message: String,
}

/// The condition type of `node`.
pub fn realized_type(node: &str) -> String {
    format!("{REALIZED_PREFIX}{node}")
}

/// The CRD files of weir's kinds, `(file name, YAML)`, as `deploy/crds/` holds them.
pub fn files() -> Vec<(String, String)> {
    use crate::manifest::{antrea_policy, external_node};
    let tc = "weir's TrafficControl (the fields of Antrea's crd.antrea.io/v1alpha2 TrafficControl): mirror or\n\
         # redirect the traffic of the pods appliedTo selects to a target port. The schema rejects what\n\
         # the API server can tell is wrong; crates/policy checks the rest and names the field, and\n\
         # each node's agent reports in status.conditions whether it realized the object.";
    let antrea = |source: &str, upstream: &str| {
        format!(
            "Antrea's {upstream} under weir's group, for clusters without Antrea\n\
             # (weir reads {upstream} too when Antrea's CRDs are installed). The schema holds the shape\n\
             # ({source}); crates/policy checks the rest and names the field, and each node's agent\n\
             # reports a rejected object in an Event."
        )
    };
    vec![
        file(crate::traffic_control::TrafficControlObject::crd(), "traffic_control.rs", tc),
        file(
            antrea_policy::ClusterNetworkPolicyObject::crd(),
            "manifest/antrea_policy.rs",
            &antrea("manifest/antrea_policy.rs", "crd.antrea.io/v1beta1 ClusterNetworkPolicy"),
        ),
        file(antrea_policy::TierObject::crd(), "manifest/antrea_policy.rs", &antrea("manifest/antrea_policy.rs", "crd.antrea.io/v1beta1 Tier")),
        file(
            antrea_policy::ClusterGroupObject::crd(),
            "manifest/antrea_policy.rs",
            &antrea("manifest/antrea_policy.rs", "crd.antrea.io/v1beta1 ClusterGroup"),
        ),
        file(
            external_node::ExternalNodeObject::crd(),
            "manifest/external_node.rs",
            &antrea("manifest/external_node.rs", "crd.antrea.io/v1alpha1 ExternalNode"),
        ),
        file(
            external_node::ExternalEntityObject::crd(),
            "manifest/external_node.rs",
            &antrea("manifest/external_node.rs", "crd.antrea.io/v1alpha2 ExternalEntity"),
        ),
    ]
}

/// Stand-ins for Antrea's own CRDs of the kinds weir reads under `crd.antrea.io` (which Antrea
/// installs), for test clusters without Antrea, `(file name, YAML)` as `testbed/antrea-crds/`
/// holds them: weir's `weir.io` CRDs of the same shapes, moved to Antrea's group and versions.
/// Antrea's real schemas hold more fields (which weir rejects by name or does not read); these
/// hold the ones weir reads. Never for a real cluster: Antrea installs its own.
pub fn antrea_stand_ins() -> Vec<(String, String)> {
    use crate::manifest::{antrea_policy, external_node};
    let version = |api_version: &str| api_version.strip_prefix(ANTREA_GROUP_PREFIX).expect("Antrea's group first").to_string();
    let policy_version = version(antrea_policy::API_VERSIONS[0]);
    let about = "A test cluster's stand-in for Antrea's CRD of this kind (Antrea installs its own): weir's\n\
                 # weir.io CRD of the same shape in Antrea's group and version. Never for a real cluster.";
    [
        (antrea_policy::ClusterNetworkPolicyObject::crd(), policy_version.clone()),
        (antrea_policy::TierObject::crd(), policy_version.clone()),
        (antrea_policy::ClusterGroupObject::crd(), policy_version),
        (external_node::ExternalNodeObject::crd(), version(external_node::EXTERNAL_NODE_API_VERSIONS[0])),
        (external_node::ExternalEntityObject::crd(), version(external_node::EXTERNAL_ENTITY_API_VERSIONS[0])),
    ]
    .into_iter()
    .map(|(mut crd, version)| {
        crd.spec.group = ANTREA_GROUP.into();
        crd.metadata.name = Some(format!("{}.{ANTREA_GROUP}", crd.spec.names.plural));
        crd.spec.versions[0].name = version;
        file(crd, "manifest/antrea_policy.rs, manifest/external_node.rs", about)
    })
    .collect()
}

const ANTREA_GROUP: &str = "crd.antrea.io";
const ANTREA_GROUP_PREFIX: &str = "crd.antrea.io/";

/// One CRD file: a header saying where it comes from and what it is, then the YAML.
fn file(crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition, types: &str, about: &str) -> (String, String) {
    let header = format!(
        "# Generated from weir's Rust types (crates/policy/src/crd.rs, {types}): do not edit.\n\
         # Regenerate with WEIR_WRITE_CRDS=1 cargo test -p policy --features crd --test crds.\n\
         # {about}\n"
    );
    let name = format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural);
    let mut crd = serde_json::to_value(&crd).expect("a CRD serializes");
    integral_bounds(&mut crd);
    let yaml = serde_saphyr::to_string(&crd).expect("JSON serializes as YAML");
    (name, format!("{header}{yaml}"))
}

/// Writes the `minimum`s and `maximum`s schemars makes floats (`65535.0`) as the integers they
/// bound, as a reader of the YAML expects them.
fn integral_bounds(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let whole = v.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 2f64.powi(53));
                match whole {
                    Some(f) if key == "minimum" || key == "maximum" => *v = (f as i64).into(),
                    _ => integral_bounds(v),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_bounds),
        _ => {}
    }
}
