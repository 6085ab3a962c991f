//! The Kubernetes source against a real kube-apiserver + etcd (`testbed::kube`): objects
//! written with kubectl arrive in the cluster view the source sends, as the agent would get it
//! (no OVS needed). One API server for the whole story, in order: CRDs missing (reported, the
//! rest works), CRDs applied (an invalid custom object is refused by the schema), a changed
//! label, an object weir rejects (named by object and field, the rest stays), a deleted
//! policy, and an API server restart (nothing lost, no new view when nothing changed).
//!
//! Skips (saying why) only when the programs are not on PATH and `WEIR_REQUIRE_KUBE` is unset.
use agent::cluster_source::{ClusterSource, SourceEvent};
use agent::kube_source::KubeConnection;
use policy::Cluster;
use policy::objects::PodKey;
use std::path::Path;
use std::time::{Duration, Instant};
use testbed::command::{run, run_with_input};
use testbed::kube::{Binaries, KubeApi};
use tokio::sync::mpsc::Receiver;

mod kube_objects;
use kube_objects::{BAD_REMOTE, DENY_INGRESS_X, DENY_X, MIRROR_A, NAMESPACE_X, NODE_N1, POD_X_A, antrea_crds, yaml};

/// Longer than kube-rs's watcher backoff after a few failures (it doubles up to 30 s).
const ARRIVAL: Duration = Duration::from_secs(60);
/// How long a quiet source is watched for a view it should not send.
const QUIET: Duration = Duration::from_secs(3);
/// A watcher that resumed a quiet watch reports success at its next bookmark (about a minute).
const RECOVERY: Duration = Duration::from_secs(150);
/// How soon after a restart the watchers have noticed it (their first retry is at 250 ms).
const NOTICE: Duration = Duration::from_secs(1);

/// Refused by the CRD's schema: no such action.
const INVALID_TRAFFIC_CONTROL: &str = "\
apiVersion: weir.io/v1alpha1
kind: TrafficControl
metadata: {name: invalid}
spec:
  appliedTo: {podSelector: {}}
  direction: Egress
  action: Copy
  targetPort: {ovsInternal: {name: tap0}}
";

fn kubectl(api: &KubeApi, args: &[&str]) -> String {
    run(api.kubectl().args(args)).unwrap_or_else(|e| panic!("{e}"))
}

fn apply(api: &KubeApi, yaml: &str) {
    run_with_input(api.kubectl().args(["apply", "-f", "-"]), yaml).unwrap_or_else(|e| panic!("{e}"));
}

fn pod_a() -> PodKey {
    PodKey { namespace: "x".into(), name: "a".into() }
}

/// Events until a cluster view that `wanted` accepts (warnings are kept in `warnings`).
async fn view_where(
    rx: &mut Receiver<SourceEvent>,
    warnings: &mut Vec<String>,
    what: &str,
    wanted: impl Fn(&Cluster) -> bool,
) -> Cluster {
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

/// Every cluster view sent within `QUIET` (warnings are kept in `warnings`).
async fn views_within_quiet(rx: &mut Receiver<SourceEvent>, warnings: &mut Vec<String>) -> usize {
    let deadline = tokio::time::Instant::now() + QUIET;
    let mut views = 0;
    while let Ok(event) = tokio::time::timeout_at(deadline, rx.recv()).await {
        match event {
            Some(SourceEvent::Cluster { .. }) => views += 1,
            Some(SourceEvent::Warnings(w)) => *warnings = w,
            other => panic!("unexpected {other:?}"),
        }
    }
    views
}

/// Every cluster view sent until every watcher reported success since its last error (a
/// relist done, or an event or bookmark on a resumed watch).
async fn views_until_recovered(rx: &mut Receiver<SourceEvent>, warnings: &mut Vec<String>) -> usize {
    let started = Instant::now();
    let recovery = tokio::time::Instant::now() + RECOVERY;
    let noticed = tokio::time::Instant::now() + NOTICE;
    let mut views = 0;
    while !warnings.is_empty() || started.elapsed() < NOTICE {
        let until = if warnings.is_empty() { noticed } else { recovery };
        match tokio::time::timeout_at(until, rx.recv()).await {
            Ok(Some(SourceEvent::Cluster { .. })) => views += 1,
            Ok(Some(SourceEvent::Warnings(w))) => *warnings = w,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) if warnings.is_empty() => break,
            Err(_) => panic!("watchers not recovered within {RECOVERY:?}: {warnings:?}"),
        }
    }
    eprintln!("watchers recovered {:.1} s after the restart", started.elapsed().as_secs_f64());
    views
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_written_through_a_real_api_server_arrive_in_the_cluster_view() {
    if !Binaries::available_for_tests() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut api = KubeApi::start(tmp.path()).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("API server ready in {:.1} s", started.elapsed().as_secs_f64());
    apply(&api, &yaml(&[NAMESPACE_X, NODE_N1, POD_X_A, DENY_INGRESS_X]));
    let ip = r#"{"status":{"podIP":"10.244.1.10","podIPs":[{"ip":"10.244.1.10"}]}}"#;
    kubectl(&api, &["-n", "x", "patch", "pod", "a", "--subresource=status", "--type=merge", "-p", ip]);

    let source = ClusterSource::Kube { connection: KubeConnection::Kubeconfig(api.kubeconfig()), sync: None };
    let (mut rx, _guard) = source.start().await.unwrap();
    let mut warnings = Vec::new();

    // No CRDs yet: the built-in kinds arrive, every custom kind (of every group) is reported.
    let view = view_where(&mut rx, &mut warnings, "first view", |c| c.pods.contains_key(&pod_a())).await;
    assert!(view.policies.contains_key(&("x".to_string(), "deny-ingress".to_string())));
    assert!(view.nodes.contains_key("n1") && view.namespaces.contains_key("x"));
    assert_eq!(view.pods[&pod_a()].ips, ["10.244.1.10".parse::<std::net::IpAddr>().unwrap()]);
    let custom = agent::kube_source::kinds::WATCHED.iter().filter(|k| k.custom).count();
    assert_eq!((warnings.len(), custom), (14, 14), "{warnings:?}");
    assert!(warnings.iter().all(|w| w.contains("not served by the API server")), "{warnings:?}");

    // The CRDs (weir's, and stand-ins for Antrea's): accepted, established, and enforcing
    // their schema.
    let crds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds");
    kubectl(&api, &["apply", "-f", crds.to_str().unwrap()]);
    apply(&api, &antrea_crds());
    kubectl(&api, &["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"]);
    let refused = run_with_input(api.kubectl().args(["apply", "-f", "-"]), INVALID_TRAFFIC_CONTROL).unwrap_err().to_string();
    assert!(refused.contains("spec.action") && refused.contains("Unsupported value: \"Copy\""), "{refused}");

    // Custom objects arrive once the watchers, retrying, find their kinds served.
    apply(&api, &yaml(&[MIRROR_A, DENY_X]));
    let view = view_where(&mut rx, &mut warnings, "custom objects", |c| {
        c.traffic_controls.contains_key("mirror-a") && !c.cluster_policies.is_empty()
    })
    .await;
    assert!(view.errors.is_empty(), "{:?}", view.errors);

    kubectl(&api, &["-n", "x", "label", "pod", "a", "app=db", "--overwrite"]);
    view_where(&mut rx, &mut warnings, "changed label", |c| c.pods[&pod_a()].labels.get("app").map(String::as_str) == Some("db")).await;

    // Weir rejects what the schema let through, naming object and field; the rest stays.
    apply(&api, BAD_REMOTE);
    let view = view_where(&mut rx, &mut warnings, "rejected object", |c| !c.errors.is_empty()).await;
    let e = &view.errors[0];
    assert_eq!((e.source.as_str(), e.object.as_str()), ("kube:TrafficControl/bad-remote", "TrafficControl bad-remote"), "{e}");
    assert_eq!(e.field, "spec.targetPort.vxlan.remoteIP", "{e}");
    assert!(view.traffic_controls.contains_key("mirror-a") && view.pods.contains_key(&pod_a()) && view.policies.len() == 1);
    assert!(warnings.is_empty(), "{warnings:?}");

    kubectl(&api, &["-n", "x", "delete", "networkpolicy", "deny-ingress"]);
    view_where(&mut rx, &mut warnings, "deleted policy", |c| c.policies.is_empty()).await;

    // A restart breaks every watch; the watchers resume (or relist) and find nothing new.
    assert_eq!(views_within_quiet(&mut rx, &mut warnings).await, 0, "a quiet cluster sends nothing");
    let restarted = Instant::now();
    tokio::task::block_in_place(|| api.restart_apiserver()).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("API server restarted in {:.1} s", restarted.elapsed().as_secs_f64());
    let views = views_until_recovered(&mut rx, &mut warnings).await;
    assert_eq!(views, 0, "a restart that changed nothing sends nothing");
    assert_eq!(views_within_quiet(&mut rx, &mut warnings).await, 0, "nor does anything after it");
    kubectl(&api, &["-n", "x", "label", "pod", "a", "app=web", "--overwrite"]);
    let view = view_where(&mut rx, &mut warnings, "change after restart", |c| {
        c.pods[&pod_a()].labels.get("app").map(String::as_str) == Some("web")
    })
    .await;
    assert!(view.traffic_controls.contains_key("mirror-a") && view.cluster_policies.len() == 1 && view.errors.len() == 1);
    assert!(warnings.is_empty(), "{warnings:?}");
    eprintln!("whole story: {:.1} s", started.elapsed().as_secs_f64());
}
