//! Host endpoints through a real kube-apiserver + etcd (`testbed::kube`): ExternalNodes and
//! Antrea's tiered policy kinds written with kubectl arrive in the cluster view the agent's
//! Kubernetes source sends, as the rules the host realizations read (`RuleSet::host_rules`).
//! One API server for the whole story, in order: weir's CRDs installed but not Antrea's
//! (Antrea's group is reported as not served, weir.io objects are in force), Antrea's CRDs
//! installed later (their objects arrive), a node policy by `nodeSelector` and an
//! ExternalEntity policy by `externalEntitySelector` in a custom Tier with a ClusterGroup peer,
//! updates of both and of the ExternalNode, a bad ExternalNode (named by object and field, an
//! Event on it; everything else stays in force), a node policy that selects no node (a
//! warning), and deletions.
//!
//! Skips (saying why) only when the programs are not on PATH and `WEIR_REQUIRE_KUBE` is unset.
use agent::cluster_source::{ClusterSource, SourceEvent};
use agent::kube_source::KubeConnection;
use policy::{Action, Cluster, Endpoint, ExternalEntityKey};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use testbed::command::{run, run_with_input};
use testbed::kube::{Binaries, KubeApi};
use tokio::sync::mpsc::Receiver;

mod kube_objects;
use kube_objects::antrea_crds;

/// Longer than the watchers' longest retry wait (8 s) after a kind becomes served.
const ARRIVAL: Duration = Duration::from_secs(60);

/// Namespace `vms`, nodes n1 (worker) and n2 (control plane); their InternalIPs are written
/// as kubelet would, through the status subresource.
const HOSTS: &str = "\
apiVersion: v1
kind: Namespace
metadata: {name: vms, labels: {kubernetes.io/metadata.name: vms}}
---
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {role: worker}}
spec: {podCIDR: 10.244.1.0/24}
---
apiVersion: v1
kind: Node
metadata: {name: n2, labels: {role: control-plane}}
spec: {podCIDR: 10.244.2.0/24}
";

/// weir.io: a custom tier before every default one, and a policy in it locking the database
/// ExternalEntities (by `externalEntitySelector`) to the admins' ClusterGroup.
const DB_LOCK: &str = "\
apiVersion: weir.io/v1alpha1
kind: Tier
metadata: {name: hosts}
spec: {priority: 20, description: host endpoints first}
---
apiVersion: weir.io/v1alpha1
kind: ClusterNetworkPolicy
metadata: {name: db-lock}
spec:
  priority: 1
  tier: hosts
  appliedTo: [{externalEntitySelector: {matchLabels: {role: db}}, namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: vms}}}]
  ingress:
  - {action: Allow, from: [{group: admins}], ports: [{protocol: TCP, port: 5432}]}
  - {action: Drop, ports: [{protocol: TCP, port: 5432}]}
";

/// crd.antrea.io: the ExternalNode vm1 (role: db), the admins' ClusterGroup, the default tier
/// `application` as Antrea's controller creates it, and a node policy: workers' SSH from the
/// admins only.
fn antrea_objects(vm1_ip: &str, ssh_nodes: &str) -> String {
    format!(
        "\
apiVersion: crd.antrea.io/v1alpha1
kind: ExternalNode
metadata: {{name: vm1, namespace: vms, labels: {{role: db}}}}
spec: {{interfaces: [{{name: eth0, ips: [{vm1_ip}]}}]}}
---
apiVersion: crd.antrea.io/v1beta1
kind: ClusterGroup
metadata: {{name: admins}}
spec: {{ipBlocks: [{{cidr: 10.1.0.0/16}}]}}
---
apiVersion: crd.antrea.io/v1beta1
kind: Tier
metadata: {{name: application}}
spec: {{priority: 250}}
---
apiVersion: crd.antrea.io/v1beta1
kind: ClusterNetworkPolicy
metadata: {{name: node-ssh}}
spec:
  priority: 5
  tier: securityops
  appliedTo: [{{nodeSelector: {{matchLabels: {{role: {ssh_nodes}}}}}}}]
  ingress:
  - {{action: Allow, from: [{{group: admins}}], ports: [{{protocol: TCP, port: 22}}]}}
  - {{action: Drop, ports: [{{protocol: TCP, port: 22}}]}}
"
    )
}

/// An ExternalNode whose interface has no address: valid for the schema, not for weir.
const VM2_NO_ADDRESS: &str = "\
apiVersion: crd.antrea.io/v1alpha1
kind: ExternalNode
metadata: {name: vm2, namespace: vms, labels: {role: db}}
spec: {interfaces: [{name: eth0}]}
";

fn kubectl(api: &KubeApi, args: &[&str]) -> String {
    run(api.kubectl().args(args)).unwrap_or_else(|e| panic!("{e}"))
}

fn apply(api: &KubeApi, yaml: &str) {
    run_with_input(api.kubectl().args(["apply", "-f", "-"]), yaml).unwrap_or_else(|e| panic!("{e}"));
}

fn node(name: &str) -> Endpoint {
    Endpoint::Node(name.into())
}

/// The entity ExternalNode vms/vm1's eth0 becomes (Antrea's naming).
fn vm1_eth0() -> Endpoint {
    Endpoint::ExternalEntity(ExternalEntityKey::new("vms", "vm1-3e616"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The rules a host realization would install for `endpoint`: `policy rule action`, in order.
fn host_rules(c: &Cluster, endpoint: &Endpoint) -> Vec<String> {
    let rules = c.rules();
    rules.host_rules(endpoint).map(|r| format!("{} {:?}", r.origin, r.action)).collect()
}

/// Events until a cluster view that `wanted` accepts (warnings are kept in `warnings`).
async fn view_where(rx: &mut Receiver<SourceEvent>, warnings: &mut Vec<String>, what: &str, wanted: impl Fn(&Cluster) -> bool) -> Cluster {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + ARRIVAL;
    loop {
        let event = tokio::time::timeout_at(deadline, rx.recv()).await;
        match event.unwrap_or_else(|_| panic!("no view where {what} within {ARRIVAL:?} (warnings: {warnings:?})")) {
            Some(SourceEvent::Cluster { cluster, .. }) if wanted(&cluster) => {
                eprintln!("{what}: {:.0} ms", started.elapsed().as_secs_f64() * 1e3);
                return *cluster;
            }
            Some(SourceEvent::Cluster { .. }) => {}
            Some(SourceEvent::Warnings(w)) => *warnings = w,
            Some(SourceEvent::Unreadable(why)) => panic!("the source is unreadable: {why}"),
            None => panic!("the source stopped"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_nodes_and_node_policies_written_through_a_real_api_server_are_the_host_rules() {
    if !Binaries::available_for_tests() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let api = KubeApi::start(tmp.path()).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("API server ready in {:.1} s", started.elapsed().as_secs_f64());
    let crds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds");
    kubectl(&api, &["apply", "-f", crds.to_str().unwrap()]);
    kubectl(&api, &["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"]);
    apply(&api, HOSTS);
    for (name, address) in [("n1", "192.168.0.1"), ("n2", "192.168.0.2")] {
        let status = format!(r#"{{"status":{{"addresses":[{{"type":"InternalIP","address":"{address}"}}]}}}}"#);
        kubectl(&api, &["patch", "node", name, "--subresource=status", "--type=merge", "-p", &status]);
    }
    apply(&api, DB_LOCK);

    let source = ClusterSource::Kube { connection: KubeConnection::Kubeconfig(api.kubeconfig()), sync: None };
    let (mut rx, _guard) = source.start().await.unwrap();
    let mut warnings = Vec::new();

    // Antrea's CRDs are not installed: its group is reported, once per kind, saying where the
    // CRD comes from; weir.io's objects are in force (the policy waits for its peer group).
    let view = view_where(&mut rx, &mut warnings, "weir.io objects", |c| c.tiers.contains_key("hosts")).await;
    assert_eq!(warnings.len(), 5, "{warnings:#?}");
    for w in &warnings {
        assert!(w.contains("(crd.antrea.io/") && w.contains("not served") && w.contains("Antrea's CRDs are not installed"), "{w}");
    }
    let missing =
        view.errors.iter().find(|e| e.object == "ClusterNetworkPolicy.crd.antrea.io db-lock").expect("db-lock names its missing group");
    assert!(missing.message.contains("ClusterGroup admins does not exist"), "{missing}");
    assert_eq!(missing.source, "kube:ClusterNetworkPolicy.weir.io/db-lock");

    // Antrea's CRDs installed later: the watchers find them served and their objects arrive.
    apply(&api, &antrea_crds());
    kubectl(&api, &["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"]);
    apply(&api, &antrea_objects("192.168.50.10", "worker"));
    let view = view_where(&mut rx, &mut warnings, "Antrea's objects", |c| {
        !c.external_entities.is_empty() && c.cluster_policies.len() == 2 && c.errors.is_empty()
    })
    .await;
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(view.warnings.is_empty(), "{:?}", view.warnings);
    assert_eq!(view.endpoint_at(ip("192.168.50.10")), Some(vm1_eth0()));
    assert_eq!(view.endpoint_at(ip("192.168.0.1")), Some(node("n1")));
    let ssh =
        ["ClusterNetworkPolicy.crd.antrea.io node-ssh ingress[0] Allow", "ClusterNetworkPolicy.crd.antrea.io node-ssh ingress[1] Deny"];
    let db = ["ClusterNetworkPolicy.crd.antrea.io db-lock ingress[0] Allow", "ClusterNetworkPolicy.crd.antrea.io db-lock ingress[1] Deny"];
    assert_eq!(host_rules(&view, &node("n1")), ssh, "n1 is a worker");
    assert!(host_rules(&view, &node("n2")).is_empty(), "n2 is not");
    assert_eq!(host_rules(&view, &vm1_eth0()), db);
    // The custom tier (20) comes before securityops (100): the host rules carry their tiers.
    let rules = view.rules();
    let tier = |e: &Endpoint| rules.host_rules(e).next().map(|r| r.tier).unwrap();
    assert!(tier(&vm1_eth0()) < tier(&node("n1")));
    let concrete = rules.host_concrete(&view, &node("n1"));
    assert_eq!(concrete.iter().map(|r| r.action).collect::<Vec<_>>(), [Action::Allow, Action::Deny]);
    assert_eq!(
        concrete[0].peers,
        policy::PeerAddrs::Blocks(vec![policy::IpBlock { cidr: "10.1.0.0/16".parse().unwrap(), except: Vec::new() }])
    );

    // Updates: the ExternalNode moves to another address, the node policy to the other node.
    apply(&api, &antrea_objects("192.168.50.11", "control-plane"));
    let view = view_where(&mut rx, &mut warnings, "updated ExternalNode and node policy", |c| {
        c.endpoint_at(ip("192.168.50.11")).is_some() && !host_rules(c, &node("n2")).is_empty()
    })
    .await;
    assert_eq!(view.endpoint_at(ip("192.168.50.10")), None, "the old address is no host's");
    assert_eq!(view.endpoint_at(ip("192.168.50.11")), Some(vm1_eth0()));
    assert!(host_rules(&view, &node("n1")).is_empty());
    assert_eq!(host_rules(&view, &node("n2")), ssh);
    assert_eq!(host_rules(&view, &vm1_eth0()), db, "the entity keeps its policy at its new address");

    // A bad ExternalNode: rejected by object and field, everything else stays in force.
    apply(&api, VM2_NO_ADDRESS);
    let view = view_where(&mut rx, &mut warnings, "rejected ExternalNode", |c| !c.errors.is_empty()).await;
    assert_eq!(view.errors.len(), 1, "{:?}", view.errors);
    let e = &view.errors[0];
    assert_eq!(
        (e.source.as_str(), e.object.as_str(), e.field.as_str()),
        ("kube:ExternalNode.crd.antrea.io/vms/vm2", "ExternalNode vms/vm2", "spec.interfaces[0].ips"),
        "{e}"
    );
    assert_eq!(view.external_entities.len(), 1, "only vm1's interface");
    assert_eq!(host_rules(&view, &node("n2")), ssh);
    assert_eq!(host_rules(&view, &vm1_eth0()), db);
    rejected_external_node_shows_as_an_event(&api, e).await;

    // A node policy that selects no node is in force and warned about, naming the field.
    apply(&api, &antrea_objects("192.168.50.11", "nobody"));
    let view = view_where(&mut rx, &mut warnings, "node policy selecting no node", |c| !c.warnings.is_empty()).await;
    let w = &view.warnings[0];
    assert_eq!(
        (w.object.as_str(), w.field.as_str()),
        ("ClusterNetworkPolicy.crd.antrea.io node-ssh", "spec.appliedTo[0].nodeSelector"),
        "{w}"
    );
    assert!(host_rules(&view, &node("n1")).is_empty() && host_rules(&view, &node("n2")).is_empty());

    // Deletions: the entity policy, then the ExternalNode.
    kubectl(&api, &["delete", "clusternetworkpolicies.weir.io", "db-lock"]);
    let view = view_where(&mut rx, &mut warnings, "deleted entity policy", |c| host_rules(c, &vm1_eth0()).is_empty()).await;
    assert_eq!(view.endpoint_at(ip("192.168.50.11")), Some(vm1_eth0()));
    kubectl(&api, &["-n", "vms", "delete", "externalnodes.crd.antrea.io", "vm1", "vm2"]);
    let view = view_where(&mut rx, &mut warnings, "deleted ExternalNodes", |c| c.external_entities.is_empty()).await;
    assert!(view.errors.is_empty(), "{:?}", view.errors);
    assert_eq!(view.endpoint_at(ip("192.168.50.11")), None);
    assert!(warnings.is_empty(), "{warnings:?}");
    eprintln!("whole story: {:.1} s", started.elapsed().as_secs_f64());
}

/// The node agent's Event writer reports the rejected ExternalNode on the object, in its
/// namespace, naming the field, once.
async fn rejected_external_node_shows_as_an_event(api: &KubeApi, e: &policy::manifest::ObjectError) {
    use agent::kube_source::events::EventWriter;
    use agent::status::{ObjectErrorReport, Status};
    let client = KubeConnection::Kubeconfig(api.kubeconfig()).client().await.unwrap();
    let mut events = EventWriter::new(client, "n1");
    let error =
        ObjectErrorReport { object: e.object.clone(), field: e.field.clone(), message: e.message.clone(), source: e.source.clone() };
    let status = Status { node: "n1".into(), errors: vec![error], ..Status::default() };
    assert_eq!(events.update(&status).await, 1, "one Event for the object");
    assert_eq!(events.update(&status).await, 0, "and only one while the error stays");
    let listed: serde_json::Value = serde_json::from_str(&kubectl(api, &["-n", "vms", "get", "events", "-o", "json"])).unwrap();
    let items = listed["items"].as_array().unwrap();
    let event = items.iter().find(|i| i["reason"] == "Rejected").unwrap_or_else(|| panic!("no Event in {listed:#}"));
    let on = &event["involvedObject"];
    assert_eq!(
        (&on["apiVersion"], &on["kind"], &on["name"], &on["namespace"]),
        (&"crd.antrea.io/v1alpha1".into(), &"ExternalNode".into(), &"vm2".into(), &"vms".into())
    );
    assert_eq!(on["fieldPath"], "spec.interfaces[0].ips");
    assert!(on["uid"].as_str().is_some_and(|u| !u.is_empty()), "found by uid: {on}");
    let message = event["message"].as_str().unwrap();
    assert!(message.starts_with("not enforced by weir on node n1: spec.interfaces[0].ips: "), "{message}");
}
