//! Parsed manifests per file, reused while a file's text is unchanged: after an edit only
//! the edited file is parsed again (YAML parsing is most of the cost of a big directory).

use crate::source::Snapshot;
use policy::Cluster;
use policy::manifest::{Manifests, parse_into};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Each file's text and what it parsed to.
#[derive(Debug, Default)]
pub struct ManifestCache {
    files: BTreeMap<PathBuf, (String, Manifests)>,
}

impl ManifestCache {
    /// The cluster view of `snapshot`, equal to [`Cluster::from_sources`] of its files.
    pub fn cluster(&mut self, snapshot: &Snapshot) -> Cluster {
        let mut kept = BTreeMap::new();
        let mut merged = Manifests::default();
        for (path, text) in &snapshot.files {
            let parsed = match self.files.remove(path) {
                Some((old, parsed)) if old == *text => parsed,
                _ => {
                    let mut m = Manifests::default();
                    parse_into(path.to_str().unwrap_or("?"), text, &mut m);
                    m
                }
            };
            merged.append(parsed.clone());
            kept.insert(path.clone(), (text.clone(), parsed));
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

    fn snapshot(files: &[(&str, &str)]) -> Snapshot {
        Snapshot { token: None, files: files.iter().map(|(p, t)| (PathBuf::from(p), t.to_string())).collect() }
    }

    fn direct(files: &[(&str, &str)]) -> Cluster {
        Cluster::from_sources(files.iter().copied())
    }

    #[test]
    fn the_cached_view_equals_parsing_every_file_including_errors() {
        let files = [("a.yaml", POD_A), ("b.yaml", POD_B), ("bad.yaml", BAD)];
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
}
