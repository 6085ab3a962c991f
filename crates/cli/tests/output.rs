//! How `weir` behaves as one stage of a shell pipeline.
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

#[test]
fn a_reader_that_stops_early_ends_weir_quietly_without_a_panic() {
    let cases = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/netpol");
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["policy", "conformance"])
        .arg(&cases)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("PASS"), "{first}");
    // The reader is gone (as `head -1` exits): weir's next writes meet a closed pipe.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success() || out.status.signal() == Some(libc::SIGPIPE), "{:?}: {stderr}", out.status);
}


/// A manifests directory: namespace x with pods a (10.0.0.1) and b (10.0.0.2), and a policy
/// that lets only b reach a.
fn cluster() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {app: a}}\nstatus: {podIP: 10.0.0.1}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: x, labels: {app: b}}\nstatus: {podIP: 10.0.0.2}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: only-b, namespace: x}\nspec: {podSelector: {matchLabels: {app: a}}, ingress: [{from: [{podSelector: {matchLabels: {app: b}}}]}]}\n";
    std::fs::write(dir.path().join("cluster.yaml"), text).unwrap();
    dir
}

/// `weir policy explain` of x/b → x/a on `port`, printed as `format` asks.
fn explain(dir: &std::path::Path, port: &str, format: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["policy", "explain", "--cluster"])
        .arg(dir)
        .args(["x/b", "x/a", port])
        .args(format)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_format_prints_the_same_verdict() {
    let dir = cluster();
    let table = explain(dir.path(), "80/TCP", &[]);
    assert!(table.contains("ALLOWED") && table.contains("NetworkPolicy x/only-b"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&explain(dir.path(), "80/TCP", &["-o", "json"])).unwrap();
    assert_eq!(json["verdict"]["allowed"], true);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&explain(dir.path(), "80/TCP", &["-j"])).unwrap(), json, "-j is -o json");
    let yaml: serde_json::Value = serde_saphyr::from_str(&explain(dir.path(), "80/TCP", &["-o", "yaml"])).unwrap();
    assert_eq!(yaml, json, "yaml holds the same value");
}

#[test]
fn a_named_port_of_the_server_is_resolved_as_kubernetes_resolves_it() {
    let dir = cluster();
    let text = std::fs::read_to_string(dir.path().join("cluster.yaml")).unwrap().replace(
        "metadata: {name: a, namespace: x, labels: {app: a}}\n",
        "metadata: {name: a, namespace: x, labels: {app: a}}\nspec: {containers: [{name: s, ports: [{containerPort: 8080, name: web}, {containerPort: 53, protocol: UDP, name: dns}]}]}\n",
    );
    std::fs::write(dir.path().join("cluster.yaml"), text).unwrap();
    let first_line = |port: &str| explain(dir.path(), port, &[]).lines().next().unwrap_or_default().to_string();
    assert!(first_line("web").ends_with("8080/TCP"), "{}", first_line("web"));
    assert!(first_line("dns/UDP").ends_with("53/UDP"), "{}", first_line("dns/UDP"));
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["policy", "explain", "--cluster"])
        .arg(dir.path())
        .args(["x/b", "x/a", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither a port number nor a named port of pod x/a"));
}

#[test]
fn explain_takes_nodes_and_external_nodes_and_names_them_in_the_verdict() {
    let dir = cluster();
    let hosts = "---\napiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {role: worker}}\nstatus: {addresses: [{type: InternalIP, address: 192.168.0.1}]}\n---\napiVersion: crd.antrea.io/v1alpha1\nkind: ExternalNode\nmetadata: {name: vm1, namespace: vms, labels: {role: db}}\nspec: {interfaces: [{name: eth0, ips: [192.168.50.10]}]}\n---\napiVersion: crd.antrea.io/v1beta1\nkind: ClusterNetworkPolicy\nmetadata: {name: ssh}\nspec: {priority: 5, appliedTo: [{nodeSelector: {matchLabels: {role: worker}}}], ingress: [{action: Drop, name: no-ssh, ports: [{protocol: TCP, port: 22}]}]}\n";
    std::fs::write(dir.path().join("hosts.yaml"), hosts).unwrap();
    let run = |from: &str, to: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["policy", "explain", "--cluster"])
            .arg(dir.path())
            .args([from, to, "22"])
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
    };
    let (ok, text) = run("externalnode:vms/vm1", "node:n1");
    assert!(ok && text.starts_with("externalnode:vms/vm1 (192.168.50.10) -> node:n1 (192.168.0.1) 22/TCP\nDENIED"), "{text}");
    assert!(text.contains("ingress: denied by ClusterNetworkPolicy.crd.antrea.io ssh no-ssh"), "{text}");
    assert!(text.contains("egress:  allowed: no policy isolates externalentity vms/vm1-3e616"), "{text}");
    let (ok, text) = run("node:n1", "x/a");
    assert!(ok && text.contains("no policy isolates node n1"), "{text}");
    let (ok, text) = run("node:n9", "x/a");
    assert!(!ok && text.contains("no node n9 in the cluster"), "{text}");
    std::fs::write(dir.path().join("hosts.yaml"), hosts.replace("matchLabels: {role: worker}", "matchLabels: {role: gpu}")).unwrap();
    let (ok, text) = run("x/a", "node:n1");
    assert!(ok && text.contains("ALLOWED"), "{text}");
    assert!(text.contains("hosts.yaml: ClusterNetworkPolicy.crd.antrea.io ssh: spec.appliedTo[0].nodeSelector: selects no Node"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("warning: ")), "{text}");
}

/// `weir agent` that cannot reach OVSDB, with `args` before the subcommand: its stderr.
fn agent_without_ovsdb(global: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .env("WEIR_LOG", "debug")
        .args(global)
        .args(["agent", "--node", "n1", "--ovsdb", "unix:/nonexistent/db.sock", "--metrics-address", "off", "--manifests"])
        .arg(&manifests)
        .arg("--status-file")
        .arg(dir.path().join("status.json"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn log_format_json_writes_one_json_object_a_line_with_level_and_target() {
    let text = agent_without_ovsdb(&["--log-format", "json"]);
    let logs: Vec<serde_json::Value> = text.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!logs.is_empty(), "{text}");
    assert!(logs.iter().all(|l| l["level"].is_string() && l["target"].is_string() && l["fields"]["message"].is_string()), "{text}");
    // The error that ends the command is still said once, for people, and its OS error once.
    let error: Vec<&str> = text.lines().filter(|l| l.starts_with("weir: ")).collect();
    assert_eq!(error.len(), 1, "{text}");
    assert_eq!(error[0].matches("(os error 2)").count(), 1, "{}", error[0]);
    let plain = agent_without_ovsdb(&[]);
    assert!(plain.lines().all(|l| !l.starts_with('{')), "{plain}");
}

#[test]
fn a_metrics_address_that_is_not_host_port_is_refused_with_the_expected_form() {
    let out = Command::new(env!("CARGO_BIN_EXE_weir")).args(["agent", "--node", "n", "--metrics-address", "localhost"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--metrics-address") && err.contains("expected HOST:PORT (e.g. 127.0.0.1:9810) or `off`"), "{err}");
}
