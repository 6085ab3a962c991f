//! `deploy/` against a real kube-apiserver + etcd (`testbed::kube`): the manifests pass the
//! server's validation and admission (`kubectl apply --dry-run=server`), and the ServiceAccount
//! they create, bound to their ClusterRole, is allowed exactly what the agent does: list and
//! watch every kind the Kubernetes source watches, patch the status of the kinds it reports on,
//! and nothing else (no Secrets, no writes to pods or specs). Then the agent's Kubernetes
//! source, given a kubeconfig with that ServiceAccount's token, lists and watches every kind.
//!
//! Skips (saying why) only when the programs are not on PATH and `WEIR_REQUIRE_KUBE` is unset.
use agent::cluster_source::{ClusterSource, SourceEvent};
use agent::kube_source::KubeConnection;
use agent::kube_source::kinds::{Report, WATCHED, WatchedKind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testbed::command::{run, run_with_input};
use testbed::kube::{Binaries, KubeApi};

mod kube_objects;
use kube_objects::{DENY_INGRESS_X, MIRROR_A, NAMESPACE_X, NODE_N1, POD_X_A, antrea_crds, yaml};

const NAMESPACE: &str = "weir-system";
const SERVICE_ACCOUNT: &str = "weir-agent";
/// How long the source may take to send a view with every kind listed.
const ARRIVAL: Duration = Duration::from_secs(60);

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn kubectl(api: &KubeApi, args: &[&str]) -> String {
    run(api.kubectl().args(args)).unwrap_or_else(|e| panic!("{e}"))
}

/// The resource as `kubectl auth can-i` names it: `plural.group`, or `plural` in the core group.
fn resource(kind: &WatchedKind) -> String {
    if kind.group.is_empty() {
        kind.plural.to_string()
    } else {
        format!("{}.{}", kind.plural, kind.group)
    }
}

/// `kubectl auth can-i` as the holder of `token`: whether it is allowed (it says "yes", or
/// "no" and exits 1).
fn can_i(api: &KubeApi, token: &str, args: &[&str]) -> bool {
    let out = api
        .kubectl()
        .args(["--token", token, "auth", "can-i"])
        .args(args)
        .output()
        .unwrap();
    match String::from_utf8_lossy(&out.stdout).trim() {
        "yes" => true,
        "no" => false,
        other => panic!(
            "kubectl auth can-i {args:?}: {other:?} ({})",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn apply_deploy(api: &KubeApi) {
    let crds = deploy_dir().join("crds");
    kubectl(api, &["apply", "-f", crds.to_str().unwrap()]);
    // Antrea's CRDs (stand-ins), which a cluster running Antrea has.
    run_with_input(api.kubectl().args(["apply", "-f", "-"]), &antrea_crds()).unwrap_or_else(|e| panic!("{e}"));
    kubectl(
        api,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd",
            "--all",
        ],
    );
    // Namespaced objects cannot be dry-run into a namespace that does not exist yet.
    kubectl(
        api,
        &[
            "apply",
            "-f",
            deploy_dir().join("00-namespace.yaml").to_str().unwrap(),
        ],
    );
    let dry = kubectl(
        api,
        &[
            "apply",
            "--dry-run=server",
            "-f",
            deploy_dir().to_str().unwrap(),
        ],
    );
    for object in [
        "serviceaccount/weir-agent",
        "clusterrole.rbac.authorization.k8s.io/weir-agent",
        "configmap/weir-agent",
        "daemonset.apps/weir-agent",
    ] {
        assert!(
            dry.contains(&format!("{object} created (server dry run)")),
            "{object} in:\n{dry}"
        );
    }
    kubectl(api, &["apply", "-f", deploy_dir().to_str().unwrap()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_service_account_may_do_what_the_agent_does_and_nothing_else() {
    if !Binaries::available_for_tests() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let api = KubeApi::start(tmp.path()).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "API server ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    apply_deploy(&api);

    let token = kubectl(&api, &["-n", NAMESPACE, "create", "token", SERVICE_ACCOUNT]);
    let token = token.trim();
    let whoami = kubectl(
        &api,
        &[
            "--token",
            token,
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    );
    assert_eq!(
        whoami,
        format!("system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}")
    );

    // What the agent does: list and watch every watched kind, in every namespace.
    for kind in &WATCHED {
        for verb in ["list", "watch"] {
            assert!(
                can_i(&api, token, &[verb, &resource(kind), "--all-namespaces"]),
                "{verb} {}",
                resource(kind)
            );
        }
        // Its status, for the kinds it reports realization on (server-side apply is a patch),
        // and never their spec.
        let status = can_i(
            &api,
            token,
            &["patch", &resource(kind), "--subresource=status"],
        );
        assert_eq!(status, kind.report == Report::Conditions, "patch {}/status", resource(kind));
        assert!(
            !can_i(&api, token, &["patch", &resource(kind)]),
            "patch {}",
            resource(kind)
        );
        for verb in ["get", "create", "update", "delete"] {
            assert!(
                !can_i(&api, token, &[verb, &resource(kind), "--all-namespaces"]),
                "{verb} {}",
                resource(kind)
            );
        }
    }
    // What it must not: read Secrets or ConfigMaps, write pods or their status, anything else.
    for (verb, what) in [
        ("get", "secrets"),
        ("list", "secrets"),
        ("watch", "secrets"),
        ("list", "configmaps"),
        ("list", "events"),
        ("watch", "events"),
        ("delete", "events"),
        ("create", "pods"),
        ("delete", "pods"),
        ("create", "pods/exec"),
        ("list", "serviceaccounts"),
        ("create", "serviceaccounts/token"),
        ("list", "services"),
        ("create", "networkpolicies.networking.k8s.io"),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
        ("list", "customresourcedefinitions.apiextensions.k8s.io"),
    ] {
        assert!(
            !can_i(&api, token, &[verb, what, "--all-namespaces"]),
            "{verb} {what} must be denied"
        );
    }
    assert!(
        !can_i(
            &api,
            token,
            &["patch", "pods", "--subresource=status", "-n", "x"]
        ),
        "patch pods/status"
    );
    assert!(
        !can_i(&api, token, &["patch", "nodes", "--subresource=status"]),
        "patch nodes/status"
    );

    // Events about the objects it rejects: create only.
    assert!(can_i(&api, token, &["create", "events", "-n", "x"]), "create events");

    // The agent's source, as this ServiceAccount, lists and watches every kind: a forbidden
    // kind would be a warning and a missing object.
    run_with_input(api.kubectl().args(["apply", "-f", "-"]), &yaml(&[NAMESPACE_X, NODE_N1, POD_X_A, MIRROR_A, DENY_INGRESS_X]))
        .unwrap_or_else(|e| panic!("{e}"));
    let kubeconfig = tmp.path().join("agent.kubeconfig");
    api.write_token_kubeconfig(&kubeconfig, SERVICE_ACCOUNT, token)
        .unwrap();
    let source = ClusterSource::Kube { connection: KubeConnection::Kubeconfig(kubeconfig.clone()), sync: None };
    let (mut rx, _guard) = source.start().await.unwrap();
    let deadline = tokio::time::Instant::now() + ARRIVAL;
    let mut warnings = Vec::new();
    let view = loop {
        match tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("a view within the time")
        {
            Some(SourceEvent::Cluster { cluster, .. }) => break cluster,
            Some(SourceEvent::Warnings(w)) => warnings = w,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(warnings.is_empty(), "as the ServiceAccount: {warnings:?}");
    assert!(
        view.pods.keys().any(|p| p.name == "a") && view.nodes.contains_key("n1"),
        "{view:?}"
    );
    assert!(view.traffic_controls.contains_key("mirror-a"));
    // A watch that runs on (not only the first list): a change arrives.
    kubectl(
        &api,
        &["-n", "x", "label", "pod", "a", "app=db", "--overwrite"],
    );
    loop {
        match tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("the change within the time")
        {
            Some(SourceEvent::Cluster { cluster, .. })
                if cluster
                    .pods
                    .values()
                    .any(|p| p.labels.get("app").map(String::as_str) == Some("db")) =>
            {
                break;
            }
            Some(SourceEvent::Warnings(w)) => assert!(w.is_empty(), "{w:?}"),
            Some(_) => {}
            None => panic!("the source stopped"),
        }
    }
    rejected_objects_show_as_events(&api, &kubeconfig).await;
    eprintln!("whole test: {:.1} s", started.elapsed().as_secs_f64());
}

/// As the ServiceAccount, the agent's Event writer reports what its node rejected (the status
/// a node agent publishes, naming object and field) on each object, once: a Pod's shows in
/// `kubectl describe`, a NetworkPolicy's in `kubectl events --for` (kubectl's NetworkPolicy
/// describer shows no Events).
async fn rejected_objects_show_as_events(api: &KubeApi, kubeconfig: &Path) {
    use agent::kube_source::events::EventWriter;
    use agent::status::{ObjectErrorReport, Status};
    let client = KubeConnection::Kubeconfig(kubeconfig.to_path_buf()).client().await.unwrap();
    let mut events = EventWriter::new(client, "n1");
    let error = |kind: &str, name: &str, field: &str, message: &str| ObjectErrorReport {
        object: format!("{kind} x/{name}"),
        field: field.into(),
        message: message.into(),
        source: format!("kube:{kind}/x/{name}"),
    };
    let errors = vec![
        error("NetworkPolicy", "deny-ingress", "spec.ingress[0].ports[0].endPort", "needs a numeric port"),
        error("Pod", "a", "status.podIPs[1].ip", "not an IP address"),
    ];
    let status = Status { node: "n1".into(), errors, ..Status::default() };
    assert_eq!(events.update(&status).await, 2, "one Event per object");
    assert_eq!(events.update(&status).await, 0, "and only one while the error stays");
    let described = kubectl(api, &["-n", "x", "describe", "pod", "a"]);
    let line = described.lines().find(|l| l.contains("Rejected")).unwrap_or_else(|| panic!("no Event in:\n{described}"));
    assert!(line.contains("Warning") && line.contains("weir-agent"), "{line}");
    assert!(line.contains("on node n1: status.podIPs[1].ip: not an IP address"), "{line}");
    let listed = kubectl(api, &["-n", "x", "events", "--for", "networkpolicy/deny-ingress"]);
    let line = listed.lines().find(|l| l.contains("Rejected")).unwrap_or_else(|| panic!("no Event in:\n{listed}"));
    assert!(line.contains("on node n1: spec.ingress[0].ports[0].endPort: needs a numeric port"), "{line}");
}
