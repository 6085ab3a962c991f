//! Parsed manifests per file, and what each file keeps in force.
//!
//! A file is parsed again only when its text changed (YAML parsing is most of the cost of a
//! big directory). A file that cannot be read or used (not text, a document that is not YAML
//! or cannot be identified: see [`policy::manifest::file`]) keeps its last good content in
//! force, as if the edit had not happened, and is reported; a file that was never good
//! contributes only its errors (and fail-closed policies). An object whose edit is rejected
//! keeps its last valid version from the same file. A deleted file is forgotten: deletion is
//! intentional.

use crate::source::Snapshot;
use policy::Cluster;
use policy::manifest::Manifests;
use policy::manifest::file::{BrokenFile, parse_file};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each file's last read and what it keeps in force.
#[derive(Debug, Default)]
pub struct ManifestCache {
    files: BTreeMap<PathBuf, FileState>,
}

#[derive(Debug)]
struct FileState {
    /// The text last read, or why it could not be read: an equal read is not parsed again.
    read: Result<String, String>,
    in_force: InForce,
}

/// What one file contributes to the cluster view.
#[derive(Debug)]
enum InForce {
    /// Its current text, parsed.
    Good(Manifests),
    /// Its current text cannot be used: its last good content (if any) with the reasons.
    Broken { last_good: Option<Manifests>, contribution: Manifests },
}

impl InForce {
    /// Reads `read` (the text of `path`, or why it could not be read) against what the file
    /// kept in force until now.
    fn of(path: &Path, read: Result<&str, &str>, last_good: Option<Manifests>) -> InForce {
        let source = path.to_string_lossy();
        let parsed = match read {
            Ok(text) => parse_file(&source, text),
            Err(why) => Err(BrokenFile::unreadable(&source, why)),
        };
        match (parsed, last_good) {
            (Ok(mut m), last) => {
                if let Some(last) = &last {
                    m.keep_last_valid(last);
                }
                InForce::Good(m)
            }
            (Err(broken), Some(last)) => InForce::Broken { contribution: broken.over(&last), last_good: Some(last) },
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

impl ManifestCache {
    /// The cluster view of `snapshot`. For a fresh cache it equals [`Cluster::from_sources`]
    /// of the snapshot's files (with each unreadable file reported).
    pub fn cluster(&mut self, snapshot: &Snapshot) -> Cluster {
        let mut kept = BTreeMap::new();
        let mut merged = Manifests::default();
        for (path, read) in snapshot.entries() {
            let state = match self.files.remove(path) {
                Some(state) if state.read.as_deref().map_err(String::as_str) == read => state,
                previous => FileState {
                    read: read.map(str::to_string).map_err(str::to_string),
                    in_force: InForce::of(path, read, previous.and_then(|p| p.in_force.last_good())),
                },
            };
            merged.append(state.in_force.contribution().clone());
            kept.insert(path.clone(), state);
        }
        self.files = kept;
        Cluster::from_manifests(merged)
    }

    /// How many files are cached.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether no file is cached.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD_A: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {app: a}}\nstatus: {podIP: 10.0.0.1}\n";
    const POD_B: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: x}\nstatus: {podIP: 10.0.0.2}\n";
    const BAD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: c, namespace: x}\nstatus: {podIP: not-an-ip}\n";
    /// x/a accepts only x/b.
    const POLICY: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: only-b, namespace: x}\nspec:\n  podSelector: {matchLabels: {app: a}}\n  ingress:\n  - from:\n    - podSelector: {matchLabels: {app: b}}\n";

    fn snapshot(files: &[(&str, &str)]) -> Snapshot {
        Snapshot { files: files.iter().map(|(p, t)| (PathBuf::from(p), t.to_string())).collect(), ..Snapshot::default() }
    }

    fn direct(files: &[(&str, &str)]) -> Cluster {
        Cluster::from_sources(files.iter().copied())
    }

    fn policy_names(c: &Cluster) -> Vec<String> {
        c.policies.keys().map(|(ns, n)| format!("{ns}/{n}")).collect()
    }

    fn errors(c: &Cluster) -> Vec<String> {
        c.errors.iter().map(ToString::to_string).collect()
    }

    /// A cache that has seen pods.yaml and a good policy.yaml.
    fn with_good_policy() -> ManifestCache {
        let mut cache = ManifestCache::default();
        let view = cache.cluster(&snapshot(&[("pods.yaml", &format!("{POD_A}---\n{POD_B}")), ("policy.yaml", POLICY)]));
        assert_eq!(policy_names(&view), ["x/only-b"]);
        cache
    }

    fn pods() -> String {
        format!("{POD_A}---\n{POD_B}")
    }

    #[test]
    fn the_cached_view_equals_parsing_every_file_including_errors() {
        let files = [("a.yaml", POD_A), ("b.yaml", POD_B), ("bad.yaml", BAD), ("broken.yaml", "kind: [")];
        let mut cache = ManifestCache::default();
        assert_eq!(cache.cluster(&snapshot(&files)), direct(&files));
        assert_eq!(cache.cluster(&snapshot(&files)), direct(&files), "second time, from the cache");
    }

    #[test]
    fn an_edited_file_is_parsed_again_and_a_removed_one_forgotten() {
        let mut cache = ManifestCache::default();
        cache.cluster(&snapshot(&[("a.yaml", POD_A), ("b.yaml", POD_B)]));
        let edited = POD_A.replace("app: a", "app: z");
        let files = [("a.yaml", edited.as_str())];
        let view = cache.cluster(&snapshot(&files));
        assert_eq!(view, direct(&files));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_truncated_policy_file_keeps_its_policy_in_force_and_names_file_document_and_line() {
        let mut cache = with_good_policy();
        let cut = &POLICY[..POLICY.find("{matchLabels: {app: b").unwrap() + 10];
        let view = cache.cluster(&snapshot(&[("pods.yaml", &pods()), ("policy.yaml", cut)]));
        assert_eq!(policy_names(&view), ["x/only-b"], "the policy stays");
        assert_eq!(view.policies, with_good_policy().cluster(&snapshot(&[("pods.yaml", &pods()), ("policy.yaml", POLICY)])).policies);
        assert_eq!(errors(&view).len(), 1);
        assert!(
            errors(&view)[0].starts_with("policy.yaml: document 1 (line 8): not valid YAML: "),
            "{:?}",
            errors(&view)
        );
        assert!(errors(&view)[0].ends_with("its last good version stays in force until it is fixed"));
    }

    #[test]
    fn a_file_of_binary_bytes_keeps_its_last_good_content_and_the_rest_flows() {
        let mut cache = with_good_policy();
        let snap = Snapshot {
            files: vec![(PathBuf::from("pods.yaml"), POD_A.to_string())],
            unreadable: vec![(PathBuf::from("policy.yaml"), "not UTF-8 text (invalid byte at offset 0)".to_string())],
            ..Snapshot::default()
        };
        let view = cache.cluster(&snap);
        assert_eq!(policy_names(&view), ["x/only-b"]);
        assert_eq!(view.pods.len(), 1, "pods.yaml's edit (x/b removed) is taken");
        assert_eq!(
            errors(&view),
            ["policy.yaml: not UTF-8 text (invalid byte at offset 0); its last good version stays in force until it is fixed"]
        );
    }

    #[test]
    fn a_fixed_file_is_used_again_and_its_error_goes() {
        let mut cache = with_good_policy();
        cache.cluster(&snapshot(&[("pods.yaml", &pods()), ("policy.yaml", "garbage: [")]));
        let fixed = POLICY.replace("app: b", "app: c");
        let view = cache.cluster(&snapshot(&[("pods.yaml", &pods()), ("policy.yaml", &fixed)]));
        assert!(errors(&view).is_empty(), "{:?}", errors(&view));
        let from = &view.policies[&("x".to_string(), "only-b".to_string())].ingress[0].peers;
        assert!(format!("{from:?}").contains("\"c\""), "the fixed text is in force: {from:?}");
    }

    #[test]
    fn a_deleted_file_is_removed_even_if_its_last_text_was_broken() {
        let mut cache = with_good_policy();
        cache.cluster(&snapshot(&[("pods.yaml", &pods()), ("policy.yaml", "garbage: [")]));
        let view = cache.cluster(&snapshot(&[("pods.yaml", &pods())]));
        assert!(view.policies.is_empty());
        assert!(view.errors.is_empty());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_file_that_was_never_good_contributes_only_its_error_and_fails_closed() {
        let mut cache = ManifestCache::default();
        let broken = format!("{POLICY}---\nkind: [\n");
        let view = cache.cluster(&snapshot(&[("pods.yaml", &pods()), ("new.yaml", &broken)]));
        assert!(view.policies.is_empty());
        assert_eq!(view.rejected_policies.len(), 1, "x/a is isolated by the policy the file names");
        assert_eq!(errors(&view).len(), 1);
        assert!(errors(&view)[0].starts_with("new.yaml: document 2 (line 10): not valid YAML"), "{:?}", errors(&view));
    }

    #[test]
    fn an_unknown_kind_keeps_the_files_last_good_content_and_names_the_object() {
        let mut cache = with_good_policy();
        let typo = POLICY.replace("kind: NetworkPolicy", "kind: NetworkPolicyy");
        let view = cache.cluster(&snapshot(&[("pods.yaml", &pods()), ("policy.yaml", &typo)]));
        assert_eq!(policy_names(&view), ["x/only-b"]);
        assert_eq!(view.errors[0].source, "policy.yaml");
        assert_eq!((view.errors[0].object.as_str(), view.errors[0].field.as_str()), ("NetworkPolicyy x/only-b", "kind"));
    }

    #[test]
    fn a_policy_whose_edit_is_invalid_keeps_its_last_valid_version() {
        let mut cache = with_good_policy();
        let invalid = POLICY.replace("ingress:", "ingress:\n  - ports: [{port: 0}]");
        let view = cache.cluster(&snapshot(&[("pods.yaml", &pods()), ("policy.yaml", &invalid)]));
        assert_eq!(policy_names(&view), ["x/only-b"]);
        assert!(view.rejected_policies.is_empty());
        assert_eq!(view.errors[0].object, "NetworkPolicy x/only-b");
        assert!(view.errors[0].message.ends_with("its last valid version stays in force"), "{}", view.errors[0]);
        // Still invalid after a second edit: the same last valid version.
        let invalid2 = invalid.replace("port: 0", "port: -1");
        let view2 = cache.cluster(&snapshot(&[("pods.yaml", &pods()), ("policy.yaml", &invalid2)]));
        assert_eq!(view2.policies, view.policies);
    }

    #[test]
    fn an_unchanged_broken_file_is_not_parsed_again_and_keeps_reporting() {
        let mut cache = with_good_policy();
        let files = [("pods.yaml", pods()), ("policy.yaml", "garbage: [".to_string())];
        let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
        let first = cache.cluster(&snapshot(&files));
        let again = cache.cluster(&snapshot(&files));
        assert_eq!(first, again);
        assert_eq!(policy_names(&again), ["x/only-b"]);
    }
}
