//! The NetworkPolicy manifest shape (networking.k8s.io/v1, field names as in Kubernetes) and
//! its validation into [`crate::netpol::NetworkPolicy`], following Kubernetes'
//! `ValidateNetworkPolicy` (pkg/apis/networking/validation).
use super::meta::ObjectMeta;
use crate::netpol::{Direction, IpBlock, NetworkPolicy, Peer, PolicyRule, PortMatch, Service};
use crate::protocol::Protocol;
use crate::selector::{FieldError, LabelSelectorSpec, Selector};
use crate::syntax;
use ipnetwork::IpNetwork;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// A NetworkPolicy document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicyDoc {
    /// `networking.k8s.io/v1`.
    pub api_version: String,
    /// `NetworkPolicy`.
    pub kind: String,
    /// Name, namespace, labels.
    pub metadata: ObjectMeta,
    /// The policy.
    pub spec: NetworkPolicySpec,
}

/// `spec` of a NetworkPolicy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicySpec {
    /// The pods of the namespace the policy applies to. Absent or `null` is the empty
    /// selector (every pod), as the API server decodes it into Go's zero value.
    #[serde(default)]
    pub pod_selector: Option<LabelSelectorSpec>,
    /// Ingress rules.
    #[serde(default)]
    pub ingress: Option<Vec<IngressRuleSpec>>,
    /// Egress rules.
    #[serde(default)]
    pub egress: Option<Vec<EgressRuleSpec>>,
    /// `Ingress` and/or `Egress`.
    #[serde(default)]
    pub policy_types: Option<Vec<String>>,
}

/// An ingress rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressRuleSpec {
    /// Allowed sources.
    #[serde(default)]
    pub from: Option<Vec<PeerSpec>>,
    /// Allowed destination ports.
    #[serde(default)]
    pub ports: Option<Vec<PortSpec>>,
}

/// An egress rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressRuleSpec {
    /// Allowed destinations.
    #[serde(default)]
    pub to: Option<Vec<PeerSpec>>,
    /// Allowed destination ports.
    #[serde(default)]
    pub ports: Option<Vec<PortSpec>>,
}

/// `NetworkPolicyPeer`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeerSpec {
    /// Pods by label.
    #[serde(default)]
    pub pod_selector: Option<LabelSelectorSpec>,
    /// Namespaces by label.
    #[serde(default)]
    pub namespace_selector: Option<LabelSelectorSpec>,
    /// An address block.
    #[serde(default)]
    pub ip_block: Option<IpBlockSpec>,
}

/// `IPBlock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IpBlockSpec {
    /// The block, e.g. `10.0.0.0/8`.
    pub cidr: String,
    /// Blocks inside it that do not match.
    #[serde(default)]
    pub except: Option<Vec<String>>,
}

/// `NetworkPolicyPort`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
pub struct PortSpec {
    /// TCP (default), UDP or SCTP.
    #[serde(default)]
    pub protocol: Option<String>,
    /// A number or a named container port; absent = every port.
    #[serde(default)]
    pub port: Option<IntOrString>,
    /// The end of a port range starting at `port`.
    #[serde(default)]
    pub end_port: Option<i64>,
}

/// Kubernetes' `IntOrString`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum IntOrString {
    /// A number.
    Int(i64),
    /// A name.
    String(String),
}

/// A number or a string, as the API server's structural schemas mark it.
#[cfg(feature = "crd")]
impl schemars::JsonSchema for IntOrString {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "IntOrString".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"x-kubernetes-int-or-string": true})
    }
}

impl<'de> Deserialize<'de> for IntOrString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IntOrString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number or a port name")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrString, E> {
                Ok(IntOrString::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrString, E> {
                Ok(IntOrString::Int(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrString, E> {
                Ok(IntOrString::String(v.to_string()))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Parses a CIDR as Kubernetes does (host bits allowed, as `ParseCIDRSloppy`).
pub(crate) fn parse_cidr(s: &str, field: &str) -> Result<IpNetwork, FieldError> {
    if !s.contains('/') {
        return Err(FieldError::new(field, format!("{s:?} is not a valid CIDR: missing the /prefix length")));
    }
    s.parse::<IpNetwork>().map_err(|e| FieldError::new(field, format!("{s:?} is not a valid CIDR: {e}")))
}

/// The network with its host bits cleared (`10.0.0.1/8` is `10.0.0.0/8`).
pub(crate) fn canonical(net: IpNetwork) -> IpNetwork {
    IpNetwork::new(net.network(), net.prefix()).expect("a valid network's own prefix is valid")
}

fn check_ip_block(spec: &IpBlockSpec, at: &str) -> Result<IpBlock, FieldError> {
    let cidr = parse_cidr(&spec.cidr, &format!("{at}.cidr"))?;
    let except = spec.except.as_deref().unwrap_or_default();
    if except.len() > syntax::MAX_EXCEPT {
        return Err(FieldError::new(
            format!("{at}.except"),
            format!("has {} entries; at most {} are allowed", except.len(), syntax::MAX_EXCEPT),
        ));
    }
    let mut out = Vec::new();
    for (i, e) in except.iter().enumerate() {
        let field = format!("{at}.except[{i}]");
        let net = parse_cidr(e, &field)?;
        // Kubernetes: "must be a strict subset of `cidr`".
        if net.is_ipv4() != cidr.is_ipv4() || net.prefix() <= cidr.prefix() || !cidr.contains(net.network()) {
            return Err(FieldError::new(field, format!("{e} must be a strict subset of `cidr` {}", spec.cidr)));
        }
        out.push(canonical(net));
    }
    out.sort();
    out.dedup();
    Ok(IpBlock { cidr: canonical(cidr), except: out })
}

fn check_peer(spec: &PeerSpec, at: &str) -> Result<Peer, FieldError> {
    let pod = spec.pod_selector.as_ref().map(|s| Selector::from_spec(s, &format!("{at}.podSelector"))).transpose()?;
    let namespace =
        spec.namespace_selector.as_ref().map(|s| Selector::from_spec(s, &format!("{at}.namespaceSelector"))).transpose()?;
    match (&spec.ip_block, pod.is_some() || namespace.is_some()) {
        (None, false) => Err(FieldError::new(at, "must specify a peer: podSelector, namespaceSelector or ipBlock")),
        (Some(_), true) => Err(FieldError::new(at, "may not specify both ipBlock and another peer")),
        (Some(block), false) => Ok(Peer::Block(check_ip_block(block, &format!("{at}.ipBlock"))?)),
        (None, true) => Ok(Peer::Pods { pod, namespace }),
    }
}

pub(crate) fn check_port(spec: &PortSpec, at: &str) -> Result<Service, FieldError> {
    let protocol = match &spec.protocol {
        None => Protocol::Tcp,
        Some(p) => p
            .parse::<Protocol>()
            .ok()
            .filter(|_| p.chars().all(|c| c.is_ascii_uppercase()))
            .ok_or_else(|| FieldError::new(format!("{at}.protocol"), format!("unsupported protocol {p:?}: expected TCP, UDP or SCTP")))?,
    };
    let port = match (&spec.port, spec.end_port) {
        (None, None) => PortMatch::Any,
        (None, Some(_)) => {
            return Err(FieldError::new(format!("{at}.endPort"), "may not be specified when `port` is not specified"));
        }
        (Some(IntOrString::String(name)), end) => {
            syntax::iana_svc_name(name).map_err(|m| FieldError::new(format!("{at}.port"), m))?;
            if end.is_some() {
                return Err(FieldError::new(format!("{at}.endPort"), "may not be specified when `port` is a named port"));
            }
            PortMatch::Named(name.clone())
        }
        (Some(IntOrString::Int(n)), end) => {
            let lo = syntax::port_number(*n).map_err(|m| FieldError::new(format!("{at}.port"), m))?;
            let hi = match end {
                None => lo,
                Some(e) => {
                    let hi = syntax::port_number(e).map_err(|m| FieldError::new(format!("{at}.endPort"), m))?;
                    if hi < lo {
                        return Err(FieldError::new(
                            format!("{at}.endPort"),
                            format!("{hi} must be greater than or equal to `port` {lo}"),
                        ));
                    }
                    hi
                }
            };
            PortMatch::Range(lo, hi)
        }
    };
    Ok(Service { protocol, port })
}

fn check_list<T>(list: &Option<Vec<T>>, at: &str) -> Result<(), FieldError> {
    match list {
        Some(l) if l.len() > syntax::MAX_LIST_ITEMS => Err(FieldError::new(
            at,
            format!("has {} entries; at most {} are allowed", l.len(), syntax::MAX_LIST_ITEMS),
        )),
        _ => Ok(()),
    }
}

fn check_rule(peers: &Option<Vec<PeerSpec>>, ports: &Option<Vec<PortSpec>>, at: &str, peer_key: &str) -> Result<PolicyRule, FieldError> {
    check_list(peers, &format!("{at}.{peer_key}"))?;
    check_list(ports, &format!("{at}.ports"))?;
    let peers = match peers.as_deref() {
        None | Some([]) => None,
        Some(list) => Some(
            list.iter().enumerate().map(|(i, p)| check_peer(p, &format!("{at}.{peer_key}[{i}]"))).collect::<Result<_, _>>()?,
        ),
    };
    let ports = match ports.as_deref() {
        None | Some([]) => None,
        Some(list) => {
            let mut services: Vec<Service> =
                list.iter().enumerate().map(|(i, p)| check_port(p, &format!("{at}.ports[{i}]"))).collect::<Result<_, _>>()?;
            services.sort();
            services.dedup();
            Some(services)
        }
    };
    Ok(PolicyRule { peers, ports })
}

/// The directions a policy covers: `policyTypes` if given, otherwise Ingress plus Egress when
/// `spec.egress` has rules (Kubernetes' defaulting, `SetDefaults_NetworkPolicySpec`).
pub(crate) fn policy_types(spec_types: Option<&[String]>, has_egress: bool) -> Result<BTreeSet<Direction>, FieldError> {
    match spec_types {
        None | Some([]) => {
            let mut t = BTreeSet::from([Direction::Ingress]);
            if has_egress {
                t.insert(Direction::Egress);
            }
            Ok(t)
        }
        Some(list) => {
            if list.len() > 2 {
                return Err(FieldError::new("spec.policyTypes", "may not specify more than two policyTypes"));
            }
            let mut t = BTreeSet::new();
            for (i, s) in list.iter().enumerate() {
                let d = match s.as_str() {
                    "Ingress" => Direction::Ingress,
                    "Egress" => Direction::Egress,
                    other => {
                        return Err(FieldError::new(
                            format!("spec.policyTypes[{i}]"),
                            format!("unsupported value {other:?}: expected Ingress or Egress"),
                        ));
                    }
                };
                if !t.insert(d) {
                    return Err(FieldError::new(format!("spec.policyTypes[{i}]"), format!("duplicate value {s:?}")));
                }
            }
            Ok(t)
        }
    }
}

impl NetworkPolicyDoc {
    /// Validates the document into a policy; `namespace` is the effective namespace.
    pub fn check(&self, namespace: &str, name: &str) -> Result<NetworkPolicy, FieldError> {
        let spec = &self.spec;
        let pod_selector = match &spec.pod_selector {
            Some(sel) => Selector::from_spec(sel, "spec.podSelector")?,
            None => Selector::everything(),
        };
        let has_egress = spec.egress.as_ref().is_some_and(|e| !e.is_empty());
        let policy_types = policy_types(spec.policy_types.as_deref(), has_egress)?;
        check_list(&spec.ingress, "spec.ingress")?;
        check_list(&spec.egress, "spec.egress")?;
        let ingress = spec
            .ingress
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, r)| check_rule(&r.from, &r.ports, &format!("spec.ingress[{i}]"), "from"))
            .collect::<Result<_, _>>()?;
        let egress = spec
            .egress
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, r)| check_rule(&r.to, &r.ports, &format!("spec.egress[{i}]"), "to"))
            .collect::<Result<_, _>>()?;
        Ok(NetworkPolicy {
            namespace: namespace.to_string(),
            name: name.to_string(),
            pod_selector,
            policy_types,
            ingress,
            egress,
        })
    }
}
