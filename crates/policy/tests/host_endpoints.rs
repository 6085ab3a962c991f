//! Host endpoints beside pods: Kubernetes Nodes selected by Antrea's `nodeSelector` (node
//! policy) and ExternalNode interfaces selected as ExternalEntities, read from manifests,
//! checked, and decided by the oracle exactly like pods.
mod common;

use common::{base_manifests, cluster, ip, verdict};
use policy::{Cluster, Endpoint, ExternalEntityKey, Protocol};

/// Nodes n1 (control-plane, 192.168.0.1) and n2 (worker, 192.168.0.2); ExternalNode vms/vm1
/// (role: db) with eth0 at 192.168.50.10.
const HOSTS: &str = "---\napiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {node-role: control-plane}}\nstatus: {addresses: [{type: InternalIP, address: 192.168.0.1}]}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: n2, labels: {node-role: worker}}\nstatus: {addresses: [{type: InternalIP, address: 192.168.0.2}]}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: vms}\n---\napiVersion: crd.antrea.io/v1alpha1\nkind: ExternalNode\nmetadata: {name: vm1, namespace: vms, labels: {role: db}}\nspec: {interfaces: [{name: eth0, ips: [192.168.50.10]}]}\n";

const N1: &str = "192.168.0.1";
const N2: &str = "192.168.0.2";
const VM1: &str = "192.168.50.10";

/// An Antrea ClusterNetworkPolicy with this `appliedTo` entry and these ingress rules.
fn acnp(name: &str, applied_to: &str, ingress: &str) -> String {
    format!(
        "---\napiVersion: crd.antrea.io/v1beta1\nkind: ClusterNetworkPolicy\nmetadata: {{name: {name}}}\nspec:\n  priority: 5\n  appliedTo: [{applied_to}]\n  ingress: {ingress}\n"
    )
}

fn hosts(extra: &str) -> Cluster {
    cluster(&format!("{HOSTS}{extra}"))
}

/// Everything (base pods, hosts, `extra`) without asserting that nothing is rejected.
fn lenient(extra: &str) -> Cluster {
    let base = base_manifests();
    Cluster::from_sources([("base.yaml", base.as_str()), ("hosts.yaml", HOSTS), ("extra.yaml", extra)])
}

fn errors(c: &Cluster) -> Vec<(String, String)> {
    c.errors.iter().map(|e| (e.object.clone(), e.field.clone())).collect()
}

#[test]
fn an_external_node_interface_is_an_entity_with_the_nodes_labels_and_address() {
    let c = hosts("");
    let key = ExternalEntityKey::new("vms", "vm1-3e616");
    let entity = &c.external_entities[&key];
    assert_eq!(entity.labels.get("role").map(String::as_str), Some("db"));
    assert_eq!(c.endpoint_at(VM1.parse().unwrap()), Some(Endpoint::ExternalEntity(key.clone())));
    assert_eq!(c.endpoint_at(N1.parse().unwrap()), Some(Endpoint::Node("n1".into())));
    assert_eq!(c.endpoint_ips(&Endpoint::Node("n2".into())), [N2.parse::<std::net::IpAddr>().unwrap()]);
    assert_eq!(c.endpoint_at(ip("x/a")), Some(Endpoint::Pod("x/a".parse().unwrap())));
    assert_eq!(c.endpoint_at("8.8.8.8".parse().unwrap()), None);
}

#[test]
fn a_node_policy_decides_the_nodes_traffic_and_explain_names_the_node() {
    let c = hosts(&acnp(
        "ssh",
        "{nodeSelector: {matchLabels: {node-role: worker}}}",
        "[{action: Allow, from: [{podSelector: {matchLabels: {pod: a}}, namespaceSelector: {matchLabels: {ns: x}}}], ports: [{protocol: TCP, port: 22}]}, {action: Drop, ports: [{protocol: TCP, port: 22}]}]",
    ));
    let rules = c.rules();
    assert!(verdict(&c, &rules, "x/a", N2, 22, Protocol::Tcp).allowed);
    let denied = verdict(&c, &rules, "x/b", N2, 22, Protocol::Tcp);
    assert!(!denied.allowed);
    assert_eq!(denied.ingress.endpoint, Some(Endpoint::Node("n2".into())));
    assert!(denied.to_string().contains("ClusterNetworkPolicy.crd.antrea.io ssh ingress[1]"), "{denied}");
    assert!(verdict(&c, &rules, "x/b", N1, 22, Protocol::Tcp).allowed, "n1 is not selected");
    assert!(verdict(&c, &rules, "x/b", N2, 80, Protocol::Tcp).allowed, "only port 22");
    let open = verdict(&c, &rules, "x/b", N1, 22, Protocol::Tcp);
    assert!(open.to_string().contains("no policy isolates node n1"), "{open}");
    let host_rules: Vec<_> = rules.host_rules(&Endpoint::Node("n2".into())).map(|r| r.origin.rule.clone()).collect();
    assert_eq!(host_rules, ["ingress[0]", "ingress[1]"]);
    assert_eq!(rules.host_rules(&Endpoint::Node("n1".into())).count(), 0);
    // What a host realization installs: addresses and port numbers, in order.
    let concrete = rules.host_concrete(&c, &Endpoint::Node("n2".into()));
    assert_eq!(concrete.iter().map(|r| r.action).collect::<Vec<_>>(), [policy::Action::Allow, policy::Action::Deny]);
    assert_eq!(concrete[0].peers, policy::PeerAddrs::Blocks(vec![policy::IpBlock::host(ip("x/a"))]));
    let ssh = policy::ConcreteServices::List(vec![policy::PortRange { protocol: Protocol::Tcp, lo: 22, hi: 22 }]);
    assert_eq!((&concrete[0].services, &concrete[1].services), (&ssh, &ssh));
    let everywhere = ["0.0.0.0/0", "::/0"].map(|c| policy::IpBlock { cidr: c.parse().unwrap(), except: Vec::new() });
    assert_eq!(concrete[1].peers, policy::PeerAddrs::Blocks(everywhere.to_vec()), "Antrea's absent `from`: every address");
}

#[test]
fn an_external_entity_selector_applies_to_the_interface_and_selects_it_as_a_peer() {
    let on_vm = acnp(
        "vm",
        "{externalEntitySelector: {matchLabels: {role: db}}, namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: vms}}}",
        "[{action: Drop, from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]",
    );
    let c = hosts(&on_vm);
    let rules = c.rules();
    let v = verdict(&c, &rules, "y/a", VM1, 22, Protocol::Tcp);
    assert!(!v.allowed);
    assert_eq!(v.ingress.endpoint, Some(Endpoint::ExternalEntity(ExternalEntityKey::new("vms", "vm1-3e616"))));
    assert!(v.to_string().contains("ClusterNetworkPolicy.crd.antrea.io vm"), "{v}");
    assert!(verdict(&c, &rules, "x/a", VM1, 22, Protocol::Tcp).allowed);
    let peer = acnp(
        "from-db",
        "{namespaceSelector: {matchLabels: {ns: x}}}",
        "[{action: Allow, from: [{externalEntitySelector: {matchLabels: {role: db}}}]}, {action: Drop}]",
    );
    let c = hosts(&peer);
    assert!(common::reach(&c, VM1, "x/a", 80, Protocol::Tcp));
    assert!(!common::reach(&c, N2, "x/a", 80, Protocol::Tcp));
    assert!(!common::reach(&c, "y/a", "x/a", 80, Protocol::Tcp));
    assert!(common::reach(&c, N1, "x/a", 80, Protocol::Tcp), "a pod's own node always reaches it");
}

#[test]
fn node_peers_are_the_nodes_addresses() {
    let c = hosts(&acnp(
        "from-cp",
        "{namespaceSelector: {matchLabels: {ns: x}}}",
        "[{action: Allow, from: [{nodeSelector: {matchLabels: {node-role: control-plane}}}]}, {action: Drop}]",
    ));
    assert!(common::reach(&c, N1, "x/a", 80, Protocol::Tcp));
    assert!(!common::reach(&c, N2, "x/a", 80, Protocol::Tcp));
}

#[test]
fn network_policy_never_isolates_a_host() {
    let np = common::np("x", "deny-all", "{podSelector: {}, policyTypes: [Ingress, Egress]}");
    let c = hosts(&np);
    let rules = c.rules();
    assert!(rules.isolated.ingress.keys().chain(rules.isolated.egress.keys()).all(|e| !e.is_host()));
    assert!(common::reach(&c, N1, VM1, 22, Protocol::Tcp));
    assert!(!common::reach(&c, N2, "x/a", 80, Protocol::Tcp));
    let own = verdict(&c, &rules, N1, "x/a", 80, Protocol::Tcp);
    assert!(own.allowed && own.ingress.outcome == policy::Outcome::FromOwnNode, "kubelet's probes: {own}");
}

#[test]
fn node_selector_may_not_share_an_applied_to_entry_and_unsupported_fields_stay_rejected() {
    let mixed = acnp("mixed", "{nodeSelector: {}, podSelector: {}}", "[{action: Drop}]");
    let c = lenient(&mixed);
    assert_eq!(errors(&c), [("ClusterNetworkPolicy.crd.antrea.io mixed".to_string(), "spec.appliedTo[0].nodeSelector".to_string())]);
    let peer = acnp("peer", "{nodeSelector: {}}", "[{action: Drop, from: [{nodeSelector: {}, ipBlock: {cidr: 10.0.0.0/8}}]}]");
    assert_eq!(errors(&lenient(&peer))[0].1, "spec.ingress[0].from[0].nodeSelector");
    let entity_with_pods = acnp("ee", "{externalEntitySelector: {}, podSelector: {}}", "[{action: Drop}]");
    assert_eq!(errors(&lenient(&entity_with_pods))[0].1, "spec.appliedTo[0].externalEntitySelector");
    let group = "---\napiVersion: crd.antrea.io/v1beta1\nkind: ClusterGroup\nmetadata: {name: g}\nspec: {externalEntitySelector: {}}\n";
    assert_eq!(errors(&lenient(group))[0].1, "spec.externalEntitySelector");
}

#[test]
fn a_rejected_node_policy_locks_no_host_out_and_leaves_the_others_enforced() {
    let bad = acnp("bad", "{nodeSelector: {}}", "[{action: Drop, from: [{fqdn: example.com}]}]");
    let good = acnp("good", "{nodeSelector: {matchLabels: {node-role: worker}}}", "[{action: Drop, ports: [{protocol: TCP, port: 22}]}]");
    let c = lenient(&format!("{bad}{good}"));
    assert_eq!(errors(&c), [("ClusterNetworkPolicy.crd.antrea.io bad".to_string(), "spec.ingress[0].from[0].fqdn".to_string())]);
    assert!(common::reach(&c, "x/a", N1, 22, Protocol::Tcp), "the bad policy meant every node: none is cut off");
    assert!(common::reach(&c, "x/a", N2, 80, Protocol::Tcp));
    assert!(!common::reach(&c, "x/a", N2, 22, Protocol::Tcp), "the good policy stays");
}

#[test]
fn a_node_policy_selecting_no_node_is_a_warning_naming_the_field_not_an_error() {
    let none = acnp("gpu", "{podSelector: {matchLabels: {pod: a}}}, {nodeSelector: {matchLabels: {node-role: gpu}}}", "[{action: Drop}]");
    let c = hosts(&none);
    let warnings: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "extra.yaml: ClusterNetworkPolicy.crd.antrea.io gpu: spec.appliedTo[1].nodeSelector: selects no Node: the policy applies to no host here"
        ]
    );
    assert!(!common::reach(&c, "y/a", "x/a", 80, Protocol::Tcp), "the policy still applies to the pods it selects");
    let entities = acnp("none", "{externalEntitySelector: {matchLabels: {role: web}}}", "[{action: Drop}]");
    assert_eq!(hosts(&entities).warnings[0].field, "spec.appliedTo[0].externalEntitySelector");
}

#[test]
fn an_external_node_without_an_address_or_on_another_ones_host_is_rejected_by_field() {
    let no_ip = "---\napiVersion: weir.io/v1alpha1\nkind: ExternalNode\nmetadata: {name: vm2, namespace: vms}\nspec: {interfaces: [{name: eth0, ips: []}]}\n";
    let c = lenient(no_ip);
    assert_eq!(errors(&c), [("ExternalNode vms/vm2".to_string(), "spec.interfaces[0].ips".to_string())]);
    let same_ip = "---\napiVersion: crd.antrea.io/v1alpha1\nkind: ExternalNode\nmetadata: {name: vm3, namespace: vms}\nspec: {interfaces: [{name: ens3, ips: [10.9.9.9, 192.168.50.10]}]}\n";
    let c = lenient(same_ip);
    assert_eq!(errors(&c), [("ExternalNode vms/vm3".to_string(), "spec.interfaces[0].ips[1]".to_string())]);
    assert!(c.errors[0].message.contains("already belongs to ExternalNode vms/vm1"), "{}", c.errors[0]);
    assert_eq!(c.external_nodes.len(), 1, "the first one stays");
    let same_name = "---\napiVersion: crd.antrea.io/v1alpha1\nkind: ExternalNode\nmetadata: {name: vm1, namespace: other}\nspec: {interfaces: [{name: eth0, ips: [10.9.9.8]}]}\n";
    assert_eq!(errors(&lenient(same_name)), [("ExternalNode other/vm1".to_string(), "metadata.name".to_string())]);
    let twice = "---\napiVersion: crd.antrea.io/v1alpha1\nkind: ExternalNode\nmetadata: {name: vm4, namespace: vms}\nspec: {interfaces: [{name: eth0, ips: [10.9.9.7]}, {name: eth0, ips: [10.9.9.6]}]}\n";
    assert_eq!(errors(&lenient(twice))[0].1, "spec.interfaces[1].name");
    let none =
        "---\napiVersion: crd.antrea.io/v1alpha1\nkind: ExternalNode\nmetadata: {name: vm5, namespace: vms}\nspec: {interfaces: []}\n";
    assert_eq!(errors(&lenient(none))[0].1, "spec.interfaces");
    let version =
        "---\napiVersion: crd.antrea.io/v1beta1\nkind: ExternalNode\nmetadata: {name: vm6, namespace: vms}\nspec: {interfaces: []}\n";
    assert_eq!(errors(&lenient(version))[0].1, "apiVersion");
}

#[test]
fn an_external_entity_written_directly_is_an_endpoint_unless_it_clashes() {
    let direct = "---\napiVersion: crd.antrea.io/v1alpha2\nkind: ExternalEntity\nmetadata: {name: db-a, namespace: vms, labels: {role: db}}\nspec: {endpoints: [{ip: 192.168.60.1, name: eth1}], externalNode: vm9}\n";
    let c = hosts(direct);
    assert_eq!(c.endpoint_at("192.168.60.1".parse().unwrap()), Some(Endpoint::ExternalEntity(ExternalEntityKey::new("vms", "db-a"))));
    let claims_vm1 = direct.replace("192.168.60.1", VM1);
    assert_eq!(errors(&lenient(&claims_vm1)), [("ExternalEntity vms/db-a".to_string(), "spec.endpoints[0].ip".to_string())]);
    let derived_name = direct.replace("db-a", "vm1-3e616");
    assert_eq!(errors(&lenient(&derived_name)), [("ExternalEntity vms/vm1-3e616".to_string(), "metadata.name".to_string())]);
    let no_endpoints = "---\napiVersion: crd.antrea.io/v1alpha2\nkind: ExternalEntity\nmetadata: {name: e, namespace: vms}\nspec: {}\n";
    assert_eq!(errors(&lenient(no_endpoints))[0].1, "spec.endpoints");
    let ports = direct.replace("externalNode: vm9", "ports: [{name: http, port: 80}]");
    assert_eq!(errors(&lenient(&ports))[0].1, "spec.ports");
}

#[test]
fn the_copy_antreas_controller_writes_of_a_derived_entity_is_no_error_and_the_derived_one_holds() {
    let copy = "---\napiVersion: crd.antrea.io/v1alpha2\nkind: ExternalEntity\nmetadata: {name: vm1-3e616, namespace: vms, labels: {role: db}}\nspec: {endpoints: [{ip: 192.168.50.99, name: eth0}], externalNode: vm1}\n";
    let c = lenient(copy);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert!(c.notes.iter().any(|n| n.contains("ExternalEntity vms/vm1-3e616 is derived from ExternalNode vms/vm1")), "{:?}", c.notes);
    let key = ExternalEntityKey::new("vms", "vm1-3e616");
    assert_eq!(c.endpoint_at(VM1.parse().unwrap()), Some(Endpoint::ExternalEntity(key)), "the ExternalNode's address");
    assert_eq!(c.endpoint_at("192.168.50.99".parse().unwrap()), None, "not the copy's");
}

#[test]
fn a_stored_view_keeps_host_endpoints_and_warnings() {
    let c = hosts(&format!(
        "{}---\napiVersion: crd.antrea.io/v1alpha2\nkind: ExternalEntity\nmetadata: {{name: db-a, namespace: vms}}\nspec: {{endpoints: [{{ip: 192.168.60.1}}]}}\n",
        acnp("gpu", "{nodeSelector: {matchLabels: {node-role: gpu}}}", "[{action: Drop}]")
    ));
    let back = Cluster::from_stored(&c.to_stored().unwrap()).unwrap();
    assert_eq!(back, c);
    assert_eq!(back.endpoint_at(VM1.parse().unwrap()), c.endpoint_at(VM1.parse().unwrap()));
    assert_eq!(back.warnings.len(), 1);
}

#[test]
fn endpoints_serialize_with_their_kind_named() {
    let json = |e: &Endpoint| serde_json::to_string(e).unwrap();
    assert_eq!(json(&Endpoint::Pod("x/a".parse().unwrap())), r#"{"Pod":"x/a"}"#);
    assert_eq!(json(&Endpoint::Node("n1".into())), r#"{"Node":"n1"}"#);
    let ee = Endpoint::ExternalEntity(ExternalEntityKey::new("vms", "vm1-3e616"));
    assert_eq!(json(&ee), r#"{"ExternalEntity":"vms/vm1-3e616"}"#);
    assert_eq!(serde_json::from_str::<Endpoint>(&json(&ee)).unwrap(), ee);
    assert_eq!(ee.to_string(), "externalentity vms/vm1-3e616");
    assert_eq!(Endpoint::Node("n1".into()).to_string(), "node n1");
}

#[test]
fn host_rules_come_in_evaluation_order_not_by_policy_name() {
    let on_n2 = |name: &str, priority: u32, action: &str| {
        format!(
            "---\napiVersion: crd.antrea.io/v1beta1\nkind: ClusterNetworkPolicy\nmetadata: {{name: {name}}}\nspec:\n  priority: {priority}\n  appliedTo: [{{nodeSelector: {{matchLabels: {{node-role: worker}}}}}}]\n  ingress: [{{action: {action}}}]\n"
        )
    };
    let c = hosts(&[on_n2("a-drop", 20, "Drop"), on_n2("z-allow", 10, "Allow")].concat());
    let names: Vec<String> = c.host_rule_set().rules.iter().map(|r| r.origin.policy.name.clone()).collect();
    assert_eq!(names, ["z-allow", "a-drop"], "priority 10 before 20, whatever the names");
    assert_eq!(c.host_rule_set().rules, c.rules().rules.into_iter().filter(|r| r.tier != policy::Tier::NETWORK_POLICY).collect::<Vec<_>>());
}
