//! Helpers shared by the testbed's end-to-end tests: unique prefixes, options, and a fake
//! agent that honours the agent contract's sync protocol (the real agent lives in another
//! crate and is tested there).
#![allow(dead_code)]
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use testbed::{Launcher, Tunnel, UpOptions};

/// A prefix no other test (or concurrent run) uses: a letter per test, then pid digits.
pub fn prefix(letter: char) -> String {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{letter}{}{}", n % 10, std::process::id() % 10000)
}

/// The probe server built with this crate.
pub fn server() -> Launcher {
    Launcher { program: PathBuf::from(env!("CARGO_BIN_EXE_weir-testbed-serve")), args: vec![] }
}

/// The repository's `testbed/standard.yaml`.
pub fn standard_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testbed/standard.yaml")
}

/// Writes a model file into `dir`.
pub fn write_model(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("model.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Options for a testbed under `tmp` (state dir `tmp/state`, which `up` creates).
pub fn options(letter: char, tmp: &Path, model: PathBuf, nodes: usize, agent: Option<Launcher>) -> UpOptions {
    UpOptions {
        model,
        nodes,
        dir: tmp.join("state"),
        prefix: prefix(letter),
        tunnel: Tunnel::Geneve,
        agent,
        server: server(),
        kube: false,
        node_policy: testbed::NodePolicy::Nftables,
    }
}

/// A fake agent (bash): on every new `.weir-sync` token it writes the status file by rename,
/// with one error per manifest named `bad*.yaml`.
pub fn fake_agent(dir: &Path) -> Launcher {
    let path = dir.join("fake-agent.sh");
    std::fs::write(
        &path,
        r#"#!/bin/bash
while [ $# -gt 0 ]; do
  case $1 in
    --node) node=$2; shift 2;;
    --manifests) m=$2; shift 2;;
    --status-file) st=$2; shift 2;;
    *) shift;;
  esac
done
gen=0; last=
while true; do
  tok=$(cat "$m/.weir-sync" 2>/dev/null)
  if [ -n "$tok" ] && [ "$tok" != "$last" ]; then
    gen=$((gen+1)); errs=
    for f in "$m"/bad*.yaml; do
      [ -e "$f" ] && errs="{\"object\":\"file $(basename "$f")\",\"field\":\"spec\",\"message\":\"fake rejection\"}"
    done
    n=$(ls "$m" | wc -l)
    printf '{"node":"%s","generation":%d,"source_token":"%s","errors":[%s],"flows":{"Classifier":%d}}' \
      "$node" "$gen" "$tok" "$errs" "$n" > "$st.tmp" && mv "$st.tmp" "$st"
    last=$tok
  fi
  sleep 0.02
done
"#,
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    Launcher { program: path, args: vec![] }
}

/// Runs a command and returns stdout, panicking with stderr on failure.
pub fn sh(args: &[&str]) -> String {
    let out = std::process::Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Network namespaces whose name starts with `prefix-`.
pub fn namespaces_with(prefix: &str) -> Vec<String> {
    sh(&["ip", "netns", "list"])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("{prefix}-")))
        .map(String::from)
        .collect()
}

/// Interfaces in this (the root) namespace whose name starts with `prefix-`.
pub fn root_links_with(prefix: &str) -> Vec<String> {
    sh(&["ip", "-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n.starts_with(&format!("{prefix}-")))
        .collect()
}

/// A testbed brought up for one test and torn down when the test ends, even by a panic.
/// Declare it after the `TempDir` holding its state, so it is dropped first.
pub struct Running {
    tb: testbed::Testbed,
}

impl Running {
    /// Brings the testbed up, panicking with the error if it fails.
    pub fn up(opts: &UpOptions) -> Self {
        match testbed::up(opts, &mut |_| {}) {
            Ok(tb) => Running { tb },
            Err(e) => {
                let _ = testbed::down(&opts.dir, &mut |_| {});
                panic!("up: {e}");
            }
        }
    }
}

impl std::ops::Deref for Running {
    type Target = testbed::Testbed;
    fn deref(&self) -> &testbed::Testbed {
        &self.tb
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = testbed::down(self.tb.dir(), &mut |_| {});
    }
}
