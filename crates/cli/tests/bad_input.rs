//! Bad input on a live testbed: rejected objects are reported with object and field, every
//! other object stays enforced, the agents keep running, and a policy that cannot be realized
//! fails closed for the pods it selects.

use std::path::{Path, PathBuf};
use std::time::Duration;
use testbed::{Launcher, Testbed, Tunnel, UpOptions};

fn weir(args: &[&str]) -> Launcher {
    Launcher { program: PathBuf::from(env!("CARGO_BIN_EXE_weir")), args: args.iter().map(|a| a.to_string()).collect() }
}

struct Running {
    tb: Testbed,
    tmp: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = testbed::down(self.tb.dir(), &mut |_| {});
    }
}

fn up() -> Running {
    let tmp = tempfile::tempdir().unwrap();
    let opts = UpOptions {
        model: Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testbed/standard.yaml"),
        nodes: 2,
        dir: tmp.path().join("state"),
        prefix: format!("b{}", std::process::id() % 10000),
        tunnel: Tunnel::Geneve,
        agent: Some(weir(&["agent"])),
        server: weir(&["testbed", "serve"]),
    };
    let tb = testbed::up(&opts, &mut |_| {}).unwrap_or_else(|e| {
        let _ = testbed::down(&opts.dir, &mut |_| {});
        panic!("up: {e}")
    });
    Running { tb, tmp }
}

fn allowed(tb: &Testbed, from: &str, to: &str) -> bool {
    let spec = testbed::ProbeSpec { from: from.into(), to: to.into(), port: 80, protocol: policy::Protocol::Tcp };
    testbed::probe_all(tb, &[spec]).unwrap()[0].allowed
}

#[test]
fn a_bad_policy_is_reported_fails_closed_and_leaves_the_others_enforced() {
    let r = up();
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
        assert!(status.errors.len() >= 2, "{node}: the unparsable document is reported too: {fields:?}");
    }
    // The good policy is enforced...
    assert!(allowed(&r.tb, "y/a", "z/a"));
    assert!(!allowed(&r.tb, "x/b", "z/a"));
    // ...the pod the broken policy selects fails closed for ingress...
    assert!(!allowed(&r.tb, "y/a", "x/a"));
    // ...and everything else is untouched.
    assert!(allowed(&r.tb, "y/a", "x/b"));
    for node in r.tb.nodes() {
        assert!(node.agent.as_ref().is_some_and(|a| testbed::ovs::process_alive(a.pid)), "{} agent runs", node.name);
    }
}
