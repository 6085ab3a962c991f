//! Every conformance case of the repository passes through the oracle: the whole upstream
//! NetworkPolicy suite (`conformance/netpol`) and both network-policy-api suites
//! (`conformance/anp`: AdminNetworkPolicy and BaselineAdminNetworkPolicy v1alpha1;
//! `conformance/cnp`: ClusterNetworkPolicy v1alpha2), and weir's own host-endpoint cases
//! (`conformance/node`: Node NetworkPolicy and ExternalNode policy).
use policy::conformance::Case;
use policy::conformance::runner::{OracleProber, Summary, run_case};
use std::path::{Path, PathBuf};

/// Runs every case of `suite`, which upstream has `tests` of; returns the cells compared.
fn suite_passes(suite: &str, tests: usize) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance").join(suite);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), tests, "the upstream suite has {tests} cases, {} has {}", dir.display(), files.len());
    let mut summary = Summary::default();
    let mut failures = String::new();
    let mut cells = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let case = Case::parse(&file.display().to_string(), &text).unwrap_or_else(|e| panic!("{e}"));
        let report = run_case(&case, &mut OracleProber::new());
        cells += report.cells;
        summary.add(&report);
        if !report.passed() {
            failures.push_str(&format!("FAIL {}\n{}", file.display(), report.render_failures()));
        }
    }
    eprintln!("{} cases from {}, {cells} cells: {summary}", files.len(), dir.display());
    assert!(summary.failed == 0, "{failures}{summary}");
    cells
}

#[test]
fn every_netpol_case_passes_through_the_oracle() {
    let cells = suite_passes("netpol", 48);
    assert!(cells >= 80 * 48, "too few cells compared: {cells}");
}

#[test]
fn every_admin_network_policy_case_passes_through_the_oracle() {
    // Upstream's release-0.1 suite: 24 tests, 289 probes.
    assert_eq!(suite_passes("anp", 24), 289);
}

#[test]
fn every_cluster_network_policy_case_passes_through_the_oracle() {
    // Upstream's v1alpha2 suite: 24 tests, 301 probes.
    assert_eq!(suite_passes("cnp", 24), 301);
}

#[test]
fn every_host_endpoint_case_passes_through_the_oracle() {
    // weir's own suite: 16 cases, 287 probes between pods, nodes and external nodes.
    assert_eq!(suite_passes("node", 16), 287);
}

const WRONG_CASE: &str = r#"
name: deliberately wrong
ignore_loopback: true
model:
  namespaces: {x: {ns: x}, y: {ns: y}}
  pods: {a: {pod: a}}
  ports: [80]
  protocols: [TCP]
steps:
  - step: 1
    model_updates: {namespaces: {y: {add_labels: {team: blue}}}}
    policies:
      - apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: from-blue, namespace: x}
        spec:
          podSelector: {}
          ingress: [{from: [{namespaceSelector: {matchLabels: {team: blue}}}, {ipBlock: {cidr: '{{hostcidr x/a}}'}}]}]
    probes:
      - port: 80
        protocol: TCP
        matrix:
          - "     x/a y/a"
          - "x/a   X   ."
          - "y/a   X   ."
"#;

#[test]
fn runner_reports_wrong_cells_but_not_the_ignored_diagonal() {
    let case = Case::parse("wrong.yaml", WRONG_CASE).unwrap();
    let report = run_case(&case, &mut OracleProber::new());
    assert!(!report.passed());
    let diffs = &report.steps[0].probes[0].diffs;
    // y/a reaches x/a (its namespace gained team=blue), so that cell is wrong; x/a → x/a is
    // wrong too but on the ignored diagonal.
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert_eq!((diffs[0].from.to_string(), diffs[0].to.to_string()), ("y/a".into(), "x/a".into()));
    assert_eq!(report.cells, 2);
    assert!(report.render_failures().contains("y/a -> x/a: expected X, got ."), "{}", report.render_failures());
}

#[test]
fn case_with_a_pod_outside_the_model_is_refused() {
    let text = WRONG_CASE.replace("\"y/a   X   .\"", "\"y/q   X   .\"").replace("x/a y/a\"", "x/a y/q\"");
    let e = Case::parse("bad.yaml", &text).unwrap_err();
    assert_eq!(e.field, "steps[0].probes[0].matrix");
}
