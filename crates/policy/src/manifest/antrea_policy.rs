//! Antrea's tiered policy kinds (`crd.antrea.io/v1beta1`, and the same shapes under
//! `weir.io/v1alpha1`): ClusterNetworkPolicy, Tier and ClusterGroup, validated into
//! [`ClusterPolicy`], [`AntreaTier`] and [`ClusterGroup`] as Antrea's admission webhook
//! would. Host endpoints are selected by `nodeSelector` (Kubernetes Nodes: node policy) and
//! `externalEntitySelector` (ExternalEntities, e.g. ExternalNode interfaces), in `appliedTo` and
//! in peers. Fields weir does not enforce yet (FQDN and ServiceAccount peers,
//! `namespaces: {match: Self}`, Services, L7 protocols, a ClusterGroup's
//! `externalEntitySelector`) are rejected by name, so nobody believes them enforced.
use super::meta::{NameRule, ObjectMeta};
use super::netpol::{PortSpec, check_port, parse_cidr};
use crate::cluster_policy::{
    ANTREA_PRIORITY_SCALE, AntreaTier, ClusterGroup, ClusterPeer, ClusterPolicy, ClusterRule, DEFAULT_TIER, DEFAULT_TIERS, GroupMembers,
    RejectedClusterPolicy, Subject,
};
use crate::netpol::{Direction, IpBlock, Service};
use crate::rules::{Action, AuditLog, PolicyKind, Tier};
use crate::selector::{FieldError, LabelSelectorSpec, Selector};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

/// The API versions the Antrea kinds are read under.
pub const API_VERSIONS: [&str; 2] = ["crd.antrea.io/v1beta1", "weir.io/v1alpha1"];

/// Rules per direction: the rule index must fit in the policy's order (see
/// [`crate::cluster_policy::MAX_RULES`]).
const MAX_RULES: usize = crate::cluster_policy::MAX_RULES as usize;

/// An Antrea ClusterNetworkPolicy document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AntreaPolicyDoc {
    /// `crd.antrea.io/v1beta1` or `weir.io/v1alpha1`.
    pub api_version: String,
    /// `ClusterNetworkPolicy`.
    pub kind: String,
    /// Name and labels.
    pub metadata: ObjectMeta,
    /// The policy.
    pub spec: AntreaPolicySpec,
    /// Written by controllers; not read.
    #[serde(default)]
    pub status: Option<Value>,
}

/// `spec` of an Antrea ClusterNetworkPolicy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema, kube::CustomResource))]
#[cfg_attr(feature = "crd", kube(
    group = "weir.io",
    version = "v1alpha1",
    kind = "ClusterNetworkPolicy",
    root = "ClusterNetworkPolicyObject",
    doc = "Antrea's ClusterNetworkPolicy (the fields of crd.antrea.io/v1beta1) under weir's group: tiered policy for pods, Nodes and ExternalEntities",
    plural = "clusternetworkpolicies",
    printcolumn = r#"{"name": "Tier", "type": "string", "jsonPath": ".spec.tier"}"#,
    printcolumn = r#"{"name": "Priority", "type": "number", "jsonPath": ".spec.priority"}"#,
))]
pub struct AntreaPolicySpec {
    /// Order within the tier, 1.0-10000.0, lower first.
    pub priority: f64,
    /// The tier's name (default `application`).
    #[serde(default)]
    pub tier: Option<String>,
    /// The pods it applies to, unless every rule names its own.
    #[serde(default)]
    pub applied_to: Option<Vec<AppliedToSpec>>,
    /// Ingress rules, in order.
    #[serde(default)]
    pub ingress: Option<Vec<AntreaRuleSpec>>,
    /// Egress rules, in order.
    #[serde(default)]
    pub egress: Option<Vec<AntreaRuleSpec>>,
}

/// An `appliedTo` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
pub struct AppliedToSpec {
    /// Pods by label (in every namespace without a namespaceSelector).
    #[serde(default)]
    pub pod_selector: Option<LabelSelectorSpec>,
    /// Namespaces by label.
    #[serde(default)]
    pub namespace_selector: Option<LabelSelectorSpec>,
    /// A ClusterGroup.
    #[serde(default)]
    pub group: Option<String>,
    /// Node policy: the Kubernetes Nodes by label (alone in its entry).
    #[serde(default)]
    pub node_selector: Option<LabelSelectorSpec>,
    /// ExternalEntities by label (with a namespaceSelector: in those namespaces).
    #[serde(default)]
    pub external_entity_selector: Option<LabelSelectorSpec>,
    /// Not supported yet.
    #[serde(default)]
    #[cfg_attr(feature = "crd", schemars(extend("x-kubernetes-preserve-unknown-fields" = true)))]
    pub service_account: Option<Value>,
    /// Not supported yet.
    #[serde(default)]
    #[cfg_attr(feature = "crd", schemars(extend("x-kubernetes-preserve-unknown-fields" = true)))]
    pub service: Option<Value>,
}

/// A rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
pub struct AntreaRuleSpec {
    /// Allow, Drop, Reject or Pass.
    pub action: String,
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
    /// Audit logging of the connections it decides.
    #[serde(default)]
    pub enable_logging: Option<bool>,
    /// A label for its log lines.
    #[serde(default)]
    pub log_label: Option<String>,
    /// The pods it applies to, instead of the policy's.
    #[serde(default)]
    pub applied_to: Option<Vec<AppliedToSpec>>,
    /// Ingress: the sources (none: every source).
    #[serde(default)]
    pub from: Option<Vec<AntreaPeerSpec>>,
    /// Egress: the destinations (none: every destination).
    #[serde(default)]
    pub to: Option<Vec<AntreaPeerSpec>>,
    /// Destination ports (none: every port).
    #[serde(default)]
    pub ports: Option<Vec<PortSpec>>,
    /// Not supported yet.
    #[serde(default)]
    #[cfg_attr(feature = "crd", schemars(extend("x-kubernetes-preserve-unknown-fields" = true)))]
    pub to_services: Option<Value>,
    /// Not supported yet.
    #[serde(default)]
    #[cfg_attr(feature = "crd", schemars(extend("x-kubernetes-preserve-unknown-fields" = true)))]
    pub l7_protocols: Option<Value>,
}

/// A peer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
pub struct AntreaPeerSpec {
    /// Pods by label.
    #[serde(default)]
    pub pod_selector: Option<LabelSelectorSpec>,
    /// Namespaces by label.
    #[serde(default)]
    pub namespace_selector: Option<LabelSelectorSpec>,
    /// An address block.
    #[serde(default)]
    pub ip_block: Option<CidrSpec>,
    /// A ClusterGroup.
    #[serde(default)]
    pub group: Option<String>,
    /// `{match: Self}`: not supported yet.
    #[serde(default)]
    #[cfg_attr(feature = "crd", schemars(extend("x-kubernetes-preserve-unknown-fields" = true)))]
    pub namespaces: Option<Value>,
    /// Not supported yet.
    #[serde(default)]
    pub fqdn: Option<String>,
    /// Not supported yet.
    #[serde(default)]
    #[cfg_attr(feature = "crd", schemars(extend("x-kubernetes-preserve-unknown-fields" = true)))]
    pub service_account: Option<Value>,
    /// The addresses of the Kubernetes Nodes by label (alone in its peer).
    #[serde(default)]
    pub node_selector: Option<LabelSelectorSpec>,
    /// The addresses of ExternalEntities by label (with a namespaceSelector: in those
    /// namespaces).
    #[serde(default)]
    pub external_entity_selector: Option<LabelSelectorSpec>,
    /// Not supported yet.
    #[serde(default)]
    pub scope: Option<String>,
}

/// `{cidr}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
pub struct CidrSpec {
    /// The block.
    pub cidr: String,
}

/// A Tier document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TierDoc {
    /// API version.
    pub api_version: String,
    /// `Tier`.
    pub kind: String,
    /// Name.
    pub metadata: ObjectMeta,
    /// Priority and description.
    pub spec: TierSpec,
}

/// `spec` of a Tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema, kube::CustomResource))]
#[cfg_attr(feature = "crd", kube(
    group = "weir.io",
    version = "v1alpha1",
    kind = "Tier",
    root = "TierObject",
    doc = "Antrea's Tier (the fields of crd.antrea.io/v1beta1) under weir's group: a custom tier of ClusterNetworkPolicies",
    plural = "tiers",
    printcolumn = r#"{"name": "Priority", "type": "integer", "jsonPath": ".spec.priority"}"#,
))]
pub struct TierSpec {
    /// 1-255, lower first; not a default tier's.
    pub priority: i64,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// A ClusterGroup document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupDoc {
    /// API version.
    pub api_version: String,
    /// `ClusterGroup`.
    pub kind: String,
    /// Name.
    pub metadata: ObjectMeta,
    /// Members.
    pub spec: GroupSpec,
    /// Written by controllers; not read.
    #[serde(default)]
    pub status: Option<Value>,
}

/// `spec` of a ClusterGroup: selectors, address blocks or child groups.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema, kube::CustomResource))]
#[cfg_attr(feature = "crd", kube(
    group = "weir.io",
    version = "v1alpha1",
    kind = "ClusterGroup",
    root = "ClusterGroupObject",
    doc = "Antrea's ClusterGroup (the fields of crd.antrea.io/v1beta1) under weir's group: pods or address blocks ClusterNetworkPolicies name",
    plural = "clustergroups",
))]
pub struct GroupSpec {
    /// Pods by label.
    #[serde(default)]
    pub pod_selector: Option<LabelSelectorSpec>,
    /// Namespaces by label.
    #[serde(default)]
    pub namespace_selector: Option<LabelSelectorSpec>,
    /// Address blocks.
    #[serde(default)]
    pub ip_blocks: Option<Vec<CidrSpec>>,
    /// Other groups.
    #[serde(default)]
    pub child_groups: Option<Vec<String>>,
    /// Not supported yet.
    #[serde(default)]
    #[cfg_attr(feature = "crd", schemars(extend("x-kubernetes-preserve-unknown-fields" = true)))]
    pub service_reference: Option<Value>,
    /// Not supported yet.
    #[serde(default)]
    #[cfg_attr(feature = "crd", schemars(extend("x-kubernetes-preserve-unknown-fields" = true)))]
    pub external_entity_selector: Option<Value>,
}

fn not_supported(field: String, what: &str) -> FieldError {
    FieldError::new(field, format!("{what} is not supported by weir yet: this object is not enforced"))
}

fn selector(spec: &Option<LabelSelectorSpec>, at: &str) -> Result<Option<Selector>, FieldError> {
    spec.as_ref().map(|s| Selector::from_spec(s, at)).transpose()
}

fn check_applied_to(list: &[AppliedToSpec], at: &str) -> Result<Subject, FieldError> {
    let mut subjects = Vec::new();
    for (i, a) in list.iter().enumerate() {
        let at = format!("{at}[{i}]");
        if a.service_account.is_some() || a.service.is_some() {
            let field = if a.service.is_some() { "service" } else { "serviceAccount" };
            return Err(not_supported(format!("{at}.{field}"), field));
        }
        let pods = selector(&a.pod_selector, &format!("{at}.podSelector"))?;
        let namespaces = selector(&a.namespace_selector, &format!("{at}.namespaceSelector"))?;
        let nodes = selector(&a.node_selector, &format!("{at}.nodeSelector"))?;
        let entities = selector(&a.external_entity_selector, &format!("{at}.externalEntitySelector"))?;
        subjects.push(match (&a.group, pods, namespaces, nodes, entities) {
            (None, None, None, Some(nodes), None) => Subject::Nodes(nodes),
            (_, _, _, Some(_), _) => {
                return Err(FieldError::new(format!("{at}.nodeSelector"), "nodeSelector may not be set with other selectors or group in one appliedTo"));
            }
            (None, None, namespaces, None, Some(entities)) => {
                Subject::ExternalEntities { namespaces: namespaces.unwrap_or_else(Selector::everything), entities }
            }
            (_, _, _, None, Some(_)) => {
                return Err(FieldError::new(format!("{at}.externalEntitySelector"), "externalEntitySelector may not be set with podSelector or group"));
            }
            (Some(_), Some(_), _, None, None) | (Some(_), _, Some(_), None, None) => {
                return Err(FieldError::new(at, "group may not be set with podSelector or namespaceSelector"));
            }
            (Some(g), None, None, None, None) => Subject::Group(g.clone()),
            (None, None, None, None, None) => {
                return Err(FieldError::new(at, "must set podSelector, namespaceSelector, externalEntitySelector, nodeSelector or group"));
            }
            (None, pods, namespaces, None, None) => Subject::Pods {
                namespaces: namespaces.unwrap_or_else(Selector::everything),
                pods: pods.unwrap_or_else(Selector::everything),
            },
        });
    }
    match subjects.len() {
        0 => Err(FieldError::new(at, "must have at least one entry")),
        1 => Ok(subjects.remove(0)),
        _ => Ok(Subject::AnyOf(subjects)),
    }
}

fn check_peer(p: &AntreaPeerSpec, at: &str) -> Result<ClusterPeer, FieldError> {
    let unsupported = [
        ("namespaces", p.namespaces.is_some()),
        ("fqdn", p.fqdn.is_some()),
        ("serviceAccount", p.service_account.is_some()),
        ("scope", p.scope.is_some()),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(not_supported(format!("{at}.{field}"), &format!("the {field} peer")));
    }
    let pods = selector(&p.pod_selector, &format!("{at}.podSelector"))?;
    let namespaces = selector(&p.namespace_selector, &format!("{at}.namespaceSelector"))?;
    let nodes = selector(&p.node_selector, &format!("{at}.nodeSelector"))?;
    let entities = selector(&p.external_entity_selector, &format!("{at}.externalEntitySelector"))?;
    if let Some(nodes) = nodes {
        if pods.is_some() || namespaces.is_some() || entities.is_some() || p.ip_block.is_some() || p.group.is_some() {
            return Err(FieldError::new(format!("{at}.nodeSelector"), "nodeSelector cannot be set with other peers in rules"));
        }
        return Ok(ClusterPeer::Nodes(nodes));
    }
    if let Some(entities) = entities {
        if pods.is_some() || p.ip_block.is_some() || p.group.is_some() {
            return Err(FieldError::new(format!("{at}.externalEntitySelector"), "externalEntitySelector may not be set with podSelector, ipBlock or group"));
        }
        return Ok(ClusterPeer::ExternalEntities { namespaces: namespaces.unwrap_or_else(Selector::everything), entities });
    }
    match (&p.ip_block, &p.group, pods.is_some() || namespaces.is_some()) {
        (Some(b), None, false) => {
            let cidr = parse_cidr(&b.cidr, &format!("{at}.ipBlock.cidr"))?;
            Ok(ClusterPeer::Networks(vec![IpBlock { cidr, except: Vec::new() }]))
        }
        (None, Some(g), false) => Ok(ClusterPeer::Group(g.clone())),
        (None, None, true) => Ok(ClusterPeer::Pods {
            namespaces: namespaces.unwrap_or_else(Selector::everything),
            pods: pods.unwrap_or_else(Selector::everything),
        }),
        (None, None, false) => Err(FieldError::new(at, "must set podSelector, namespaceSelector, externalEntitySelector, nodeSelector, ipBlock or group")),
        _ => Err(FieldError::new(at, "ipBlock and group may not be combined with each other or with selectors")),
    }
}

/// Every address: an absent or empty `from`/`to` matches all peers, in or out of the cluster.
fn any_peer() -> Vec<ClusterPeer> {
    let all = ["0.0.0.0/0", "::/0"].map(|c| IpBlock { cidr: c.parse().expect("valid"), except: Vec::new() });
    vec![ClusterPeer::Networks(all.to_vec())]
}

fn action(s: &str, at: &str) -> Result<Action, FieldError> {
    const ACTIONS: [(&str, Action); 4] = [("Allow", Action::Allow), ("Drop", Action::Deny), ("Reject", Action::Reject), ("Pass", Action::Pass)];
    ACTIONS
        .iter()
        .find(|(name, _)| *name == s)
        .map(|(_, a)| *a)
        .ok_or_else(|| FieldError::new(at, format!("unsupported value {s:?}: expected one of Allow, Drop, Reject, Pass")))
}

fn check_rule(r: &AntreaRuleSpec, direction: Direction, index: usize, at: &str) -> Result<ClusterRule, FieldError> {
    let (key, peers, other) = match direction {
        Direction::Ingress => ("from", &r.from, r.to.as_ref().map(|_| "to")),
        Direction::Egress => ("to", &r.to, r.from.as_ref().map(|_| "from")),
    };
    if let Some(other) = other {
        return Err(FieldError::new(format!("{at}.{other}"), format!("unknown field: a {} rule lists `{key}`", direction.lower())));
    }
    if r.to_services.is_some() {
        return Err(not_supported(format!("{at}.toServices"), "toServices"));
    }
    if r.l7_protocols.is_some() {
        return Err(not_supported(format!("{at}.l7Protocols"), "l7Protocols"));
    }
    let action = action(&r.action, &format!("{at}.action"))?;
    let peers = match peers.as_deref() {
        None | Some([]) => any_peer(),
        Some(list) => list.iter().enumerate().map(|(i, p)| check_peer(p, &format!("{at}.{key}[{i}]"))).collect::<Result<_, _>>()?,
    };
    let services = match r.ports.as_deref() {
        None | Some([]) => None,
        Some(list) => {
            let mut all: Vec<Service> =
                list.iter().enumerate().map(|(i, p)| check_port(p, &format!("{at}.ports[{i}]"))).collect::<Result<_, _>>()?;
            all.sort();
            all.dedup();
            Some(all)
        }
    };
    let applied_to = r.applied_to.as_deref().map(|l| check_applied_to(l, &format!("{at}.appliedTo"))).transpose()?;
    let name = r.name.clone().unwrap_or_else(|| format!("{}[{index}]", direction.lower()));
    let audit = (r.enable_logging == Some(true)).then(|| AuditLog { label: r.log_label.clone().unwrap_or_default() });
    Ok(ClusterRule { name, action, peers, services, applied_to, audit })
}

fn check_rules(list: &Option<Vec<AntreaRuleSpec>>, direction: Direction) -> Result<Vec<ClusterRule>, FieldError> {
    let key = format!("spec.{}", direction.lower());
    let list = list.as_deref().unwrap_or_default();
    if list.len() > MAX_RULES {
        return Err(FieldError::new(key, format!("has {} rules; weir takes at most {MAX_RULES} per direction", list.len())));
    }
    list.iter().enumerate().map(|(i, r)| check_rule(r, direction, i, &format!("{key}[{i}]"))).collect()
}

impl AntreaPolicyDoc {
    /// Validates the document; its tier is resolved when the cluster view is built.
    pub fn check(&self) -> Result<ClusterPolicy, FieldError> {
        let name = self.metadata.checked_name(NameRule::Subdomain)?;
        self.metadata.checked_labels()?;
        let spec = &self.spec;
        if !(1.0..=10000.0).contains(&spec.priority) {
            return Err(FieldError::new("spec.priority", format!("{} is out of range: must be from 1.0 to 10000.0", spec.priority)));
        }
        let ingress = check_rules(&spec.ingress, Direction::Ingress)?;
        let egress = check_rules(&spec.egress, Direction::Egress)?;
        let own: Vec<bool> = ingress.iter().chain(&egress).map(|r| r.applied_to.is_some()).collect();
        let subject = match &spec.applied_to {
            Some(_) if own.contains(&true) => {
                return Err(FieldError::new("spec.appliedTo", "may not be set when rules set their own appliedTo"));
            }
            Some(list) => check_applied_to(list, "spec.appliedTo")?,
            // Each rule applies to its own pods; the policy as a whole to none.
            None if !own.contains(&false) => Subject::AnyOf(Vec::new()),
            None => return Err(FieldError::new("spec.appliedTo", "is required unless every rule sets its own appliedTo")),
        };
        Ok(ClusterPolicy {
            kind: PolicyKind::AntreaClusterNetworkPolicy,
            name,
            // Resolved from `antrea_tier` when the cluster view is built.
            tier: Tier::ADMIN_TIERED_BASE,
            priority: (spec.priority * ANTREA_PRIORITY_SCALE).round() as u32,
            antrea_tier: Some(spec.tier.clone().unwrap_or_else(|| DEFAULT_TIER.to_string()).to_lowercase()),
            subject,
            ingress,
            egress,
        })
    }
}

impl TierDoc {
    /// Validates a custom tier: a priority from 1 to 255 that no default tier has. A default
    /// tier written with its own priority is accepted as itself: Antrea's controller creates
    /// those objects in every cluster, and they change nothing.
    pub fn check(&self) -> Result<AntreaTier, FieldError> {
        let name = self.metadata.checked_name(NameRule::Subdomain)?;
        if let Some((_, priority)) = DEFAULT_TIERS.iter().find(|(n, _)| *n == name) {
            if i64::from(*priority) == self.spec.priority {
                return Ok(AntreaTier { name, priority: *priority });
            }
            return Err(FieldError::new(
                "metadata.name",
                format!("{name:?} is a default tier (priority {priority}): it cannot be redefined"),
            ));
        }
        let p = self.spec.priority;
        let priority = u32::try_from(p)
            .ok()
            .filter(|p| (1..=255).contains(p))
            .ok_or_else(|| FieldError::new("spec.priority", format!("{p} is out of range: must be from 1 to 255")))?;
        if let Some((n, _)) = DEFAULT_TIERS.iter().find(|(_, dp)| *dp == priority) {
            return Err(FieldError::new("spec.priority", format!("{priority} is the priority of the default tier {n}")));
        }
        Ok(AntreaTier { name, priority })
    }
}

impl GroupDoc {
    /// Validates a ClusterGroup: exactly one of selectors, ipBlocks and childGroups.
    pub fn check(&self) -> Result<ClusterGroup, FieldError> {
        let name = self.metadata.checked_name(NameRule::Subdomain)?;
        let s = &self.spec;
        if s.service_reference.is_some() {
            return Err(not_supported("spec.serviceReference".into(), "serviceReference"));
        }
        if s.external_entity_selector.is_some() {
            return Err(not_supported("spec.externalEntitySelector".into(), "externalEntitySelector"));
        }
        let has_selectors = s.pod_selector.is_some() || s.namespace_selector.is_some();
        let members = match (has_selectors, &s.ip_blocks, &s.child_groups) {
            (true, None, None) => GroupMembers::Pods {
                namespaces: selector(&s.namespace_selector, "spec.namespaceSelector")?,
                pods: selector(&s.pod_selector, "spec.podSelector")?,
            },
            (false, Some(blocks), None) => GroupMembers::Blocks(
                blocks
                    .iter()
                    .enumerate()
                    .map(|(i, b)| parse_cidr(&b.cidr, &format!("spec.ipBlocks[{i}].cidr")).map(|cidr| IpBlock { cidr, except: Vec::new() }))
                    .collect::<Result<_, _>>()?,
            ),
            (false, None, Some(children)) => GroupMembers::Children(children.clone()),
            _ => return Err(FieldError::new("spec", "must set exactly one of: selectors (podSelector, namespaceSelector), ipBlocks, childGroups")),
        };
        Ok(ClusterGroup { name, members })
    }
}

/// What a rejected Antrea policy meant, read leniently: its tier (a default tier by name,
/// else the first one, `emergency`: fail closed before anything else), priority, the pods it
/// applies to (policy-level or its rules' appliedTo) and the directions it has rules for.
pub fn remnant(object: &str, name: &str, value: &Value) -> RejectedClusterPolicy {
    let spec = value.get("spec");
    let lenient = |key: &str| spec.and_then(|s| s.get(key));
    let tier_name = lenient("tier").and_then(Value::as_str).unwrap_or(DEFAULT_TIER).to_lowercase();
    let priority = DEFAULT_TIERS.iter().find(|(n, _)| *n == tier_name).unwrap_or(&DEFAULT_TIERS[0]).1;
    let tier = AntreaTier { name: tier_name, priority }.tier();
    let order = lenient("priority").and_then(Value::as_f64).filter(|p| (1.0..=10000.0).contains(p)).unwrap_or(1.0);
    let applied_to = |v: Option<&Value>| -> Option<Subject> {
        let list = serde_json::from_value::<Vec<AppliedToSpec>>(v?.clone()).ok()?;
        check_applied_to(&list, "spec.appliedTo").ok()
    };
    let directions: BTreeSet<Direction> =
        [("ingress", Direction::Ingress), ("egress", Direction::Egress)].into_iter().filter(|(k, _)| lenient(k).is_some()).map(|(_, d)| d).collect();
    let subject = applied_to(lenient("appliedTo")).or_else(|| {
        let rules = ["ingress", "egress"].iter().filter_map(|k| lenient(k)?.as_array()).flatten();
        rules.map(|r| applied_to(r.get("appliedTo"))).collect::<Option<Vec<_>>>().map(Subject::AnyOf)
    });
    RejectedClusterPolicy {
        object: object.to_string(),
        kind: PolicyKind::AntreaClusterNetworkPolicy,
        name: name.to_string(),
        tier,
        priority: (order * ANTREA_PRIORITY_SCALE).round() as u32,
        subject,
        directions: if directions.is_empty() { BTreeSet::from([Direction::Ingress, Direction::Egress]) } else { directions },
    }
}

#[cfg(test)]
mod tests {
    use crate::{Cluster, Packet, Protocol, evaluate};

    /// Namespaces a (team: a) and b, pods a/p (10.0.0.1) and b/q (10.0.0.2).
    const PODS: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {team: a}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a, labels: {app: web}}\nstatus: {podIP: 10.0.0.1}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: q, namespace: b}\nstatus: {podIP: 10.0.0.2}\n";

    fn acnp(name: &str, tier: &str, priority: f64, action: &str) -> String {
        format!(
            "apiVersion: crd.antrea.io/v1beta1\nkind: ClusterNetworkPolicy\nmetadata: {{name: {name}}}\nspec:\n  priority: {priority}\n  tier: {tier}\n  appliedTo: [{{namespaceSelector: {{matchLabels: {{team: a}}}}}}]\n  ingress: [{{action: {action}, name: r, from: [{{namespaceSelector: {{}}}}], ports: [{{protocol: TCP, port: 80}}]}}]\n"
        )
    }

    /// Whether b/q reaches a/p on 80/TCP, and the verdict's text.
    fn q_to_p(docs: &[String]) -> (bool, String) {
        let mut sources = vec![("pods.yaml".to_string(), PODS.to_string())];
        sources.extend(docs.iter().enumerate().map(|(i, d)| (format!("p{i}.yaml"), d.clone())));
        let cluster = Cluster::from_sources(sources.iter().map(|(s, t)| (s.as_str(), t.as_str())));
        let packet = Packet { src: "10.0.0.2".parse().unwrap(), dst: "10.0.0.1".parse().unwrap(), protocol: Protocol::Tcp, dst_port: 80 };
        let v = evaluate(&cluster, &cluster.rules(), &packet);
        (v.allowed, format!("{v} {:?}", cluster.errors))
    }

    #[test]
    fn a_higher_tier_decides_before_a_lower_one_whatever_the_priorities() {
        let (allowed, why) = q_to_p(&[acnp("allow", "emergency", 100.0, "Allow"), acnp("drop", "application", 1.0, "Drop")]);
        assert!(allowed, "{why}");
        let (allowed, why) = q_to_p(&[acnp("allow", "application", 1.0, "Allow"), acnp("drop", "securityops", 100.0, "Drop")]);
        assert!(!allowed && why.contains("ClusterNetworkPolicy.crd.antrea.io drop"), "{why}");
    }

    #[test]
    fn within_a_tier_the_lower_priority_decides_and_reject_denies() {
        let (allowed, why) = q_to_p(&[acnp("allow", "application", 2.5, "Allow"), acnp("reject", "application", 2.25, "Reject")]);
        assert!(!allowed && why.contains("Reject"), "{why}");
    }

    #[test]
    fn pass_hands_the_packet_to_network_policy_skipping_the_lower_tiers() {
        let (allowed, why) = q_to_p(&[acnp("pass", "securityops", 1.0, "Pass"), acnp("drop", "application", 1.0, "Drop")]);
        assert!(allowed, "no NetworkPolicy isolates a/p: {why}");
    }

    #[test]
    fn the_baseline_tier_applies_only_to_pods_no_network_policy_isolates() {
        let (allowed, _) = q_to_p(&[acnp("base", "baseline", 1.0, "Drop")]);
        assert!(!allowed);
        let np = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: open, namespace: a}\nspec: {podSelector: {}, ingress: [{}]}\n".to_string();
        let (allowed, why) = q_to_p(&[acnp("base", "baseline", 1.0, "Drop"), np]);
        assert!(allowed, "{why}");
    }

    #[test]
    fn custom_tiers_and_cluster_groups_are_resolved() {
        let tier = "apiVersion: crd.antrea.io/v1beta1\nkind: Tier\nmetadata: {name: mytier}\nspec: {priority: 10}\n".to_string();
        let group = "apiVersion: crd.antrea.io/v1beta1\nkind: ClusterGroup\nmetadata: {name: web}\nspec: {podSelector: {matchLabels: {app: web}}}\n".to_string();
        let drop = acnp("drop", "mytier", 5.0, "Drop").replace("appliedTo: [{namespaceSelector: {matchLabels: {team: a}}}]", "appliedTo: [{group: web}]");
        let (allowed, why) = q_to_p(&[tier, group, drop.clone(), acnp("allow", "emergency", 1.0, "Allow")]);
        assert!(!allowed && why.contains("drop"), "mytier (10) comes before emergency (50): {why}");
    }

    #[test]
    fn a_default_tier_as_antreas_controller_writes_it_is_accepted_and_changes_nothing_and_a_redefinition_is_rejected() {
        let tier = |name: &str, priority: u32| format!("apiVersion: crd.antrea.io/v1beta1\nkind: Tier\nmetadata: {{name: {name}}}\nspec: {{priority: {priority}}}\n");
        let (allowed, why) = q_to_p(&[tier("application", 250), tier("emergency", 50), acnp("drop", "application", 5.0, "Drop"), acnp("allow", "emergency", 1.0, "Allow")]);
        assert!(allowed && !why.contains("ObjectError"), "emergency still before application: {why}");
        let m = crate::manifest::parse("t.yaml", &tier("application", 20));
        assert_eq!((m.errors[0].object.as_str(), m.errors[0].field.as_str()), ("Tier application", "metadata.name"));
        assert!(m.errors[0].message.contains("default tier (priority 250)"), "{}", m.errors[0].message);
    }

    #[test]
    fn an_unknown_tier_or_group_rejects_the_policy_by_field_and_fails_closed() {
        let (allowed, why) = q_to_p(&[acnp("drop", "nosuchtier", 5.0, "Allow")]);
        assert!(!allowed && why.contains("spec.tier") && why.contains("does not exist"), "{why}");
        let missing = acnp("g", "application", 5.0, "Allow").replace("from: [{namespaceSelector: {}}]", "from: [{group: nope}]");
        let (allowed, why) = q_to_p(&[missing]);
        assert!(!allowed && why.contains("spec.ingress[0]") && why.contains("ClusterGroup nope"), "{why}");
    }

    #[test]
    fn fields_weir_does_not_enforce_yet_are_rejected_by_name() {
        let group = acnp("g", "application", 5.0, "Allow").replace("from: [{namespaceSelector: {}}]", "from: [{group: web, namespaces: {match: Self}}]");
        let m = crate::manifest::parse("g.yaml", &group);
        assert_eq!((m.errors[0].object.as_str(), m.errors[0].field.as_str()), ("ClusterNetworkPolicy.crd.antrea.io g", "spec.ingress[0].from[0].namespaces"));
        let fqdn = acnp("f", "application", 5.0, "Allow").replace("from: [{namespaceSelector: {}}]", "from: [{fqdn: example.com}]");
        assert_eq!(crate::manifest::parse("f.yaml", &fqdn).errors[0].field, "spec.ingress[0].from[0].fqdn");
        let priority = acnp("p", "application", 0.5, "Allow");
        assert_eq!(crate::manifest::parse("p.yaml", &priority).errors[0].field, "spec.priority");
    }
}
