//! Port specs from text: a type name plus `key=value` options spelled as in ovs-vsctl
//! (`remote_ip=10.0.0.2`, `key=flow`, `erspan_ver=2`, `external_ids:k=v`...). Every error
//! names the port and the option that is wrong.
use super::spec::{ErspanDir, ErspanVersion, Flowable, Inheritable, PortKind, PortSpec, TunnelKind, TunnelSpec};
use crate::error::Error;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;

/// The port types [`parse_port`] knows.
pub const PORT_TYPES: [&str; 7] = ["internal", "system", "patch", "vxlan", "geneve", "gre", "erspan"];

/// Builds a [`PortSpec`] from a type and options; unknown types and options, and values
/// that do not parse, are errors naming the field. The result is also validated.
pub fn parse_port(name: &str, kind: &str, options: &[(String, String)]) -> Result<PortSpec, Error> {
    let obj = || format!("port {name:?}");
    let mut opts: BTreeMap<&str, &str> = BTreeMap::new();
    let mut external_ids = BTreeMap::new();
    for (k, v) in options {
        if let Some(key) = k.strip_prefix("external_ids:") {
            external_ids.insert(key.to_string(), v.clone());
        } else if opts.insert(k.as_str(), v.as_str()).is_some() {
            return Err(Error::invalid(obj(), k.as_str(), "given twice"));
        }
    }
    let mut take = |key: &str| opts.remove(key);
    fn num<T: FromStr>(obj: &dyn Fn() -> String, field: &str, v: &str) -> Result<T, Error> {
        let parsed = match v.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok().and_then(|n| n.to_string().parse().ok()),
            None => v.parse().ok(),
        };
        parsed.ok_or_else(|| Error::invalid(obj(), field, format!("{v:?} is not a number in range")))
    }
    fn ip(obj: &dyn Fn() -> String, field: &str, v: &str) -> Result<IpAddr, Error> {
        v.parse().map_err(|_| Error::invalid(obj(), field, format!("{v:?} is not an IP address")))
    }
    let inherit = |field: &str, v: &str| -> Result<Inheritable<u8>, Error> {
        if v == "inherit" { Ok(Inheritable::Inherit) } else { num(&obj, field, v).map(Inheritable::Value) }
    };

    let kind = match kind {
        "internal" => PortKind::Internal,
        "system" | "" => PortKind::System,
        "patch" => {
            let peer = take("peer").ok_or_else(|| Error::invalid(obj(), "peer", "patch ports need peer=NAME"))?;
            PortKind::Patch { peer: peer.to_string() }
        }
        "vxlan" | "geneve" | "gre" | "erspan" => {
            let tkind = match kind {
                "vxlan" => TunnelKind::Vxlan,
                "geneve" => TunnelKind::Geneve,
                "gre" => TunnelKind::Gre,
                _ => {
                    let version = match take("erspan_ver").unwrap_or("1") {
                        "1" => ErspanVersion::V1,
                        "2" => ErspanVersion::V2,
                        v => return Err(Error::invalid(obj(), "erspan_ver", format!("{v:?} is not 1 or 2"))),
                    };
                    let index = take("erspan_idx").map(|v| num(&obj, "erspan_idx", v)).transpose()?;
                    let dir = match take("erspan_dir") {
                        None => None,
                        Some("0" | "ingress") => Some(ErspanDir::Ingress),
                        Some("1" | "egress") => Some(ErspanDir::Egress),
                        Some(v) => {
                            return Err(Error::invalid(
                                obj(),
                                "erspan_dir",
                                format!("{v:?} is not 0/ingress or 1/egress"),
                            ));
                        }
                    };
                    let hwid = take("erspan_hwid").map(|v| num(&obj, "erspan_hwid", v)).transpose()?;
                    TunnelKind::Erspan { version, index, dir, hwid }
                }
            };
            let remote = take("remote_ip")
                .ok_or_else(|| Error::invalid(obj(), "remote_ip", "tunnels need remote_ip=IP|flow"))?;
            let remote_ip =
                if remote == "flow" { Flowable::Flow } else { Flowable::Fixed(ip(&obj, "remote_ip", remote)?) };
            let mut t = TunnelSpec::new(tkind, remote_ip);
            t.key = match take("key") {
                None => None,
                Some("flow") => Some(Flowable::Flow),
                Some(v) => Some(Flowable::Fixed(num(&obj, "key", v)?)),
            };
            t.local_ip = take("local_ip").map(|v| ip(&obj, "local_ip", v)).transpose()?;
            t.dst_port = take("dst_port").map(|v| num(&obj, "dst_port", v)).transpose()?;
            t.csum = match take("csum") {
                None => None,
                Some("true") => Some(true),
                Some("false") => Some(false),
                Some(v) => return Err(Error::invalid(obj(), "csum", format!("{v:?} is not true or false"))),
            };
            t.tos = take("tos").map(|v| inherit("tos", v)).transpose()?;
            t.ttl = take("ttl").map(|v| inherit("ttl", v)).transpose()?;
            PortKind::Tunnel(t)
        }
        other => {
            return Err(Error::invalid(
                obj(),
                "type",
                format!("unknown port type {other:?} (expected one of: {})", PORT_TYPES.join(", ")),
            ));
        }
    };
    let mut spec = PortSpec::new(name, kind);
    spec.external_ids = external_ids;
    spec.ofport_request = take("ofport_request").map(|v| num(&obj, "ofport_request", v)).transpose()?;
    spec.mtu = take("mtu_request").or_else(|| take("mtu")).map(|v| num(&obj, "mtu", v)).transpose()?;
    spec.no_flood = match take("no_flood") {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => return Err(Error::invalid(obj(), "no_flood", format!("{v:?} is not true or false"))),
    };
    if let Some((k, _)) = opts.into_iter().next() {
        return Err(Error::invalid(obj(), k, "unknown option for this port type"));
    }
    spec.validate()?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn erspan_v2_parses_with_hex_hwid() {
        let s = parse_port(
            "ers0",
            "erspan",
            &o(&[
                ("remote_ip", "10.0.0.9"),
                ("erspan_ver", "2"),
                ("erspan_dir", "1"),
                ("erspan_hwid", "0x7"),
                ("key", "11"),
            ]),
        )
        .unwrap();
        assert_eq!(s.options()["erspan_hwid"], "0x7");
        assert_eq!(s.options()["erspan_dir"], "1");
    }

    #[test]
    fn each_bad_option_names_its_field() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            ("bogus", &[], "type"),
            ("vxlan", &[("remote_ip", "1.2.3")], "remote_ip"),
            ("vxlan", &[("remote_ip", "1.2.3.4"), ("key", "x")], "key"),
            ("vxlan", &[("remote_ip", "1.2.3.4"), ("local_ip", "::g")], "local_ip"),
            ("gre", &[("remote_ip", "1.2.3.4"), ("frobnicate", "1")], "frobnicate"),
            ("internal", &[("ofport_request", "70000")], "ofport_request"),
            ("patch", &[], "peer"),
            ("erspan", &[("remote_ip", "1.2.3.4"), ("erspan_ver", "3")], "erspan_ver"),
        ];
        for (kind, opts, field) in cases {
            let e = parse_port("p0", kind, &o(opts)).unwrap_err();
            assert_eq!(e.field(), Some(*field), "{kind} {opts:?}: {e}");
            assert!(e.to_string().contains("port \"p0\""), "{e}");
        }
    }
}
