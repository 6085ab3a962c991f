//! The manifest shapes of network-policy-api's cluster policies and their validation into
//! [`ClusterPolicy`], following the CRDs' OpenAPI and CEL rules:
//!
//! - `policy.networking.k8s.io/v1alpha2` ClusterNetworkPolicy: `tier`, `priority`, rules with
//!   `action: Accept|Deny|Pass` and `protocols`;
//! - `policy.networking.k8s.io/v1alpha1` AdminNetworkPolicy (`priority`, `Allow|Deny|Pass`)
//!   and BaselineAdminNetworkPolicy (the singleton `default`, `Allow|Deny`), rules with `ports`.
//!
//! All three share the subject and peer shapes; one document type reads them all and the
//! checks name what each API version allows, so an error names the object and the field.
use super::meta::{AUDIT_LOG_ANNOTATION, AUDIT_LOG_LABEL_ANNOTATION, ObjectMeta};
use super::netpol::{canonical, parse_cidr};
use crate::cluster_policy::{ClusterPeer, ClusterPolicy, ClusterRule, RejectedClusterPolicy, Subject};
use crate::netpol::{Direction, IpBlock, PortMatch, Service};
use crate::protocol::Protocol;
use crate::rules::{Action, AuditLog, PolicyKind, Tier};
use crate::selector::{FieldError, LabelSelectorSpec, Selector};
use crate::syntax;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

/// Which API a cluster policy document uses: what its rules may say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `policy.networking.k8s.io/v1alpha2` ClusterNetworkPolicy.
    ClusterNetworkPolicy,
    /// `policy.networking.k8s.io/v1alpha1` AdminNetworkPolicy.
    AdminNetworkPolicy,
    /// `policy.networking.k8s.io/v1alpha1` BaselineAdminNetworkPolicy.
    BaselineAdminNetworkPolicy,
}

impl Api {
    /// The API of `apiVersion`/`kind`, if it is one of these.
    pub fn of(api_version: &str, kind: &str) -> Option<Api> {
        match (api_version, kind) {
            ("policy.networking.k8s.io/v1alpha2", "ClusterNetworkPolicy") => Some(Api::ClusterNetworkPolicy),
            ("policy.networking.k8s.io/v1alpha1", "AdminNetworkPolicy") => Some(Api::AdminNetworkPolicy),
            ("policy.networking.k8s.io/v1alpha1", "BaselineAdminNetworkPolicy") => Some(Api::BaselineAdminNetworkPolicy),
            _ => None,
        }
    }

    fn kind(self) -> PolicyKind {
        match self {
            Api::ClusterNetworkPolicy => PolicyKind::ClusterNetworkPolicy,
            Api::AdminNetworkPolicy => PolicyKind::AdminNetworkPolicy,
            Api::BaselineAdminNetworkPolicy => PolicyKind::BaselineAdminNetworkPolicy,
        }
    }

    /// Rules per direction, and peers and ports per rule.
    fn max_items(self) -> usize {
        match self {
            Api::ClusterNetworkPolicy => 25,
            _ => 100,
        }
    }

    /// The field that lists a rule's ports.
    fn ports_field(self) -> &'static str {
        match self {
            Api::ClusterNetworkPolicy => "protocols",
            _ => "ports",
        }
    }

    /// The actions its rules may take, as written and as meant.
    fn actions(self) -> &'static [(&'static str, Action)] {
        match self {
            Api::ClusterNetworkPolicy => &[("Accept", Action::Allow), ("Deny", Action::Deny), ("Pass", Action::Pass)],
            Api::AdminNetworkPolicy => &[("Allow", Action::Allow), ("Deny", Action::Deny), ("Pass", Action::Pass)],
            Api::BaselineAdminNetworkPolicy => &[("Allow", Action::Allow), ("Deny", Action::Deny)],
        }
    }

    fn action(self, action: &str, at: &str) -> Result<Action, FieldError> {
        let table = self.actions();
        table.iter().find(|(s, _)| *s == action).map(|(_, a)| *a).ok_or_else(|| {
            let allowed: Vec<&str> = table.iter().map(|(s, _)| *s).collect();
            FieldError::new(at, format!("unsupported value {action:?}: expected one of {}", allowed.join(", ")))
        })
    }
}

/// A cluster policy document of any of the three kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterPolicyDoc {
    /// `policy.networking.k8s.io/v1alpha1` or `v1alpha2`.
    pub api_version: String,
    /// The kind.
    pub kind: String,
    /// Name and labels.
    pub metadata: ObjectMeta,
    /// The policy.
    pub spec: ClusterPolicySpec,
    /// Written by controllers; not read.
    #[serde(default)]
    pub status: Option<Value>,
}

/// `spec` of the three kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterPolicySpec {
    /// v1alpha2: `Admin` or `Baseline`.
    #[serde(default)]
    pub tier: Option<String>,
    /// Precedence within the tier (not in BaselineAdminNetworkPolicy).
    #[serde(default)]
    pub priority: Option<i64>,
    /// The pods it applies to.
    pub subject: SubjectSpec,
    /// Ingress rules.
    #[serde(default)]
    pub ingress: Option<Vec<RuleSpec>>,
    /// Egress rules.
    #[serde(default)]
    pub egress: Option<Vec<RuleSpec>>,
}

/// `subject`: exactly one of its fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubjectSpec {
    /// Every pod of these namespaces.
    #[serde(default)]
    pub namespaces: Option<LabelSelectorSpec>,
    /// These pods.
    #[serde(default)]
    pub pods: Option<NamespacedPodSpec>,
}

/// `NamespacedPod`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespacedPodSpec {
    /// Namespaces by label.
    pub namespace_selector: LabelSelectorSpec,
    /// Pods by label.
    pub pod_selector: LabelSelectorSpec,
}

/// A rule of either direction and either version; the checks say which fields each allows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleSpec {
    /// The rule's name.
    #[serde(default)]
    pub name: Option<String>,
    /// What a match does.
    pub action: String,
    /// Ingress: the sources.
    #[serde(default)]
    pub from: Option<Vec<PeerSpec>>,
    /// Egress: the destinations.
    #[serde(default)]
    pub to: Option<Vec<PeerSpec>>,
    /// v1alpha1: the destination ports.
    #[serde(default)]
    pub ports: Option<Vec<PortV1Spec>>,
    /// v1alpha2: the protocols and destination ports.
    #[serde(default)]
    pub protocols: Option<Vec<ProtocolSpec>>,
}

/// A peer: exactly one of its fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeerSpec {
    /// Every pod of these namespaces.
    #[serde(default)]
    pub namespaces: Option<LabelSelectorSpec>,
    /// These pods.
    #[serde(default)]
    pub pods: Option<NamespacedPodSpec>,
    /// Egress: these nodes' addresses.
    #[serde(default)]
    pub nodes: Option<LabelSelectorSpec>,
    /// Egress: these address blocks.
    #[serde(default)]
    pub networks: Option<Vec<String>>,
    /// Egress: these domain names.
    #[serde(default)]
    pub domain_names: Option<Vec<String>>,
}

/// v1alpha1 `AdminNetworkPolicyPort`: exactly one of its fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortV1Spec {
    /// One port.
    #[serde(default)]
    pub port_number: Option<PortNumberSpec>,
    /// A named container port of the destination pod.
    #[serde(default)]
    pub named_port: Option<String>,
    /// A range of ports.
    #[serde(default)]
    pub port_range: Option<PortRangeSpec>,
}

/// v1alpha1 `Port`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortNumberSpec {
    /// TCP (default), UDP or SCTP.
    #[serde(default)]
    pub protocol: Option<String>,
    /// The port.
    pub port: i64,
}

/// A port range (v1alpha1 `PortRange` with its protocol, v1alpha2 `range`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortRangeSpec {
    /// v1alpha1: TCP (default), UDP or SCTP.
    #[serde(default)]
    pub protocol: Option<String>,
    /// First port.
    pub start: i64,
    /// Last port.
    pub end: i64,
}

/// v1alpha2 `ClusterNetworkPolicyProtocol`: exactly one of its fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProtocolSpec {
    /// TCP ports.
    #[serde(default)]
    pub tcp: Option<ProtocolPortsSpec>,
    /// UDP ports.
    #[serde(default)]
    pub udp: Option<ProtocolPortsSpec>,
    /// SCTP ports.
    #[serde(default)]
    pub sctp: Option<ProtocolPortsSpec>,
    /// A named container port of the destination pod.
    #[serde(default)]
    pub destination_named_port: Option<String>,
}

/// The ports of one protocol (v1alpha2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProtocolPortsSpec {
    /// One port or a range.
    #[serde(default)]
    pub destination_port: Option<PortV2Spec>,
}

/// v1alpha2 `Port`: exactly one of its fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortV2Spec {
    /// One port.
    #[serde(default)]
    pub number: Option<i64>,
    /// A range.
    #[serde(default)]
    pub range: Option<PortRangeSpec>,
}

/// `Some` fields of a "exactly one of" struct, by name.
fn set_fields<const N: usize>(fields: [(&'static str, bool); N]) -> Vec<&'static str> {
    fields.into_iter().filter(|(_, set)| *set).map(|(name, _)| name).collect()
}

/// Exactly one of `fields` is set: its name.
fn exactly_one<const N: usize>(fields: [(&'static str, bool); N], at: &str) -> Result<&'static str, FieldError> {
    let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
    match set_fields(fields).as_slice() {
        [one] => Ok(one),
        [] => Err(FieldError::new(at, format!("must set exactly one of {}", names.join(", ")))),
        many => Err(FieldError::new(at, format!("must set exactly one of {}, not {}", names.join(", "), many.join(" and ")))),
    }
}

fn check_count(len: usize, max: usize, at: &str) -> Result<(), FieldError> {
    if len > max {
        return Err(FieldError::new(at, format!("has {len} entries; at most {max} are allowed")));
    }
    Ok(())
}

fn check_subject(spec: &SubjectSpec, at: &str) -> Result<Subject, FieldError> {
    match exactly_one([("namespaces", spec.namespaces.is_some()), ("pods", spec.pods.is_some())], at)? {
        "namespaces" => {
            Ok(Subject::Namespaces(Selector::from_spec(spec.namespaces.as_ref().expect("set"), &format!("{at}.namespaces"))?))
        }
        _ => {
            let (namespaces, pods) = check_namespaced_pod(spec.pods.as_ref().expect("set"), &format!("{at}.pods"))?;
            Ok(Subject::Pods { namespaces, pods })
        }
    }
}

fn check_namespaced_pod(spec: &NamespacedPodSpec, at: &str) -> Result<(Selector, Selector), FieldError> {
    Ok((
        Selector::from_spec(&spec.namespace_selector, &format!("{at}.namespaceSelector"))?,
        Selector::from_spec(&spec.pod_selector, &format!("{at}.podSelector"))?,
    ))
}

fn check_peer(spec: &PeerSpec, direction: Direction, at: &str) -> Result<ClusterPeer, FieldError> {
    let which = exactly_one(
        [
            ("namespaces", spec.namespaces.is_some()),
            ("pods", spec.pods.is_some()),
            ("nodes", spec.nodes.is_some()),
            ("networks", spec.networks.is_some()),
            ("domainNames", spec.domain_names.is_some()),
        ],
        at,
    )?;
    let field = format!("{at}.{which}");
    if direction == Direction::Ingress && !matches!(which, "namespaces" | "pods") {
        return Err(FieldError::new(field, "is only allowed in egress rules (ingress peers are namespaces or pods)"));
    }
    match which {
        "namespaces" => Ok(ClusterPeer::Namespaces(Selector::from_spec(spec.namespaces.as_ref().expect("set"), &field)?)),
        "pods" => {
            let (namespaces, pods) = check_namespaced_pod(spec.pods.as_ref().expect("set"), &field)?;
            Ok(ClusterPeer::Pods { namespaces, pods })
        }
        "nodes" => Ok(ClusterPeer::Nodes(Selector::from_spec(spec.nodes.as_ref().expect("set"), &field)?)),
        "networks" => {
            let list = spec.networks.as_deref().unwrap_or_default();
            check_listed(list.len(), 25, &field)?;
            let blocks = list
                .iter()
                .enumerate()
                .map(|(i, c)| parse_cidr(c, &format!("{field}[{i}]")).map(|net| IpBlock { cidr: canonical(net), except: Vec::new() }))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ClusterPeer::Networks(blocks))
        }
        _ => {
            let list = spec.domain_names.as_deref().unwrap_or_default();
            check_listed(list.len(), 25, &field)?;
            for (i, d) in list.iter().enumerate() {
                check_domain_name(d).map_err(|m| FieldError::new(format!("{field}[{i}]"), m))?;
            }
            Ok(ClusterPeer::DomainNames(list.to_vec()))
        }
    }
}

/// A list with `MinItems=1` and a maximum.
fn check_listed(len: usize, max: usize, at: &str) -> Result<(), FieldError> {
    if len == 0 {
        return Err(FieldError::new(at, "must have at least one entry"));
    }
    check_count(len, max, at)
}

/// The CRD's pattern: labels of letters, digits, `-` and `_`, at least two, an optional
/// leading `*.` and trailing dot.
fn check_domain_name(d: &str) -> Result<(), String> {
    let body = d.strip_prefix("*.").unwrap_or(d);
    let body = body.strip_suffix('.').unwrap_or(body);
    let labels: Vec<&str> = body.split('.').collect();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && l.starts_with(|c: char| c.is_ascii_alphanumeric())
            && l.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    if labels.len() < 2 || !labels.iter().all(|l| label_ok(l)) {
        return Err(format!("{d:?} is not a domain name (like `example.com` or `*.example.com`)"));
    }
    Ok(())
}

fn protocol(p: Option<&str>, at: &str) -> Result<Protocol, FieldError> {
    match p {
        None => Ok(Protocol::Tcp),
        Some(s) => s
            .parse::<Protocol>()
            .ok()
            .filter(|_| s.chars().all(|c| c.is_ascii_uppercase()))
            .ok_or_else(|| FieldError::new(at, format!("unsupported protocol {s:?}: expected TCP, UDP or SCTP"))),
    }
}

fn port(n: i64, at: &str) -> Result<u16, FieldError> {
    syntax::port_number(n).map_err(|m| FieldError::new(at, m))
}

fn range(r: &PortRangeSpec, at: &str) -> Result<PortMatch, FieldError> {
    let (start, end) = (port(r.start, &format!("{at}.start"))?, port(r.end, &format!("{at}.end"))?);
    if start >= end {
        return Err(FieldError::new(at, format!("start port {start} must be less than end port {end}")));
    }
    Ok(PortMatch::Range(start, end))
}

/// A named port, in each protocol: it resolves on the destination pod to its own protocol.
fn named(name: &str, at: &str) -> Result<Vec<Service>, FieldError> {
    syntax::iana_svc_name(name).map_err(|m| FieldError::new(at, m))?;
    Ok(crate::protocol::PROTOCOLS.iter().map(|p| Service { protocol: *p, port: PortMatch::Named(name.to_string()) }).collect())
}

fn check_port_v1(spec: &PortV1Spec, at: &str) -> Result<Vec<Service>, FieldError> {
    let which = exactly_one(
        [("portNumber", spec.port_number.is_some()), ("namedPort", spec.named_port.is_some()), ("portRange", spec.port_range.is_some())],
        at,
    )?;
    let field = format!("{at}.{which}");
    Ok(match (&spec.port_number, &spec.named_port, &spec.port_range) {
        (Some(p), _, _) => {
            let n = port(p.port, &format!("{field}.port"))?;
            vec![Service { protocol: protocol(p.protocol.as_deref(), &format!("{field}.protocol"))?, port: PortMatch::Range(n, n) }]
        }
        (_, Some(name), _) => named(name, &field)?,
        (_, _, Some(r)) => vec![Service { protocol: protocol(r.protocol.as_deref(), &format!("{field}.protocol"))?, port: range(r, &field)? }],
        _ => unreachable!("exactly one is set"),
    })
}

fn check_protocol_v2(spec: &ProtocolSpec, at: &str) -> Result<Vec<Service>, FieldError> {
    let which = exactly_one(
        [
            ("tcp", spec.tcp.is_some()),
            ("udp", spec.udp.is_some()),
            ("sctp", spec.sctp.is_some()),
            ("destinationNamedPort", spec.destination_named_port.is_some()),
        ],
        at,
    )?;
    let field = format!("{at}.{which}");
    let (proto, ports) = match which {
        "tcp" => (Protocol::Tcp, &spec.tcp),
        "udp" => (Protocol::Udp, &spec.udp),
        "sctp" => (Protocol::Sctp, &spec.sctp),
        _ => return named(spec.destination_named_port.as_deref().unwrap_or_default(), &field),
    };
    let Some(dest) = ports.as_ref().and_then(|p| p.destination_port.as_ref()) else {
        return Err(FieldError::new(format!("{field}.destinationPort"), "is required"));
    };
    let at = format!("{field}.destinationPort");
    let port = match exactly_one([("number", dest.number.is_some()), ("range", dest.range.is_some())], &at)? {
        "number" => {
            let n = port(dest.number.unwrap_or_default(), &format!("{at}.number"))?;
            PortMatch::Range(n, n)
        }
        _ => {
            let r = dest.range.as_ref().expect("set");
            if r.protocol.is_some() {
                return Err(FieldError::new(format!("{at}.range.protocol"), "unknown field: the protocol is the enclosing key"));
            }
            range(r, &format!("{at}.range"))?
        }
    };
    Ok(vec![Service { protocol: proto, port }])
}

fn check_rule(api: Api, spec: &RuleSpec, direction: Direction, index: usize, at: &str) -> Result<ClusterRule, FieldError> {
    let (peer_key, other_key, peers, other) = match direction {
        Direction::Ingress => ("from", "to", &spec.from, &spec.to),
        Direction::Egress => ("to", "from", &spec.to, &spec.from),
    };
    if other.is_some() {
        return Err(FieldError::new(format!("{at}.{other_key}"), format!("unknown field: a {} rule lists `{peer_key}`", direction.lower())));
    }
    let wrong_ports = match api {
        Api::ClusterNetworkPolicy => spec.ports.is_some().then_some("ports"),
        _ => spec.protocols.is_some().then_some("protocols"),
    };
    if let Some(field) = wrong_ports {
        return Err(FieldError::new(format!("{at}.{field}"), format!("unknown field in this apiVersion: use `{}`", api.ports_field())));
    }
    if let Some(name) = &spec.name
        && name.len() > 100
    {
        return Err(FieldError::new(format!("{at}.name"), format!("is {} characters long; at most 100 are allowed", name.len())));
    }
    let action = api.action(&spec.action, &format!("{at}.action"))?;
    let peer_list = peers.as_deref().ok_or_else(|| FieldError::new(format!("{at}.{peer_key}"), "is required"))?;
    check_listed(peer_list.len(), api.max_items(), &format!("{at}.{peer_key}"))?;
    let peers = peer_list
        .iter()
        .enumerate()
        .map(|(i, p)| check_peer(p, direction, &format!("{at}.{peer_key}[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let ports_at = format!("{at}.{}", api.ports_field());
    let services = match api {
        Api::ClusterNetworkPolicy => spec.protocols.as_deref().map(|list| {
            check_listed(list.len(), api.max_items(), &ports_at)?;
            list.iter().enumerate().map(|(i, p)| check_protocol_v2(p, &format!("{ports_at}[{i}]"))).collect::<Result<Vec<_>, _>>()
        }),
        _ => spec.ports.as_deref().map(|list| {
            check_listed(list.len(), api.max_items(), &ports_at)?;
            list.iter().enumerate().map(|(i, p)| check_port_v1(p, &format!("{ports_at}[{i}]"))).collect::<Result<Vec<_>, _>>()
        }),
    }
    .transpose()?
    .map(|lists| {
        let mut all: Vec<Service> = lists.into_iter().flatten().collect();
        all.sort();
        all.dedup();
        all
    });
    let has_named = services.iter().flatten().any(|s| matches!(s.port, PortMatch::Named(_)));
    if has_named && peers.iter().any(|p| matches!(p, ClusterPeer::Nodes(_) | ClusterPeer::Networks(_) | ClusterPeer::DomainNames(_))) {
        return Err(FieldError::new(
            ports_at,
            "networks/nodes/domainNames peer cannot be set with named ports since there are no named ports for networks/nodes/domainNames",
        ));
    }
    let name = spec.name.clone().unwrap_or_else(|| format!("{}[{index}]", direction.lower()));
    Ok(ClusterRule { name, action, peers, services, applied_to: None, audit: None })
}

impl ClusterPolicySpec {
    /// The tier: v1alpha2's `tier`; v1alpha1's from the kind.
    fn checked_tier(&self, api: Api) -> Result<Tier, FieldError> {
        match (api, self.tier.as_deref()) {
            (Api::ClusterNetworkPolicy, Some("Admin")) => Ok(Tier::ADMIN),
            (Api::ClusterNetworkPolicy, Some("Baseline")) => Ok(Tier::BASELINE),
            (Api::ClusterNetworkPolicy, Some(other)) => {
                Err(FieldError::new("spec.tier", format!("unsupported value {other:?}: expected Admin or Baseline")))
            }
            (Api::ClusterNetworkPolicy, None) => Err(FieldError::new("spec.tier", "is required")),
            (_, Some(_)) => Err(FieldError::new("spec.tier", "unknown field in policy.networking.k8s.io/v1alpha1")),
            (Api::AdminNetworkPolicy, None) => Ok(Tier::ADMIN),
            (Api::BaselineAdminNetworkPolicy, None) => Ok(Tier::BASELINE),
        }
    }

    fn checked_priority(&self, api: Api) -> Result<u32, FieldError> {
        match (api, self.priority) {
            (Api::BaselineAdminNetworkPolicy, Some(_)) => {
                Err(FieldError::new("spec.priority", "unknown field: a BaselineAdminNetworkPolicy has no priority"))
            }
            (Api::BaselineAdminNetworkPolicy, None) => Ok(0),
            (_, None) => Err(FieldError::new("spec.priority", "is required")),
            (_, Some(p)) => u32::try_from(p)
                .ok()
                .filter(|p| *p <= 1000)
                .ok_or_else(|| FieldError::new("spec.priority", format!("{p} is out of range: must be from 0 to 1000"))),
        }
    }

    fn checked_rules(&self, api: Api, direction: Direction) -> Result<Vec<ClusterRule>, FieldError> {
        let (key, list) = match direction {
            Direction::Ingress => ("spec.ingress", &self.ingress),
            Direction::Egress => ("spec.egress", &self.egress),
        };
        let list = list.as_deref().unwrap_or_default();
        check_count(list.len(), api.max_items(), key)?;
        list.iter().enumerate().map(|(i, r)| check_rule(api, r, direction, i, &format!("{key}[{i}]"))).collect()
    }
}

impl ClusterPolicyDoc {
    /// Validates the document into a policy.
    pub fn check(&self, api: Api) -> Result<ClusterPolicy, FieldError> {
        let name = self.metadata.checked_name(super::meta::NameRule::Subdomain)?;
        self.metadata.checked_labels()?;
        if api == Api::BaselineAdminNetworkPolicy && name != "default" {
            return Err(FieldError::new(
                "metadata.name",
                format!("{name:?}: only one BaselineAdminNetworkPolicy, named \"default\", can exist in a cluster"),
            ));
        }
        let spec = &self.spec;
        let mut policy = ClusterPolicy {
            kind: api.kind(),
            name,
            tier: spec.checked_tier(api)?,
            priority: spec.checked_priority(api)?,
            antrea_tier: None,
            subject: check_subject(&spec.subject, "spec.subject")?,
            ingress: spec.checked_rules(api, Direction::Ingress)?,
            egress: spec.checked_rules(api, Direction::Egress)?,
        };
        audit_annotation(&self.metadata, &mut policy.ingress, &mut policy.egress)?;
        Ok(policy)
    }
}

/// Turns audit logging on for the rules [`AUDIT_LOG_ANNOTATION`] names (`*`: all); a name
/// that is no rule's is an error naming the annotation.
fn audit_annotation(meta: &ObjectMeta, ingress: &mut [ClusterRule], egress: &mut [ClusterRule]) -> Result<(), FieldError> {
    let Some(names) = meta.annotation(AUDIT_LOG_ANNOTATION) else { return Ok(()) };
    let field = format!("metadata.annotations[{AUDIT_LOG_ANNOTATION}]");
    let label = meta.annotation(AUDIT_LOG_LABEL_ANNOTATION).unwrap_or_default().to_string();
    let names: BTreeSet<&str> = names.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    if names.is_empty() {
        return Err(FieldError::new(field, "names no rule: expected rule names separated by commas, or *"));
    }
    let all = names.contains("*");
    let mut found = BTreeSet::new();
    for rule in ingress.iter_mut().chain(egress.iter_mut()) {
        if all || names.contains(rule.name.as_str()) {
            found.insert(rule.name.clone());
            rule.audit = Some(AuditLog { label: label.clone() });
        }
    }
    match names.iter().find(|n| **n != "*" && !found.contains(**n)) {
        Some(missing) => Err(FieldError::new(field, format!("{missing:?} is not the name of a rule of this policy"))),
        None => Ok(()),
    }
}

/// What a rejected cluster policy meant, read leniently from its raw value: its tier,
/// priority, subject and the directions it has rules for (both when it names neither).
pub fn remnant(api: Api, object: &str, name: &str, value: &Value) -> RejectedClusterPolicy {
    let spec = value.get("spec");
    let lenient = |key: &str| spec.and_then(|s| s.get(key));
    let tier = match (api, lenient("tier").and_then(Value::as_str)) {
        (Api::BaselineAdminNetworkPolicy, _) | (Api::ClusterNetworkPolicy, Some("Baseline")) => Tier::BASELINE,
        _ => Tier::ADMIN,
    };
    let priority = lenient("priority").and_then(Value::as_u64).filter(|p| *p <= 1000).unwrap_or(0) as u32;
    let subject = lenient("subject")
        .and_then(|s| serde_json::from_value::<SubjectSpec>(s.clone()).ok())
        .and_then(|s| check_subject(&s, "spec.subject").ok());
    let mut directions: BTreeSet<Direction> = [("ingress", Direction::Ingress), ("egress", Direction::Egress)]
        .into_iter()
        .filter(|(k, _)| lenient(k).is_some())
        .map(|(_, d)| d)
        .collect();
    if directions.is_empty() {
        directions = BTreeSet::from([Direction::Ingress, Direction::Egress]);
    }
    RejectedClusterPolicy { object: object.to_string(), kind: api.kind(), name: name.to_string(), tier, priority, subject, directions }
}

#[cfg(test)]
mod tests {
    use crate::manifest::parse;
    use crate::{Cluster, Packet, Protocol, evaluate};

    const GOOD: &str = "apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: guard}
spec:
  tier: Admin
  priority: 10
  subject: {namespaces: {matchLabels: {team: a}}}
  egress:
  - {name: web, action: Accept, to: [{namespaces: {}}], protocols: [{tcp: {destinationPort: {number: 80}}}]}
";

    /// `GOOD` with `from` replaced by `to`, checked: the error's field and message.
    fn rejected(from: &str, to: &str) -> (String, String) {
        let text = GOOD.replacen(from, to, 1);
        assert_ne!(text, GOOD, "{from:?} is not in the sample");
        let m = parse("p.yaml", &text);
        assert!(m.objects.is_empty(), "accepted: {text}");
        assert_eq!(m.errors.len(), 1, "{:?}", m.errors);
        let e = &m.errors[0];
        assert_eq!(e.object, "ClusterNetworkPolicy guard");
        assert_eq!(e.source, "p.yaml");
        assert_eq!(m.rejected_cluster_policies.len(), 1, "it fails closed");
        (e.field.clone(), e.message.clone())
    }

    #[test]
    fn the_audit_log_annotation_logs_the_rules_it_names_and_rejects_a_name_of_no_rule() {
        let annotated = |value: &str| {
            GOOD.replace("metadata: {name: guard}", &format!("metadata: {{name: guard, annotations: {{weir.io/audit-log: {value:?}, weir.io/audit-log-label: g}}}}"))
        };
        let m = parse("p.yaml", &annotated("web"));
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        let crate::Object::ClusterPolicy(p) = &m.objects[0].1 else { panic!("a cluster policy") };
        assert_eq!(p.egress[0].audit, Some(crate::AuditLog { label: "g".into() }));
        assert!(parse("p.yaml", GOOD).objects.iter().all(|(_, o)| !matches!(o, crate::Object::ClusterPolicy(p) if p.egress[0].audit.is_some())));
        let (field, message) = rejected("metadata: {name: guard}", "metadata: {name: guard, annotations: {weir.io/audit-log: webb}}");
        assert_eq!(field, "metadata.annotations[weir.io/audit-log]");
        assert!(message.contains("\"webb\""), "{message}");
    }

    #[test]
    fn a_valid_policy_is_accepted() {
        let m = parse("p.yaml", GOOD);
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        assert_eq!(m.objects.len(), 1);
    }

    #[test]
    fn each_invalid_field_is_rejected_by_name() {
        let cases = [
            ("priority: 10", "priority: 1001", "spec.priority", "out of range"),
            ("tier: Admin", "tier: Emergency", "spec.tier", "expected Admin or Baseline"),
            ("action: Accept", "action: Reject", "spec.egress[0].action", "expected one of Accept, Deny, Pass"),
            ("action: Accept", "action: Allow", "spec.egress[0].action", "expected one of Accept, Deny, Pass"),
            ("subject: {namespaces: {matchLabels: {team: a}}}", "subject: {namespaces: {}, pods: {namespaceSelector: {}, podSelector: {}}}", "spec.subject", "not namespaces and pods"),
            ("subject: {namespaces: {matchLabels: {team: a}}}", "subject: {}", "spec.subject", "must set exactly one of namespaces, pods"),
            ("to: [{namespaces: {}}]", "to: [{}]", "spec.egress[0].to[0]", "must set exactly one"),
            ("to: [{namespaces: {}}]", "to: []", "spec.egress[0].to", "at least one"),
            ("to: [{namespaces: {}}]", "to: [{networks: [10.0.0.0/33]}]", "spec.egress[0].to[0].networks[0]", "not a valid CIDR"),
            ("to: [{namespaces: {}}]", "to: [{networks: [10.0.0.0]}]", "spec.egress[0].to[0].networks[0]", "missing the /prefix"),
            ("{number: 80}", "{range: {start: 90, end: 80}}", "spec.egress[0].protocols[0].tcp.destinationPort.range", "less than end port"),
            ("{number: 80}", "{number: 0}", "spec.egress[0].protocols[0].tcp.destinationPort.number", ""),
            ("to: [{namespaces: {}}]", "to: [{domainNames: [\"bad domain\"]}]", "spec.egress[0].to[0].domainNames[0]", "not a domain name"),
        ];
        for (from, to, field, message) in cases {
            let (f, m) = rejected(from, to);
            assert!(f.starts_with(field), "{to}: field {f}, want {field}");
            assert!(m.contains(message), "{to}: message {m:?}, want {message:?}");
        }
    }

    #[test]
    fn a_named_port_with_a_networks_peer_is_rejected() {
        let text = GOOD.replace("to: [{namespaces: {}}], protocols: [{tcp: {destinationPort: {number: 80}}}]", "to: [{networks: [10.0.0.0/8]}], protocols: [{destinationNamedPort: web}]");
        let m = parse("p.yaml", &text);
        assert_eq!(m.errors[0].field, "spec.egress[0].protocols");
        assert!(m.errors[0].message.contains("cannot be set with named ports"));
    }

    #[test]
    fn more_than_25_rules_or_peers_are_rejected_in_v1alpha2_and_100_in_v1alpha1() {
        let rule = "  - {action: Deny, to: [{namespaces: {}}]}\n";
        let many = format!("{}  egress:\n{}", GOOD.split("  egress:\n").next().unwrap(), rule.repeat(26));
        assert_eq!(parse("p.yaml", &many).errors[0].field, "spec.egress");
        let v1 = many.replace("v1alpha2", "v1alpha1").replace("ClusterNetworkPolicy", "AdminNetworkPolicy").replace("  tier: Admin\n", "");
        assert!(parse("p.yaml", &v1).errors.is_empty(), "{:?}", parse("p.yaml", &v1).errors);
        let peers = GOOD.replace("to: [{namespaces: {}}]", &format!("to: [{}]", vec!["{namespaces: {}}"; 26].join(", ")));
        assert_eq!(parse("p.yaml", &peers).errors[0].field, "spec.egress[0].to");
    }

    #[test]
    fn a_baseline_admin_network_policy_must_be_named_default() {
        let text = "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata: {name: other}\nspec:\n  subject: {namespaces: {}}\n  ingress: [{action: Deny, from: [{namespaces: {}}]}]\n";
        let m = parse("b.yaml", text);
        assert_eq!(m.errors[0].field, "metadata.name");
        assert!(parse("b.yaml", &text.replace("name: other", "name: default")).errors.is_empty());
        let pass = text.replace("name: other", "name: default").replace("action: Deny", "action: Pass");
        assert_eq!(parse("b.yaml", &pass).errors[0].field, "spec.ingress[0].action");
    }

    #[test]
    fn a_rejected_admin_policy_denies_all_traffic_of_its_subjects_and_nothing_else() {
        let pods = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {team: a}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a}\nstatus: {podIP: 10.0.0.1}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: q, namespace: b}\nstatus: {podIP: 10.0.0.2}\n";
        let broken = GOOD.replace("priority: 10", "priority: -1");
        let cluster = Cluster::from_sources([("pods.yaml", pods), ("p.yaml", broken.as_str())]);
        let rules = cluster.rules();
        let packet = |src: &str, dst: &str| Packet { src: src.parse().unwrap(), dst: dst.parse().unwrap(), protocol: Protocol::Tcp, dst_port: 80 };
        let out = evaluate(&cluster, &rules, &packet("10.0.0.1", "10.0.0.2"));
        assert!(!out.allowed, "the subject's egress fails closed: {out}");
        assert!(out.to_string().contains("ClusterNetworkPolicy guard"), "{out}");
        assert!(evaluate(&cluster, &rules, &packet("10.0.0.2", "10.0.0.1")).allowed, "it had no ingress rules");
    }
}
