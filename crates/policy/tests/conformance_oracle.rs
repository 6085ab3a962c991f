//! Every netpol conformance case passes through the oracle: the project's own folder
//! (`conformance/netpol` at the repository root) when it exists, else the shared sample.
use policy::conformance::Case;
use policy::conformance::runner::{OracleProber, Summary, run_case};
use std::path::{Path, PathBuf};

fn case_dir() -> PathBuf {
    let own = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/netpol");
    if own.is_dir() && std::fs::read_dir(&own).unwrap().any(|e| e.unwrap().path().extension().is_some_and(|x| x == "yaml")) {
        own
    } else {
        PathBuf::from("/work/shared/conformance/netpol")
    }
}

#[test]
fn every_netpol_case_passes_through_the_oracle() {
    let dir = case_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no cases in {}", dir.display());
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
    assert!(cells >= 80 * files.len(), "too few cells compared: {cells}");
}
