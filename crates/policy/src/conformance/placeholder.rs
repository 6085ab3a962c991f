//! Placeholders in case manifests, filled in once pods have addresses:
//! `{{ip P}}` (the address), `{{hostcidr P}}` (`IP/32` or `IP/128`) and `{{cidr P N}}` (the
//! canonical /N network containing P's address). P is a pod (`ns/name`) or, in the `node/`
//! cases, a host endpoint (`node:NAME`, `externalnode:ns/NAME`): any [`Target`].
use super::target::{BadTarget, Target};
use crate::objects::PodKey;
use ipnetwork::IpNetwork;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// A placeholder that cannot be filled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("placeholder {{{{{text}}}}}: {message}")]
pub struct PlaceholderError {
    /// The text between the braces.
    pub text: String,
    /// What is wrong.
    pub message: String,
}

/// Fills one placeholder body (`ip x/a`, `hostcidr x/a`, `cidr x/b 4`).
fn fill(body: &str, ips: &BTreeMap<Target, IpAddr>) -> Result<String, PlaceholderError> {
    let err = |m: String| PlaceholderError { text: body.to_string(), message: m };
    let words: Vec<&str> = body.split_whitespace().collect();
    let ip_of = |p: &str| -> Result<IpAddr, PlaceholderError> {
        let target: Target = p.parse().map_err(|e: BadTarget| err(e.to_string()))?;
        ips.get(&target).copied().ok_or_else(|| err(format!("{target} has no address")))
    };
    match words.as_slice() {
        ["ip", p] => Ok(ip_of(p)?.to_string()),
        ["hostcidr", p] => {
            let ip = ip_of(p)?;
            Ok(format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 }))
        }
        ["cidr", p, n] => {
            let ip = ip_of(p)?;
            let prefix: u8 = n.parse().map_err(|_| err(format!("{n:?} is not a prefix length")))?;
            let net = IpNetwork::new(ip, prefix).map_err(|e| err(e.to_string()))?;
            Ok(format!("{}/{}", net.network(), prefix))
        }
        _ => Err(err("expected `ip P`, `hostcidr P` or `cidr P N`".into())),
    }
}

/// Pods' addresses as the targets' addresses.
fn of_pods(ips: &BTreeMap<PodKey, IpAddr>) -> BTreeMap<Target, IpAddr> {
    ips.iter().map(|(k, ip)| (Target::Pod(k.clone()), *ip)).collect()
}

/// Replaces every `{{...}}` in `s`, with pods' addresses.
pub fn substitute_str(s: &str, ips: &BTreeMap<PodKey, IpAddr>) -> Result<String, PlaceholderError> {
    substitute_str_targets(s, &of_pods(ips))
}

/// Replaces every `{{...}}` in `s`, with the addresses of pods and host endpoints.
pub fn substitute_str_targets(s: &str, ips: &BTreeMap<Target, IpAddr>) -> Result<String, PlaceholderError> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| PlaceholderError {
            text: after.to_string(),
            message: "no closing }}".into(),
        })?;
        out.push_str(&fill(after[..end].trim(), ips)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Replaces placeholders in every string of a manifest, with pods' addresses.
pub fn substitute(value: &Value, ips: &BTreeMap<PodKey, IpAddr>) -> Result<Value, PlaceholderError> {
    substitute_targets(value, &of_pods(ips))
}

/// Replaces placeholders in every string of a manifest, with the addresses of pods and host
/// endpoints.
pub fn substitute_targets(value: &Value, ips: &BTreeMap<Target, IpAddr>) -> Result<Value, PlaceholderError> {
    Ok(match value {
        Value::String(s) => Value::String(substitute_str_targets(s, ips)?),
        Value::Array(a) => Value::Array(a.iter().map(|v| substitute_targets(v, ips)).collect::<Result<_, _>>()?),
        Value::Object(o) => Value::Object(
            o.iter().map(|(k, v)| Ok((k.clone(), substitute_targets(v, ips)?))).collect::<Result<_, PlaceholderError>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips() -> BTreeMap<PodKey, IpAddr> {
        BTreeMap::from([(PodKey::new("x", "b"), "10.244.1.7".parse().unwrap()), (PodKey::new("y", "a"), "fd00::5".parse().unwrap())])
    }

    #[test]
    fn fills_ip_hostcidr_and_cidr() {
        assert_eq!(substitute_str("{{ip x/b}}", &ips()).unwrap(), "10.244.1.7");
        assert_eq!(substitute_str("{{hostcidr x/b}}", &ips()).unwrap(), "10.244.1.7/32");
        assert_eq!(substitute_str("{{hostcidr y/a}}", &ips()).unwrap(), "fd00::5/128");
        assert_eq!(substitute_str("{{cidr x/b 4}}", &ips()).unwrap(), "0.0.0.0/4");
        assert_eq!(substitute_str("{{cidr x/b 16}}", &ips()).unwrap(), "10.244.0.0/16");
        assert_eq!(substitute_str("a {{ip x/b}} b", &ips()).unwrap(), "a 10.244.1.7 b");
    }

    #[test]
    fn host_endpoints_fill_like_pods() {
        let ips = BTreeMap::from([
            ("node:node-1".parse::<Target>().unwrap(), "172.18.0.2".parse().unwrap()),
            ("externalnode:vms/vm1".parse::<Target>().unwrap(), "192.168.50.10".parse().unwrap()),
        ]);
        assert_eq!(substitute_str_targets("{{hostcidr node:node-1}}", &ips).unwrap(), "172.18.0.2/32");
        assert_eq!(substitute_str_targets("{{ip externalnode:vms/vm1}}", &ips).unwrap(), "192.168.50.10");
        assert!(substitute_str_targets("{{ip node:node-9}}", &ips).is_err());
    }

    #[test]
    fn unknown_pod_or_form_is_an_error() {
        assert!(substitute_str("{{ip z/z}}", &ips()).is_err());
        assert!(substitute_str("{{index .HostNetworkPorts 0}}", &ips()).is_err());
        assert!(substitute_str("{{ip x/b", &ips()).is_err());
    }
}
