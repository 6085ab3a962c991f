//! Reading a cluster model (`policy::model::ClusterModel`, the format of the conformance
//! README) from a file, and placing its pods on the testbed's nodes.
//!
//! A model file is either the `model:` block itself (as in `testbed/standard.yaml`) or a whole
//! conformance case file, whose `model:` block is used.
use crate::error::Error;
use policy::model::{ClusterModel, ModelPod};
use std::collections::BTreeMap;
use std::path::Path;

/// Reads and checks the model in `path`.
pub fn load(path: &Path) -> Result<ClusterModel, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse(&text, &format!("model {}", path.display()))
}

/// Parses a model from YAML text; `object` names the source in errors.
pub fn parse(text: &str, object: &str) -> Result<ClusterModel, Error> {
    /// A conformance case file: only its model matters here.
    #[derive(serde::Deserialize)]
    struct CaseFile {
        model: ClusterModel,
    }
    // Typed parsing throughout: through an untyped value, YAML 1.1 would read a namespace
    // called `y` as the boolean true.
    let doc: serde_json::Value =
        serde_saphyr::from_str(text).map_err(|e| Error::invalid(object, "(yaml)", e.to_string()))?;
    let (field, model) = if doc.get("model").is_some() {
        ("model", serde_saphyr::from_str::<CaseFile>(text).map(|c| c.model))
    } else {
        ("(top level)", serde_saphyr::from_str::<ClusterModel>(text))
    };
    let model = model.map_err(|e| Error::invalid(object, field, e.to_string()))?;
    model.check().map_err(|e| Error::invalid(object, format!("model.{}", e.field), e.message))?;
    Ok(model)
}

/// Gives every pod a node. Pods the model pins keep their node (which must exist); the others
/// are spread so that every namespace with two or more pods has a same-node pair and, given
/// two or more nodes, a cross-node pair: in each namespace the first two unplaced pods share a
/// node and each further one goes to the next node, the starting node rotating per namespace
/// to balance the load. hostNetwork pods listen on their node's ports, so (as a scheduler
/// would, seeing the host ports conflict) they go to distinct nodes: the m-th of a namespace to
/// node `(namespace index + m) mod n`; more of them than nodes is an error.
pub fn place(pods: &mut [ModelPod], nodes: &[String], object: &str) -> Result<(), Error> {
    if nodes.is_empty() {
        return Err(Error::invalid("testbed", "nodes", "at least one node is required"));
    }
    for pod in pods.iter() {
        if let Some(node) = &pod.node
            && !nodes.contains(node)
        {
            return Err(Error::invalid(
                object,
                format!("placement.{}/{}", pod.namespace, pod.name),
                format!("node {node:?} does not exist (nodes: {})", nodes.join(", ")),
            ));
        }
    }
    let mut namespaces: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut hosts: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, pod) in pods.iter().enumerate() {
        let unplaced = namespaces.entry(pod.namespace.clone()).or_default();
        let host = hosts.entry(pod.namespace.clone()).or_default();
        match (&pod.node, pod.host_network) {
            (Some(_), _) => {}
            (None, true) => host.push(i),
            (None, false) => unplaced.push(i),
        }
    }
    for (ns_index, (unplaced, host)) in namespaces.values().zip(hosts.values()).enumerate() {
        for (m, &i) in unplaced.iter().enumerate() {
            let step = m.saturating_sub(1);
            pods[i].node = Some(nodes[(ns_index + step) % nodes.len()].clone());
        }
        if host.len() > nodes.len() {
            let ns = &pods[host[0]].namespace;
            let why = format!("{} hostNetwork pods in namespace {ns} need as many nodes (there are {})", host.len(), nodes.len());
            return Err(Error::invalid(object, "pods", why));
        }
        for (m, &i) in host.iter().enumerate() {
            pods[i].node = Some(nodes[(ns_index + m) % nodes.len()].clone());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STANDARD: &str = "
namespaces: {x: {ns: x}, y: {ns: y}, z: {ns: z}}
pods: {a: {pod: a}, b: {pod: b}, c: {pod: c}}
ports: [80, 81]
protocols: [TCP, UDP, SCTP]
";

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("node-{i}")).collect()
    }

    fn pairs(pods: &[ModelPod]) -> (usize, usize, BTreeMap<String, (bool, bool)>) {
        let mut per_ns: BTreeMap<String, (bool, bool)> = BTreeMap::new();
        for a in pods {
            for b in pods {
                if a.namespace == b.namespace && a.name != b.name {
                    let e = per_ns.entry(a.namespace.clone()).or_default();
                    if a.node == b.node {
                        e.0 = true;
                    } else {
                        e.1 = true;
                    }
                }
            }
        }
        let count = |n: &str| pods.iter().filter(|p| p.node.as_deref() == Some(n)).count();
        (count("node-1"), count("node-2"), per_ns)
    }

    #[test]
    fn the_standard_model_on_two_nodes_has_same_and_cross_node_pairs_in_every_namespace() {
        let model = parse(STANDARD, "standard").unwrap();
        let mut pods = model.expand();
        place(&mut pods, &nodes(2), "standard").unwrap();
        let (n1, n2, per_ns) = pairs(&pods);
        assert_eq!(per_ns.len(), 3);
        assert!(per_ns.values().all(|&(same, cross)| same && cross), "{per_ns:?}");
        assert!(n1.abs_diff(n2) <= 3, "balanced: {n1} vs {n2}");
    }

    #[test]
    fn three_nodes_still_give_every_namespace_a_same_node_pair() {
        let mut pods = parse(STANDARD, "standard").unwrap().expand();
        place(&mut pods, &nodes(3), "standard").unwrap();
        let (_, _, per_ns) = pairs(&pods);
        assert!(per_ns.values().all(|&(same, cross)| same && cross), "{per_ns:?}");
        for n in nodes(3) {
            assert!(pods.iter().any(|p| p.node.as_ref() == Some(&n)), "{n} holds a pod");
        }
    }

    #[test]
    fn pinned_pods_keep_their_node() {
        let text = format!("{STANDARD}placement: {{x/a: node-2, x/b: node-2}}\n");
        let mut pods = parse(&text, "m").unwrap().expand();
        place(&mut pods, &nodes(2), "m").unwrap();
        let node_of = |k: &str| pods.iter().find(|p| format!("{}/{}", p.namespace, p.name) == k).unwrap().node.clone();
        assert_eq!(node_of("x/a").as_deref(), Some("node-2"));
        assert_eq!(node_of("x/b").as_deref(), Some("node-2"));
    }

    #[test]
    fn a_placement_on_a_missing_node_names_the_pod() {
        let text = format!("{STANDARD}placement: {{y/c: node-7}}\n");
        let mut pods = parse(&text, "m").unwrap().expand();
        let err = place(&mut pods, &nodes(2), "model m").unwrap_err().to_string();
        assert!(err.contains("placement.y/c") && err.contains("node-7"), "{err}");
    }

    #[test]
    fn a_whole_case_file_is_read_through_its_model_block() {
        let case = format!("name: t\nmodel:\n{}\nsteps: []\n", STANDARD.lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n"));
        assert_eq!(parse(&case, "case").unwrap().expand().len(), 9);
    }

    #[test]
    fn a_model_without_ports_is_refused_with_the_field() {
        let err = parse("namespaces: {x: {}}\npods: {a: {}}\nprotocols: [TCP]\n", "model m").unwrap_err().to_string();
        assert!(err.contains("model m") && err.contains("ports"), "{err}");
    }
}
