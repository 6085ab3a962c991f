//! Parsed manifests per file, and what each file keeps in force.
//!
//! A file is parsed again only when its text changed (YAML parsing is most of the cost of a
//! big directory). A file that cannot be read or used (not text, a document that is not YAML
//! or cannot be identified: see [`policy::manifest::file`]) keeps its last good content in
//! force, as if the edit had not happened, and is reported; a file that was never good
//! contributes only its errors (and fail-closed policies). An object whose edit is rejected
//! keeps its last valid version from the same file. A deleted file is forgotten: deletion is
//! intentional.
//!
//! With a [`ManifestStore`] the same holds across agent restarts: each file's last good
//! content is persisted, and at start a file whose text is the stored one is taken from the
//! store without parsing (with every file so, the whole view is: it was stored too); a file
//! whose text changed while the agent was stopped is parsed with the stored version as its
//! last good one (so a file broken at restart keeps its last good version in force, fail
//! closed, as it would have without the restart); a file deleted meanwhile is forgotten. What
//! the store may be trusted with is in [`crate::manifest_store`].

use crate::manifest_store::{Entry, Loaded, ManifestStore, Parsed, ViewFiles};
use crate::source::Snapshot;
use policy::Cluster;
use policy::manifest::Manifests;
use policy::manifest::file::{BrokenFile, parse_file};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracing::{info, warn};

/// Each file's last read and what it keeps in force.
#[derive(Debug)]
pub struct ManifestCache {
    files: BTreeMap<PathBuf, FileState>,
    /// Where each file's last good content is persisted, if anywhere.
    store: Option<ManifestStore>,
    /// Whether the store's entries were read (at the first snapshot).
    started: bool,
    /// The generation of the next version of a file (see [`crate::manifest_store`]).
    next_generation: u64,
}

/// A cache with the store installed by `weir agent` ([`crate::manifest_store::install`]),
/// if any: the agent's cache persists; every other one (`weir compile`, tests) does not.
impl Default for ManifestCache {
    fn default() -> Self {
        ManifestCache::with_store(crate::manifest_store::take_installed())
    }
}

#[derive(Debug)]
struct FileState {
    /// The text last read, or why it could not be read: an equal read is not parsed again.
    read: Result<Arc<str>, String>,
    in_force: InForce,
    /// This version's generation.
    generation: u64,
}

/// What one file contributes to the cluster view.
#[derive(Debug)]
enum InForce {
    /// Its current text, parsed.
    Good(Arc<Manifests>),
    /// Its current text cannot be used: its last good content (if any) with the reasons.
    Broken { last_good: Option<Arc<Manifests>>, contribution: Manifests },
    /// Its current text is its stored entry's, whose content (in force through the stored
    /// view) is read from the store when it is needed ([`ManifestCache::resolve_stored`]).
    Stored,
}

impl InForce {
    /// Reads `read` (the text of `path`, or why it could not be read) against what the file
    /// kept in force until now.
    fn of(path: &Path, read: Result<&str, &str>, last_good: Option<Arc<Manifests>>) -> InForce {
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
                InForce::Good(Arc::new(m))
            }
            (Err(broken), Some(last)) => InForce::Broken { contribution: broken.over(&last), last_good: Some(last) },
            (Err(broken), None) => InForce::Broken { contribution: broken.alone(), last_good: None },
        }
    }

    /// What the file contributes; `None` only for [`InForce::Stored`], resolved before use.
    fn contribution(&self) -> Option<&Manifests> {
        match self {
            InForce::Good(m) => Some(m),
            InForce::Broken { contribution, .. } => Some(contribution),
            InForce::Stored => None,
        }
    }

    fn last_good(self) -> Option<Arc<Manifests>> {
        match self {
            InForce::Good(m) => Some(m),
            InForce::Broken { last_good, .. } => last_good,
            InForce::Stored => None,
        }
    }
}

impl ManifestCache {
    /// A cache that persists each file's last good content in `store` (none: in memory only).
    pub fn with_store(store: Option<ManifestStore>) -> ManifestCache {
        // Generations name versions across restarts: start from the time and the process.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let next_generation = now ^ (u64::from(std::process::id()) << 44);
        ManifestCache { files: BTreeMap::new(), store, started: false, next_generation }
    }

    /// The cluster view of `snapshot`. For a fresh cache without a store it equals
    /// [`Cluster::from_sources`] of the snapshot's files (with each unreadable file reported).
    pub fn cluster(&mut self, snapshot: &Snapshot) -> Cluster {
        self.resolve_stored();
        let entries = snapshot.entries();
        let mut loaded = match (&mut self.store, self.started) {
            (Some(store), false) => store.take_loaded(),
            _ => Loaded::default(),
        };
        let first = !self.started;
        self.started = true;
        // At start with every file as stored: the stored view (or the one built from the
        // entries while the agent started).
        let view = match loaded.view_holds_for(entries.iter().map(|(p, r)| (*p, *r))) {
            true => loaded.view.take(),
            false => {
                // Freeing a big cluster view takes milliseconds the agent has better use for.
                if let Some(unused) = loaded.view.take() {
                    let _ = std::thread::Builder::new().name("weir-cache-drop".into()).spawn(move || drop(unused));
                }
                self.read_parsed(&mut loaded);
                None
            }
        };
        let mut stored = loaded.entries;
        let (mut from_store, mut parsed) = (0usize, 0usize);
        let mut kept = BTreeMap::new();
        for (path, read) in entries {
            let state = match self.files.remove(path) {
                Some(state) if state.read.as_deref().map_err(String::as_str) == read => state,
                Some(previous) => {
                    parsed += 1;
                    self.read(path, read, previous.in_force.last_good())
                }
                None => match stored.remove(path) {
                    Some(entry) => match self.restored(path, read, entry) {
                        Ok(state) => {
                            from_store += 1;
                            state
                        }
                        Err(last_good) => {
                            parsed += 1;
                            self.read(path, read, last_good)
                        }
                    },
                    None => {
                        parsed += 1;
                        self.read(path, read, None)
                    }
                },
            };
            kept.insert(path.clone(), state);
        }
        // Deleted since the last snapshot, or (at start) while the agent was stopped.
        let removed: Vec<PathBuf> = self.files.keys().chain(stored.keys()).cloned().collect();
        self.files = kept;
        if let Some(store) = &self.store {
            for path in &removed {
                store.remove(path);
            }
            if parsed > 0 || !removed.is_empty() {
                store.set_view(self.view_files());
            }
        }
        if first && self.store.is_some() {
            info!(from_store, parsed, view_from_store = view.is_some(), "manifest files taken from the cache and parsed");
        }
        view.unwrap_or_else(|| {
            let parts: Vec<&Manifests> = self.files.values().filter_map(|f| f.in_force.contribution()).collect();
            Cluster::from_parts(&parts)
        })
    }

    /// Each file in force with its generation, if every file is good (a view can be stored).
    fn view_files(&self) -> Option<ViewFiles> {
        self.files
            .iter()
            .map(|(p, f)| match &f.in_force {
                InForce::Good(m) => Some((p.clone(), f.generation, m.clone())),
                _ => None,
            })
            .collect()
    }

    /// Fills in the entries read later (the stored view was not used after all).
    fn read_parsed(&mut self, loaded: &mut Loaded) {
        if !loaded.entries.values().any(|e| e.parsed == Parsed::Later) {
            return;
        }
        let mut parsed = self.store.as_mut().map(ManifestStore::take_parsed).unwrap_or_default();
        loaded.entries.retain(|path, e| {
            if e.parsed == Parsed::Later {
                match parsed.remove(path) {
                    Some(m) => e.parsed = Parsed::Now(m),
                    // Could not be read: the file is parsed as if it had no entry.
                    None => return false,
                }
            }
            true
        });
    }

    /// Reads the content of the files taken from the stored view, now that it is needed.
    fn resolve_stored(&mut self) {
        if !self.files.values().any(|f| matches!(f.in_force, InForce::Stored)) {
            return;
        }
        let mut parsed = self.store.as_mut().map(ManifestStore::take_parsed).unwrap_or_default();
        let paths: Vec<PathBuf> =
            self.files.iter().filter(|(_, f)| matches!(f.in_force, InForce::Stored)).map(|(p, _)| p.clone()).collect();
        for path in paths {
            match parsed.remove(&path) {
                Some(m) => {
                    if let Some(f) = self.files.get_mut(&path) {
                        f.in_force = InForce::Good(m);
                    }
                }
                None => {
                    // Its entry could not be read after all: parse its text (the stored view
                    // it was in force through goes with the next view).
                    warn!(file = %path.display(), "stored content of a manifest file unreadable: parsing the file");
                    if let Some(f) = self.files.remove(&path) {
                        let read = f.read.as_deref().map_err(String::as_str);
                        let state = self.read(&path, read, None);
                        self.files.insert(path, state);
                    }
                }
            }
        }
    }

    /// `path` at start, with its stored entry: the stored content if the text is the one it
    /// was made from, else the last good version to parse the text against.
    fn restored(&self, path: &Path, read: Result<&str, &str>, entry: Entry) -> Result<FileState, Option<Arc<Manifests>>> {
        let same_text = read == Ok(&*entry.text);
        let (generation, text) = (entry.generation, entry.text);
        match entry.parsed {
            Parsed::Now(m) if same_text => Ok(FileState { read: Ok(text), in_force: InForce::Good(m), generation }),
            Parsed::Later if same_text => Ok(FileState { read: Ok(text), in_force: InForce::Stored, generation }),
            Parsed::Now(m) => Err(Some(m)),
            // Not read (only with the stored view in force, so with every text unchanged).
            Parsed::Later => Err(None),
            // Written by another build: its text is the last good version, if this build's
            // parser agrees (not needed when the text is unchanged: it is parsed anyway).
            Parsed::OtherBuild if same_text => Err(None),
            Parsed::OtherBuild => Err(parse_file(&path.to_string_lossy(), &text).ok().map(Arc::new)),
        }
    }

    /// Parses `read` (the text of `path`) against its last good version, and persists the
    /// result if it is good.
    fn read(&mut self, path: &Path, read: Result<&str, &str>, last_good: Option<Arc<Manifests>>) -> FileState {
        let in_force = InForce::of(path, read, last_good);
        let read: Result<Arc<str>, String> = read.map(Arc::from).map_err(str::to_string);
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        if let (Some(store), InForce::Good(m), Ok(text)) = (&self.store, &in_force, &read) {
            store.put(path, generation, text.clone(), m.clone());
        }
        FileState { read, in_force, generation }
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

    /// A cache persisting into `state` (for the manifests directory `/m`).
    fn stored(state: &tempfile::TempDir) -> ManifestCache {
        ManifestCache::with_store(Some(ManifestStore::open(state.path(), Path::new("/m")).unwrap()))
    }

    /// `files` under `/m`.
    fn at_m(files: &[(&str, &str)]) -> Vec<(String, String)> {
        files.iter().map(|(p, t)| (format!("/m/{p}"), t.to_string())).collect()
    }

    fn snap(files: &[(String, String)]) -> Snapshot {
        Snapshot { files: files.iter().map(|(p, t)| (PathBuf::from(p), t.clone())).collect(), ..Snapshot::default() }
    }

    /// Runs `before` through a cache with a store, "restarts" (a new cache on the same state
    /// directory) and returns the view of `after`.
    fn across_a_restart(state: &tempfile::TempDir, before: &[(String, String)], after: &[(String, String)]) -> Cluster {
        let mut cache = stored(state);
        cache.cluster(&snap(before));
        drop(cache); // the agent stops: queued writes finish
        stored(state).cluster(&snap(after))
    }

    #[test]
    fn a_restart_with_unchanged_files_gives_the_same_view_without_parsing() {
        let state = tempfile::tempdir().unwrap();
        let files = at_m(&[("pods.yaml", &pods()), ("policy.yaml", POLICY), ("bad.yaml", BAD)]);
        let mut cache = stored(&state);
        let before = cache.cluster(&snap(&files));
        drop(cache);
        let loaded = ManifestStore::open(state.path(), Path::new("/m")).unwrap().take_loaded();
        assert_eq!(loaded.entries.len(), 3, "every good file has an entry");
        assert!(loaded.view.is_some());
        assert!(loaded.entries.values().all(|e| e.parsed == Parsed::Later), "the stored view is used; the entries read later");
        assert_eq!(stored(&state).cluster(&snap(&files)), before);
    }

    #[test]
    fn a_kept_last_valid_version_survives_a_restart() {
        // Not what parsing the text from scratch gives (that fails the policy closed): the
        // view is taken from the store.
        let state = tempfile::tempdir().unwrap();
        let invalid = POLICY.replace("ingress:", "ingress:\n  - ports: [{port: 0}]");
        let mut cache = stored(&state);
        cache.cluster(&snap(&at_m(&[("pods.yaml", &pods()), ("policy.yaml", POLICY)])));
        let edited = at_m(&[("pods.yaml", &pods()), ("policy.yaml", &invalid)]);
        let before = cache.cluster(&snap(&edited));
        assert_eq!(policy_names(&before), ["x/only-b"]);
        drop(cache);
        let after = stored(&state).cluster(&snap(&edited));
        assert_eq!(after, before);
        let from_scratch = ManifestCache::with_store(None).cluster(&snap(&edited));
        assert!(from_scratch.policies.is_empty(), "parsing alone would fail the policy closed");
    }

    #[test]
    fn a_file_broken_at_restart_keeps_its_stored_last_good_version_and_says_so() {
        let state = tempfile::tempdir().unwrap();
        let good = at_m(&[("pods.yaml", &pods()), ("policy.yaml", POLICY)]);
        let cut = &POLICY[..POLICY.find("{matchLabels: {app: b").unwrap() + 10];
        let broken = at_m(&[("pods.yaml", &pods()), ("policy.yaml", cut)]);
        let view = across_a_restart(&state, &good, &broken);
        assert_eq!(policy_names(&view), ["x/only-b"], "the policy stays in force");
        assert_eq!(view.policies, stored(&tempfile::tempdir().unwrap()).cluster(&snap(&good)).policies);
        assert_eq!(errors(&view).len(), 1);
        assert!(errors(&view)[0].starts_with("/m/policy.yaml: document 1 (line 8): not valid YAML: "), "{:?}", errors(&view));
        assert!(errors(&view)[0].ends_with("its last good version stays in force until it is fixed"));
        // And still after a second restart (a broken file leaves its entry alone).
        let again = stored(&state).cluster(&snap(&broken));
        assert_eq!(again, view);
    }

    #[test]
    fn an_unreadable_file_at_restart_keeps_its_stored_last_good_version() {
        let state = tempfile::tempdir().unwrap();
        let mut cache = stored(&state);
        cache.cluster(&snap(&at_m(&[("pods.yaml", &pods()), ("policy.yaml", POLICY)])));
        drop(cache);
        let snap = Snapshot {
            files: vec![(PathBuf::from("/m/pods.yaml"), pods())],
            unreadable: vec![(PathBuf::from("/m/policy.yaml"), "not UTF-8 text (invalid byte at offset 0)".to_string())],
            ..Snapshot::default()
        };
        let view = stored(&state).cluster(&snap);
        assert_eq!(policy_names(&view), ["x/only-b"]);
        assert_eq!(
            errors(&view),
            ["/m/policy.yaml: not UTF-8 text (invalid byte at offset 0); its last good version stays in force until it is fixed"]
        );
    }

    #[test]
    fn a_file_changed_while_stopped_is_parsed_again() {
        let state = tempfile::tempdir().unwrap();
        let fixed = POLICY.replace("app: b", "app: c");
        let after = at_m(&[("pods.yaml", &pods()), ("policy.yaml", &fixed)]);
        let view = across_a_restart(&state, &at_m(&[("pods.yaml", &pods()), ("policy.yaml", POLICY)]), &after);
        assert_eq!(view, stored(&tempfile::tempdir().unwrap()).cluster(&snap(&after)));
        let from = &view.policies[&("x".to_string(), "only-b".to_string())].ingress[0].peers;
        assert!(format!("{from:?}").contains("\"c\""), "the new text is in force: {from:?}");
        // ... and becomes the stored version.
        let cut = at_m(&[("pods.yaml", &pods()), ("policy.yaml", "kind: [")]);
        let view = stored(&state).cluster(&snap(&cut));
        let from = &view.policies[&("x".to_string(), "only-b".to_string())].ingress[0].peers;
        assert!(format!("{from:?}").contains("\"c\""), "{from:?}");
    }

    #[test]
    fn a_file_deleted_while_stopped_is_forgotten_with_its_entry() {
        let state = tempfile::tempdir().unwrap();
        let both = at_m(&[("pods.yaml", &pods()), ("policy.yaml", POLICY)]);
        let pods_only = at_m(&[("pods.yaml", &pods())]);
        let view = across_a_restart(&state, &both, &pods_only);
        assert!(view.policies.is_empty());
        let store = ManifestStore::open(state.path(), Path::new("/m")).unwrap();
        let entry = crate::manifest_store::entry_file(&store, Path::new("/m/policy.yaml"));
        drop(store);
        assert!(!entry.exists(), "the entry of a deleted file is removed");
        // A file of that name written later is new: no last good version.
        let view = stored(&state).cluster(&snap(&at_m(&[("pods.yaml", &pods()), ("policy.yaml", "kind: [")])));
        assert!(view.policies.is_empty());
    }

    #[test]
    fn a_corrupt_entry_is_ignored_and_the_file_parsed() {
        let state = tempfile::tempdir().unwrap();
        let files = at_m(&[("pods.yaml", &pods()), ("policy.yaml", POLICY)]);
        let mut cache = stored(&state);
        let before = cache.cluster(&snap(&files));
        let entry = crate::manifest_store::entry_file(cache.store.as_ref().unwrap(), Path::new("/m/policy.yaml"));
        drop(cache);
        let mut bytes = std::fs::read(&entry).unwrap();
        let n = bytes.len();
        bytes[n - 20] ^= 0x01;
        std::fs::write(&entry, bytes).unwrap();
        assert_eq!(stored(&state).cluster(&snap(&files)), before, "parsed again, the same view");
    }

    #[test]
    fn an_entry_of_another_build_is_parsed_again_and_still_keeps_protection() {
        let state = tempfile::tempdir().unwrap();
        let good = at_m(&[("pods.yaml", &pods()), ("policy.yaml", POLICY)]);
        let mut cache = stored(&state);
        let before = cache.cluster(&snap(&good));
        let entry = crate::manifest_store::entry_file(cache.store.as_ref().unwrap(), Path::new("/m/policy.yaml"));
        drop(cache);
        crate::manifest_store::as_if_from_another_build(&entry);
        // Same text: parsed by this build, the same view.
        assert_eq!(across_a_restart(&state, &good, &good), before);
        crate::manifest_store::as_if_from_another_build(&entry);
        // Broken text: the stored text is parsed by this build as the last good version.
        let broken = at_m(&[("pods.yaml", &pods()), ("policy.yaml", "kind: [")]);
        let view = stored(&state).cluster(&snap(&broken));
        assert_eq!(view.policies, before.policies);
        assert!(errors(&view)[0].ends_with("its last good version stays in force until it is fixed"), "{:?}", errors(&view));
    }

    /// The same history through one cache, and through caches restarted between its steps,
    /// gives the same views.
    #[test]
    fn changes_after_a_restart_give_what_they_give_without_one() {
        let invalid = POLICY.replace("ingress:", "ingress:\n  - ports: [{port: 0}]");
        let fixed = POLICY.replace("app: b", "app: c");
        let history: Vec<Vec<(String, String)>> = vec![
            at_m(&[("pods.yaml", &pods()), ("policy.yaml", POLICY)]),
            at_m(&[("pods.yaml", &pods()), ("policy.yaml", &invalid)]),
            at_m(&[("pods.yaml", POD_A), ("policy.yaml", &invalid)]),
            at_m(&[("pods.yaml", POD_A), ("policy.yaml", "kind: [")]),
            at_m(&[("pods.yaml", &pods()), ("policy.yaml", "kind: [")]),
            at_m(&[("pods.yaml", &pods()), ("policy.yaml", &fixed), ("bad.yaml", BAD)]),
            at_m(&[("policy.yaml", &fixed), ("bad.yaml", BAD)]),
            at_m(&[("pods.yaml", &pods()), ("policy.yaml", &fixed)]),
        ];
        let mut one = ManifestCache::with_store(None);
        let expected: Vec<Cluster> = history.iter().map(|files| one.cluster(&snap(files))).collect();
        // Restarted before every step, and before every other step.
        for every in [1, 2] {
            let state = tempfile::tempdir().unwrap();
            let mut cache = stored(&state);
            for (i, files) in history.iter().enumerate() {
                if i % every == 0 {
                    drop(cache);
                    cache = stored(&state);
                    if i > 0 {
                        // Restarted with the files as they were: the stored view.
                        assert_eq!(cache.cluster(&snap(&history[i - 1])), expected[i - 1], "restart before step {i}");
                    }
                }
                assert_eq!(cache.cluster(&snap(files)), expected[i], "step {i}, restarted every {every}");
                // Unchanged: from the cache (or the store) again.
                assert_eq!(cache.cluster(&snap(files)), expected[i], "step {i} again, restarted every {every}");
            }
        }
    }

    #[test]
    fn the_stored_view_is_used_and_a_later_change_reads_the_stored_entries() {
        let state = tempfile::tempdir().unwrap();
        let files = at_m(&[("pods.yaml", &pods()), ("policy.yaml", POLICY)]);
        let before = stored(&state).cluster(&snap(&files));
        let mut cache = stored(&state);
        assert_eq!(cache.cluster(&snap(&files)), before);
        assert!(cache.files.values().all(|f| matches!(f.in_force, InForce::Stored)), "taken from the stored view");
        // A truncated policy file now: its stored content is read and stays in force.
        let cut = at_m(&[("pods.yaml", &pods()), ("policy.yaml", "kind: [")]);
        let view = cache.cluster(&snap(&cut));
        assert_eq!(view.policies, before.policies);
        assert!(cache.files.values().all(|f| !matches!(f.in_force, InForce::Stored)));
    }
}
