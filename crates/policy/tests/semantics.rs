//! NetworkPolicy semantics, one behaviour per test, checked through the oracle.
mod common;
use common::{cluster, np, reach, verdict};
use policy::{Outcome, Protocol::*};

#[test]
fn pod_without_policy_reaches_and_is_reached_by_everyone() {
    let c = cluster("");
    assert!(reach(&c, "x/a", "y/b", 80, Tcp));
    assert!(reach(&c, "10.9.9.9", "x/a", 12345, Udp));
}

#[test]
fn isolated_pod_denies_unlisted_peer() {
    let c = cluster(&np("x", "p", "{podSelector: {matchLabels: {pod: a}}, ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]}"));
    assert!(reach(&c, "x/b", "x/a", 80, Tcp));
    assert!(!reach(&c, "x/c", "x/a", 80, Tcp));
    assert!(reach(&c, "x/c", "x/b", 80, Tcp), "x/b is not selected, so not isolated");
}

#[test]
fn pod_selector_peer_without_namespace_selector_means_the_policy_namespace() {
    let c = cluster(&np("x", "p", "{podSelector: {}, ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]}"));
    assert!(reach(&c, "x/b", "x/a", 80, Tcp));
    assert!(!reach(&c, "y/b", "x/a", 80, Tcp));
}

#[test]
fn namespace_selector_alone_admits_every_pod_of_matching_namespaces() {
    let c = cluster(&np("x", "p", "{podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]}"));
    assert!(reach(&c, "y/a", "x/a", 80, Tcp));
    assert!(reach(&c, "y/c", "x/b", 80, Tcp));
    assert!(!reach(&c, "z/a", "x/a", 80, Tcp));
    assert!(!reach(&c, "x/b", "x/a", 80, Tcp));
}

#[test]
fn pod_and_namespace_selector_in_one_peer_must_both_match() {
    let c = cluster(&np("x", "p", "{podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {pod: b}}}]}]}"));
    assert!(reach(&c, "y/b", "x/a", 80, Tcp));
    assert!(!reach(&c, "y/a", "x/a", 80, Tcp));
    assert!(!reach(&c, "x/b", "x/a", 80, Tcp));
}

#[test]
fn separate_peers_of_one_rule_are_a_union() {
    let c = cluster(&np("x", "p", "{podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}, {podSelector: {matchLabels: {pod: b}}}]}]}"));
    assert!(reach(&c, "y/a", "x/a", 80, Tcp));
    assert!(reach(&c, "x/b", "x/a", 80, Tcp));
    assert!(!reach(&c, "z/b", "x/a", 80, Tcp));
}

#[test]
fn empty_namespace_selector_admits_all_namespaces() {
    let c = cluster(&np("x", "p", "{podSelector: {}, ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {pod: c}}}]}]}"));
    assert!(reach(&c, "z/c", "x/a", 80, Tcp));
    assert!(!reach(&c, "z/b", "x/a", 80, Tcp));
}

#[test]
fn match_expressions_not_in_and_does_not_exist_select_by_absence() {
    let c = cluster(&np(
        "x",
        "p",
        "{podSelector: {}, ingress: [{from: [{namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: [y]}, {key: team, operator: DoesNotExist}]}}]}]}",
    ));
    assert!(reach(&c, "z/a", "x/a", 80, Tcp));
    assert!(reach(&c, "x/b", "x/a", 80, Tcp));
    assert!(!reach(&c, "y/a", "x/a", 80, Tcp));
}

#[test]
fn namespace_name_label_is_always_present() {
    let c = cluster(&np("x", "p", "{podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}}]}]}"));
    assert!(reach(&c, "z/a", "x/a", 80, Tcp));
    assert!(!reach(&c, "y/a", "x/a", 80, Tcp));
}

#[test]
fn empty_ingress_list_denies_everything_and_one_empty_rule_allows_everything() {
    let c = cluster(&np("x", "deny", "{podSelector: {}, policyTypes: [Ingress]}"));
    assert!(!reach(&c, "y/a", "x/a", 80, Tcp));
    assert!(!reach(&c, "x/a", "x/a", 80, Tcp), "a pod to itself is policed like any other peer");
    let c = cluster(&np("x", "allow", "{podSelector: {}, ingress: [{}]}"));
    assert!(reach(&c, "y/a", "x/a", 80, Tcp));
    assert!(reach(&c, "10.9.9.9", "x/a", 9999, Sctp));
}

#[test]
fn empty_from_list_means_every_peer() {
    let c = cluster(&np("x", "p", "{podSelector: {}, ingress: [{from: [], ports: [{port: 81}]}]}"));
    assert!(reach(&c, "10.9.9.9", "x/a", 81, Tcp));
    assert!(!reach(&c, "y/a", "x/a", 80, Tcp));
}

#[test]
fn policy_types_egress_only_leaves_ingress_open() {
    let c = cluster(&np("x", "p", "{podSelector: {}, policyTypes: [Egress], ingress: [{from: [{podSelector: {matchLabels: {pod: z}}}]}]}"));
    assert!(reach(&c, "y/a", "x/a", 80, Tcp), "ingress rules without Ingress in policyTypes do nothing");
    assert!(!reach(&c, "x/a", "y/a", 80, Tcp), "egress is isolated with no rules");
}

#[test]
fn egress_rules_without_policy_types_isolate_both_directions() {
    let c = cluster(&np("x", "p", "{podSelector: {matchLabels: {pod: a}}, egress: [{to: [{namespaceSelector: {matchLabels: {ns: y}}}]}]}"));
    assert!(reach(&c, "x/a", "y/b", 80, Tcp));
    assert!(!reach(&c, "x/a", "z/b", 80, Tcp));
    assert!(!reach(&c, "z/b", "x/a", 80, Tcp), "ingress defaults to isolated too");
}

#[test]
fn empty_egress_list_without_policy_types_does_not_isolate_egress() {
    let c = cluster(&np("x", "p", "{podSelector: {}, egress: []}"));
    assert!(reach(&c, "x/a", "z/b", 80, Tcp));
    assert!(!reach(&c, "z/b", "x/a", 80, Tcp));
}

#[test]
fn a_connection_needs_client_egress_and_server_ingress() {
    let extra = np("x", "server-allows", "{podSelector: {}, ingress: [{}]}")
        + &np("y", "client-denies", "{podSelector: {}, policyTypes: [Egress]}");
    let c = cluster(&extra);
    let v = verdict(&c, &c.rules(), "y/a", "x/a", 80, Tcp);
    assert!(!v.allowed);
    assert_eq!(v.egress.outcome, Outcome::Denied);
    assert_eq!(v.ingress.outcome, Outcome::Allowed);
}

#[test]
fn policies_are_a_union() {
    let extra = np("x", "from-y", "{podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]}")
        + &np("x", "from-z-on-81", "{podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {ns: z}}}], ports: [{port: 81}]}]}");
    let c = cluster(&extra);
    assert!(reach(&c, "y/a", "x/a", 80, Tcp));
    assert!(reach(&c, "z/a", "x/a", 81, Tcp));
    assert!(!reach(&c, "z/a", "x/a", 80, Tcp));
}

#[test]
fn port_without_protocol_means_tcp() {
    let c = cluster(&np("x", "p", "{podSelector: {}, ingress: [{ports: [{port: 80}]}]}"));
    assert!(reach(&c, "y/a", "x/a", 80, Tcp));
    assert!(!reach(&c, "y/a", "x/a", 80, Udp));
    assert!(!reach(&c, "y/a", "x/a", 81, Tcp));
}

#[test]
fn protocol_without_port_opens_every_port_of_that_protocol_only() {
    let c = cluster(&np("x", "p", "{podSelector: {}, ingress: [{ports: [{protocol: UDP}]}]}"));
    assert!(reach(&c, "y/a", "x/a", 80, Udp));
    assert!(reach(&c, "y/a", "x/a", 65535, Udp));
    assert!(!reach(&c, "y/a", "x/a", 80, Tcp));
}

#[test]
fn sctp_only_rule_isolates_and_does_not_open_tcp() {
    let c = cluster(&np("x", "p", "{podSelector: {}, ingress: [{ports: [{protocol: SCTP, port: 80}]}]}"));
    assert!(reach(&c, "y/a", "x/a", 80, Sctp));
    assert!(!reach(&c, "y/a", "x/a", 80, Tcp));
}

#[test]
fn end_port_admits_the_inclusive_range() {
    let c = cluster(&np("x", "p", "{podSelector: {}, ingress: [{ports: [{port: 1000, endPort: 2000}]}]}"));
    for (port, ok) in [(999, false), (1000, true), (1500, true), (2000, true), (2001, false)] {
        assert_eq!(reach(&c, "y/a", "x/a", port, Tcp), ok, "port {port}");
    }
}

#[test]
fn ingress_named_port_resolves_on_each_selected_pod() {
    let c = cluster(&np("x", "p", "{podSelector: {}, ingress: [{ports: [{port: web}]}]}"));
    assert!(reach(&c, "y/a", "x/b", 8080, Tcp));
    assert!(!reach(&c, "y/a", "x/b", 9090, Tcp));
    assert!(reach(&c, "y/a", "x/c", 9090, Tcp));
    assert!(!reach(&c, "y/a", "x/c", 8080, Tcp));
    assert!(!reach(&c, "y/a", "x/a", 8080, Tcp), "x/a has no port named web");
}

#[test]
fn named_port_matches_only_its_protocol() {
    let c = cluster(&np("x", "p", "{podSelector: {}, ingress: [{ports: [{port: serve-80-udp, protocol: UDP}]}]}"));
    assert!(reach(&c, "y/a", "x/a", 80, Udp));
    assert!(!reach(&c, "y/a", "x/a", 80, Tcp));
    let c = cluster(&np("x", "p", "{podSelector: {}, ingress: [{ports: [{port: serve-80-udp}]}]}"));
    assert!(!reach(&c, "y/a", "x/a", 80, Udp), "no protocol means TCP, and no TCP port has that name");
}

#[test]
fn egress_named_port_resolves_on_the_destination_pod() {
    let c = cluster(&np("x", "p", "{podSelector: {matchLabels: {pod: a}}, policyTypes: [Egress], egress: [{ports: [{port: web}]}]}"));
    assert!(reach(&c, "x/a", "y/b", 8080, Tcp));
    assert!(reach(&c, "x/a", "z/c", 9090, Tcp));
    assert!(!reach(&c, "x/a", "y/b", 9090, Tcp));
    assert!(!reach(&c, "x/a", "10.9.9.9", 8080, Tcp), "an address that is no pod has no named ports");
}

#[test]
fn ip_block_admits_the_block_minus_its_exceptions() {
    let c = cluster(&np("x", "p", "{podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.0.1.0/24]}}]}]}"));
    assert!(reach(&c, "x/b", "x/a", 80, Tcp));
    assert!(!reach(&c, "y/b", "x/a", 80, Tcp));
    assert!(reach(&c, "z/b", "x/a", 80, Tcp));
    assert!(!reach(&c, "10.1.0.1", "x/a", 80, Tcp));
}

#[test]
fn ip_block_with_host_bits_set_is_its_network() {
    let c = cluster(&np("x", "p", "{podSelector: {}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 10.0.1.77/24}}]}]}"));
    assert!(reach(&c, "x/a", "y/c", 80, Tcp));
    assert!(!reach(&c, "x/a", "z/c", 80, Tcp));
}

#[test]
fn host_network_pods_are_never_selected_nor_matched_by_selectors() {
    // On n2: the base pods run on n1, and a pod's own node reaches it whatever the policy.
    let host = "---\napiVersion: v1\nkind: Node\nmetadata: {name: n2}\nstatus: {addresses: [{type: InternalIP, address: 192.168.1.1}]}\n\
                ---\napiVersion: v1\nkind: Pod\nmetadata: {name: h, namespace: x, labels: {pod: a}}\nspec: {nodeName: n2, hostNetwork: true}\n";
    let deny_all = np("x", "deny", "{podSelector: {}, policyTypes: [Ingress, Egress]}");
    let c = cluster(&(host.to_string() + &deny_all));
    assert_eq!(c.pod(&"x/h".parse().unwrap()).unwrap().ips, vec!["192.168.1.1".parse::<std::net::IpAddr>().unwrap()]);
    assert!(reach(&c, "192.168.1.1", "y/a", 80, Tcp), "the hostNetwork pod's egress is not policed");
    assert!(reach(&c, "y/a", "192.168.1.1", 80, Tcp), "nor its ingress");
    let allow_pod_a = np("y", "from-a", "{podSelector: {}, ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {pod: a}}}]}]}");
    let c = cluster(&(host.to_string() + &allow_pod_a));
    assert!(!reach(&c, "192.168.1.1", "y/b", 80, Tcp), "a label selector never matches a hostNetwork pod");
    assert!(reach(&c, "x/a", "y/b", 80, Tcp));
    let allow_node = np("y", "from-node", "{podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 192.168.1.0/24}}]}]}");
    let c = cluster(&(host.to_string() + &allow_node));
    assert!(reach(&c, "192.168.1.1", "y/b", 80, Tcp), "an ipBlock does match a hostNetwork pod's address");
}

#[test]
fn explanation_names_the_rule_that_allowed() {
    let c = cluster(&np("x", "web", "{podSelector: {}, ingress: [{ports: [{port: 81}]}, {from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]}"));
    let v = verdict(&c, &c.rules(), "y/a", "x/a", 80, Tcp);
    let rule = v.ingress.rule.as_ref().unwrap();
    assert_eq!(rule.id.0, "NetworkPolicy/x/web/ingress/1");
    assert_eq!(rule.origin.to_string(), "NetworkPolicy x/web ingress[1]");
    assert_eq!(v.egress.outcome, Outcome::NotIsolated);
}

#[test]
fn explanation_of_a_default_deny_names_every_isolating_policy() {
    let extra = np("x", "one", "{podSelector: {}, policyTypes: [Ingress]}") + &np("x", "two", "{podSelector: {matchLabels: {pod: a}}, ingress: [{ports: [{port: 81}]}]}");
    let c = cluster(&extra);
    let v = verdict(&c, &c.rules(), "y/a", "x/a", 80, Tcp);
    assert_eq!(v.ingress.outcome, Outcome::Denied);
    let names: Vec<String> = v.ingress.isolated_by.iter().map(ToString::to_string).collect();
    assert_eq!(names, ["NetworkPolicy x/one", "NetworkPolicy x/two"]);
    assert!(v.ingress.to_string().contains("isolated by NetworkPolicy x/one, NetworkPolicy x/two"));
}

#[test]
fn rejected_policy_fails_closed_for_the_pods_it_selects() {
    let bad = np("x", "broken", "{podSelector: {matchLabels: {pod: a}}, ingress: [{ports: [{port: 0}]}]}");
    let base = common::base_manifests();
    let c = policy::Cluster::from_sources([("base.yaml", base.as_str()), ("bad.yaml", bad.as_str())]);
    assert_eq!(c.errors.len(), 1);
    assert!(!reach(&c, "y/a", "x/a", 80, Tcp), "x/a is isolated by the broken policy");
    assert!(reach(&c, "y/a", "x/b", 80, Tcp), "x/b is not selected by it");
    let v = verdict(&c, &c.rules(), "y/a", "x/a", 80, Tcp);
    assert_eq!(v.ingress.isolated_by[0].name, "broken");
}

#[test]
fn rule_ids_are_stable_and_rules_sorted() {
    let extra = np("x", "b", "{podSelector: {}, ingress: [{}, {}]}") + &np("x", "a", "{podSelector: {}, egress: [{}]}");
    let c = cluster(&extra);
    let ids: Vec<String> = c.rules().rules.iter().map(|r| r.id.0.clone()).collect();
    assert_eq!(ids, ["NetworkPolicy/x/a/egress/0", "NetworkPolicy/x/b/ingress/0", "NetworkPolicy/x/b/ingress/1"]);
    assert_eq!(c.rules(), cluster(&extra).rules());
}
