//! Faults of file mode on a live 2-node testbed, under continuous probes (one every 20 ms
//! from a denied and from an allowed pod to the protected pod): a policy file truncated in
//! place, a file of binary bytes followed by a new policy (and an agent restarted with it), the
//! manifests directory deleted and recreated, and an agent stopped with SIGSTOP. For each: no
//! denied probe ever succeeds, allowed traffic keeps flowing (the longest gap is measured and
//! bounded), the status tells the truth during the fault (naming the file and the object, the
//! directory, or "stale"), and everything heals without restarting the agent.
//!
//! Run with `--nocapture` to see the measured figures.

mod common;

use common::{Probes, Running};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use testbed::Tunnel;
use testbed::manifests::{AgentStatus, manifests_dir, read_status, status_file};

/// x/a accepts only pods of namespace y (file `policy.yaml`).
const POLICY: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: only-from-y, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {ns: y}}\n";
/// y/b accepts nobody (file `deny-y-b.yaml`): the change made during or after a fault.
const DENY_Y_B: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-b, namespace: y}\nspec:\n  podSelector: {matchLabels: {pod: b}}\n  policyTypes: [Ingress]\n";
const TARGET: &str = "x/a";
const DENIED: &str = "z/b";
const ALLOWED: &str = "y/a";

/// The longest allowed-traffic gap accepted during a fault that leaves the flows as they are
/// (measured: 0 ms, i.e. no failed probe; a lost SYN costs one probe).
const OUTAGE_BOUND: Duration = Duration::from_millis(200);
/// How long `weir testbed apply`-style syncs may take.
const SYNC: Duration = Duration::from_secs(20);

/// The denied and the allowed probe streams of one fault.
struct Watch {
    denied: Probes,
    allowed: Probes,
}

impl Watch {
    fn start(r: &Running) -> Watch {
        Watch { denied: Probes::start(r, DENIED, TARGET), allowed: Probes::start(r, ALLOWED, TARGET) }
    }

    /// Stops the probes and asserts what every fault must keep: no denied probe passed, and
    /// allowed traffic never stopped for more than `bound`. Returns the longest outage.
    fn finish(self, fault: &str, bound: Duration) -> Duration {
        let (denied, allowed) = (self.denied.stop(), self.allowed.stop());
        let outage = allowed.longest_outage();
        println!(
            "file_faults: {fault}: {} denied probes, {} passed; {} allowed probes, {} failed, longest outage {} ms",
            denied.0.len(),
            denied.passed(),
            allowed.0.len(),
            allowed.0.len() - allowed.passed(),
            outage.as_millis()
        );
        assert_eq!(denied.passed(), 0, "{fault}: a denied probe {DENIED} -> {TARGET} passed");
        assert!(denied.0.len() > 50 && allowed.0.len() > 50, "{fault}: too few probes to say anything");
        assert!(outage <= bound, "{fault}: allowed traffic {ALLOWED} -> {TARGET} stopped for {outage:?} (bound {bound:?})");
        outage
    }
}

/// A testbed with `policy.yaml` enforced, checked by probes before any fault.
fn protected(letter: char) -> Running {
    let r = Running::up(letter, Tunnel::Geneve);
    let policy = r.tmp.path().join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    r.tb.apply(&[policy], SYNC).unwrap();
    assert!(r.tcp_allowed(ALLOWED, TARGET) && !r.tcp_allowed(DENIED, TARGET), "the policy is enforced before the fault");
    assert!(r.tcp_allowed("z/a", "y/b"), "y/b is open before deny-y-b.yaml");
    r
}

fn dirs(r: &Running) -> Vec<PathBuf> {
    r.tb.nodes().iter().map(manifests_dir).collect()
}

/// Writes `text` to `name` in every node's manifests directory, in place (not atomically:
/// a fault may be a half-written file).
fn write_in_place(r: &Running, name: &str, bytes: &[u8]) {
    for dir in dirs(r) {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// Every node's status once the agents have realized a fresh sync token.
fn synced(r: &Running) -> Vec<(String, AgentStatus)> {
    r.tb.sync(SYNC).expect("the agents realize the current manifests")
}

/// Each error as `weir status` prints it: `file: object: field: message`, empty parts left out.
fn error_lines(status: &AgentStatus) -> Vec<String> {
    status.errors.iter().map(|e| policy::manifest::error_line(&e.source, &e.object, &e.field, &e.message)).collect()
}

/// Applies `path` to every node and returns how long until every agent's status reported it
/// realized; then waits for the datapaths' revalidation too, so probes see it.
fn apply_timed(r: &Running, path: &std::path::Path, timeout: Duration) -> Duration {
    let started = Instant::now();
    testbed::manifests::apply(r.tb.state(), &[path.to_path_buf()]).unwrap();
    let token = testbed::manifests::new_token();
    testbed::manifests::write_token(r.tb.state(), &token).unwrap();
    testbed::manifests::wait_synced(r.tb.state(), &token, timeout).expect("the agents realize the change");
    let realized = started.elapsed();
    synced(r);
    realized
}

/// `weir status` of a node: exit code and output.
fn weir_status(r: &Running, node: &str, extra: &[&str]) -> (i32, String) {
    let file = status_file(r.tb.node(node).unwrap());
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["status", "--status-file", file.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn a_policy_file_truncated_in_place_keeps_its_policy_and_is_named_in_the_status() {
    let r = protected('t');
    let watch = Watch::start(&r);
    std::thread::sleep(Duration::from_millis(500));
    // Cut mid-line inside the peer selector, as a writer killed mid-write leaves a file.
    let cut = &POLICY[..POLICY.find("{ns: y}").unwrap() + 3];
    write_in_place(&r, "policy.yaml", cut.as_bytes());
    for (node, status) in synced(&r) {
        let lines = error_lines(&status);
        assert!(
            lines.iter().any(|l| l.contains("policy.yaml: document 1 (line 8): not valid YAML")
                && l.ends_with("its last good version stays in force until it is fixed")),
            "{node}: the status names the file, document and line: {lines:?}"
        );
        assert_eq!(status.realized, Some(true), "{node}");
    }
    let (code, out) = weir_status(&r, "node-1", &[]);
    assert!(out.contains("policy.yaml: document 1 (line 8): not valid YAML"), "weir status:\n{out}");
    assert_eq!(code, 0, "fresh and realized:\n{out}");
    std::thread::sleep(Duration::from_secs(2));

    write_in_place(&r, "policy.yaml", POLICY.as_bytes());
    for (node, status) in synced(&r) {
        assert!(status.errors.is_empty(), "{node}: fixed, so no error: {:?}", error_lines(&status));
    }
    std::thread::sleep(Duration::from_millis(500));
    watch.finish("truncated policy file", OUTAGE_BOUND);
    assert!(r.tcp_allowed(ALLOWED, TARGET) && !r.tcp_allowed(DENIED, TARGET));
}

#[test]
fn a_binary_file_affects_only_itself_and_later_changes_are_realized() {
    let mut r = protected('u');
    let watch = Watch::start(&r);
    std::thread::sleep(Duration::from_millis(500));
    let mut blob = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    blob.extend((0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 | 0x80));
    write_in_place(&r, "blob.yaml", &blob);
    for (node, status) in synced(&r) {
        let lines = error_lines(&status);
        assert!(
            lines.iter().any(|l| l.contains("blob.yaml: not UTF-8 text (invalid byte at offset 8)")),
            "{node}: the status names the file: {lines:?}"
        );
    }

    // A new policy is realized while the binary file is there.
    let deny = r.tmp.path().join("deny-y-b.yaml");
    std::fs::write(&deny, DENY_Y_B).unwrap();
    let took = apply_timed(&r, &deny, SYNC);
    println!("file_faults: binary file: a new policy realized in {} ms", took.as_millis());
    assert!(!r.tcp_allowed("z/a", "y/b"), "deny-y-b.yaml is enforced");

    // An agent started with the binary file present writes its status and realizes.
    let node = r.tb.pod(TARGET).unwrap().node.clone();
    std::fs::remove_file(status_file(r.tb.node(&node).unwrap())).unwrap();
    r.tb.stop_agent(&node, Duration::from_secs(5)).unwrap();
    r.tb.start_agent(&node).unwrap();
    for (n, status) in synced(&r) {
        assert_eq!(status.realized, Some(true), "{n}");
        assert!(error_lines(&status).iter().any(|l| l.contains("blob.yaml")), "{n}: {:?}", error_lines(&status));
    }

    for dir in dirs(&r) {
        std::fs::remove_file(dir.join("blob.yaml")).unwrap();
    }
    for (node, status) in synced(&r) {
        assert!(status.errors.is_empty(), "{node}: {:?}", error_lines(&status));
    }
    watch.finish("binary file, new policy, agent restart", OUTAGE_BOUND);
    assert!(!r.tcp_allowed("z/a", "y/b"));
}

#[test]
fn a_deleted_and_recreated_manifests_directory_keeps_enforcing_and_is_watched_again_at_once() {
    let r = protected('v');
    let backup: Vec<Vec<(std::ffi::OsString, Vec<u8>)>> = dirs(&r)
        .iter()
        .map(|d| std::fs::read_dir(d).unwrap().map(|e| e.unwrap()).map(|e| (e.file_name(), std::fs::read(e.path()).unwrap())).collect())
        .collect();
    let watch = Watch::start(&r);
    std::thread::sleep(Duration::from_millis(500));
    for dir in dirs(&r) {
        std::fs::remove_dir_all(dir).unwrap();
    }
    // While it is missing: the last snapshot stays in force and the status says so.
    let deadline = Instant::now() + Duration::from_secs(5);
    for node in r.tb.nodes() {
        let dir = manifests_dir(node);
        loop {
            let warning = read_status(node).and_then(|s| s.source_warning);
            if warning.as_deref().is_some_and(|w| w.contains(dir.to_str().unwrap()) && w.contains("does not exist")) {
                assert!(warning.unwrap().ends_with("the last snapshot read stays in force"));
                break;
            }
            assert!(Instant::now() < deadline, "{}: no warning naming {} in the status", node.name, dir.display());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let (code, out) = weir_status(&r, "node-1", &[]);
    assert!(out.contains("does not exist: the last snapshot read stays in force"), "weir status:\n{out}");
    assert_eq!(code, 0, "still realized and alive:\n{out}");
    std::thread::sleep(Duration::from_secs(1));

    // Recreated the way config management does it: mkdir, then plain writes, then the token.
    let started = Instant::now();
    let token = testbed::manifests::new_token();
    for (dir, files) in dirs(&r).iter().zip(&backup) {
        std::fs::create_dir(dir).unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        std::fs::write(dir.join(testbed::manifests::SYNC_FILE), &token).unwrap();
    }
    for (node, status) in testbed::manifests::wait_synced(r.tb.state(), &token, SYNC).unwrap() {
        assert!(status.source_warning.is_none(), "{node}: {:?}", status.source_warning);
        assert!(status.errors.is_empty(), "{node}: {:?}", error_lines(&status));
    }
    println!("file_faults: recreated directory: read and realized {} ms after mkdir", started.elapsed().as_millis());

    // Changes in the new directory are seen at once, not at the 30 s rescan.
    let deny = r.tmp.path().join("deny-y-b.yaml");
    std::fs::write(&deny, DENY_Y_B).unwrap();
    // Realized well before the 30 s rescan.
    let took = apply_timed(&r, &deny, Duration::from_secs(5));
    println!("file_faults: recreated directory: next change realized in {} ms", took.as_millis());
    assert!(!r.tcp_allowed("z/a", "y/b"));
    watch.finish("deleted and recreated directory", OUTAGE_BOUND);
}

/// Continues a stopped process when dropped, so a failing test does not leave it stopped.
struct Stopped(i32);

impl Stopped {
    fn signal(pid: i32, signal: &str) {
        let ok = Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status().unwrap().success();
        assert!(ok, "kill -{signal} {pid}");
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        Self::signal(self.0, "CONT");
    }
}

#[test]
fn a_stopped_agent_is_reported_stale_and_fresh_again_once_continued() {
    let r = protected('w');
    let node = r.tb.pod(TARGET).unwrap().node.clone();
    let pid = r.tb.node(&node).unwrap().agent.unwrap().pid;
    let (code, out) = weir_status(&r, &node, &[]);
    assert_eq!(code, 0, "a live agent:\n{out}");
    assert!(out.contains("heartbeat: ") && !out.contains("STALE"), "{out}");

    let watch = Watch::start(&r);
    std::thread::sleep(Duration::from_millis(500));
    Stopped::signal(pid, "STOP");
    let stopped = Stopped(pid);
    let since = Instant::now();
    let heartbeat = read_status(r.tb.node(&node).unwrap()).unwrap().heartbeat_unix_ms;
    let (code, out) = loop {
        let (code, out) = weir_status(&r, &node, &[]);
        if code != 0 || since.elapsed() > Duration::from_secs(20) {
            break (code, out);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let detected = since.elapsed();
    assert_eq!(code, 3, "stale is exit code 3:\n{out}");
    assert!(out.contains("STALE"), "{out}");
    assert!(detected >= Duration::from_secs(8), "stale only past the 10 s threshold, said so after {detected:?}");
    assert_eq!(read_status(r.tb.node(&node).unwrap()).unwrap().heartbeat_unix_ms, heartbeat, "a stopped agent writes nothing");
    let (code, _) = weir_status(&r, &node, &["--stale-after", "60"]);
    assert_eq!(code, 0, "the threshold is a flag");
    println!("file_faults: SIGSTOP: weir status said stale {} ms after the stop", detected.as_millis());

    drop(stopped);
    let since = Instant::now();
    let (code, out) = loop {
        let (code, out) = weir_status(&r, &node, &[]);
        if code == 0 || since.elapsed() > Duration::from_secs(10) {
            break (code, out);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, 0, "fresh again after SIGCONT:\n{out}");
    println!("file_faults: SIGCONT: fresh again after {} ms", since.elapsed().as_millis());

    // The continued agent realizes changes again.
    let deny = r.tmp.path().join("deny-y-b.yaml");
    std::fs::write(&deny, DENY_Y_B).unwrap();
    r.tb.apply(std::slice::from_ref(&deny), SYNC).expect("the continued agent realizes a change");
    assert!(!r.tcp_allowed("z/a", "y/b"));
    watch.finish("SIGSTOP'd agent", OUTAGE_BOUND);
}
