//! What the weir binary's end-to-end tests share: a 2-node testbed of the standard model with
//! weir's own agents and probe servers, torn down when dropped (also on panic).
#![allow(dead_code)]

pub mod scrape;
pub mod suite;
pub mod traffic;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use testbed::{Launcher, NodePolicy, Testbed, Tunnel, UpOptions};

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
        Running::up_with(letter, tunnel, &["agent"])
    }

    /// [`Running::up`] with agents started as `weir AGENT_ARGS...` (e.g. `["agent", "--rule-stats-interval", "0.2"]`).
    pub fn up_with(letter: char, tunnel: Tunnel, agent_args: &[&str]) -> Running {
        Running::start(letter, tunnel, weir(agent_args), false, NodePolicy::Nftables)
    }

    /// [`Running::up`] with the agents realizing node policy on OVS: each node's address on
    /// its uplink, which its agent moves onto br-int (`--node-policy ovs --external-interface`).
    pub fn up_node_policy_on_ovs(letter: char) -> Running {
        Running::start(letter, Tunnel::Geneve, weir(&["agent"]), false, NodePolicy::Ovs)
    }

    /// [`Running::up`] in cluster mode: a real API server on node-1 holds every object and
    /// the agents read it (`weir testbed up --kube`).
    /// The agents log what their Kubernetes source does (relists) at info.
    pub fn up_kube(letter: char) -> Running {
        let weir = env!("CARGO_BIN_EXE_weir");
        let agent = Launcher {
            program: PathBuf::from("/usr/bin/env"),
            args: vec!["WEIR_LOG=warn,agent::kube_source=info".into(), weir.into(), "agent".into()],
        };
        Running::start(letter, Tunnel::Geneve, agent, true, NodePolicy::Nftables)
    }

    fn start(letter: char, tunnel: Tunnel, agent: Launcher, kube: bool, node_policy: NodePolicy) -> Running {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let tmp = tempfile::tempdir().unwrap();
        let opts = UpOptions {
            model: standard_model(),
            nodes: 2,
            dir: tmp.path().join("state"),
            prefix: format!("{letter}{}{}", SEQ.fetch_add(1, Ordering::Relaxed), std::process::id() % 10000),
            tunnel,
            agent: Some(agent),
            server: weir(&["testbed", "serve"]),
            kube,
            node_policy,
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

/// Time between probe launches of [`Probes`].
pub const INTERVAL: std::time::Duration = std::time::Duration::from_millis(20);
/// How long one probe of [`Probes`] waits for the TCP handshake.
pub const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(150);

/// Probes (TCP 80) launched every [`INTERVAL`] from one pod to another, each on its own
/// thread (a dropped probe waits for its whole timeout), with the launch time of each.
pub struct Probes {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    launcher: std::thread::JoinHandle<Vec<(std::time::Instant, Result<bool, String>)>>,
}

impl Probes {
    /// Starts probing `to` from `from` (pod keys).
    pub fn start(r: &Running, from: &str, to: &str) -> Probes {
        use std::sync::atomic::Ordering;
        let (src, dst) = (r.tb.pod(from).unwrap().clone(), r.tb.pod(to).unwrap().ip);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let launcher = std::thread::spawn(move || {
            let (tx, rx) = std::sync::mpsc::channel();
            let mut launched = 0;
            while !flag.load(Ordering::Relaxed) {
                let (tx, netns, ip) = (tx.clone(), src.netns.clone(), src.ip);
                std::thread::Builder::new()
                    .stack_size(128 * 1024)
                    .spawn(move || {
                        let at = std::time::Instant::now();
                        let outcome = testbed::netns::enter_on_this_thread(&netns)
                            .and_then(|()| testbed::probe::probe_one(ip, dst, 80, policy::Protocol::Tcp, PROBE_TIMEOUT))
                            .map_err(|e| e.to_string());
                        let _ = tx.send((at, outcome));
                    })
                    .expect("probe thread");
                launched += 1;
                std::thread::sleep(INTERVAL);
            }
            let mut results: Vec<_> = rx.iter().take(launched).collect();
            results.sort_by_key(|(at, _)| *at);
            results
        });
        Probes { stop, launcher }
    }

    /// Stops probing; every probe's outcome by launch time (asserts that every probe ran).
    pub fn stop(self) -> Timeline {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let results = self.launcher.join().expect("probe launcher");
        let errors: Vec<&String> = results.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
        assert!(errors.is_empty(), "probes could not run: {errors:?}");
        Timeline(results.into_iter().map(|(at, r)| (at, r.unwrap_or(false))).collect())
    }
}

/// Probe outcomes by launch time.
pub struct Timeline(pub Vec<(std::time::Instant, bool)>);

impl Timeline {
    /// How many probes passed.
    pub fn passed(&self) -> usize {
        self.0.iter().filter(|(_, ok)| *ok).count()
    }

    /// The longest time from the launch of a failed probe to the launch of the next probe
    /// that succeeded (or the last probe).
    pub fn longest_outage(&self) -> std::time::Duration {
        let (mut longest, mut since) = (std::time::Duration::ZERO, None::<std::time::Instant>);
        for &(at, ok) in &self.0 {
            match (ok, since) {
                (false, None) => since = Some(at),
                (true, Some(s)) => {
                    longest = longest.max(at - s);
                    since = None;
                }
                _ => {}
            }
        }
        if let (Some(s), Some(&(last, _))) = (since, self.0.last()) {
            longest = longest.max(last - s + INTERVAL);
        }
        longest
    }
}
