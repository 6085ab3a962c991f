//! A conformance directory run by `weir testbed conformance` on a fresh testbed.
use std::path::{Path, PathBuf};
use std::process::Command;

/// `conformance/<name>` and how many cases (`.yaml` files) it holds.
pub fn cases(name: &str) -> (PathBuf, usize) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance").join(name);
    let n = std::fs::read_dir(&dir).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "yaml")).count();
    (dir, n)
}

/// Runs `weir testbed conformance ARGS... DIR` (or one case's file) on a fresh testbed and
/// asserts that all `n` cases passed; returns its stderr.
pub fn assert_all_pass(dir: &Path, n: usize, args: &[&str]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["testbed", "--dir"])
        .arg(tmp.path().join("tb"))
        .arg("conformance")
        .args(args)
        .arg(dir)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr).into_owned());
    let last = stdout.lines().last().unwrap_or("");
    assert_eq!(last, format!("{n} passed, 0 failed"), "{args:?}:\n{stdout}\n{stderr}");
    assert!(out.status.success(), "{args:?}");
    stderr
}
