use super::*;
use kube::runtime::watcher::Event;
use serde_json::json;

const POD: usize = 2;
const NETPOL: usize = 3;
const ANP: usize = 5;

fn pod(name: &str, version: &str, app: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "x", "resourceVersion": version, "labels": {"app": app}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]},
        "status": {"podIP": "10.244.1.10"}
    }))
    .unwrap()
}

fn netpol(version: &str, port: i64) -> DynamicObject {
    serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "x", "resourceVersion": version},
        "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": port}]}]}
    }))
    .unwrap()
}

/// A view with every kind listed empty.
fn listed() -> View {
    let mut v = View::default();
    for kind in 0..WATCHED.len() {
        v.handle(kind, Ok(Event::Init));
        v.handle(kind, Ok(Event::InitDone));
    }
    assert!(v.complete());
    v
}

#[test]
fn a_relist_of_the_same_objects_changes_nothing_and_one_that_lost_an_object_does() {
    let mut v = listed();
    assert!(v.handle(POD, Ok(Event::Apply(pod("a", "1", "web")))));
    assert!(!v.handle(POD, Ok(Event::Apply(pod("a", "1", "web")))), "same resourceVersion");
    // A new resourceVersion that parses the same (a status field weir does not read).
    assert!(!v.handle(POD, Ok(Event::Apply(pod("a", "2", "web")))));
    v.handle(POD, Ok(Event::Init));
    assert!(!v.handle(POD, Ok(Event::InitApply(pod("a", "2", "web")))));
    assert!(!v.handle(POD, Ok(Event::InitDone)));
    v.handle(POD, Ok(Event::Init));
    assert!(v.handle(POD, Ok(Event::InitDone)), "a relist without the pod deletes it");
    assert!(v.cluster().pods.is_empty());
}

#[test]
fn a_rejected_edit_keeps_the_last_valid_version_and_names_object_and_field() {
    let mut v = listed();
    assert!(v.handle(NETPOL, Ok(Event::Apply(netpol("1", 80)))));
    assert!(v.handle(NETPOL, Ok(Event::Apply(netpol("2", 70000)))));
    let cluster = v.cluster();
    assert_eq!(cluster.policies.len(), 1, "the last valid version stays in force");
    let e = &cluster.errors[0];
    assert_eq!((e.source.as_str(), e.object.as_str()), ("kube:NetworkPolicy/x/p", "NetworkPolicy x/p"));
    assert!(e.field.starts_with("spec.ingress[0].ports[0]"), "{e}");
    assert!(v.handle(NETPOL, Ok(Event::Apply(netpol("3", 80)))), "fixed: the error goes");
    assert!(v.cluster().errors.is_empty());
}

#[test]
fn a_kind_the_api_server_does_not_serve_is_empty_and_reported_and_the_others_work() {
    let mut v = View::default();
    for kind in (0..WATCHED.len()).filter(|k| *k != ANP) {
        v.handle(kind, Ok(Event::Init));
        v.handle(kind, Ok(Event::InitDone));
    }
    assert!(!v.complete());
    let status = kube::core::Status { code: 404, message: "the server could not find the requested resource".into(), ..Default::default() };
    v.handle(ANP, Err(watcher::Error::InitialListFailed(kube::Error::Api(Box::new(status)))));
    assert!(v.complete());
    let warnings = v.warnings();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].starts_with("AdminNetworkPolicy (policy.networking.k8s.io/v1alpha1): not served"), "{warnings:?}");
    assert!(v.handle(POD, Ok(Event::Apply(pod("a", "1", "web")))));
}

#[test]
fn a_watch_expired_with_410_is_a_relist_not_a_warning_and_other_watch_errors_are() {
    let mut v = listed();
    assert!(v.handle(POD, Ok(Event::Apply(pod("a", "1", "web")))));
    let status = |code: u16, message: &str| Box::new(kube::core::Status { code, message: message.into(), ..Default::default() });
    v.handle(POD, Err(watcher::Error::WatchError(status(410, "too old resource version: 237 (238)"))));
    assert!(v.warnings().is_empty(), "{:?}", v.warnings());
    assert_eq!(v.cluster().pods.len(), 1, "the objects held stay in force until the relist");
    v.handle(POD, Err(watcher::Error::WatchError(status(500, "etcd is unavailable"))));
    let warnings = v.warnings();
    assert!(warnings.len() == 1 && warnings[0].contains("etcd is unavailable") && warnings[0].contains("stay in force"), "{warnings:?}");
    v.handle(POD, Ok(Event::Init));
    assert!(v.warnings().is_empty(), "the next event clears it");
}

#[test]
fn an_error_source_names_its_watched_kind_and_object_and_reads_back() {
    for (kind, key) in [
        (&WATCHED[7], ObjectKey { namespace: None, name: "mirror-a".into() }),
        (&WATCHED[2], ObjectKey { namespace: Some("x".into()), name: "a".into() }),
    ] {
        let source = source_name(kind, &key);
        assert_eq!(object_of_source(&source), Some((kind, key)), "{source}");
    }
    assert_eq!(object_of_source("manifests/a.yaml"), None);
    assert_eq!(object_of_source("kube:Secret/x/y"), None, "not a watched kind");
}

fn sync_object(token: &str, expect: serde_json::Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "weir-sync", "namespace": "kube-system", "resourceVersion": "99"},
        "data": {"token": token, "expect": expect.to_string()}
    }))
    .unwrap()
}

#[test]
fn a_sync_token_waits_for_the_versions_it_expects_and_for_deletions() {
    use crate::kube_source::sync::{SyncObject, SyncState};
    let object: SyncObject = "kube-system/weir-sync".parse().unwrap();
    let mut v = listed();
    let mut sync = SyncState::default();
    v.handle(POD, Ok(Event::Apply(pod("a", "10", "web"))));
    // The token's event came before the policy's (watches of different kinds are not ordered).
    let expect = json!([
        {"kind": "Pod", "namespace": "x", "name": "a", "resourceVersion": "10"},
        {"kind": "NetworkPolicy", "namespace": "x", "name": "p", "resourceVersion": "12"},
        {"kind": "Pod", "namespace": "x", "name": "gone", "resourceVersion": null},
        {"kind": "ConfigMap", "namespace": "x", "name": "not-watched", "resourceVersion": "5"},
    ]);
    sync.handle(&object, Ok(Event::Apply(sync_object("t1", expect))));
    assert!(!sync.advance(&v) && sync.current().is_none(), "the policy is not in the view yet");
    v.handle(NETPOL, Ok(Event::Apply(netpol("11", 80))));
    assert!(!sync.advance(&v), "an older version of the policy is not enough");
    v.handle(NETPOL, Ok(Event::Apply(netpol("12", 80))));
    v.handle(POD, Ok(Event::Apply(pod("gone", "13", "web"))));
    assert!(!sync.advance(&v), "a pod expected deleted is still there");
    v.handle(POD, Ok(Event::Delete(pod("gone", "14", "web"))));
    assert!(sync.advance(&v));
    assert_eq!(sync.current().as_deref(), Some("t1"));
    // The same token again (a relist, another node's report in the ConfigMap) changes nothing.
    sync.handle(&object, Ok(Event::Apply(sync_object("t1", json!([])))));
    assert!(!sync.advance(&v));
}

/// The index in `WATCHED` of the kind named `name`.
fn index(name: &str) -> usize {
    WATCHED.iter().position(|k| k.name == name).unwrap_or_else(|| panic!("{name} is not watched"))
}

fn antrea_policy(name: &str, version: &str, tier: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "metadata": {"name": name, "resourceVersion": version},
        "spec": {"priority": 5, "tier": tier, "appliedTo": [{"nodeSelector": {}}], "ingress": [{"action": "Drop"}]}
    }))
    .unwrap()
}

#[test]
fn antrea_kinds_of_both_groups_arrive_named_by_group_and_antreas_wins_a_duplicate() {
    let mut v = listed();
    let (antrea, weir) = (index("ClusterNetworkPolicy.crd.antrea.io"), index("ClusterNetworkPolicy.weir.io"));
    assert!(v.handle(antrea, Ok(Event::Apply(antrea_policy("node-deny", "5", "securityops")))));
    assert!(v.handle(weir, Ok(Event::Apply(antrea_policy("node-deny", "6", "application")))));
    let cluster = v.cluster();
    assert_eq!(cluster.cluster_policies.len(), 1);
    assert_eq!(cluster.cluster_policies.values().next().unwrap().antrea_tier.as_deref(), Some("securityops"));
    let e = &cluster.errors[0];
    assert_eq!(e.source, "kube:ClusterNetworkPolicy.weir.io/node-deny", "{e}");
    assert!(e.message.starts_with("duplicate ClusterNetworkPolicy.crd.antrea.io node-deny: already defined in kube:ClusterNetworkPolicy.crd.antrea.io/node-deny"), "{e}");
    assert_eq!(object_of_source(&e.source), Some((&WATCHED[weir], ObjectKey { namespace: None, name: "node-deny".into() })));
    assert!(v.handle(weir, Ok(Event::Delete(antrea_policy("node-deny", "6", "application")))));
    assert!(v.cluster().errors.is_empty());
}

#[test]
fn a_bad_external_node_is_named_by_object_and_field_and_the_good_one_stays() {
    let mut v = listed();
    let kind = index("ExternalNode.crd.antrea.io");
    let node = |name: &str, ips: serde_json::Value| -> DynamicObject {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "vms", "resourceVersion": "7", "labels": {"role": "db"}},
            "spec": {"interfaces": [{"name": "eth0", "ips": ips}]}
        }))
        .unwrap()
    };
    assert!(v.handle(kind, Ok(Event::Apply(node("vm1", json!(["192.0.2.10"]))))));
    assert!(v.handle(kind, Ok(Event::Apply(node("vm2", json!([]))))));
    let cluster = v.cluster();
    assert_eq!(cluster.external_entities.len(), 1, "vm1's interface");
    let e = &cluster.errors[0];
    assert_eq!((e.source.as_str(), e.object.as_str()), ("kube:ExternalNode.crd.antrea.io/vms/vm2", "ExternalNode vms/vm2"), "{e}");
    assert_eq!(e.field, "spec.interfaces[0].ips", "{e}");
}

#[test]
fn a_sync_token_names_an_antrea_kind_by_its_api_version() {
    use crate::kube_source::sync::{SyncObject, SyncState};
    let object: SyncObject = "kube-system/weir-sync".parse().unwrap();
    let mut v = listed();
    let mut sync = SyncState::default();
    let expect = json!([{"apiVersion": "weir.io/v1alpha1", "kind": "ClusterNetworkPolicy", "name": "node-deny", "resourceVersion": "8"}]);
    sync.handle(&object, Ok(Event::Apply(sync_object("t2", expect))));
    v.handle(index("ClusterNetworkPolicy.crd.antrea.io"), Ok(Event::Apply(antrea_policy("node-deny", "8", "application"))));
    assert!(!sync.advance(&v), "the same name in the other group is another object");
    v.handle(index("ClusterNetworkPolicy.weir.io"), Ok(Event::Apply(antrea_policy("node-deny", "8", "application"))));
    assert!(sync.advance(&v));
    assert_eq!(sync.current().as_deref(), Some("t2"));
}
