//! The bad-input corpus: each invalid or hostile manifest is rejected with an error naming the
//! object and the field, and every other object of the same input stays.
use policy::{Cluster, PodKey};

const GOOD: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {team: blue}}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {pod: a}}
spec: {containers: [{name: c, ports: [{name: serve-80-tcp, containerPort: 80}]}]}
status: {podIP: 10.0.0.1}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: good, namespace: x}
spec:
  podSelector: {}
  ingress: [{from: [{podSelector: {}}]}]
"#;

/// A NetworkPolicy `bad` in namespace x whose ingress rule is `rule` (YAML flow syntax).
fn np_rule(rule: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: bad, namespace: x}}\nspec:\n  podSelector: {{}}\n  ingress: [{rule}]\n"
    )
}

fn np_spec(spec: &str) -> String {
    format!("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: bad, namespace: x}}\nspec: {spec}\n")
}

fn pod(meta_extra: &str, spec: &str, status: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: bad, namespace: x{meta_extra}}}\nspec: {spec}\nstatus: {status}\n")
}

fn labels(n: usize) -> String {
    (0..n).map(|i| format!("k{i}: v")).collect::<Vec<_>>().join(", ")
}

struct BadCase {
    what: &'static str,
    manifest: String,
    object: &'static str,
    field: &'static str,
}

fn case(what: &'static str, manifest: impl Into<String>, object: &'static str, field: &'static str) -> BadCase {
    BadCase { what, manifest: manifest.into(), object, field }
}

const NP: &str = "NetworkPolicy x/bad";
const POD: &str = "Pod x/bad";

fn corpus() -> Vec<BadCase> {
    vec![
        case("prefix too long", np_rule("{from: [{ipBlock: {cidr: 10.0.0.0/33}}]}"), NP, "spec.ingress[0].from[0].ipBlock.cidr"),
        case("cidr not an address", np_rule("{from: [{ipBlock: {cidr: not-a-cidr/8}}]}"), NP, "spec.ingress[0].from[0].ipBlock.cidr"),
        case("cidr without prefix", np_rule("{from: [{ipBlock: {cidr: 10.0.0.1}}]}"), NP, "spec.ingress[0].from[0].ipBlock.cidr"),
        case("empty cidr", np_rule("{from: [{ipBlock: {cidr: ''}}]}"), NP, "spec.ingress[0].from[0].ipBlock.cidr"),
        case("except outside cidr", np_rule("{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}}]}"), NP, "spec.ingress[0].from[0].ipBlock.except[0]"),
        case("except equal to cidr", np_rule("{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16, 10.0.0.0/8]}}]}"), NP, "spec.ingress[0].from[0].ipBlock.except[1]"),
        case("except of the other family", np_rule("{from: [{ipBlock: {cidr: 10.0.0.0/8, except: ['fd00::/64']}}]}"), NP, "spec.ingress[0].from[0].ipBlock.except[0]"),
        case("except malformed", np_rule("{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.300.0.0/16]}}]}"), NP, "spec.ingress[0].from[0].ipBlock.except[0]"),
        case("ipBlock with podSelector", np_rule("{from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}"), NP, "spec.ingress[0].from[0]"),
        case("empty peer", np_rule("{from: [{}]}"), NP, "spec.ingress[0].from[0]"),
        case("unknown protocol", np_rule("{ports: [{protocol: ICMP, port: 80}]}"), NP, "spec.ingress[0].ports[0].protocol"),
        case("lower-case protocol", np_rule("{ports: [{protocol: tcp, port: 80}]}"), NP, "spec.ingress[0].ports[0].protocol"),
        case("port 0", np_rule("{ports: [{port: 0}]}"), NP, "spec.ingress[0].ports[0].port"),
        case("port above 65535", np_rule("{ports: [{port: 80}, {port: 65536}]}"), NP, "spec.ingress[0].ports[1].port"),
        case("negative port", np_rule("{ports: [{port: -1}]}"), NP, "spec.ingress[0].ports[0].port"),
        case("port of the wrong type", np_rule("{ports: [{port: true}]}"), NP, "spec.ingress[0].ports[0].port"),
        case("endPort below port", np_rule("{ports: [{port: 80}, {port: 90, endPort: 85}]}"), NP, "spec.ingress[0].ports[1].endPort"),
        case("endPort with named port", np_rule("{ports: [{port: serve-80-tcp, endPort: 90}]}"), NP, "spec.ingress[0].ports[0].endPort"),
        case("endPort without port", np_rule("{ports: [{endPort: 90}]}"), NP, "spec.ingress[0].ports[0].endPort"),
        case("endPort above 65535", np_rule("{ports: [{port: 80, endPort: 70000}]}"), NP, "spec.ingress[0].ports[0].endPort"),
        case("endPort not a number", np_rule("{ports: [{port: 80, endPort: ninety}]}"), NP, "spec.ingress[0].ports[0].endPort"),
        case("named port upper case", np_rule("{ports: [{port: HTTP}]}"), NP, "spec.ingress[0].ports[0].port"),
        case("named port too long", np_rule("{ports: [{port: serve-80-tcp-and-more}]}"), NP, "spec.ingress[0].ports[0].port"),
        case("unknown selector operator", np_spec("{podSelector: {matchExpressions: [{key: pod, operator: Equals, values: [a]}]}}"), NP, "spec.podSelector.matchExpressions[0].operator"),
        case("In without values", np_rule("{from: [{podSelector: {matchExpressions: [{key: pod, operator: In}]}}]}"), NP, "spec.ingress[0].from[0].podSelector.matchExpressions[0].values"),
        case("Exists with values", np_rule("{from: [{namespaceSelector: {matchExpressions: [{key: ns, operator: Exists, values: [x]}]}}]}"), NP, "spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].values"),
        case("bad label key in matchLabels", np_spec("{podSelector: {matchLabels: {'bad key': a}}}"), NP, "spec.podSelector.matchLabels.bad key"),
        case("bad label value in a selector", np_rule("{from: [{namespaceSelector: {matchLabels: {ns: 'not valid!'}}}]}"), NP, "spec.ingress[0].from[0].namespaceSelector.matchLabels.ns"),
        case("bad expression key", np_spec("{podSelector: {matchExpressions: [{key: '/pod', operator: Exists}]}}"), NP, "spec.podSelector.matchExpressions[0].key"),
        case("huge selector", np_spec(&format!("{{podSelector: {{matchLabels: {{{}}}}}}}", labels(300))), NP, "spec.podSelector"),
        case("huge label set on a policy", format!("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: bad, namespace: x, labels: {{{}}}}}\nspec: {{podSelector: {{}}}}\n", labels(300)), NP, "metadata.labels"),
        case("huge label set on a pod", pod(&format!(", labels: {{{}}}", labels(5000)), "{}", "{}"), POD, "metadata.labels"),
        case("unknown policy type", np_spec("{podSelector: {}, policyTypes: [Ingres]}"), NP, "spec.policyTypes[0]"),
        case("three policy types", np_spec("{podSelector: {}, policyTypes: [Ingress, Egress, Ingress]}"), NP, "spec.policyTypes"),
        case("duplicate policy type", np_spec("{podSelector: {}, policyTypes: [Egress, Egress]}"), NP, "spec.policyTypes[1]"),
        case("misspelt spec field", np_spec("{podSelector: {}, ingres: []}"), NP, "spec.ingres"),
        // A missing or null podSelector is the empty selector, as the API server decodes it.
        case("cluster policy priority out of range", "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: guard}\nspec: {tier: Admin, priority: 5000, subject: {namespaces: {}}}\n", "ClusterNetworkPolicy guard", "spec.priority"),
        case("cluster policy with Reject in v1alpha2", "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: guard}\nspec: {tier: Baseline, priority: 1, subject: {namespaces: {}}, ingress: [{action: Reject, from: [{namespaces: {}}]}]}\n", "ClusterNetworkPolicy guard", "spec.ingress[0].action"),
        case("admin policy with an empty peer", "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: guard}\nspec: {priority: 1, subject: {namespaces: {}}, egress: [{action: Deny, to: [{}]}]}\n", "AdminNetworkPolicy guard", "spec.egress[0].to[0]"),
        case("peers not a list", np_rule("{from: {podSelector: {}}}"), NP, "spec.ingress[0].from"),
        case("policy name with capitals", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: Bad_Name, namespace: x}\nspec: {podSelector: {}}\n", "NetworkPolicy x/Bad_Name", "metadata.name"),
        case("policy without name", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {namespace: x}\nspec: {podSelector: {}}\n", "NetworkPolicy x/<unnamed>", "metadata.name"),
        case("unsupported apiVersion", "apiVersion: networking.k8s.io/v1beta1\nkind: NetworkPolicy\nmetadata: {name: bad, namespace: x}\nspec: {podSelector: {}}\n", NP, "apiVersion"),
        case("namespace name too long", format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {}}}\n", "n".repeat(64)), "Namespace nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn", "metadata.name"),
        case("pod address malformed", pod("", "{}", "{podIP: 10.0.0.999}"), POD, "status.podIP"),
        case("pod second address malformed", pod("", "{}", "{podIP: 10.0.0.9, podIPs: [{ip: 10.0.0.9}, {ip: 'fd00::g'}]}"), POD, "status.podIPs[1].ip"),
        case("pod address taken", pod("", "{}", "{podIP: 10.0.0.1}"), POD, "status.podIP"),
        case("container port 0", pod("", "{containers: [{name: c, ports: [{containerPort: 0}]}]}", "{}"), POD, "spec.containers[0].ports[0].containerPort"),
        case("container port protocol unknown", pod("", "{containers: [{name: c, ports: [{containerPort: 80, protocol: ICMP}]}]}", "{}"), POD, "spec.containers[0].ports[0].protocol"),
        case("container port name invalid", pod("", "{containers: [{name: c, ports: [{containerPort: 80, name: '80'}]}]}", "{}"), POD, "spec.containers[0].ports[0].name"),
        case("container port names repeated", pod("", "{containers: [{name: c, ports: [{containerPort: 80, name: web}]}, {name: d, ports: [{containerPort: 81, name: web}]}]}", "{}"), POD, "spec.containers[1].ports[0].name"),
        case("pod label value a number", pod(", labels: {tier: 1}", "{}", "{}"), POD, "metadata.labels.tier"),
        case("pod label value too long", pod(&format!(", labels: {{tier: {}}}", "v".repeat(64)), "{}", "{}"), POD, "metadata.labels"),
        case("node pod CIDR malformed", "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nspec: {podCIDR: 10.1.0.0/40}\n", "Node n1", "spec.podCIDR"),
        case("node address malformed", "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nstatus: {addresses: [{type: Hostname, address: n1}, {type: InternalIP, address: 'ten'}]}\n", "Node n1", "status.addresses[1].address"),
        case("document without kind", "apiVersion: v1\nmetadata: {name: q}\n", "document 1 (line 1)", "kind"),
        case("document that is a list", "- a\n- b\n", "document 1 (line 1) (a list)", "apiVersion"),
        case("YAML syntax error", "apiVersion: v1\nkind: Pod\nmetadata: {name: [unclosed\n", "document 1 (line 3)", "-"),
        case("duplicate key", "apiVersion: v1\nkind: Pod\nmetadata: {name: bad, name: other}\n", "document 1 (line 3)", "-"),
        case("alias bomb", format!("a: &a [x, x, x, x, x, x, x, x, x]\n{}", (b'b'..=b'z').scan("a".to_string(), |prev, c| { let c = c as char; let line = format!("{c}: &{c} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"); *prev = c.to_string(); Some(line) }).collect::<String>()), "document 1 (line 6)", "-"),
        case("duplicate policy", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: good, namespace: x}\nspec: {podSelector: {}, policyTypes: [Egress]}\n", "NetworkPolicy x/good", "metadata.name"),
        case("duplicate pod", pod("", "{}", "{}").replace("name: bad", "name: a"), "Pod x/a", "metadata.name"),
    ]
}

#[test]
fn every_bad_manifest_is_rejected_naming_object_and_field_and_the_rest_stays() {
    let corpus = corpus();
    assert!(corpus.len() >= 30, "the corpus must hold at least 30 cases, has {}", corpus.len());
    let mut failures = Vec::new();
    for c in &corpus {
        let cluster = Cluster::from_sources([("good.yaml", GOOD), ("bad.yaml", c.manifest.as_str())]);
        let found: Vec<(String, String, String)> =
            cluster.errors.iter().map(|e| (e.object.clone(), e.field.clone(), e.source.clone())).collect();
        let wanted = (c.object.to_string(), c.field.to_string(), "bad.yaml".to_string());
        if found != vec![wanted.clone()] {
            failures.push(format!("{}: wanted {wanted:?}, got {:?}", c.what, cluster.errors));
            continue;
        }
        if cluster.errors[0].message.is_empty() {
            failures.push(format!("{}: empty message", c.what));
        }
        let rest_stays = cluster.namespaces.contains_key("x")
            && cluster.pods.contains_key(&PodKey::new("x", "a"))
            && cluster.policies.get(&("x".to_string(), "good".to_string())).is_some_and(|p| p.egress.is_empty() && p.ingress.len() == 1);
        if !rest_stays {
            failures.push(format!("{}: the good objects did not all stay", c.what));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), corpus.len(), failures.join("\n"));
}

#[test]
fn a_document_that_is_not_yaml_makes_its_whole_file_unusable_and_its_policies_fail_closed() {
    // A broken document may be a cut-off copy of what the file defined: using the rest of the
    // file could drop objects and open what they protected.
    let broken = "apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: x, labels: {pod: b}}\nstatus: {podIP: 10.0.0.2}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-b, namespace: x}\nspec: {podSelector: {matchLabels: {pod: b}}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: [broken\n";
    let cluster = Cluster::from_sources([("good.yaml", GOOD), ("broken.yaml", broken)]);
    assert_eq!(cluster.errors.len(), 1, "{:?}", cluster.errors);
    assert_eq!(cluster.errors[0].to_string().split(": not valid YAML").next(), Some("broken.yaml: document 3 (line 13)"));
    assert!(!cluster.pods.contains_key(&PodKey::new("x", "b")), "nothing of the broken file is used");
    assert_eq!(cluster.policies.len(), 1, "only good.yaml's policy");
    assert_eq!(cluster.rejected_policies.len(), 1, "the policy the broken file names fails closed");
    assert_eq!(cluster.rejected_policies[0].object, "NetworkPolicy x/deny-b");
}

#[test]
fn ignored_kinds_are_skipped_with_a_note_and_unknown_kinds_are_errors_naming_file_and_object() {
    let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n";
    let cluster = Cluster::from_sources([("good.yaml", GOOD), ("d.yaml", text)]);
    assert!(cluster.errors.is_empty());
    assert!(cluster.notes.iter().any(|n| n.contains("Deployment web")), "{:?}", cluster.notes);

    let typo = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicyy\nmetadata: {name: deny, namespace: x}\nspec: {podSelector: {}}\n";
    let cluster = Cluster::from_sources([("good.yaml", GOOD), ("typo.yaml", typo)]);
    let found: Vec<String> = cluster.errors.iter().map(|e| format!("{}: {}: {}", e.source, e.object, e.field)).collect();
    assert_eq!(found, ["typo.yaml: NetworkPolicyy x/deny: kind"]);
}

#[test]
fn error_messages_say_what_is_wrong() {
    let c = Cluster::from_sources([("bad.yaml", np_rule("{ports: [{port: 90, endPort: 85}]}").as_str())]);
    let e = &c.errors[0];
    assert!(e.message.contains("85") && e.message.contains("90"), "{}", e.message);
    assert_eq!(e.to_string(), format!("bad.yaml: NetworkPolicy x/bad: spec.ingress[0].ports[0].endPort: {}", e.message));
}

#[test]
fn alias_bombs_hit_the_parser_budget_instead_of_expanding() {
    let mut text = "a: &a [x, x, x, x, x, x, x, x, x]\n".to_string();
    let mut prev = 'a';
    for c in 'b'..='z' {
        text.push_str(&format!("{c}: &{c} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        prev = c;
    }
    let started = std::time::Instant::now();
    let cluster = Cluster::from_sources([("bomb.yaml", text.as_str())]);
    assert_eq!(cluster.errors.len(), 1);
    assert!(cluster.errors[0].message.contains("not valid YAML"), "{}", cluster.errors[0].message);
    // Expanding the aliases would take 9^26 nodes: any bound catches that. The bound is loose
    // because a debug build on a loaded 2-core machine needs seconds for the budget itself.
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "took {:?}", started.elapsed());
}
