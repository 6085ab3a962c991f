//! The real API server of `testbed::kube`: started from the programs scripts/kube.sh installs,
//! used as the testbed will use it (kubectl plays kubelet: a pod bound with `spec.nodeName`, its
//! `status.podIP` patched through the status subresource), RBAC for a ServiceAccount token from
//! the TokenRequest API, and stopped by pid.
//!
//! Skips (saying why) only when the programs are not on PATH and `WEIR_REQUIRE_KUBE` is unset;
//! scripts/test.sh sets it, so CI cannot skip silently.
use std::time::Instant;
use testbed::command::{run, run_with_input};
use testbed::kube::{Binaries, KubeApi};

const NAMESPACE: &str = "weir-kube-test";
const POD_IP: &str = "10.244.1.10";

fn objects() -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NAMESPACE}}}\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata: {{name: a, namespace: {NAMESPACE}, labels: {{app: web}}}}\n\
         spec:\n  nodeName: node-1\n  containers: [{{name: c, image: example.invalid/none:0}}]\n---\n\
         apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: reader, namespace: {NAMESPACE}}}\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: pod-reader, namespace: {NAMESPACE}}}\n\
         rules: [{{apiGroups: [\"\"], resources: [pods], verbs: [get, list, watch]}}]\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: reader, namespace: {NAMESPACE}}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}}\n\
         subjects: [{{kind: ServiceAccount, name: reader, namespace: {NAMESPACE}}}]\n"
    )
}

/// `kubectl auth can-i` as the holder of `token`: "yes" or "no" (it exits 1 for "no").
fn can_i(api: &KubeApi, token: &str, verb: &str, resource: &str) -> String {
    let out =
        api.kubectl().args(["--token", token, "-n", NAMESPACE, "auth", "can-i", verb, resource]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn kubectl(api: &KubeApi, args: &[&str]) -> String {
    run(api.kubectl().args(args)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_real_api_server_serves_pods_status_patches_and_rbac_then_stops_by_pid() {
    if !Binaries::available_for_tests() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let api = KubeApi::start(tmp.path()).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("etcd + kube-apiserver ready at {} in {:.1} s", api.url(), started.elapsed().as_secs_f64());

    // The version ldflags of scripts/kube.sh, not v0.0.0-master.
    let version: serde_json::Value = serde_json::from_str(&kubectl(&api, &["get", "--raw=/version"])).unwrap();
    assert!(version["gitVersion"].as_str().is_some_and(|v| v.starts_with("v1.")), "server version {version}");

    run_with_input(api.kubectl().args(["apply", "-f", "-"]), &objects()).unwrap_or_else(|e| panic!("{e}"));
    // No kubelet: the testbed records the pod's address itself, through the status subresource.
    let status = format!(r#"{{"status":{{"phase":"Running","podIP":"{POD_IP}","podIPs":[{{"ip":"{POD_IP}"}}]}}}}"#);
    kubectl(&api, &["-n", NAMESPACE, "patch", "pod", "a", "--subresource=status", "--type=merge", "-p", &status]);

    assert_eq!(kubectl(&api, &["get", "namespace", NAMESPACE, "-o", "name"]).trim(), format!("namespace/{NAMESPACE}"));
    let pod = kubectl(&api, &["-n", NAMESPACE, "get", "pod", "a", "-o", "jsonpath={.spec.nodeName} {.status.podIP}"]);
    assert_eq!(pod, format!("node-1 {POD_IP}"));

    // A ServiceAccount token from the TokenRequest API authenticates as the ServiceAccount, and
    // RBAC allows it exactly its Role.
    let token = kubectl(&api, &["-n", NAMESPACE, "create", "token", "reader"]);
    let token = token.trim();
    let whoami = kubectl(&api, &["--token", token, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]);
    assert_eq!(whoami, format!("system:serviceaccount:{NAMESPACE}:reader"));
    assert_eq!(can_i(&api, token, "list", "pods"), "yes");
    assert_eq!(can_i(&api, token, "watch", "pods"), "yes");
    assert_eq!(can_i(&api, token, "list", "secrets"), "no");
    assert_eq!(can_i(&api, token, "patch", "pods/status"), "no");
    assert_eq!(can_i(&api, api.admin_token(), "patch", "pods/status"), "yes");

    let pids = api.pids();
    assert_eq!(pids.len(), 2, "kube-apiserver and etcd");
    let data = api.etcd_data_dir().expect("running").to_path_buf();
    api.stop();
    for pid in pids {
        assert!(!testbed::ovs::process_alive(pid), "pid {pid} still runs");
    }
    assert!(!data.exists(), "etcd's tmpfs dir {} removed", data.display());
}
