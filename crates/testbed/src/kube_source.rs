//! The agents' source in cluster mode (`weir testbed up --kube`): a real kube-apiserver (with
//! etcd) on the first node, holding the testbed's Namespaces, Nodes and Pods and whatever is
//! applied. The testbed plays kubelet: it creates each pod's network namespace, attaches it
//! through weir-cni and then writes the pod's `status.podIP`. The agents read the API server
//! with a kubeconfig (`weir agent --kubeconfig`).
//!
//! Every write goes through `kubectl` with server-side apply. A sync writes a token into the
//! ConfigMap [`SYNC_NAMESPACE`]/[`SYNC_NAME`] together with every object the testbed wrote and
//! its resourceVersion (or null: deleted); each agent attaches the token to the first view
//! that holds those objects at those versions, and once it has realized that view reports the
//! token back in the same ConfigMap (`realized.<node>`). The testbed waits for those keys, so
//! it learns from the API server, not from a file, that every agent enforces what it wrote.

use crate::command::{run, run_with_input};
use crate::error::Error;
use crate::kube::{KubeApi, KubeRecord, Place};
use crate::manifests::{self, cluster_objects, manifest_files};
use crate::ovs::wait_until;
use crate::state::{AgentHost, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The namespace of the sync ConfigMap (one the API server creates itself).
pub const SYNC_NAMESPACE: &str = "kube-system";
/// The sync ConfigMap.
pub const SYNC_NAME: &str = "weir-sync";
/// The field manager of the objects' specs (and of the sync token).
const MANAGER: &str = "weir-testbed";
/// The field manager of namespace and pod labels, so a label change removes what it drops.
const LABELS_MANAGER: &str = "weir-testbed-labels";
/// The field manager of what kubelet would write: pod and node status.
const KUBELET_MANAGER: &str = "weir-testbed-kubelet";
/// Where the API server's PKI, logs and kubeconfig go, in the state directory.
const KUBE_DIR: &str = "kube";

/// The CRDs of the kinds weir reads, as `deploy/crds/` and `testbed/antrea-crds/` hold them
/// (installed at `up`).
const CRDS: [&str; 14] = [
    include_str!("../../../deploy/crds/policy.networking.k8s.io_adminnetworkpolicies.yaml"),
    include_str!("../../../deploy/crds/policy.networking.k8s.io_baselineadminnetworkpolicies.yaml"),
    include_str!("../../../deploy/crds/policy.networking.k8s.io_clusternetworkpolicies.yaml"),
    include_str!("../../../deploy/crds/weir.io_trafficcontrols.yaml"),
    include_str!("../../../deploy/crds/weir.io_clusternetworkpolicies.yaml"),
    include_str!("../../../deploy/crds/weir.io_tiers.yaml"),
    include_str!("../../../deploy/crds/weir.io_clustergroups.yaml"),
    include_str!("../../../deploy/crds/weir.io_externalnodes.yaml"),
    include_str!("../../../deploy/crds/weir.io_externalentities.yaml"),
    // Stand-ins for Antrea's CRDs, so `crd.antrea.io` objects apply as on a cluster with Antrea.
    include_str!("../../../testbed/antrea-crds/crd.antrea.io_clusternetworkpolicies.yaml"),
    include_str!("../../../testbed/antrea-crds/crd.antrea.io_tiers.yaml"),
    include_str!("../../../testbed/antrea-crds/crd.antrea.io_clustergroups.yaml"),
    include_str!("../../../testbed/antrea-crds/crd.antrea.io_externalnodes.yaml"),
    include_str!("../../../testbed/antrea-crds/crd.antrea.io_externalentities.yaml"),
];

/// An object the testbed wrote.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Its apiVersion.
    pub api_version: String,
    /// Its kind.
    pub kind: String,
    /// Its namespace (none: cluster-scoped).
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

impl ObjectRef {
    fn of(object: &Value) -> Option<ObjectRef> {
        let text = |v: &Value| v.as_str().map(str::to_string);
        Some(ObjectRef {
            api_version: text(&object["apiVersion"])?,
            kind: text(&object["kind"])?,
            namespace: text(&object["metadata"]["namespace"]),
            name: text(&object["metadata"]["name"])?,
        })
    }

    /// Its kind as `kubectl get` names it unambiguously: `kind.version.group` (`kind` in the
    /// core group).
    fn kubectl_type(&self) -> String {
        match self.api_version.split_once('/') {
            Some((group, version)) => format!("{}.{version}.{group}", self.kind.to_lowercase()),
            None => self.kind.to_lowercase(),
        }
    }

    /// The object with nothing but its identity, as `kubectl -f` takes it.
    fn stub(&self) -> Value {
        let mut metadata = json!({"name": self.name});
        if let Some(ns) = &self.namespace {
            metadata["namespace"] = json!(ns);
        }
        json!({"apiVersion": self.api_version, "kind": self.kind, "metadata": metadata})
    }
}

/// Starts the API server in the first node's namespace, on its underlay address (agents on
/// every node reach it there), unless the state records a live one; installs the CRDs.
pub fn start_api(state: &mut State, progress: &mut dyn FnMut(&str)) -> Result<(), Error> {
    if state.kube.as_ref().is_some_and(|k| k.apiserver.alive() && k.etcd.alive()) {
        return Ok(());
    }
    let node = &state.nodes[0];
    progress(&format!("{}: kube-apiserver and etcd on {}", node.name, node.underlay_ip));
    let place = Place { netns: Some(node.netns.clone()), address: node.underlay_ip };
    // Recorded before anything else can fail, so `down` stops it.
    state.kube = Some(KubeApi::start_at(&state.dir.join(KUBE_DIR), place)?.detach()?);
    state.save()?;
    let api = record(state)?;
    install_crds(|| api.kubectl())
}

/// Installs the CRDs of every kind weir reads through `kubectl()` (a command with the API
/// server's kubeconfig) and waits until the API server serves them.
pub fn install_crds(kubectl: impl Fn() -> Command) -> Result<(), Error> {
    let crds = CRDS.join("\n---\n");
    run_with_input(kubectl().args(["apply", "--server-side", "--field-manager", MANAGER, "-f", "-"]), &crds)?;
    run(kubectl().args(["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"]))?;
    Ok(())
}

/// The API server of a testbed in cluster mode.
pub fn record(state: &State) -> Result<&KubeRecord, Error> {
    state.kube.as_ref().ok_or_else(|| Error::invalid("testbed", "kube", "this testbed runs in file mode (no --kube)"))
}

/// `kubectl` with the admin kubeconfig, inside the API server's namespace.
pub fn kubectl(state: &State) -> Result<Command, Error> {
    Ok(record(state)?.kubectl())
}

/// The agent's source arguments in cluster mode.
pub fn agent_source_args(record: &KubeRecord) -> Vec<String> {
    vec!["--kubeconfig".into(), record.kubeconfig.display().to_string(), "--sync-configmap".into(), format!("{SYNC_NAMESPACE}/{SYNC_NAME}")]
}

/// Server-side applies `objects` under `manager` (to `subresource`, if any); returns what the
/// API server answered, object by object.
fn apply_objects(state: &State, manager: &str, subresource: Option<&str>, objects: Vec<Value>) -> Result<Vec<Value>, Error> {
    if objects.is_empty() {
        return Ok(Vec::new());
    }
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    let mut cmd = kubectl(state)?;
    cmd.args(["apply", "--server-side", "--force-conflicts", "--field-manager", manager, "-o", "json", "-f", "-"]);
    if let Some(sub) = subresource {
        cmd.arg(format!("--subresource={sub}"));
    }
    items(&run_with_input(&mut cmd, &list.to_string())?)
}

/// The objects of kubectl's JSON output: a List's items, or the one object.
fn items(text: &str) -> Result<Vec<Value>, Error> {
    let value: Value = serde_json::from_str(text).map_err(|e| Error::invalid("kubectl output", "(json)", e.to_string()))?;
    Ok(match value.get("items").and_then(Value::as_array) {
        Some(items) => items.clone(),
        None if value.is_object() => vec![value],
        None => Vec::new(),
    })
}

/// The testbed's objects as the API server gets them: pods without status (kubelet's part),
/// namespaces, pods and VMs' ExternalNodes without labels (see [`write_labels`]); then the
/// nodes' status.
pub fn create_cluster(state: &State) -> Result<(), Error> {
    let mut objects = cluster_objects(state);
    let mut node_status = Vec::new();
    for o in &mut objects {
        let map = o.as_object_mut().expect("cluster objects are objects");
        match map["kind"].as_str() {
            Some("Node") => node_status.push(status_part(map)),
            Some(kind) if LABELLED.contains(&kind) => {
                map.remove("status");
                map["metadata"].as_object_mut().expect("metadata").remove("labels");
            }
            _ => {}
        }
    }
    // Namespaces before pods: one List is applied in order.
    objects.sort_by_key(|o| o["kind"] != "Namespace");
    apply_objects(state, MANAGER, None, objects)?;
    apply_objects(state, KUBELET_MANAGER, Some("status"), node_status)?;
    write_labels(state)
}

/// An object's identity and status only, removed from `map`.
fn status_part(map: &mut serde_json::Map<String, Value>) -> Value {
    let status = map.remove("status").unwrap_or_default();
    json!({"apiVersion": map["apiVersion"], "kind": map["kind"], "metadata": {"name": map["metadata"]["name"], "namespace": map["metadata"].get("namespace")}, "status": status})
}

/// Writes `status.podIP` (and phase Running) of the pods `which` selects, as kubelet does once
/// the network plugin has attached them.
pub fn write_pod_status(state: &State, which: impl Fn(&crate::state::PodState) -> bool) -> Result<(), Error> {
    let wanted: Vec<String> = state.pods.iter().filter(|p| which(p)).map(|p| p.key()).collect();
    let status: Vec<Value> = cluster_objects(state)
        .into_iter()
        .filter(|o| o["kind"] == "Pod")
        .filter(|o| {
            wanted.contains(&format!(
                "{}/{}",
                o["metadata"]["namespace"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap_or("")
            ))
        })
        .map(|mut o| status_part(o.as_object_mut().expect("an object")))
        .collect();
    apply_objects(state, KUBELET_MANAGER, Some("status"), status).map(drop)
}

/// The kinds whose labels conformance steps change, written by [`write_labels`] alone.
const LABELLED: [&str; 3] = ["Namespace", "Pod", "ExternalNode"];

/// The labels of every namespace, pod and VM's ExternalNode, as the state has them, under
/// their own field manager (a label dropped from the state is removed).
pub fn write_labels(state: &State) -> Result<(), Error> {
    let objects: Vec<Value> = cluster_objects(state)
        .into_iter()
        .filter(|o| o["kind"].as_str().is_some_and(|k| LABELLED.contains(&k)))
        .map(|o| {
            let mut metadata = json!({"name": o["metadata"]["name"], "labels": o["metadata"]["labels"]});
            if let Some(ns) = o["metadata"].get("namespace") {
                metadata["namespace"] = ns.clone();
            }
            let mut labelled = json!({"apiVersion": o["apiVersion"], "kind": o["kind"], "metadata": metadata});
            // An ExternalNode's schema requires its spec: the same spec, owned by both managers.
            if let Some(spec) = o.get("spec").filter(|_| o["kind"] == "ExternalNode") {
                labelled["spec"] = spec.clone();
            }
            labelled
        })
        .collect();
    apply_objects(state, LABELS_MANAGER, None, objects).map(drop)
}

/// Applies the manifest files named by `paths` through the API server; objects an earlier
/// apply of the same file name made that the file no longer holds are deleted. Returns the
/// file names and the objects deleted.
pub fn apply(state: &State, paths: &[PathBuf]) -> Result<(Vec<String>, Vec<ObjectRef>), Error> {
    let mut record = Applied::load(state)?;
    let mut files = Vec::new();
    for p in paths {
        files.extend(manifest_files(p)?);
    }
    let (mut names, mut deleted) = (Vec::new(), Vec::new());
    for file in &files {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
        let applied = if has_content(&text) {
            let mut cmd = kubectl(state)?;
            cmd.args(["apply", "--server-side", "--force-conflicts", "--field-manager", MANAGER, "-o", "json", "-f"]).arg(file);
            items(&run(&mut cmd)?)?.iter().filter_map(ObjectRef::of).collect()
        } else {
            Vec::new()
        };
        let before = record.files.insert(name.clone(), applied.clone()).unwrap_or_default();
        let gone: Vec<ObjectRef> = before.into_iter().filter(|r| !applied.contains(r)).collect();
        delete_objects(state, &gone)?;
        deleted.extend(gone);
        names.push(name);
        record.save(state)?;
    }
    Ok((names, deleted))
}

/// Deletes what earlier applies of the file names of `paths` made. Returns the names that
/// were applied and the objects deleted.
pub fn delete(state: &State, paths: &[PathBuf]) -> Result<(Vec<String>, Vec<ObjectRef>), Error> {
    let mut record = Applied::load(state)?;
    let (mut names, mut deleted) = (Vec::new(), Vec::new());
    for p in paths {
        let files = if p.is_dir() { manifest_files(p)? } else { vec![p.clone()] };
        for file in files {
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            if let Some(objects) = record.files.remove(&name) {
                delete_objects(state, &objects)?;
                record.save(state)?;
                deleted.extend(objects);
                names.push(name);
            }
        }
    }
    Ok((names, deleted))
}

/// What each applied file name made, kept in the API server's directory (`applied.json`).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Applied {
    files: BTreeMap<String, Vec<ObjectRef>>,
}

impl Applied {
    fn path(state: &State) -> Result<PathBuf, Error> {
        Ok(record(state)?.dir.join("applied.json"))
    }

    fn load(state: &State) -> Result<Applied, Error> {
        let path = Applied::path(state)?;
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::invalid(path.display().to_string(), "(json)", e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Applied::default()),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    fn save(&self, state: &State) -> Result<(), Error> {
        let path = Applied::path(state)?;
        manifests::write_atomic(&path, &serde_json::to_vec(self).expect("serializable"))
    }
}

/// Whether a manifest file holds anything but comments and document markers (kubectl refuses
/// to apply a file without objects; here it means "none", as in file mode).
fn has_content(text: &str) -> bool {
    text.lines().map(str::trim).any(|l| !l.is_empty() && !l.starts_with('#') && l != "---" && l != "...")
}

fn delete_objects(state: &State, objects: &[ObjectRef]) -> Result<(), Error> {
    if objects.is_empty() {
        return Ok(());
    }
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects.iter().map(ObjectRef::stub).collect::<Vec<_>>()});
    run_with_input(kubectl(state)?.args(["delete", "--ignore-not-found", "--wait=false", "-f", "-"]), &list.to_string())
        .map(drop)
        .map_err(Error::from)
}

/// Every object the testbed wrote (and `deleted`), with its resourceVersion now (none: gone).
fn expectations(state: &State, deleted: &[ObjectRef]) -> Result<Vec<Value>, Error> {
    let mut refs: Vec<ObjectRef> = cluster_objects(state).iter().filter_map(ObjectRef::of).collect();
    refs.extend(Applied::load(state)?.files.into_values().flatten());
    refs.extend(deleted.iter().cloned());
    refs.sort();
    refs.dedup();
    // One list per kind (a get per object takes seconds for a thousand pods).
    let mut kinds: Vec<String> = refs.iter().map(ObjectRef::kubectl_type).collect();
    kinds.dedup();
    let text = run(kubectl(state)?.args(["get", "--all-namespaces", "-o", "json", &kinds.join(",")]))?;
    let mut versions: BTreeMap<ObjectRef, String> = BTreeMap::new();
    for item in items(&text)? {
        if let (Some(r), Some(v)) = (ObjectRef::of(&item), item["metadata"]["resourceVersion"].as_str()) {
            versions.insert(r, v.to_string());
        }
    }
    Ok(refs.iter().map(|r| json!({"apiVersion": r.api_version, "kind": r.kind, "namespace": r.namespace, "name": r.name, "resourceVersion": versions.get(r)})).collect())
}

/// Writes a fresh token with what the agents must hold (see the module doc) and waits until
/// every agent reports it realized in the ConfigMap, failing early if an agent has died.
pub fn sync(state: &State, deleted: &[ObjectRef], timeout: Duration) -> Result<(), Error> {
    let token = manifests::new_token();
    let expect = serde_json::to_string(&expectations(state, deleted)?).expect("JSON values serialize");
    let object = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": SYNC_NAME, "namespace": SYNC_NAMESPACE},
        "data": {"token": token, "expect": expect},
    });
    apply_objects(state, MANAGER, None, vec![object])?;
    let start = Instant::now();
    let mut died = None;
    let hosts = state.agent_hosts();
    let mut lagging = Vec::new();
    let done = wait_until(timeout, || {
        let Ok(realized) = realized_tokens(state) else { return false };
        lagging = hosts.iter().filter(|h| realized.get(h.agent_name) != Some(&token)).collect::<Vec<_>>();
        died = lagging.iter().find(|h| !h.agent.is_some_and(|a| a.alive())).map(|h| agent_died(h));
        lagging.is_empty() || died.is_some()
    });
    if let Some(e) = died {
        return Err(e);
    }
    if done.is_err() {
        let names: Vec<&str> = lagging.iter().map(|n| n.name.as_str()).collect();
        return Err(Error::Timeout {
            what: format!("the agents of {} to report sync token {token} in ConfigMap {SYNC_NAMESPACE}/{SYNC_NAME}", names.join(", ")),
            seconds: start.elapsed().as_secs_f64(),
        });
    }
    Ok(())
}

/// The token each agent reported, by the name it runs as (a node's, a VM's ExternalNode's).
fn realized_tokens(state: &State) -> Result<BTreeMap<String, String>, Error> {
    let text = run(kubectl(state)?.args(["get", "configmap", "-n", SYNC_NAMESPACE, SYNC_NAME, "-o", "json"]))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| Error::invalid("kubectl output", "(json)", e.to_string()))?;
    let data = value["data"].as_object().cloned().unwrap_or_default();
    Ok(data.iter().filter_map(|(k, v)| Some((k.strip_prefix("realized.")?.to_string(), v.as_str()?.to_string()))).collect())
}

fn agent_died(host: &AgentHost) -> Error {
    let log = host.dir.join("agent.log");
    Error::Died { what: format!("the agent of {}", host.name), tail: crate::process::log_tail(&log, 10), log }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_of_comments_and_markers_holds_no_objects() {
        assert!(!has_content("# policies of the current step\n---\n\n...\n"));
        assert!(has_content("---\napiVersion: v1\n"));
    }

    #[test]
    fn every_crd_of_deploy_and_every_antrea_stand_in_is_installed() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let dirs = [root.join("deploy/crds"), root.join("testbed/antrea-crds")];
        let files: Vec<String> =
            dirs.iter().flat_map(|d| std::fs::read_dir(d).unwrap()).map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap()).collect();
        assert_eq!(files.len(), CRDS.len());
        assert!(files.iter().all(|f| CRDS.contains(&f.as_str())));
    }

    #[test]
    fn kinds_are_named_for_kubectl_with_version_and_group() {
        let r = |api_version: &str, kind: &str| ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: None,
            name: "n".into(),
        };
        assert_eq!(r("networking.k8s.io/v1", "NetworkPolicy").kubectl_type(), "networkpolicy.v1.networking.k8s.io");
        assert_eq!(
            r("policy.networking.k8s.io/v1alpha1", "AdminNetworkPolicy").kubectl_type(),
            "adminnetworkpolicy.v1alpha1.policy.networking.k8s.io"
        );
        assert_eq!(r("v1", "Pod").kubectl_type(), "pod");
    }

    #[test]
    fn kubectl_output_is_a_list_or_one_object_and_never_panics() {
        let one = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "x"}});
        assert_eq!(items(&one.to_string()).unwrap().len(), 1);
        let list = json!({"kind": "List", "items": [one.clone(), one]});
        assert_eq!(items(&list.to_string()).unwrap().len(), 2);
        assert!(items("not json").unwrap_err().to_string().contains("kubectl output"));
        assert_eq!(ObjectRef::of(&json!({"kind": "Pod"})), None, "no identity, no reference");
    }
}
