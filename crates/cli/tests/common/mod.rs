//! What the weir binary's end-to-end tests share: a 2-node testbed of the standard model with
//! weir's own agents and probe servers, torn down when dropped (also on panic).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use testbed::{Launcher, Testbed, Tunnel, UpOptions};

/// `weir ARGS...` as the testbed starts it.
pub fn weir(args: &[&str]) -> Launcher {
    Launcher { program: PathBuf::from(env!("CARGO_BIN_EXE_weir")), args: args.iter().map(|a| a.to_string()).collect() }
}

/// The repository's `testbed/standard.yaml` (x/y/z × a/b/c).
pub fn standard_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testbed/standard.yaml")
}

/// A testbed for one test.
pub struct Running {
    /// The testbed.
    pub tb: Testbed,
    /// Its state directory's parent, also free for the test's own files.
    pub tmp: tempfile::TempDir,
}

impl Running {
    /// A 2-node testbed with the standard model; `letter` makes the name prefix unique per
    /// test binary.
    pub fn up(letter: char, tunnel: Tunnel) -> Running {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let tmp = tempfile::tempdir().unwrap();
        let opts = UpOptions {
            model: standard_model(),
            nodes: 2,
            dir: tmp.path().join("state"),
            prefix: format!("{letter}{}{}", SEQ.fetch_add(1, Ordering::Relaxed), std::process::id() % 10000),
            tunnel,
            agent: Some(weir(&["agent"])),
            server: weir(&["testbed", "serve"]),
        };
        match testbed::up(&opts, &mut |_| {}) {
            Ok(tb) => Running { tb, tmp },
            Err(e) => {
                let _ = testbed::down(&opts.dir, &mut |_| {});
                panic!("testbed up: {e}");
            }
        }
    }

    /// `ovs-ofctl dump-flows --no-stats` of a node's br-int.
    pub fn dump(&self, node: &str) -> String {
        self.tb.switch(node).unwrap().ofctl("dump-flows", "br-int", &["--no-stats"]).unwrap()
    }

    /// Whether a TCP connection on port 80 from one pod to another succeeds.
    pub fn tcp_allowed(&self, from: &str, to: &str) -> bool {
        let spec = testbed::ProbeSpec { from: from.into(), to: to.into(), port: 80, protocol: policy::Protocol::Tcp };
        testbed::probe_all(&self.tb, &[spec]).unwrap()[0].allowed
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = testbed::down(self.tb.dir(), &mut |_| {});
    }
}
