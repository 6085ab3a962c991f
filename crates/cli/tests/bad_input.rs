//! Bad input on a live testbed: rejected objects are reported with object and field, every
//! other object stays enforced, the agents keep running, and a policy that cannot be realized
//! fails closed for the pods it selects, also when its file holds a document that is not YAML
//! (the file is then not used, but the policies it names still isolate their pods).

mod common;

use common::Running;
use std::time::Duration;
use testbed::Tunnel;

#[test]
fn a_bad_policy_is_reported_fails_closed_and_leaves_the_others_enforced() {
    let r = Running::up('b', Tunnel::Geneve);
    let good = r.tmp.path().join("good.yaml");
    std::fs::write(
        &good,
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: only-from-y, namespace: z}\nspec:\n  podSelector: {}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}]}]\n",
    )
    .unwrap();
    let bad = r.tmp.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: broken, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [192.168.0.0/16]}}]}]\n---\nthis: [is not, valid\n",
    )
    .unwrap();
    let (_, report) = r.tb.apply(&[good, bad], Duration::from_secs(30)).unwrap();
    for (node, status) in report.unwrap() {
        let fields: Vec<String> = status.errors.iter().map(|e| format!("{}: {}", e.object, e.field)).collect();
        assert!(
            fields.iter().any(|f| f.contains("NetworkPolicy x/broken") && f.contains("except")),
            "{node}: the bad except is reported with object and field: {fields:?}"
        );
        assert!(
            status.errors.iter().any(|e| e.source.ends_with("bad.yaml") && e.object == "document 2 (line 8)"),
            "{node}: the unparsable document is reported with its file, document and line: {:?}",
            status.errors
        );
    }
    // The good policy is enforced...
    assert!(r.tcp_allowed("y/a", "z/a"));
    assert!(!r.tcp_allowed("x/b", "z/a"));
    // ...the pod the broken policy selects fails closed for ingress...
    assert!(!r.tcp_allowed("y/a", "x/a"));
    // ...and everything else is untouched.
    assert!(r.tcp_allowed("y/a", "x/b"));
    for node in r.tb.nodes() {
        assert!(node.agent.as_ref().is_some_and(|a| testbed::ovs::process_alive(a.pid)), "{} agent runs", node.name);
    }
}

/// `weir compile` on a directory holding good files, a file of binary bytes and a truncated
/// policy file: the flows of the good files on stdout, each bad file named on stderr, exit 3.
#[test]
fn weir_compile_names_each_bad_file_compiles_the_others_and_exits_3() {
    const CLUSTER: &str = "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nspec: {podCIDR: 10.244.1.0/24}\nstatus: {addresses: [{type: InternalIP, address: 192.168.7.1}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {pod: a}}\nspec: {nodeName: n1}\nstatus: {podIP: 10.244.1.10}\n";
    const POLICY: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}}]}]\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster.yaml"), CLUSTER).unwrap();
    std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
    let compile = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["compile", "--cluster", dir.path().to_str().unwrap(), "--node", "n1"])
            .output()
            .unwrap()
    };
    let good = compile();
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));

    std::fs::write(dir.path().join("blob.yaml"), [0x7f, b'E', b'L', b'F', 0xff, 0xfe]).unwrap();
    std::fs::write(dir.path().join("half.yaml"), &POLICY[..POLICY.find("{matchLabels").unwrap() + 5]).unwrap();
    let bad = compile();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(3), "{stderr}");
    assert_eq!(bad.stdout, good.stdout, "the good files compile as before");
    let blob = format!("rejected: {}: not UTF-8 text (invalid byte at offset 4)", dir.path().join("blob.yaml").display());
    let half = format!("rejected: {}: document 1 (line 5): not valid YAML", dir.path().join("half.yaml").display());
    assert!(stderr.contains(&blob) && stderr.contains(&half), "each bad file is named:\n{stderr}");
    assert!(stderr.contains("2 error(s) in 2 file(s)"), "{stderr}");
}
