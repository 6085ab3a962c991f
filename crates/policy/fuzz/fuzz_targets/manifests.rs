//! The whole file-mode path of the agent on any bytes: manifest files (YAML text) → objects →
//! the cluster view → rules → the oracle's verdicts, never panics, and bad input never removes
//! protection from what the view holds.
//!
//! Input: up to [`MAX_EDITS`] file versions, separated by lines that are exactly `#~` (a YAML
//! comment, so a plain manifest is one version of one file). Version i is written to file
//! slot i % 3 (`a.yaml`, `b.yaml`, `c.yaml`); the first three make the first snapshot, each
//! later one is an edit and a new snapshot. An empty version deletes its file, bytes that are
//! not UTF-8 are an unreadable file. Each snapshot goes through a copy of the agent's
//! manifest cache (crates/agent/src/manifest_cache.rs: `parse_file`, `keep_last_valid`,
//! `BrokenFile::over` / `alone`), then `Cluster::from_parts` as the agent builds its view, and
//! the view is checked:
//! - a good file's parse reads back equal from JSON (the agent's manifest store keeps it);
//! - `from_parts` equals `from_manifests` of the parts appended; when every file is good,
//!   the view reads back equal through `to_stored` / `from_stored` (the stored view a
//!   restarted agent uses);
//! - the first snapshot's view equals `Cluster::from_sources` (what `weir compile` reads;
//!   for inputs up to 4 KiB);
//! - errors and verdicts serialize (status file, `weir policy explain -o json`);
//! - `rules()`: ids unique, sorted; each policy's `policy_rules` are among them;
//! - fail closed, checked apart from the rules code: every pod a valid or rejected
//!   NetworkPolicy selects is isolated in each of its directions, and every isolation names a
//!   policy of the view;
//! - `concrete()` and `traffic_control_plan()` (what the pipeline compiles);
//! - `evaluate` on pairs of pods and an outside address: traffic between addresses that are
//!   no pod passes; an isolated pod gets nothing from (or sends nothing to) an outside address
//!   that no rule of it can match (no `Any` peers, in no block);
//! - a broken edit of a file keeps the view's objects of the file's last good version.
#![no_main]

use libfuzzer_sys::fuzz_target;
use policy::manifest::Manifests;
use policy::manifest::file::{BrokenFile, parse_file};
use policy::{Cluster, Direction, Endpoint, Packet, Peers, Protocol, evaluate};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

const MAX_EDITS: usize = 8;
/// Inputs up to this size are parsed a second time for the `from_sources` check (parsing is
/// most of the cost of an input).
const FROM_SOURCES_MAX: usize = 4096;
const SLOTS: [&str; 3] = ["a.yaml", "b.yaml", "c.yaml"];
/// Addresses from TEST-NET-1, used as "outside" when no pod has them.
const OUTSIDE: [IpAddr; 2] = [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2))];

/// What one file keeps in force (the agent's `InForce`).
enum InForce {
    Good(Manifests),
    Broken { last_good: Option<Manifests>, contribution: Manifests },
}

impl InForce {
    fn of(source: &str, read: Result<&str, &str>, last_good: Option<Manifests>) -> InForce {
        let parsed = match read {
            Ok(text) => parse_file(source, text),
            Err(why) => Err(BrokenFile::unreadable(source, why)),
        };
        match (parsed, last_good) {
            (Ok(mut m), last) => {
                if let Some(last) = &last {
                    m.keep_last_valid(last);
                }
                // What the agent's manifest store keeps of a good file, read back.
                let stored = serde_json::to_vec(&m).expect("parsed manifests serialize");
                let back: Manifests = serde_json::from_slice(&stored).expect("stored manifests read back");
                assert_eq!(back, m, "{source}: the stored parse reads back equal");
                InForce::Good(m)
            }
            (Err(broken), Some(last)) => {
                let contribution = broken.over(&last);
                assert_eq!(contribution.objects, last.objects, "{source}: a broken edit keeps the last good objects");
                assert_eq!(contribution.rejected_policies, last.rejected_policies);
                InForce::Broken { contribution, last_good: Some(last) }
            }
            (Err(broken), None) => InForce::Broken { contribution: broken.alone(), last_good: None },
        }
    }

    fn contribution(&self) -> &Manifests {
        match self {
            InForce::Good(m) => m,
            InForce::Broken { contribution, .. } => contribution,
        }
    }

    fn last_good(self) -> Option<Manifests> {
        match self {
            InForce::Good(m) => Some(m),
            InForce::Broken { last_good, .. } => last_good,
        }
    }
}

/// The input's file versions.
fn versions(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut line_start = 0;
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' {
            if &data[line_start..i] == b"#~" {
                out.push(&data[start..line_start]);
                start = i + 1;
                if out.len() == MAX_EDITS - 1 {
                    break;
                }
            }
            line_start = i + 1;
        }
    }
    out.push(&data[start..]);
    out
}

fn read(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 text (invalid byte at offset {})", e.valid_up_to()))
}

fn check(cluster: &Cluster, seed: u8) {
    for e in &cluster.errors {
        let _ = e.to_string();
    }
    serde_json::to_vec(&cluster.errors).expect("the errors serialize");

    let rules = cluster.rules();
    let ids: BTreeSet<_> = rules.rules.iter().map(|r| &r.id).collect();
    assert_eq!(ids.len(), rules.rules.len(), "rule ids are unique");
    assert!(rules.rules.windows(2).all(|w| (w[0].tier, w[0].priority, &w[0].id) <= (w[1].tier, w[1].priority, &w[1].id)));
    for p in cluster.policies.values() {
        let own = cluster.policy_rules(p);
        for r in &own.rules {
            assert_eq!(rules.get(&r.id), Some(r), "policy_rules of {}/{} are the view's", p.namespace, p.name);
        }
    }

    // Fail closed, from the selectors themselves.
    let known: BTreeSet<(String, String)> = cluster
        .policies
        .keys()
        .cloned()
        .chain(cluster.rejected_policies.iter().map(|r| (r.namespace.clone(), r.name.clone())))
        .collect();
    let selecting = cluster
        .policies
        .values()
        .map(|p| (&p.namespace, Some(&p.pod_selector), &p.policy_types))
        .chain(cluster.rejected_policies.iter().map(|r| (&r.namespace, r.selector.as_ref(), &r.directions)));
    for (namespace, selector, directions) in selecting {
        for pod in cluster.pods.values() {
            if pod.host_network || &pod.key.namespace != namespace || !selector.is_none_or(|s| s.matches(&pod.labels)) {
                continue;
            }
            for d in directions {
                assert!(rules.isolated.contains(*d, &Endpoint::Pod(pod.key.clone())), "{} {:?} is isolated", pod.key, d);
            }
        }
    }
    for d in [Direction::Ingress, Direction::Egress] {
        for by in rules.isolated.get(d).values().flatten() {
            let key = (by.namespace.clone().unwrap_or_default(), by.name.clone());
            assert!(known.contains(&key), "isolation by {by} names a policy of the view");
        }
    }

    let _ = rules.concrete(cluster);
    let _ = cluster.traffic_control_plan();

    // The oracle.
    let outside: Vec<IpAddr> = OUTSIDE.iter().copied().filter(|ip| cluster.pod_by_ip(*ip).is_none()).collect();
    let protocol = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp][usize::from(seed % 3)];
    let port = match seed >> 2 {
        0 => 0,
        1..=32 => 80,
        n => u16::from(n) * 257,
    };
    if let [a, b, ..] = outside.as_slice() {
        let v = evaluate(cluster, &rules, &Packet { src: *a, dst: *b, protocol, dst_port: port });
        assert!(v.allowed, "no pod on either side: {v}");
    }
    let pods: Vec<(&policy::Pod, IpAddr)> =
        cluster.policy_pods().filter_map(|p| p.ips.first().map(|ip| (p, *ip))).take(5).collect();
    for (src, src_ip) in &pods {
        for (_, dst_ip) in &pods {
            let v = evaluate(cluster, &rules, &Packet { src: *src_ip, dst: *dst_ip, protocol, dst_port: port });
            let _ = v.to_string();
            serde_json::to_vec(&v).expect("a verdict serializes");
            assert_eq!(v.allowed, v.egress.allows() && v.ingress.allows());
        }
        let Some(&out) = outside.first() else { continue };
        for d in [Direction::Ingress, Direction::Egress] {
            let me = Endpoint::Pod(src.key.clone());
            if !rules.isolated.contains(d, &me) {
                continue;
            }
            let reachable = rules.direction(d).any(|r| {
                r.applied_to.contains(&me)
                    && match &r.peers {
                        Peers::Any => true,
                        Peers::Set { blocks, .. } => blocks.iter().any(|b| b.contains(out)),
                    }
            });
            if reachable {
                continue;
            }
            let packet = match d {
                Direction::Ingress => Packet { src: out, dst: *src_ip, protocol, dst_port: port },
                Direction::Egress => Packet { src: *src_ip, dst: out, protocol, dst_port: port },
            };
            let v = evaluate(cluster, &rules, &packet);
            assert!(!v.allowed, "{} is isolated for {d:?} and no rule matches {out}: {v}", src.key);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let seed = data.iter().fold(0u8, |a, b| a.wrapping_add(*b));
    let mut files: BTreeMap<&str, (Vec<u8>, InForce)> = BTreeMap::new();
    let versions = versions(data);
    let first = versions.len().min(SLOTS.len());
    for (i, version) in versions.iter().enumerate() {
        let slot = SLOTS[i % SLOTS.len()];
        let previous = files.remove(slot);
        if !version.is_empty() {
            let last_good = previous.and_then(|(_, f)| f.last_good());
            let in_force = match read(version) {
                Ok(text) => InForce::of(slot, Ok(text), last_good),
                Err(why) => InForce::of(slot, Err(&why), last_good),
            };
            files.insert(slot, (version.to_vec(), in_force));
        }
        if i + 1 < first {
            continue;
        }
        let mut merged = Manifests::default();
        for (_, f) in files.values() {
            merged.append(f.contribution().clone());
        }
        let parts: Vec<&Manifests> = files.values().map(|(_, f)| f.contribution()).collect();
        let view = Cluster::from_parts(&parts);
        assert_eq!(view, Cluster::from_manifests(merged), "from_parts is from_manifests of the parts appended");
        if files.values().all(|(_, f)| matches!(f, InForce::Good(_))) {
            // The agent stores such a view and a restarted agent reads it back.
            let stored = view.to_stored().expect("the view serializes");
            assert_eq!(Cluster::from_stored(&stored).as_ref(), Ok(&view), "the stored view reads back equal");
        }
        if i + 1 == first && data.len() <= FROM_SOURCES_MAX {
            // Fresh: the cache's view is that of parsing every file (unreadable ones aside).
            let texts: Vec<(&str, &str)> =
                files.iter().filter_map(|(slot, (bytes, _))| std::str::from_utf8(bytes).ok().map(|t| (*slot, t))).collect();
            if texts.len() == files.len() {
                assert_eq!(view, Cluster::from_sources(texts), "the fresh cache's view is from_sources");
            }
        }
        check(&view, seed);
    }
});
