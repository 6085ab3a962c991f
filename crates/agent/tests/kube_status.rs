//! weir's CRDs and per-node status against a real kube-apiserver + etcd (`testbed::kube`).
//!
//! The API server accepts every CRD of `deploy/crds/` (weir.io's generated from weir's types:
//! TrafficControl and the Antrea kinds) and refuses invalid custom objects with a schema error
//! naming the field (a wrong type, an unknown field, a value out of range). Then two
//! nodes' status writers, each as the agent's ServiceAccount (the RBAC of `deploy/`), report
//! what their agents realized: the status each is given is the one a node agent publishes,
//! with the rejected objects the Kubernetes source found on the real server. Every write is
//! counted, on the writer and on the server (resourceVersion).
//!
//! Skips (saying why) only when the programs are not on PATH and `WEIR_REQUIRE_KUBE` is unset.
use agent::cluster_source::{ClusterSource, SourceEvent};
use agent::kube_source::KubeConnection;
use agent::kube_source::status_writer::{StatusWriter, field_manager};
use agent::status::{ObjectErrorReport, ObjectName, Status, TrafficControlReport};
use policy::Cluster;
use std::path::Path;
use std::time::{Duration, Instant};
use testbed::command::{run, run_with_input};
use testbed::kube::{Binaries, KubeApi};

mod kube_objects;
use kube_objects::{BAD_REMOTE, DENY_X, MIRROR_A, NODE_N1, yaml};

const ARRIVAL: Duration = Duration::from_secs(60);

/// Each refused by the generated schema: (object, what the error must say).
const INVALID: [(&str, &str); 6] = [
    (
        "{apiVersion: weir.io/v1alpha1, kind: TrafficControl, metadata: {name: i1}, spec: {appliedTo: {}, \
         direction: Egress, action: Copy, targetPort: {ovsInternal: {name: tap0}}}}",
        "spec.action: Unsupported value: \"Copy\"",
    ),
    (
        "{apiVersion: weir.io/v1alpha1, kind: TrafficControl, metadata: {name: i2}, spec: {appliedTo: {}, \
         direction: Egress, action: Mirror, targetPort: {vxlan: {remoteIP: 192.0.2.1, vni: 16777216}}}}",
        "spec.targetPort.vxlan.vni: Invalid value: 16777216: spec.targetPort.vxlan.vni in body should be less than or equal to 16777215",
    ),
    (
        "{apiVersion: weir.io/v1alpha1, kind: TrafficControl, metadata: {name: i3}, spec: {appliedTo: {}, \
         direction: Egress, action: Mirror, targetPort: {ovsInternal: {name: a}, device: {name: b}}}}",
        "spec.targetPort: Too many: 2: must have at most 1 item",
    ),
    (
        "{apiVersion: weir.io/v1alpha1, kind: ExternalNode, metadata: {name: i4, namespace: default}, spec: {interfaces: eth0}}",
        "spec.interfaces: Invalid value: \"string\": spec.interfaces in body must be of type array",
    ),
    (
        "{apiVersion: weir.io/v1alpha1, kind: ClusterNetworkPolicy, metadata: {name: i5}, spec: {priority: high}}",
        "spec.priority: Invalid value: \"string\": spec.priority in body must be of type number",
    ),
    (
        "{apiVersion: weir.io/v1alpha1, kind: ClusterGroup, metadata: {name: i6}, spec: {ipBlocks: [{cidr: 10.0.0.0/8}], podSelectr: {}}}",
        "unknown field \"spec.podSelectr\"",
    ),
];

fn kubectl(api: &KubeApi, args: &[&str]) -> String {
    run(api.kubectl().args(args)).unwrap_or_else(|e| panic!("{e}"))
}

fn deploy(api: &KubeApi) {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    kubectl(api, &["apply", "-f", deploy.join("crds").to_str().unwrap()]);
    kubectl(api, &["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"]);
    kubectl(api, &["apply", "-f", deploy.to_str().unwrap()]);
}

/// A kubeconfig with a fresh token of the agent's ServiceAccount.
fn agent_kubeconfig(api: &KubeApi, dir: &Path) -> KubeConnection {
    let token = kubectl(api, &["-n", "weir-system", "create", "token", "weir-agent"]);
    let path = dir.join("agent.kubeconfig");
    api.write_token_kubeconfig(&path, "weir-agent", token.trim()).unwrap();
    KubeConnection::Kubeconfig(path)
}

/// The first cluster view the source sends in which `wanted` holds.
async fn view_where(connection: &KubeConnection, wanted: impl Fn(&Cluster) -> bool) -> Cluster {
    let (mut rx, _guard) = ClusterSource::Kube { connection: connection.clone(), sync: None }.start().await.unwrap();
    let deadline = tokio::time::Instant::now() + ARRIVAL;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await.expect("a view within the time") {
            Some(SourceEvent::Cluster { cluster, .. }) if wanted(&cluster) => return *cluster,
            Some(_) => {}
            None => panic!("the source stopped"),
        }
    }
}

/// What `node`'s agent publishes once it realized `cluster`: every TrafficControl realized
/// but the rejected ones, every cluster policy, the rejected objects.
fn realized_status(node: &str, cluster: &Cluster) -> Status {
    let mut status = Status { node: node.into(), generation: 1, realized: true, ..Status::default() };
    for name in cluster.traffic_controls.keys() {
        status.traffic_controls.insert(name.clone(), TrafficControlReport { realized: true, ..Default::default() });
    }
    status.cluster_policies =
        cluster.cluster_policies.keys().map(|(kind, name)| ObjectName { kind: kind.to_string(), name: name.clone() }).collect();
    status.errors = cluster
        .errors
        .iter()
        .map(|e| ObjectErrorReport { object: e.object.clone(), field: e.field.clone(), message: e.message.clone(), source: e.source.clone() })
        .collect();
    status
}

/// `(type, status, reason, message)` of every condition of `kind/name`.
fn conditions(api: &KubeApi, kind: &str, name: &str) -> Vec<(String, String, String, String)> {
    let object: serde_json::Value = serde_json::from_str(&kubectl(api, &["get", kind, name, "-o", "json"])).unwrap();
    let conditions = object["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let field = |c: &serde_json::Value, f: &str| c[f].as_str().unwrap_or_default().to_string();
    conditions.iter().map(|c| (field(c, "type"), field(c, "status"), field(c, "reason"), field(c, "message"))).collect()
}

/// The observedGeneration of the object's (only) condition.
fn observed_generation(api: &KubeApi, kind: &str, name: &str) -> Option<i64> {
    let object: serde_json::Value = serde_json::from_str(&kubectl(api, &["get", kind, name, "-o", "json"])).unwrap();
    object["status"]["conditions"][0]["observedGeneration"].as_i64()
}

fn resource_version(api: &KubeApi, kind: &str, name: &str) -> String {
    kubectl(api, &["get", kind, name, "-o", "jsonpath={.metadata.resourceVersion}"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_reports_each_object_realized_or_why_not_and_writes_only_changes() {
    if !Binaries::available_for_tests() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let api = KubeApi::start(tmp.path()).unwrap_or_else(|e| panic!("{e}"));
    deploy(&api);
    let crds = kubectl(&api, &["get", "crd", "-o", "name"]);
    let files = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds")).unwrap().count();
    assert_eq!((crds.lines().count(), files), (9, 9), "every CRD of deploy/crds is served: {crds}");

    // The generated schema refuses what it can tell is wrong, naming the field.
    for (object, error) in INVALID {
        let refused = run_with_input(api.kubectl().args(["apply", "-f", "-"]), object).unwrap_err().to_string();
        assert!(refused.contains(error), "{object}\nrefused with: {refused}\nnot: {error}");
    }

    run_with_input(api.kubectl().args(["apply", "-f", "-"]), &yaml(&[MIRROR_A, BAD_REMOTE, DENY_X])).unwrap_or_else(|e| panic!("{e}"));
    let connection = agent_kubeconfig(&api, tmp.path());
    let cluster = view_where(&connection, |c| c.traffic_controls.contains_key("mirror-a") && !c.errors.is_empty()).await;
    let client = connection.client().await.unwrap();
    let mut n1 = StatusWriter::new(client.clone(), "n1");
    let mut n2 = StatusWriter::new(client.clone(), "n2");
    n1.seed().await;
    n2.seed().await;

    // Realized on both nodes: two true conditions, one per node, each under its own manager.
    let (s1, s2) = (realized_status("n1", &cluster), realized_status("n2", &cluster));
    assert_eq!(n1.update(&s1).await, 3, "mirror-a, deny-x, bad-remote");
    assert_eq!(n2.update(&s2).await, 3);
    let mirror = conditions(&api, "trafficcontrol", "mirror-a");
    assert_eq!(mirror.len(), 2, "{mirror:?}");
    for (node, c) in ["n1", "n2"].iter().zip(&mirror) {
        assert_eq!((c.0.as_str(), c.1.as_str(), c.2.as_str()), (format!("realized.weir.io/{node}").as_str(), "True", "Realized"));
    }
    let managers = kubectl(&api, &["get", "tc", "mirror-a", "--show-managed-fields", "-o", "jsonpath={.metadata.managedFields[*].manager}"]);
    for node in ["n1", "n2"] {
        assert!(managers.split(' ').any(|m| m == field_manager(node)), "{managers}");
    }
    let anp = conditions(&api, "adminnetworkpolicy", "deny-x");
    assert!(anp.len() == 2 && anp.iter().all(|c| c.1 == "True"), "{anp:?}");

    // The rejected object shows its field error where `kubectl describe` shows it.
    let bad = conditions(&api, "trafficcontrol", "bad-remote");
    assert!(bad.iter().all(|c| c.1 == "False" && c.2 == "Rejected"), "{bad:?}");
    assert!(bad[0].3.starts_with("rejected: spec.targetPort.vxlan.remoteIP: "), "{bad:?}");
    let described = kubectl(&api, &["describe", "tc", "bad-remote"]);
    assert!(described.contains("spec.targetPort.vxlan.remoteIP") && described.contains("Rejected"), "{described}");

    // Nothing changed: no write, however often the agent publishes (its heartbeat), and none
    // from a restarted agent either, which learns what it wrote from the server.
    let versions = ["mirror-a", "bad-remote"].map(|n| resource_version(&api, "tc", n));
    for _ in 0..10 {
        assert_eq!(n1.update(&Status { heartbeat_unix_ms: 1, ..s1.clone() }).await, 0);
        assert_eq!(n2.update(&s2).await, 0);
    }
    let mut restarted = StatusWriter::new(client.clone(), "n1");
    restarted.seed().await;
    assert_eq!(restarted.update(&s1).await, 0, "a restarted agent rewrites nothing");
    assert_eq!(versions, ["mirror-a", "bad-remote"].map(|n| resource_version(&api, "tc", n)), "the objects were not written");
    assert_eq!((n1.write_count().get(), n2.write_count().get(), restarted.write_count().get()), (3, 3, 0));

    // n1's switch goes down: its two realized objects turn false, saying why; n2's stay.
    let down = Status { realized: false, last_error: Some("switch unix:/x: connection refused".into()), ..s1.clone() };
    assert_eq!(restarted.update(&down).await, 2);
    let mirror = conditions(&api, "trafficcontrol", "mirror-a");
    assert_eq!(mirror.iter().map(|c| (c.1.as_str(), c.3.as_str())).collect::<Vec<_>>(), [
        ("False", "switch unix:/x: connection refused"),
        ("True", "realized on node n2")
    ]);

    // The bad object fixed: the source's view has no error; n1 reports it realized.
    kubectl(&api, &["patch", "tc", "bad-remote", "--type=merge", "-p", r#"{"spec":{"targetPort":{"vxlan":{"remoteIP":"192.0.2.7"}}}}"#]);
    let fixed = view_where(&connection, |c| c.errors.is_empty() && c.traffic_controls.contains_key("bad-remote")).await;
    assert_eq!(restarted.update(&realized_status("n1", &fixed)).await, 3, "bad-remote fixed, mirror-a and deny-x back");
    let bad = conditions(&api, "trafficcontrol", "bad-remote");
    assert_eq!(bad.iter().map(|c| (c.0.as_str(), c.1.as_str())).collect::<Vec<_>>(), [
        ("realized.weir.io/n1", "True"),
        ("realized.weir.io/n2", "False")
    ]);
    eprintln!("whole test: {:.1} s", started.elapsed().as_secs_f64());
}

/// The whole agent in cluster mode (`agent::run` with the Kubernetes source, as
/// `weir agent --kubeconfig` runs it) on a real Open vSwitch: what it realizes shows as its
/// node's conditions, and an idle agent writes nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_agent_in_cluster_mode_reports_what_it_realized_on_its_node() {
    if !Binaries::available_for_tests() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let api = KubeApi::start(tmp.path()).unwrap_or_else(|e| panic!("{e}"));
    deploy(&api);
    run_with_input(api.kubectl().args(["apply", "-f", "-"]), &yaml(&[NODE_N1, MIRROR_A, BAD_REMOTE, DENY_X])).unwrap_or_else(|e| panic!("{e}"));
    let switch = testbed::ovs::TestSwitch::start().expect("test switch");
    let d = switch.ovs.dir().display();
    let config = agent::Config {
        node: "n1".into(),
        ovsdb: format!("unix:{d}/db.sock"),
        openflow: format!("unix:{d}/br-int.mgmt"),
        bridge: "br-int".into(),
        datapath: ovsdb::DatapathType::Netdev,
        source: ClusterSource::Kube { connection: agent_kubeconfig(&api, tmp.path()), sync: None },
        status_file: tmp.path().join("status.json"),
        state_dir: None,
        cni_conf_dir: None,
        tunnel: agent::TunnelKind::Geneve,
        ovs_ctl: format!("{d}/ovs-vswitchd.ctl"),
        datapath_cache_purge: agent::ovs_bugs::CachePurge::Auto,
        // This test's agent runs in the host's network namespace: no port to take.
        metrics_address: None,
        rule_stats_interval: std::time::Duration::from_secs(10),
        rule_series_cap: agent::metrics::rule_stats::DEFAULT_CAP,
        // Nor a gateway device or nftables table in the host's namespace.
        host_gateway_mtu: None,
        service_cidrs: Vec::new(),
        node_firewall: false,
        audit: None,
        external_node: None,
        host_bypass: Vec::new(),
        node_policy_ovs: false,
        uplinks: Vec::new(),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(agent::run(config, async move { drop(stopped.await) }));

    // Realized: deny-x and mirror-a (whose internal port the agent adds); bad-remote rejected
    // with its field.
    let started = Instant::now();
    let wanted = |api: &KubeApi| {
        let [anp, mirror, bad] = [("anp", "deny-x"), ("tc", "mirror-a"), ("tc", "bad-remote")].map(|(k, n)| conditions(api, k, n));
        (anp.len() == 1 && mirror.len() == 1 && bad.len() == 1).then_some((anp, mirror, bad))
    };
    let (anp, mirror, bad) = loop {
        if let Some(found) = wanted(&api) {
            break found;
        }
        assert!(started.elapsed() < ARRIVAL, "no conditions within {ARRIVAL:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!("conditions written {:.1} s after the agent started", started.elapsed().as_secs_f64());
    assert_eq!((anp[0].0.as_str(), anp[0].1.as_str(), anp[0].2.as_str()), ("realized.weir.io/n1", "True", "Realized"));
    assert_eq!((mirror[0].1.as_str(), mirror[0].2.as_str()), ("True", "Realized"), "{mirror:?}");
    assert_eq!(bad[0].2, "Rejected");
    assert!(bad[0].3.contains("spec.targetPort.vxlan.remoteIP"), "{bad:?}");

    assert_eq!(observed_generation(&api, "tc", "mirror-a"), Some(1), "the generation realized");

    // A spec edit (generation 2) is realized and says so.
    kubectl(&api, &["patch", "tc", "mirror-a", "--type=merge", "-p", r#"{"spec":{"direction":"Both"}}"#]);
    let edited = Instant::now();
    while observed_generation(&api, "tc", "mirror-a") != Some(2) {
        assert!(edited.elapsed() < ARRIVAL, "observedGeneration 2 not written within {ARRIVAL:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(conditions(&api, "tc", "mirror-a")[0].1, "True");

    // Idle for a few heartbeats: nothing is written.
    let versions = ["mirror-a", "bad-remote"].map(|n| resource_version(&api, "tc", n));
    let anp_version = resource_version(&api, "anp", "deny-x");
    tokio::time::sleep(agent::status::HEARTBEAT * 3).await;
    assert_eq!(versions, ["mirror-a", "bad-remote"].map(|n| resource_version(&api, "tc", n)));
    assert_eq!(anp_version, resource_version(&api, "anp", "deny-x"));
    assert!(!agent.is_finished(), "the agent runs");
    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();
}
