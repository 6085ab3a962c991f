//! TrafficControl: mirror or redirect the traffic of selected pods to a port.
//!
//! The manifest follows Antrea's `crd.antrea.io/v1alpha2` TrafficControl field names (weir's own
//! apiVersion `weir.io/v1alpha1` has the same shape); it is cluster-scoped.
//!
//! Several TrafficControls on one pod: every Mirror applies (each target gets its own copy);
//! at most one Redirect applies per pod and direction, the first by name, and the others are
//! reported as conflicts for that pod rather than silently dropped.

use crate::cluster::Cluster;
use crate::manifest::meta::{NameRule, ObjectMeta};
use crate::objects::PodKey;
use crate::selector::{FieldError, LabelSelectorSpec, Selector};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// Which traffic of a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TcDirection {
    /// What the pod receives.
    Ingress,
    /// What the pod sends.
    Egress,
    /// Both.
    Both,
}

impl TcDirection {
    /// Whether this covers traffic the pod receives.
    pub fn ingress(self) -> bool {
        matches!(self, TcDirection::Ingress | TcDirection::Both)
    }

    /// Whether this covers traffic the pod sends.
    pub fn egress(self) -> bool {
        matches!(self, TcDirection::Egress | TcDirection::Both)
    }
}

/// What happens to the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TcAction {
    /// A copy goes to the target; the packet goes on unchanged.
    Mirror,
    /// The packet goes to the target instead; it comes back on the return port (if any).
    Redirect,
}

/// Where the traffic goes: a port weir creates (or attaches) on the bridge.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TcPort {
    /// An OVS internal port, created if missing.
    OvsInternal {
        /// Its name.
        name: String,
    },
    /// An existing network device of the node, attached to the bridge.
    Device {
        /// Its name.
        name: String,
    },
    /// A VXLAN tunnel to a fixed remote.
    Vxlan {
        /// Remote endpoint.
        remote_ip: IpAddr,
        /// VNI (24 bits); 0 when absent.
        vni: u32,
        /// UDP port; 4789 when absent.
        dst_port: u16,
    },
    /// A GENEVE tunnel to a fixed remote.
    Geneve {
        /// Remote endpoint.
        remote_ip: IpAddr,
        /// VNI (24 bits); 0 when absent.
        vni: u32,
        /// UDP port; 6081 when absent.
        dst_port: u16,
    },
    /// A GRE tunnel to a fixed remote.
    Gre {
        /// Remote endpoint.
        remote_ip: IpAddr,
        /// GRE key; none when absent.
        key: Option<u32>,
    },
    /// An ERSPAN tunnel to a fixed remote.
    Erspan {
        /// Remote endpoint.
        remote_ip: IpAddr,
        /// Session id (10 bits).
        session_id: u32,
        /// 1 (type II) or 2 (type III).
        version: u8,
        /// v1: the index (20 bits).
        index: Option<u32>,
        /// v2: the direction bit (0 ingress, 1 egress).
        dir: Option<u8>,
        /// v2: the hardware id (6 bits).
        hardware_id: Option<u8>,
    },
}

impl TcPort {
    /// Whether the port is a tunnel.
    pub fn is_tunnel(&self) -> bool {
        !matches!(self, TcPort::OvsInternal { .. } | TcPort::Device { .. })
    }
}

/// A checked TrafficControl.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficControl {
    /// Its name.
    pub name: String,
    /// Pods by label (`None`: every pod of the selected namespaces).
    pub pod_selector: Option<Selector>,
    /// Namespaces by label (`None`: every namespace).
    pub namespace_selector: Option<Selector>,
    /// Which traffic.
    pub direction: TcDirection,
    /// Mirror or redirect.
    pub action: TcAction,
    /// Where it goes.
    pub target: TcPort,
    /// Where redirected traffic comes back.
    pub return_port: Option<TcPort>,
}

impl TrafficControl {
    /// The pods it selects (never hostNetwork pods). An appliedTo with neither selector
    /// selects nothing.
    pub fn selected<'a>(&'a self, cluster: &'a Cluster) -> impl Iterator<Item = &'a PodKey> + 'a {
        let any = self.pod_selector.is_some() || self.namespace_selector.is_some();
        cluster
            .policy_pods()
            .filter(move |p| {
                any && self.pod_selector.as_ref().is_none_or(|s| s.matches(&p.labels))
                    && self.namespace_selector.as_ref().is_none_or(|s| {
                        cluster.namespaces.get(&p.key.namespace).is_some_and(|ns| s.matches(&ns.labels))
                    })
            })
            .map(|p| &p.key)
    }
}

/// What applies to one pod, after resolving overlaps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PodTrafficControl {
    /// Mirror targets for what the pod sends, with the TrafficControl names.
    pub egress_mirrors: BTreeSet<(TcPort, String)>,
    /// Mirror targets for what the pod receives.
    pub ingress_mirrors: BTreeSet<(TcPort, String)>,
    /// The redirect of what the pod sends: target, return port, TrafficControl name.
    pub egress_redirect: Option<(TcPort, Option<TcPort>, String)>,
    /// The redirect of what the pod receives.
    pub ingress_redirect: Option<(TcPort, Option<TcPort>, String)>,
}

/// Every pod's TrafficControls, and the conflicts found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TrafficControlPlan {
    /// By pod.
    pub pods: BTreeMap<PodKey, PodTrafficControl>,
    /// TrafficControl name → pods it could not apply to, and why.
    pub conflicts: BTreeMap<String, Vec<String>>,
}

impl Cluster {
    /// Resolves every TrafficControl to the pods it selects (see the module doc for overlaps).
    pub fn traffic_control_plan(&self) -> TrafficControlPlan {
        let mut plan = TrafficControlPlan::default();
        // BTreeMap order: by name, so "the first by name wins" is stable.
        for tc in self.traffic_controls.values() {
            for pod in tc.selected(self) {
                let entry = plan.pods.entry(pod.clone()).or_default();
                let mut conflict = |dir: &str, other: &str| {
                    plan.conflicts.entry(tc.name.clone()).or_default().push(format!(
                        "pod {pod}: {dir} traffic is already redirected by TrafficControl {other}"
                    ));
                };
                match tc.action {
                    TcAction::Mirror => {
                        if tc.direction.egress() {
                            entry.egress_mirrors.insert((tc.target.clone(), tc.name.clone()));
                        }
                        if tc.direction.ingress() {
                            entry.ingress_mirrors.insert((tc.target.clone(), tc.name.clone()));
                        }
                    }
                    TcAction::Redirect => {
                        let redirect = (tc.target.clone(), tc.return_port.clone(), tc.name.clone());
                        if tc.direction.egress() {
                            match &entry.egress_redirect {
                                Some((_, _, other)) => conflict("egress", &other.clone()),
                                None => entry.egress_redirect = Some(redirect.clone()),
                            }
                        }
                        if tc.direction.ingress() {
                            match &entry.ingress_redirect {
                                Some((_, _, other)) => conflict("ingress", &other.clone()),
                                None => entry.ingress_redirect = Some(redirect),
                            }
                        }
                    }
                }
            }
        }
        plan
    }
}

/// The TrafficControl document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficControlDoc {
    /// `crd.antrea.io/v1alpha2` or `weir.io/v1alpha1`.
    pub api_version: String,
    /// `TrafficControl`.
    pub kind: String,
    /// Name (cluster-scoped).
    pub metadata: ObjectMeta,
    /// The spec.
    pub spec: TrafficControlSpec,
}

/// Mirror or redirect the traffic of the pods appliedTo selects to a target port.
// With the `crd` feature this type also makes the CustomResourceDefinition (crate::crd), whose
// descriptions are these doc comments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema, kube::CustomResource))]
#[cfg_attr(feature = "crd", kube(
    group = "weir.io",
    version = "v1alpha1",
    kind = "TrafficControl",
    root = "TrafficControlObject",
    doc = "weir's TrafficControl: mirror or redirect the traffic of selected pods to a port",
    plural = "trafficcontrols",
    shortname = "tc",
    status = "crate::crd::NodeConditions",
    printcolumn = r#"{"name": "Action", "type": "string", "jsonPath": ".spec.action"}"#,
    printcolumn = r#"{"name": "Direction", "type": "string", "jsonPath": ".spec.direction"}"#,
))]
pub struct TrafficControlSpec {
    /// The pods whose traffic it controls.
    pub applied_to: AppliedToSpec,
    /// `Ingress`, `Egress` or `Both`.
    #[cfg_attr(feature = "crd", schemars(extend("enum" = ["Ingress", "Egress", "Both"])))]
    pub direction: String,
    /// `Mirror` or `Redirect`.
    #[cfg_attr(feature = "crd", schemars(extend("enum" = ["Mirror", "Redirect"])))]
    pub action: String,
    /// Where the traffic goes.
    pub target_port: PortSpec,
    /// Where redirected traffic comes back.
    #[serde(default)]
    pub return_port: Option<PortSpec>,
}

/// `appliedTo`: the pods whose traffic is mirrored or redirected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppliedToSpec {
    /// Pods by label.
    #[serde(default)]
    pub pod_selector: Option<LabelSelectorSpec>,
    /// Namespaces by label.
    #[serde(default)]
    pub namespace_selector: Option<LabelSelectorSpec>,
}

/// A port: exactly one of the fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "crd", schemars(extend("minProperties" = 1, "maxProperties" = 1)))]
pub struct PortSpec {
    /// OVS internal port.
    #[serde(default)]
    pub ovs_internal: Option<NamedSpec>,
    /// Existing device.
    #[serde(default)]
    pub device: Option<NamedSpec>,
    /// VXLAN.
    #[serde(default)]
    pub vxlan: Option<UdpTunnelSpec>,
    /// GENEVE.
    #[serde(default)]
    pub geneve: Option<UdpTunnelSpec>,
    /// GRE.
    #[serde(default)]
    pub gre: Option<GreSpec>,
    /// ERSPAN.
    #[serde(default)]
    pub erspan: Option<ErspanSpec>,
}

/// `{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
pub struct NamedSpec {
    /// Device name.
    #[cfg_attr(feature = "crd", schemars(length(min = 1)))]
    pub name: String,
}

/// VXLAN and GENEVE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
pub struct UdpTunnelSpec {
    /// Remote endpoint.
    #[serde(rename = "remoteIP")]
    pub remote_ip: String,
    /// VNI.
    #[serde(default)]
    #[cfg_attr(feature = "crd", schemars(range(min = 0, max = 16777215)))]
    pub vni: Option<i64>,
    /// UDP destination port.
    #[serde(default)]
    #[cfg_attr(feature = "crd", schemars(range(min = 1, max = 65535)))]
    pub destination_port: Option<i64>,
}

/// GRE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
pub struct GreSpec {
    /// Remote endpoint.
    #[serde(rename = "remoteIP")]
    pub remote_ip: String,
    /// GRE key.
    #[serde(default)]
    #[cfg_attr(feature = "crd", schemars(range(min = 0, max = 4294967295_i64)))]
    pub key: Option<i64>,
}

/// ERSPAN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
pub struct ErspanSpec {
    /// Remote endpoint.
    #[serde(rename = "remoteIP")]
    pub remote_ip: String,
    /// Session id (0-1023).
    #[serde(default, rename = "sessionID")]
    #[cfg_attr(feature = "crd", schemars(range(min = 0, max = 1023)))]
    pub session_id: Option<i64>,
    /// 1 or 2.
    #[cfg_attr(feature = "crd", schemars(extend("enum" = [1, 2])))]
    pub version: i64,
    /// v1 index.
    #[serde(default)]
    #[cfg_attr(feature = "crd", schemars(range(min = 0, max = 1048575)))]
    pub index: Option<i64>,
    /// v2 direction (0 or 1).
    #[serde(default)]
    #[cfg_attr(feature = "crd", schemars(range(min = 0, max = 1)))]
    pub dir: Option<i64>,
    /// v2 hardware id (0-63).
    #[serde(default, rename = "hardwareID")]
    #[cfg_attr(feature = "crd", schemars(range(min = 0, max = 63)))]
    pub hardware_id: Option<i64>,
}

fn ranged(v: Option<i64>, field: String, max: i64) -> Result<Option<i64>, FieldError> {
    match v {
        Some(n) if !(0..=max).contains(&n) => Err(FieldError::new(field, format!("{n} is out of range 0..={max}"))),
        other => Ok(other),
    }
}

fn remote(ip: &str, field: String) -> Result<IpAddr, FieldError> {
    if ip.is_empty() {
        return Err(FieldError::new(field, "is required"));
    }
    let addr: IpAddr = ip.parse().map_err(|_| FieldError::new(field.clone(), format!("{ip:?} is not an IP address")))?;
    if addr.is_unspecified() || addr.is_multicast() || addr.is_loopback() {
        return Err(FieldError::new(field, format!("{ip} cannot be a tunnel endpoint")));
    }
    Ok(addr)
}

fn device_name(name: &str, field: String) -> Result<String, FieldError> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if !ok {
        return Err(FieldError::new(field, format!("{name:?} is not a network device name (1-15 printable characters, no '/' or ':')")));
    }
    Ok(name.to_string())
}

impl PortSpec {
    fn check(&self, at: &str) -> Result<TcPort, FieldError> {
        let set: Vec<&str> = [
            ("ovsInternal", self.ovs_internal.is_some()),
            ("device", self.device.is_some()),
            ("vxlan", self.vxlan.is_some()),
            ("geneve", self.geneve.is_some()),
            ("gre", self.gre.is_some()),
            ("erspan", self.erspan.is_some()),
        ]
        .into_iter()
        .filter_map(|(n, present)| present.then_some(n))
        .collect();
        match set.as_slice() {
            [] => return Err(FieldError::new(at, "needs one of ovsInternal, device, vxlan, geneve, gre, erspan")),
            [_] => {}
            many => return Err(FieldError::new(at, format!("sets {} but only one port type is allowed", many.join(" and ")))),
        }
        let f = |sub: &str| format!("{at}.{sub}");
        if let Some(n) = &self.ovs_internal {
            return Ok(TcPort::OvsInternal { name: device_name(&n.name, f("ovsInternal.name"))? });
        }
        if let Some(n) = &self.device {
            return Ok(TcPort::Device { name: device_name(&n.name, f("device.name"))? });
        }
        if let Some(t) = &self.vxlan {
            return Ok(TcPort::Vxlan {
                remote_ip: remote(&t.remote_ip, f("vxlan.remoteIP"))?,
                vni: ranged(t.vni, f("vxlan.vni"), (1 << 24) - 1)?.unwrap_or(0) as u32,
                dst_port: ranged(t.destination_port, f("vxlan.destinationPort"), 65535)?.unwrap_or(4789) as u16,
            });
        }
        if let Some(t) = &self.geneve {
            return Ok(TcPort::Geneve {
                remote_ip: remote(&t.remote_ip, f("geneve.remoteIP"))?,
                vni: ranged(t.vni, f("geneve.vni"), (1 << 24) - 1)?.unwrap_or(0) as u32,
                dst_port: ranged(t.destination_port, f("geneve.destinationPort"), 65535)?.unwrap_or(6081) as u16,
            });
        }
        if let Some(t) = &self.gre {
            return Ok(TcPort::Gre {
                remote_ip: remote(&t.remote_ip, f("gre.remoteIP"))?,
                key: ranged(t.key, f("gre.key"), u32::MAX as i64)?.map(|k| k as u32),
            });
        }
        let e = self.erspan.as_ref().expect("one type is set");
        let version = match e.version {
            1 | 2 => e.version as u8,
            v => return Err(FieldError::new(f("erspan.version"), format!("{v} is not 1 or 2"))),
        };
        let index = ranged(e.index, f("erspan.index"), (1 << 20) - 1)?;
        let dir = ranged(e.dir, f("erspan.dir"), 1)?;
        let hardware_id = ranged(e.hardware_id, f("erspan.hardwareID"), 63)?;
        if version == 1 && (dir.is_some() || hardware_id.is_some()) {
            return Err(FieldError::new(f("erspan.dir"), "dir and hardwareID are ERSPAN version 2 fields"));
        }
        if version == 2 && index.is_some() {
            return Err(FieldError::new(f("erspan.index"), "index is an ERSPAN version 1 field"));
        }
        Ok(TcPort::Erspan {
            remote_ip: remote(&e.remote_ip, f("erspan.remoteIP"))?,
            session_id: ranged(e.session_id, f("erspan.sessionID"), 1023)?.unwrap_or(0) as u32,
            version,
            index: index.map(|i| i as u32),
            dir: dir.map(|d| d as u8),
            hardware_id: hardware_id.map(|h| h as u8),
        })
    }
}

impl TrafficControlDoc {
    /// Validates the document into a [`TrafficControl`]; the error names the field.
    pub fn check(&self) -> Result<TrafficControl, FieldError> {
        let name = self.metadata.checked_name(NameRule::Subdomain)?;
        self.metadata.checked_labels()?;
        let s = &self.spec;
        let pod_selector =
            s.applied_to.pod_selector.as_ref().map(|p| Selector::from_spec(p, "spec.appliedTo.podSelector")).transpose()?;
        let namespace_selector = s
            .applied_to
            .namespace_selector
            .as_ref()
            .map(|n| Selector::from_spec(n, "spec.appliedTo.namespaceSelector"))
            .transpose()?;
        let direction = match s.direction.as_str() {
            "Ingress" => TcDirection::Ingress,
            "Egress" => TcDirection::Egress,
            "Both" => TcDirection::Both,
            other => return Err(FieldError::new("spec.direction", format!("{other:?} is not Ingress, Egress or Both"))),
        };
        let action = match s.action.as_str() {
            "Mirror" => TcAction::Mirror,
            "Redirect" => TcAction::Redirect,
            other => return Err(FieldError::new("spec.action", format!("{other:?} is not Mirror or Redirect"))),
        };
        let target = s.target_port.check("spec.targetPort")?;
        let return_port = match (&s.return_port, action) {
            (None, _) => None,
            (Some(_), TcAction::Mirror) => {
                return Err(FieldError::new("spec.returnPort", "is only allowed with action Redirect"));
            }
            (Some(r), TcAction::Redirect) => {
                let p = r.check("spec.returnPort")?;
                if p.is_tunnel() {
                    return Err(FieldError::new("spec.returnPort", "must be ovsInternal or device"));
                }
                if p == target {
                    return Err(FieldError::new("spec.returnPort", "must differ from targetPort"));
                }
                Some(p)
            }
        };
        Ok(TrafficControl { name, pod_selector, namespace_selector, direction, action, target, return_port })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse;

    fn tc(spec: &str) -> Result<TrafficControl, String> {
        let text = format!("apiVersion: crd.antrea.io/v1alpha2\nkind: TrafficControl\nmetadata: {{name: t}}\nspec:\n{spec}");
        let m = parse("t.yaml", &text);
        match (m.objects.first(), m.errors.first()) {
            (Some((_, crate::manifest::Object::TrafficControl(t))), _) => Ok(t.clone()),
            (_, Some(e)) => Err(e.field.clone()),
            _ => Err(format!("nothing parsed: {m:?}")),
        }
    }

    const APPLIED: &str = "  appliedTo: {podSelector: {matchLabels: {pod: a}}}\n";

    #[test]
    fn mirror_to_a_geneve_target_parses_with_defaults() {
        let t = tc(&format!("{APPLIED}  direction: Both\n  action: Mirror\n  targetPort: {{geneve: {{remoteIP: 192.168.77.200, vni: 7}}}}\n")).unwrap();
        assert_eq!(t.target, TcPort::Geneve { remote_ip: "192.168.77.200".parse().unwrap(), vni: 7, dst_port: 6081 });
    }

    #[test]
    fn bad_input_names_the_field() {
        let cases = [
            ("  direction: Both\n  action: Mirror\n  targetPort: {bogus: {name: x}}\n", "spec.targetPort.bogus"),
            ("  direction: Both\n  action: Mirror\n  targetPort: {}\n", "spec.targetPort"),
            ("  direction: Both\n  action: Mirror\n  targetPort: {vxlan: {vni: 1}}\n", "spec.targetPort.vxlan.remoteIP"),
            ("  direction: Both\n  action: Mirror\n  targetPort: {vxlan: {remoteIP: 1.2.3.4, vni: 16777216}}\n", "spec.targetPort.vxlan.vni"),
            ("  direction: Both\n  action: Mirror\n  targetPort: {erspan: {remoteIP: 1.2.3.4, sessionID: 1024, version: 1}}\n", "spec.targetPort.erspan.sessionID"),
            ("  direction: Both\n  action: Mirror\n  targetPort: {erspan: {remoteIP: 1.2.3.4, version: 3}}\n", "spec.targetPort.erspan.version"),
            ("  direction: Both\n  action: Mirror\n  targetPort: {gre: {remoteIP: not-an-ip}}\n", "spec.targetPort.gre.remoteIP"),
            ("  direction: Both\n  action: Mirror\n  targetPort: {ovsInternal: {name: t0}}\n  returnPort: {ovsInternal: {name: t1}}\n", "spec.returnPort"),
            ("  direction: Sideways\n  action: Mirror\n  targetPort: {ovsInternal: {name: t0}}\n", "spec.direction"),
            ("  direction: Both\n  action: Copy\n  targetPort: {ovsInternal: {name: t0}}\n", "spec.action"),
            ("  direction: Both\n  action: Mirror\n  targetPort: {ovsInternal: {name: a-name-longer-than-15}}\n", "spec.targetPort.ovsInternal.name"),
            ("  direction: Both\n  action: Mirror\n  targetPort: {ovsInternal: {name: t0}, device: {name: d0}}\n", "spec.targetPort"),
            ("  direction: Both\n  action: Redirect\n  targetPort: {ovsInternal: {name: t0}}\n  returnPort: {gre: {remoteIP: 1.2.3.4}}\n", "spec.returnPort"),
        ];
        for (spec, field) in cases {
            assert_eq!(tc(&format!("{APPLIED}{spec}")).unwrap_err(), field, "{spec}");
        }
    }

    fn cluster_with(tcs: &str) -> Cluster {
        let pods = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {pod: a}}\nstatus: {podIP: 10.0.0.1}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: x, labels: {pod: b}}\nstatus: {podIP: 10.0.0.2}\n";
        Cluster::from_sources([("p.yaml", pods), ("t.yaml", tcs)])
    }

    #[test]
    fn two_mirrors_both_apply_and_a_second_redirect_is_a_conflict() {
        let doc = |name: &str, action: &str, port: &str| {
            format!("---\napiVersion: weir.io/v1alpha1\nkind: TrafficControl\nmetadata: {{name: {name}}}\nspec:\n{APPLIED}  direction: Egress\n  action: {action}\n  targetPort: {{ovsInternal: {{name: {port}}}}}\n")
        };
        let text = [doc("m1", "Mirror", "t1"), doc("m2", "Mirror", "t2"), doc("r1", "Redirect", "t3"), doc("r2", "Redirect", "t4")].concat();
        let c = cluster_with(&text);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        let plan = c.traffic_control_plan();
        let a = &plan.pods[&PodKey::new("x", "a")];
        assert_eq!(a.egress_mirrors.len(), 2);
        assert_eq!(a.egress_redirect.as_ref().unwrap().2, "r1");
        assert!(plan.conflicts["r2"][0].contains("already redirected by TrafficControl r1"));
        assert!(!plan.pods.contains_key(&PodKey::new("x", "b")), "only pod=a is selected");
    }

    #[test]
    fn an_empty_applied_to_selects_nothing() {
        let c = cluster_with("apiVersion: weir.io/v1alpha1\nkind: TrafficControl\nmetadata: {name: t}\nspec:\n  appliedTo: {}\n  direction: Both\n  action: Mirror\n  targetPort: {ovsInternal: {name: t0}}\n");
        assert!(c.traffic_control_plan().pods.is_empty());
    }
}
