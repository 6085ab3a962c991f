//! Shared fixtures: a 3×3 cluster (namespaces x, y, z; pods a, b, c) with addresses and
//! named ports, plus policies given as YAML.
#![allow(dead_code, unreachable_pub)]
use policy::{Cluster, Packet, PodKey, Protocol, RuleSet, Verdict, evaluate};
use std::net::IpAddr;

/// The address of pod `ns/name` in [`cluster`]: 10.0.<ns index>.<pod index + 1>.
pub fn ip(pod: &str) -> IpAddr {
    let key: PodKey = pod.parse().unwrap();
    let ns = ["x", "y", "z"].iter().position(|n| *n == key.namespace).unwrap() as u8;
    let p = ["a", "b", "c", "h"].iter().position(|n| *n == key.name).unwrap() as u8;
    IpAddr::from([10, 0, ns, p + 1])
}

/// Pods serve 80 and 81 on TCP, UDP and SCTP under the standard names; pod b also serves
/// `web` on 8080 and pod c serves `web` on 9090 (one name, two numbers).
pub fn base_manifests() -> String {
    let mut out = String::new();
    for ns in ["x", "y", "z"] {
        out.push_str(&format!("---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}, labels: {{ns: {ns}}}}}\n"));
        for pod in ["a", "b", "c"] {
            let mut ports = Vec::new();
            for port in [80, 81] {
                for proto in ["TCP", "UDP", "SCTP"] {
                    ports.push(format!("{{name: serve-{port}-{}, containerPort: {port}, protocol: {proto}}}", proto.to_lowercase()));
                }
            }
            match pod {
                "b" => ports.push("{name: web, containerPort: 8080}".into()),
                "c" => ports.push("{name: web, containerPort: 9090}".into()),
                _ => {}
            }
            out.push_str(&format!(
                "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {pod}, namespace: {ns}, labels: {{pod: {pod}}}}}\nspec: {{nodeName: n1, containers: [{{name: c, ports: [{}]}}]}}\nstatus: {{podIP: {}}}\n",
                ports.join(", "),
                ip(&format!("{ns}/{pod}"))
            ));
        }
    }
    out
}

/// The base cluster plus `extra` manifests; panics if anything is rejected.
pub fn cluster(extra: &str) -> Cluster {
    let base = base_manifests();
    let c = Cluster::from_sources([("base.yaml", base.as_str()), ("extra.yaml", extra)]);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    c
}

/// Evaluates `from → to` on `port`/`protocol`.
pub fn verdict(c: &Cluster, rules: &RuleSet, from: &str, to: &str, port: u16, protocol: Protocol) -> Verdict {
    let addr = |s: &str| s.parse::<IpAddr>().unwrap_or_else(|_| ip(s));
    evaluate(c, rules, &Packet { src: addr(from), dst: addr(to), protocol, dst_port: port })
}

/// Whether `from` reaches `to` on `port`/`protocol`.
pub fn reach(c: &Cluster, from: &str, to: &str, port: u16, protocol: Protocol) -> bool {
    verdict(c, &c.rules(), from, to, port, protocol).allowed
}

/// A NetworkPolicy in namespace `ns` with the given spec (YAML flow or block, indented by 2).
pub fn np(ns: &str, name: &str, spec: &str) -> String {
    format!("---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {spec}\n")
}
