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

